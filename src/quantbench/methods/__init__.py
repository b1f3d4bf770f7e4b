"""The method registry: backend name -> Backend. Adding a backend = one class here + config."""

from __future__ import annotations

from typing import Any

from .base import Backend
from .baseline import Baseline
from .bitsandbytes import BitsAndBytes
from .quanto import Quanto

BACKENDS: dict[str, Backend] = {b.name: b for b in (Baseline(), BitsAndBytes(), Quanto())}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}") from None


def method_schema(backend: Backend) -> dict[str, Any]:
    """Full JSON schema of one method entry (backend + its params) in the config."""
    return {
        "type": "object",
        "properties": {"backend": {"const": backend.name}, **backend.params_schema},
        "required": ["backend", *backend.required],
        "additionalProperties": False,
    }


def with_defaults(backend: Backend, params: dict[str, Any]) -> dict[str, Any]:
    defaults = {k: v["default"] for k, v in backend.params_schema.items() if "default" in v}
    return {**defaults, **{k: v for k, v in params.items() if k != "backend"}}
