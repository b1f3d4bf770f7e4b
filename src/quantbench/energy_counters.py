"""Hardware energy counters read through Zeus (ML.ENERGY's ZeusMonitor): NVML's total-energy counter of
the GPU torch computes on, and the RAPL package and DRAM counters of the CPU.

Zeus is the field's meter for these counters and counts every RAPL wraparound (a poller process per
RAPL file). Two of its defaults would measure the wrong thing, so we choose its devices ourselves:
- it maps CUDA_VISIBLE_DEVICES' integers straight onto NVML's indices (PCI order) and cannot parse a
  list of UUIDs, while CUDA numbers GPUs fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID: we find
  torch's GPU by its UUID and show Zeus that GPU alone;
- it takes every top-level RAPL zone for a CPU package, a platform zone (`psys`, which already holds the
  package) included: we give it the package zones only.
Zeus starts its RAPL pollers with multiprocessing's spawn, which re-imports the main module: a script
that measures must run its work under `if __name__ == "__main__":` (workflow/scripts do).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os

log = logging.getLogger(__name__)
GPU_METHOD, CPU_METHOD = "zeus_nvml", "zeus_rapl"


def optional(make, *args):
    """`make(*args)`, or None when the hardware, driver or permission it needs is missing: a meter falls
    back to what it can read, and the log says why."""
    try:
        return make(*args)
    except Exception as err:
        log.info("energy: %s unavailable (%s)", make.__qualname__, err)
        return None


class ZeusCounters:
    """The counters readable here, behind one ZeusMonitor: `key = begin()`, work, `end(key)` -> joules."""

    def __init__(self, monitor, *, gpu: bool):
        self._monitor, self._gpu = monitor, gpu
        self._keys = itertools.count()
        self.methods = [m for m, present in ((GPU_METHOD, gpu), (CPU_METHOD, monitor.cpu_indices)) if present]

    @classmethod
    def open(cls, gpu) -> "ZeusCounters | None":
        """Counters for `gpu` ((pynvml, handle of torch's GPU), or None) and the CPU packages; None if
        neither has a readable counter (no RAPL, or RAPL readable by root only; a pre-Volta GPU)."""
        gpu_index = optional(_torch_gpu_in_zeus, *gpu) if gpu else None
        packages = optional(_rapl_packages) or []
        if gpu_index is None and not packages:
            return None
        from zeus.monitor import ZeusMonitor

        monitor = ZeusMonitor(gpu_indices=[] if gpu_index is None else [gpu_index], cpu_indices=packages)
        return cls(monitor, gpu=gpu_index is not None)

    def begin(self) -> str:
        key = f"quantbench-{next(self._keys)}"
        self._sync()
        self._monitor.begin_window(key, sync_execution=False)
        return key

    def end(self, key: str) -> dict[str, float]:
        """Joules per component since begin(key): zeus_nvml, zeus_rapl_package, zeus_rapl_dram."""
        self._sync()
        window = self._monitor.end_window(key, sync_execution=False)
        components = {GPU_METHOD: sum(window.gpu_energy.values())} if self._gpu else {}
        if window.cpu_energy is not None:
            components[f"{CPU_METHOD}_package"] = sum(window.cpu_energy.values())
        if window.dram_energy is not None:
            components[f"{CPU_METHOD}_dram"] = sum(window.dram_energy.values())
        return components

    def cancel(self, key: str) -> None:
        self._monitor.end_window(key, sync_execution=False, cancel=True)

    def _sync(self) -> None:
        """Let the GPU finish queued work at a window's edge. Zeus's own sync would pass its index (ours is
        NVML's) to torch, which numbers devices its own way."""
        if self._gpu:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()


@contextlib.contextmanager
def _cuda_visible_devices(value: str):
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = value
    try:
        yield
    finally:
        if saved is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def _torch_gpu_in_zeus(nvml, handle) -> int | None:
    """Zeus's index of the GPU behind `handle`, if it has the total-energy counter (Volta and later).

    Zeus's GPU list is made once per process, from CUDA_VISIBLE_DEVICES read as NVML indices: we set it to
    our GPU's NVML index for that moment (torch has read its own value already), then find the GPU by UUID.
    """
    from zeus.device.gpu import get_gpus

    uuid = nvml.nvmlDeviceGetUUID(handle)
    with _cuda_visible_devices(str(nvml.nvmlDeviceGetIndex(handle))):
        gpus = get_gpus()
    for index, gpu in enumerate(gpus.gpus):
        if nvml.nvmlDeviceGetUUID(gpu.handle) == uuid:
            if gpus.supports_get_total_energy_consumption(index):
                return index
            log.info("energy: %s has no total-energy counter (pre-Volta); sampling its power", uuid)
            return None
    log.warning("energy: Zeus does not list torch's GPU %s; no GPU counter", uuid)
    return None


def _rapl_packages() -> list[int]:
    """Zeus's indices of the RAPL package zones (their DRAM subzones come with them), not `psys`.

    Starts Zeus's wraparound poller of each (a spawned process that needs about a second to start) now,
    outside any measured window. Where only root may read RAPL, Zeus's monitor runs without the CPU; a tree
    it cannot parse (a zone without its `name`) fails the monitor itself, and the GPU falls back to sampling.
    """
    from zeus.device.cpu import get_cpus

    cpus = get_cpus()  # raises without RAPL, or where only root may read it
    packages = [i for i, cpu in enumerate(cpus.cpus) if cpu.rapl_file.name.startswith("package")]
    for index in packages:
        cpus.get_total_energy_consumption(index)
    return packages
