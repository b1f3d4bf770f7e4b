"""Synthetic run tables with the columns `aggregate` writes, for testing the R analysis without a study."""

from __future__ import annotations

import itertools

import pandas as pd

BITS = {"fp32": 32, "int8": 8, "nf4": 4}


def _ids(kind: str, model: str, method: str, tail: str, **ids) -> dict:
    return {"run_id": f"{model}/{method}/{tail}", "kind": kind, "status": "ok", "model": model, "method": method,
            "backend": "synthetic", "bits": BITS.get(method, 8), **ids}


def study(models=("m1", "m2"), methods=tuple(BITS), tasks=("sentiment", "nli"), batch_sizes=(1, 4),
          eval_reps=2, bench_reps=3) -> pd.DataFrame:
    """Every kind of row for every model and method; smaller bit widths are faster, smaller, less accurate."""
    rows = []
    for (i, model), (j, method) in itertools.product(enumerate(models), enumerate(methods)):
        scale = 1 + i
        rows.append({**_ids("quantize", model, method, "quantize"), "size_bytes": 5e8 * scale / (j + 1),
                     "quantize_time_s": 5.0 + j, "energy_j": 50.0 + 10 * j, "energy_method": "codecarbon_estimate",
                     "co2_kg": 1e-6 * (1 + j)})
        for task, rep in itertools.product([*tasks, "perplexity"], range(1, eval_reps + 1)):
            quality = ({"perplexity_token": 18.0 + 2 * j, "primary": "perplexity_token", "kld_mean": 0.05 * j,
                        "kld_p99": 0.4 * j, "top1_agreement": 1 - 0.05 * j} if task == "perplexity"
                       else {"accuracy": 0.7 - 0.05 * j, "primary": "accuracy"})
            rows.append({**_ids("evaluate", model, method, f"{task}/{rep}", task=task, rep=rep), **quality,
                         "energy_j": (100.0 - 20 * j) * scale + rep, "energy_method": "codecarbon_estimate",
                         "co2_kg": 1e-6 * (100 - 20 * j)})
        for batch, rep in itertools.product(batch_sizes, range(1, bench_reps + 1)):
            throughput = 20.0 * batch * (1 + 0.3 * j) / scale + rep
            rows.append({**_ids("benchmark", model, method, f"bs{batch}/{rep}", batch_size=batch, rep=rep),
                         "throughput_tokens_per_s": throughput, "latency_mean_s": 16 * batch / throughput,
                         "energy_per_token_j": 0.9 - 0.1 * j + 0.01 * rep, "peak_rss_mb": 1000.0 / (j + 1) + batch,
                         "model_rss_mb": 500.0 / (j + 1) + batch,
                         "energy_j": 40.0 - 5 * j, "energy_method": "codecarbon_estimate", "co2_kg": 4e-7})
    return pd.DataFrame(rows)


def failed_study() -> pd.DataFrame:
    """A study in which nothing produced results: only the identifier columns and the reasons."""
    return pd.DataFrame([
        {"run_id": "m1/fp32/quantize", "kind": "quantize", "status": "failed", "model": "m1", "method": "fp32",
         "backend": "baseline", "error": "out of memory"},
        {"run_id": "m1/gptq/quantize", "kind": "quantize", "status": "skipped", "model": "m1", "method": "gptq",
         "backend": "gptq", "reason": "needs a CUDA GPU"},
        {"run_id": "m1/fp32/bs1/1", "kind": "benchmark", "status": "failed", "model": "m1", "method": "fp32",
         "batch_size": 1, "rep": 1, "error": "killed"},
    ])
