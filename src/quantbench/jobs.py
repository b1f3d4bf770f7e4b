"""One function per pipeline stage; workflow/scripts/*.py only map Snakemake's objects onto these."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import artifacts, atomic, benchmark, records, sources
from .checksums import folder_checksums, verify
from .devices import resolve_device
from .energy import EnergyMeter
from .environment import now
from .errors import ArtifactFailed
from .failures import guarded
from .layout import PREPARED_RECORD, run_id
from .methods import get_backend
from .tasks import Inputs, get_task_type
from .tasks.data import text_path

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


def fetch_model(source: str, out: Path, device: str = "auto") -> None:
    """The model as a plain HF folder; `device`: where a random: model's weights are drawn."""
    with atomic.atomic_path(out, directory=True) as tmp:
        manifest = sources.fetch(source, tmp, resolve_device(device))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("fetched %s into %s", source, out)


def quantize(model_dir: Path, out: Path, *, model: str, method: dict[str, Any], device: str, country: str,
             on_error: str = "error") -> None:
    ids = {"model": model, "method": method["name"]}

    def record_failure(message: str) -> None:
        with atomic.atomic_path(out, directory=True) as tmp:
            artifacts.write_failure(tmp, ids=ids, backend=method["backend"], error=message)

    with guarded(f"quantize {run_id('quantize', ids)}", on_error, record_failure):
        device = resolve_device(device)
        with atomic.atomic_path(out, directory=True) as tmp:
            artifacts.quantize(Path(model_dir), tmp, ids=ids, backend=method["backend"], params=method["params"],
                               device=device, country_iso_code=country)


class _LoadedRun:
    """A run's variant loaded for inference, and the record fields every run shares."""

    def __init__(self, artifact: Path, device: str):
        self.device = resolve_device(device)
        self.started = now()
        t0 = time.perf_counter()
        self.runtime, self.info = artifacts.load(artifact, self.device)
        self.load_time_s = time.perf_counter() - t0

    def record(self, kind: str, ids: dict[str, Any], metrics: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return records.ok(kind, ids, device=self.device, packages=get_backend(self.info["backend"]).packages,
                          metrics={"size_bytes": self.info["size_bytes"], "load_time_s": self.load_time_s, **metrics},
                          backend=self.info["backend"], bits=self.info["bits"], weights=self.info.get("weights", "pretrained"),
                          started=self.started, **fields)


def prepare_task(artifact: Path, out: Path, *, ids: dict[str, Any], task: dict[str, Any], device: str,
                 on_error: str = "error") -> None:
    """What a task type computes once per model on the baseline (e.g. a classification head), for every
    variant's evaluation to share."""
    kind = get_task_type(task["type"])

    def record_failure(message: str) -> None:
        with atomic.atomic_path(out, directory=True) as tmp:
            records.write(tmp / PREPARED_RECORD, records.failed("prepare", ids, message, task_type=kind.name))

    with guarded(f"prepare_task {run_id('prepare', ids)}", on_error, record_failure):
        run = _LoadedRun(artifact, device)
        with atomic.atomic_path(out, directory=True) as tmp:
            t0 = time.perf_counter()
            details = kind.prepare(run.runtime, task, tmp)
            record = run.record("prepare", ids, {"prepare_time_s": time.perf_counter() - t0}, task_type=kind.name,
                                baseline=run.info["method"], details=details, files=folder_checksums(tmp))
            records.write(tmp / PREPARED_RECORD, record)


def read_prepared(folder: Path) -> dict[str, Any]:
    """A prepared folder's record, after checking its files against the checksums written with them."""
    record = records.read(Path(folder) / PREPARED_RECORD)
    if record["status"] == "failed":
        raise ArtifactFailed(f"the task's preparation failed: {record['error']}")
    verify(Path(folder), record["files"], f"delete {folder} and rerun snakemake (rule prepare_task) to redo it")
    return record


def evaluate(artifact: Path, out: Path, items_out: Path, *, ids: dict[str, Any], task: dict[str, Any],
             device: str, country: str, on_error: str = "error", prepared: Path | None = None,
             baseline: tuple[Path, Path] | None = None) -> None:
    """`prepared`: the task's prepared folder (task types that prepare); `baseline`: the baseline's artifact
    and item log of the same task and repetition (task types that compare with the baseline)."""
    kind = get_task_type(task["type"])

    def record_failure(message: str) -> None:
        atomic.write_text(items_out, "")
        atomic.write_json(out, records.failed("evaluate", ids, message, task_type=kind.name))

    with guarded(f"evaluate {run_id('evaluate', ids)}", on_error, record_failure):
        run = _LoadedRun(artifact, device)
        inputs = Inputs(device=run.device)
        if prepared is not None:
            inputs.prepared, inputs.prepared_details = prepared, read_prepared(prepared)["details"]
        if baseline is not None:
            inputs.baseline_items = baseline[1]
            inputs.load_baseline = lambda: artifacts.load(baseline[0], run.device)[0]
        t0 = time.perf_counter()
        with EnergyMeter(run.device, country).measure() as box:
            scores = kind.evaluate(run.runtime, task, inputs)
        eval_time = time.perf_counter() - t0
        metrics = {**scores.metrics, **kind.compare(run.runtime, task, scores, inputs), "primary": scores.primary}
        record = run.record("evaluate", ids, metrics, task_type=kind.name, energy=box.reading.as_dict(),
                            details={**scores.details, "eval_time_s": eval_time})
        atomic.write_text(items_out, "".join(json.dumps({"run_id": record["run_id"], **i}) + "\n"
                                             for i in scores.items))
        atomic.write_json(out, record)
        log.info("evaluated %s: %s", record["run_id"], {k: v for k, v in metrics.items() if isinstance(v, float)})


def run_benchmark(artifact: Path, out: Path, *, ids: dict[str, Any], settings: dict[str, Any], device: str,
                  country: str, on_error: str = "error") -> None:
    def record_failure(message: str) -> None:
        atomic.write_json(out, records.failed("benchmark", ids, message))

    with guarded(f"benchmark {run_id('benchmark', ids)}", on_error, record_failure):
        run = _LoadedRun(artifact, device)
        bandwidth = benchmark.memory_bandwidth_gbs(run.device)
        time.sleep(settings["cooldown_seconds"])  # let the previous job's heat and clocks settle
        text = text_path("qb_perplexity").read_text()
        metrics, energy = benchmark.run(
            run.runtime, text, batch_size=ids["batch_size"], prompt_tokens=settings["prompt_tokens"],
            new_tokens=settings["new_tokens"], warmup=settings["warmup"], iterations=settings["iterations"],
            meter=EnergyMeter(run.device, country), idle_seconds=settings["idle_seconds"],
        )
        backend = get_backend(run.info["backend"])
        metrics.update(benchmark.bandwidth_bound(
            batch_size=ids["batch_size"], weight_bytes=backend.weight_bytes(artifact), bandwidth_gbs=bandwidth,
            decode_tokens_per_s=metrics["decode_tokens_per_s"]), kernel=backend.kernel(run.info["params"], run.device))
        record = run.record("benchmark", ids, metrics, energy=energy)
        atomic.write_json(out, record)
        log.info("benchmarked %s: %.1f tokens/s", record["run_id"], metrics["throughput_tokens_per_s"])
