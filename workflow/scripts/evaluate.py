"""Snakemake adapter: artifact x task -> evaluation record + per-item log (quantbench.jobs.evaluate)."""
from pathlib import Path

from quantbench import config, jobs

if __name__ == "__main__":  # the energy meter spawns Zeus's RAPL pollers, which re-import this script
    jobs.setup(snakemake.log[0], snakemake.threads)
    wc = snakemake.wildcards
    jobs.evaluate(
        Path(snakemake.input.artifact),
        Path(snakemake.output.record),
        Path(snakemake.output.item_log),
        ids={"model": wc.model, "method": wc.method, "task": wc.task, "rep": int(wc.rep)},
        task=snakemake.params.task,
        device=snakemake.params.device,
        country=snakemake.params.country,
        on_error=config.setting(snakemake.config, "on_error"),
        prepared=next(map(Path, snakemake.input.prepared), None),  # what the task type prepared on the baseline
        baseline=tuple(map(Path, snakemake.input.baseline)) or None,  # the baseline's artifact and item log
    )
