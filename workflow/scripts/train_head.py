"""Snakemake adapter: the baseline's artifact x a classification_head task -> the head every variant shares
(quantbench.jobs.train_head)."""
from pathlib import Path

from quantbench import config, jobs

jobs.setup(snakemake.log[0], snakemake.threads)
jobs.train_head(
    Path(snakemake.input.artifact),
    Path(snakemake.output.head),
    ids={"model": snakemake.wildcards.model, "task": snakemake.wildcards.task},
    task=snakemake.params.task,
    device=snakemake.params.device,
    on_error=config.setting(snakemake.config, "on_error"),
)
