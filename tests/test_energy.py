"""Energy counters: arithmetic, wraparound, missing hardware, idle subtraction, honest labels."""

import sys
import types

import pytest

from quantbench import energy


def fake_rapl(root, value, max_range=1000):
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "energy_uj").write_text(str(value))
    (zone / "max_energy_range_uj").write_text(str(max_range))
    sub = root / "intel-rapl:0:0"  # a sub-zone (core) must not be double counted
    sub.mkdir(exist_ok=True)
    (sub / "energy_uj").write_text("0")
    return zone


def test_rapl_counts_across_wraparound(tmp_path):
    zone = fake_rapl(tmp_path, 900)
    counter = energy.RaplCounter(tmp_path)
    (zone / "energy_uj").write_text("950")
    assert counter.read_j() == pytest.approx(50e-6)
    (zone / "energy_uj").write_text("20")  # wrapped at 1000
    assert counter.read_j() == pytest.approx(120e-6)


def test_rapl_absent_raises(tmp_path):
    with pytest.raises(OSError):
        energy.RaplCounter(tmp_path)


class FakeNvml(types.ModuleType):
    def __init__(self, readings_mj):
        super().__init__("pynvml")
        self.readings = iter(readings_mj)

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return next(self.readings)


def test_nvml_counter_difference_in_joules(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([1_000_000, 1_000_000, 1_250_500]))
    counter = energy.NvmlCounter()
    start = counter.read_j()
    assert counter.read_j() - start == pytest.approx(250.5)


def test_missing_gpu_driver_falls_back_with_an_honest_label(monkeypatch, tmp_path):
    class NoDriver(types.ModuleType):
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", NoDriver("pynvml"))
    monkeypatch.setattr(energy, "RAPL_ROOT", tmp_path)
    meter = energy.EnergyMeter("cuda")
    assert meter.counters == []
    assert meter.method == "codecarbon_estimate"


def test_counter_meter_subtracts_idle_power(monkeypatch):
    class Clock:
        t = 0.0

    class StepCounter:
        name = "fake_counter"

        def __init__(self):
            self.j = 0.0

        def read_j(self):
            return self.j

    counter = StepCounter()
    meter = energy.EnergyMeter("cpu")
    meter.counters = [counter]
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    monkeypatch.setattr(energy.time, "perf_counter", lambda: Clock.t)

    def sleep(seconds):  # idle: 10 W
        Clock.t += seconds
        counter.j += 10 * seconds

    monkeypatch.setattr(energy.time, "sleep", sleep)
    assert meter.measure_idle(2) == pytest.approx(10)
    with meter.measure() as box:
        Clock.t += 3
        counter.j += 90  # 30 W under load
    reading = box.reading
    assert reading.energy_j == pytest.approx(90)
    assert reading.net_energy_j == pytest.approx(60)
    assert reading.energy_method == "fake_counter"
    assert reading.components_j == {"fake_counter": pytest.approx(90)}


def test_codecarbon_estimate_is_labelled_and_gives_co2():
    meter = energy.EnergyMeter("cpu", "SWE")
    meter.counters = []
    with meter.measure() as box:
        sum(range(200_000))
    assert box.reading.energy_method == "codecarbon_estimate"
    assert box.reading.energy_j > 0
    assert box.reading.co2_kg is not None and box.reading.co2_kg >= 0
