"""What every task type provides: the one place that knows how a kind of task is configured,
prepared, evaluated and reported."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..columns import E, Column


@dataclass
class Inputs:
    """What an evaluate job hands a task besides the variant's runtime."""

    device: str = "cpu"
    prepared: Path | None = None  # prepare()'s folder (checksums verified), for types that prepare
    prepared_details: dict[str, Any] = field(default_factory=dict)  # what prepare() returned
    baseline_items: Path | None = None  # the baseline's item log of the same task and repetition
    # the baseline's runtime, loaded on demand once the variant's is closed (one model in memory at a time)
    load_baseline: Callable[[], Any] | None = None


@dataclass
class Scores:
    """One evaluation: run-table values, per-item rows, and what only the record keeps."""

    metrics: dict[str, Any]
    primary: str  # the run-table column holding the headline quality value
    items: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def quality(name: str, type_: str, meaning: str, unit: str = "") -> Column:
    """A quality column of evaluate rows."""
    return Column(name, type_, unit, (E,), "quality", meaning)


# Columns several task types fill
ACCURACY = (
    quality("accuracy", "float", "share of items answered correctly (choice tasks: by `metric`; classification "
            "heads: by the head's prediction)"),
    quality("accuracy_ci_low", "float", "lower end of accuracy's 95% Wilson score interval"),
    quality("accuracy_ci_high", "float", "upper end of accuracy's 95% Wilson score interval"),
)
N_ITEMS = quality("n_items", "int", "items (documents, prompts) the task scored")


class TaskType(ABC):
    """A kind of task. `schema` holds JSON-schema properties of a task entry besides `type` (defaults are
    filled in before any method sees the entry); `columns` declares the run-table columns its rows fill."""

    name: ClassVar[str]
    schema: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    # prepare() runs once per model on the baseline (rule prepare_task); its folder reaches evaluate()
    prepares: ClassVar[bool] = False
    # a variant's evaluate job waits for the baseline's evaluation of the same task and repetition
    compares_with_baseline: ClassVar[bool] = False

    def problem(self, task: dict[str, Any]) -> str | None:
        """Why a (schema-valid, defaults filled) task entry cannot run; None when it looks runnable."""
        return None

    @abstractmethod
    def describe(self, task: dict[str, Any]) -> str:
        """One line saying what the task reports, printed when a study is planned."""

    def data_files(self, task: dict[str, Any]) -> list[str]:
        """Local files the task reads beyond the package's own: an edit to one reruns its evaluations."""
        return []

    def prepare(self, runtime, task: dict[str, Any], out: Path) -> dict[str, Any]:
        """Write what every variant's evaluation shares into `out`; return the record's details."""
        raise NotImplementedError(f"task type {self.name!r} prepares nothing")

    def load_libraries(self, task: dict[str, Any]) -> None:
        """Once per process, before any task is metered: imports and indexes whose cost is the process's, not
        the task's (else the first task of a job pays them, and variants order their tasks differently)."""

    @abstractmethod
    def evaluate(self, runtime, task: dict[str, Any], inputs: Inputs) -> Scores:
        """Score the variant; this is what the energy meter measures."""

    def compare(self, runtime, task: dict[str, Any], scores: Scores, inputs: Inputs) -> dict[str, Any]:
        """Run-table values that compare this evaluation with the baseline's, computed after the meter
        stopped (analysis, not the variant's cost). `runtime` may be closed to make room for the baseline's."""
        return {}


def no_grad(fn: Callable) -> Callable:
    """torch.no_grad() as a decorator that imports torch at the first call, not at import: the registry of task
    types is read by the planner (quantbench.plan), which must not pay torch's import."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        import torch

        return torch.no_grad()(fn)(*args, **kwargs)

    return call


def accuracy_with_interval(correct: list[int]) -> dict[str, float]:
    """Share of items answered correctly, with its 95% Wilson score interval (scipy's binomtest): honest at
    100 items, where a normal interval would overshoot [0, 1] near the ends."""
    from scipy.stats import binomtest

    interval = binomtest(sum(correct), len(correct)).proportion_ci(confidence_level=0.95, method="wilson")
    return {"accuracy": sum(correct) / len(correct), "accuracy_ci_low": float(interval.low),
            "accuracy_ci_high": float(interval.high)}
