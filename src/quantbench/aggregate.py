"""Records -> tidy run table (one row per run) and per-item table (for paired tests).

The table holds exactly the records it is given: the rule passes the study's own records (its
inputs), so a method or task removed from the config, or another study's files in the same folder,
never reach this study's table, statistics or figures. Every value must be a declared column
(runtable.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd

from . import atomic, records, runtable
from .layout import QUANTIZATION_RECORD


def rows(artifacts: Iterable[Path], record_files: Iterable[Path], skipped: Iterable[dict]) -> list[dict]:
    """One row per quantization (artifact folder), per evaluate/benchmark record, and per skipped method."""
    out = [records.row(records.read(Path(a) / QUANTIZATION_RECORD)) for a in artifacts]
    out += [records.row(records.read(p)) for p in record_files]
    out += [records.row(r) for r in skipped]
    for row in out:
        runtable.check_declared(row, f"the record of {row['run_id']}")
    return out


def item_rows(item_logs: Iterable[Path], key: str = "correct") -> list[dict]:
    """The items of every item log that carry `key`: scored choices ("correct"), or a perplexity text's windows
    ("window"); generated text stays in the log."""
    items = []
    for path in item_logs:
        logged = (json.loads(line) for line in Path(path).read_text().splitlines() if line)
        items.extend(item for item in logged if key in item)
    return items


def build(run_rows: list[dict], items: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.DataFrame(run_rows, columns=runtable.NAMES)
    duplicated = runs.run_id[runs.run_id.duplicated()]
    if not duplicated.empty:
        raise ValueError(f"run ids given twice: {sorted(set(duplicated))}")
    runs = runs.dropna(axis=1, how="all").sort_values("run_id", kind="stable").reset_index(drop=True)
    items_df = pd.DataFrame(items).reindex(columns=["run_id", "doc_id", "doc_hash", "target", "predicted", "correct"])
    ids = runs.set_index("run_id").reindex(columns=["model", "method", "task", "rep"])
    return runs, items_df.join(ids, on="run_id")


def write(runs: pd.DataFrame, items: pd.DataFrame, runs_csv: Path, runs_parquet: Path, items_csv: Path) -> None:
    atomic.write_text(runs_csv, runs.to_csv(index=False))
    with atomic.atomic_path(runs_parquet) as tmp:
        runs.to_parquet(tmp, index=False)
    atomic.write_text(items_csv, items.to_csv(index=False))


def write_windows(window_items: list[dict], windows_csv: Path) -> None:
    """One row per scored window of a perplexity text (runtable.WINDOW_COLUMNS)."""
    table = pd.DataFrame(window_items).reindex(columns=runtable.WINDOW_NAMES)
    atomic.write_text(windows_csv, table.to_csv(index=False))
