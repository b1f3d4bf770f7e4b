"""Speed, memory and energy of generation at one batch size, with warm-up and repeated timing."""

from __future__ import annotations

import resource
import statistics
import time

import numpy as np
import torch

from .energy import EnergyMeter
from .errors import DataError


def latency_stats(samples: list[float], prefix: str) -> dict[str, float]:
    arr = np.asarray(samples, dtype=float)
    stats = {"mean": arr.mean(), "stdev": arr.std(ddof=1) if len(arr) > 1 else float("nan")}
    stats.update({f"p{q}": np.percentile(arr, q) for q in (50, 90, 95, 99)})
    return {f"{prefix}_{k}_s": float(v) for k, v in stats.items()}


def prompt_batch(tokenizer, text: str, prompt_tokens: int, batch_size: int) -> torch.Tensor:
    """Equal-length real-text prompts (no padding), each from a different offset of `text`."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
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
        meter: EnergyMeter, idle_seconds: float) -> tuple[dict, dict]:
    """Time prefill (one forward over the prompts) and full greedy generation of `new_tokens`.

    decode = generation - prefill, so the two phases are reported separately. Returns the run-table
    values and the energy reading of the timed generate calls.
    """
    inputs = prompt_batch(runtime.tokenizer, text, prompt_tokens, batch_size)

    def prefill():
        runtime.prefill(inputs)

    def generate():
        runtime.generate(inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens)

    meter.measure_idle(idle_seconds)  # before warm-up heats the clocks up, or idle would read high
    for _ in range(warmup):
        prefill()
        generate()
    runtime.reset_peak_memory()
    prefill_s = [_timed(prefill, runtime) for _ in range(iterations)]
    with meter.measure() as box:
        generate_s = [_timed(generate, runtime) for _ in range(iterations)]
    decode_s = [g - statistics.median(prefill_s) for g in generate_s]

    tokens = batch_size * new_tokens
    energy = box.reading
    result = {
        **latency_stats(prefill_s, "prefill"),
        **latency_stats(generate_s, "latency"),
        **latency_stats(decode_s, "decode"),
        "throughput_tokens_per_s": tokens * iterations / sum(generate_s),
        "throughput_samples_per_s": batch_size * iterations / sum(generate_s),
        # N new tokens = one prefill + N-1 decode steps
        "decode_tokens_per_s": (batch_size * (new_tokens - 1) * iterations / sum(decode_s)
                                if new_tokens > 1 and sum(decode_s) > 0 else None),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "energy_per_token_j": energy.energy_j / (tokens * iterations) if energy.energy_j is not None else None,
        "net_energy_per_token_j": (energy.net_energy_j / (tokens * iterations)
                                   if energy.net_energy_j is not None else None),
        "energy_per_sample_j": (energy.energy_j / (batch_size * iterations)
                                if energy.energy_j is not None else None),
        "batch_mode": runtime.batch_mode,
        "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "warmup": warmup, "iterations": iterations,
        **runtime.peak_memory(),
    }
    return result, energy.as_dict()
