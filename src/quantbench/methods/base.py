"""What every quantization backend provides: the one place that knows how a method runs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from .runtime import Runtime, TorchRuntime, load_tokenizer

SAFE_LOAD = {"use_safetensors": True, "trust_remote_code": False}


class Backend(ABC):
    """A quantization library: quantize a HF model folder into an artifact, and load it back as a Runtime.

    `params_schema` is a JSON schema (properties only) for the method's keys besides `backend`;
    defaults in it are filled in before `quantize`/`load` see the params.
    """

    name: ClassVar[str]
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    packages: ClassVar[tuple[str, ...]] = ()  # distribution names this backend imports
    params_schema: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ()  # params the config must give
    notes: ClassVar[str] = ""  # for the capability table: why a device is missing, kernels used, caveats

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if not _distribution_installed(p)]

    def device_problem(self, params: dict[str, Any], device: str) -> str | None:
        """Why this method (backend + params) cannot run on `device` (cpu or cuda); None when it can."""
        if device not in self.devices:
            return f"backend {self.name!r} runs on {', '.join(self.devices)} only"
        return None

    def bits(self, params: dict[str, Any]) -> int:
        """Weight bit-width of this method, for tables and figures."""
        return int(params.get("bits", 16))

    def artifact_details(self, artifact: Path, params: dict[str, Any]) -> dict[str, Any]:
        """What the written artifact holds beyond the params (e.g. the tensor types llama.cpp chose)."""
        return {}

    @abstractmethod
    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        """Write a loadable artifact for the model folder `source` into the empty folder `out`."""

    def load(self, artifact: Path, params: dict[str, Any], device: str) -> Runtime:
        """The variant in `artifact`, ready for inference on `device`."""
        return TorchRuntime(self.load_model(artifact, params, device), load_tokenizer(artifact), device)

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        """The transformers model in `artifact` on `device` (backends run by TorchRuntime implement this)."""
        raise NotImplementedError(f"backend {self.name!r} loads its own runtime")


def _distribution_installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return importlib.util.find_spec(name.replace("-", "_")) is not None


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def copy_tokenizer(source: Path, out: Path) -> None:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(source).save_pretrained(out)
