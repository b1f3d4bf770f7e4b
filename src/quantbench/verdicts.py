"""The study's decisions: per model, each method against that model's baseline, on every task and batch size,
the interval of the difference and its verdict at the declared margin (quantbench.decisions), in words a
reviewer can quote. "non-inferior" is a one-sided test at alpha 0.025 (the 95 % interval's bound)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from . import decisions, runtable

@dataclass(frozen=True)
class Compared:
    """What a verdict compares, on which scale its margin is declared, and which way is better."""

    margin: str  # key of the config's `margins:`
    metric: str  # the run-table column compared
    relative: bool  # the difference as variant / baseline - 1 (else variant - baseline)
    higher_is_better: bool


ACCURACY = Compared("accuracy", "accuracy", relative=False, higher_is_better=True)
PERPLEXITY = Compared("perplexity", "perplexity_token", relative=True, higher_is_better=False)
KLD = Compared("kld", "kld_mean", relative=False, higher_is_better=False)
SPEED = Compared("speed", "decode_tokens_per_s", relative=True, higher_is_better=True)
ENERGY = Compared("energy", "energy_per_token_j", relative=True, higher_is_better=False)
COMPARED = {c.metric: c for c in (ACCURACY, PERPLEXITY, KLD, SPEED, ENERGY)}

COLUMNS = ["model", "method", "versus", "task", "batch_size", "metric", "estimate", "ci_low", "ci_high", "margin",
           "relative", "verdict", "n", "items_to_decide", "quantizations", "quantization_sd", "note"]
ALL_QUANTIZATIONS = "@all"  # suffix of a configured method's verdict over its quantization repetitions


def verdicts(runs: pd.DataFrame, items: pd.DataFrame, windows: pd.DataFrame, baseline: str,
             margins: dict[str, float]) -> pd.DataFrame:
    """One row per model, method (not the baseline), and task or batch size: the interval of the difference
    from the baseline on the task's headline measure (accuracy; token perplexity and KLD), or on decode speed and
    energy per token over the benchmark's repetitions."""
    runs = runs.reindex(columns=runtable.NAMES)  # a study without tasks (or benchmarks) lacks their columns
    ok = runs[runs.status == "ok"]
    rows = []
    for model, of_model in ok.groupby("model"):
        methods = [m for m in of_model.method.unique() if m != baseline]
        evaluated = of_model[(of_model.kind == "evaluate") & (of_model.rep == 1)]
        for method in methods:
            for task, rows_of_task in evaluated[evaluated.method.isin([baseline, method])].groupby("task"):
                primary = rows_of_task.primary.iloc[0]
                pair = {m: rows_of_task[rows_of_task.method == m] for m in (baseline, method)}
                if any(p.empty for p in pair.values()):
                    continue
                ids = {"model": model, "method": method, "task": task}
                if primary == "accuracy" and "correct" in items:
                    rows.append(_accuracy(ids, items, pair, baseline, margins))
                elif primary == "perplexity_token" and not windows.empty:
                    rows += _perplexity(ids, windows, pair, margins)
        benchmarked = of_model[of_model.kind == "benchmark"]
        for batch, of_batch in benchmarked.groupby("batch_size"):
            base = of_batch[of_batch.method == baseline]
            for method in methods:
                variant = of_batch[of_batch.method == method]
                if base.empty or variant.empty:
                    continue
                ids = {"model": model, "method": method, "batch_size": int(batch)}
                for measure in (m for m in (SPEED, ENERGY) if m.metric in of_batch):
                    rows.append(_repetitions(ids, measure, base[measure.metric], variant[measure.metric], margins))
    table = pd.DataFrame(rows, columns=COLUMNS).assign(versus=baseline, quantizations=1)
    return pd.concat([table, _over_quantizations(table, _configured(runs), margins)], ignore_index=True)


def _row(ids: dict, measure: Compared, estimate: float, interval: tuple[float, float], margins: dict[str, float],
         n: int, **extra) -> dict:
    margin = margins[measure.margin]
    return {**ids, "metric": measure.metric, "estimate": estimate, "ci_low": interval[0], "ci_high": interval[1],
            "margin": margin, "relative": measure.relative,
            "verdict": decisions.verdict(*interval, margin, higher_is_better=measure.higher_is_better), "n": n,
            **extra}


def _accuracy(ids: dict, items: pd.DataFrame, pair: dict[str, pd.DataFrame], baseline: str,
              margins: dict[str, float]) -> dict:
    """Tango's interval of the paired difference of accuracy on the items both runs scored (by doc_id)."""
    base_run, variant_run = (pair[m].run_id.iloc[0] for m in (baseline, ids["method"]))
    scored = {run: items[items.run_id == run].set_index("doc_id").correct for run in (base_run, variant_run)}
    both = pd.concat(scored, axis=1, join="inner")
    b_right, v_right = both[base_run].astype(bool), both[variant_run].astype(bool)
    a, b = int((b_right & v_right).sum()), int((b_right & ~v_right).sum())
    c, d = int((~b_right & v_right).sum()), int((~b_right & ~v_right).sum())
    margin = margins[ACCURACY.margin]
    row = _row(ids, ACCURACY, decisions.paired_difference(a, b, c, d), decisions.tango_interval(a, b, c, d),
               margins, a + b + c + d, note=f"{b} items lost, {c} gained")
    if row["verdict"] == "inconclusive":
        row["items_to_decide"] = decisions.items_to_decide(a, b, c, d, margin)
    return row


