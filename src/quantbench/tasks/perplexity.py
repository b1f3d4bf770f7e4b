"""Token-level perplexity over concatenated text with a sliding window (the papers' convention), and the
KL divergence of each variant's next-token distributions from the baseline's on the same tokens.

The divergence is llama.cpp's `perplexity --kl-divergence` measure: it sees a change in the whole
distribution where accuracy on a hundred items ties. The baseline's distributions are kept once per
model and task (prepare, on the baseline) as each scored token's `top_k` most likely tokens and the
probability left over; a variant's divergence is then the KL divergence between the two distributions
coarsened to those top_k tokens plus one "rest" bucket. Coarsening can only lower a KL divergence
(data-processing inequality), so the stored figure is a lower bound of the full one; with top_k = the
vocabulary it is exact.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import ConfigError, DataError
from .base import Inputs, Scores, TaskType, no_grad, quality
from .data import file_problem, text_path

if TYPE_CHECKING:
    import torch

REFERENCE = "reference.safetensors"


class Perplexity(TaskType):
    name = "perplexity"
    schema = {
        "text": {"type": "string", "description": "qb_* shipped text, or path:/file.txt"},
        "context": {"type": "integer", "minimum": 8, "default": 512},
        "stride": {"type": "integer", "minimum": 1, "default": 256},
        "bos": {"enum": [False, True, "window"], "default": False,
                "description": "true: start the text with the tokenizer's BOS token, as GPTQ's and AWQ's wikitext "
                               "scripts do; window: start every window with it where the tokenizer puts BOS "
                               "before a text, as llama.cpp's perplexity does (Gemma's does, SmolLM2's does not); "
                               "false: the text's own tokens only"},
        "kld_top_k": {"type": "integer", "minimum": 1, "default": 256,
                      "description": "the baseline's most likely next tokens kept per scored token for the KL "
                                     "divergence (plus the probability of all others)"},
    }
    required = ("text",)
    columns = (
        quality("perplexity_token", "float", "token-level perplexity over the concatenated text, sliding window (the "
                "papers' convention); lower is better"),
        quality("nll_sum", "float", "summed negative log-likelihood behind perplexity_token", "nat"),
        quality("tokens_scored", "int", "tokens scored by perplexity_token"),
        quality("context", "int", "perplexity window length", "token"),
        quality("stride", "int", "perplexity window step", "token"),
        quality("kld_mean", "float", "mean KL divergence of the variant's next-token distribution from the "
                "baseline's over the perplexity text's scored tokens (llama.cpp's perplexity --kl-divergence; the "
                "baseline's top kld_top_k tokens plus the rest: a lower bound of the full divergence)", "nat"),
        quality("kld_median", "float", "median per-token KL divergence from the baseline", "nat"),
        quality("kld_p99", "float", "99th percentile of the per-token KL divergence", "nat"),
        quality("kld_max", "float", "largest per-token KL divergence", "nat"),
        quality("top1_agreement", "float", "share of scored tokens whose most likely next token is the baseline's "
                "(llama.cpp's 'same top')"),
    )
    prepares = True

    def problem(self, task: dict[str, Any]) -> str | None:
        if task["stride"] > task["context"]:
            return f"stride {task['stride']} is larger than context {task['context']}: tokens would be skipped"
        return file_problem(text_path, task["text"])

    def describe(self, task: dict[str, Any]) -> str:
        bos = {False: "", True: ", BOS first", "window": ", BOS first in every window"}[task["bos"]]
        return (f"token perplexity over {task['text']} (context {task['context']}, stride {task['stride']}{bos}) and "
                f"KL divergence from the baseline (its top {task['kld_top_k']} tokens)")

    def data_files(self, task: dict[str, Any]) -> list[str]:
        return [task["text"].removeprefix("path:")] if task["text"].startswith("path:") else []

    def prepare(self, runtime, task: dict[str, Any], out: Path) -> dict[str, Any]:
        """The baseline's next-token distributions at every scored token, as top-k log-probabilities."""
        import torch
        from safetensors.torch import save_file

        k = task["kld_top_k"]
        parts: dict[str, list[torch.Tensor]] = {"top_logprobs": [], "top_indices": [], "rest_logprob": [],
                                                "targets": []}
        for logprobs, targets in scored_logprobs(runtime, text_ids(runtime.tokenizer, task), task["context"],
                                                 task["stride"], window_bos(runtime.tokenizer, task)):
            top = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
            parts["top_logprobs"].append(top.values)
            parts["top_indices"].append(top.indices.int())
            parts["rest_logprob"].append(rest_logprob(logprobs, top.indices))
            parts["targets"].append(targets.int())
        reference = {name: torch.cat(values).contiguous().cpu() for name, values in parts.items()}
        save_file(reference, out / REFERENCE)
        rest = reference["rest_logprob"].double().exp()
        return {"tokens": len(reference["targets"]), "top_k": k, "rest_mass_mean": float(rest.mean()),
                "rest_mass_max": float(rest.max())}

    def evaluate(self, runtime, task: dict[str, Any], inputs: Inputs) -> Scores:
        reference = None
        if inputs.prepared is not None:
            from safetensors.torch import load_file

            reference = load_file(inputs.prepared / REFERENCE)
        metrics, windows = window_scores(runtime, text_ids(runtime.tokenizer, task), task["context"], task["stride"],
                                         reference, window_bos(runtime.tokenizer, task))
        return Scores(metrics, "perplexity_token", items=windows)


