# Config validation (before any job), wildcard constraints, and the small input functions.
import os
import re
import sys

from snakemake.exceptions import WorkflowError

from quantbench import layout, sources
from quantbench.config import check_file, load
from quantbench.errors import ConfigError
from quantbench.figures import CAPTIONS
from quantbench.jobs import plan_evaluation
from quantbench.tasks import get_task_type

try:
    for path in [*workflow.overwrite_configfiles, *workflow.configfiles]:
        check_file(path)
    STUDY = load(config)
except ConfigError as err:
    raise WorkflowError(str(err))

BASELINE = STUDY.baseline
if workflow.is_main_process:  # once per study, not again in each job
    print(f"quantbench study: {len(STUDY.models)} models x {len(STUDY.methods)} methods x {len(STUDY.tasks)} tasks; "
          "each task reports", file=sys.stderr)
    for name, task in STUDY.tasks.items():
        print(f"  {name}: {get_task_type(task['type']).describe(task)}", file=sys.stderr)
DEVICE = STUDY.settings["device"]
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


def method_params(wildcards):
    m = STUDY.methods[wildcards.method]
    return {"name": m.name, "backend": m.backend, "params": m.params}


def evaluate_inputs(wildcards):
    """An evaluate job's inputs: the variant; what its task types prepared on the baseline; the baseline's
    artifact and item logs for task types that compare with it; the local files the tasks read (mirrors,
    path: texts), so that editing one reruns the evaluations."""
    runs = plan_evaluation(STUDY.tasks, model=wildcards.model, method=wildcards.method, rep=wildcards.rep,
                           baseline=BASELINE)
    compared = [str(r.baseline_items) for r in runs if r.baseline_items]
    return {
        "artifact": layout.ARTIFACT.format(**wildcards),
        "prepared": [str(r.prepared) for r in runs if r.prepared],
        "baseline": ([layout.ARTIFACT.format(model=wildcards.model, method=BASELINE), *compared] if compared else []),
        "data": [f for r in runs for f in get_task_type(r.task["type"]).data_files(r.task)],
    }


def artifacts():
    return expand(layout.ARTIFACT, model=STUDY.models, method=STUDY.methods)


def eval_records(pattern=layout.EVAL_RECORD):
    return expand(pattern, model=STUDY.models, method=STUDY.methods, task=STUDY.tasks,
                  rep=range(1, STUDY.repetitions["evaluate"] + 1))


def bench_records():
    return expand(layout.BENCH_RECORD, model=STUDY.models, method=STUDY.methods, batch=STUDY.benchmark["batch_sizes"],
                  rep=range(1, STUDY.repetitions["benchmark"] + 1))


def figure_files():
    return expand(layout.FIGURE, name=FIGURES, ext=["png", "pdf"])


def final_outputs():
    return [layout.RUNS_CSV, layout.STATS_CSV, *figure_files(), layout.REPORT]


def print_outputs():
    import pandas as pd

    if os.path.exists(layout.RUNS_CSV):
        runs = pd.read_csv(layout.RUNS_CSV)
        problems = runs[runs.status != "ok"].reindex(columns=["run_id", "status", "error", "reason"])
        if not problems.empty:
            print(f"\n{len(problems)} runs did not produce results:")
            for row in problems.itertuples():
                why = row.error if pd.notna(row.error) else row.reason
                print(f"  {row.status:<8} {row.run_id}: {why}")
    print("\nquantbench finished. Outputs:")
    for label, path in [
        ("run table", layout.RUNS_CSV),
        ("statistics", layout.STATS_CSV),
        ("figures", os.path.dirname(layout.FIGURE)),
        ("report", layout.REPORT),
        ("job logs", layout.LOGS),
    ]:
        print(f"  {label:<11} {os.path.abspath(path)}")


# With --software-deployment-method conda, model jobs run in their backend's environment (envs/, named by
# quantbench.envs). The environments hold quantbench's dependencies, not quantbench (README: clusters).
from quantbench.envs import env_name


def backend_env(wildcards):
    return method_env(wildcards.method)


def method_env(method):
    return os.path.join(workflow.basedir, "envs", f"{env_name(STUDY.methods[method].backend)}.yaml")
