"""Killed jobs resume. SIGKILL a quantize job, then an evaluate job, then aggregate, on a cut of the tiny study
(three methods, one task, one benchmark): every rerun finishes, redoes only what was killed, and the final run
table equals the rows of an uninterrupted run's.
A second snakemake on the same folder meanwhile is refused by Snakemake's lock."""

import subprocess
import time
from pathlib import Path

import pandas as pd
import psutil
import yaml

from workflow_runner import CLEAN_ENV, DETERMINISTIC, snakemake, snakemake_command, write_study

TABLE = "results/tables/runs.csv"


def start(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(snakemake_command(workdir, TABLE, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=CLEAN_ENV)


def kill_job(proc: subprocess.Popen, script: str, ready=lambda: True, timeout: float = 600) -> str:
    """SIGKILL the first job process running workflow script `script` once `ready()`; return the log."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                running = child.cmdline()
            except psutil.Error:
                continue
            if any(arg.endswith(f".{script}.py") for arg in running) and ready():
                child.kill()
                out, _ = proc.communicate(timeout=timeout)
                assert proc.returncode != 0
                return out
        time.sleep(0.02)
    raise AssertionError(f"no {script} job was seen running: {proc.communicate()[0][-3000:]}")


def mtimes(paths) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in paths}


def test_kill_and_resume(study, tiny_model, tmp_path):
    work = write_study(tmp_path / "study", tiny_model)
    config = yaml.safe_load((work / "study.yaml").read_text())
    config["methods"] = {name: config["methods"][name] for name in ("fp32", "bnb-int8", "quanto-int8")}
    config["tasks"] = {"sentiment": config["tasks"]["sentiment"]}
    config["benchmark"]["batch_sizes"], config["repetitions"]["benchmark"] = [1], 1
    (work / "study.yaml").write_text(yaml.safe_dump(config))
    results = work / "results"

    # 1. Kill a quantize job while it writes its artifact (a temporary folder exists), after another finished.
    def second_artifact_half_written():
        return any(results.glob("quantized/tiny/.*.tmp-*")) and any(results.glob("quantized/tiny/*/quantization.json"))

    run = start(work)
    while not any((work / ".snakemake" / "locks").glob("*")):
        time.sleep(0.1)
    refused = snakemake(work, TABLE)  # the same results folder, at the same time
    assert refused.returncode != 0 and "cannot be locked" in refused.stdout + refused.stderr
    kill_job(run, "quantize", second_artifact_half_written)
    finished = sorted(results.glob("quantized/tiny/*/quantization.json"))
    assert finished and len(finished) < 3
    before = mtimes(finished)

    # 2. Resume, and kill an evaluate job half-way (model loaded, scoring under way) once the killed
    # quantization was redone (the last method's evaluation comes after it).
    run = start(work)
    evaluating_since = []

    def evaluating_for_a_while():
        if len(list(results.glob("quantized/tiny/*/quantization.json"))) < 3:
            return False
        evaluating_since.append(time.time())
        return time.time() - evaluating_since[0] > 2.5

    kill_job(run, "evaluate", evaluating_for_a_while)
    assert mtimes(finished) == before  # finished artifacts were not redone
    assert not list(results.glob("quantized/tiny/.*.tmp-*"))  # the killed job's temporary is gone
    records = sorted(results.glob("eval/**/*.json"))
    records_before = mtimes(records)

    # 3. Resume to the end: only what is missing runs.
    done = snakemake(work, TABLE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert mtimes(finished) == before and mtimes(records) == records_before

    table = work / TABLE
    got = pd.read_csv(table).reindex(columns=DETERMINISTIC)  # columns of tasks this cut lacks stay empty
    uninterrupted = pd.read_csv(study[0] / TABLE).reindex(columns=DETERMINISTIC)
    expected = uninterrupted[uninterrupted.run_id.isin(got.run_id)].reset_index(drop=True)
    assert len(expected) == len(got) == 3 + 3 + 3  # quantize, evaluate and benchmark rows
    pd.testing.assert_frame_equal(got, expected)

    # 4. Kill aggregate while it rewrites the table: the previous table is still there and readable.
    previous = table.read_bytes()
    kill_job(start(work, "--forcerun", "aggregate"), "aggregate")
    assert table.read_bytes() == previous
    pd.read_csv(table)
