"""The method registry: backend name -> Backend. Adding a backend = one class here + config."""

from __future__ import annotations

from typing import Any

from ..defaults import fill_defaults
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
