"""Snakemake adapter: artifact -> an evaluation record and item log per task (quantbench.jobs.evaluate)."""
from quantbench import joblog, plan
from quantbench.failures import surviving_crashes
from quantbench.jobs.evaluate import evaluate, record_unfinished

if __name__ == "__main__":  # the energy meter spawns Zeus's RAPL pollers, which re-import this script
    joblog.setup(snakemake.log[0], snakemake.threads)
    surviving_crashes(evaluate, plan.received(plan.EvaluateRun, snakemake), record_unfinished)
