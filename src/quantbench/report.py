"""A self-contained HTML report: summary tables, statistics, figures and the environment."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from . import atomic, runtable
from .figures import CAPTIONS

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}.note{color:#555;font-size:14px}"""


ENVIRONMENT = [c.name for c in runtable.COLUMNS if c.group == "environment"]


def read_runs(runs_csv: Path) -> pd.DataFrame:
    """The run table with every declared column (absent ones empty); an undeclared column is refused."""
    runs = pd.read_csv(runs_csv)
    runtable.check_declared(runs.columns, str(runs_csv))
    return runs.reindex(columns=runtable.NAMES)


def quality_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each task's headline value (its `primary` column: accuracy, a perplexity, ...) per variant."""
    ev = runs[(runs.kind == "evaluate") & (runs.status == "ok")].copy()
    ev["value"] = [row[row["primary"]] for _, row in ev.iterrows()]
    table = ev.pivot_table(index=["model", "method"], columns="task", values="value", aggfunc="mean")
    q = runs[(runs.kind == "quantize") & (runs.status == "ok")].set_index(["model", "method"])
    table["size_MB"] = q["size_bytes"] / 1e6
    table["quantize_s"] = q["quantize_time_s"]
    return table.round(4)


def speed_table(runs: pd.DataFrame) -> pd.DataFrame:
    b = runs[(runs.kind == "benchmark") & (runs.status == "ok")]
    b = b.assign(batch_size=b.batch_size.astype(int), co2_g=b.co2_kg * 1000)
    grouped = b.groupby(["model", "method", "batch_size"])
    table = grouped.agg(reps=("rep", "count"), tokens_per_s=("throughput_tokens_per_s", "mean"),
                        tokens_per_s_sd=("throughput_tokens_per_s", "std"),
                        latency_p50_s=("latency_p50_s", "mean"), peak_rss_mb=("peak_rss_mb", "max"),
                        energy_per_token_j=("energy_per_token_j", "mean"), co2_g_per_rep=("co2_g", "mean"),
                        energy_method=("energy_method", "first"))
    table["cv"] = table["tokens_per_s_sd"] / table["tokens_per_s"]
    return table.round(5)


TESTS = {
    "mcnemar_exact": "Exact McNemar test of per-item correctness, each method against the baseline on the same "
                     "items; n_baseline_only (b) and n_method_only (c) are the discordant items, "
                     "p = binom.test(b, b + c).",
    "kruskal_wallis": "Kruskal-Wallis test across methods, over repetitions, per model and batch size or task.",
    "dunn": "Dunn's pairwise post-hoc tests after each Kruskal-Wallis test (three or more methods); "
            "Holm within the pairs of one omnibus test.",
    "cliffs_delta": "Cliff's delta of each method against the baseline over repetitions (positive: the "
                    "method's values are larger), with its 95% confidence interval.",
    "shapiro_wilk": "Shapiro-Wilk normality test of each method's repetitions (n >= 3, not constant): "
                    "why the tests above are rank-based.",
    "spearman": "Spearman's rank correlation between a task's evaluation energy and its quality across the "
                "methods of one model.",
}


def _figure(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    pdf = png.with_suffix(".pdf").name
    return (f'<h3>{html.escape(png.stem)}</h3><img src="data:image/png;base64,{data}">'
            f'<p class=note>{html.escape(CAPTIONS.get(png.stem, ""))} <a href="figures/{pdf}">PDF</a></p>')


def stats_sections(stats: pd.DataFrame) -> list[str]:
    """One table per test, showing only the columns that test fills (the CSV keeps full precision)."""
    parts = ["<p class=note>p_holm: Holm-adjusted within <code>family</code>, the set of tests named there "
             "(one test on one metric across models and groups; Dunn: the pairs after one Kruskal-Wallis "
             "test). All columns are described in analysis/stats.R.</p>"]
    if stats.empty:
        return parts + ["<p>No test could be run: too few successful runs or repetitions.</p>"]
    for test, rows in stats.groupby("test", sort=False):
        rows = rows.dropna(axis=1, how="all").drop(columns="test")
        parts += [f"<h3>{html.escape(str(test))}</h3><p class=note>{html.escape(TESTS.get(test, ''))}</p>",
                  rows.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4g}")]
    return parts


def environment_section(runs: pd.DataFrame, r_versions: dict[str, str]) -> list[str]:
    env_columns = [c for c in ENVIRONMENT if c in runs.columns]
    measured = runs[runs.status == "ok"].drop_duplicates(env_columns)[env_columns]
    analysis = pd.DataFrame({"package": list(r_versions), "version": list(r_versions.values())})
    return ["<h2>Environment</h2><p class=note>where the runs were measured</p>",
            measured.to_html(index=False, na_rep=""),
            "<p class=note>the R used for statistics and figures</p>", analysis.to_html(index=False)]


def glossary(runs: pd.DataFrame) -> list[str]:
    """What each column of this study's run table means (from runtable.py)."""
    present = [c for c in runtable.COLUMNS if runs[c.name].notna().any()]
    rows = "".join(f"<tr><td><code>{c.name}</code></td><td>{html.escape(c.unit)}</td>"
                   f"<td style='text-align:left'>{html.escape(c.meaning)}</td></tr>" for c in present)
    return ["<h2>Glossary of the run table</h2><p class=note>the columns of <code>tables/runs.csv</code> this "
            "study filled</p>", f"<table><tr><th>column</th><th>unit</th><th>meaning</th></tr>{rows}</table>"]


def render(runs_csv: Path, stats_csv: Path, pngs: list[Path], manifests: list[Path], out: Path,
           r_versions: dict[str, str]) -> None:
    runs = read_runs(runs_csv)
    stats = pd.read_csv(stats_csv)
    problems = runs[runs.status != "ok"]
    notes = [json.loads(Path(m).read_text()).get("note") for m in manifests]
    parts = [
        f"<!doctype html><meta charset=utf-8><title>quantbench report</title><style>{STYLE}</style>",
        "<h1>quantbench report</h1>",
        f"<p class=note>{len(runs)} runs. "
        "Energy figures name the method that measured them: <code>codecarbon_estimate</code> is an estimate "
        "(no hardware counter was readable), <code>nvml_counter</code>/<code>rapl</code> are counters.</p>",
        *[f"<p class=note>{html.escape(n)}</p>" for n in notes if n],
        "<h2>Quality, size and quantization cost</h2><p class=note>each task's headline value: accuracy for "
        "choice tasks, token-level perplexity (sliding window) or lm-eval's word perplexity for text tasks, the "
        "answers' perplexity under the baseline for generation</p>", quality_table(runs).to_html(),
        "<h2>Speed, memory and energy</h2><p class=note>cv = stdev/mean of throughput across repetitions</p>",
        speed_table(runs).to_html(),
        "<h2>Figures</h2>", *[_figure(Path(p)) for p in pngs],
        "<h2>Statistics</h2>", *stats_sections(stats),
        *environment_section(runs, r_versions),
        *glossary(runs),
    ]
    if not problems.empty:
        parts += ["<h2>Runs without results</h2>",
                  problems[["run_id", "status", "reason", "error"]].to_html(index=False, na_rep="")]
    atomic.write_text(out, "\n".join(parts))
