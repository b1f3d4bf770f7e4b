"""Money per million generated tokens, from time and from energy, at the config's prices."""

import pandas as pd
import pytest

from quantbench.cost import priced


def rows():
    return pd.DataFrame([
        {"run_id": "m/a/bs1/1", "kind": "benchmark", "device": "cpu", "throughput_tokens_per_s": 100.0,
         "energy_per_token_j": 0.5},
        {"run_id": "m/a/bs1/2", "kind": "benchmark", "device": "cuda", "throughput_tokens_per_s": 1000.0,
         "energy_per_token_j": 0.1},
        {"run_id": "m/a/quantize", "kind": "quantize", "device": "cpu"},
    ])


def test_dollars_per_million_tokens_by_value():
    runs = priced(rows(), {"usd_per_hour": 3.6, "usd_per_gpu_hour": 7.2, "usd_per_kwh": 0.2}).set_index("run_id")
    # 3.6 $/h = 0.001 $/s; at 100 tokens/s one token takes 0.01 s: 1e-5 $, 10 $ per million
    assert runs.loc["m/a/bs1/1", "usd_per_mtok_time"] == pytest.approx(10.0)
    assert runs.loc["m/a/bs1/2", "usd_per_mtok_time"] == pytest.approx(7.2 / 3600 / 1000 * 1e6)  # the GPU's price
    # 0.5 J per token: 5e5 J = 0.1389 kWh per million tokens, at 0.2 $/kWh
    assert runs.loc["m/a/bs1/1", "usd_per_mtok_energy"] == pytest.approx(0.2 * 5e5 / 3.6e6)
    assert runs.loc["m/a/quantize", ["usd_per_mtok_time", "usd_per_mtok_energy"]].isna().all()


def test_no_price_no_cost():
    runs = priced(rows(), {})
    assert "usd_per_mtok_time" not in runs and "usd_per_mtok_energy" not in runs
    gpu_only = priced(rows(), {"usd_per_gpu_hour": 7.2}).set_index("run_id")
    assert pd.isna(gpu_only.loc["m/a/bs1/1", "usd_per_mtok_time"]) and gpu_only.loc["m/a/bs1/2", "usd_per_mtok_time"] > 0
