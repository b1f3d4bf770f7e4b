"""Token-level perplexity over concatenated text with a sliding window (the papers' convention)."""

from __future__ import annotations

import math
from typing import Any

import torch

from .base import Inputs, Scores, TaskType
from .data import file_problem, text_path


class Perplexity(TaskType):
    name = "perplexity"
    schema = {
        "text": {"type": "string", "description": "qb_* shipped text, or path:/file.txt"},
        "context": {"type": "integer", "minimum": 8, "default": 512},
        "stride": {"type": "integer", "minimum": 1, "default": 256},
    }
    required = ("text",)
    columns = ("perplexity_token", "nll_sum", "tokens_scored", "context", "stride")

    def problem(self, task: dict[str, Any]) -> str | None:
        if task["stride"] > task["context"]:
            return f"stride {task['stride']} is larger than context {task['context']}: tokens would be skipped"
        return file_problem(text_path, task["text"])

    def evaluate(self, runtime, task: dict[str, Any], inputs: Inputs) -> Scores:
        text = text_path(task["text"]).read_text()
        return Scores(token_perplexity(runtime, text, task["context"], task["stride"]), "perplexity_token")


@torch.no_grad()
def token_perplexity(runtime, text: str, context: int, stride: int) -> dict:
    """Score each token at most once, with up to `context` tokens of window before it.

    Windows advance by `stride`; tokens already scored by the previous window serve only as context.
    With stride < context every token after the first is scored; with stride == context (disjoint
    windows) each window's first token has no context and is skipped. `tokens_scored` is the count.
    """
    ids = runtime.tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]
    nll, scored, end_prev = 0.0, 0, 1  # the first token has no context and is never scored
    for begin in range(0, len(ids) - 1, stride):
        end = min(begin + context, len(ids))
        window = ids[begin:end].unsqueeze(0)
        logprobs = torch.log_softmax(runtime.forward(window)[0, :-1].float(), dim=-1)
        targets = window[0, 1:].to(logprobs.device)
        token_lp = logprobs.gather(1, targets.unsqueeze(1)).squeeze(1)
        fresh = min(end - end_prev, len(token_lp))  # targets not scored by an earlier window
        nll -= token_lp[-fresh:].sum().item()
        scored += fresh
        end_prev = end
        if end == len(ids):
            break
    return {
        "perplexity_token": math.exp(nll / scored),
        "nll_sum": nll,
        "tokens_scored": scored,
        "context": context,
        "stride": stride,
    }
