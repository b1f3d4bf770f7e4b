"""The run table: one row per record of the study, every value a declared column."""

import json

import pandas as pd
import pytest

from quantbench import aggregate, records, runtable
from quantbench.plan import RunId

ENV = {"device": "cpu", "libraries": {"torch": "2.13.0"}}


def write_record(results, rel, record):
    path = results / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def eval_record(method, acc, **extra_metrics):
    return {"run_id": f"m/{method}/sent/1", "kind": "evaluate", "status": "ok", "model": "m", "method": method,
            "task": "sent", "rep": 1, "backend": "baseline", "bits": 32, "task_type": "lm_eval", "started": "t0",
            "ended": "t1", "environment": ENV, "details": {"lm_eval_metrics": {"acc,none": acc}}, "energy": None,
            "metrics": {"accuracy": acc, "n_items": 2, "size_bytes": 10, "load_time_s": 1.0, "primary": "accuracy",
                        **extra_metrics}}


def bench_record(method, tps):
    return {"run_id": f"m/{method}/bs1/1", "kind": "benchmark", "status": "ok", "model": "m", "method": method,
            "batch_size": 1, "rep": 1, "backend": "baseline", "bits": 32, "started": "t0", "ended": "t1",
            "environment": ENV, "details": {},
            "metrics": {"throughput_tokens_per_s": tps, "size_bytes": 10, "load_time_s": 1.0},
            "energy": {"energy_j": 5.0, "energy_method": "rapl", "net_energy_j": 3.0, "co2_kg": 1e-6,
                       "components_j": {"rapl": 5.0}, "duration_s": 2.0}}


def test_rows_per_run_with_flattened_metrics_and_items(tmp_path):
    evaluated = write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5))
    items = tmp_path / "eval/m/fp32/sent/1.items.jsonl"
    items.write_text('{"run_id": "m/fp32/sent/1", "doc_id": 3, "doc_hash": "ab", "target": 1, "predicted": 1, '
                     '"correct": 1}\n')
    benched = write_record(tmp_path, "bench/m/fp32/bs1/1.json", bench_record("fp32", 42.0))
    skipped = records.skipped(RunId("quantize", "m", "awq"), "awq", "CUDA only")
    runs, item_table = aggregate.build(aggregate.rows([], [evaluated, benched], [skipped]),
                                       aggregate.item_rows([items]))

    assert list(runs.run_id) == ["m/awq/quantize", "m/fp32/bs1/1", "m/fp32/sent/1"]
    bench = runs.set_index("run_id").loc["m/fp32/bs1/1"]
    assert bench.throughput_tokens_per_s == 42.0 and bench.energy_method == "rapl" and bench.net_energy_j == 3.0
    assert bench.torch_version == "2.13.0" and "components_j" not in runs.columns
    assert runs.set_index("run_id").loc["m/awq/quantize"].reason == "CUDA only"
    assert item_table.iloc[0].to_dict().items() >= {"method": "fp32", "task": "sent", "correct": 1,
                                                    "doc_hash": "ab"}.items()
    assert set(runs.columns) <= set(runtable.NAMES)


def test_only_the_records_given_make_the_table(tmp_path):
    """Another study's record in the same folder stays on disk and out of this table."""
    ours = write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5))
    write_record(tmp_path, "eval/m/int8/sent/1.json", eval_record("int8", 0.45))
    runs, _ = aggregate.build(aggregate.rows([], [ours], []), [])
    assert list(runs.method) == ["fp32"]


def test_a_value_no_column_declares_is_refused(tmp_path):
    odd = write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5, accuracy_v2=0.4))
    with pytest.raises(runtable.UndeclaredColumn, match="accuracy_v2.*runtable.py"):
        aggregate.rows([], [odd], [])


def test_a_run_id_given_twice_is_refused(tmp_path):
    one = write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5))
    copy = write_record(tmp_path, "elsewhere/1.json", eval_record("fp32", 0.6))
    with pytest.raises(ValueError, match="m/fp32/sent/1"):
        aggregate.build(aggregate.rows([], [one, copy], []), [])


def test_tables_are_written_atomically(tmp_path):
    evaluated = write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5))
    runs, items = aggregate.build(aggregate.rows([], [evaluated], []), [])
    out = tmp_path / "tables"
    aggregate.write(runs, items, out / "runs.csv", out / "runs.parquet", out / "items.csv")
    assert sorted(p.name for p in out.iterdir()) == ["items.csv", "runs.csv", "runs.parquet"]
    assert pd.read_csv(out / "runs.csv").accuracy.tolist() == [0.5]


KILLED_WRITE = """
import os, signal, sys
from pathlib import Path

import pandas as pd

from quantbench import aggregate, atomic

def write_half_then_die(path, data, *args, **kwargs):
    with open(path, "w") as f:
        f.write(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)

Path.write_text = write_half_then_die  # the process dies half-way through writing a table
if sys.argv[2] == "plain":  # what a writer without the temporary name does
    atomic.write_text = lambda target, text: Path(target).write_text(text)
runs = pd.DataFrame({"run_id": ["m/fp32/sent/1"], "accuracy": [0.9]})
out = Path(sys.argv[1])
aggregate.write(runs, runs.iloc[:0], out / "runs.csv", out / "runs.parquet", out / "items.csv")
"""


def table_after_a_kill_while_writing(tmp_path, writer: str) -> bytes:
    import subprocess
    import sys

    from workflow_runner import CLEAN_ENV

    evaluated = write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5))
    runs, items = aggregate.build(aggregate.rows([], [evaluated], []), [])
    aggregate.write(runs, items, tmp_path / "runs.csv", tmp_path / "runs.parquet", tmp_path / "items.csv")
    done = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(tmp_path), writer], env=CLEAN_ENV)
    assert done.returncode == -9  # killed, as by the OOM killer or a time limit
    return (tmp_path / "runs.csv").read_bytes()


def test_a_kill_while_the_table_is_written_leaves_the_previous_table(tmp_path):
    previous = tmp_path / "before.csv"
    (tmp_path / "a").mkdir()
    after = table_after_a_kill_while_writing(tmp_path / "a", "atomic")
    runs, items = aggregate.build(aggregate.rows([], [tmp_path / "a/eval/m/fp32/sent/1.json"], []), [])
    previous.write_text(runs.to_csv(index=False))
    assert after == previous.read_bytes()
    # the same kill without the atomic write truncates the table: this test would catch its removal
    (tmp_path / "b").mkdir()
    assert table_after_a_kill_while_writing(tmp_path / "b", "plain") != previous.read_bytes()
