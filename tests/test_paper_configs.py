"""Every paper config under config/ plans offline into exactly the jobs its study design implies."""

import time
from pathlib import Path

import pytest
import yaml

from workflow_runner import dry_run, planned_jobs

from quantbench.tasks import TASK_TYPES
from quantbench.tasks.harness import LM_EVAL_ROLLING_TASKS, primary_metric

PAPERS = sorted((Path(__file__).resolve().parents[1] / "config").glob("paper-*.yaml"))


def expected_jobs(study: dict) -> dict[str, int]:
    models, methods = len(study["models"]), len(study["methods"])
    reps = study["repetitions"]
    prepared = sum(TASK_TYPES[task["type"]].prepares for task in study["tasks"].values())
    return {
        "fetch_model": models,
        "quantize": models * methods,
        **({"prepare_task": models * prepared} if prepared else {}),  # once per model, shared by every method
        "evaluate": models * methods * reps["evaluate"],  # one job per variant and repetition runs every task
        "benchmark": models * methods * reps["benchmark"],  # one job per variant and repetition: every batch size
        "aggregate": 1, "analyze": 1, "decide": 1, "figures": 1, "report": 1, "all": 1,
    }


def test_the_quanto_study_has_its_classification_head_variant():
    study = yaml.safe_load((PAPERS[0].parent / "paper-quanto-tweeteval.yaml").read_text())
    assert expected_jobs(study)["prepare_task"] == 1


def test_there_are_paper_configs():
    assert len(PAPERS) >= 5


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.stem)
def test_paper_config_plans_its_study_design(path, tmp_path):
    started = time.perf_counter()
    jobs = planned_jobs(tmp_path, path)
    print(f"{path.name}: {sum(jobs.values())} jobs planned in {time.perf_counter() - started:.1f} s")
    assert jobs == expected_jobs(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.stem)
def test_dry_run_names_the_metric_each_task_reports(path, tmp_path):
    lines = {line.split(":")[0].strip(): line for line in dry_run(tmp_path, path).splitlines() if line.startswith("  ")}
    for name, task in yaml.safe_load(path.read_text())["tasks"].items():
        if task["type"] == "lm_eval" and task["task"] not in LM_EVAL_ROLLING_TASKS:
            metric = primary_metric({"metric": None, **task})
            assert lines[name].endswith(f"-shot: {metric} with its 95% Wilson interval"), lines[name]
