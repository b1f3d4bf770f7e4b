"""Where every stage writes: the path patterns quantbench.plan fills for each run (and the rules read for
the study's outputs). Patterns use Snakemake's wildcard names."""

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
WINDOWS_CSV = "results/tables/windows.csv"
VERDICTS_CSV = "results/analysis/verdicts.csv"
STATS_CSV = "results/analysis/stats.csv"
FIGURE = "results/figures/{name}.{ext}"
REPORT = "results/report.html"
LOGS = "results/logs"

QUANTIZATION_RECORD = "quantization.json"  # inside an artifact folder
PREPARED_RECORD = "prepared.json"  # inside a prepared folder

