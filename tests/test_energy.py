"""Energy counters: arithmetic, wraparound, missing hardware, idle subtraction, honest labels."""

import os
import sys
import time
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
    """pynvml as a driver would answer: energy counter (optional), power 100 W, 50 % busy, 60 C."""

    NVML_TEMPERATURE_GPU = 0
    NVMLError = RuntimeError

    def __init__(self, energy_mj=None):
        super().__init__("pynvml")
        self.energy = iter(energy_mj) if energy_mj is not None else None

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return uuid

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if self.energy is None:
            raise RuntimeError("Not Supported")  # pre-Volta
        return next(self.energy)

    def nvmlDeviceGetPowerUsage(self, handle):
        return 100_000  # mW

    def nvmlDeviceGetUtilizationRates(self, handle):
        return types.SimpleNamespace(gpu=50)

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return 60

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=3 * 2**30)]


def test_nvml_counter_difference_in_joules():
    nvml = FakeNvml([1_000_000, 1_000_000, 1_250_500])
    counter = energy.NvmlCounter(nvml, 0)
    start = counter.read_j()
    assert counter.read_j() - start == pytest.approx(250.5)


def _cpu_counters_absent(monkeypatch, tmp_path):
    monkeypatch.setattr(energy, "RAPL_ROOT", tmp_path)  # no RAPL zones here
    monkeypatch.setattr(energy, "torch_gpu_uuid", lambda: "GPU-0000")


def test_meter_reads_the_gpu_torch_computes_on(monkeypatch, tmp_path):
    """With CUDA_VISIBLE_DEVICES=2 torch's cuda:0 is NVML's GPU 2: the counter must be that GPU's."""
    class TwoGpus(FakeNvml):
        def nvmlDeviceGetHandleByUUID(self, uuid):
            return {"GPU-aaaa": 0, "GPU-cccc": 2}[uuid]

        def nvmlDeviceGetTotalEnergyConsumption(self, handle):
            return {0: 0, 2: 1_000_000}[handle]

    monkeypatch.setitem(sys.modules, "pynvml", TwoGpus())
    _cpu_counters_absent(monkeypatch, tmp_path)
    monkeypatch.setattr(energy, "torch_gpu_uuid", lambda: "GPU-cccc")
    meter = energy.EnergyMeter("cuda")
    assert meter.gpu[1] == 2 and meter.counters[0].read_j() == 1000.0


def test_gpu_without_energy_counter_integrates_sampled_power(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(energy_mj=None))
    _cpu_counters_absent(monkeypatch, tmp_path)
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    with meter.measure() as box:
        time.sleep(0.5)
    reading = box.reading
    assert reading.energy_method == "nvml_power_sampled"
    assert reading.energy_j == pytest.approx(100 * reading.duration_s, rel=0.1)
    assert reading.gpu["gpu_util_mean_pct"] == 50 and reading.gpu["gpu_temp_max_c"] == 60
    assert reading.gpu["gpu_process_memory_max_mb"] == 3 * 1024
    assert reading.gpu["gpu_samples"] >= 3


def test_gpu_counter_is_preferred_to_sampling(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(energy_mj=[0, 5_000, 12_000]))
    _cpu_counters_absent(monkeypatch, tmp_path)
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    with meter.measure() as box:
        pass
    assert box.reading.energy_method == "nvml_counter"
    assert box.reading.energy_j == pytest.approx(7.0)
    assert box.reading.gpu["gpu_util_max_pct"] == 50


def test_missing_gpu_driver_falls_back_with_an_honest_label(monkeypatch, tmp_path):
    class NoDriver(types.ModuleType):
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", NoDriver("pynvml"))
    _cpu_counters_absent(monkeypatch, tmp_path)
    meter = energy.EnergyMeter("cuda")
    assert meter.gpu is None and meter.counters == []
    with meter.measure() as box:
        pass
    assert box.reading.energy_method == "codecarbon_estimate" and box.reading.gpu is None


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
    assert box.reading.co2_method == "codecarbon_estimate"


def test_counter_energy_gets_the_country_carbon_intensity():
    """CO2 is of the counted energy (not of codecarbon's own estimate): 3.6 MJ in Sweden = 40.695 g."""
    class MegaCounter:
        name = "fake_counter"
        readings = iter([0.0, 3.6e6])

        def read_j(self):
            return next(self.readings)

    meter = energy.EnergyMeter("cpu", "SWE")
    meter.counters = [MegaCounter()]
    with meter.measure() as box:
        sum(range(200_000))
    assert box.reading.energy_j == 3.6e6
    assert box.reading.co2_kg == pytest.approx(0.040695, rel=1e-6)
    assert box.reading.co2_method == "fake_counter_x_codecarbon_intensity"
