"""lm-eval's model interface over a llama.cpp model, so GGUF variants run the very same task definitions.

It follows lm-eval's HFLM wherever a choice changes a score: the same tokenizer call, BOS (else EOS)
as the prefix of an empty context, left truncation to `max_length`, disjoint rolling windows of
`max_length` for perplexity. `max_length` is the llama.cpp context (the method's `n_ctx`) if shorter than
the model's trained context, which HFLM takes: only inputs longer than n_ctx are cut differently.
lm-eval's own `gguf` model is not used: it talks to a llama.cpp server whose echoed log-probabilities
are shifted one position (DESIGN.md), and it would need a server per job.
"""

from __future__ import annotations

import torch
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import has_bos_prefix
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm


class LlamaCppLM(TemplateLM):
    def __init__(self, model, batch_size: int):
        """`model`: the variant's LlamaCppRuntime; `batch_size`: requests scored together."""
        super().__init__()
        self.model = model
        self.batch_size = batch_size
        self.tokenizer = model.tokenizer
        self.max_length = min(model.n_ctx, model.n_ctx_train)  # HFLM stops at the trained context too

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.eot_token_id

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        if add_special_tokens is None:  # HFLM: the tokenizer's default, unless the text already starts with BOS
            add_special_tokens = not has_bos_prefix(string, self.tokenizer.decode(self.prefix_token_id))
        return self.tokenizer.encode(string, add_special_tokens=add_special_tokens)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        """(sum of log p(continuation | context), whether greedy decoding yields the continuation).

        Requests are scored `batch_size` at a time, longest first, each as its own sequence of one llama_batch
        (at most llama.cpp's n_batch tokens), with logits kept only where a continuation token is predicted.
        """
        windows = [(context + continuation)[-(self.max_length + 1):][:-1] for _, context, continuation in requests]
        order = sorted(range(len(requests)), key=lambda i: -len(windows[i]))
        answers: list[tuple[float, bool] | None] = [None] * len(requests)
        with tqdm(total=len(requests), desc="llama.cpp loglikelihood", disable=disable_tqdm) as progress:
            for group in self._groups(order, windows):
                rows = [(windows[i], len(requests[i][2])) for i in group]
                for i, logits in zip(group, self.model.decoder(len(rows), len(rows[0][0])).score(rows)):
                    key, _, continuation = requests[i]
                    logits, target = torch.from_numpy(logits), torch.tensor(continuation)
                    logprobs = torch.log_softmax(logits, dim=-1).gather(1, target[:, None])
                    answers[i] = (float(logprobs.sum()), bool((logits.argmax(dim=-1) == target).all()))
                    if key is not None:
                        self.cache_hook.add_partial("loglikelihood", key, answers[i])
                progress.update(len(group))
        return answers

    def _groups(self, order: list[int], windows: list[list[int]]):
        """Consecutive requests of `order`, at most batch_size of them and llama.cpp's n_batch tokens together
        (a longer single request is a batch of its own)."""
        group, tokens = [], 0
        for i in order:
            if group and (len(group) == self.batch_size or tokens + len(windows[i]) > self.model.batch_tokens):
                yield group
                group, tokens = [], 0
            group.append(i)
            tokens += len(windows[i])
        if group:
            yield group

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        totals = []
        for request in tqdm(requests, desc="llama.cpp rolling loglikelihood", disable=disable_tqdm):
            (text,) = request.args
            windows = [make_disjoint_window(w) for w in get_rolling_token_windows(
                token_list=self.tok_encode(text), prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length, context_len=1)]
            total = sum(ll for ll, _ in self._loglikelihood_tokens([(None, *w) for w in windows], disable_tqdm=True))
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
            totals.append(total)
        return totals

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy text until one of the request's `until` strings (cut there), EOS or `max_gen_toks`."""
        outputs = []
        for request in tqdm(requests, desc="llama.cpp generate", disable=disable_tqdm):
            context, kwargs = request.args
            if kwargs.get("do_sample"):
                raise ValueError("only greedy generation is supported for llama.cpp models")
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = kwargs.get("max_gen_toks", 256)
            prompt = self.tok_encode(context)[-(self.max_length - max_new):]
            tokens = self.model.greedy(prompt, max_new, stop=lambda new: any(u in self.tokenizer.decode(new)
                                                                             for u in until))
            text = self.tokenizer.decode(tokens[len(prompt):], skip_special_tokens=True)
            for stop in until:
                text = text.split(stop)[0]
            self.cache_hook.add_partial("generate_until", (context, kwargs), text)
            outputs.append(text)
        return outputs

