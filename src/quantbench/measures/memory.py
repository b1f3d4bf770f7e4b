"""The memory a variant itself takes while generating: what it adds over the process, and its KV cache."""

from __future__ import annotations

from typing import Any

from ..columns import B, Column
from .base import Batch, Measure


class ModelMemory(Measure):
    columns = (
        Column("model_rss_mb", "float", "MiB", (B,), "memory", "resident memory the variant adds at the batch's "
               "peak: peak_rss_mb minus the process's before the model loaded (weights as loaded, plus generation's "
               "cache and activations)", report="model RSS MiB"),
    )

    def measure(self, batch: Batch, shared: None) -> dict[str, Any]:
        peak, before = batch.metrics["peak_rss_mb"], batch.variant.rss_before_mb
        return {"model_rss_mb": None if peak is None or before is None else peak - before}


class KVCacheBytes(Measure):
    columns = (
        Column("kv_cache_bytes_per_token", "float", "B", (B,), "memory", "bytes of keys and values per cached token "
               "over all layers at the end of the timed generation (prompt_tokens + new_tokens - 1 tokens): with "
               "the kv_cache option, its quantized tokens at its bits (scales not counted) and the newest "
               "residual_length in the activation dtype; else all in the activation dtype (llama.cpp: f16)"),
    )

    def setup(self, variant, settings) -> float | None:
        return variant.runtime.kv_cache_bytes_per_token(prompt_tokens=settings.prompt_tokens,
                                                        new_tokens=settings.new_tokens)

    def measure(self, batch: Batch, shared: float | None) -> dict[str, Any]:
        return {"kv_cache_bytes_per_token": shared}
