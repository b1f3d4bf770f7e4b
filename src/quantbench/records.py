"""Every record a job writes, built in one place: one shape per kind, the environment collected once.

A record is one JSON object: its run id and kind, the identifiers (model, method, task, batch_size,
rep), `status` (ok | failed | skipped), and for ok runs `metrics` (values the run table has a column
for, see runtable.py), `energy` (the meter's reading), `details` (what only the record keeps) and
`environment` (machine, device, library versions, git revision). `aggregate` turns each into one row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .environment import describe, now
from .plan import ID_FIELDS, RunId

# Fields of an energy reading that are run-table columns; the rest (components, duration) stay in the record.
ENERGY_COLUMNS = ("energy_j", "energy_method", "energy_note", "idle_power_w", "net_energy_j", "co2_kg", "co2_method")
# Identifying fields of an ok record besides ID_FIELDS, copied into its row
ROW_FIELDS = ("backend", "bits", "weights", "configured_method", "quantize_rep", "task_type", "started", "ended")


def _head(run_id: RunId, status: str) -> dict[str, Any]:
    return {"run_id": run_id.path, "kind": run_id.kind, "status": status, **run_id.fields()}


def ok(run_id: RunId, *, device: str, packages: tuple[str, ...] = (), metrics: dict[str, Any],
       energy: dict[str, Any] | None = None, details: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A finished run. `fields` are the kind's own top-level entries (backend, bits, started, params...)."""
    return {**_head(run_id, "ok"), **fields, "ended": now(), "metrics": metrics, "energy": energy,
            "details": details or {}, "environment": describe(device, packages)}


def failed(run_id: RunId, error: str, **fields: Any) -> dict[str, Any]:
    """A run whose job raised, or whose process died, under on_error: skip; `error` says why."""
    return {**_head(run_id, "failed"), **fields, "error": error, "ended": now()}


def skipped(run_id: RunId, backend: str, reason: str) -> dict[str, Any]:
    """A method that cannot run here (on_unsupported: skip): a quantize row that says why."""
    return {**_head(run_id, "skipped"), "backend": backend, "reason": reason}


def write(folder_or_file: Path, record: dict[str, Any]) -> None:
    """Write a record inside a folder being built (atomically renamed by the caller)."""
    Path(folder_or_file).write_text(json.dumps(record, indent=2, default=str))


def read(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def row(record: dict[str, Any]) -> dict[str, Any]:
    """The run-table row of a record: identifiers, then metrics, energy and environment columns."""
    out = {k: record[k] for k in ("run_id", "kind", "status", *ID_FIELDS, *ROW_FIELDS, "error", "reason")
           if record.get(k) is not None}
    if record["status"] != "ok":
        return out
    out.update(record["metrics"])
    energy = record.get("energy") or {}
    out.update({k: energy.get(k) for k in ENERGY_COLUMNS if k in energy})
    out.update(energy.get("gpu") or {})
    env = record["environment"]
    libraries = env.get("libraries", {})
    out.update(device=env["device"], host=env.get("host"), cpu=env.get("cpu"), gpu=env.get("gpu"),
               torch_version=libraries.get("torch"), transformers_version=libraries.get("transformers"),
               git_revision=env.get("git_revision"))
    return out
