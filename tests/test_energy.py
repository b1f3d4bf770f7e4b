"""Energy through Zeus: exact joules from a fake NVML and a fake RAPL sysfs tree (wraps, a DRAM subzone, a
`psys` zone that must not be added), the GPU torch computes on, fallbacks with honest labels, idle
subtraction, CO2 of the counted energy."""

import os
import sys
import time
import types

import pynvml
import pytest
import zeus.device.cpu
import zeus.device.cpu.rapl
import zeus.device.gpu
import zeus.device.gpu.nvidia

from quantbench import energy


class FakeNvml(types.ModuleType):
    """pynvml as a driver would answer for GPUs {uuid: total-energy counter in mJ, or None before Volta};
    each draws 100 W, is 50 % busy at 60 C, with 3 GiB used by this process. Tests set `counter_mj`."""

    def __init__(self, gpus: dict[str, int | None]):
        super().__init__("pynvml")
        self.uuids = list(gpus)
        self.counter_mj = list(gpus.values())

    def __getattr__(self, name):  # constants and error classes are the real library's
        if name.startswith("nvml"):
            raise AttributeError(name)
        return getattr(pynvml, name)

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return self.uuids.index(uuid)

    def nvmlDeviceGetIndex(self, handle):
        return handle

    def nvmlDeviceGetUUID(self, handle):
        return self.uuids[handle]

    def nvmlDeviceGetC2cModeInfoV(self, handle):  # not a Grace Hopper module
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetArchitecture(self, handle):
        counted = self.counter_mj[handle] is not None
        return pynvml.NVML_DEVICE_ARCH_HOPPER if counted else pynvml.NVML_DEVICE_ARCH_PASCAL

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if self.counter_mj[handle] is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self.counter_mj[handle]

    def nvmlDeviceGetPowerUsage(self, handle):
        return 100_000  # mW

    def nvmlDeviceGetUtilizationRates(self, handle):
        return types.SimpleNamespace(gpu=50)

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return 60

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=3 * 2**30)]


class FakeRapl:
    """A powercap tree as Linux shows it under /sys/class/powercap/intel-rapl; values in µJ, written
    atomically (Zeus's poller must never read a half-written file)."""

    def __init__(self, root):
        self.root = root

    def zone(self, path: str, name: str, energy_uj: int, max_range_uj: int = 60_000_000):
        folder = self.root / path
        folder.mkdir(parents=True)
        (folder / "name").write_text(name)
        (folder / "max_energy_range_uj").write_text(str(max_range_uj))
        self.set(path, energy_uj)

    def set(self, path: str, energy_uj: int):
        tmp = self.root / path / "energy_uj.tmp"
        tmp.write_text(str(energy_uj))
        os.replace(tmp, self.root / path / "energy_uj")


@pytest.fixture
def devices(monkeypatch, tmp_path):
    """Zeus and quantbench see fake devices: `devices.gpus(...)` installs a FakeNvml, `devices.rapl` is an
    empty powercap tree (no RAPL until a test adds zones). Zeus's device singletons start afresh."""
    root = tmp_path / "intel-rapl"
    monkeypatch.setattr(zeus.device.cpu.rapl, "RAPL_DIR", str(root))
    monkeypatch.setattr(zeus.device.cpu.rapl, "CONTAINER_RAPL_DIR", str(tmp_path / "absent"))
    monkeypatch.setattr(zeus.device.cpu, "_cpus", None)
    monkeypatch.setattr(zeus.device.gpu, "_gpus", None)
    zeus.device.cpu.rapl.rapl_is_available.cache_clear()
    zeus.device.gpu.nvidia.nvml_is_available.cache_clear()
    monkeypatch.setattr(energy, "torch_gpu_uuid", lambda: "GPU-0000")

    def gpus(counters: dict[str, int | None]) -> FakeNvml:
        nvml = FakeNvml(counters)
        monkeypatch.setitem(sys.modules, "pynvml", nvml)
        monkeypatch.setattr(zeus.device.gpu.nvidia, "pynvml", nvml)
        return nvml

    yield types.SimpleNamespace(gpus=gpus, rapl=FakeRapl(root))
    for cpu in zeus.device.cpu._cpus.cpus if zeus.device.cpu._cpus else []:  # stop Zeus's pollers
        for rapl_file in (cpu.rapl_file, cpu.dram):
            if rapl_file is not None and rapl_file._wraparound_tracker is not None:
                rapl_file._wraparound_tracker._stop()
    zeus.device.cpu.rapl.rapl_is_available.cache_clear()
    zeus.device.gpu.nvidia.nvml_is_available.cache_clear()


def wraps_seen(zone_index: int) -> int:
    """Wraparounds Zeus's poller has counted on a package zone's counter."""
    return zeus.device.cpu.get_cpus().cpus[zone_index].rapl_file.wraparound_tracker.get_num_wraparounds()


