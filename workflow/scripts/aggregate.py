"""Snakemake adapter: the study's records (this rule's inputs) -> run table, per-item and per-window tables."""
from pathlib import Path

from quantbench import aggregate, cost, joblog

joblog.setup(snakemake.log[0])
i, out = snakemake.input, snakemake.output
item_logs = [Path(p) for p in i.item_logs]
runs, items = aggregate.build(
    aggregate.rows(map(Path, i.artifacts), map(Path, [*i.evals, *i.benches]), snakemake.params.skipped),
    aggregate.item_rows(item_logs),
)
runs = cost.priced(runs, snakemake.params.cost)
aggregate.write(runs, items, Path(out.runs), Path(out.parquet), Path(out.item_table))
windows = aggregate.item_rows(item_logs, key="window")
aggregate.write_windows(windows, Path(out.windows))
print(f"{len(runs)} runs, {len(items)} item rows, {len(windows)} perplexity windows")
