"""What generated tokens cost in money, from a benchmark row's time and from its energy, at the config's prices
(`cost:`). Derived when the run table is built, so changing a price reruns nothing measured."""

from __future__ import annotations

import pandas as pd

from .columns import B, Column

COLUMNS = (
    Column("usd_per_mtok_time", "float", "USD", (B,), "cost", "dollars per million generated tokens from time: the "
           "hourly price (cost.usd_per_gpu_hour for runs on a GPU, else cost.usd_per_hour) over "
           "throughput_tokens_per_s", report="USD/Mtok (time)"),
    Column("usd_per_mtok_energy", "float", "USD", (B,), "cost", "dollars per million generated tokens from energy: "
           "cost.usd_per_kwh x energy_per_token_j (the device's energy as measured, idle included)",
           report="USD/Mtok (energy)"),
)
JOULES_PER_KWH = 3.6e6


def priced(runs: pd.DataFrame, prices: dict[str, float]) -> pd.DataFrame:
    """`runs` with the cost columns filled on benchmark rows where the config gives the price they need."""
    runs = runs.copy()
    bench = runs.kind == "benchmark"
    hourly = pd.Series(prices.get("usd_per_hour"), index=runs.index, dtype=float)
    if "usd_per_gpu_hour" in prices and "device" in runs:
        hourly[runs.device == "cuda"] = prices["usd_per_gpu_hour"]
    if hourly.notna().any() and "throughput_tokens_per_s" in runs:
        runs.loc[bench, "usd_per_mtok_time"] = hourly / 3600 / runs.throughput_tokens_per_s * 1e6
    if "usd_per_kwh" in prices and "energy_per_token_j" in runs:
        runs.loc[bench, "usd_per_mtok_energy"] = prices["usd_per_kwh"] * runs.energy_per_token_j * 1e6 / JOULES_PER_KWH
    return runs
