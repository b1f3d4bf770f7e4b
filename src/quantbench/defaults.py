"""The study's JSON schema, and its defaults filled into a config entry: one rule for studies, tasks and
methods."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("config.schema.json").read_text())


def setting(raw: dict[str, Any], name: str) -> Any:
    """A top-level setting of a (validated) config, or its schema default when not given."""
    return raw.get(name, schema()["properties"][name].get("default"))


def fill_defaults(properties: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` with the schema's defaults added, nested objects (e.g. `calibration`) included."""
    filled = {k: v["default"] for k, v in properties.items() if "default" in v}
    filled.update(given)
    for key, spec in properties.items():
        if "properties" in spec and isinstance(filled.get(key), dict):
            filled[key] = fill_defaults(spec["properties"], filled[key])
    return filled
