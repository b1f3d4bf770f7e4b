"""Snakemake adapter: run table -> statistical tests in R (analysis/stats.R via rpy2)."""
from pathlib import Path

from quantbench import joblog, rbridge

joblog.setup(snakemake.log[0])
i = snakemake.input
rbridge.stats(Path(i.script), Path(i.runs), Path(i.item_table), snakemake.params.baseline, Path(snakemake.output.stats))
