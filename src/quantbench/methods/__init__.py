"""The method registry: backend name -> Backend. Adding a backend = one class here + config."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .autoround import AutoRound
from .awq import AWQ
from .base import Backend
from .baseline import Baseline
from .bitsandbytes import BitsAndBytes
from .gguf import GGUF
from .gptq import GPTQ
from .hqq import HQQ
from .quanto import Quanto
from .torchao import TorchAO

BACKENDS: dict[str, Backend] = {
    b.name: b for b in (Baseline(), BitsAndBytes(), Quanto(), GPTQ(), AWQ(), AutoRound(), HQQ(), TorchAO(), GGUF())
}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}") from None


def with_defaults(backend: Backend, params: dict[str, Any]) -> dict[str, Any]:
    return fill_defaults(backend.schema(), {k: v for k, v in params.items() if k != "backend"})


def fill_defaults(properties: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` with the schema's defaults added, nested objects (e.g. `calibration`) included."""
    filled = {k: v["default"] for k, v in properties.items() if "default" in v}
    filled.update(given)
    for key, spec in properties.items():
        if "properties" in spec and isinstance(filled.get(key), dict):
            filled[key] = fill_defaults(spec["properties"], filled[key])
    return filled
