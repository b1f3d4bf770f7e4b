"""The decode rate this machine's memory bandwidth allows each variant, and the share of it achieved: every
decode step reads all weights once for the whole batch, so at most batch x bandwidth / weight bytes tokens/s."""

from __future__ import annotations

import time
from typing import Any

from ..columns import B, Column
from .base import Batch, Measure


class BandwidthBound(Measure):
    columns = (
        Column("weight_bytes_per_step", "int", "B", (B,), "speed", "bytes of weights one decode step reads, from "
               "the artifact (all tensors; less the input embedding where the output layer is separate)",
               report="weights B/step"),
        Column("memory_bandwidth_gbs", "float", "GB/s", (B,), "speed", "this machine's memory bandwidth, measured at "
               "the start of the job (a copy of 256 MiB: bytes read and written per second, best of 5)"),
        Column("bandwidth_bound_tokens_per_s", "float", "token/s", (B,), "speed", "the decode rate the bandwidth "
               "allows: batch_size x memory_bandwidth_gbs / weight_bytes_per_step", report="bound tokens/s"),
        Column("bandwidth_fraction", "float", "", (B,), "speed", "decode_tokens_per_s / bandwidth_bound_tokens_per_s",
               report="of bound"),
    )

    def setup(self, variant, settings) -> tuple[int, float]:
        return variant.backend.weight_bytes(variant.artifact, variant.device), memory_bandwidth_gbs(variant.device)

    def measure(self, batch: Batch, shared: tuple[int, float]) -> dict[str, Any]:
        weight_bytes, bandwidth = shared
        return bandwidth_bound(batch_size=batch.size, weight_bytes=weight_bytes, bandwidth_gbs=bandwidth,
                               decode_tokens_per_s=batch.metrics["decode_tokens_per_s"])


def bandwidth_bound(*, batch_size: int, weight_bytes: int, bandwidth_gbs: float,
                    decode_tokens_per_s: float | None) -> dict[str, float | None]:
    """The decode rate memory bandwidth allows: every decode step reads all weights once for the whole
    batch, so at most batch_size x bandwidth / weight bytes tokens per second; and the share achieved."""
    bound = batch_size * bandwidth_gbs * 1e9 / weight_bytes
    return {"weight_bytes_per_step": weight_bytes, "memory_bandwidth_gbs": bandwidth_gbs,
            "bandwidth_bound_tokens_per_s": bound,
            "bandwidth_fraction": decode_tokens_per_s / bound if decode_tokens_per_s else None}


def memory_bandwidth_gbs(device: str, mib: int = 256, repeats: int = 5) -> float:
    """Bytes a copy of a `mib` MiB tensor reads and writes per second (the STREAM copy convention), best of
    `repeats`, with torch's threads on the CPU or the GPU's copy engine."""
    import torch

    src = torch.ones(mib * 2**20 // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        dst.copy_(src)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * src.element_size() / best / 1e9
