"""A JSON schema's defaults filled into a config entry: one rule for studies, tasks and methods."""

from __future__ import annotations

from typing import Any


def fill_defaults(properties: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` with the schema's defaults added, nested objects (e.g. `calibration`) included."""
    filled = {k: v["default"] for k, v in properties.items() if "default" in v}
    filled.update(given)
    for key, spec in properties.items():
        if "properties" in spec and isinstance(filled.get(key), dict):
            filled[key] = fill_defaults(spec["properties"], filled[key])
    return filled
