"""One energy meter for quantize, evaluate and benchmark jobs.

Hardware counters when the machine has them, read through Zeus (energy_counters.py: NVML's total-energy
counter for the GPU, RAPL package and DRAM for the CPU); NVML's sampled power on GPUs without the counter;
otherwise codecarbon's estimate. Every number carries the name of the method that produced it, and idle
power, measured when the caller chooses (a benchmark job: once, before the model loads), is subtracted into
a net figure. A window in which a counter did not advance has no energy figure, and says why: zero joules is
the counter's resolution, not a measurement.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

from .energy_counters import GPU_METHOD, ZeusCounters, optional
from .environment import now
from .gpu_monitor import NvmlSampler

log = logging.getLogger(__name__)
KWH = 3.6e6  # joules per kWh


def torch_gpu_uuid() -> str:
    """NVML's id of the GPU torch computes on.

    NVML numbers GPUs by PCI order and ignores CUDA_VISIBLE_DEVICES, so torch's cuda:0 is not
    NVML's index 0 on a shared node; the UUID is the same in both.
    """
    import torch

    return f"GPU-{torch.cuda.get_device_properties(torch.cuda.current_device()).uuid}"


def open_nvml():
    """(pynvml module, handle of torch's GPU); raises NVMLError_LibraryNotFound without a driver (in ~4 ms)."""
    import pynvml

    pynvml.nvmlInit()
    return pynvml, pynvml.nvmlDeviceGetHandleByUUID(torch_gpu_uuid())


@dataclass
class EnergyReading:
    duration_s: float
    energy_j: float | None  # raw, everything the meter saw in the window
    energy_method: str
    idle_power_w: float | None = None
    idle_measured: str | None = None  # when idle_power_w was measured (UTC, ISO 8601)
    net_energy_j: float | None = None  # raw minus idle power x duration
    energy_note: str | None = None  # why energy_j is empty where a meter was read
    co2_kg: float | None = None
    co2_method: str | None = None
    components_j: dict[str, float] = field(default_factory=dict)
    gpu: dict | None = None  # power, utilisation, temperature, memory sampled through NVML

    def as_dict(self) -> dict:
        return asdict(self)


class EnergyMeter:
    """`with meter.measure() as box: work()`, then `box.reading` holds the EnergyReading."""

    def __init__(self, device: str, country_iso_code: str = "USA"):
        self.gpu = optional(open_nvml) if device == "cuda" else None  # for the sampler; Zeus reads the counter
        self.counters = optional(ZeusCounters.open, self.gpu)
        self.country_iso_code = country_iso_code
        self.idle_power_w: float | None = None
        self.idle_measured: str | None = None

    def measure_idle(self, seconds: float) -> float | None:
        """Average power while sleeping `seconds`; later readings subtract it."""
        if seconds <= 0:
            return None
        self.idle_measured = now()
        with self.measure() as box:
            time.sleep(seconds)
        reading = box.reading
        self.idle_power_w = reading.energy_j / reading.duration_s if reading.energy_j is not None else None
        return self.idle_power_w

    @contextlib.contextmanager
    def measure(self) -> Iterator["_Box"]:
        box = _Box()
        tracker = self._tracker()
        sampler = NvmlSampler(*self.gpu).start() if self.gpu else None
        window = self.counters.begin() if self.counters else None
        t0 = time.perf_counter()
        try:
            yield box
        except BaseException:
            with contextlib.suppress(Exception):  # never mask the error that stopped the work
                if window:
                    self.counters.cancel(window)
                if sampler:
                    sampler.stop()
                if tracker:
                    tracker.stop()
            raise
        duration = time.perf_counter() - t0
        components = self.counters.end(window) if window else {}
        methods = list(self.counters.methods) if self.counters else []
        if sampler:
            sampler.stop()
            if GPU_METHOD not in methods:  # pre-Volta: integrate sampled power instead
                components[NvmlSampler.name] = sampler.energy_j()
                methods.append(NvmlSampler.name)
        estimate = _stop(tracker)
        note = _not_advanced(components, duration)  # the counters' own components, before any estimate's
        if components:
            energy, method = sum(components.values()), "+".join(methods)
        else:
            energy = estimate.energy_consumed * KWH if estimate else None
            method = "codecarbon_estimate"
            if estimate:
                components = {"cpu_estimate": estimate.cpu_energy * KWH, "ram_estimate": estimate.ram_energy * KWH}
        if note is None and energy is not None and energy <= 0:
            note = f"{method} read {energy} J for the {duration:.3f} s window: below its resolution"
        if note:
            energy = None
        co2_kg, co2_method = _co2(energy, method, estimate)
        reading = EnergyReading(duration, energy, method, components_j=components, co2_kg=co2_kg,
                                co2_method=co2_method, gpu=sampler.summary() if sampler else None, energy_note=note)
        if self.idle_power_w is not None and energy is not None:
            reading.idle_power_w, reading.idle_measured = self.idle_power_w, self.idle_measured
            reading.net_energy_j = energy - self.idle_power_w * duration  # may be < 0 within noise: kept
        box.reading = reading

    def _tracker(self):
        try:
            from codecarbon import OfflineEmissionsTracker

            tracker = OfflineEmissionsTracker(
                country_iso_code=self.country_iso_code, save_to_file=False, log_level="error",
                # 15 s (its default): shorter intervals double-count the window edges (measured)
                tracking_mode="process", measure_power_secs=15,
            )
            tracker.start()
            return tracker
        except Exception as err:  # codecarbon missing or broken: counters still work
            log.warning("energy: codecarbon unavailable (%s); no CO2 figure", err)
            return None


def _not_advanced(counters: dict[str, float], duration: float) -> str | None:
    """Why the window has no energy figure: a counter that did not move in it reads 0 J, which is below its
    resolution (NVML's counter updates every 20-100 ms), not a measurement; their sum would understate."""
    still = sorted(name for name, joules in counters.items() if joules <= 0)
    if still:
        return f"{', '.join(still)} did not advance in the {duration:.3f} s window: below its resolution"
    return None


def _co2(energy_j: float | None, method: str, estimate) -> tuple[float | None, str | None]:
    """CO2 of the energy we report: counter energy x the country's carbon intensity, both from one run.

    codecarbon's own emissions figure is of its own (estimated) energy; with hardware counters we
    apply its intensity (kg/kWh, offline data for the configured country) to the counted energy.
    """
    if estimate is None or energy_j is None:
        return None, None
    if method == "codecarbon_estimate":
        return estimate.emissions, "codecarbon_estimate"
    if not estimate.energy_consumed:
        return None, None
    intensity = estimate.emissions / estimate.energy_consumed
    return energy_j / KWH * intensity, f"{method}_x_codecarbon_intensity"


def _stop(tracker):
    if tracker is None:
        return None
    tracker.stop()
    return tracker.final_emissions_data


class _Box:
    reading: EnergyReading | None = None
