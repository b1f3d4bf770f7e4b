"""The runs of a study, their files and their settings, worked out once.

A validated study (`config.load`) is a `Study`; it yields one typed run per job (`QuantizeRun`,
`EvaluateRun`, ...), each with its run ids, the paths it reads and writes, and its own settings. The
rules take their inputs, outputs and params from here, each job script receives its run (never a
re-plan), and `aggregate` reads the study's records from the same runs. This module imports no torch,
transformers or lm-eval: parsing the Snakefile, every job's start and the SLURM driver read it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from . import layout
from .defaults import setting

QUANTIZE, PREPARE, EVALUATE, BENCHMARK = "quantize", "prepare", "evaluate", "benchmark"
ID_FIELDS = ("model", "method", "task", "batch_size", "rep")


@dataclass(frozen=True)
class RunId:
    """What one record (one row of the run table) measured; `path` is its run id."""

    kind: str  # quantize | prepare | evaluate | benchmark
    model: str
    method: str | None = None
    task: str | None = None
    batch_size: int | None = None
    rep: int | None = None

    @property
    def path(self) -> str:
        parts = {QUANTIZE: (self.method, QUANTIZE), PREPARE: (self.task, PREPARE),
                 EVALUATE: (self.method, self.task, self.rep),
                 BENCHMARK: (self.method, f"bs{self.batch_size}", self.rep)}
        return "/".join(str(p) for p in (self.model, *parts[self.kind]))

    def fields(self) -> dict[str, Any]:
        """The identifying fields a record carries (those set)."""
        return {name: getattr(self, name) for name in ID_FIELDS if getattr(self, name) is not None}

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class Model:
    name: str
    source: str  # hf:org/name@revision | path:... | package:... | random:...


@dataclass(frozen=True)
class Method:
    name: str
    backend: str
    params: dict[str, Any]  # the config entry without `backend`, the backend's defaults filled in
    bits: int
    quantize_rep: int = 1  # which quantization of the configured method (repetitions.quantize)
    repeats: str = ""  # the configured method a quantization repetition repeats ("" for the configured one)

    @property
    def configured(self) -> str:
        """The method's name in the config (a repetition's name is `<configured>@q<rep>`)."""
        return self.repeats or self.name


@dataclass(frozen=True)
class Task:
    name: str
    type: str
    params: dict[str, Any]  # the config entry (its `type` included), the task type's defaults filled in


@dataclass(frozen=True)
class BenchmarkSettings:
    batch_sizes: tuple[int, ...]  # in the order a job measures them
    prompt_tokens: int
    new_tokens: int
    warmup: int
    iterations: int
    idle_seconds: float
    cooldown_seconds: float
    text: str  # the prompts' text: a shipped text's name or path:<file>


@dataclass(frozen=True)
class Settings:
    device: str  # auto | cpu | cuda, resolved by each job on its own machine
    on_error: str  # error | skip: a failing job stops the study, or becomes failed rows
    on_unsupported: str  # error | skip: a method that cannot run here stops validation, or a skipped row
    baseline: str
    threads: int | None
    country: str  # ISO 3166-1 alpha-3, for CO2
    benchmark: BenchmarkSettings
    repetitions: dict[str, int]  # run kind -> repetitions
    margins: dict[str, float]  # non-inferiority margin per compared measure (quantbench.verdicts)
    cost: dict[str, float]  # prices (quantbench.cost); empty: no cost columns


# A run's fields that do not change what it measures: left out of the rule's params, so that changing them
# in the config reruns nothing (Snakemake reruns a job whose params changed).
NOT_MEASURED = {"metadata": {"measured": False}}


@dataclass(frozen=True)
class FetchRun:
    model: Model
    folder: Path
    device: str  # where a random: model's weights are drawn


@dataclass(frozen=True)
class QuantizeRun:
    id: RunId
    method: Method
    model_folder: Path
    artifact: Path
    device: str
    country: str
    on_error: str = field(default="error", **NOT_MEASURED)


@dataclass(frozen=True)
class PrepareRun:
    """What a task type computes once per model on the baseline, for every variant's evaluation."""

    id: RunId
    task: Task
    artifact: Path  # the baseline's
    folder: Path
    device: str
    on_error: str = field(default="error", **NOT_MEASURED)


