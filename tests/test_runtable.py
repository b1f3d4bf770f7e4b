"""The run-table schema is the one contract: generated files follow it, R refuses what it lacks."""

from pathlib import Path

import pandas as pd
import pytest
from synthetic_runs import study

from quantbench import rbridge, runtable
from quantbench.tasks import TASK_TYPES

REPO = Path(__file__).resolve().parents[1]


def test_generated_files_follow_the_schema():
    hint = "regenerate: python -m quantbench.runtable"
    assert (REPO / "results" / "README.md").read_text() == runtable.readme(), hint


def test_task_types_fill_declared_columns_only():
    for kind in TASK_TYPES.values():
        assert kind.columns and {c.name for c in kind.columns} <= set(runtable.NAMES), kind.name


def test_synthetic_study_uses_declared_columns_only():
    assert set(study().columns) <= set(runtable.NAMES)


@pytest.fixture(scope="module")
def r_table():
    pytest.importorskip("rpy2")
    import rpy2.robjects as ro

    rbridge.call(REPO / "analysis" / "stats.R", "invisible", True)  # gives R the declared columns too
    return ro


def test_r_refuses_a_column_the_schema_lacks(r_table, tmp_path):
    study().to_csv(tmp_path / "runs.csv", index=False)
    runs = r_table.r["read_run_table"](str(tmp_path / "runs.csv"))
    assert list(r_table.r["nrow"](runs)) == [len(study())]
    getter = r_table.r("function(x, name) x[[name]]")
    assert len(getter(runs, "peak_gpu_reserved_mb")) == len(study())  # declared, not measured here: NA
    for name in ("throughput", "tokens_per_s"):  # `$` would partially match the first without the schema
        with pytest.raises(Exception, match=f"no column '{name}' in the run table"):
            getter(runs, name)


def test_r_refuses_a_table_with_an_undeclared_column(r_table, tmp_path):
    study().assign(renamed_metric=1.0).to_csv(tmp_path / "runs.csv", index=False)
    with pytest.raises(Exception, match="not in the run-table schema: renamed_metric"):
        r_table.r["read_run_table"](str(tmp_path / "runs.csv"))


def test_every_run_table_column_has_a_meaning_and_a_type():
    assert len(set(runtable.NAMES)) == len(runtable.NAMES)
    for column in runtable.COLUMNS:
        assert column.type in runtable.R_TYPES and column.meaning and column.rows, column.name
    assert pd.Series(runtable.NAMES).str.fullmatch(r"[a-z][a-z0-9_]*").all()
