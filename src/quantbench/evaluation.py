"""Run one configured task on a loaded model: lm-eval for choice tasks, our own token perplexity."""

from __future__ import annotations

import logging
import random
import tempfile
from pathlib import Path
from typing import Any

from . import generation, tasks
from .llamacpp import LlamaCppModel
from .perplexity import token_perplexity

log = logging.getLogger(__name__)


def evaluate(model, tokenizer, task: dict[str, Any], device: str, head: Path | None = None) -> tuple[dict, list[dict]]:
    """Return (metrics, per-item rows): choices per item, generated answers, or none (perplexity).

    `head`: the folder of the classification head a `classification_head` task is scored with.
    """
    if task["type"] == "classification_head":
        from . import heads  # heads draws its items with sample_indices below

        if head is None:
            raise ValueError("a classification_head task is scored with its trained head (rule train_head)")
        return heads.evaluate(model, tokenizer, task, head, device)
    if task["type"] == "perplexity":
        text = tasks.text_path(task["text"]).read_text()
        return token_perplexity(model, tokenizer, text, task["context"], task["stride"], device), []
    if task["type"] == "generation":
        items = generation.generate(model, tokenizer, task, device)
        return generation.summary(items), items
    return _lm_eval(model, tokenizer, task, device)


def _lm_eval(model, tokenizer, task: dict[str, Any], device: str) -> tuple[dict, list[dict]]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager, get_task_dict

    name = task["task"]
    with tempfile.TemporaryDirectory() as tmp:
        ours = tasks.is_quantbench_task(name)
        # include_defaults=False keeps TaskManager at ~0.01 s instead of indexing every task (8-15 s).
        manager = TaskManager(include_path=str(tasks.write_task_yaml(Path(tmp), task)) if ours else None,
                              include_defaults=not ours)
        loaded = get_task_dict([name], manager)[name]
        output_type = getattr(loaded, "OUTPUT_TYPE", None)
        if output_type not in ("multiple_choice", "loglikelihood_rolling"):
            raise ValueError(f"lm-eval task {name!r} is neither a single multiple-choice task nor a perplexity task; "
                             "quantbench scores those only (groups and generation tasks are not supported yet)")
        n_docs = len(loaded.eval_docs)
        indices = sample_indices(n_docs, task["limit"], task["seed"])
        lm = _lm_eval_model(model, tokenizer, task["batch_size"])
        result = simple_evaluate(
            model=lm, tasks=[name], num_fewshot=task["num_fewshot"], task_manager=manager,
            samples={name: indices}, log_samples=True, random_seed=task["seed"],
            fewshot_random_seed=task["seed"], bootstrap_iters=0,
        )
    metrics = _plain(result["results"][name])
    common = {"n_items": len(indices), "lm_eval_task": name, "num_fewshot": task["num_fewshot"],
              "lm_eval_metrics": metrics}
    if output_type == "loglikelihood_rolling":
        return {"perplexity_word": metrics["word_perplexity,none"], "perplexity_byte": metrics["byte_perplexity,none"],
                "bits_per_byte": metrics["bits_per_byte,none"], **common}, []
    items = [_item(s) for s in result["samples"][name]]
    return {"accuracy": sum(i["correct"] for i in items) / len(items), **common}, items


def _lm_eval_model(model, tokenizer, batch_size: int):
    """lm-eval's adapter for this model: HFLM for torch models, ours for llama.cpp (GGUF) ones."""
    if isinstance(model, LlamaCppModel):
        from .lm_eval_llamacpp import LlamaCppLM

        return LlamaCppLM(model, tokenizer)  # one sequence at a time; shared contexts come from its cache
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def sample_indices(n_docs: int, limit: int | None, seed: int) -> list[int]:
    """`limit` items drawn reproducibly with `seed` (lm-eval's own limit takes the first N)."""
    if limit is None or limit >= n_docs:
        return list(range(n_docs))
    return sorted(random.Random(seed).sample(range(n_docs), limit))


def _item(sample: dict) -> dict:
    loglikelihoods = [float(r[0]) for r in sample["filtered_resps"]]
    predicted = max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__)
    return {
        "doc_id": sample["doc_id"],
        "doc_hash": sample.get("doc_hash"),
        "target": int(sample["target"]),
        "predicted": predicted,
        "correct": int(sample["acc"]),
        "loglikelihoods": loglikelihoods,
    }


def _plain(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