def wrap(rapl: FakeRapl, path: str, zone_index: int, energy_uj: int, timeout: float = 60):
    """Write a lower value (the counter wrapped) and wait until Zeus's poller has counted it."""
    before = wraps_seen(zone_index)
    rapl.set(path, energy_uj)
    deadline = time.monotonic() + timeout
    while wraps_seen(zone_index) == before:
        assert time.monotonic() < deadline, f"Zeus's poller did not see {path} wrap"
        time.sleep(0.05)


def wait_for_poller(rapl: FakeRapl, path: str, zone_index: int, energy_uj: int, timeout: float = 60):
    """Zeus's poller is a spawned process that reads the counter first when it has started: lower the value
    step by step until it counts a wrap, then it is polling."""
    deadline = time.monotonic() + timeout
    while wraps_seen(zone_index) == 0:
        assert time.monotonic() < deadline, "Zeus's wraparound poller never started"
        energy_uj -= 1
        rapl.set(path, energy_uj)
        time.sleep(0.3)


def test_zeus_counts_gpu_package_and_dram_across_two_wraps_without_psys(devices, monkeypatch):
    nvml = devices.gpus({"GPU-0000": 1_000_000})
    rapl = devices.rapl
    rapl.zone("intel-rapl:0", "package-0", 50_000_000)
    rapl.zone("intel-rapl:0/intel-rapl:0:0", "core", 1_000_000)  # inside the package: never added
    rapl.zone("intel-rapl:0/intel-rapl:0:1", "dram", 10_000_000)
    rapl.zone("intel-rapl:1", "psys", 20_000_000)  # the whole platform, package included
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    assert len(zeus.device.cpu.get_cpus().cpus) == 2  # Zeus itself takes psys for a second CPU package
    wait_for_poller(rapl, "intel-rapl:0", 0, 50_000_000)
    rapl.set("intel-rapl:0", 50_000_000)

    with meter.measure() as box:
        nvml.counter_mj[0] += 25_500  # GPU: 25.5 J
        wrap(rapl, "intel-rapl:0", 0, 5_000_000)  # 50 -> 60 = 0 -> 5 J
        wrap(rapl, "intel-rapl:0", 0, 2_000_000)  # 5 -> 60 = 0 -> 2 J: a second wrap in one window
        rapl.set("intel-rapl:0/intel-rapl:0:1", 17_000_000)  # DRAM: 7 J
        rapl.set("intel-rapl:0/intel-rapl:0:0", 6_000_000)  # core: 5 J, part of the package
        rapl.set("intel-rapl:1", 50_000_000)  # psys: 30 J, would count the package twice

    reading = box.reading
    package_j = 10 + 60 + 2  # to the first wrap, one whole range, after the second wrap
    assert reading.components_j == {"zeus_nvml": pytest.approx(25.5), "zeus_rapl_package": pytest.approx(package_j),
                                    "zeus_rapl_dram": pytest.approx(7)}
    assert reading.energy_j == pytest.approx(25.5 + package_j + 7)
    assert reading.energy_method == "zeus_nvml+zeus_rapl"
    assert reading.gpu["gpu_util_max_pct"] == 50  # the NVML sampler still summarises the GPU


# CUDA_VISIBLE_DEVICES as a job may see it when torch's cuda:0 is NVML's GPU 2: by index, by UUID, and
# by CUDA's default fastest-first order (CUDA's 0 is the fastest GPU, NVML's 2).
@pytest.mark.parametrize("visible", ["2", "GPU-cccc", "0"], ids=["index", "uuid", "fastest-first"])
def test_meter_reads_the_gpu_torch_computes_on(devices, monkeypatch, visible):
    """The counter must be the GPU torch computes on, found by UUID: Zeus alone reads CUDA_VISIBLE_DEVICES
    as NVML indices (wrong in fastest-first order) and cannot parse a UUID."""
    nvml = devices.gpus({"GPU-aaaa": 0, "GPU-bbbb": 0, "GPU-cccc": 0})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setattr(energy, "torch_gpu_uuid", lambda: "GPU-cccc")
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == visible
    with meter.measure() as box:
        nvml.counter_mj[:] = [500_000, 0, 1_000_000]
    assert box.reading.energy_j == 1000.0 and box.reading.energy_method == "zeus_nvml"


def test_gpu_without_energy_counter_integrates_sampled_power(devices, monkeypatch):
    devices.gpus({"GPU-0000": None})
    meter = energy.EnergyMeter("cuda")
    assert meter.counters is None
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    with meter.measure() as box:
        time.sleep(0.5)
    reading = box.reading
    assert reading.energy_method == "nvml_power_sampled"
    assert reading.energy_j == pytest.approx(100 * reading.duration_s, rel=0.1)
    assert reading.gpu["gpu_util_mean_pct"] == 50 and reading.gpu["gpu_temp_max_c"] == 60
    assert reading.gpu["gpu_process_memory_max_mb"] == 3 * 1024
    assert reading.gpu["gpu_samples"] >= 3


