"""What computed a benchmark's matrix products, and why its speed may not be the method's on a real model."""

from __future__ import annotations

from typing import Any

from ..columns import B, Column
from ..methods import kv_cache
from .base import Batch, Measure


class Kernel(Measure):
    columns = (
        Column("kernel", "str", "", (B,), "speed", "what computed the matrix products (library, kernel, device)",
               report="kernel"),
        Column("speed_caveat", "str", "", (B,), "speed", "why this speed may not be the method's on a real model "
               "(e.g. a path random weights do not take); empty where none is known"),
    )

    def setup(self, variant, settings) -> dict[str, Any]:
        params = variant.info["params"]
        caveat = variant.backend.speed_caveat(params, variant.info.get("weights", "pretrained"))
        return {"kernel": variant.backend.kernel(params, variant.device) + kv_cache.describe(params.get("kv_cache")),
                **({"speed_caveat": caveat} if caveat else {})}

    def measure(self, batch: Batch, shared: dict[str, Any]) -> dict[str, Any]:
        return shared
