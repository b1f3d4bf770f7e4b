"""The study's verdicts: each method against its model's baseline, on the items, windows and repetitions both
measured, at the declared margins."""

import numpy as np
import pandas as pd
import pytest

from quantbench.verdicts import in_words, verdicts

MARGINS = {"accuracy": 0.02, "perplexity": 0.05, "kld": 0.05, "speed": 0.05, "energy": 0.05}


def tables(n_items=2000, seed=0):
    """fp32 (baseline), same (2 % of the items lost and as many gained) and worse (8 points lower); 40 text
    windows; 5 benchmark repetitions where same is as fast and worse 30 % slower."""
    rng = np.random.default_rng(seed)
    base = rng.random(n_items) < 0.6
    swapped = n_items // 50
    lost = rng.choice(np.flatnonzero(base), swapped, replace=False)
    gained = rng.choice(np.flatnonzero(~base), swapped, replace=False)
    same = base.copy()
    same[lost], same[gained] = False, True
    answers = {"fp32": base, "same": same, "worse": base & ~((rng.random(n_items) < 0.08 / 0.6))}
    runs, items, windows = [], [], []
    for method, correct in answers.items():
        for task, primary in (("sentiment", "accuracy"), ("perplexity", "perplexity_token")):
            run_id = f"m/{method}/{task}/1"
            runs.append({"run_id": run_id, "kind": "evaluate", "status": "ok", "model": "m", "method": method,
                         "task": task, "rep": 1, "primary": primary})
        items += [{"run_id": f"m/{method}/sentiment/1", "doc_id": i, "correct": int(c)} for i, c in enumerate(correct)]
        nll_shift, kld = {"fp32": (0.0, 0.0), "same": (0.001, 0.002), "worse": (0.2, 0.3)}[method]
        windows += [{"run_id": f"m/{method}/perplexity/1", "window": w, "tokens": 256,
                     "nll": 256 * (2.9 + 0.1 * np.sin(w) + nll_shift + 0.01 * rng.standard_normal()),
                     "kld": 256 * kld * (1 + 0.1 * rng.standard_normal()) if method != "fp32" else None}
                    for w in range(40)]
        speed = {"fp32": 100.0, "same": 100.0, "worse": 70.0}[method]
        runs += [{"run_id": f"m/{method}/bs1/{r}", "kind": "benchmark", "status": "ok", "model": "m", "method": method,
                  "batch_size": 1, "rep": r, "decode_tokens_per_s": speed * (1 + 0.005 * rng.standard_normal()),
                  "energy_per_token_j": 1 / speed * (1 + 0.005 * rng.standard_normal())} for r in range(1, 6)]
    return pd.DataFrame(runs), pd.DataFrame(items), pd.DataFrame(windows)


def verdict_of(table, method, metric, batch_size=None):
    rows = table[(table.method == method) & (table.metric == metric)]
    if batch_size is not None:
        rows = rows[rows.batch_size == batch_size]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_an_equal_variant_is_non_inferior_and_a_worse_one_inferior_on_every_measure():
    table = verdicts(*tables(), baseline="fp32", margins=MARGINS)
    for metric in ("accuracy", "perplexity_token", "kld_mean"):
        assert verdict_of(table, "same", metric).verdict == "non-inferior", metric
        assert verdict_of(table, "worse", metric).verdict == "inferior", metric
    for metric in ("decode_tokens_per_s", "energy_per_token_j"):
        assert verdict_of(table, "same", metric, 1).verdict == "non-inferior", metric
        assert verdict_of(table, "worse", metric, 1).verdict == "inferior", metric
    assert set(table.versus) == {"fp32"} and "fp32" not in set(table.method)
    worse = verdict_of(table, "worse", "accuracy")
    assert worse.estimate == pytest.approx(-0.08, abs=0.02) and worse.ci_low < worse.estimate < worse.ci_high


def test_a_verdict_that_more_items_would_decide_says_how_many():
    table = verdicts(*tables(n_items=150), baseline="fp32", margins=MARGINS)
    same = verdict_of(table, "same", "accuracy")
    assert same.verdict == "inconclusive" and same.items_to_decide > 150
    assert in_words(same).startswith("inconclusive: ") and f"about {int(same.items_to_decide)} items" in in_words(same)
    assert "margin 2 " not in in_words(same) and "margin 2" in in_words(same)  # points, not a share