def test_pre_volta_gpu_is_sampled_beside_the_rapl_counter(devices, monkeypatch):
    devices.gpus({"GPU-0000": None})
    devices.rapl.zone("intel-rapl:0", "package-0", 1_000_000)
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    with meter.measure() as box:
        devices.rapl.set("intel-rapl:0", 4_000_000)
    assert box.reading.energy_method == "zeus_rapl+nvml_power_sampled"
    assert box.reading.components_j["zeus_rapl_package"] == pytest.approx(3.0)


def test_gpu_counter_is_preferred_to_sampling(devices, monkeypatch):
    nvml = devices.gpus({"GPU-0000": 5_000})
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    with meter.measure() as box:
        nvml.counter_mj[0] = 12_000
    assert box.reading.energy_method == "zeus_nvml"
    assert box.reading.energy_j == pytest.approx(7.0)
    assert box.reading.gpu["gpu_util_max_pct"] == 50


def test_a_counter_that_did_not_advance_gives_no_energy_and_says_why(devices, monkeypatch):
    """A window shorter than NVML's update period reads 0 J: that is the counter's resolution, not a measurement
    (it would enter the statistics as the most efficient run); beside a RAPL counter that did move, too."""
    nvml = devices.gpus({"GPU-0000": 5_000})
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    with meter.measure() as box:
        pass
    reading = box.reading
    assert reading.energy_j is None and reading.net_energy_j is None and reading.co2_kg is None
    assert reading.energy_method == "zeus_nvml" and "zeus_nvml did not advance" in reading.energy_note
    assert reading.components_j == {"zeus_nvml": 0}
    with meter.measure() as box:  # the next window that sees the counter move is a measurement again
        nvml.counter_mj[0] += 1_000
    assert box.reading.energy_j == pytest.approx(1.0) and box.reading.energy_note is None


def test_rapl_readable_by_root_only_leaves_the_gpu_counter(devices, monkeypatch):
    """Since 2020 Linux lets only root read RAPL's energy_uj: the CPU is not counted, the GPU still is."""
    nvml = devices.gpus({"GPU-0000": 0})
    devices.rapl.zone("intel-rapl:0", "package-0", 1_000_000)
    real_open = open

    def as_a_user(path, *args, **kwargs):
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", as_a_user)
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)
    with meter.measure() as box:
        nvml.counter_mj[0] = 2_000
    assert box.reading.energy_method == "zeus_nvml" and box.reading.energy_j == pytest.approx(2.0)


def test_missing_gpu_driver_falls_back_with_an_honest_label(devices, monkeypatch):
    class NoDriver(types.ModuleType):
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", NoDriver("pynvml"))
    meter = energy.EnergyMeter("cuda")
    assert meter.gpu is None and meter.counters is None
    with meter.measure() as box:
        pass
    assert box.reading.energy_method == "codecarbon_estimate" and box.reading.gpu is None


def test_counter_meter_subtracts_idle_power(devices, monkeypatch):
    nvml = devices.gpus({"GPU-0000": 0})
    meter = energy.EnergyMeter("cuda")
    monkeypatch.setattr(meter, "_tracker", lambda: None)

    class Clock:
        t = 0.0

    monkeypatch.setattr(energy.time, "perf_counter", lambda: Clock.t)

    def sleep(seconds):  # idle: 10 W
        Clock.t += seconds
        nvml.counter_mj[0] += 10_000 * seconds

    monkeypatch.setattr(energy.time, "sleep", sleep)
    assert meter.measure_idle(2) == pytest.approx(10)
    idle_measured = meter.idle_measured
    with meter.measure() as box:
        Clock.t += 3
        nvml.counter_mj[0] += 90_000  # 30 W under load
    reading = box.reading
    assert reading.energy_j == pytest.approx(90)
    assert reading.net_energy_j == pytest.approx(60)
    assert reading.idle_measured == idle_measured is not None  # the record says when the idle power was taken
    assert reading.energy_method == "zeus_nvml"
    assert reading.components_j == {"zeus_nvml": pytest.approx(90)}


def test_codecarbon_estimate_is_labelled_and_gives_co2(devices):
    meter = energy.EnergyMeter("cpu", "SWE")
    assert meter.counters is None  # no RAPL zones in the fake tree
    with meter.measure() as box:
        sum(range(200_000))
    assert box.reading.energy_method == "codecarbon_estimate"
    assert box.reading.energy_j > 0
    assert box.reading.co2_kg is not None and box.reading.co2_kg >= 0
    assert box.reading.co2_method == "codecarbon_estimate"


def test_counter_energy_gets_the_country_carbon_intensity(devices):
    """CO2 is of the counted energy (not of codecarbon's own estimate): 3.6 MJ in Sweden = 40.695 g."""
    nvml = devices.gpus({"GPU-0000": 0})
    meter = energy.EnergyMeter("cuda", "SWE")
    with meter.measure() as box:
        nvml.counter_mj[0] = 3_600_000_000
        sum(range(200_000))
    assert box.reading.energy_j == 3.6e6
    assert box.reading.co2_kg == pytest.approx(0.040695, rel=1e-6)
    assert box.reading.co2_method == "zeus_nvml_x_codecarbon_intensity"
