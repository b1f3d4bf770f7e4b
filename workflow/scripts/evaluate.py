"""Snakemake adapter: artifact -> an evaluation record and item log per task (quantbench.jobs.evaluate_tasks)."""
from pathlib import Path

from quantbench import config, jobs

if __name__ == "__main__":  # the energy meter spawns Zeus's RAPL pollers, which re-import this script
    jobs.setup(snakemake.log[0], snakemake.threads)
    wc = snakemake.wildcards
    runs = jobs.plan_evaluation(snakemake.params.tasks, model=wc.model, method=wc.method, rep=int(wc.rep),
                                baseline=snakemake.params.baseline)
    assert [str(r.record) for r in runs] == list(snakemake.output.records), "the rule and the plan disagree"
    jobs.evaluate_tasks(
        Path(snakemake.input.artifact),
        runs,
        ids={"model": wc.model, "method": wc.method, "rep": int(wc.rep)},
        device=snakemake.params.device,
        country=snakemake.params.country,
        on_error=config.setting(snakemake.config, "on_error"),
        baseline_artifact=Path(snakemake.input.baseline[0]) if snakemake.input.baseline else None,
    )
