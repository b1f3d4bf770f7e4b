"""What a measurement ran on: hardware, driver, library versions and the pipeline's git revision.

Collected once per process (records.py asks for it for every record a job writes).
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path

# Libraries every job's numbers depend on; a backend's own packages are added to its records.
LIBRARIES = ("torch", "transformers", "accelerate", "lm_eval", "safetensors", "datasets", "scikit-learn",
             "codecarbon", "nvidia-ml-py", "zeus")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str | None:
    """The revision of the quantbench checkout that ran (with -dirty for uncommitted changes)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def versions(packages) -> dict[str, str]:
    """Installed versions of `packages` (distribution names); absent ones are left out."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


@functools.cache
def _machine() -> dict:
    return {"host": socket.gethostname(), "python": platform.python_version(), "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(), "git_revision": _git_revision()}


def describe(device: str, packages: tuple[str, ...] = ()) -> dict:
    """The machine, the device, torch's threads and the versions of LIBRARIES plus `packages`."""
    import torch

    env = {**_machine(), "torch_threads": torch.get_num_threads(), "device": device,
           "libraries": versions(dict.fromkeys((*LIBRARIES, *packages)))}
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    return env
