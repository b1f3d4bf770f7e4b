"""A variant loaded for inference: the few operations the stages run on it, whatever library runs it.

Tasks, the benchmark and the heads call only these; each backend's `load` returns a Runtime.
`TorchRuntime` serves every backend whose model is a transformers model (the quantized layers are
torch modules); the GGUF backend brings its own over llama.cpp.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..errors import Unsupported
from .kv_cache import bytes_per_token


class Runtime(ABC):
    # parallel: a batch runs as one forward pass per step; sequential: row after row
    batch_mode: ClassVar[str] = "parallel"

    def __init__(self, tokenizer, device: str):
        self.tokenizer = tokenizer
        self.device = device

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.tokenizer.eos_token_id

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Token ids the model takes (random benchmark prompts are drawn from them)."""

    @abstractmethod
    def forward(self, input_ids: torch.Tensor, logits_to_keep: int = 0) -> torch.Tensor:
        """Logits (batch, positions, vocab) after each token; of the last `logits_to_keep` positions if > 0."""

    @abstractmethod
    def generate(self, input_ids: torch.Tensor, *, max_new_tokens: int, min_new_tokens: int = 0) -> torch.Tensor:
        """Greedy continuation of each (unpadded) row: the prompt followed by the new tokens."""

    def generate_each(self, prompts: list[list[int]], max_new_tokens: int, batch_size: int) -> list[list[int]]:
        """Greedy new tokens of prompts of any lengths, `batch_size` at a time; each ends at its first EOS."""
        out = []
        for start in range(0, len(prompts), batch_size):
            out += self.generate_batch(prompts[start:start + batch_size], max_new_tokens)
        return out

    @abstractmethod
    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Greedy new tokens of one batch of prompts of any lengths; each ends at its first EOS."""

    def prefill(self, input_ids: torch.Tensor) -> None:
        """The prompt through the model as generation starts it: only the last position's logits."""
        self.forward(input_ids, logits_to_keep=1)

    @abstractmethod
    def lm_eval(self, batch_size: int):
        """An lm-eval `LM` over this variant."""

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states (batch, positions, hidden), after the last norm."""
        raise Unsupported(f"{type(self).__name__} does not expose the model's hidden states")

    def sync(self) -> None:
        """Wait for queued device work, so a timer reads the work's end."""

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self) -> dict[str, float]:
        """Peak device memory since reset_peak_memory(), as run-table columns (MiB); {} where not counted."""
        return {}

    def kv_cache_bytes_per_token(self, *, prompt_tokens: int, new_tokens: int) -> float | None:
        """Bytes of attention keys and values per cached token once `new_tokens` were generated from a
        `prompt_tokens` prompt; None where unknown."""
        return None

    def close(self) -> None:
        """Free the model's memory; the runtime cannot be used afterwards."""


class TorchRuntime(Runtime):
    """A transformers model (quantized or not) on one device. no_grad rather than inference_mode: quanto's
    packed int4/int2 weights fail under inference mode ("Cannot set version_counter for inference tensor")."""

    def __init__(self, model, tokenizer, device: str, kv_cache: dict[str, Any] | None = None):
        super().__init__(tokenizer, device)
        self.model = model
        self.kv_cache = kv_cache  # the method's kv_cache option, already set in the model's generation config

    def kv_cache_bytes_per_token(self, *, prompt_tokens: int, new_tokens: int) -> float:
        return bytes_per_token(self.model.config, self.model.dtype.itemsize, self.kv_cache,
                               prompt_tokens=prompt_tokens, new_tokens=new_tokens)

    @property
    def pad_token_id(self) -> int:
        if self.tokenizer is not None:
            return super().pad_token_id
        config = self.model.config  # a random: model has no tokenizer
        pad = config.pad_token_id if config.pad_token_id is not None else config.eos_token_id
        return pad[0] if isinstance(pad, list) else pad

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, logits_to_keep: int = 0) -> torch.Tensor:
        return self.model(input_ids.to(self.device), logits_to_keep=logits_to_keep).logits

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, *, max_new_tokens: int, min_new_tokens: int = 0) -> torch.Tensor:
        input_ids = input_ids.to(self.device)
        extra = {"min_new_tokens": min_new_tokens} if min_new_tokens else {}
        return self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                                   do_sample=False, pad_token_id=self.pad_token_id, **extra)

    @torch.no_grad()
    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Prompts padded on the left (transformers' decoder-only convention: the attention mask hides the
        padding and positions start at each prompt's first token)."""
        eos = self.model.generation_config.eos_token_id
        stops = set(eos if isinstance(eos, list) else [eos]) - {None}
        width = max(map(len, prompts))
        ids = torch.tensor([[self.pad_token_id] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        new = self.model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                  pad_token_id=self.pad_token_id)[:, width:].tolist()
        return [row[:next((i + 1 for i, t in enumerate(row) if t in stops), len(row))] for row in new]

    def lm_eval(self, batch_size: int):
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=self.model, tokenizer=self.tokenizer, batch_size=batch_size)

    @torch.no_grad()
    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.base_model(input_ids=input_ids.to(self.device),
                                     attention_mask=attention_mask.to(self.device)).last_hidden_state

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def reset_peak_memory(self) -> None:
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def peak_memory(self) -> dict[str, float]:
        if self.device != "cuda":
            return {}
        return {"peak_gpu_allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
                "peak_gpu_reserved_mb": torch.cuda.max_memory_reserved() / 2**20}

    def close(self) -> None:
        del self.model
        if self.device == "cuda":
            torch.cuda.empty_cache()


def load_tokenizer(artifact: Path):
    """The artifact's tokenizer, with EOS as padding where it has no pad token (lm-eval and batches pad);
    None for a random: model's artifact, which has none."""
    from transformers import AutoTokenizer

    if not (Path(artifact) / "tokenizer_config.json").is_file():
        return None
    tokenizer = AutoTokenizer.from_pretrained(artifact)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
