"""The run table: one row per run, rebuilt from records, nothing lost on reruns."""

import json

from quantbench import aggregate


def write_record(results, rel, record):
    path = results / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def eval_record(method, acc):
    return {"run_id": f"m/{method}/sent/1", "kind": "evaluate", "model": "m", "method": method,
            "backend": "baseline", "bits": 32, "task": "sent", "rep": 1, "size_bytes": 10, "load_time_s": 1.0,
            "started": "t0", "ended": "t1", "environment": {"device": "cpu"},
            "metrics": {"accuracy": acc, "n_items": 2, "lm_eval_metrics": {"acc,none": acc}}}


def bench_record(method, tps):
    return {"run_id": f"m/{method}/bs1/1", "kind": "benchmark", "model": "m", "method": method,
            "backend": "baseline", "bits": 32, "batch_size": 1, "rep": 1, "size_bytes": 10, "load_time_s": 1.0,
            "started": "t0", "ended": "t1", "environment": {"device": "cpu"},
            "metrics": {"throughput_tokens_per_s": tps, "energy": {"energy_j": 5.0, "energy_method": "rapl",
                                                                   "net_energy_j": 3.0, "co2_kg": 1e-6}}}


def test_rows_per_run_with_flattened_metrics_and_items(tmp_path):
    write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5))
    (tmp_path / "eval/m/fp32/sent/1.items.jsonl").write_text(
        '{"run_id": "m/fp32/sent/1", "doc_id": 3, "target": 1, "predicted": 1, "correct": 1}\n')
    write_record(tmp_path, "bench/m/fp32/bs1/1.json", bench_record("fp32", 42.0))
    runs, items = aggregate.build(tmp_path, aggregate.skipped_rows({"awq": "CUDA only"}, ["m"], {"awq": "awq"}))

    assert list(runs.run_id) == ["m/awq/quantize", "m/fp32/bs1/1", "m/fp32/sent/1"]
    bench = runs.set_index("run_id").loc["m/fp32/bs1/1"]
    assert bench.throughput_tokens_per_s == 42.0 and bench.energy_method == "rapl" and bench.net_energy_j == 3.0
    assert runs.set_index("run_id").loc["m/awq/quantize"].reason == "CUDA only"
    assert items.iloc[0].to_dict().items() >= {"method": "fp32", "task": "sent", "correct": 1}.items()


def test_rerun_replaces_its_row_and_keeps_the_others(tmp_path):
    write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5))
    write_record(tmp_path, "eval/m/int8/sent/1.json", eval_record("int8", 0.4))
    write_record(tmp_path, "eval/m/int8/sent/1.json", eval_record("int8", 0.45))  # the rerun
    runs, _ = aggregate.build(tmp_path, [])
    assert dict(zip(runs.method, runs.accuracy)) == {"fp32": 0.5, "int8": 0.45}


def test_tables_are_written_atomically(tmp_path):
    write_record(tmp_path, "eval/m/fp32/sent/1.json", eval_record("fp32", 0.5))
    runs, items = aggregate.build(tmp_path, [])
    out = tmp_path / "tables"
    aggregate.write(runs, items, out / "runs.csv", out / "runs.parquet", out / "items.csv")
    assert sorted(p.name for p in out.iterdir()) == ["items.csv", "runs.csv", "runs.parquet"]
