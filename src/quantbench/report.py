"""A self-contained HTML report: summary tables, statistics, figures and the environment."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import pandas as pd

from . import atomic, runtable, verdicts
from .figures import CAPTIONS

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3;max-width:10em}img{max-width:100%;border:1px solid #eee}.note{color:#555;font-size:14px}
.wide{overflow-x:auto;max-width:100%}"""


ENVIRONMENT = [c.name for c in runtable.COLUMNS if c.group == "environment"]


def table_html(table: pd.DataFrame, **options) -> str:
    """A table that scrolls sideways in its own box when wider than the page, rather than running off it."""
    return f"<div class=wide>{table.to_html(**options)}</div>"


def read_runs(runs_csv: Path) -> pd.DataFrame:
    """The run table with every declared column (absent ones empty); an undeclared column is refused."""
    runs = pd.read_csv(runs_csv)
    runtable.check_declared(runs.columns, str(runs_csv))
    return runs.reindex(columns=runtable.NAMES)


def shown(value: float, uncertainty: float | None = None) -> str:
    """`value` with the digits its uncertainty supports (that rounded to one significant digit, two when it
    starts with 1); without one, four significant digits. Empty for a missing value."""
    if value is None or pd.isna(value):
        return ""
    if uncertainty is None or pd.isna(uncertainty) or uncertainty <= 0:
        return f"{value:.4g}"
    exponent = math.floor(math.log10(uncertainty))
    digits = -exponent + (1 if f"{uncertainty:.0e}".startswith("1") else 0)
    return f"{value:.{max(digits, 0)}f}"


def quality_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant: each task's headline value (its `primary` column) with its interval where it has one, the
    divergence from the baseline on the perplexity text, size on disk and quantization time."""
    ev = runs[(runs.kind == "evaluate") & (runs.status == "ok")]
    cells: dict[str, dict] = {}
    for (model, method, task), rows in ev.groupby(["model", "method", "task"]):
        first = rows.iloc[0]
        value = rows[first["primary"]].mean()
        if first["primary"] == "accuracy":
            low, high = rows["accuracy_ci_low"].mean(), rows["accuracy_ci_high"].mean()
            text = f"{shown(value, (high - low) / 2)} [{shown(low, (high - low) / 2)}, {shown(high, (high - low) / 2)}]"
            heading = f"{task} ({first['metric'] if pd.notna(first['metric']) else 'accuracy'}, 95% CI)"
        else:
            text, heading = shown(value), f"{task} ({first['primary']})"
        cells.setdefault((model, method), {})[heading] = text
        if pd.notna(first["kld_mean"]):
            cells[(model, method)][f"{task}: KLD mean"] = shown(rows["kld_mean"].mean())
            cells[(model, method)][f"{task}: same top"] = shown(rows["top1_agreement"].mean())
    q = runs[(runs.kind == "quantize") & (runs.status == "ok")]
    for row in q.itertuples():
        cells.setdefault((row.model, row.method), {}).update(
            {"size MB": shown(row.size_bytes / 1e6), "quantize s": shown(row.quantize_time_s)})
    table = pd.DataFrame.from_dict(cells, orient="index")
    table.index.names = ["model", "method"]
    return table


def speed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant and batch size: every benchmark column its producer gave a report heading (a number with the
    digits its spread over repetitions supports; a text as measured), and throughput's spread."""
    b = runs[(runs.kind == "benchmark") & (runs.status == "ok")]
    shown_columns = [c for c in runtable.COLUMNS if c.report and runtable.B in c.rows]
    rows = {}
    for (model, method, batch), reps in b.groupby(["model", "method", "batch_size"]):
        tps, sd = reps.throughput_tokens_per_s.mean(), reps.throughput_tokens_per_s.std()
        row = {"reps": len(reps), "tokens/s sd": shown(sd), "cv": shown(sd / tps)}
        for column in shown_columns:
            values = reps[column.name].dropna()
            row[column.report] = ("" if values.empty else values.iloc[0] if column.type == "str"
                            else shown(values.mean(), values.std()))
        rows[(model, method, int(batch))] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    if not table.empty:
        table.index.names = ["model", "method", "batch"]
    return table


