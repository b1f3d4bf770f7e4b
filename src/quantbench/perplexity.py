"""Token-level perplexity over concatenated text with a sliding window (the papers' convention)."""

from __future__ import annotations

import math

import torch


@torch.inference_mode()
def token_perplexity(model, tokenizer, text: str, context: int, stride: int, device: str) -> dict:
    """Score each token at most once, with up to `context` tokens of window before it.

    Windows advance by `stride`; tokens already scored by the previous window serve only as context.
    With stride < context every token after the first is scored; with stride == context (disjoint
    windows) each window's first token has no context and is skipped. `tokens_scored` is the count.
    """
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]
    nll, scored, end_prev = 0.0, 0, 1  # the first token has no context and is never scored
    for begin in range(0, len(ids) - 1, stride):
        end = min(begin + context, len(ids))
        window = ids[begin:end].unsqueeze(0).to(device)
        logprobs = torch.log_softmax(model(window).logits[0, :-1].float(), dim=-1)
        targets = window[0, 1:]
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
