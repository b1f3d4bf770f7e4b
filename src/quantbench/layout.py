"""Where every stage writes, and the run id of each record: the one place the rules, the jobs and
`aggregate` take paths and ids from. Patterns use Snakemake's wildcard names."""

from __future__ import annotations

MODEL = "resources/models/{model}"
ARTIFACT = "results/quantized/{model}/{method}"
PREPARED = "results/prepared/{model}/{task}"
EVAL_RECORD = "results/eval/{model}/{method}/{task}/{rep}.json"
EVAL_ITEMS = "results/eval/{model}/{method}/{task}/{rep}.items.jsonl"
BENCH_RECORD = "results/bench/{model}/{method}/bs{batch}/{rep}.json"
RUNS_CSV = "results/tables/runs.csv"
RUNS_PARQUET = "results/tables/runs.parquet"
ITEMS_CSV = "results/tables/items.csv"
STATS_CSV = "results/analysis/stats.csv"
FIGURE = "results/figures/{name}.{ext}"
REPORT = "results/report.html"
LOGS = "results/logs"

QUANTIZATION_RECORD = "quantization.json"  # inside an artifact folder
PREPARED_RECORD = "prepared.json"  # inside a prepared folder


def run_id(kind: str, ids: dict) -> str:
    """The run id of a record: one per row of the run table."""
    if kind == "quantize":
        return f"{ids['model']}/{ids['method']}/quantize"
    if kind == "prepare":
        return f"{ids['model']}/{ids['task']}/prepare"
    if kind == "evaluate":
        return f"{ids['model']}/{ids['method']}/{ids['task']}/{ids['rep']}"
    if kind == "benchmark":
        return f"{ids['model']}/{ids['method']}/bs{ids['batch_size']}/{ids['rep']}"
    raise ValueError(f"unknown run kind {kind!r}")
