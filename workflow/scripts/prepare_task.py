"""Snakemake adapter: the baseline's artifact x a task -> what the task type prepares once per model
(quantbench.jobs.evaluate.prepare_task), e.g. a classification head every variant is scored with."""
from quantbench import joblog, plan
from quantbench.failures import surviving_crashes
from quantbench.jobs.evaluate import prepare_task, record_unfinished_preparation

joblog.setup(snakemake.log[0], snakemake.threads)
surviving_crashes(prepare_task, plan.received(plan.PrepareRun, snakemake), record_unfinished_preparation)