def study_cost(runs: pd.DataFrame) -> pd.DataFrame:
    """What the study cost per stage: jobs, wall time from each run's start to its end (after the job's imports)
    plus each evaluate and benchmark job's one model load, and the energy of the measured windows (the whole
    quantize job; each evaluation; the timed generate calls of a benchmark)."""
    done = runs[runs.status == "ok"].copy()
    # ISO 8601 with or without milliseconds: records written before and after they were kept
    started, ended = (pd.to_datetime(done[c], format="ISO8601") for c in ("started", "ended"))
    done["seconds"] = (ended - started).dt.total_seconds()
    # an evaluate or benchmark job loads its variant once for all its runs (tasks, batch sizes)
    done["job"] = done.run_id.where(~done.kind.isin(["evaluate", "benchmark"]),
                                    done.kind + "/" + done.model + "/" + done.method + "/" + done.rep.astype(str))
    loads = done[done.kind.isin(["evaluate", "benchmark"])].groupby(["kind", "job"]).load_time_s.first()
    table = done.groupby("kind").agg(jobs=("job", "nunique"), runs=("run_id", "count"), minutes=("seconds", "sum"),
                                     energy_kJ=("energy_j", "sum"),
                                     energy_by=("energy_method", lambda m: ", ".join(sorted(set(m.dropna())))))
    table["minutes"] = table["minutes"].add(loads.groupby("kind").sum(), fill_value=0)
    table["share"] = table["minutes"] / table["minutes"].sum()
    table["minutes"] = table["minutes"] / 60
    table["energy_kJ"] = table["energy_kJ"] / 1e3
    for column in ("minutes", "energy_kJ", "share"):
        table[column] = table[column].map(shown)
    return table


