"""A self-contained HTML report: summary tables, statistics, figures and the environment."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from . import atomic

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}.note{color:#555;font-size:14px}"""


COLUMNS_USED = ["task", "batch_size", "rep", "accuracy", "perplexity_token", "size_bytes", "quantize_time_s",
                "throughput_tokens_per_s", "latency_p50_s", "peak_rss_mb", "energy_per_token_j", "co2_kg",
                "energy_method", "reason", "error"]
ENVIRONMENT = ["host", "device", "cpu", "gpu", "torch_version", "transformers_version", "git_revision"]


def quality_table(runs: pd.DataFrame) -> pd.DataFrame:
    ev = runs[(runs.kind == "evaluate") & (runs.status == "ok")].copy()
    ev["value"] = ev["accuracy"].fillna(ev.get("perplexity_token"))
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


def _figure(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    pdf = png.with_suffix(".pdf").name
    return f'<h3>{html.escape(png.stem)}</h3><img src="data:image/png;base64,{data}"><p><a href="figures/{pdf}">PDF</a></p>'


def render(runs_csv: Path, stats_csv: Path, pngs: list[Path], manifests: list[Path], out: Path) -> None:
    runs = pd.read_csv(runs_csv)
    runs = runs.reindex(columns=runs.columns.union(COLUMNS_USED, sort=False))  # all failed: columns missing
    stats = pd.read_csv(stats_csv)
    problems = runs[runs.status != "ok"]
    notes = [json.loads(Path(m).read_text()).get("note") for m in manifests]
    env_columns = [c for c in ENVIRONMENT if c in runs.columns]
    environment = runs[runs.status == "ok"].drop_duplicates(env_columns)[env_columns]
    parts = [
        f"<!doctype html><meta charset=utf-8><title>quantbench report</title><style>{STYLE}</style>",
        "<h1>quantbench report</h1>",
        f"<p class=note>{len(runs)} runs. "
        "Energy figures name the method that measured them: <code>codecarbon_estimate</code> is an estimate "
        "(no hardware counter was readable), <code>nvml_counter</code>/<code>rapl</code> are counters.</p>",
        *[f"<p class=note>{html.escape(n)}</p>" for n in notes if n],
        "<h2>Quality, size and quantization cost</h2><p class=note>accuracy for choice tasks, "
        "token-level perplexity (sliding window) for text tasks</p>", quality_table(runs).to_html(),
        "<h2>Speed, memory and energy</h2><p class=note>cv = stdev/mean of throughput across repetitions</p>",
        speed_table(runs).to_html(),
        "<h2>Statistics</h2><p class=note>p_holm: Holm-corrected within each test</p>",
        stats.to_html(index=False, na_rep=""),
        "<h2>Figures</h2>", *[_figure(Path(p)) for p in pngs],
    ]
    parts += ["<h2>Environment</h2>", environment.to_html(index=False, na_rep="")]
    if not problems.empty:
        parts += ["<h2>Runs without results</h2>",
                  problems[["run_id", "status", "reason", "error"]].to_html(index=False, na_rep="")]
    atomic.write_text(out, "\n".join(parts))
