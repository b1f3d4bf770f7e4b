"""Benchmark jobs: every batch size of one variant and repetition in one process."""

from __future__ import annotations

import logging
import time
from typing import Any

from .. import atomic, records
from ..benchmark import timed_generation
from ..devices import resolve_device
from ..energy import EnergyMeter
from ..environment import now
from ..failures import guarded
from ..measures import MEASURES, Batch
from ..plan import BatchRun, BenchmarkRun
from ..tasks.data import text_path
from .variant import LoadedVariant

log = logging.getLogger("quantbench")


def benchmark(run: BenchmarkRun) -> None:
    """Idle power is measured once, before the model loads, so that no batch's idle reads the heat of the one
    before; each batch's memory peak is its own (reset before it). What the batches share (the variant, the
    prompts' text, each measure's setup) is prepared once, guarded: a failure there is a failed row per batch."""
    shared = None
    with guarded(f"preparing the benchmark of {run.model}/{run.method}", run.on_error,
                 lambda message: record_failures(message, run.batches)):
        meter = EnergyMeter(resolve_device(run.device), run.country)
        meter.measure_idle(run.settings.idle_seconds)
        variant = LoadedVariant(run.artifact, run.device)
        text = text_path(run.settings.text).read_text()
        shared = [measure.setup(variant, run.settings) for measure in MEASURES]
    if shared is None:
        return
    for batch in run.batches:
        with guarded(f"benchmark {batch.id}", run.on_error, lambda message: record_failures(message, (batch,))):
            _benchmark_one(variant, batch, run, text, shared, meter)


def record_failures(message: str, batches: tuple[BatchRun, ...]) -> None:
    for batch in batches:
        atomic.write_json(batch.record_file, records.failed(batch.id, message))


def record_unfinished(run: BenchmarkRun, message: str) -> None:
    """A failed row for each batch size without a record (the job's process died)."""
    record_failures(message, tuple(b for b in run.batches if not b.record_file.exists()))


def _benchmark_one(variant: LoadedVariant, batch: BatchRun, run: BenchmarkRun, text: str, shared: list[Any],
                   meter: EnergyMeter) -> None:
    settings, started = run.settings, now()
    time.sleep(settings.cooldown_seconds)  # let the previous measurement's heat and clocks settle
    metrics, energy = timed_generation(
        variant.runtime, text, batch_size=batch.batch_size, prompt_tokens=settings.prompt_tokens,
        new_tokens=settings.new_tokens, warmup=settings.warmup, iterations=settings.iterations, meter=meter,
    )
    timed = Batch(batch.batch_size, dict(metrics), variant, settings)
    for measure, value in zip(MEASURES, shared):
        metrics.update(measure.measure(timed, value))
    record = variant.record(batch.id, metrics, energy=energy, started=started)
    atomic.write_json(batch.record_file, record)
    log.info("benchmarked %s: %.1f tokens/s", record["run_id"], metrics["throughput_tokens_per_s"])
