"""The SLURM profile against a real SLURM: a one-node cluster on localhost (tests/slurm_cluster.py) runs a
small tiny-model study through `--workflow-profile profiles/slurm`. Every job must go through sbatch with
the profile's partition, GPU, cores, memory and time, finish, and give the same run table as a local run.

Needs root and Debian's slurmctld, slurmd, slurm-client and munge (scripts/install-slurm.sh, run by
`make test`). Skipped only where they cannot be there: not root, or no apt-get to install them.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from slurm_cluster import LocalSlurm, missing_programs
from workflow_runner import CLEAN_ENV, DETERMINISTIC, METHODS, REPO, snakemake

PROFILE = REPO / "profiles" / "slurm"
TARGET = "results/tables/runs.csv"
GPU_RULES = ("quantize", "prepare_task", "evaluate", "benchmark")
# One fetch, then per method one quantize, one evaluation and one benchmark, the baseline's divergence
# reference prepared once, then aggregate.
EXPECTED_JOBS = {"fetch_model": 1, "quantize": 2, "prepare_task": 1, "evaluate": 2, "benchmark": 2, "aggregate": 1}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root: munged, slurmctld and slurmd run as root here")
    missing = missing_programs()
    if missing and shutil.which("apt-get"):
        pytest.fail(f"SLURM programs missing ({', '.join(missing)}): run scripts/install-slurm.sh (make test does)")
    if missing:
        pytest.skip(f"SLURM programs missing ({', '.join(missing)}) and no apt-get to install them")
    slurm = LocalSlurm(tmp_path_factory.mktemp("slurm"), CLEAN_ENV)
    try:
        slurm.start()
        yield slurm
    finally:
        slurm.stop()


def write_small_study(workdir: Path, model: Path) -> Path:
    """Two methods, one perplexity task, one batch size, one repetition: 9 jobs, each a fresh snakemake."""
    config = {
        "baseline": "fp32",
        "models": {"tiny": {"source": f"path:{model}"}},
        "methods": {name: METHODS[name] for name in ("fp32", "quanto-int8")},
        "tasks": {"perplexity": {"type": "perplexity", "text": "qb_perplexity", "context": 128, "stride": 64}},
        "benchmark": {"batch_sizes": [1], "prompt_tokens": 16, "new_tokens": 4, "warmup": 1, "iterations": 2,
                      "idle_seconds": 0.2, "cooldown_seconds": 0},
        "repetitions": {"evaluate": 1, "benchmark": 1},
    }
    workdir.mkdir(parents=True)
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    return workdir


def rule_of(job: dict[str, str]) -> str:
    """The plugin names each job's rule in its SLURM comment: rule_<name>[_wildcards_<values>]."""
    return re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", job["Comment"]).group(1)


def run_table(workdir: Path) -> pd.DataFrame:
    runs = pd.read_csv(workdir / TARGET)
    assert set(runs.status) == {"ok"}, runs[["run_id", "status"]]
    return runs.reindex(columns=DETERMINISTIC).sort_values("run_id").reset_index(drop=True)


def test_study_runs_through_slurm_as_it_runs_locally(cluster, tiny_model, tmp_path, record_property):
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    work = write_small_study(tmp_path / "slurm", tiny_model)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
               "--configfile", str(work / "study.yaml"), "--workflow-profile", str(PROFILE),
               # for the test only: first status check 1 s after submission (not 40), and keep every SLURM log
               "--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs", TARGET]
    started = time.perf_counter()
    run = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]

    # Every job went through sbatch, and SLURM ran exactly those jobs to completion.
    submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.", log))
    jobs = {job["JobId"]: job for job in cluster.jobs()}
    assert set(jobs) == set(submitted), (sorted(jobs), sorted(submitted))
    assert Counter(rule_of(job) for job in jobs.values()) == EXPECTED_JOBS
    for job_id, job in jobs.items():
        assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), job
        assert "steps (100%) done" in Path(submitted[job_id]).read_text()  # the job's own snakemake finished

    # The profile's requests reached sbatch: GPU rules on the GPU partition with one GPU, the profile's
    # cores and time; the other jobs on the default partition, one core, no GPU.
    for job in jobs.values():
        rule = rule_of(job)
        if rule in GPU_RULES:
            wanted = profile["set-resources"][rule]
            hours, minutes = divmod(wanted["runtime"], 60)
            assert (job["Partition"], job.get("TresPerJob"), job["NumCPUs"], job["TimeLimit"]) == (
                wanted["slurm_partition"], "gres:gpu:1", str(profile["cores"]), f"{hours:02d}:{minutes:02d}:00"), job
        else:
            assert (job["Partition"], job.get("TresPerJob"), job["NumCPUs"]) == ("cpu", None, "1"), job

    # The node has one GPU: SLURM ran the GPU jobs one after another, never two at once.
    gpu_jobs = sorted((j for j in jobs.values() if rule_of(j) in GPU_RULES), key=lambda j: j["StartTime"])
    for before, after in zip(gpu_jobs, gpu_jobs[1:]):
        assert after["StartTime"] >= before["EndTime"], (before, after)

    record_property("slurm_jobs", len(jobs))
    record_property("slurm_wall_s", round(wall, 1))
    print(f"\nSLURM run: {len(jobs)} jobs through sbatch in {wall:.0f} s")

    # The same study run locally gives the same runs and the same deterministic measurements.
    local = write_small_study(tmp_path / "local", tiny_model)
    done = snakemake(local, TARGET)
    assert done.returncode == 0, done.stderr[-5000:]
    pd.testing.assert_frame_equal(run_table(work), run_table(local))
