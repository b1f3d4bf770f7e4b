# Config validation (before any job), the study's plan, wildcard constraints and the small input functions.
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

from quantbench import layout, records, sources
from quantbench.config import check_file, load
from quantbench.errors import ConfigError
from quantbench.figures import CAPTIONS
from quantbench.plan import as_params
from quantbench.tasks import get_task_type

# With --software-deployment-method conda each backend's jobs run in their own environment (envs/), so the
# packages a backend needs are checked by its jobs there, not in this one.
JOBS_RUN_HERE = DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method
try:
    for path in [*workflow.overwrite_configfiles, *workflow.configfiles]:
        check_file(path)
    STUDY = load(config, packages_here=JOBS_RUN_HERE)
except ConfigError as err:
    raise WorkflowError(str(err))

BASELINE = STUDY.baseline
if workflow.is_main_process:  # once per study, not again in each job
    print(f"quantbench study: {len(STUDY.models)} models x {len(STUDY.methods)} methods x {len(STUDY.tasks)} tasks; "
          "each task reports", file=sys.stderr)
    for task in STUDY.tasks.values():
        print(f"  {task.name}: {get_task_type(task.type).describe(task.params)}", file=sys.stderr)
    if STUDY.settings.repetitions["quantize"] > 1:
        repeated = sorted({m.repeats for m in STUDY.methods.values() if m.repeats})
        once = [m.name for m in STUDY.methods.values() if not m.repeats and m.name not in repeated]
        print(f"  quantized {STUDY.settings.repetitions['quantize']} times, each with another calibration sample and "
              f"seed: {', '.join(repeated) or 'none'}; quantized once (no random calibration sample): "
              f"{', '.join(once)}", file=sys.stderr)
    for method, why in STUDY.unverified.items():
        print(f"  not verified here, checked by its jobs: {method}: {why}", file=sys.stderr)
# Torch jobs take every core they are given, so measured jobs never share the CPU.
TORCH_THREADS = STUDY.settings.threads or workflow.cores
R_SCRIPTS = os.path.join(workflow.basedir, "analysis")
FIGURES = list(CAPTIONS)  # drawn by analysis/figures.R, captioned in the report


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    model=_alternatives(STUDY.models),
    method=_alternatives(STUDY.methods),
    task=_alternatives(STUDY.tasks),
    rep=r"\d+",


# Each job's run from the plan, as the plain dict a rule's params carry (plan.as_params says why)
def fetch_run(wc):
    return as_params(STUDY.fetch(wc.model))


def quantize_run(wc):
    return as_params(STUDY.quantize(wc.model, wc.method))


def prepare_run(wc):
    return as_params(STUDY.prepare(wc.model, wc.task))


def evaluate_run(wc):
    return as_params(STUDY.evaluate(wc.model, wc.method, int(wc.rep)))


def benchmark_run(wc):
    return as_params(STUDY.benchmark(wc.model, wc.method, int(wc.rep)))


def evaluate_inputs(wc):
    return STUDY.evaluate_inputs(STUDY.evaluate(wc.model, wc.method, int(wc.rep)))


def artifacts():
    return [str(run.artifact) for run in STUDY.quantize_runs()]


def eval_records():
    return [str(t.record_file) for run in STUDY.evaluate_runs() for t in run.tasks]


def eval_item_logs():
    return [str(t.items_file) for run in STUDY.evaluate_runs() for t in run.tasks]


def bench_records():
    return [str(b.record_file) for run in STUDY.benchmark_runs() for b in run.batches]


def figure_files():
    return expand(layout.FIGURE, name=FIGURES, ext=["png", "pdf"])


def final_outputs():
    return [layout.RUNS_CSV, layout.STATS_CSV, layout.VERDICTS_CSV, *figure_files(), layout.REPORT]


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
        ("verdicts", layout.VERDICTS_CSV),
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