def text_ids(tokenizer, task: dict[str, Any]) -> list[int]:
    """The task's text as token ids, with the BOS token first if the task asks for it."""
    ids = tokenizer(text_path(task["text"]).read_text(), add_special_tokens=False).input_ids
    if task["bos"] is not True:
        return ids
    if tokenizer.bos_token_id is None:
        raise ConfigError("bos: true, but this model's tokenizer has no BOS token; set bos: false")
    return [tokenizer.bos_token_id, *ids]


def window_bos(tokenizer, task: dict[str, Any]) -> int | None:
    """The token every window starts with under `bos: window`: BOS where the tokenizer puts it before a text."""
    if task["bos"] != "window" or tokenizer.bos_token_id is None:
        return None
    return tokenizer.bos_token_id if tokenizer("a").input_ids[0] == tokenizer.bos_token_id else None


@no_grad
def scored_logprobs(runtime, ids: list[int], context: int, stride: int,
                    bos: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Per window: (log-probabilities, targets) of the tokens it scores, each token scored once, with up to
    `context` tokens of window before it.

    Windows advance by `stride`; tokens already scored by the previous window serve only as context.
    With stride < context every token after the first is scored; with stride == context (disjoint
    windows) each window's first token has no context and is skipped. With `bos`, every window is that
    token and `context - 1` of the text's, and every token is scored: a model trained with BOS at position 0
    loses much without it (Gemma 3 270M: 39.9 without, 19.2 with BOS in every 512-token window).
    """
    import torch

    ids = torch.tensor(ids)
    lead = torch.tensor([] if bos is None else [bos], dtype=ids.dtype)
    end_prev = 1 - len(lead)  # without BOS, the first token has no context and is never scored
    for begin in range(0, len(ids) - 1, stride):
        end = min(begin + context - len(lead), len(ids))
        window = torch.cat([lead, ids[begin:end]]).unsqueeze(0)
        fresh = min(end - end_prev, window.shape[1] - 1)  # targets not scored by an earlier window
        logits = runtime.forward(window)[0, -fresh - 1:-1].float()
        yield torch.log_softmax(logits, dim=-1), window[0, -fresh:].to(logits.device)
        end_prev = end
        if end == len(ids):
            break


def token_perplexity(runtime, ids: list[int], context: int, stride: int,
                     reference: dict[str, torch.Tensor] | None = None, bos: int | None = None) -> dict[str, Any]:
    """Perplexity of `ids`, and with the baseline's `reference` the KL divergence from it per token."""
    return window_scores(runtime, ids, context, stride, reference, bos)[0]


def window_scores(runtime, ids: list[int], context: int, stride: int, reference: dict[str, torch.Tensor] | None = None,
                  bos: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """token_perplexity's metrics, and one item per window (its scored tokens, their summed negative
    log-likelihood and, with a reference, summed KL divergence): what a verdict's block bootstrap resamples."""
    import torch

    nll, scored, kld, same_top, windows = 0.0, 0, [], [], []
    for logprobs, targets in scored_logprobs(runtime, ids, context, stride, bos):
        window_nll = -logprobs.gather(1, targets.unsqueeze(1)).sum().item()
        nll += window_nll
        windows.append({"window": len(windows), "tokens": len(targets), "nll": window_nll})
        if reference is not None:
            part = {name: values[scored:scored + len(targets)].to(logprobs.device)
                    for name, values in reference.items()}
            if not torch.equal(part["targets"].long(), targets):
                raise DataError("the variant's tokens differ from the baseline's on the perplexity text (another "
                                "tokenizer?): the distributions cannot be compared; rerun rule prepare_task")
            kld.append(kl_divergence(part, logprobs))
            same_top.append(logprobs.argmax(-1) == part["top_indices"][:, 0])
            windows[-1]["kld"] = float(kld[-1].sum())
        scored += len(targets)
    metrics = {"perplexity_token": math.exp(nll / scored), "nll_sum": nll, "tokens_scored": scored,
               "context": context, "stride": stride}
    if reference is not None:
        if scored != len(reference["targets"]):
            raise DataError(f"the baseline's reference holds {len(reference['targets'])} tokens, this run scored "
                            f"{scored}; rerun rule prepare_task")
        metrics.update(divergence_summary(torch.cat(kld), torch.cat(same_top)))
    return metrics, windows


def kl_divergence(reference: dict[str, torch.Tensor], logprobs: torch.Tensor) -> torch.Tensor:
    """KL(baseline || variant) per token, over the baseline's top-k tokens plus one bucket for the rest.

    `reference` holds the baseline's top-k log-probabilities, their token ids and the log of the rest's
    probability; `logprobs` the variant's full log-probabilities. Computed in float64.
    """
    import torch

    indices = reference["top_indices"].long()
    p_log = reference["top_logprobs"].double()
    q_log = logprobs.gather(1, indices).double()
    top = (p_log.exp() * (p_log - q_log)).sum(-1)
    p_rest_log = reference["rest_logprob"].double()
    q_rest_log = rest_logprob(logprobs, indices).double()
    rest = torch.where(torch.isinf(p_rest_log), torch.zeros_like(p_rest_log),  # k = vocabulary: nothing left
                       p_rest_log.exp() * (p_rest_log - q_rest_log))
    return (top + rest).clamp_min(0.0)  # rounding can leave -1e-16 where the distributions agree


def rest_logprob(logprobs: torch.Tensor, top_indices: torch.Tensor) -> torch.Tensor:
    """Per row, the log-probability of every token not among `top_indices` (-inf where none is left),
    summed over the full distribution rather than as 1 - sum(top), which cancels catastrophically."""
    return logprobs.scatter(1, top_indices.long(), float("-inf")).logsumexp(dim=-1)


def divergence_summary(kld: torch.Tensor, same_top: torch.Tensor) -> dict[str, float]:
    """llama.cpp's summary of `perplexity --kl-divergence`: mean, median, 99th percentile and maximum of the
    per-token KL divergence, and how often the most likely token is the baseline's ("same top")."""
    import torch

    return {"kld_mean": float(kld.mean()), "kld_median": float(torch.quantile(kld, 0.5)),
            "kld_p99": float(torch.quantile(kld, 0.99)), "kld_max": float(kld.max()),
            "top1_agreement": float(same_top.double().mean())}
