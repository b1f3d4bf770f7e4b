"""The benchmark's arithmetic by value: latency statistics, rates, energy per token and the bandwidth bound."""

import json
import math

import pytest

from quantbench.benchmark import latency_stats, rates
from quantbench.measures.bandwidth import bandwidth_bound, memory_bandwidth_gbs
from quantbench.energy import EnergyReading


def test_three_timings_give_no_tail_percentiles():
    stats = latency_stats([0.3, 0.1, 0.2], "latency")
    assert stats["latency_mean_s"] == pytest.approx(0.2) and stats["latency_p50_s"] == pytest.approx(0.2)
    assert stats["latency_stdev_s"] == pytest.approx(0.1)
    assert stats["latency_p90_s"] is stats["latency_p95_s"] is stats["latency_p99_s"] is None


def test_ten_timings_give_p90_and_not_p95():
    stats = latency_stats([float(x) for x in range(1, 11)], "decode")
    assert stats["decode_mean_s"] == 5.5 and stats["decode_p50_s"] == 5.5
    assert stats["decode_stdev_s"] == pytest.approx(math.sqrt(sum((x - 5.5) ** 2 for x in range(1, 11)) / 9))
    assert stats["decode_p90_s"] == pytest.approx(9.1)  # linear interpolation between the 9th and 10th
    assert stats["decode_p95_s"] is None and stats["decode_p99_s"] is None
    assert latency_stats([1.0], "x")["x_stdev_s"] is None


def test_rates_of_known_timings_and_energy():
    energy = EnergyReading(duration_s=2.2, energy_j=11.0, energy_method="rapl", net_energy_j=5.5)
    got = rates(batch_size=2, new_tokens=4, prefill_s=[0.1, 0.3, 0.2], generate_s=[1.0, 1.2], energy=energy)
    # 2 calls x 2 rows x 4 tokens in 2.2 s; decoding: 3 tokens per row after the prefill, 2.2 - 2 x 0.2 s
    assert got["throughput_tokens_per_s"] == pytest.approx(16 / 2.2)
    assert got["throughput_samples_per_s"] == pytest.approx(4 / 2.2)
    assert got["decode_tokens_per_s"] == pytest.approx(12 / 1.8)
    assert got["energy_per_token_j"] == pytest.approx(11 / 16) and got["net_energy_per_token_j"] == pytest.approx(5.5 / 16)
    assert got["energy_per_sample_j"] == pytest.approx(11 / 4)
    no_counter = EnergyReading(duration_s=1, energy_j=None, energy_method="codecarbon_estimate")
    single = rates(batch_size=1, new_tokens=1, prefill_s=[0.1], generate_s=[0.1], energy=no_counter)
    assert single["decode_tokens_per_s"] is None and single["energy_per_token_j"] is None


def test_bandwidth_bound_by_value():
    bound = bandwidth_bound(batch_size=8, weight_bytes=100_000_000, bandwidth_gbs=20.0, decode_tokens_per_s=400.0)
    assert bound["bandwidth_bound_tokens_per_s"] == pytest.approx(1600.0)  # 8 x 20e9 / 1e8
    assert bound["bandwidth_fraction"] == pytest.approx(0.25)


def test_memory_bandwidth_is_measured():
    assert 0.1 < memory_bandwidth_gbs("cpu", mib=32, repeats=2) < 10_000


@pytest.fixture(scope="module")
def fp32_artifact(tiny_model_folder, tmp_path_factory):
    import run_jobs

    artifact = tmp_path_factory.mktemp("bench") / "fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", device="cpu", country="USA",
                  method={"name": "fp32", "backend": "baseline", "params": {"dtype": "float32"}})
    return artifact


def test_a_batchs_peak_memory_is_its_own(fp32_artifact):
    """512 MiB allocated and freed before a batch (as the bandwidth test's buffers are) stay out of its peak."""
    import numpy as np

    from quantbench import artifacts, benchmark
    from quantbench.energy import EnergyMeter
    from quantbench.tasks.data import text_path

    runtime, _ = artifacts.load(fp32_artifact, "cpu")

    def peak() -> float:
        metrics, _ = benchmark.timed_generation(runtime, text_path("qb_perplexity").read_text(), batch_size=2, prompt_tokens=16,
                                   new_tokens=4, warmup=0, iterations=2, meter=EnergyMeter("cpu"))
        return metrics["peak_rss_mb"]

    before = peak()
    buffer = np.ones(512 * 2**20, dtype=np.uint8)  # touched: resident
    del buffer
    assert peak() == pytest.approx(before, abs=32)


def test_a_benchmark_job_measures_idle_once_before_the_load_and_runs_batches_in_the_configs_order(fp32_artifact,
                                                                                                    tmp_path):
    import run_jobs

    settings = {"prompt_tokens": 16, "new_tokens": 4, "warmup": 0, "iterations": 2, "idle_seconds": 0.3,
                "cooldown_seconds": 0}
    outs = {2: tmp_path / "bs2.json", 1: tmp_path / "bs1.json"}
    run_jobs.run_benchmark(fp32_artifact, outs, ids={"model": "tiny", "method": "fp32", "rep": 1}, settings=settings,
                       device="cpu", country="USA")
    records = {batch: json.loads(path.read_text()) for batch, path in outs.items()}
    assert records[2]["started"] < records[1]["started"]  # the config's order, not smallest first
    energies = [r["energy"] for r in records.values()]
    assert energies[0]["idle_power_w"] == energies[1]["idle_power_w"] is not None  # one idle measurement
    assert energies[0]["idle_measured"] == energies[1]["idle_measured"] < records[2]["started"]
    for record in records.values():
        metrics = record["metrics"]
        assert 0 < metrics["model_rss_mb"] < metrics["peak_rss_mb"]  # the model's own memory, not the process's