def _perplexity(ids: dict, windows: pd.DataFrame, pair: dict[str, pd.DataFrame],
                margins: dict[str, float]) -> list[dict]:
    """Block-bootstrap intervals over the text's windows, scored alike by both: the relative change of token
    perplexity, and the variant's mean KL divergence from the baseline (the baseline's own is 0)."""
    base_run, variant_run = (pair[m].run_id.iloc[0] for m in pair)
    base, variant = (windows[windows.run_id == run].set_index("window").sort_index() for run in (base_run, variant_run))
    if base.empty or variant.empty or not base.index.equals(variant.index) or not base.tokens.equals(variant.tokens):
        return []
    tokens = base.tokens.to_numpy()
    change = math.exp((variant.nll.sum() - base.nll.sum()) / tokens.sum()) - 1
    rows = [_row(ids, PERPLEXITY, change, decisions.perplexity_change_interval(
        base.nll / base.tokens, variant.nll / variant.tokens, tokens), margins, len(base))]
    if variant.kld.notna().all():
        per_window = (variant.kld / variant.tokens).to_numpy()
        rows.append(_row(ids, KLD, float(variant.kld.sum() / tokens.sum()), decisions.kld_difference_interval(
            [0.0] * len(per_window), per_window, tokens), margins, len(base)))
    return rows


def _repetitions(ids: dict, measure: Compared, base: pd.Series, variant: pd.Series, margins: dict[str, float]) -> dict:
    """Fieller's interval of the ratio of the repetitions' means, less 1; a rate or an energy is positive, so the
    ratio's interval starts at 0 at the least (Fieller's can reach below it when the baseline is noisy)."""
    base, variant = base.dropna(), variant.dropna()
    if len(base) < 2 or len(variant) < 2:
        return {**ids, "metric": measure.metric, "verdict": "inconclusive", "n": min(len(base), len(variant)),
                "margin": margins[measure.margin], "relative": True,
                "note": "fewer than two repetitions of one side: no interval"}
    low, high = decisions.relative_difference_of_means(base.tolist(), variant.tolist())
    return _row(ids, measure, variant.mean() / base.mean() - 1, (max(low, -1.0), high), margins,
                min(len(base), len(variant)))


def _configured(runs: pd.DataFrame) -> dict[str, str]:
    """Each method's configured method (itself, or the one a quantization repetition repeats)."""
    if "configured_method" not in runs:
        return {}
    named = runs.dropna(subset=["configured_method"])
    return dict(zip(named.method, named.configured_method))


def _over_quantizations(table: pd.DataFrame, configured: dict[str, str], margins: dict[str, float]) -> pd.DataFrame:
    """Per configured method quantized several times (repetitions.quantize), one verdict over its quantizations:
    the mean of their estimates; as its interval's half-width, the t interval of that mean (the calibration
    sample's spread) and the quantizations' mean half-width (the items' or repetitions' own uncertainty, which
    they share) combined in quadrature."""
    keyed = table[table.estimate.notna()].assign(configured=lambda kept: kept.method.map(
        lambda m: configured.get(m, m)))
    rows = []
    for (model, method, task, batch, metric), of_key in keyed.groupby(
            ["model", "configured", "task", "batch_size", "metric"], dropna=False):
        k = len(of_key)
        if k < 2:
            continue
        spread = of_key.estimate.std(ddof=1)
        half = math.hypot(((of_key.ci_high - of_key.ci_low) / 2).mean(),
                          stats.t.ppf(0.975, k - 1) * spread / math.sqrt(k))
        first, estimate = of_key.iloc[0], of_key.estimate.mean()
        higher_is_better = COMPARED[metric].higher_is_better
        rows.append({**first.drop("configured").to_dict(), "method": method + ALL_QUANTIZATIONS, "estimate": estimate,
                     "ci_low": estimate - half, "ci_high": estimate + half, "quantizations": k,
                     "quantization_sd": spread, "items_to_decide": None, "note": f"over {k} quantizations",
                     "verdict": decisions.verdict(estimate - half, estimate + half, first.margin, higher_is_better)})
    return pd.DataFrame(rows, columns=COLUMNS)


def in_words(row) -> str:
    """A verdict (a row of `verdicts`, as a Series or a namedtuple) as a reviewer would quote it:
    "non-inferior: -0.8 points [-3.1, +1.5], margin 2"."""
    if pd.isna(row.estimate):
        return f"{row.verdict} ({row.note})"
    scale = 100 if row.relative or row.metric == "accuracy" else 1
    unit = "%" if row.relative else ("points" if row.metric == "accuracy" else "nat")

    def number(x: float) -> str:
        return "inf" if math.isinf(x) else f"{x * scale:+.3g}"

    text = (f"{row.verdict}: {number(row.estimate)} {unit} [{number(row.ci_low)}, {number(row.ci_high)}], "
            f"margin {row.margin * scale:.3g}")
    if pd.notna(row.items_to_decide):
        text += f"; about {int(row.items_to_decide)} items would decide it"
    if row.quantizations > 1:
        text += f"; over {int(row.quantizations)} quantizations, seed-to-seed sd {number(row.quantization_sd)[1:]}"
    return text
