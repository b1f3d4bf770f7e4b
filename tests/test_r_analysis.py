"""The R statistics (analysis/stats.R via rpy2) on synthetic tables with known answers."""

import math
from pathlib import Path

import pandas as pd
import pytest

from quantbench import rbridge

pytest.importorskip("rpy2")
REPO = Path(__file__).resolve().parents[1]


def items_table(outcomes: dict[str, list[int]]) -> pd.DataFrame:
    """Per-item correctness (one list per method, same items) on task t of model m."""
    return pd.DataFrame([{"run_id": f"m/{method}/t/1", "doc_id": doc, "target": 1, "predicted": correct,
                          "correct": correct, "model": "m", "method": method, "task": "t", "rep": 1}
                         for method, values in outcomes.items() for doc, correct in enumerate(values)])


NO_ITEMS = items_table({})


def bench_table(groups: dict[int, dict[str, list[float]]], metric="throughput_tokens_per_s") -> pd.DataFrame:
    """Benchmark rows: batch size -> method -> one value per repetition."""
    return pd.DataFrame([{"run_id": f"m/{m}/bs{bs}/{r}", "kind": "benchmark", "status": "ok", "model": "m",
                          "method": m, "batch_size": bs, "rep": r, metric: v}
                         for bs, methods in groups.items() for m, values in methods.items()
                         for r, v in enumerate(values, 1)])


def eval_table(values: dict[str, tuple[float, float]], reps=1) -> pd.DataFrame:
    """Evaluate rows of task t: method -> (accuracy, energy_j), the same in every repetition."""
    return pd.DataFrame([{"run_id": f"m/{m}/t/{r}", "kind": "evaluate", "status": "ok", "model": "m", "method": m,
                          "task": "t", "rep": r, "accuracy": acc, "energy_j": energy}
                         for m, (acc, energy) in values.items() for r in range(1, reps + 1)])


@pytest.fixture
def run_stats(tmp_path):
    def run(runs, items=NO_ITEMS):
        runs.to_csv(tmp_path / "runs.csv", index=False)
        items.to_csv(tmp_path / "items.csv", index=False)
        rbridge.stats(REPO / "analysis" / "stats.R", tmp_path / "runs.csv", tmp_path / "items.csv", "fp32",
                      tmp_path / "stats.csv")
        return pd.read_csv(tmp_path / "stats.csv")
    return run


def test_mcnemar_records_discordant_counts(run_stats):
    base = [0] * 5 + [1] * 35                                  # baseline wrong on items 0-4
    mixed = [1, 1, 1, 0, 0] + [0] * 10 + [1] * 25              # c = 3 gained, b = 10 lost
    stats = run_stats(bench_table({1: {"fp32": [10, 11, 12]}}),
                      items_table({"fp32": base, "same": base, "mixed": mixed, "worse": [0] * 17 + [1] * 23}))
    mc = stats[stats.test == "mcnemar_exact"].set_index("method")
    assert mc.loc["same", ["n_baseline_only", "n_method_only", "p_value"]].tolist() == [0, 0, 1.0]
    assert mc.loc["mixed", ["n_baseline_only", "n_method_only"]].tolist() == [10, 3]
    # exact two-sided binomial on 13 discordant pairs, by hand
    assert mc.loc["mixed", "p_value"] == pytest.approx(2 * sum(math.comb(13, k) for k in range(10, 14)) / 2 ** 13)
    assert mc.loc["mixed", "effect"] == pytest.approx((3 - 10) / 40)
    assert mc.loc["worse", ["n_baseline_only", "n_method_only"]].tolist() == [12, 0]
    assert mc.loc["worse", "p_value"] == pytest.approx(2 * 0.5 ** 12)
    assert mc.loc["worse", "p_holm"] == pytest.approx(3 * 2 * 0.5 ** 12)  # smallest of three in its family
    assert set(mc.family) == {"mcnemar_exact|correct"}
    assert (mc.n_unverified == 40).all()  # these items carry no doc_hash: paired by id alone


