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

import torch

from . import tasks


def load_prompts(name: str) -> list[dict[str, str]]:
    """Prompts as {id, kind, prompt} from the shipped qb_prompts or a path:/file.jsonl."""
    rows = [json.loads(line) for line in tasks.prompts_path(name).read_text().splitlines() if line.strip()]
    return [{"id": str(r["id"]), "kind": r.get("kind", ""), "prompt": r["prompt"]} for r in rows]


def prompt_ids(tokenizer, prompt: str, chat_template: bool) -> list[int]:
    if not chat_template:
        return tokenizer(prompt, add_special_tokens=True).input_ids
    if not tokenizer.chat_template:
        raise ValueError("chat_template: true, but this model's tokenizer has no chat template; "
                         "set chat_template: false for a base model")
    return list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                              tokenize=True, return_dict=True)["input_ids"])


def generate(model, tokenizer, task: dict[str, Any], device: str) -> list[dict[str, Any]]:
    """Greedy answers, one prompt at a time (no padding, so no batch-dependent numerics)."""
    out = []
    for row in load_prompts(task["prompts"]):
        ids = prompt_ids(tokenizer, row["prompt"], task["chat_template"])
        with torch.no_grad():
            full = model.generate(torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids),
                                  dtype=torch.long, device=device), max_new_tokens=task["max_new_tokens"],
                                  do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        new = full[0, len(ids):].tolist()
        out.append({"doc_id": row["id"], "kind": row["kind"], "prompt_tokens": ids, "output_tokens": new,
                    "output": tokenizer.decode(new, skip_special_tokens=True)})
    return out


def perplexity_under(model, items: list[dict[str, Any]], device: str) -> float:
    """exp(mean negative log-likelihood of the output tokens given their prompt) under `model`."""
    nll, count = 0.0, 0
    for item in items:
        ids, n_new = item["prompt_tokens"] + item["output_tokens"], len(item["output_tokens"])
        if n_new == 0:
            continue
        with torch.no_grad():
            logits = model(torch.tensor([ids], device=device)).logits[0, -n_new - 1:-1].float()
        targets = torch.tensor(item["output_tokens"], device=device)
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


def summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"n_items": len(items), "output_tokens_mean": sum(len(i["output_tokens"]) for i in items) / len(items)}


def read_items(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]