@dataclass(frozen=True)
class TaskRun:
    """One task of an evaluate job: where its record and item log go, and what it reads besides the variant."""

    id: RunId
    task: Task
    record_file: Path
    items_file: Path
    prepared: Path | None = None  # the task's prepared folder, for types that prepare
    baseline_items: Path | None = None  # the baseline's item log of the same task and repetition, to compare


@dataclass(frozen=True)
class EvaluateRun:
    """Every task of one variant and repetition, in one process (one import of the libraries, one load)."""

    model: str
    method: str
    rep: int
    artifact: Path
    tasks: tuple[TaskRun, ...]
    baseline_artifact: Path | None  # for tasks that compare with the baseline
    device: str
    country: str
    on_error: str = field(default="error", **NOT_MEASURED)


@dataclass(frozen=True)
class BatchRun:
    id: RunId
    record_file: Path

    @property
    def batch_size(self) -> int:
        return self.id.batch_size


@dataclass(frozen=True)
class BenchmarkRun:
    """Every batch size of one variant and repetition, in the order given, in one process."""

    model: str
    method: str
    rep: int
    artifact: Path
    batches: tuple[BatchRun, ...]
    settings: BenchmarkSettings
    device: str
    country: str
    on_error: str = field(default="error", **NOT_MEASURED)


@dataclass
class Study:
    """A validated study (config.load): its models, methods and tasks, and every run they make."""

    settings: Settings
    models: dict[str, Model]
    methods: dict[str, Method]
    tasks: dict[str, Task]
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it cannot run here
    backends: dict[str, str] = field(default_factory=dict)  # method -> backend, skipped methods included
    unverified: dict[str, str] = field(default_factory=dict)  # method -> what its jobs check in their environment

    @property
    def baseline(self) -> str:
        return self.settings.baseline

    def reps(self, kind: str) -> range:
        return range(1, self.settings.repetitions[kind] + 1)

    # one job each
    def fetch(self, model: str) -> FetchRun:
        return FetchRun(self.models[model], Path(layout.MODEL.format(model=model)), self.settings.device)

    def quantize(self, model: str, method: str) -> QuantizeRun:
        return QuantizeRun(RunId(QUANTIZE, model, method), self.methods[method], Path(layout.MODEL.format(model=model)),
                           _artifact(model, method), self.settings.device, self.settings.country,
                           self.settings.on_error)

    def prepare(self, model: str, task: str) -> PrepareRun:
        return PrepareRun(RunId(PREPARE, model, task=task), self.tasks[task], _artifact(model, self.baseline),
                          _prepared(model, task), self.settings.device, self.settings.on_error)

    def evaluate(self, model: str, method: str, rep: int) -> EvaluateRun:
        from .tasks import get_task_type

        runs = []
        for task in self.tasks.values():
            task_type, ids = get_task_type(task.type), RunId(EVALUATE, model, method, task.name, rep=rep)
            compares = task_type.compares_with_baseline and method != self.baseline
            record, items = _eval_paths(model, method, task.name, rep)
            prepared = _prepared(model, task.name) if task_type.prepares else None
            baseline_items = _eval_paths(model, self.baseline, task.name, rep)[1] if compares else None
            runs.append(TaskRun(ids, task, record, items, prepared, baseline_items))
        compared = any(r.baseline_items for r in runs)
        return EvaluateRun(model, method, rep, _artifact(model, method), tuple(runs),
                           _artifact(model, self.baseline) if compared else None, self.settings.device,
                           self.settings.country, self.settings.on_error)

    def benchmark(self, model: str, method: str, rep: int) -> BenchmarkRun:
        batches = tuple(BatchRun(RunId(BENCHMARK, model, method, batch_size=b, rep=rep),
                                 _bench_path(model, method, b, rep)) for b in self.settings.benchmark.batch_sizes)
        return BenchmarkRun(model, method, rep, _artifact(model, method), batches, self.settings.benchmark,
                            self.settings.device, self.settings.country, self.settings.on_error)

    # every job of a kind, for the study's targets and its run table
    def quantize_runs(self) -> Iterator[QuantizeRun]:
        return (self.quantize(m, q) for m in self.models for q in self.methods)

    def evaluate_runs(self) -> Iterator[EvaluateRun]:
        return (self.evaluate(m, q, r) for m in self.models for q in self.methods for r in self.reps(EVALUATE))

    def benchmark_runs(self) -> Iterator[BenchmarkRun]:
        return (self.benchmark(m, q, r) for m in self.models for q in self.methods for r in self.reps(BENCHMARK))

    # the rules' output patterns: the same paths, with Snakemake's wildcards for what a job is given
    def evaluate_outputs(self) -> dict[str, list[str]]:
        paths = [_eval_paths("{model}", "{method}", task, "{rep}") for task in self.tasks]
        return {"records": [str(p[0]) for p in paths], "item_logs": [str(p[1]) for p in paths]}

    def benchmark_outputs(self) -> list[str]:
        return [str(_bench_path("{model}", "{method}", b, "{rep}")) for b in self.settings.benchmark.batch_sizes]

    def benchmark_text_files(self) -> list[str]:
        text = self.settings.benchmark.text
        return [text.removeprefix("path:")] if text.startswith("path:") else []

    def evaluate_inputs(self, run: EvaluateRun) -> dict[str, Any]:
        """An evaluate job's inputs: the variant; what its task types prepared on the baseline; the baseline's
        artifact and item logs for tasks that compare with it; the local files the tasks read (mirrors, path:
        texts), so that editing one reruns the evaluations."""
        from .tasks import get_task_type

        compared = [str(t.baseline_items) for t in run.tasks if t.baseline_items]
        return {"artifact": str(run.artifact),
                "prepared": [str(t.prepared) for t in run.tasks if t.prepared],
                "baseline": [str(run.baseline_artifact), *compared] if run.baseline_artifact else [],
                "data": [f for t in run.tasks for f in get_task_type(t.task.type).data_files(t.task.params)]}

    def skipped_runs(self) -> Iterator[tuple[RunId, str, str]]:
        """(run id, backend, why) of a quantize run per model and skipped method: it cannot run here."""
        return ((RunId(QUANTIZE, model, method), self.backends[method], why)
                for model in self.models for method, why in self.skipped.items())


