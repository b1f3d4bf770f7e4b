"""Snakemake adapter: model folder -> quantized artifact (quantbench.jobs.quantize)."""
from quantbench import joblog, plan
from quantbench.failures import surviving_crashes
from quantbench.jobs.quantize import quantize, record_unfinished

if __name__ == "__main__":  # the energy meter spawns Zeus's RAPL pollers, which re-import this script
    joblog.setup(snakemake.log[0], snakemake.threads)
    surviving_crashes(quantize, plan.received(plan.QuantizeRun, snakemake), record_unfinished)
