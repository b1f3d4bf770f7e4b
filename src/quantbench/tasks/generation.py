"""Free generation on fixed prompts, and judge-free measures of how a variant's text drifts.

Each variant answers the same prompts greedily. Against the baseline's answers we report how
often the text is identical, how far the tokens agree before the first divergence, and how
likely the variant's answer is under the baseline model (perplexity of the output given the
prompt): no external judge, nothing downloaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import ArtifactFailed, ConfigError
from .base import N_ITEMS, Inputs, Scores, TaskType, no_grad, quality
from .data import file_problem, prompts_path


class Generation(TaskType):
    name = "generation"
    schema = {
        "prompts": {"type": "string", "description": "qb_prompts (shipped), or path:/prompts.jsonl with id, kind, "
                                                     "prompt"},
        "max_new_tokens": {"type": "integer", "minimum": 1, "default": 48},
        "chat_template": {"type": "boolean", "default": True,
                          "description": "wrap each prompt in the tokenizer's chat template (instruct models)"},
        "batch_size": {"type": "integer", "minimum": 1, "default": 32,
                       "description": "prompts generated together (left-padded for transformers; separate "
                                      "sequences of one batch for llama.cpp); 1: one prompt at a time"},
    }
    required = ("prompts",)
    columns = (
        N_ITEMS,
        quality("output_tokens_mean", "float", "generation: mean answer length", "token"),
        quality("exact_match_vs_baseline", "float", "generation: share of answers identical to the baseline's"),
        quality("prefix_agreement_vs_baseline", "float", "generation: tokens shared with the baseline's answer before "
                "the first difference, as a share of its length"),
        quality("perplexity_under_baseline", "float", "generation: perplexity of the answers under the baseline "
                "model"),
    )
    compares_with_baseline = True

    def problem(self, task: dict[str, Any]) -> str | None:
        return file_problem(prompts_path, task["prompts"])

    def describe(self, task: dict[str, Any]) -> str:
        return (f"greedy answers to {task['prompts']} (up to {task['max_new_tokens']} tokens): agreement with the "
                "baseline's answers and their perplexity under the baseline")

    def data_files(self, task: dict[str, Any]) -> list[str]:
        return [task["prompts"].removeprefix("path:")] if task["prompts"].startswith("path:") else []

    def evaluate(self, runtime, task: dict[str, Any], inputs: Inputs) -> Scores:
        items = generate(runtime, task)
        metrics = {"n_items": len(items), "output_tokens_mean": sum(len(i["output_tokens"]) for i in items) / len(items)}
        return Scores(metrics, "perplexity_under_baseline", items)

    def compare(self, runtime, task: dict[str, Any], scores: Scores, inputs: Inputs) -> dict[str, Any]:
        """Agreement with the baseline's answers and their perplexity under the baseline model."""
        if inputs.baseline_items is None:  # this run is the baseline: its own answers under itself
            return {"perplexity_under_baseline": perplexity_under(runtime, scores.items)}
        answers = read_items(inputs.baseline_items)
        if not answers:
            raise ArtifactFailed(f"the baseline's generation failed ({inputs.baseline_items} is empty): "
                                 "nothing to compare with")
        metrics = agreement(scores.items, answers)
        metrics["perplexity_under_baseline"] = perplexity_under(inputs.load_baseline(), scores.items)
        return metrics


def load_prompts(name: str) -> list[dict[str, str]]:
    """Prompts as {id, kind, prompt} from the shipped qb_prompts or a path:/file.jsonl."""
    rows = [json.loads(line) for line in prompts_path(name).read_text().splitlines() if line.strip()]
    return [{"id": str(r["id"]), "kind": r.get("kind", ""), "prompt": r["prompt"]} for r in rows]


def prompt_ids(tokenizer, prompt: str, chat_template: bool) -> list[int]:
    if not chat_template:
        return tokenizer(prompt, add_special_tokens=True).input_ids
    if not tokenizer.chat_template:
        raise ConfigError("chat_template: true, but this model's tokenizer has no chat template; "
                          "set chat_template: false for a base model")
    return list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                              tokenize=True, return_dict=True)["input_ids"])


def generate(runtime, task: dict[str, Any]) -> list[dict[str, Any]]:
    """Greedy answers, `batch_size` prompts at a time. Every variant answers in the same batches, so the
    baseline comparison is like for like; a batch's padding can move a near-tie by rounding, which
    batch_size: 1 avoids at the cost of one prompt at a time."""
    rows = load_prompts(task["prompts"])
    prompts = [prompt_ids(runtime.tokenizer, row["prompt"], task["chat_template"]) for row in rows]
    answers = runtime.generate_each(prompts, task["max_new_tokens"], task["batch_size"])
    return [{"doc_id": row["id"], "kind": row["kind"], "prompt_tokens": ids, "output_tokens": new,
             "output": runtime.tokenizer.decode(new, skip_special_tokens=True)}
            for row, ids, new in zip(rows, prompts, answers)]


@no_grad
def perplexity_under(runtime, items: list[dict[str, Any]]) -> float:
    """exp(mean negative log-likelihood of the output tokens given their prompt) under `runtime`'s model."""
    import torch

    nll, count = 0.0, 0
    for item in items:
        ids, n_new = item["prompt_tokens"] + item["output_tokens"], len(item["output_tokens"])
        if n_new == 0:
            continue
        logits = runtime.forward(torch.tensor([ids]))[0, -n_new - 1:-1].float()
        targets = torch.tensor(item["output_tokens"], device=logits.device)
        nll -= torch.log_softmax(logits, -1).gather(1, targets[:, None]).sum().item()
        count += n_new
    return math.exp(nll / count) if count else float("nan")


def agreement(items: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, float]:
    """Identical answers, and tokens shared before the first divergence (share of the reference's length)."""
    by_id = {r["doc_id"]: r for r in reference}
    exact, prefix = [], []
    for item in items:
        ref = by_id[item["doc_id"]]["output_tokens"]
        mine = item["output_tokens"]
        exact.append(mine == ref)
        shared = next((i for i, (a, b) in enumerate(zip(mine, ref)) if a != b), min(len(mine), len(ref)))
        prefix.append(shared / len(ref) if ref else float(not mine))
    return {"exact_match_vs_baseline": sum(exact) / len(exact),
            "prefix_agreement_vs_baseline": sum(prefix) / len(prefix)}


def read_items(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]
