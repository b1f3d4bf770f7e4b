"""Runtime faults: a clear message, and with on_error: skip a failed record instead of a stopped study."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from quantbench import aggregate, artifacts
from quantbench.errors import ArtifactFailed, DeviceUnavailable
from quantbench.failures import explain
from quantbench.measures import bandwidth
from conftest import filled
import run_jobs
from workflow_runner import CLEAN_ENV

FP32 = {"name": "fp32", "backend": "baseline", "params": {"dtype": "float32"}}
QUANTO = {"name": "quanto-int8", "backend": "quanto", "params": {"bits": 8, "exclude": ["lm_head"]}}
TASK = filled({"type": "perplexity", "text": "qb_perplexity", "context": 64, "stride": 32})
SETTINGS = {"prompt_tokens": 16, "new_tokens": 4, "warmup": 0, "iterations": 2, "idle_seconds": 0.3,
            "cooldown_seconds": 0}


def test_cuda_requested_but_absent_stops_with_a_clear_error(tiny_model_folder, tmp_path):
    with pytest.raises(DeviceUnavailable, match="no GPU"):
        run_jobs.quantize(tiny_model_folder, tmp_path / "a", model="tiny", method=FP32, device="cuda", country="USA")
    assert not (tmp_path / "a").exists()


def test_skip_records_the_failure_and_downstream_jobs_say_why(tiny_model_folder, tmp_path):
    artifact = tmp_path / "results/quantized/tiny/fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", method=FP32, device="cuda", country="USA",
                  on_error="skip")
    info = artifacts.read_info(artifact)
    assert info["status"] == "failed" and "torch sees no GPU" in info["error"]
    with pytest.raises(ArtifactFailed, match="no GPU"):
        artifacts.load(artifact, "cpu")

    record = tmp_path / "results/eval/tiny/fp32/ppl/1.json"
    run_jobs.evaluate(artifact, record, record.with_suffix(".items.jsonl"),
                  ids={"model": "tiny", "method": "fp32", "task": "ppl", "rep": 1}, task=TASK, device="cpu",
                  country="USA", on_error="skip")
    failed = json.loads(record.read_text())
    assert failed["status"] == "failed" and "no GPU" in failed["error"]

    runs, _ = aggregate.build(aggregate.rows([artifact], [record], []), [])
    assert set(runs.status) == {"failed"}
    assert runs.set_index("run_id").loc["tiny/fp32/ppl/1", "error"].startswith("loading tiny/fp32 to evaluate it failed")


def test_missing_backend_package_at_run_time(tiny_model_folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optimum.quanto", None)  # import now fails as if uninstalled
    artifact = tmp_path / "q"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", method=QUANTO, device="cpu", country="USA",
                  on_error="skip")
    assert "a package is missing" in artifacts.read_info(artifact)["error"]


OOM_SCRIPT = run_jobs.ON_PATH + textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    import torch, transformers
    size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + 24 * 2**20, resource.RLIM_INFINITY))
    run_jobs.quantize(Path(sys.argv[1]), Path(sys.argv[2]), model="big", device="cpu", country="USA",
                  method={"name": "fp32", "backend": "baseline", "params": {"dtype": "float32"}}, on_error="skip")
""")


