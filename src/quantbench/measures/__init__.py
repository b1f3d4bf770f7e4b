"""The benchmark's measures: what a benchmark row holds beyond the timed generation's values. Adding a
column = one module with its Measure (its columns declared with the code that computes them), plus its
import and its entry here."""

from __future__ import annotations

from .bandwidth import BandwidthBound
from .base import Batch, Measure
from .kernel import Kernel
from .memory import KVCacheBytes, ModelMemory

MEASURES: tuple[Measure, ...] = (
    BandwidthBound(),
    Kernel(),
    KVCacheBytes(),
    ModelMemory(),
)

__all__ = ["MEASURES", "Batch", "Measure"]
