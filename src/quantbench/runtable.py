"""The run table's columns: name, type, unit, which rows fill them and what they mean.

This is the contract between the records, `aggregate`, the report and the R analysis. Each producer
declares the columns it fills: the records' common fields here, each task type its quality columns
(quantbench.tasks), the benchmark its timed generation's (quantbench.benchmark) and each of its measures
theirs (quantbench.measures); COLUMNS collects them. `aggregate` writes only these columns (a record
carrying anything else is a bug it refuses); the report's tables and glossary read them, R receives them
with every call (rbridge: `r_source()`) and stops on a column missing here, and results/README.md is
generated from them (`python -m quantbench.runtable`; a test keeps it in sync).
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import benchmark, cost
from .columns import ALL, B, E, Q, Column
from .measures import MEASURES
from .tasks import TASK_TYPES

# What every record carries: identifiers, status, cost, energy and environment (quantbench.records)
COMMON: list[Column] = [
    # identifiers and factors
    Column("run_id", "str", "", ALL, "identifier", "one per run: model/method/quantize, model/method/task/rep or "
           "model/method/bs<batch>/rep"),
    Column("kind", "str", "", ALL, "identifier", "quantize, evaluate or benchmark"),
    Column("status", "str", "", ALL, "identifier", "ok; failed (the job raised, on_error: skip); skipped (the "
           "method cannot run here, on_unsupported: skip)"),
    Column("model", "str", "", ALL, "identifier", "model name from the config"),
    Column("method", "str", "", ALL, "identifier", "method name from the config"),
    Column("backend", "str", "", ALL, "identifier", "the quantization library that produced and ran the variant"),
    Column("bits", "int", "bit", ALL, "identifier", "nominal weight bit-width of the method"),
    Column("weights", "str", "", ALL, "identifier", "pretrained, or random (a random: source: the architecture with "
           "seeded random weights, for speed, memory and energy only)"),
    Column("configured_method", "str", "", ALL, "identifier", "the method's name in the config: a quantization "
           "repetition (repetitions.quantize) is method <name>@q<rep> of configured method <name>"),
    Column("quantize_rep", "int", "", ALL, "identifier", "which quantization of the configured method: 1, or 2, 3, "
           "... for repetitions with another calibration sample and seed"),
    Column("task", "str", "", (E,), "identifier", "task name from the config"),
    Column("task_type", "str", "", (E,), "identifier", "the task's type (lm_eval, perplexity, generation, ...)"),
    Column("batch_size", "int", "", (B,), "identifier", "sequences generated together"),
    Column("rep", "int", "", (E, B), "identifier", "repetition, from 1"),
    Column("error", "str", "", ALL, "status", "why a failed run failed"),
    Column("reason", "str", "", (Q,), "status", "why a skipped method cannot run here"),
    Column("started", "str", "", ALL, "status", "UTC start time (ISO 8601)"),
    Column("ended", "str", "", ALL, "status", "UTC end time (ISO 8601)"),
    # quality
    Column("primary", "str", "", (E,), "quality", "the column holding this task's headline quality value"),
    # cost of producing and loading a variant
    Column("size_bytes", "int", "B", ALL, "cost", "the artifact's bytes on disk (the model's files: a companion "
           "such as llama.cpp's importance matrix is in quantization.json's details.companion_bytes)"),
    Column("effective_bits", "float", "bit", (Q,), "cost", "bits per weight the quantized weight matrices take "
           "as stored: the bytes of their quantized values, scales, zeros, group indices and other quantization "
           "metadata x 8 / their parameters (GGUF: every tensor of 2+ dimensions in a quantized type, the embedding "
           "included). Can exceed `bits` well: llama.cpp's K-quants store rows not 256-wide in Q5_0/Q8_0. A float "
           "variant (baseline, GGUF F16): the bits its matrices are stored in"),
    Column("quantized_share", "float", "", (Q,), "cost", "share of the model's weight-matrix parameters (linear "
           "layers and embeddings, a tied table once) that effective_bits covers; the rest kept in float (e.g. the "
           "embedding and lm_head of the torch backends); 0 for a float variant"),
    Column("quantize_time_s", "float", "s", (Q,), "cost", "wall time of the quantize job (baseline: load and save)"),
    Column("load_time_s", "float", "s", (E, B), "cost", "time to verify and load the artifact"),
    Column("load_peak_rss_mb", "float", "MiB", (E, B), "memory", "peak resident memory of the process while the "
           "artifact loaded: what a machine must hold to load it (libraries and Python included)"),
    Column("loaded_rss_mb", "float", "MiB", (E, B), "memory", "resident memory the loaded variant holds: the "
           "process's after the load minus before it (its libraries imported before)"),
    # energy
    Column("energy_j", "float", "J", ALL, "energy", "energy of the measured window, as read by energy_method",
           tested=(E,)),
    Column("energy_method", "str", "", ALL, "energy", "what measured energy_j: zeus_nvml (GPU counter), "
           "zeus_rapl (CPU package and DRAM counters), nvml_power_sampled (GPU without the counter), joined with + "
           "when several count; or codecarbon_estimate (no counter readable: an estimate)", report="energy by"),
    Column("energy_note", "str", "", ALL, "energy", "why energy_j is empty though a meter was read (a counter "
           "that did not advance in the window: below its resolution, never recorded as 0 J)"),
    Column("idle_power_w", "float", "W", ALL, "energy", "power measured idle (benchmark: once per job, before the "
           "model loaded; the record's energy.idle_measured says when)"),
    Column("net_energy_j", "float", "J", ALL, "energy", "energy_j minus idle power times the window"),
    Column("co2_kg", "float", "kg", ALL, "energy", "CO2 of energy_j at the configured country's carbon intensity",
           report="CO2 kg"),
    Column("co2_method", "str", "", ALL, "energy", "how co2_kg was computed"),
    Column("gpu_samples", "int", "", ALL, "energy", "NVML samples taken during the window"),
    Column("gpu_power_mean_w", "float", "W", ALL, "energy", "mean sampled GPU power"),
    Column("gpu_util_mean_pct", "float", "%", ALL, "energy", "mean sampled GPU utilisation"),
    Column("gpu_util_max_pct", "float", "%", ALL, "energy", "highest sampled GPU utilisation"),
    Column("gpu_temp_max_c", "float", "degC", ALL, "energy", "highest sampled GPU temperature"),
    Column("gpu_process_memory_max_mb", "float", "MiB", ALL, "energy", "highest GPU memory NVML saw this "
           "process use (llama.cpp's included)"),
    # environment
    Column("device", "str", "", ALL, "environment", "cpu or cuda"),
    Column("host", "str", "", ALL, "environment", "machine name"),
    Column("cpu", "str", "", ALL, "environment", "CPU model"),
    Column("gpu", "str", "", ALL, "environment", "GPU model"),
    Column("torch_version", "str", "", ALL, "environment", "torch version"),
    Column("transformers_version", "str", "", ALL, "environment", "transformers version"),
    Column("git_revision", "str", "", ALL, "environment", "the quantbench revision that ran (-dirty: with "
           "uncommitted changes)"),
]

GROUPS = ("identifier", "status", "quality", "cost", "speed", "memory", "energy", "environment")


def collect(*producers: tuple[Column, ...]) -> list[Column]:
    """The producers' columns in one list, by group (in GROUPS' order) then as declared; a column two
    producers fill (e.g. accuracy) must be declared alike."""
    found: dict[str, Column] = {}
    for column in (c for columns in producers for c in columns):
        if found.setdefault(column.name, column) != column:
            raise ValueError(f"run-table column {column.name!r} is declared twice, differently")
    return sorted(found.values(), key=lambda c: GROUPS.index(c.group))


COLUMNS: list[Column] = collect(COMMON, *(t.columns for t in TASK_TYPES.values()), benchmark.COLUMNS,
                                *(m.columns for m in MEASURES), cost.COLUMNS)
BY_NAME = {c.name: c for c in COLUMNS}
NAMES = [c.name for c in COLUMNS]

# items.csv: one row per scored item, for paired tests
ITEM_COLUMNS: list[Column] = [
    Column("run_id", "str", "", (E,), "identifier", "the evaluate run the item belongs to"),
    Column("doc_id", "str", "", (E,), "identifier", "the item's id in its dataset"),
    Column("doc_hash", "str", "", (E,), "identifier", "lm-eval's hash of the item's content"),
    Column("target", "int", "", (E,), "quality", "the correct choice"),
    Column("predicted", "int", "", (E,), "quality", "the chosen answer"),
    Column("correct", "int", "", (E,), "quality", "1 if predicted equals target"),
    Column("model", "str", "", (E,), "identifier", "model name"),
    Column("method", "str", "", (E,), "identifier", "method name"),
    Column("task", "str", "", (E,), "identifier", "task name"),
    Column("rep", "int", "", (E,), "identifier", "repetition"),
]
ITEM_NAMES = [c.name for c in ITEM_COLUMNS]

# windows.csv: one row per scored window of a perplexity text, for the verdicts' block bootstrap
WINDOW_COLUMNS: list[Column] = [
    Column("run_id", "str", "", (E,), "identifier", "the evaluate run the window belongs to"),
    Column("window", "int", "", (E,), "identifier", "the window's place in the text, from 0"),
    Column("tokens", "int", "token", (E,), "quality", "tokens the window scored (each token is scored once)"),
    Column("nll", "float", "nat", (E,), "quality", "their summed negative log-likelihood"),
    Column("kld", "float", "nat", (E,), "quality", "their summed KL divergence from the baseline's distributions"),
]
WINDOW_NAMES = [c.name for c in WINDOW_COLUMNS]


class UndeclaredColumn(KeyError):
    """A record carries a value the run-table schema does not declare."""


def check_declared(names, where: str) -> None:
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise UndeclaredColumn(f"{where} has values {unknown} that no run-table column declares; declare them "
                               "where they are computed (a task type's or a measure's `columns`, or runtable.py)")


def readme() -> str:
    """results/README.md: what lands where, and every column of the run table."""
    lines = [
        "# results/",
        "",
        "Pipeline outputs land here (git-ignored): `quantized/`, `prepared/`, `eval/`, `bench/`, `tables/`, "
        "`analysis/`, `figures/`, `report.html`, and `logs/` with one log per job.",
        "",
        "Generated from `src/quantbench/runtable.py` by `python -m quantbench.runtable`; do not edit by hand.",
        "",
        "## tables/runs.csv (and runs.parquet): one row per run",
        "",
        *_table(COLUMNS),
        "",
        "## tables/items.csv: one row per scored item of a choice task",
        "",
        *_table(ITEM_COLUMNS),
        "",
        "## tables/windows.csv: one row per scored window of a perplexity text",
        "",
        *_table(WINDOW_COLUMNS),
    ]
    return "\n".join(lines) + "\n"


def _table(columns: list[Column]) -> list[str]:
    lines = ["| column | type | unit | rows | meaning |", "| --- | --- | --- | --- | --- |"]
    for c in columns:
        rows = "all" if c.rows == ALL else ", ".join(c.rows)
        lines.append(f"| `{c.name}` | {c.type} | {c.unit} | {rows} | {c.meaning} |")
    return lines


R_TYPES = {"str": "character", "int": "integer", "float": "numeric", "bool": "logical"}


def _r_names(name: str, values: list[str]) -> str:
    quoted = ", ".join(f'"{v}"' for v in values)
    return f"{name} <- c({quoted})"


def r_source() -> str:
    """R's view of the declarations: the columns and their types, and the metrics stats.R tests."""
    def vector(name: str, pairs) -> str:
        body = ",\n".join(f'  {k} = "{v}"' for k, v in pairs)
        return f"{name} <- c(\n{body}\n)\n"

    return "\n".join([
        "# From quantbench.runtable, evaluated by rbridge before every script.",
        "# The run table's declared columns and their R types; read_run_table() (tables.R) returns a table whose",
        "# `$` and `[[` stop on a column not declared here, so a renamed column fails loudly, not as an empty figure.",
        "",
        vector("RUN_TABLE_TYPES", ((c.name, R_TYPES[c.type]) for c in COLUMNS)),
        vector("RUN_TABLE_UNITS", ((c.name, c.unit) for c in COLUMNS)),
        vector("ITEM_TABLE_TYPES", ((c.name, R_TYPES[c.type]) for c in ITEM_COLUMNS)),
        "# Run-table columns compared across methods over repetitions, per kind of run.",
        _r_names("TESTED_BENCHMARK_METRICS", [c.name for c in COLUMNS if B in c.tested]),
        _r_names("TESTED_EVALUATE_METRICS", [c.name for c in COLUMNS if E in c.tested]),
        "",
    ])


def write_generated(root: Path) -> None:
    (root / "results" / "README.md").write_text(readme())


if __name__ == "__main__":
    write_generated(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