def test_out_of_memory_is_named_and_recorded(tmp_path):
    """A model larger than the memory left: the job records 'out of memory', not a traceback wall."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from run_jobs import fetch_model

    big = tmp_path / "big"
    LlamaForCausalLM(LlamaConfig(vocab_size=512, hidden_size=512, intermediate_size=1024, num_hidden_layers=4,
                                 num_attention_heads=8)).save_pretrained(big)
    (big / "tokenizer_config.json").write_text("{}")
    fetched = tmp_path / "fetched"
    fetch_model(f"path:{big}", fetched)
    out = tmp_path / "artifact"
    done = subprocess.run([sys.executable, "-c", OOM_SCRIPT, str(fetched), str(out)], capture_output=True, text=True,
                          env=CLEAN_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    info = artifacts.read_info(out)
    assert info["status"] == "failed"
    assert "out of memory" in info["error"], info["error"]


def test_explain_names_common_faults():
    assert explain(MemoryError()).startswith("out of memory")
    assert explain(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 4 GB")).startswith("out of memory")
    assert explain(ModuleNotFoundError("No module named 'gptqmodel'")).startswith("a package is missing")
    assert explain(ValueError("bad")) == "ValueError: bad"


def test_one_failing_task_of_an_evaluate_job(tiny_model_folder, tmp_path):
    """An evaluate job runs every task of a variant: with skip, a task that fails is a failed row and the
    others are scored; with error, the job stops."""
    artifact = tmp_path / "quantized/fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", method=FP32, device="cpu", country="USA")
    broken = {**TASK, "text": "qb_no_such_text"}
    ids = {"model": "tiny", "method": "fp32", "rep": 1}
    runs = [run_jobs.task_run(ids, name, task, tmp_path / f"{name}.json", tmp_path / f"{name}.items.jsonl")
            for name, task in (("broken", broken), ("ppl", TASK))]
    with pytest.raises(Exception, match="qb_no_such_text"):
        run_jobs.evaluate_tasks(artifact, runs, ids=ids, device="cpu", country="USA")
    assert not (tmp_path / "ppl.json").exists()

    run_jobs.evaluate_tasks(artifact, runs, ids=ids, device="cpu", country="USA", on_error="skip")
    failed, scored = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("broken", "ppl"))
    assert failed["status"] == "failed" and failed["run_id"] == "tiny/fp32/broken/1"
    assert failed["error"].startswith("evaluate tiny/fp32/broken/1 failed") and "qb_no_such_text" in failed["error"]
    assert scored["status"] == "ok" and scored["metrics"]["perplexity_token"] > 1


def test_a_failure_in_a_benchmark_jobs_shared_setup_is_a_failed_row_per_batch(tiny_model_folder, tmp_path,
                                                                              monkeypatch):
    """What every batch size shares (weight bytes, bandwidth, KV bytes, the prompt text) is measured before the
    batches: a failure there, under on_error: skip, is one failed row per batch size, not a killed job."""
    artifact = tmp_path / "fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", method=FP32, device="cpu", country="USA")

    def broken(device):
        raise RuntimeError("no memory bandwidth today")

    monkeypatch.setattr(bandwidth, "memory_bandwidth_gbs", broken)
    outs = {1: tmp_path / "bs1.json", 2: tmp_path / "bs2.json"}
    run_jobs.run_benchmark(artifact, outs, ids={"model": "tiny", "method": "fp32", "rep": 1}, settings=SETTINGS,
                       device="cpu", country="USA", on_error="skip")
    for out in outs.values():
        record = json.loads(out.read_text())
        assert record["status"] == "failed" and "no memory bandwidth today" in record["error"]


# A benchmark job as its workflow script runs it, whose batch of 2 prompts dies in native code, as llama.cpp
# did (GGML_ASSERT -> abort) on a batch longer than its n_batch.
ABORTING_JOB = run_jobs.ON_PATH + textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from quantbench.failures import surviving_crashes
    from quantbench.jobs import benchmark as job

    timed_generation = job.timed_generation

    def aborting(runtime, text, *, batch_size, **settings):
        if batch_size == 2:
            os.abort()
        return timed_generation(runtime, text, batch_size=batch_size, **settings)

    job.timed_generation = aborting
    artifact, folder, on_error, settings = sys.argv[1], Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    run = run_jobs.benchmark_run(Path(artifact), {b: folder / f"bs{b}.json" for b in (1, 2, 4)},
                                 ids={"model": "tiny", "method": "fp32", "rep": 1}, settings=settings,
                                 on_error=on_error)
    surviving_crashes(job.benchmark, run, job.record_unfinished)
""")


@pytest.mark.parametrize("on_error", ["skip", "error"])
def test_a_job_that_dies_of_a_signal_records_its_unfinished_runs_under_skip(tiny_model_folder, tmp_path, on_error):
    """No exception reaches Python when native code aborts: under skip the batches measured before it keep
    their rows, the one that crashed and those after it are failed rows naming the signal, and the job
    succeeds; under error the job dies of the signal, as before, and leaves no row for them."""
    artifact = tmp_path / "fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", method=FP32)
    job = subprocess.run([sys.executable, "-c", ABORTING_JOB, str(artifact), str(tmp_path), on_error,
                          json.dumps(SETTINGS)], capture_output=True, text=True, env=CLEAN_ENV, timeout=300)
    assert json.loads((tmp_path / "bs1.json").read_text())["status"] == "ok", job.stderr[-3000:]
    if on_error == "error":
        assert job.returncode == -signal.SIGABRT
        assert not (tmp_path / "bs2.json").exists() and not (tmp_path / "bs4.json").exists()
        return
    assert job.returncode == 0, job.stderr[-3000:]
    for batch in (2, 4):
        record = json.loads((tmp_path / f"bs{batch}.json").read_text())
        assert record["status"] == "failed" and record["batch_size"] == batch
        assert "died of SIGABRT" in record["error"]
