"""Seed 004's classification-head variant: a logistic-regression head fitted once on the frozen
baseline's hidden states (prepare), then applied unchanged to every variant's hidden states
(evaluate), so a difference in accuracy between variants comes from their features alone, never
from a refitted head.

Features are the final hidden state (after the last norm: what lm_head reads) at the last real
token, the pooling transformers' *ForSequenceClassification uses for decoder-only models: under
causal attention only that position has read the whole text (a mean would mix in positions that
saw only a prefix). Texts are padded on the right, so padding never changes a real token's state.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checksums import sha256_file
from ..errors import DataError
from .base import ACCURACY, N_ITEMS, Inputs, Scores, TaskType, accuracy_with_interval, quality
from .data import (BUILTIN_CHOICE_TASKS, HUB_CHOICE_TASKS, data_file, hub_source, local_files, mirror_problem,
                   n_lines, sample_indices)

if TYPE_CHECKING:
    import torch

HEAD_FILE = "head.safetensors"
FEATURE = "final hidden state (after the last norm) at the last non-padding token"
# Labelled sets a classification head can be trained on (a `text` column and an integer `label`). A
# shipped set is one pool split in two with the task's seed; a hub dataset trains on its train split and
# is scored on the split its lm-eval task scores.
HEAD_DATA = ("qb_sentiment", "qb_tweeteval_sentiment")
HUB_TRAIN_SPLIT = "train"
log = logging.getLogger(__name__)


class ClassificationHead(TaskType):
    name = "classification_head"
    schema = {
        "data": {"type": "string", "description": "labelled set: qb_sentiment (shipped, split in two) or "
                                                  "qb_tweeteval_sentiment (hub: train split -> test split)"},
        "train_items": {"type": "integer", "minimum": 2, "default": 60,
                        "description": "items the head is fitted on, drawn with `seed`"},
        "eval_items": {"type": ["integer", "null"], "minimum": 1, "default": None,
                       "description": "items scored, drawn with `seed`; default all (shipped: all not used for "
                                      "training)"},
        "seed": {"type": "integer", "default": 42},
        "batch_size": {"type": "integer", "minimum": 1, "default": 8, "description": "texts per forward pass"},
        "C": {"type": "number", "exclusiveMinimum": 0, "default": 1.0,
              "description": "inverse L2 regularization strength of scikit-learn's LogisticRegression"},
        "max_iter": {"type": "integer", "minimum": 1, "default": 1000,
                     "description": "LogisticRegression's lbfgs iterations"},
        "mirror": {"type": ["object", "null"], "default": None, "additionalProperties": False,
                   "required": ["train", "test"],
                   "properties": {"train": {"type": "string"}, "test": {"type": "string"}},
                   "description": "hub data: local .jsonl/.parquet files of the train and scored splits in the hub's "
                                  "schema (offline)"},
        "revision": {"type": ["string", "null"], "default": None,
                     "description": "hub data: dataset revision (commit) to pin"},
    }
    required = ("data",)
    columns = (
        *ACCURACY,
        quality("macro_f1", "float", "classification heads: F1 averaged over classes"),
        N_ITEMS,
        quality("head_train_items", "int", "classification heads: items the head was fitted on"),
        quality("head_train_accuracy", "float", "classification heads: accuracy on those items"),
        quality("head_sha256", "str", "classification heads: checksum of the head that scored"),
    )
    prepares = True

    def problem(self, task: dict[str, Any]) -> str | None:
        name = task["data"]
        if name not in HEAD_DATA:
            return f"data {name!r} cannot train a classification head; allowed: {list(HEAD_DATA)}"
        if name in BUILTIN_CHOICE_TASKS:
            hub_only = [key for key in ("mirror", "revision") if task.get(key) is not None]
            if hub_only:
                return f"{' and '.join(hub_only)}: for hub data only, not for the shipped {name!r}"
            n_items = n_lines(BUILTIN_CHOICE_TASKS[name][0])
            wanted = task["train_items"] + (task["eval_items"] or 1)
            if wanted > n_items:
                return (f"train_items {task['train_items']} + eval_items {task['eval_items'] or 1} exceed the "
                        f"{n_items} items of {name}, which are split between training and evaluation")
            return None
        for split, mirror in (task.get("mirror") or {}).items():
            problem = mirror_problem(f"mirror.{split}", mirror)
            if problem:
                return problem
        return None

    def describe(self, task: dict[str, Any]) -> str:
        return (f"accuracy (95% Wilson interval) and macro-F1 of a head fitted once on the baseline's features of "
                f"{task['train_items']} {task['data']} items")

    def data_files(self, task: dict[str, Any]) -> list[str]:
        return sorted((task.get("mirror") or {}).values())

    def prepare(self, runtime, task: dict[str, Any], out: Path) -> dict[str, Any]:
        """Fit the head on the baseline's features and write it into `out`."""
        from safetensors.torch import save_file

        items = labelled_items(task, "train")
        targets = [i["label"] for i in items]
        labels = head_labels(task["data"])
        x = features(runtime, [i["text"] for i in items], task["batch_size"])
        head, n_iter = fit(x, targets, len(labels), C=task["C"], max_iter=task["max_iter"], seed=task["seed"])
        save_file(head, out / HEAD_FILE)
        predicted = scores(head, x).argmax(1).tolist()
        train_accuracy = sum(p == t for p, t in zip(predicted, targets)) / len(items)
        log.info("fitted a head on %d items: train accuracy %.3f", len(items), train_accuracy)
        return {
            "data": task["data"], "labels": labels, "feature": FEATURE, "hidden_size": x.shape[1],
            "train_items": len(items), "train_doc_ids": [i["doc_id"] for i in items],
            "train_split": "all" if "all" in head_sources(task) else HUB_TRAIN_SPLIT,
            "train_accuracy": train_accuracy, "seed": task["seed"], "C": task["C"], "max_iter": task["max_iter"],
            "n_iter": n_iter, "converged": n_iter < task["max_iter"], "head_sha256": sha256_file(out / HEAD_FILE),
        }

    def evaluate(self, runtime, task: dict[str, Any], inputs: Inputs) -> Scores:
        """Score the task's evaluation items with the stored head on this variant's features."""
        from safetensors.torch import load_file
        from sklearn.metrics import f1_score

        fitted = inputs.prepared_details
        items = labelled_items(task, "eval")
        if fitted["train_split"] == "all" and not set(fitted["train_doc_ids"]).isdisjoint(i["doc_id"] for i in items):
            raise DataError(f"the head in {inputs.prepared} was trained on items this task scores; "
                            "rerun rule prepare_task")
        head = load_file(inputs.prepared / HEAD_FILE)
        item_scores = scores(head, features(runtime, [i["text"] for i in items], task["batch_size"]))
        rows = [{"doc_id": item["doc_id"], "doc_hash": hashlib.sha256(item["text"].encode()).hexdigest(),
                 "target": item["label"], "predicted": int(s.argmax()),
                 "correct": int(int(s.argmax()) == item["label"]), "scores": s.tolist()}
                for item, s in zip(items, item_scores)]
        targets, predicted = [r["target"] for r in rows], [r["predicted"] for r in rows]
        return Scores({
            **accuracy_with_interval([r["correct"] for r in rows]),
            "macro_f1": float(f1_score(targets, predicted, average="macro", labels=range(len(fitted["labels"])),
                                       zero_division=0)),
            "n_items": len(rows), "head_train_items": fitted["train_items"],
            "head_train_accuracy": fitted["train_accuracy"], "head_sha256": sha256_file(inputs.prepared / HEAD_FILE),
        }, "accuracy", rows)