def test_runs_that_scored_other_windows_get_no_perplexity_verdict():
    runs, items, windows = tables()
    windows = windows[~((windows.run_id == "m/same/perplexity/1") & (windows.window == 0))]
    table = verdicts(runs, items, windows, baseline="fp32", margins=MARGINS)
    assert table[(table.method == "same") & (table.metric == "perplexity_token")].empty


def test_a_method_quantized_three_times_gets_one_verdict_over_its_quantizations():
    """same@q2 and same@q3 repeat method same (other calibration samples): one more row per measure, the mean of
    the three estimates, its interval widened by their spread."""
    runs, items, windows = tables()
    extra_runs, extra_items, extra_windows = [], [], []
    for rep in (2, 3):
        name = f"same@q{rep}"
        extra_runs.append(runs[runs.method == "same"].assign(
            method=name, run_id=lambda r, n=name: r.run_id.str.replace("m/same/", f"m/{n}/")))
        extra_items.append(items[items.run_id.str.startswith("m/same/")].assign(
            run_id=lambda r, n=name: r.run_id.str.replace("m/same/", f"m/{n}/")))
        extra_windows.append(windows[windows.run_id.str.startswith("m/same/")].assign(
            run_id=lambda r, n=name: r.run_id.str.replace("m/same/", f"m/{n}/"), nll=lambda r, k=rep: r.nll * (1 + k / 1e3)))
    runs = pd.concat([runs, *extra_runs], ignore_index=True)
    runs["configured_method"] = runs.method.str.replace(r"@q\d$", "", regex=True)
    table = verdicts(runs, pd.concat([items, *extra_items]), pd.concat([windows, *extra_windows]), baseline="fp32",
                     margins=MARGINS)
    pooled = table[table.method == "same@all"].set_index("metric")
    assert set(pooled.index) == {"accuracy", "perplexity_token", "kld_mean", "decode_tokens_per_s", "energy_per_token_j"}
    assert (pooled.quantizations == 3).all() and "worse@all" not in set(table.method)
    ppl = table[table.metric == "perplexity_token"].set_index("method")
    three = ppl.loc[["same", "same@q2", "same@q3"]]
    assert pooled.loc["perplexity_token", "estimate"] == pytest.approx(three.estimate.mean())
    assert pooled.loc["perplexity_token", "quantization_sd"] == pytest.approx(three.estimate.std())
    width = pooled.loc["perplexity_token", "ci_high"] - pooled.loc["perplexity_token", "ci_low"]
    assert width > (three.ci_high - three.ci_low).mean()  # the calibration's spread widens it
    assert "over 3 quantizations, seed-to-seed sd" in in_words(table[table.method == "same@all"].iloc[0])


def test_a_noisy_baseline_leaves_a_rate_positive():
    """Three timings with one slow outlier: Fieller's interval of the ratio reaches below 0, which no positive
    rate can; the verdict's interval stops at -100 %."""
    runs = pd.DataFrame([{"run_id": f"m/{m}/bs1/{r}", "kind": "benchmark", "status": "ok", "model": "m", "method": m,
                          "batch_size": 1, "rep": r, "decode_tokens_per_s": v, "energy_per_token_j": 1 / v}
                         for m, values in (("fp32", (15.8, 15.7, 17.1)), ("ao", (14.3, 7.7, 22.2)))
                         for r, v in enumerate(values, 1)])
    table = verdicts(runs, pd.DataFrame(), pd.DataFrame(), baseline="fp32", margins=MARGINS)
    energy = verdict_of(table, "ao", "energy_per_token_j", 1)
    assert energy.ci_low == -1.0 and energy.verdict == "inconclusive"


def test_one_repetition_says_it_has_no_interval():
    """One timing per side (a smoke study): no interval and no pooled row, not an error."""
    runs = pd.DataFrame([{"run_id": f"m/{m}/bs{b}/1", "kind": "benchmark", "status": "ok", "model": "m",
                          "method": m, "configured_method": m, "batch_size": b, "rep": 1,
                          "decode_tokens_per_s": 10.0, "energy_per_token_j": 0.1}
                         for m in ("fp32", "ao") for b in (1, 2)])
    table = verdicts(runs, pd.DataFrame(), pd.DataFrame(), baseline="fp32", margins=MARGINS)
    assert len(table) == 4 and (table.verdict == "inconclusive").all() and table.estimate.isna().all()
    assert table.note.str.startswith("fewer than two repetitions").all()
