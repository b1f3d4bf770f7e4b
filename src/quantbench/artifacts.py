"""Quantized artifacts: written once with a quantization.json record, verified before every use."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from . import records
from .checksums import folder_bytes, folder_checksums, verify
from .energy import EnergyMeter
from .environment import now
from .errors import ArtifactFailed, DeviceUnavailable, Unsupported
from .layout import QUANTIZATION_RECORD
from .methods import get_backend
from .plan import Method, RunId

log = logging.getLogger(__name__)


def quantize(source: Path, out: Path, *, run_id: RunId, method: Method, device: str, country_iso_code: str) -> dict:
    """Quantize the model folder `source` into the empty folder `out`; return the record written there.
    Whether the method can run is judged here too, in the job's own environment and on its device."""
    impl, params = get_backend(method.backend), method.params
    missing = impl.missing_packages()
    if missing:
        raise Unsupported(f"{method.name}: backend {method.backend!r} needs packages this job's environment lacks: "
                          f"{', '.join(missing)}")
    problem = impl.device_problem(params, device)
    if problem:
        raise DeviceUnavailable(f"{method.name}: {problem}")
    manifest = json.loads((source / "manifest.json").read_text())
    impl.install(params)
    meter = EnergyMeter(device, country_iso_code)
    started = now()
    t0 = time.perf_counter()
    with meter.measure() as box:
        impl.quantize(source, out, params, device)
    wall_time = time.perf_counter() - t0
    files, companions = folder_checksums(out), impl.companion_files(params)
    size = folder_bytes(out, exclude=companions)
    details = impl.artifact_details(out, params)
    bits = _effective_bits(impl, out, source, details)
    if companions:
        details["companion_bytes"] = {name: (out / name).stat().st_size for name in companions}
    record = records.ok(
        run_id, device=device, packages=impl.packages,
        metrics={"size_bytes": size, "quantize_time_s": wall_time, **bits}, energy=box.reading.as_dict(),
        details=details, backend=method.backend, bits=method.bits, configured_method=method.configured,
        quantize_rep=method.quantize_rep,
        weights=manifest.get("weights", "pretrained"), params=params,
        started=started, source=manifest["source"], input_checksums=manifest["files"], files=files,
        size_bytes=size,
    )
    records.write(out / QUANTIZATION_RECORD, record)
    log.info("quantized %s in %.1f s, %.1f MB", record["run_id"], wall_time, size / 1e6)
    return record


def _effective_bits(impl, artifact: Path, source: Path, details: dict) -> dict:
    """The artifact's effective bits per weight (Backend.effective_bits), its quantized weights' count and bytes
    into `details`. A layout it cannot account for leaves the columns empty and says why in `details`: a counting
    gap must not discard a finished quantization."""
    try:
        bits = impl.effective_bits(artifact, source)
    except ValueError as err:
        log.warning("effective bits not counted: %s", err)
        details["effective_bits_error"] = str(err)
        return {}
    details["quantized_weights"] = {"parameters": bits.pop("quantized_parameters"),
                                    "bytes": bits.pop("quantized_bytes")}
    return bits


def write_failure(out: Path, *, run_id: RunId, backend: str, error: str) -> None:
    """Mark `out` as a failed quantization (on_error: skip), so downstream jobs record why, not retry."""
    records.write(out / QUANTIZATION_RECORD, records.failed(run_id, error, backend=backend))


def read_info(artifact: Path) -> dict:
    return records.read(Path(artifact) / QUANTIZATION_RECORD)


def load(artifact: Path, device: str):
    """Verify the artifact's checksums, then load (runtime, record) for inference."""
    artifact = Path(artifact)
    info = read_info(artifact)
    if info["status"] == "failed":
        raise ArtifactFailed(f"no model: {info['error']}")
    verify(artifact, info["files"], f"delete {artifact} and rerun snakemake (rule quantize) to rebuild it")
    runtime = get_backend(info["backend"]).load(artifact, info["params"], device)
    if info.get("weights") == "random":
        runtime.tokenizer = None  # a random model has no tokenizer; a backend's stand-in never reads text
    return runtime, info
