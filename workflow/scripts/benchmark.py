"""Snakemake adapter: artifact -> a benchmark record per batch size (quantbench.jobs.run_benchmark)."""
from pathlib import Path

from quantbench import config, jobs

if __name__ == "__main__":  # the energy meter spawns Zeus's RAPL pollers, which re-import this script
    jobs.setup(snakemake.log[0], snakemake.threads)
    wc = snakemake.wildcards
    jobs.run_benchmark(
        Path(snakemake.input.artifact),
        dict(zip(snakemake.params.settings["batch_sizes"], map(Path, snakemake.output.records))),
        ids={"model": wc.model, "method": wc.method, "rep": int(wc.rep)},
        settings=snakemake.params.settings,
        device=snakemake.params.device,
        country=snakemake.params.country,
        on_error=config.setting(snakemake.config, "on_error"),
    )