def _figure(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    pdf = png.with_suffix(".pdf").name
    return (f'<h3>{html.escape(png.stem)}</h3><img src="data:image/png;base64,{data}">'
            f'<p class=note>{html.escape(CAPTIONS.get(png.stem, ""))} <a href="figures/{pdf}">PDF</a></p>')


def stats_sections(stats: pd.DataFrame, descriptions: dict[str, str]) -> list[str]:
    """One table per test, showing only the columns that test fills (the CSV keeps full precision)."""
    parts = ["<p class=note>p_holm: Holm-adjusted within <code>family</code>, the set of tests named there "
             "(one test on one metric across models and groups; Dunn: the pairs after one Kruskal-Wallis "
             "test). All columns are described in analysis/stats.R.</p>"]
    if stats.empty:
        return parts + ["<p>No test could be run: too few successful runs or repetitions.</p>"]
    for test, rows in stats.groupby("test", sort=False):
        rows = rows.dropna(axis=1, how="all").drop(columns="test")
        parts += [f"<h3>{html.escape(str(test))}</h3><p class=note>{html.escape(descriptions.get(test, ''))}</p>",
                  table_html(rows, index=False, na_rep="", float_format=lambda x: f"{x:.4g}")]
    return parts


def environment_section(runs: pd.DataFrame, r_versions: dict[str, str]) -> list[str]:
    env_columns = [c for c in ENVIRONMENT if c in runs.columns]
    measured = runs[runs.status == "ok"].drop_duplicates(env_columns)[env_columns]
    analysis = pd.DataFrame({"package": list(r_versions), "version": list(r_versions.values())})
    return ["<h2>Environment</h2><p class=note>where the runs were measured</p>",
            table_html(measured, index=False, na_rep=""),
            "<p class=note>the R used for statistics and figures</p>", table_html(analysis, index=False)]


def glossary(runs: pd.DataFrame) -> list[str]:
    """What each column of this study's run table means (from runtable.py)."""
    present = [c for c in runtable.COLUMNS if runs[c.name].notna().any()]
    rows = "".join(f"<tr><td><code>{c.name}</code></td><td>{html.escape(c.unit)}</td>"
                   f"<td style='text-align:left'>{html.escape(c.meaning)}</td></tr>" for c in present)
    return ["<h2>Glossary of the run table</h2><p class=note>the columns of <code>tables/runs.csv</code> this "
            "study filled</p>",
            f"<div class=wide><table><tr><th>column</th><th>unit</th><th>meaning</th></tr>{rows}</table></div>"]


VERDICT_COLOURS = {"non-inferior": "#e6f4ea", "inferior": "#fce8e6", "inconclusive": "#fff8e1"}
COMPARED = {"accuracy": "{task}", "perplexity_token": "{task}: token perplexity", "kld_mean": "{task}: KLD",
            "decode_tokens_per_s": "decode speed bs{batch}", "energy_per_token_j": "energy per token bs{batch}"}


def verdict_section(table: pd.DataFrame) -> list[str]:
    """The decisions first: per model, a method x measure table of verdicts in words a reviewer can quote."""
    parts = ["<h2>Verdicts</h2><p class=note>Each method against its model's baseline at the margins the study "
             "declares (config <code>margins:</code>): <b>non-inferior</b> when the whole 95 % interval of the "
             "difference lies on the better side of the margin (a one-sided test at 2.5 %), <b>inferior</b> when it "
             "lies wholly beyond it, <b>inconclusive</b> otherwise, with the items that would decide an accuracy "
             "verdict at 80 % power. Accuracy: Tango's score interval of the paired difference on the same items "
             "(points); token perplexity (%) and KLD (nats): a block bootstrap over the text's windows; decode "
             "speed and energy per token (%): Fieller's interval over the benchmark's repetitions. Energy measured "
             "by an estimate (codecarbon) decides nothing the hardware would; see the energy section.</p>"]
    if table.empty:
        return parts + ["<p>No verdict: the study has no baseline to compare with, or too few repetitions.</p>"]
    for model, rows in table.groupby("model", sort=False):
        rows = rows.assign(heading=[_compared(r) for r in rows.itertuples()])
        grid = {method: dict(zip(of_method.heading, of_method.itertuples())) for method, of_method in
                rows.groupby("method", sort=False)}
        headings = list(dict.fromkeys(rows.heading))
        body = "".join(f"<tr><th>{html.escape(method)}</th>" + "".join(_verdict_cell(by.get(h)) for h in headings)
                       + "</tr>" for method, by in grid.items())
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
        parts += [f"<h3>{html.escape(str(model))} (against {html.escape(str(rows.versus.iloc[0]))})</h3>",
                  f"<div class=wide><table><tr><th>method</th>{head}</tr>{body}</table></div>"]
    return parts


def _compared(row) -> str:
    batch = "" if pd.isna(row.batch_size) else int(row.batch_size)
    return COMPARED[row.metric].format(task=row.task, batch=batch)


def _verdict_cell(row) -> str:
    if row is None:
        return "<td></td>"
    words = html.escape(verdicts.in_words(row))
    return f"<td style='background:{VERDICT_COLOURS.get(row.verdict, '')};text-align:left'>{words}</td>"


def render(runs_csv: Path, stats_csv: Path, verdicts_csv: Path, pngs: list[Path], manifests: list[Path], out: Path,
           r_versions: dict[str, str], test_descriptions: dict[str, str]) -> None:
    runs = read_runs(runs_csv)
    stats = pd.read_csv(stats_csv)
    problems = runs[runs.status != "ok"]
    notes = [json.loads(Path(m).read_text()).get("note") for m in manifests]
    parts = [
        f"<!doctype html><meta charset=utf-8><title>quantbench report</title><style>{STYLE}</style>",
        "<h1>quantbench report</h1>",
        f"<p class=note>{len(runs)} runs. "
        "Energy figures name the method that measured them: <code>codecarbon_estimate</code> is an estimate "
        "(no hardware counter was readable), <code>zeus_nvml</code>/<code>zeus_rapl</code> are counters.</p>",
        *[f"<p class=note>{html.escape(n)}</p>" for n in notes if n],
        *verdict_section(pd.read_csv(verdicts_csv)),
        "<h2>Quality, size and quantization cost</h2><p class=note>each task's headline value: accuracy for "
        "choice tasks, token-level perplexity (sliding window) or lm-eval's word perplexity for text tasks, the "
        "answers' perplexity under the baseline for generation</p>", table_html(quality_table(runs)),
        "<h2>Speed, memory and energy</h2>"
        "<p class=note>Means over repetitions, each with the digits its spread supports (cv = stdev/mean of "
        "tokens/s); the glossary below says what each column measured. tokens/s: generated tokens per second of the "
        "timed generate calls; bound: the decode rate this machine's memory bandwidth allows (batch x bandwidth / "
        "weight bytes per step); of bound: decode tokens/s as a share of it; kernel: what computed the matrix "
        "products; batch: one forward pass (parallel) or row after row.</p>",
        table_html(speed_table(runs)),
        "<h2>Figures</h2>", *[_figure(Path(p)) for p in pngs],
        "<h2>Statistics</h2>", *stats_sections(stats, test_descriptions),
        "<h2>What this study cost</h2>", table_html(study_cost(runs)),
        *environment_section(runs, r_versions),
        *glossary(runs),
    ]
    if not problems.empty:
        parts += ["<h2>Runs without results</h2>",
                  table_html(problems[["run_id", "status", "reason", "error"]], index=False, na_rep="")]
    atomic.write_text(out, "\n".join(parts))
