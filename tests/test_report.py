"""The report's tables computed by value."""

import pandas as pd
import pytest

from quantbench.report import study_cost


def run(kind, run_id, method, seconds, load=None, energy=1000.0, rep=1):
    return {"run_id": run_id, "kind": kind, "status": "ok", "model": "m", "method": method, "rep": rep,
            "started": "2026-12-01T00:00:00+00:00", "ended": f"2026-12-01T00:00:{seconds:02d}+00:00",
            "load_time_s": load, "energy_j": energy, "energy_method": "codecarbon_estimate"}


def test_study_cost_counts_one_load_per_evaluate_job_and_every_run():
    runs = pd.DataFrame([
        run("quantize", "m/q/quantize", "q", 48),
        run("evaluate", "m/q/a/1", "q", 10, load=2.0),  # one job: two tasks, one load
        run("evaluate", "m/q/b/1", "q", 20, load=2.0),
        run("evaluate", "m/q/a/2", "q", 10, load=4.0, rep=2),  # the second repetition is another job
        {**run("evaluate", "m/q/c/1", "q", 50, load=2.0), "status": "failed"},
    ])
    cost = study_cost(runs)
    assert cost.loc["evaluate", "jobs"] == 2 and cost.loc["evaluate", "runs"] == 3
    assert float(cost.loc["evaluate", "minutes"]) == pytest.approx((10 + 20 + 10 + 2 + 4) / 60, abs=1e-3)
    assert float(cost.loc["quantize", "minutes"]) == pytest.approx(48 / 60, abs=1e-3)
    assert float(cost.loc["evaluate", "energy_kJ"]) == pytest.approx(3.0)
