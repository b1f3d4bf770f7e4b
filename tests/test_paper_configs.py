"""Every paper config under config/ plans offline into exactly the jobs its study design implies."""

import time
from pathlib import Path

import pytest
import yaml

from workflow_runner import planned_jobs

PAPERS = sorted((Path(__file__).resolve().parents[1] / "config").glob("paper-*.yaml"))


def expected_jobs(study: dict) -> dict[str, int]:
    models, methods = len(study["models"]), len(study["methods"])
    reps = study["repetitions"]
    heads = sum(task["type"] == "classification_head" for task in study["tasks"].values())
    return {
        "fetch_model": models,
        "quantize": models * methods,
        **({"prepare_task": models * heads} if heads else {}),  # one head per model, shared by every method
        "evaluate": models * methods * len(study["tasks"]) * reps["evaluate"],
        "benchmark": models * methods * len(study["benchmark"]["batch_sizes"]) * reps["benchmark"],
        "aggregate": 1, "analyze": 1, "figures": 1, "report": 1, "all": 1,
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
