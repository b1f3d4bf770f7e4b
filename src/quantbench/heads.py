"""Seed 004's classification-head variant: a logistic-regression head fitted once on the frozen
baseline's hidden states, then applied unchanged to every variant's hidden states, so a difference
in accuracy between variants comes from their features alone, never from a refitted head.

Features are the final hidden state (after the last norm: what lm_head reads) at the last real
token, the pooling transformers' *ForSequenceClassification uses for decoder-only models: under
causal attention only that position has read the whole text (a mean would mix in positions that
saw only a prefix). Texts are padded on the right, so padding never changes a real token's state.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import torch

from . import artifacts, tasks
from .checksums import sha256_file, verify
from .environment import describe, now
from .evaluation import sample_indices
from .failures import ArtifactFailed

HEAD_FILE = "head.safetensors"
RECORD = "head.json"
FEATURE = "final hidden state (after the last norm) at the last non-padding token"
log = logging.getLogger(__name__)


def labelled_items(task: dict[str, Any], part: str) -> list[dict]:
    """The `train` or `eval` items of a head task, each {doc_id, text, label}, drawn with the task's seed.

    A shipped set is one pool: a seeded permutation gives the first `train_items` to training and
    the next `eval_items` (default: the rest) to evaluation. A hub dataset trains on its train split
    and is scored on its test split, with the draw its lm-eval task uses (same `seed`, same items);
    only the split asked for is loaded.
    """
    sources = tasks.head_sources(task)
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


def features(model, tokenizer, texts: list[str], batch_size: int, device: str) -> torch.Tensor:
    """(len(texts), hidden) float32 features of `model`."""
    require_hidden_states(model)
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, padding_side="right",
                              return_tensors="pt").to(device)
            hidden = model.base_model(input_ids=batch["input_ids"],
                                      attention_mask=batch["attention_mask"]).last_hidden_state
            last = batch["attention_mask"].sum(1) - 1
            rows.append(hidden[torch.arange(len(last), device=hidden.device), last].float().cpu())
    return torch.cat(rows)


def require_hidden_states(model) -> None:
    """Refuse, before any work, a model that is not a torch module (e.g. a GGUF model in llama.cpp)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"classification-head tasks need the model's hidden states; this variant's model "
                        f"({type(model).__module__}.{type(model).__name__}) is not a torch module and does not "
                        "expose them")


def fit(x: torch.Tensor, labels: list[int], n_classes: int, *, C: float, max_iter: int, seed: int):
    """Standardize, then fit scikit-learn's LogisticRegression (lbfgs: deterministic). Returns the head
    as plain tensors (mean, scale, weight, bias; one weight row per class) and lbfgs's iteration count."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    missing = sorted(set(range(n_classes)) - set(labels))
    if missing:
        raise ValueError(f"the training items hold no example of label(s) {missing}; raise train_items")
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


def train(artifact: Path, out: Path, *, ids: dict[str, Any], task: dict[str, Any], device: str) -> dict:
    """Fit the head of `task` on the model in `artifact` (the baseline) and write it into `out`."""
    from safetensors.torch import save_file

    started, t0 = now(), time.perf_counter()
    model, tokenizer, info = artifacts.load(artifact, device)
    load_time = time.perf_counter() - t0
    items = labelled_items(task, "train")
    labels = tasks.head_labels(task["data"])
    targets = [i["label"] for i in items]
    t1 = time.perf_counter()
    x = features(model, tokenizer, [i["text"] for i in items], task["batch_size"], device)
    t2 = time.perf_counter()
    head, n_iter = fit(x, targets, len(labels), C=task["C"], max_iter=task["max_iter"], seed=task["seed"])
    fit_time = time.perf_counter() - t2
    save_file(head, out / HEAD_FILE)
    predicted = scores(head, x).argmax(1).tolist()
    record = {
        "status": "ok", **ids, "data": task["data"], "labels": labels, "feature": FEATURE,
        "hidden_size": x.shape[1], "train_items": len(items), "train_doc_ids": [i["doc_id"] for i in items],
        "train_split": "all" if "all" in tasks.head_sources(task) else tasks.HUB_TRAIN_SPLIT,
        "train_accuracy": sum(p == t for p, t in zip(predicted, targets)) / len(items),
        "seed": task["seed"], "C": task["C"], "max_iter": task["max_iter"], "n_iter": n_iter,
        "converged": n_iter < task["max_iter"],
        "baseline": {"method": info["method"], "backend": info["backend"], "files": info["files"]},
        "versions": {p: importlib.metadata.version(p)
                     for p in ("torch", "transformers", "scikit-learn", "safetensors", "datasets")},
        "load_time_s": load_time, "feature_time_s": t2 - t1, "fit_time_s": fit_time,
        "wall_time_s": time.perf_counter() - t0, "started": started, "ended": now(),
        "environment": describe(device), "files": {HEAD_FILE: sha256_file(out / HEAD_FILE)},
    }
    (out / RECORD).write_text(json.dumps(record, indent=2, default=str))
    log.info("trained head %s/%s on %d items in %.1f s: train accuracy %.3f", ids["model"], ids["task"],
             len(items), record["wall_time_s"], record["train_accuracy"])
    return record


def write_failure(out: Path, *, ids: dict[str, Any], error: str) -> None:
    """Mark `out` as a failed head (on_error: skip), so every variant's evaluation records why."""
    (out / RECORD).write_text(json.dumps({"status": "failed", **ids, "error": error, "ended": now()}, indent=2))


def load(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The head's tensors and record, checked against the checksum written with them."""
    from safetensors.torch import load_file

    record = json.loads((Path(folder) / RECORD).read_text())
    if record["status"] == "failed":
        raise ArtifactFailed(f"no classification head: {record['error']}")
    verify(Path(folder), record["files"], f"delete {folder} and rerun snakemake (rule train_head) to refit it")
    return load_file(Path(folder) / HEAD_FILE), record


def evaluate(model, tokenizer, task: dict[str, Any], head_folder: Path, device: str) -> tuple[dict, list[dict]]:
    """Score the task's evaluation items with the stored head on this model's features."""
    from sklearn.metrics import f1_score

    require_hidden_states(model)
    head, record = load(head_folder)
    items = labelled_items(task, "eval")
    if record["train_split"] == "all" and not set(record["train_doc_ids"]).isdisjoint(i["doc_id"] for i in items):
        raise ValueError(f"the head in {head_folder} was trained on items this task scores; rerun rule train_head")
    x = features(model, tokenizer, [i["text"] for i in items], task["batch_size"], device)
    item_scores = scores(head, x)
    rows = [{"doc_id": item["doc_id"], "target": item["label"], "predicted": int(s.argmax()),
             "correct": int(int(s.argmax()) == item["label"]), "scores": s.tolist()}
            for item, s in zip(items, item_scores)]
    targets, predicted = [r["target"] for r in rows], [r["predicted"] for r in rows]
    return {
        "accuracy": sum(r["correct"] for r in rows) / len(rows),
        "macro_f1": float(f1_score(targets, predicted, average="macro", labels=range(len(record["labels"])),
                                   zero_division=0)),
        "n_items": len(rows), "head_train_items": record["train_items"],
        "head_train_accuracy": record["train_accuracy"], "head_sha256": record["files"][HEAD_FILE],
    }, rows
