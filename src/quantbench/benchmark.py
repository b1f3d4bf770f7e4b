"""Speed, memory and energy of generation at one batch size, with warm-up and repeated timing: the timed
generation every benchmark row holds (quantbench.measures add the rest), and the columns it fills."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

import numpy as np

from . import memory
from .columns import B, Column
from .energy import EnergyMeter, EnergyReading
from .errors import DataError

if TYPE_CHECKING:
    import torch


def _latency(phase: str, what: str, median_heading: str = "") -> list[Column]:
    stats = {"mean": "mean", "stdev": "standard deviation", "p50": "median", "p90": "90th percentile",
             "p95": "95th percentile", "p99": "99th percentile"}
    return [Column(f"{phase}_{k}_s", "float", "s", (B,), "speed", f"{v} of {what} over the timed iterations",
                   tested=(B,) if (phase, k) == ("latency", "mean") else (),
                   report=median_heading if k == "p50" else "")
            for k, v in stats.items()]


COLUMNS: tuple[Column, ...] = (
    *_latency("prefill", "one forward pass over the prompts"),
    *_latency("latency", "one generate call (prompt and all new tokens)", "latency p50 s"),
    *_latency("decode", "a generate call minus the median prefill"),
    Column("throughput_tokens_per_s", "float", "token/s", (B,), "speed", "generated tokens per second over the "
           "timed generate calls", tested=(B,), report="tokens/s"),
    Column("throughput_samples_per_s", "float", "sample/s", (B,), "speed", "sequences completed per second"),
    Column("decode_tokens_per_s", "float", "token/s", (B,), "speed", "tokens after the first per second of "
           "decoding", report="decode tokens/s"),
    Column("batch_mode", "str", "", (B,), "speed", "parallel: a batch in one forward pass; sequential: row after "
           "row", report="batch"),
    Column("prompt_tokens", "int", "token", (B,), "speed", "prompt length per sequence"),
    Column("new_tokens", "int", "token", (B,), "speed", "tokens generated per sequence"),
    Column("warmup", "int", "", (B,), "speed", "untimed iterations before timing"),
    Column("iterations", "int", "", (B,), "speed", "timed iterations: prefill and generate calls each (a percentile "
           "needs 10 for p90, 20 for p95, 100 for p99, and is left empty below that)"),
    Column("peak_rss_mb", "float", "MiB", (B,), "memory", "peak resident memory of the process during the batch's "
           "timed calls (the peak is reset before them, so it is the batch's own; libraries and Python included; "
           "empty where the peak cannot be reset: not Linux)", report="peak RSS MiB"),
    Column("peak_gpu_allocated_mb", "float", "MiB", (B,), "memory", "peak GPU memory allocated by torch"),
    Column("peak_gpu_reserved_mb", "float", "MiB", (B,), "memory", "peak GPU memory reserved by torch's allocator"),
    Column("energy_per_token_j", "float", "J/token", (B,), "energy", "energy_j per generated token", tested=(B,),
           report="J/token"),
    Column("net_energy_per_token_j", "float", "J/token", (B,), "energy", "net_energy_j per generated token"),
    Column("energy_per_sample_j", "float", "J/sample", (B,), "energy", "energy_j per generated sequence"),
)

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


RANDOM_PROMPT_SEED = 0


def prompt_batch(runtime, text: str, prompt_tokens: int, batch_size: int) -> torch.Tensor:
    """Equal-length real-text prompts (no padding), each from a different offset of `text`; seeded random
    token ids for a model without a tokenizer (random: weights), whose speed does not depend on the ids."""
    import torch

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


def timed_generation(runtime, text: str, *, batch_size: int, prompt_tokens: int, new_tokens: int, warmup: int, iterations: int,
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
