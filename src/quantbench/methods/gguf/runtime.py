"""The GGUF backend's runtime: a llama.cpp model (llama-cpp-python) behind quantbench's Runtime.

Perplexity, generation and the benchmark call every variant through the same Runtime operations, so
every backend is measured by the same code. llama-cpp-python's `Llama` runs one sequence at a time,
so a batch is evaluated row after row (`batch_mode = "sequential"`, recorded in benchmark rows).

Token ids come from the artifact's Hugging Face tokenizer; llama.cpp's own tokenizer matches it
for the models we convert (DESIGN.md), and using one tokenizer keeps every backend's inputs equal.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path

import numpy as np
import torch

from ...errors import DataError
from ..runtime import Runtime


class LlamaCppRuntime(Runtime):
    """One llama.cpp context with every position's logits kept, reusing the shared prefix of calls."""

    batch_mode = "sequential"

    def __init__(self, path: Path, tokenizer, device: str, *, n_ctx: int, threads: int | None = None):
        import llama_cpp

        super().__init__(tokenizer, device)
        threads = threads or torch.get_num_threads()
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=min(n_ctx, 512), logits_all=True,
                                   n_gpu_layers=-1 if device == "cuda" else 0, n_threads=threads,
                                   n_threads_batch=threads, seed=0,
                                   verbose=bool(os.environ.get("QUANTBENCH_LLAMA_VERBOSE")))
        # close before interpreter shutdown tears down the ctypes bindings that llama_cpp's __del__ needs
        weakref.finalize(self, self.llm.close)
        self.n_ctx = n_ctx
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(self.llm.model)
        self.eos_token_id = self.llm.token_eos()

    def logits(self, tokens: list[int], reuse_cache: bool = True) -> np.ndarray:
        """Logits after each token of `tokens` (row i predicts token i+1), shape (len(tokens), vocab).

        With `reuse_cache`, tokens already evaluated as a prefix of the previous call are not evaluated
        again (lm-eval's shared contexts, decoding steps); without it everything is computed afresh,
        as a transformers forward pass does. The returned array is a view the next call overwrites.
        """
        if not tokens:
            raise ValueError("nothing to evaluate: empty token list")
        if len(tokens) > self.n_ctx:
            raise DataError(f"{len(tokens)} tokens do not fit the llama.cpp context of {self.n_ctx}; "
                             "raise the method's n_ctx")
        llm = self.llm
        shared = 0
        for old, new in zip(llm.input_ids[:llm.n_tokens if reuse_cache else 0].tolist(), tokens):
            if old != new:
                break
            shared += 1
        shared = min(shared, len(tokens) - 1)  # re-evaluate at least the last token: its logits are the point
        llm.n_tokens = shared  # eval() drops the cache after n_tokens first
        llm.eval(tokens[shared:])
        return llm.scores[:len(tokens)]

    def forward(self, input_ids: torch.Tensor, logits_to_keep: int = 0) -> torch.Tensor:
        rows = []
        for row in input_ids.tolist():
            logits = self.logits(row, reuse_cache=False)  # timed as a forward pass: no cache from earlier calls
            rows.append(torch.from_numpy(np.array(logits[-logits_to_keep:] if logits_to_keep else logits)))
        return torch.stack(rows)

    def generate(self, input_ids: torch.Tensor, *, max_new_tokens: int, min_new_tokens: int = 0) -> torch.Tensor:
        """Greedy continuation of each row, as transformers' generate(do_sample=False) returns it."""
        rows = [self.greedy(row, max_new_tokens, min_new_tokens) for row in input_ids.tolist()]
        width = max(map(len, rows))
        return torch.tensor([r + [self.eos_token_id] * (width - len(r)) for r in rows])

    def greedy(self, tokens: list[int], max_new_tokens: int, min_new_tokens: int = 0,
               stop=lambda new: False) -> list[int]:
        """`tokens` plus up to `max_new_tokens` argmax tokens; ends at EOS (after `min_new_tokens`) or `stop`."""
        out = list(tokens)
        for step in range(max_new_tokens):
            scores = self.logits(out, reuse_cache=step > 0)[-1]  # the prompt afresh, then one token per step
            if step < min_new_tokens:
                scores = scores.copy()
                scores[self.eos_token_id] = -np.inf
            token = int(np.argmax(scores))
            out.append(token)
            if token == self.eos_token_id or stop(out[len(tokens):]):
                break
        return out

    def lm_eval(self, batch_size: int):
        from .lm_eval_adapter import LlamaCppLM

        return LlamaCppLM(self)  # one sequence at a time; shared contexts come from its cache

    def close(self) -> None:
        self.llm.close()
