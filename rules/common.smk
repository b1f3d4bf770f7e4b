# Config validation (before any job), wildcard constraints, and the small input functions.
import os
import re

from snakemake.exceptions import WorkflowError

from quantbench.config import ConfigError, check_file, load
from quantbench.figures import CAPTIONS

try:
    for path in [*workflow.overwrite_configfiles, *workflow.configfiles]:
        check_file(path)
    STUDY = load(config)
except ConfigError as err:
    raise WorkflowError(str(err))

BASELINE = STUDY.baseline
DEVICE = STUDY.settings["device"]
# What one benchmark job measures with; the list of batch sizes is not part of it (adding a batch
# size must not rerun the others). on_error is read by the jobs themselves for the same reason.
BENCH_SETTINGS = {k: v for k, v in STUDY.benchmark.items() if k != "batch_sizes"}
COUNTRY = STUDY.settings["energy"]["country_iso_code"]
# Torch jobs take every core they are given, so measured jobs never share the CPU.
TORCH_THREADS = STUDY.settings.get("threads") or workflow.cores
R_SCRIPTS = os.path.join(workflow.basedir, "analysis")
FIGURES = list(CAPTIONS)  # drawn by analysis/figures.R, captioned in the report


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    model=_alternatives(STUDY.models),
    method=_alternatives(STUDY.methods),
    task=_alternatives(STUDY.tasks),
    rep=r"\d+",
    batch=r"\d+",


def method_params(wildcards):
    m = STUDY.methods[wildcards.method]
    return {"name": m.name, "backend": m.backend, "params": m.params}


def generation_reference(wildcards):
    """A generation task of a non-baseline method is compared with the baseline's answers."""
    if STUDY.tasks[wildcards.task]["type"] != "generation" or wildcards.method == BASELINE:
        return []
    return [f"results/quantized/{wildcards.model}/{BASELINE}",
            f"results/eval/{wildcards.model}/{BASELINE}/{wildcards.task}/{wildcards.rep}.items.jsonl"]


def classification_head(wildcards):
    """A classification-head task is scored with the head fitted once on the baseline's features."""
    if STUDY.tasks[wildcards.task]["type"] != "classification_head":
        return []
    return [f"results/heads/{wildcards.model}/{wildcards.task}"]


def eval_records():
    return expand(
        "results/eval/{model}/{method}/{task}/{rep}.json",
        model=STUDY.models,
        method=STUDY.methods,
        task=STUDY.tasks,
        rep=range(1, STUDY.repetitions["evaluate"] + 1),
    )


def bench_records():
    return expand(
        "results/bench/{model}/{method}/bs{batch}/{rep}.json",
        model=STUDY.models,
        method=STUDY.methods,
        batch=STUDY.benchmark["batch_sizes"],
        rep=range(1, STUDY.repetitions["benchmark"] + 1),
    )


def figure_files():
    return expand("results/figures/{name}.{ext}", name=FIGURES, ext=["png", "pdf"])


def final_outputs():
    return ["results/tables/runs.csv", "results/analysis/stats.csv", *figure_files(), "results/report.html"]


def print_outputs():
    import pandas as pd

    if os.path.exists("results/tables/runs.csv"):
        runs = pd.read_csv("results/tables/runs.csv")
        problems = runs[runs.status != "ok"].reindex(columns=["run_id", "status", "error", "reason"])
        if not problems.empty:
            print(f"\n{len(problems)} runs did not produce results:")
            for row in problems.itertuples():
                why = row.error if pd.notna(row.error) else row.reason
                print(f"  {row.status:<8} {row.run_id}: {why}")
    print("\nquantbench finished. Outputs:")
    for label, path in [
        ("run table", "results/tables/runs.csv"),
        ("statistics", "results/analysis/stats.csv"),
        ("figures", "results/figures/"),
        ("report", "results/report.html"),
        ("job logs", "results/logs/"),
    ]:
        print(f"  {label:<11} {os.path.abspath(path)}")


# With --software-deployment-method conda, model jobs run in their backend's environment (envs/, named by
# quantbench.envs). The environments hold quantbench's dependencies, not quantbench (README: clusters).
from quantbench.envs import env_name


def backend_env(wildcards):
    return method_env(wildcards.method)


def method_env(method):
    return os.path.join(workflow.basedir, "envs", f"{env_name(STUDY.methods[method].backend)}.yaml")
