"""Fetch a model into a plain HF folder; quantize it into an artifact."""

from __future__ import annotations

import json
import logging

from .. import artifacts, atomic, sources
from ..devices import resolve_device
from ..failures import guarded
from ..plan import FetchRun, QuantizeRun

log = logging.getLogger("quantbench")


def fetch_model(run: FetchRun) -> None:
    """The model as a plain HF folder with its manifest (where it came from, its files' checksums)."""
    with atomic.atomic_path(run.folder, directory=True) as tmp:
        manifest = sources.fetch(run.model.source, tmp, resolve_device(run.device))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("fetched %s into %s", run.model.source, run.folder)


def quantize(run: QuantizeRun) -> None:
    with guarded(f"quantize {run.id}", run.on_error, lambda message: record_unfinished(run, message)):
        device = resolve_device(run.device)
        with atomic.atomic_path(run.artifact, directory=True) as tmp:
            artifacts.quantize(run.model_folder, tmp, run_id=run.id, method=run.method, device=device,
                               country_iso_code=run.country)


def record_unfinished(run: QuantizeRun, message: str) -> None:
    """The artifact as a failed quantization, unless the job wrote it before it died."""
    if run.artifact.exists():
        return
    with atomic.atomic_path(run.artifact, directory=True) as tmp:
        artifacts.write_failure(tmp, run_id=run.id, backend=run.method.backend, error=message)
