"""The run table's columns: name, type, unit, which rows fill them and what they mean.

This is the contract between the records, `aggregate`, the report and the R analysis. `aggregate`
writes only these columns (a record carrying anything else is a bug it refuses); results/README.md,
the report's glossary and analysis/run_table.R are generated from this list, and R reads the run
table through that file (analysis/tables.R), stopping on a column missing here. Regenerate after a change:
`python -m quantbench.runtable` (a test keeps the generated files in sync).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

Q, E, B = "quantize", "evaluate", "benchmark"
ALL = (Q, E, B)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # str | int | float | bool
    unit: str  # "" for counts, names and ratios without a unit
    rows: tuple[str, ...]  # the run kinds whose rows can fill it
    group: str
    meaning: str
    tested: tuple[str, ...] = ()  # the run kinds whose values analysis/stats.R compares across methods


def _latency(phase: str, what: str) -> list[Column]:
    stats = {"mean": "mean", "stdev": "standard deviation", "p50": "median", "p90": "90th percentile",
             "p95": "95th percentile", "p99": "99th percentile"}
    return [Column(f"{phase}_{k}_s", "float", "s", (B,), "speed", f"{v} of {what} over the timed iterations",
                   tested=(B,) if (phase, k) == ("latency", "mean") else ())
            for k, v in stats.items()]


COLUMNS: list[Column] = [
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
    Column("metric", "str", "", (E,), "quality", "choice tasks: the per-item lm-eval metric `accuracy` holds (acc, "
           "or acc_norm: log-likelihood divided by the choice's length in characters)"),
    Column("accuracy", "float", "", (E,), "quality", "share of items answered correctly (choice tasks: by `metric`; "
           "classification heads: by the head's prediction)"),
    Column("accuracy_ci_low", "float", "", (E,), "quality", "lower end of accuracy's 95% Wilson score interval"),
    Column("accuracy_ci_high", "float", "", (E,), "quality", "upper end of accuracy's 95% Wilson score interval"),
    *[Column(name, "float", "", (E,), "quality", f"lm-eval's {what}")
      for name, what in (("acc", "acc (highest log-likelihood)"), ("acc_stderr", "standard error of acc"),
                         ("acc_norm", "acc_norm (highest log-likelihood per character)"),
                         ("acc_norm_stderr", "standard error of acc_norm"), ("f1", "F1, where the task defines it"),
                         ("f1_stderr", "bootstrap standard error of f1"),
                         ("mcc", "Matthews correlation, where the task defines it"),
                         ("mcc_stderr", "bootstrap standard error of mcc"))],
    Column("macro_f1", "float", "", (E,), "quality", "classification heads: F1 averaged over classes"),
    Column("n_items", "int", "", (E,), "quality", "items (documents, prompts) the task scored"),
    Column("lm_eval_task", "str", "", (E,), "quality", "the lm-eval task that ran"),
    Column("num_fewshot", "int", "", (E,), "quality", "lm-eval few-shot examples per item"),
    Column("perplexity_token", "float", "", (E,), "quality", "token-level perplexity over the concatenated text, "
           "sliding window (the papers' convention); lower is better"),
    Column("nll_sum", "float", "nat", (E,), "quality", "summed negative log-likelihood behind perplexity_token"),
    Column("tokens_scored", "int", "", (E,), "quality", "tokens scored by perplexity_token"),
    Column("context", "int", "token", (E,), "quality", "perplexity window length"),
    Column("stride", "int", "token", (E,), "quality", "perplexity window step"),
    Column("kld_mean", "float", "nat", (E,), "quality", "mean KL divergence of the variant's next-token distribution "
           "from the baseline's over the perplexity text's scored tokens (llama.cpp's perplexity --kl-divergence; "
           "the baseline's top kld_top_k tokens plus the rest: a lower bound of the full divergence)"),
    Column("kld_median", "float", "nat", (E,), "quality", "median per-token KL divergence from the baseline"),
    Column("kld_p99", "float", "nat", (E,), "quality", "99th percentile of the per-token KL divergence"),
    Column("kld_max", "float", "nat", (E,), "quality", "largest per-token KL divergence"),
    Column("top1_agreement", "float", "", (E,), "quality", "share of scored tokens whose most likely next token is "
           "the baseline's (llama.cpp's 'same top')"),
    Column("perplexity_word", "float", "", (E,), "quality", "lm-eval's word perplexity (rolling log-likelihood "
           "per document, normalised by words; comparable across tokenizers)"),
    Column("perplexity_byte", "float", "", (E,), "quality", "lm-eval's byte perplexity"),
    Column("bits_per_byte", "float", "bit", (E,), "quality", "lm-eval's bits per byte"),
    Column("output_tokens_mean", "float", "token", (E,), "quality", "generation: mean answer length"),
    Column("exact_match_vs_baseline", "float", "", (E,), "quality", "generation: share of answers identical "
           "to the baseline's"),
    Column("prefix_agreement_vs_baseline", "float", "", (E,), "quality", "generation: tokens shared with the "
           "baseline's answer before the first difference, as a share of its length"),
    Column("perplexity_under_baseline", "float", "", (E,), "quality", "generation: perplexity of the answers "
           "under the baseline model"),
    Column("head_train_items", "int", "", (E,), "quality", "classification heads: items the head was fitted on"),
    Column("head_train_accuracy", "float", "", (E,), "quality", "classification heads: accuracy on those items"),
    Column("head_sha256", "str", "", (E,), "quality", "classification heads: checksum of the head that scored"),
    # cost of producing and loading a variant
    Column("size_bytes", "int", "B", ALL, "cost", "the artifact's bytes on disk (the model's files: a companion "
           "such as llama.cpp's importance matrix is in quantization.json's details.companion_bytes)"),
    Column("quantize_time_s", "float", "s", (Q,), "cost", "wall time of the quantize job (baseline: load and save)"),
    Column("load_time_s", "float", "s", (E, B), "cost", "time to verify and load the artifact"),
    Column("load_peak_rss_mb", "float", "MiB", (E, B), "memory", "peak resident memory of the process while the "
           "artifact loaded: what a machine must hold to load it (libraries and Python included)"),
    Column("loaded_rss_mb", "float", "MiB", (E, B), "memory", "resident memory the loaded variant holds: the "
           "process's after the load minus before it (its libraries imported before)"),
    # speed
    *_latency("prefill", "one forward pass over the prompts"),
    *_latency("latency", "one generate call (prompt and all new tokens)"),
    *_latency("decode", "a generate call minus the median prefill"),
    Column("throughput_tokens_per_s", "float", "token/s", (B,), "speed", "generated tokens per second over the "
           "timed generate calls", tested=(B,)),
    Column("throughput_samples_per_s", "float", "sample/s", (B,), "speed", "sequences completed per second"),
    Column("decode_tokens_per_s", "float", "token/s", (B,), "speed", "tokens after the first per second of "
           "decoding"),
    Column("kernel", "str", "", (B,), "speed", "what computed the matrix products (library, kernel, device)"),
    Column("speed_caveat", "str", "", (B,), "speed", "why this speed may not be the method's on a real model "
           "(e.g. a path random weights do not take); empty where none is known"),
    Column("weight_bytes_per_step", "int", "B", (B,), "speed", "bytes of weights one decode step reads, from the "
           "artifact (all tensors; less the input embedding where the output layer is separate)"),
    Column("memory_bandwidth_gbs", "float", "GB/s", (B,), "speed", "this machine's memory bandwidth, measured at the "
           "start of the job (a copy of 256 MiB: bytes read and written per second, best of 5)"),
    Column("bandwidth_bound_tokens_per_s", "float", "token/s", (B,), "speed", "the decode rate the bandwidth allows: "
           "batch_size x memory_bandwidth_gbs / weight_bytes_per_step"),
    Column("bandwidth_fraction", "float", "", (B,), "speed", "decode_tokens_per_s / bandwidth_bound_tokens_per_s"),
    Column("batch_mode", "str", "", (B,), "speed", "parallel: a batch in one forward pass; sequential: row after "
           "row"),
    Column("prompt_tokens", "int", "token", (B,), "speed", "prompt length per sequence"),
    Column("new_tokens", "int", "token", (B,), "speed", "tokens generated per sequence"),
    Column("warmup", "int", "", (B,), "speed", "untimed iterations before timing"),
    Column("iterations", "int", "", (B,), "speed", "timed iterations: prefill and generate calls each (a percentile "
           "needs 10 for p90, 20 for p95, 100 for p99, and is left empty below that)"),
    # memory
    Column("peak_rss_mb", "float", "MiB", (B,), "memory", "peak resident memory of the process during the batch's "
           "timed calls (the peak is reset before them, so it is the batch's own; libraries and Python included; "
           "empty where the peak cannot be reset: not Linux)"),
    Column("model_rss_mb", "float", "MiB", (B,), "memory", "resident memory the variant adds at the batch's peak: "
           "peak_rss_mb minus the process's before the model loaded (weights as loaded, plus generation's cache "
           "and activations)"),
    Column("kv_cache_bytes_per_token", "float", "B", (B,), "memory", "bytes of keys and values per cached token "
           "over all layers at the end of the timed generation (prompt_tokens + new_tokens - 1 tokens): with the "
           "kv_cache option, its quantized tokens at its bits (scales not counted) and the newest "
           "residual_length in the activation dtype; else all in the activation dtype (llama.cpp: f16)"),
    Column("peak_gpu_allocated_mb", "float", "MiB", (B,), "memory", "peak GPU memory allocated by torch"),
    Column("peak_gpu_reserved_mb", "float", "MiB", (B,), "memory", "peak GPU memory reserved by torch's allocator"),
    # energy
    Column("energy_j", "float", "J", ALL, "energy", "energy of the measured window, as read by energy_method",
           tested=(E,)),
    Column("energy_method", "str", "", ALL, "energy", "what measured energy_j: zeus_nvml (GPU counter), "
           "zeus_rapl (CPU package and DRAM counters), nvml_power_sampled (GPU without the counter), joined with + "
           "when several count; or codecarbon_estimate (no counter readable: an estimate)"),
    Column("energy_note", "str", "", ALL, "energy", "why energy_j is empty though a meter was read (a counter "
           "that did not advance in the window: below its resolution, never recorded as 0 J)"),
    Column("idle_power_w", "float", "W", ALL, "energy", "power measured idle (benchmark: once per job, before the "
           "model loaded; the record's energy.idle_measured says when)"),
    Column("net_energy_j", "float", "J", ALL, "energy", "energy_j minus idle power times the window"),
    Column("co2_kg", "float", "kg", ALL, "energy", "CO2 of energy_j at the configured country's carbon intensity"),
    Column("co2_method", "str", "", ALL, "energy", "how co2_kg was computed"),
    Column("energy_per_token_j", "float", "J/token", (B,), "energy", "energy_j per generated token", tested=(B,)),
    Column("net_energy_per_token_j", "float", "J/token", (B,), "energy", "net_energy_j per generated token"),
    Column("energy_per_sample_j", "float", "J/sample", (B,), "energy", "energy_j per generated sequence"),
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


class UndeclaredColumn(KeyError):
    """A record carries a value the run-table schema does not declare."""


def check_declared(names, where: str) -> None:
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise UndeclaredColumn(f"{where} has values {unknown} that no run-table column declares; add them to "
                               "src/quantbench/runtable.py (and regenerate with python -m quantbench.runtable)")


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
    """analysis/run_table.R: the declared columns and their types, and the metrics stats.R tests."""
    def vector(name: str, pairs) -> str:
        body = ",\n".join(f'  {k} = "{v}"' for k, v in pairs)
        return f"{name} <- c(\n{body}\n)\n"

    return "\n".join([
        "# Generated from src/quantbench/runtable.py by `python -m quantbench.runtable`; do not edit by hand.",
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
    (root / "analysis" / "run_table.R").write_text(r_source())


if __name__ == "__main__":
    write_generated(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
