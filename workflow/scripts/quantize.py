"""Snakemake adapter: model folder -> quantized artifact (quantbench.jobs.quantize)."""
from pathlib import Path

from quantbench import config, jobs

if __name__ == "__main__":  # the energy meter spawns Zeus's RAPL pollers, which re-import this script
    jobs.setup(snakemake.log[0], snakemake.threads)
    jobs.quantize(
        Path(snakemake.input.model),
        Path(snakemake.output.artifact),
        model=snakemake.wildcards.model,
        method=snakemake.params.method,
        device=snakemake.params.device,
        country=snakemake.params.country,
        on_error=config.setting(snakemake.config, "on_error"),
    )
