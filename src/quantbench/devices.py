"""Which device a job runs on, decided at run time (a SLURM node may differ from the head node)."""

from __future__ import annotations

from .errors import DeviceUnavailable


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def gpu_count() -> int | None:
    """NVIDIA GPUs this machine has, from NVML (milliseconds, no torch); None where NVML is not installed.
    A machine without the driver has none (NVML then fails in ~4 ms)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return 0
    try:
        return pynvml.nvmlDeviceGetCount()
    finally:
        pynvml.nvmlShutdown()


def resolve_device(setting: str) -> str:
    """Map the config's `device` (auto | cpu | cuda) to the device this process will use."""
    if setting == "cpu":
        return "cpu"
    if setting == "cuda":
        if not cuda_available():
            raise DeviceUnavailable("config says device: cuda, but torch sees no GPU in this job")
        return "cuda"
    return "cuda" if cuda_available() else "cpu"
