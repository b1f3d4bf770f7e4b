"""Speed, memory and energy of generation at one batch size, with warm-up and repeated timing, and the
memory-bandwidth bound each decode rate is held against."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from . import memory
from .energy import EnergyMeter, EnergyReading
from .errors import DataError

# A percentile is reported only from at least this many timings; below that it would be an interpolation
# between the few there are, not an estimate of the tail.
MIN_TIMINGS = {50: 1, 90: 10, 95: 20, 99: 100}


def latency_stats(samples: list[float], prefix: str) -> dict[str, float | None]:
    """Mean, stdev and the percentiles the number of timings supports (the others None)."""
    arr = np.asarray(samples, dtype=float)
    stats = {"mean": arr.mean(), "stdev": arr.std(ddof=1) if len(arr) > 1 else None}
    stats.update({f"p{q}": np.percentile(arr, q) if len(arr) >= n else None for q, n in MIN_TIMINGS.items()})
    return {f"{prefix}_{k}_s": None if v is None else float(v) for k, v in stats.items()}


def rates(*, batch_size: int, new_tokens: int, prefill_s: list[float], generate_s: list[float],
          energy: EnergyReading) -> dict[str, float | None]:
    """Throughput, decode rate and energy per token of `len(generate_s)` timed generate calls.

    A generate call is one prefill plus new_tokens - 1 decode steps (the first new token comes from the
    prefill's logits), so decode time = generate time - the median prefill time.
    """
    calls, tokens = len(generate_s), batch_size * new_tokens
    decode_s = sum(generate_s) - calls * statistics.median(prefill_s)
    per_token = tokens * calls

    def per(value, count):
        return value / count if value is not None else None

    return {
        "throughput_tokens_per_s": per_token / sum(generate_s),
        "throughput_samples_per_s": batch_size * calls / sum(generate_s),
        "decode_tokens_per_s": (batch_size * (new_tokens - 1) * calls / decode_s
                                if new_tokens > 1 and decode_s > 0 else None),
        "energy_per_token_j": per(energy.energy_j, per_token),
        "net_energy_per_token_j": per(energy.net_energy_j, per_token),
        "energy_per_sample_j": per(energy.energy_j, batch_size * calls),
    }


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


RANDOM_PROMPT_SEED = 0


def prompt_batch(runtime, text: str, prompt_tokens: int, batch_size: int) -> torch.Tensor:
    """Equal-length real-text prompts (no padding), each from a different offset of `text`; seeded random
    token ids for a model without a tokenizer (random: weights), whose speed does not depend on the ids."""
    if runtime.tokenizer is None:
        generator = torch.Generator().manual_seed(RANDOM_PROMPT_SEED)
        return torch.randint(runtime.vocab_size, (batch_size, prompt_tokens), generator=generator)
    ids = runtime.tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) < prompt_tokens + batch_size:
        raise DataError(f"benchmark text has {len(ids)} tokens; need {prompt_tokens + batch_size}")
    step = max((len(ids) - prompt_tokens) // batch_size, 1)
    return torch.tensor([ids[i * step: i * step + prompt_tokens] for i in range(batch_size)])


def _timed(fn, runtime) -> float:
    runtime.sync()
    t0 = time.perf_counter()
    fn()
    runtime.sync()
    return time.perf_counter() - t0


def run(runtime, text: str, *, batch_size: int, prompt_tokens: int, new_tokens: int, warmup: int, iterations: int,
        meter: EnergyMeter) -> tuple[dict, dict]:
    """Time prefill (the prompts through the model, logits of the last position) and full greedy generation
    of `new_tokens`. Returns the run-table values and the energy reading of the timed generate calls (net of
    the idle power `meter` measured, if it did). Peak memory is of the timed calls alone."""
    inputs = prompt_batch(runtime, text, prompt_tokens, batch_size)

    def prefill():
        runtime.prefill(inputs)

    def generate():
        runtime.generate(inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens)

    for _ in range(warmup):
        prefill()
        generate()
    runtime.reset_peak_memory()
    memory.reset_peak()
    prefill_s = [_timed(prefill, runtime) for _ in range(iterations)]
    with meter.measure() as box:
        generate_s = [_timed(generate, runtime) for _ in range(iterations)]
    median_prefill = statistics.median(prefill_s)
    result = {
        **latency_stats(prefill_s, "prefill"),
        **latency_stats(generate_s, "latency"),
        **latency_stats([g - median_prefill for g in generate_s], "decode"),
        **rates(batch_size=batch_size, new_tokens=new_tokens, prefill_s=prefill_s, generate_s=generate_s,
                energy=box.reading),
        "peak_rss_mb": memory.peak_rss_mb(),
        "batch_mode": runtime.batch_mode,
        "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "warmup": warmup, "iterations": iterations,
        **runtime.peak_memory(),
    }
    return result, box.reading.as_dict()
