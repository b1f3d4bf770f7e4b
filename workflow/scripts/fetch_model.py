"""Snakemake adapter: model source -> plain HF folder (quantbench.jobs.quantize.fetch_model)."""
from quantbench import joblog, plan
from quantbench.jobs.quantize import fetch_model

joblog.setup(snakemake.log[0])
fetch_model(plan.received(plan.FetchRun, snakemake))
