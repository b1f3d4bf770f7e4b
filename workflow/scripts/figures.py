"""Snakemake adapter: run table -> ggplot2 figures (analysis/figures.R via rpy2)."""
from pathlib import Path

from quantbench import joblog, rbridge

joblog.setup(snakemake.log[0])
rbridge.figures(Path(snakemake.input.script), Path(snakemake.input.runs), [Path(f) for f in snakemake.output.figures])
