"""Snakemake adapter: artifact -> an evaluation record and item log per task (quantbench.jobs.evaluate)."""
from quantbench import joblog, plan
from quantbench.jobs.evaluate import evaluate

if __name__ == "__main__":  # the energy meter spawns Zeus's RAPL pollers, which re-import this script
    joblog.setup(snakemake.log[0], snakemake.threads)
    evaluate(plan.received(plan.EvaluateRun, snakemake))
