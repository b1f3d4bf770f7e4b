"""One function per pipeline stage; workflow/scripts/*.py only map Snakemake's objects onto these."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import artifacts, atomic, benchmark, layout, memory, records, sources
from .checksums import folder_checksums, verify
from .devices import resolve_device
from .energy import EnergyMeter
from .environment import now
from .errors import ArtifactFailed
from .failures import guarded
from .layout import PREPARED_RECORD, run_id
from .methods import get_backend, kv_cache
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
    """A run's variant loaded for inference, and the record fields every run shares.

    The process's resident memory is read just before the load, with the backend's libraries already
    imported, so that what a run adds over it is the model's own memory, not the libraries' code."""

    def __init__(self, artifact: Path, device: str):
        self.artifact, self.device = artifact, resolve_device(device)
        self.started = now()
        get_backend(artifacts.read_info(artifact)["backend"]).import_libraries()
        self.rss_before_mb = memory.rss_mb()
        memory.reset_peak()
        t0 = time.perf_counter()
        self.runtime, self.info = artifacts.load(artifact, self.device)
        self.load_time_s = time.perf_counter() - t0
        self.memory = {"load_peak_rss_mb": memory.peak_rss_mb(),
                       "loaded_rss_mb": _less(memory.rss_mb(), self.rss_before_mb)}
        self.closed = False

    def close(self) -> None:
        """Free the variant's memory (to load another model); reopen() loads it again."""
        self.runtime.close()
        self.closed = True

    def reopen(self) -> None:
        if self.closed:
            self.runtime, self.info = artifacts.load(self.artifact, self.device)
            self.closed = False

    def record(self, kind: str, ids: dict[str, Any], metrics: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return records.ok(kind, ids, device=self.device, packages=get_backend(self.info["backend"]).packages,
                          metrics={"size_bytes": self.info["size_bytes"], "load_time_s": self.load_time_s,
                                   **self.memory, **metrics},
                          backend=self.info["backend"], bits=self.info["bits"], weights=self.info.get("weights", "pretrained"),
                          **{"started": self.started, **fields})


def _less(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


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


@dataclass
class TaskRun:
    """One task of an evaluate job: its config, where its record and item log go, and what it reads besides
    the variant (its prepared folder; the baseline's item log of the same task and repetition)."""

    name: str
    task: dict[str, Any]
    record: Path
    items: Path
    prepared: Path | None = None
    baseline_items: Path | None = None


def plan_evaluation(tasks: dict[str, dict[str, Any]], *, model: str, method: str, rep: int | str,
                    baseline: str) -> list[TaskRun]:
    """The tasks one evaluate job runs, with the paths the rule declares (rules/evaluate.smk reads this too)."""
    runs = []
    for name, task in tasks.items():
        kind, ids = get_task_type(task["type"]), {"model": model, "method": method, "task": name, "rep": rep}
        compares = kind.compares_with_baseline and method != baseline
        runs.append(TaskRun(name, task, Path(layout.EVAL_RECORD.format(**ids)), Path(layout.EVAL_ITEMS.format(**ids)),
                            prepared=Path(layout.PREPARED.format(**ids)) if kind.prepares else None,
                            baseline_items=Path(layout.EVAL_ITEMS.format(**{**ids, "method": baseline}))
                            if compares else None))
    return runs


def evaluate_tasks(artifact: Path, runs: list[TaskRun], *, ids: dict[str, Any], device: str, country: str,
                   on_error: str = "error", baseline_artifact: Path | None = None) -> None:
    """Every task of one variant and repetition in one process: the libraries are imported and the variant is
    loaded once, not once per task (on 2 CPU cores that was 10 of a task's 18 s; on a GPU, an 8B model's load).
    `ids`: model, method, rep; `baseline_artifact`: for tasks that compare with the baseline."""
    def record_failures(message: str, failed: list[TaskRun]) -> None:
        for run_ in failed:
            atomic.write_text(run_.items, "")
            atomic.write_json(run_.record, records.failed("evaluate", {**ids, "task": run_.name}, message,
                                                          task_type=run_.task["type"]))

    run = None
    with guarded(f"loading {ids['model']}/{ids['method']} to evaluate it", on_error,
                 lambda message: record_failures(message, runs)):
        for task_run in runs:
            get_task_type(task_run.task["type"]).load_libraries(task_run.task)
        run = _LoadedRun(artifact, device)
    if run is None:
        return
    # tasks that load the baseline (closing the variant to make room) last, so that the variant is loaded once
    for task_run in sorted(runs, key=lambda r: r.baseline_items is not None):
        task_ids = {**ids, "task": task_run.name}
        with guarded(f"evaluate {run_id('evaluate', task_ids)}", on_error,
                     lambda message: record_failures(message, [task_run])):
            run.reopen()
            _evaluate_one(run, task_run, task_ids, country, baseline_artifact)


def _evaluate_one(run: _LoadedRun, task_run: TaskRun, ids: dict[str, Any], country: str,
                  baseline_artifact: Path | None) -> None:
    kind, task, started = get_task_type(task_run.task["type"]), task_run.task, now()
    inputs = Inputs(device=run.device)
    if task_run.prepared is not None:
        inputs.prepared, inputs.prepared_details = task_run.prepared, read_prepared(task_run.prepared)["details"]
    if task_run.baseline_items is not None:
        inputs.baseline_items = task_run.baseline_items

        def load_baseline():
            run.close()  # one model in memory at a time
            return artifacts.load(baseline_artifact, run.device)[0]

        inputs.load_baseline = load_baseline
    t0 = time.perf_counter()
    with EnergyMeter(run.device, country).measure() as box:
        scores = kind.evaluate(run.runtime, task, inputs)
    eval_time = time.perf_counter() - t0
    metrics = {**scores.metrics, **kind.compare(run.runtime, task, scores, inputs), "primary": scores.primary}
    record = run.record("evaluate", ids, metrics, task_type=kind.name, energy=box.reading.as_dict(), started=started,
                        details={**scores.details, "eval_time_s": eval_time})
    atomic.write_text(task_run.items, "".join(json.dumps({"run_id": record["run_id"], **i}) + "\n"
                                              for i in scores.items))
    atomic.write_json(task_run.record, record)
    log.info("evaluated %s: %s", record["run_id"], {k: v for k, v in metrics.items() if isinstance(v, float)})


def evaluate(artifact: Path, out: Path, items_out: Path, *, ids: dict[str, Any], task: dict[str, Any],
             device: str, country: str, on_error: str = "error", prepared: Path | None = None,
             baseline: tuple[Path, Path] | None = None) -> None:
    """One task on its own (`ids` with its task): `prepared`, the task's prepared folder; `baseline`, the
    baseline's artifact and item log of the same task and repetition."""
    run = TaskRun(ids["task"], task, Path(out), Path(items_out), prepared=prepared,
                  baseline_items=baseline[1] if baseline else None)
    evaluate_tasks(artifact, [run], ids={k: v for k, v in ids.items() if k != "task"}, device=device,
                   country=country, on_error=on_error, baseline_artifact=baseline[0] if baseline else None)


def run_benchmark(artifact: Path, outs: dict[int, Path], *, ids: dict[str, Any], settings: dict[str, Any],
                  device: str, country: str, on_error: str = "error") -> None:
    """Every batch size of one variant and repetition (`outs`: batch size -> record, in the order they run) in
    one process. Idle power is measured once, before the model loads, so that no batch's idle reads the heat
    of the one before; each batch's memory peak is its own (reset before it). `ids`: model, method, rep."""
    def record_failures(message: str, batch_sizes) -> None:
        for batch_size in batch_sizes:
            atomic.write_json(outs[batch_size], records.failed("benchmark", {**ids, "batch_size": batch_size}, message))

    shared = None
    with guarded(f"preparing the benchmark of {ids['model']}/{ids['method']}", on_error,
                 lambda message: record_failures(message, outs)):
        meter = EnergyMeter(resolve_device(device), country)
        meter.measure_idle(settings["idle_seconds"])
        run = _LoadedRun(artifact, device)
        shared = _benchmark_setup(run, artifact, settings)
    if shared is None:
        return
    for batch_size in outs:
        batch_ids = {**ids, "batch_size": batch_size}
        with guarded(f"benchmark {run_id('benchmark', batch_ids)}", on_error,
                     lambda message: record_failures(message, [batch_size])):
            _benchmark_one(run, outs[batch_size], batch_ids, settings, shared, meter)


def _benchmark_setup(run: _LoadedRun, artifact: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """What every batch size shares, measured or read once per job."""
    backend, params = get_backend(run.info["backend"]), run.info["params"]
    return {"weight_bytes": backend.weight_bytes(artifact, run.device),
            "bandwidth_gbs": benchmark.memory_bandwidth_gbs(run.device),
            "kernel": backend.kernel(params, run.device) + kv_cache.describe(params.get("kv_cache")),
            "speed_caveat": backend.speed_caveat(params, run.info.get("weights", "pretrained")),
            "kv_cache_bytes_per_token": run.runtime.kv_cache_bytes_per_token(
                prompt_tokens=settings["prompt_tokens"], new_tokens=settings["new_tokens"]),
            "text": text_path("qb_perplexity").read_text()}


def _benchmark_one(run: _LoadedRun, out: Path, ids: dict[str, Any], settings: dict[str, Any],
                   shared: dict[str, Any], meter: EnergyMeter) -> None:
    started = now()
    time.sleep(settings["cooldown_seconds"])  # let the previous measurement's heat and clocks settle
    metrics, energy = benchmark.run(
        run.runtime, shared["text"], batch_size=ids["batch_size"],
        prompt_tokens=settings["prompt_tokens"], new_tokens=settings["new_tokens"], warmup=settings["warmup"],
        iterations=settings["iterations"], meter=meter,
    )
    metrics.update(benchmark.bandwidth_bound(
        batch_size=ids["batch_size"], weight_bytes=shared["weight_bytes"], bandwidth_gbs=shared["bandwidth_gbs"],
        decode_tokens_per_s=metrics["decode_tokens_per_s"]), kernel=shared["kernel"],
        kv_cache_bytes_per_token=shared["kv_cache_bytes_per_token"],
        model_rss_mb=_less(metrics["peak_rss_mb"], run.rss_before_mb))
    if shared["speed_caveat"]:
        metrics["speed_caveat"] = shared["speed_caveat"]
    record = run.record("benchmark", ids, metrics, energy=energy, started=started)
    atomic.write_json(out, record)
    log.info("benchmarked %s: %.1f tokens/s", record["run_id"], metrics["throughput_tokens_per_s"])
