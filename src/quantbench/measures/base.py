"""What a benchmark measure provides: run-table columns of a benchmark row beyond the timed generation's,
declared with the code that computes them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..columns import Column

if TYPE_CHECKING:
    from ..jobs.variant import LoadedVariant
    from ..plan import BenchmarkSettings


@dataclass(frozen=True)
class Batch:
    """One timed batch, as a measure sees it."""

    size: int
    metrics: dict[str, Any]  # the timed generation's values (quantbench.benchmark.timed_generation)
    variant: LoadedVariant
    settings: BenchmarkSettings


class Measure(ABC):
    columns: ClassVar[tuple[Column, ...]]

    def setup(self, variant: LoadedVariant, settings: BenchmarkSettings) -> Any:
        """Once per job, before the first batch, in the job's guarded setup (a failure here is a failed row per
        batch); what it returns reaches every measure() call."""
        return None

    @abstractmethod
    def measure(self, batch: Batch, shared: Any) -> dict[str, Any]:
        """This measure's run-table values for one timed batch."""