def test_mcnemar_refuses_runs_that_scored_other_items(run_stats):
    from rpy2.rinterface_lib.embedded import RRuntimeError

    items = items_table({"fp32": [1] * 40, "fewer": [1] * 40})
    items = items[~((items.method == "fewer") & (items.doc_id >= 35))]  # 5 of the baseline's items not scored
    with pytest.raises(RRuntimeError, match="0 items of the fewer run are not in the fp32 run and 5"):
        run_stats(bench_table({1: {"fp32": [10, 11, 12]}}), items)


def test_identical_groups_large_p_shifted_groups_small_p_after_holm(run_stats):
    same = {"fp32": [10, 11, 12, 13], "b": [10, 11, 12, 13], "c": [10, 11, 12, 13]}
    shifted = {"fp32": [10, 11, 12, 13], "b": [20, 21, 22, 23], "c": [30, 31, 32, 33]}
    stats = run_stats(bench_table({1: same, 8: shifted}))
    kw = stats[stats.test == "kruskal_wallis"].set_index("group")
    assert kw.loc["bs1", "p_value"] == pytest.approx(1.0)
    assert kw.loc["bs8", "statistic"] == pytest.approx(12 / 156 * (10 ** 2 + 26 ** 2 + 42 ** 2) / 4 - 39)
    assert kw.loc["bs8", "p_holm"] == pytest.approx(2 * kw.loc["bs8", "p_value"]) and kw.loc["bs8", "p_holm"] < 0.05
    dunn = stats[(stats.test == "dunn") & (stats.group == "bs8")]
    assert len(dunn) == 3 and set(dunn.family) == {"dunn|throughput_tokens_per_s|m|bs8"}
    extremes = dunn[(dunn.method == "c") | (dunn.versus == "c")].sort_values("p_value").iloc[0]
    assert extremes.p_holm == pytest.approx(3 * extremes.p_value) and extremes.p_holm < 0.01
    assert (stats[(stats.test == "dunn") & (stats.group == "bs1")].p_holm == 1).all()
    # z > 0 when the method's values are larger than versus', as Cliff's delta reads (rstatix's sign is opposite)
    larger = {"fp32": 10, "b": 20, "c": 30}
    for row in dunn.itertuples():
        assert (row.statistic > 0) == (larger[row.method] > larger[row.versus]), row
        assert row.direction.startswith("positive: method")
    cliff = stats[(stats.test == "cliffs_delta") & (stats.group == "bs8")]
    assert (cliff.effect > 0).all() and (cliff.direction == dunn.direction.iloc[0]).all()


def test_cliffs_delta_hand_computed(run_stats):
    stats = run_stats(bench_table({1: {"fp32": [10, 11, 12, 13], "same": [10.5, 11.5, 12.5, 12.9],
                                       "fast": [20, 21, 22, 23]}}))
    cliff = stats[stats.test == "cliffs_delta"].set_index("method")
    assert cliff.loc["fast", "effect"] == pytest.approx(1.0)
    # by hand for `same` vs fp32: 9 pairs with x > y, 7 with x < y, of 16
    assert cliff.loc["same", "effect"] == pytest.approx((9 - 7) / 16)
    assert cliff.loc["same", "effect_ci_low"] < 0.125 < cliff.loc["same", "effect_ci_high"]
    assert (cliff.versus == "fp32").all() and cliff.p_value.isna().all()


def test_shapiro_wilk_exact_for_three_and_skipped_when_constant_or_short(run_stats):
    stats = run_stats(bench_table({1: {"fp32": [1.0, 2.0, 3.5], "flat": [5.0, 5.0, 5.0], "short": [1.0, 2.0]}},
                                  metric="latency_mean_s"))
    sw = stats[stats.test == "shapiro_wilk"]
    assert sw.method.tolist() == ["fp32"] and sw.metric.tolist() == ["latency_mean_s"]
    # n = 3 by hand: W = (x3 - x1)^2 / 2 / SS, p = 6/pi (asin sqrt W - asin sqrt 3/4)
    w = (3.5 - 1.0) ** 2 / 2 / sum((x - 6.5 / 3) ** 2 for x in (1.0, 2.0, 3.5))
    assert sw.statistic.iloc[0] == pytest.approx(w)
    assert sw.p_value.iloc[0] == pytest.approx(6 / math.pi * (math.asin(math.sqrt(w)) - math.asin(math.sqrt(0.75))),
                                               rel=1e-4)


