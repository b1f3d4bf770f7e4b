"""Adding a benchmark column is one new measure module plus its two registry lines: a toy measure written
that way fills its column in every benchmark row, the run table, the report's speed table and its glossary,
without touching anything else."""

import pandas as pd

from test_task_registry import run_with_a_changed_package
from workflow_runner import METHODS

# The new measure: the share of a generate call's median time spent on the prompt.
PREFILL_SHARE = '''
"""Toy measure: how much of a generate call the prompt takes."""

from ..columns import B, Column
from .base import Measure


class PrefillShare(Measure):
    columns = (Column("prefill_share", "float", "", (B,), "speed", "median prefill time over median generate time",
                      report="prefill share"),)

    def measure(self, batch, shared):
        return {"prefill_share": batch.metrics["prefill_p50_s"] / batch.metrics["latency_p50_s"]}
'''


def add_measure(package) -> None:
    (package / "measures" / "prefill_share.py").write_text(PREFILL_SHARE)
    registry = package / "measures" / "__init__.py"
    text = registry.read_text()
    text = text.replace("from .memory import KVCacheBytes, ModelMemory\n",
                        "from .memory import KVCacheBytes, ModelMemory\nfrom .prefill_share import PrefillShare\n")
    text = text.replace("    ModelMemory(),\n", "    ModelMemory(),\n    PrefillShare(),\n")
    registry.write_text(text)


def test_a_new_benchmark_column_runs_through_the_dag(tiny_model, tmp_path):
    config = {"models": {"tiny": {"source": f"path:{tiny_model}"}},
              "methods": {"fp32": METHODS["fp32"], "bnb-int8": METHODS["bnb-int8"]},
              "benchmark": {"batch_sizes": [1, 2], "prompt_tokens": 8, "new_tokens": 3, "warmup": 0, "iterations": 1,
                            "idle_seconds": 0, "cooldown_seconds": 0},
              "repetitions": {"evaluate": 1, "benchmark": 1}}
    workdir, changed = run_with_a_changed_package(tmp_path, add_measure, config)
    assert changed == ["measures/__init__.py", "measures/prefill_share.py"]

    runs = pd.read_csv(workdir / "results/tables/runs.csv")
    bench = runs[runs.kind == "benchmark"]
    assert len(bench) == 4 and (bench.prefill_share > 0).all()
    report = (workdir / "results/report.html").read_text()
    assert ">prefill share</th>" in report  # a column of the speed table
    assert "<code>prefill_share</code>" in report and "median prefill time over median generate time" in report
