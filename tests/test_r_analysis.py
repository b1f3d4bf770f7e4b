"""The R statistics (analysis/stats.R via rpy2) on synthetic tables with known answers."""

from pathlib import Path

import pandas as pd
import pytest

from quantbench import rbridge

pytest.importorskip("rpy2")
REPO = Path(__file__).resolve().parents[1]


def items_table(flips: dict[str, int], n=40) -> pd.DataFrame:
    """Baseline right on every item; each method gets `flips` items wrong (a one-sided change)."""
    rows = []
    for method, wrong in {"fp32": 0, **flips}.items():
        for doc in range(n):
            correct = int(doc >= wrong)
            rows.append({"run_id": f"m/{method}/t/1", "doc_id": doc, "target": 1, "predicted": correct,
                         "correct": correct, "model": "m", "method": method, "task": "t", "rep": 1})
    return pd.DataFrame(rows)


def runs_table(throughputs: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"run_id": f"m/{m}/bs1/{r}", "kind": "benchmark", "status": "ok", "model": "m", "method": m,
             "batch_size": 1, "rep": r, "throughput_tokens_per_s": v}
            for m, values in throughputs.items() for r, v in enumerate(values, 1)]
    return pd.DataFrame(rows)


@pytest.fixture
def run_stats(tmp_path):
    def run(runs, items):
        runs.to_csv(tmp_path / "runs.csv", index=False)
        items.to_csv(tmp_path / "items.csv", index=False)
        rbridge.stats(REPO / "analysis" / "stats.R", tmp_path / "runs.csv", tmp_path / "items.csv", "fp32",
                      tmp_path / "stats.csv")
        return pd.read_csv(tmp_path / "stats.csv")
    return run


def test_mcnemar_identical_large_p_shifted_small_p_after_holm(run_stats):
    stats = run_stats(runs_table({"fp32": [10, 11, 12]}), items_table({"same": 0, "worse": 12}))
    mc = stats[stats.test == "mcnemar_exact"].set_index("method")
    assert mc.loc["same", "p_value"] == 1.0
    assert mc.loc["worse", "p_value"] == pytest.approx(2 * 0.5 ** 12)  # exact binomial on 12 discordant pairs
    assert mc.loc["worse", "p_holm"] < 0.01
    assert mc.loc["worse", "effect"] == pytest.approx(-12 / 40)


def test_kruskal_wallis_and_cliffs_delta(run_stats):
    stats = run_stats(runs_table({"fp32": [10, 11, 12, 13], "same": [10.5, 11.5, 12.5, 12.9],
                                  "fast": [20, 21, 22, 23]}), items_table({}))
    kw = stats[stats.test == "kruskal_wallis"].iloc[0]
    assert kw.p_value < 0.05
    cliff = stats[stats.test == "cliffs_delta"].set_index("method")
    assert cliff.loc["fast", "effect"] == pytest.approx(1.0)
    # by hand for `same` vs fp32: 9 pairs with x > y, 7 with x < y, of 16
    assert cliff.loc["same", "effect"] == pytest.approx((9 - 7) / 16)


def test_identical_groups_give_large_p(run_stats):
    stats = run_stats(runs_table({"fp32": [10, 11, 12], "b": [10, 11, 12]}), items_table({}))
    assert stats[stats.test == "kruskal_wallis"].iloc[0].p_value == pytest.approx(1.0)