def head_labels(name: str) -> list[str]:
    """The class names of a head task's data, in label order."""
    return (BUILTIN_CHOICE_TASKS.get(name) or HUB_CHOICE_TASKS[name])[1]["doc_to_choice"]


def head_sources(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Where a head task's items live, as lm-eval dataset fields per split: `all` for a shipped set
    (split by the caller), `train` and `test` for a hub dataset (or its mirror files)."""
    name = task["data"]
    if name in BUILTIN_CHOICE_TASKS:
        return {"all": local_files("json", data_file(BUILTIN_CHOICE_TASKS[name][0]))}
    hub = HUB_CHOICE_TASKS[name][0]
    mirror = task.get("mirror") or {}
    return {"train": hub_source(replace(hub, split=HUB_TRAIN_SPLIT), mirror.get("train"), task.get("revision")),
            "test": hub_source(hub, mirror.get("test"), task.get("revision"))}


def labelled_items(task: dict[str, Any], part: str) -> list[dict]:
    """The `train` or `eval` items of a head task, each {doc_id, text, label}, drawn with the task's seed.

    A shipped set is one pool: a seeded permutation gives the first `train_items` to training and
    the next `eval_items` (default: the rest) to evaluation. A hub dataset trains on its train split
    and is scored on its test split, with the draw its lm-eval task uses (same `seed`, same items);
    only the split asked for is loaded.
    """
    sources = head_sources(task)
    n_train, n_eval, seed = task["train_items"], task["eval_items"], task["seed"]
    if "all" in sources:
        docs = _rows(sources["all"])
        order = random.Random(seed).sample(range(len(docs)), len(docs))
        rest = order[n_train:]
        chosen = order[:n_train] if part == "train" else (rest[:n_eval] if n_eval else rest)
        return [docs[i] for i in sorted(chosen)]
    rows = _rows(sources["train" if part == "train" else "test"])
    return [rows[i] for i in sample_indices(len(rows), n_train if part == "train" else n_eval, seed)]


def _rows(source: dict[str, Any]) -> list[dict]:
    """One split, loaded by `datasets` from the same fields lm-eval's task YAML gets."""
    from datasets import load_dataset

    split = load_dataset(source["dataset_path"], source.get("dataset_name"), split=source["test_split"],
                         **source.get("dataset_kwargs", {}))
    return [{"doc_id": i, "text": row["text"], "label": int(row["label"])} for i, row in enumerate(split)]


def features(runtime, texts: list[str], batch_size: int) -> torch.Tensor:
    """(len(texts), hidden) float32 features of the variant (Unsupported where it exposes no hidden states)."""
    import torch

    rows = []
    for start in range(0, len(texts), batch_size):
        batch = runtime.tokenizer(texts[start:start + batch_size], padding=True, padding_side="right",
                                  return_tensors="pt")
        hidden = runtime.hidden_states(batch["input_ids"], batch["attention_mask"])
        last = batch["attention_mask"].sum(1) - 1
        rows.append(hidden[torch.arange(len(last), device=hidden.device), last.to(hidden.device)].float().cpu())
    return torch.cat(rows)


def fit(x: torch.Tensor, labels: list[int], n_classes: int, *, C: float, max_iter: int, seed: int):
    """Standardize, then fit scikit-learn's LogisticRegression (lbfgs: deterministic). Returns the head
    as plain tensors (mean, scale, weight, bias; one weight row per class) and lbfgs's iteration count."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    missing = sorted(set(range(n_classes)) - set(labels))
    if missing:
        raise DataError(f"the training items hold no example of label(s) {missing}; raise train_items")
    data = x.double().numpy()
    scaler = StandardScaler().fit(data)
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(scaler.transform(data), labels)
    weight, bias = torch.from_numpy(model.coef_), torch.from_numpy(model.intercept_)
    if n_classes == 2:  # sklearn keeps one row (class 1's score); class 0 scores 0, as in its predict
        weight, bias = torch.cat([torch.zeros_like(weight), weight]), torch.cat([torch.zeros_like(bias), bias])
    head = {"mean": torch.from_numpy(scaler.mean_), "scale": torch.from_numpy(scaler.scale_),
            "weight": weight, "bias": bias}
    return {k: v.float().contiguous() for k, v in head.items()}, int(model.n_iter_.max())


def scores(head: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Per-class scores of the head on features `x`; the prediction is their argmax."""
    return ((x - head["mean"]) / head["scale"]) @ head["weight"].T + head["bias"]
