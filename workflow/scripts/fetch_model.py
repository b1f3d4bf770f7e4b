"""Snakemake adapter: model source -> plain HF folder (quantbench.jobs.fetch_model)."""
from pathlib import Path

from quantbench import jobs

jobs.setup(snakemake.log[0])
jobs.fetch_model(snakemake.params.source, Path(snakemake.output.folder), snakemake.params.device)
