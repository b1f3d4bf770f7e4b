"""Which device a job runs on, decided at run time (a SLURM node may differ from the head node)."""

from __future__ import annotations

from .errors import DeviceUnavailable


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(setting: str) -> str:
    """Map the config's `device` (auto | cpu | cuda) to the device this process will use."""
    if setting == "cpu":
        return "cpu"
    if setting == "cuda":
        if not cuda_available():
            raise DeviceUnavailable("config says device: cuda, but torch sees no GPU in this job")
        return "cuda"
    return "cuda" if cuda_available() else "cpu"
