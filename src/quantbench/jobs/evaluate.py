"""Evaluate jobs: what a task type prepares once per model on the baseline, and every task of one variant
and repetition in one process."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Iterable

from .. import artifacts, atomic, records
from ..checksums import folder_checksums, verify
from ..energy import EnergyMeter
from ..environment import now
from ..errors import ArtifactFailed
from ..failures import guarded
from ..layout import PREPARED_RECORD
from ..plan import EvaluateRun, PrepareRun, TaskRun
from ..tasks import Inputs, get_task_type
from .variant import LoadedVariant

log = logging.getLogger("quantbench")


def prepare_task(run: PrepareRun) -> None:
    """What a task type computes once per model on the baseline (e.g. a classification head), for every
    variant's evaluation to share."""
    task_type = get_task_type(run.task.type)
    with guarded(f"prepare_task {run.id}", run.on_error, lambda message: record_unfinished_preparation(run, message)):
        variant = LoadedVariant(run.artifact, run.device)
        with atomic.atomic_path(run.folder, directory=True) as tmp:
            t0 = time.perf_counter()
            details = task_type.prepare(variant.runtime, run.task.params, tmp)
            record = variant.record(run.id, {"prepare_time_s": time.perf_counter() - t0}, task_type=task_type.name,
                                    baseline=variant.info["method"], details=details, files=folder_checksums(tmp))
            records.write(tmp / PREPARED_RECORD, record)


def record_unfinished_preparation(run: PrepareRun, message: str) -> None:
    """The prepared folder as a failed preparation, unless the job wrote it before it died."""
    if run.folder.exists():
        return
    with atomic.atomic_path(run.folder, directory=True) as tmp:
        records.write(tmp / PREPARED_RECORD, records.failed(run.id, message, task_type=run.task.type))


def read_prepared(folder: Path) -> dict[str, Any]:
    """A prepared folder's record, after checking its files against the checksums written with them."""
    record = records.read(Path(folder) / PREPARED_RECORD)
    if record["status"] == "failed":
        raise ArtifactFailed(f"the task's preparation failed: {record['error']}")
    verify(Path(folder), record["files"], f"delete {folder} and rerun snakemake (rule prepare_task) to redo it")
    return record


def evaluate(run: EvaluateRun) -> None:
    """Every task of one variant and repetition in one process: the libraries are imported and the variant is
    loaded once, not once per task (on 2 CPU cores that was 10 of a task's 18 s; on a GPU, an 8B model's load)."""
    variant = None
    with guarded(f"loading {run.model}/{run.method} to evaluate it", run.on_error,
                 lambda message: record_failures(message, run.tasks)):
        for task_run in run.tasks:
            get_task_type(task_run.task.type).load_libraries(task_run.task.params)
        variant = LoadedVariant(run.artifact, run.device)
    if variant is None:
        return
    # tasks that load the baseline (closing the variant to make room) last, so that the variant is loaded once
    for task_run in sorted(run.tasks, key=lambda t: t.baseline_items is not None):
        with guarded(f"evaluate {task_run.id}", run.on_error, lambda message: record_failures(message, [task_run])):
            variant.reopen()
            _evaluate_one(variant, task_run, run)


def record_failures(message: str, failed: Iterable[TaskRun]) -> None:
    for task_run in failed:
        atomic.write_text(task_run.items_file, "")
        atomic.write_json(task_run.record_file, records.failed(task_run.id, message, task_type=task_run.task.type))


def record_unfinished(run: EvaluateRun, message: str) -> None:
    """A failed row for each task without a record (the job's process died)."""
    record_failures(message, [t for t in run.tasks if not t.record_file.exists()])


def _evaluate_one(variant: LoadedVariant, task_run: TaskRun, run: EvaluateRun) -> None:
    task_type, task, started = get_task_type(task_run.task.type), task_run.task.params, now()
    inputs = Inputs(device=variant.device)
    if task_run.prepared is not None:
        inputs.prepared, inputs.prepared_details = task_run.prepared, read_prepared(task_run.prepared)["details"]
    if task_run.baseline_items is not None:
        inputs.baseline_items = task_run.baseline_items

        def load_baseline():
            variant.close()  # one model in memory at a time
            return artifacts.load(run.baseline_artifact, variant.device)[0]

        inputs.load_baseline = load_baseline
    t0 = time.perf_counter()
    with EnergyMeter(variant.device, run.country).measure() as box:
        scores = task_type.evaluate(variant.runtime, task, inputs)
    eval_time = time.perf_counter() - t0
    metrics = {**scores.metrics, **task_type.compare(variant.runtime, task, scores, inputs), "primary": scores.primary}
    record = variant.record(task_run.id, metrics, task_type=task_type.name, energy=box.reading.as_dict(),
                            started=started,
                            details={**scores.details, "eval_time_s": eval_time})
    atomic.write_text(task_run.items_file, "".join(json.dumps({"run_id": record["run_id"], **i}) + "\n"
                                              for i in scores.items))
    atomic.write_json(task_run.record_file, record)
    log.info("evaluated %s: %s", record["run_id"], {k: v for k, v in metrics.items() if isinstance(v, float)})
