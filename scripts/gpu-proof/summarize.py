"""The kit's summary: the run table of every record the study wrote (finished or not), one line per method and
batch size (tokens/s, peak GPU MB, J/token with the method that measured it and its spread over
repetitions), and the issue's two bars checked at the largest batch size.

usage: summarize.py WORKDIR OUT_DIR   writes OUT_DIR/runs.csv and OUT_DIR/summary.md, prints the summary
"""

import sys
from pathlib import Path

import pandas as pd

from quantbench import aggregate, runtable

SPREAD_BAR = 0.05  # stdev/mean of J/token over repetitions at the largest batch


def run_table(workdir: Path) -> tuple[pd.DataFrame, bool]:
    """The pipeline's run table if the study finished; else one built, as aggregate builds it, from the
    quantization and benchmark records on disk. And whether it finished."""
    finished = workdir / "results/tables/runs.csv"
    if finished.exists():
        runs = pd.read_csv(finished)
    else:
        artifacts = [p.parent for p in workdir.glob("results/quantized/*/*/quantization.json")]
        benches = sorted(workdir.glob("results/bench/*/*/bs*/*.json"))
        runs, _ = aggregate.build(aggregate.rows(artifacts, benches, []), [])
    return runs.reindex(columns=runtable.NAMES), finished.exists()  # columns no row filled: empty


def per_method(bench: pd.DataFrame) -> pd.DataFrame:
    ok = bench[bench.status == "ok"]
    spread = ok.groupby(["method", "batch_size"]).energy_per_token_j.agg(lambda j: j.std() / j.mean())
    table = ok.groupby(["method", "batch_size"]).agg(
        bits=("bits", "first"), reps=("rep", "count"),
        tokens_per_s=("throughput_tokens_per_s", "mean"), tokens_per_s_sd=("throughput_tokens_per_s", "std"),
        peak_gpu_mb=("peak_gpu_allocated_mb", "max"), j_per_token=("energy_per_token_j", "mean"),
        net_j_per_token=("net_energy_per_token_j", "mean"),
        energy_method=("energy_method", lambda m: "+".join(sorted(set(m)))))
    return table.assign(j_per_token_spread=spread).reset_index()


def bars(table: pd.DataFrame) -> list[str]:
    """The issue's bars: J/token spread <= 5% at the largest batch; 4-bit peak memory < 8-bit < 16-bit."""
    if table.empty:
        return ["no benchmark finished: no bar can be checked"]
    batch = int(table.batch_size.max())
    top = table[table.batch_size == batch].set_index("method")
    lines = []
    for method, row in top.iterrows():
        spread = row.j_per_token_spread
        verdict = "unknown (one repetition)" if pd.isna(spread) else "PASS" if spread <= SPREAD_BAR else "FAIL"
        lines.append(f"J/token spread at batch {batch}, {method} ({row.energy_method}): {spread:.1%} -> {verdict}")
    peak = top.groupby("bits").peak_gpu_mb.agg(["min", "max"])
    if peak["max"].isna().all():
        return lines + ["peak GPU memory: not measured (no GPU)"]
    order = [peak.loc[b] for b in (4, 8, 16) if b in peak.index]
    ordered = all(low["max"] < high["min"] for low, high in zip(order, order[1:]))
    ranges = ", ".join(f"{b}-bit {peak.loc[b, 'min']:.0f}-{peak.loc[b, 'max']:.0f} MB" for b in peak.index)
    return lines + [f"peak GPU memory at batch {batch}: {ranges} -> {'PASS' if ordered else 'FAIL'} (4 < 8 < 16 bit)"]


def markdown(runs: pd.DataFrame, finished: bool) -> str:
    bench = runs[runs.kind == "benchmark"]
    table = per_method(bench) if not bench.empty else pd.DataFrame()
    problems = runs[runs.status != "ok"].reindex(columns=["run_id", "status", "error", "reason"])
    quantize = runs[runs.kind == "quantize"].reindex(columns=["method", "status", "quantize_time_s", "size_bytes",
                                                              "energy_j", "energy_method"])
    parts = [f"# quantbench GPU proof: {'the whole study' if finished else 'PARTIAL (stopped at its deadline)'}",
             f"{len(runs)} records: {len(quantize)} quantizations, {len(bench)} benchmarks, "
             f"{len(problems)} not ok.", "## Benchmark (mean over repetitions)",
             table.to_markdown(index=False, floatfmt=".4g") if not table.empty else "(none)",
             "## Bars", "\n".join(f"- {line}" for line in bars(table)),
             "## Quantization", quantize.to_markdown(index=False, floatfmt=".4g")]
    if not problems.empty:
        parts += ["## Runs that did not finish ok", problems.to_markdown(index=False)]
    return "\n\n".join(parts) + "\n"


def main(workdir: Path, out: Path) -> None:
    runs, finished = run_table(workdir)
    runs.dropna(axis=1, how="all").to_csv(out / "runs.csv", index=False)
    summary = markdown(runs, finished)
    (out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