def test_spearman_monotone_relation_gives_rho_one(run_stats):
    runs = eval_table({"fp32": (0.70, 300.0), "a": (0.65, 120.0), "b": (0.50, 100.0), "c": (0.45, 10.0)})
    stats = run_stats(runs)
    rho = stats[stats.test == "spearman"].iloc[0]
    assert rho.metric == "energy_j~accuracy" and rho.group == "t" and rho.n == 4
    assert rho.effect == pytest.approx(1.0)
    assert rho.p_value == pytest.approx(2 / 24)  # exact: 1 of 4! orderings is as extreme, two-sided
    assert "kruskal_wallis" not in set(stats.test)  # one repetition each: no test across repetitions


def test_evaluate_energy_tested_where_repetitions_exist(run_stats):
    runs = eval_table({"fp32": (0.7, 100.0), "a": (0.6, 50.0)}, reps=3)
    runs.loc[runs.method == "a", "energy_j"] += [0.0, 1.0, 2.0]
    stats = run_stats(runs)
    tested = stats[stats.metric == "energy_j"]
    assert set(tested.test) == {"shapiro_wilk", "kruskal_wallis", "cliffs_delta"}
    assert tested[tested.test == "cliffs_delta"].effect.iloc[0] == pytest.approx(-1.0)


def test_no_successful_runs_give_an_empty_table_with_every_column(run_stats):
    from synthetic_runs import failed_study

    stats = run_stats(failed_study())
    assert stats.empty and "n_baseline_only" in stats.columns and "family" in stats.columns


def test_kendall_agreement_of_the_quality_measures_against_scipy(run_stats):
    """Six variants ranked by a task's accuracy and by token perplexity (negated: lower is better): one swapped
    pair gives tau = 1 - 2/15; tau and its exact p as scipy computes them, the interval from Fisher's z with
    variance 0.437 / (n - 4)."""
    from scipy.stats import kendalltau

    accuracy = {"fp32": 0.70, "a": 0.68, "b": 0.66, "c": 0.64, "d": 0.62, "e": 0.60}
    perplexity = {"fp32": 18.0, "a": 18.5, "b": 19.0, "c": 19.5, "d": 21.0, "e": 20.0}  # d and e swapped
    rows = [{"run_id": f"m/{m}/{task}/1", "kind": "evaluate", "status": "ok", "model": "m", "method": m, "task": task,
             "rep": 1, "primary": primary, primary: value}
            for task, primary, values in (("t", "accuracy", accuracy), ("ppl", "perplexity_token", perplexity))
            for m, value in values.items()]
    stats = run_stats(pd.DataFrame(rows))
    row = stats[stats.test == "kendall"].iloc[0]
    assert {row.metric, "~".join(reversed(row.metric.split("~")))} & {"t:accuracy~ppl:perplexity_token"}
    expected = kendalltau(list(accuracy.values()), [-v for v in perplexity.values()])
    assert row.effect == pytest.approx(1 - 2 / 15) == pytest.approx(expected.statistic) and row.n == 6
    assert row.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    half = 1.959964 * math.sqrt(0.437 / 2)
    assert (row.effect_ci_low, row.effect_ci_high) == pytest.approx(
        (math.tanh(math.atanh(row.effect) - half), math.tanh(math.atanh(row.effect) + half)), rel=1e-5)


def test_kendall_orients_every_perplexity_so_that_higher_is_better(run_stats):
    """Generation's headline value is the answers' perplexity under the baseline: lower is better, like token
    perplexity, so two perplexities that rank the variants alike agree (tau = +1)."""
    token = {"fp32": 18.0, "a": 18.5, "b": 19.0, "c": 19.5, "d": 20.0}
    answers = {m: 3 * v for m, v in token.items()}
    rows = [{"run_id": f"m/{m}/{task}/1", "kind": "evaluate", "status": "ok", "model": "m", "method": m, "task": task,
             "rep": 1, "primary": primary, primary: value}
            for task, primary, values in (("gen", "perplexity_under_baseline", answers), ("ppl", "perplexity_token", token))
            for m, value in values.items()]
    stats = run_stats(pd.DataFrame(rows))
    assert stats[stats.test == "kendall"].effect.tolist() == [pytest.approx(1.0)]
