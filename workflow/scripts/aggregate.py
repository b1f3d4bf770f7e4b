"""Snakemake adapter: every record under results/ -> run table and per-item table."""
from pathlib import Path

from quantbench import aggregate, jobs

jobs.setup(snakemake.log[0])
p = snakemake.params
runs, items = aggregate.build(Path(p.results), aggregate.skipped_rows(p.skipped, p.models, p.backends))
out = snakemake.output
aggregate.write(runs, items, Path(out.runs), Path(out.parquet), Path(out.item_table))
print(f"{len(runs)} runs, {len(items)} item rows")
