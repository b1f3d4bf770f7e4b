"""Snakemake adapter: the study's records (this rule's inputs) -> run table and per-item table."""
from pathlib import Path

from quantbench import aggregate, joblog

joblog.setup(snakemake.log[0])
i, out = snakemake.input, snakemake.output
runs, items = aggregate.build(
    aggregate.rows(map(Path, i.artifacts), map(Path, [*i.evals, *i.benches]), snakemake.params.skipped),
    aggregate.item_rows(map(Path, i.item_logs)),
)
aggregate.write(runs, items, Path(out.runs), Path(out.parquet), Path(out.item_table))
print(f"{len(runs)} runs, {len(items)} item rows")
