"""One function per pipeline stage; workflow/scripts/*.py only map Snakemake's objects onto these."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import artifacts, atomic, benchmark, evaluation, generation, heads, sources, tasks
from .devices import resolve_device
from .energy import EnergyMeter
from .environment import describe, now
from .failures import guarded

log = logging.getLogger("quantbench")


def setup(log_file: str | os.PathLike, threads: int | None = None) -> None:
    """Send everything the job prints, libraries included, to its Snakemake log file."""
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    if threads:
        import torch

        torch.set_num_threads(threads)


def fetch_model(source: str, out: Path) -> None:
    with atomic.atomic_path(out, directory=True) as tmp:
        manifest = sources.fetch(source, tmp)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("fetched %s into %s", source, out)


def quantize(model_dir: Path, out: Path, *, model: str, method: dict[str, Any], device: str, country: str,
             on_error: str = "error") -> None:
    def record_failure(message: str) -> None:
        with atomic.atomic_path(out, directory=True) as tmp:
            artifacts.write_failure(tmp, model=model, method=method["name"], backend=method["backend"], error=message)

    with guarded(f"quantize {model}/{method['name']}", on_error, record_failure):
        device = resolve_device(device)
        with atomic.atomic_path(out, directory=True) as tmp:
            artifacts.quantize(Path(model_dir), tmp, model=model, method=method["name"], backend=method["backend"],
                               params=method["params"], device=device, country_iso_code=country)


def _failed_record(kind: str, run_id: str, ids: dict[str, Any], message: str) -> dict:
    return {"run_id": run_id, "kind": kind, "status": "failed", "error": message, **ids, "ended": now()}


class _LoadedRun:
    """A run's model loaded for inference, and the record fields every run shares."""

    def __init__(self, kind: str, run_id: str, artifact: Path, ids: dict[str, Any], device: str):
        self.device = resolve_device(device)
        started = now()
        t0 = time.perf_counter()
        self.model, self.tokenizer, info = artifacts.load(artifact, self.device)
        self.record = {
            "run_id": run_id, "kind": kind, **ids,
            "backend": info["backend"], "bits": info["bits"], "size_bytes": info["size_bytes"],
            "load_time_s": time.perf_counter() - t0, "started": started,
            "environment": describe(self.device),
        }


def evaluate(artifact: Path, out: Path, items_out: Path, *, ids: dict[str, Any], task: dict[str, Any],
             device: str, country: str, on_error: str = "error",
             reference: tuple[Path, Path] | None = None, head: Path | None = None) -> None:
    """`reference`: the baseline's artifact and answers, which a generation task is compared with;
    `head`: the classification head (trained on the baseline) a classification_head task is scored with."""
    run_id = f"{ids['model']}/{ids['method']}/{ids['task']}/{ids['rep']}"

    def record_failure(message: str) -> None:
        atomic.write_text(items_out, "")
        atomic.write_json(out, _failed_record("evaluate", run_id, ids, message))

    with guarded(f"evaluate {run_id}", on_error, record_failure):
        run = _LoadedRun("evaluate", run_id, artifact, ids, device)
        t0 = time.perf_counter()
        with EnergyMeter(run.device, country).measure() as box:
            metrics, items = evaluation.evaluate(run.model, run.tokenizer, task, run.device, head)
        if task["type"] == "generation":  # after the meter: comparing is analysis, not the variant's cost
            metrics.update(_compare_generations(run, items, reference))
        record = run.record
        record.update(task_type=task["type"], metrics={**metrics, "energy": box.reading.as_dict()},
                      eval_time_s=time.perf_counter() - t0, ended=now())
        atomic.write_text(items_out, "".join(json.dumps({"run_id": run_id, **i}) + "\n" for i in items))
        atomic.write_json(out, record)
        log.info("evaluated %s: %s", run_id, {k: v for k, v in metrics.items() if isinstance(v, float)})


def _compare_generations(run: _LoadedRun, items: list[dict], reference: tuple[Path, Path] | None) -> dict:
    """Agreement with the baseline's answers and their perplexity under the baseline model."""
    if reference is None:  # this run is the baseline: its own answers under itself, the reference point
        return {"perplexity_under_baseline": generation.perplexity_under(run.model, items, run.device)}
    baseline_artifact, baseline_items = reference
    answers = generation.read_items(baseline_items)
    if not answers:
        raise RuntimeError(f"the baseline's generation failed ({baseline_items} is empty): nothing to compare with")
    metrics = generation.agreement(items, answers)
    del run.model  # one model in memory at a time
    baseline, _, _ = artifacts.load(baseline_artifact, run.device)
    metrics["perplexity_under_baseline"] = generation.perplexity_under(baseline, items, run.device)
    return metrics


def train_head(artifact: Path, out: Path, *, ids: dict[str, Any], task: dict[str, Any], device: str,
               on_error: str = "error") -> None:
    """Fit a classification head on the baseline's frozen features, once for every variant to share."""
    def record_failure(message: str) -> None:
        with atomic.atomic_path(out, directory=True) as tmp:
            heads.write_failure(tmp, ids=ids, error=message)

    with guarded(f"train_head {ids['model']}/{ids['task']}", on_error, record_failure):
        device = resolve_device(device)
        with atomic.atomic_path(out, directory=True) as tmp:
            heads.train(Path(artifact), tmp, ids=ids, task=task, device=device)


def run_benchmark(artifact: Path, out: Path, *, ids: dict[str, Any], settings: dict[str, Any], device: str,
                  country: str, on_error: str = "error") -> None:
    run_id = f"{ids['model']}/{ids['method']}/bs{ids['batch_size']}/{ids['rep']}"

    def record_failure(message: str) -> None:
        atomic.write_json(out, _failed_record("benchmark", run_id, ids, message))

    with guarded(f"benchmark {run_id}", on_error, record_failure):
        run = _LoadedRun("benchmark", run_id, artifact, ids, device)
        time.sleep(settings["cooldown_seconds"])  # let the previous job's heat and clocks settle
        text = tasks.text_path("qb_perplexity").read_text()
        metrics = benchmark.run(
            run.model, run.tokenizer, text, batch_size=ids["batch_size"], prompt_tokens=settings["prompt_tokens"],
            new_tokens=settings["new_tokens"], warmup=settings["warmup"], iterations=settings["iterations"],
            device=run.device, meter=EnergyMeter(run.device, country), idle_seconds=settings["idle_seconds"],
        )
        record = run.record
        record.update(metrics=metrics, ended=now())
        atomic.write_json(out, record)
        log.info("benchmarked %s: %.1f tokens/s", run_id, metrics["throughput_tokens_per_s"])
