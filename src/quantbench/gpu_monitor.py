"""GPU sampling through NVML while a measurement runs: power, utilisation, temperature, memory.

Power samples also give energy (trapezoid integral) on GPUs without the total-energy counter
(pre-Volta), labelled `nvml_power_sampled` so nobody mistakes it for the counter.
"""

from __future__ import annotations

import os
import threading
import time


class NvmlSampler:
    """Samples the GPU every `interval` seconds in a background thread between start() and stop()."""

    name = "nvml_power_sampled"

    def __init__(self, nvml, handle, interval: float = 0.1):
        self._nvml, self._handle, self._interval = nvml, handle, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.samples: list[dict] = []

    def start(self) -> "NvmlSampler":
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        nvml, handle = self._nvml, self._handle
        self.samples.append({
            "t": time.perf_counter(),
            "power_w": nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
            "util_pct": nvml.nvmlDeviceGetUtilizationRates(handle).gpu,
            "temp_c": nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
            "process_mb": self._process_memory_mb(),
        })

    def _process_memory_mb(self) -> float | None:
        try:
            for proc in self._nvml.nvmlDeviceGetComputeRunningProcesses(self._handle):
                if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                    return proc.usedGpuMemory / 2**20
        except self._nvml.NVMLError:  # not supported in some containers
            pass
        return None

    def energy_j(self) -> float:
        s = self.samples
        return sum((b["t"] - a["t"]) * (a["power_w"] + b["power_w"]) / 2 for a, b in zip(s, s[1:]))

    def summary(self) -> dict:
        s = self.samples
        memory = [x["process_mb"] for x in s if x["process_mb"] is not None]
        return {
            "gpu_samples": len(s),
            "gpu_power_mean_w": sum(x["power_w"] for x in s) / len(s),
            "gpu_util_mean_pct": sum(x["util_pct"] for x in s) / len(s),
            "gpu_util_max_pct": max(x["util_pct"] for x in s),
            "gpu_temp_max_c": max(x["temp_c"] for x in s),
            "gpu_process_memory_max_mb": max(memory) if memory else None,
        }
