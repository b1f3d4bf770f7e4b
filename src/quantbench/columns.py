"""A run-table column as its producer declares it: name, type, unit, which rows fill it and what it means.

Each producer declares the columns it fills (the task types, the benchmark's timed generation and its
measures, the records' common fields); quantbench.runtable collects them into the run table's schema.
"""

from __future__ import annotations

from dataclasses import dataclass

Q, E, B = "quantize", "evaluate", "benchmark"
ALL = (Q, E, B)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # str | int | float | bool
    unit: str  # "" for counts, names and ratios without a unit
    rows: tuple[str, ...]  # the run kinds whose rows can fill it
    group: str
    meaning: str
    tested: tuple[str, ...] = ()  # the run kinds whose values analysis/stats.R compares across methods
    report: str = ""  # its heading, unit included, in the report's speed table (benchmark rows); "": not shown
