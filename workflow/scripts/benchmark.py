"""Snakemake adapter: artifact -> a benchmark record per batch size (quantbench.jobs.benchmark)."""
from quantbench import joblog, plan
from quantbench.failures import surviving_crashes
from quantbench.jobs.benchmark import benchmark, record_unfinished

if __name__ == "__main__":  # the energy meter spawns Zeus's RAPL pollers, which re-import this script
    joblog.setup(snakemake.log[0], snakemake.threads)
    surviving_crashes(benchmark, plan.received(plan.BenchmarkRun, snakemake), record_unfinished)