def _artifact(model: str, method: str) -> Path:
    return Path(layout.ARTIFACT.format(model=model, method=method))


def _prepared(model: str, task: str) -> Path:
    return Path(layout.PREPARED.format(model=model, task=task))


def _eval_paths(model: str, method: str, task: str, rep: int | str) -> tuple[Path, Path]:
    ids = {"model": model, "method": method, "task": task, "rep": rep}
    return Path(layout.EVAL_RECORD.format(**ids)), Path(layout.EVAL_ITEMS.format(**ids))


def _bench_path(model: str, method: str, batch_size: int, rep: int | str) -> Path:
    return Path(layout.BENCH_RECORD.format(model=model, method=method, batch=batch_size, rep=rep))


# A run crosses from the rule to its script as a plain dict: Snakemake compares params by their repr to decide
# what to rerun, and ignores objects it cannot represent (a dataclass among them).

def as_params(run: Any) -> dict[str, Any]:
    """The run's fields as plain values (paths as strings), without those that change nothing measured."""
    return _plain(run)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.metadata.get("measured", True)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return str(value) if isinstance(value, Path) else value


def from_params(cls: type, params: dict[str, Any], **not_measured: Any) -> Any:
    """The run of type `cls` that `as_params` made `params` from, with the fields it left out given here."""
    return _typed(cls, {**params, **not_measured})


def received(cls: type, snakemake: Any) -> Any:
    """The run a job script was given (its rule's `params.run`), with the study's on_error from the config."""
    not_measured = {f.name: setting(snakemake.config, f.name) for f in dataclasses.fields(cls)
                    if not f.metadata.get("measured", True)}
    return from_params(cls, snakemake.params.run, **not_measured)


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{name: _typed(hints[name], v) for name, v in value.items()})
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _typed(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        return tuple(_typed(args[0], v) for v in value)
    return Path(value) if hint is Path else value
