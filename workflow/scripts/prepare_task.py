"""Snakemake adapter: the baseline's artifact x a task -> what the task type prepares once per model
(quantbench.jobs.prepare_task), e.g. a classification head every variant is scored with."""
from pathlib import Path

from quantbench import config, jobs

jobs.setup(snakemake.log[0], snakemake.threads)
jobs.prepare_task(
    Path(snakemake.input.artifact),
    Path(snakemake.output.prepared),
    ids={"model": snakemake.wildcards.model, "task": snakemake.wildcards.task},
    task=snakemake.params.task,
    device=snakemake.params.device,
    on_error=config.setting(snakemake.config, "on_error"),
)
