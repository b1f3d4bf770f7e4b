"""A variant loaded for inference: its load measured once, closed and reopened around a baseline's load,
and the record fields every run of an evaluate or benchmark job shares."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import artifacts, memory, records
from ..devices import resolve_device
from ..environment import now
from ..methods import get_backend
from ..plan import RunId


class LoadedVariant:
    """The process's resident memory is read just before the load, with the backend's libraries already
    imported, so that what a run adds over it is the model's own memory, not the libraries' code."""

    def __init__(self, artifact: Path, device: str):
        self.artifact, self.device = artifact, resolve_device(device)
        self.started = now()
        get_backend(artifacts.read_info(artifact)["backend"]).import_libraries()
        self.rss_before_mb = memory.rss_mb()
        memory.reset_peak()
        t0 = time.perf_counter()
        self.runtime, self.info = artifacts.load(artifact, self.device)
        self.load_time_s = time.perf_counter() - t0
        self.memory = {"load_peak_rss_mb": memory.peak_rss_mb(),
                       "loaded_rss_mb": less(memory.rss_mb(), self.rss_before_mb)}
        self.closed = False

    @property
    def backend(self):
        return get_backend(self.info["backend"])

    def close(self) -> None:
        """Free the variant's memory (to load another model); reopen() loads it again."""
        self.runtime.close()
        self.closed = True

    def reopen(self) -> None:
        if self.closed:
            self.runtime, self.info = artifacts.load(self.artifact, self.device)
            self.closed = False

    def record(self, run_id: RunId, metrics: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return records.ok(run_id, device=self.device, packages=self.backend.packages,
                          metrics={"size_bytes": self.info["size_bytes"], "load_time_s": self.load_time_s,
                                   **self.memory, **metrics},
                          backend=self.info["backend"], bits=self.info["bits"],
                          weights=self.info.get("weights", "pretrained"),
                          configured_method=self.info.get("configured_method"),
                          quantize_rep=self.info.get("quantize_rep"),
                          **{"started": self.started, **fields})


def less(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base
