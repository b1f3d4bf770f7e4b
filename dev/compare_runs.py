"""Do two run tables of one study agree? Rows by run id, then every column both have that does not depend
on timing, value by value; timing-dependent columns (latency, throughput, energy, memory, dates) and the
environment are left out, as two runs of a study never agree on them.

    .venv/bin/python dev/compare_runs.py before/results/tables/runs.csv results/tables/runs.csv
"""

from __future__ import annotations

import argparse
import math
import sys

import pandas as pd

from quantbench import runtable

TIMING_GROUPS = ("speed", "memory", "energy", "environment", "status")
TIMING = {"load_time_s", "quantize_time_s", "memory_bandwidth_gbs", "bandwidth_bound_tokens_per_s",
          "bandwidth_fraction"}
KEPT = {"error", "reason"}  # status columns whose values are not clocks


def deterministic(columns) -> list[str]:
    groups = {c.name: c.group for c in runtable.COLUMNS}
    return [c for c in columns if c not in TIMING and (groups.get(c) not in TIMING_GROUPS or c in KEPT)
            and c in groups]


def same(a, b, rel: float) -> bool:
    if pd.isna(a) and pd.isna(b):
        return True
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=rel)
        except (TypeError, ValueError):
            return False
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=pd.read_csv)
    parser.add_argument("after", type=pd.read_csv)
    parser.add_argument("--rel", type=float, default=0.0, help="relative tolerance for floats (default: exact)")
    args = parser.parse_args()
    before, after = args.before.set_index("run_id"), args.after.set_index("run_id")
    print(f"rows: {len(before)} before, {len(after)} after; only before: {sorted(set(before.index) - set(after.index))}; "
          f"only after: {sorted(set(after.index) - set(before.index))}")
    columns = deterministic(before.columns.intersection(after.columns))
    print(f"columns compared ({len(columns)}): {', '.join(columns)}")
    print(f"columns only before: {sorted(set(before.columns) - set(after.columns))}")
    print(f"columns only after: {sorted(set(after.columns) - set(before.columns))}")
    rows = before.index.intersection(after.index)
    differ = [(run, c, before.at[run, c], after.at[run, c]) for c in columns for run in rows
              if not same(before.at[run, c], after.at[run, c], args.rel)]
    print(f"values compared: {len(columns) * len(rows)}; different: {len(differ)}")
    for run, column, old, new in differ:
        print(f"  {run} {column}: {old!r} -> {new!r}")
    sys.exit(1 if differ or set(before.index) != set(after.index) else 0)


if __name__ == "__main__":
    main()
