"""The GGUF backend's runtime: a llama.cpp model (llama-cpp-python) behind quantbench's Runtime.

Perplexity, generation and the benchmark call every variant through the same Runtime operations, so
every backend is measured by the same code. Two llama.cpp contexts share the loaded model:
- a forward pass (perplexity) and lm-eval's generate_until use llama-cpp-python's `Llama` with every
  position's logits kept, one sequence at a time, reusing the cache for shared prefixes;
- generation (prefill, generate) and lm-eval's log-likelihoods run the way llama.cpp serves and
  benchmarks itself (llama-batched-bench): one `llama_batch` holding every row as its own sequence,
  logits only where they are used (`batch_mode = "parallel"`).

Token ids come from the artifact's Hugging Face tokenizer; llama.cpp's own tokenizer matches it
for the models we convert (DESIGN.md), and using one tokenizer keeps every backend's inputs equal.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from pathlib import Path

import numpy as np
import torch

from ...errors import DataError
from ..runtime import Runtime


# ggml's AMX weight buffers (Sapphire Rapids and later) crash in ggml_backend_amx_mul_mat on the first decode
# (ggml-org/llama.cpp#20824, open; reproduced here with llama-cpp-python 0.3.36 on Q8_0/Q4_K_M/Q4_0/Q5_0/Q6_K) and
# give wrong Q4_0/Q4_1 results (#16315). They are llama.cpp's "extra buffer types", which also hold its AVX2/AVX-512
# repacked weights: on a CPU with AMX both are left off, as llama.cpp's own --no-repack does.
AMX_CAVEAT = ("llama.cpp's AMX and repacked weight buffers are off on this AMX CPU (they crash in "
              "ggml_backend_amx_mul_mat, llama.cpp#20824): llama.cpp's default build may run faster where they work")


@functools.cache
def amx_cpu() -> bool:
    """Whether the CPU backend of the installed llama.cpp would put weights in AMX buffers."""
    import llama_cpp

    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode()


@contextlib.contextmanager
def _model_params(**fields):
    """llama_cpp.Llama takes no argument for some llama_model_params fields (use_extra_bufts): set them on the
    defaults its constructor reads, for that constructor only."""
    import llama_cpp.llama_cpp as bindings

    default = bindings.llama_model_default_params

    def params():
        values = default()
        for name, value in fields.items():
            setattr(values, name, value)
        return values

    bindings.llama_model_default_params = params
    try:
        yield
    finally:
        bindings.llama_model_default_params = default


class LlamaCppRuntime(Runtime):
    """A GGUF model in llama.cpp: a scoring context with every position's logits, and batched generation."""

    def __init__(self, path: Path, tokenizer, device: str, *, n_ctx: int, threads: int | None = None):
        import llama_cpp

        super().__init__(tokenizer, device)
        threads = threads or torch.get_num_threads()
        self.threads = threads
        self._decoder: BatchedDecoder | None = None
        with _model_params(use_extra_bufts=not amx_cpu()):
            self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=min(n_ctx, 512), logits_all=True,
                                       n_gpu_layers=-1 if device == "cuda" else 0, n_threads=threads,
                                       n_threads_batch=threads, seed=0,
                                       verbose=bool(os.environ.get("QUANTBENCH_LLAMA_VERBOSE")))
        # close before interpreter shutdown tears down the ctypes bindings that llama_cpp's __del__ needs
        weakref.finalize(self, self.llm.close)
        self.n_ctx = n_ctx
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(self.llm.model)
        self.eos_token_id = self.llm.token_eos()

    def kv_cache_bytes_per_token(self, *, prompt_tokens: int, new_tokens: int) -> float:
        """From the GGUF's metadata, in llama.cpp's default f16 cache (type_k, type_v), whatever the length."""
        meta = self.llm.metadata
        arch = meta["general.architecture"]
        heads = int(meta[f"{arch}.attention.head_count"])
        kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
        head_dim = int(meta[f"{arch}.embedding_length"]) // heads
        key, value = (int(meta.get(f"{arch}.attention.{k}_length", head_dim)) for k in ("key", "value"))
        return float(int(meta[f"{arch}.block_count"]) * kv_heads * (key + value) * 2)

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

    @property
    def vocab_size(self) -> int:
        return self.llm.n_vocab()

    @property
    def batch_tokens(self) -> int:
        """Tokens one llama_batch of the generation context holds (llama-batched-bench's default n_batch)."""
        return BatchedDecoder.N_BATCH

    def decoder(self, rows: int, tokens: int) -> "BatchedDecoder":
        """A generation context holding `rows` sequences of up to `tokens` tokens (kept while it fits)."""
        if self._decoder is None or not self._decoder.fits(rows, tokens):
            if self._decoder is not None:
                self._decoder.close()
            self._decoder = BatchedDecoder(self.llm, rows, tokens, self.threads)
        return self._decoder

    def prefill(self, input_ids: torch.Tensor) -> None:
        rows = input_ids.tolist()
        self.decoder(len(rows), max(map(len, rows))).prefill(rows)

    def generate(self, input_ids: torch.Tensor, *, max_new_tokens: int, min_new_tokens: int = 0) -> torch.Tensor:
        """Greedy continuation of every row at once, as transformers' generate(do_sample=False) returns it:
        a row that ends with EOS is padded with EOS."""
        rows = input_ids.tolist()
        decoder = self.decoder(len(rows), max(map(len, rows)) + max_new_tokens)
        out = decoder.generate(rows, max_new_tokens, min_new_tokens, self.eos_token_id)
        width = max(map(len, out))
        return torch.tensor([r + [self.eos_token_id] * (width - len(r)) for r in out])

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Each prompt its own sequence of one llama_batch: no padding at all."""
        decoder = self.decoder(len(prompts), max(map(len, prompts)) + max_new_tokens)
        return [row[len(p):] for p, row in zip(prompts, decoder.generate(prompts, max_new_tokens, 0, self.eos_token_id))]

    def sync(self) -> None:
        import llama_cpp

        if self._decoder is not None:
            llama_cpp.llama_synchronize(self._decoder.ctx.ctx)

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

        return LlamaCppLM(self, batch_size)

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
        self.llm.close()


class BatchedDecoder:
    """A llama.cpp context for generation over the loaded model: rows as sequences 0..n-1 of one batch.

    Sized as llama-batched-bench sizes its context for the same work: n_ctx = rows x tokens (rounded up
    to llama.cpp's 256), n_seq_max = rows, n_batch 2048 and n_ubatch 512 (its defaults), the other
    settings llama.cpp's defaults. A batch of more than n_batch tokens goes to llama.cpp in n_batch pieces,
    as llama-batched-bench sends its prompts: one llama_decode of more aborts the process
    (`GGML_ASSERT(n_tokens_all <= cparams.n_batch)`), which no Python code can catch.
    """

    N_BATCH, N_UBATCH = 2048, 512

    def __init__(self, llm, rows: int, tokens: int, threads: int):
        import llama_cpp
        from llama_cpp import _internals

        self.rows, self.tokens = rows, tokens
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context_size(rows, tokens)
        params.n_batch, params.n_ubatch = self.N_BATCH, self.N_UBATCH
        params.n_seq_max = rows
        params.n_threads = params.n_threads_batch = threads
        self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=llm.verbose)
        self.batch = _internals.LlamaBatch(n_tokens=min(rows * tokens, self.N_BATCH), embd=0, n_seq_max=1,
                                           verbose=llm.verbose)
        self.n_vocab = llm.n_vocab()

    def fits(self, rows: int, tokens: int) -> bool:
        return rows <= self.rows and tokens <= self.tokens

    def decode(self, tokens: list[tuple[int, int, int, bool]]) -> dict[int, np.ndarray]:
        """(token, position, sequence, keep logits) entries through the model, in pieces of at most n_batch:
        the kept logits by the entry's index. The last piece's are views that the next decode overwrites;
        an earlier piece's are copies, taken before the next piece overwrites them."""
        kept: dict[int, np.ndarray] = {}
        for start in range(0, len(tokens), self.N_BATCH):
            piece = tokens[start:start + self.N_BATCH]
            self._decode_piece(piece)
            last = start + self.N_BATCH >= len(tokens)
            for i, (*_, logits) in enumerate(piece):
                if logits:
                    kept[start + i] = self.logits(i) if last else self.logits(i).copy()
        return kept

    def _decode_piece(self, tokens: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of at most n_batch entries."""
        import llama_cpp

        batch = self.batch.batch
        batch.n_tokens = len(tokens)
        for i, (token, position, sequence, logits) in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position, 1
            batch.seq_id[i][0], batch.logits[i] = sequence, logits
        status = llama_cpp.llama_decode(self.ctx.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status} for {len(tokens)} tokens "
                               f"(context {llama_cpp.llama_n_ctx(self.ctx.ctx)})")

    def prefill(self, rows: list[list[int]]) -> dict[int, np.ndarray]:
        """Every row's prompt from an empty cache; the logits of each row's last token, by row."""
        import llama_cpp

        llama_cpp.llama_memory_clear(self.ctx.memory, True)
        logits = self.decode([(token, position, j, position == len(row) - 1)
                              for j, row in enumerate(rows) for position, token in enumerate(row)])
        return dict(enumerate(logits.values()))  # one kept entry per row, in row order

    def score(self, rows: list[tuple[list[int], int]]) -> list[np.ndarray]:
        """Each row's (tokens, keep) from an empty cache: the logits of its last `keep` positions."""
        import llama_cpp

        llama_cpp.llama_memory_clear(self.ctx.memory, True)
        entries, kept = [], []
        for j, (tokens, keep) in enumerate(rows):
            kept.append(range(len(entries) + len(tokens) - keep, len(entries) + len(tokens)))
            entries += [(token, position, j, position >= len(tokens) - keep) for position, token in enumerate(tokens)]
        logits = self.decode(entries)
        return [np.stack([logits[i] for i in indices]) for indices in kept]

    def logits(self, i: int) -> np.ndarray:
        """The logits of the last llama_decode's i-th entry (a view the next decode overwrites)."""
        import llama_cpp

        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx.ctx, i), shape=(self.n_vocab,))

    def generate(self, rows: list[list[int]], max_new_tokens: int, min_new_tokens: int, eos: int) -> list[list[int]]:
        """Greedy steps for all unfinished rows at once; a row stops at EOS (after `min_new_tokens`)."""
        scores = self.prefill(rows)  # row -> its logits
        out = [list(row) for row in rows]
        for step in range(max_new_tokens):
            for j, logits in scores.items():
                if step < min_new_tokens:
                    logits = logits.copy()
                    logits[eos] = -np.inf
                out[j].append(int(np.argmax(logits)))
            live = [j for j in scores if out[j][-1] != eos]
            if step == max_new_tokens - 1 or not live:
                break
            step_logits = self.decode([(out[j][-1], len(out[j]) - 1, j, True) for j in live])
            scores = dict(zip(live, step_logits.values()))
        return out

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()


def context_size(rows: int, tokens: int) -> int:
    """KV cells for `rows` sequences of `tokens` tokens, rounded up to llama.cpp's padding of 256."""
    return -(-rows * tokens // 256) * 256
