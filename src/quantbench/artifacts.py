"""Quantized artifacts: written once with a quantization.json, verified before every use."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from .checksums import CorruptArtifact, folder_bytes, folder_checksums, verify  # noqa: F401 (re-export)
from .devices import DeviceUnavailable
from .energy import EnergyMeter
from .environment import describe, now
from .failures import ArtifactFailed
from .methods import get_backend

INFO = "quantization.json"
log = logging.getLogger(__name__)


def quantize(source: Path, out: Path, *, model: str, method: str, backend: str, params: dict[str, Any],
             device: str, country_iso_code: str) -> dict:
    """Quantize the model folder `source` into the empty folder `out`; return the info written there."""
    impl = get_backend(backend)
    problem = impl.device_problem(params, device)
    if problem:
        raise DeviceUnavailable(f"{method}: {problem}")
    manifest = json.loads((source / "manifest.json").read_text())
    meter = EnergyMeter(device, country_iso_code)
    started = now()
    t0 = time.perf_counter()
    with meter.measure() as box:
        impl.quantize(source, out, params, device)
    info = {
        "status": "ok",
        "model": model,
        "method": method,
        "backend": backend,
        "bits": impl.bits(params),
        "params": params,
        "details": impl.artifact_details(out, params),
        "device": device,
        "versions": impl.versions(),
        "wall_time_s": time.perf_counter() - t0,
        "energy": box.reading.as_dict(),
        "started": started,
        "ended": now(),
        "input_checksums": manifest["files"],
        "source": manifest["source"],
        "environment": describe(device),
    }
    info["files"] = folder_checksums(out)
    info["size_bytes"] = folder_bytes(out)
    (out / INFO).write_text(json.dumps(info, indent=2, default=str))
    log.info("quantized %s/%s in %.1f s, %.1f MB", model, method, info["wall_time_s"], info["size_bytes"] / 1e6)
    return info


def write_failure(out: Path, *, model: str, method: str, backend: str, error: str) -> None:
    """Mark `out` as a failed quantization (on_error: skip), so downstream jobs record why, not retry."""
    info = {"status": "failed", "model": model, "method": method, "backend": backend, "error": error,
            "ended": now()}
    (out / INFO).write_text(json.dumps(info, indent=2))


def read_info(artifact: Path) -> dict:
    return json.loads((Path(artifact) / INFO).read_text())


def load(artifact: Path, device: str):
    """Verify the artifact's checksums, then load (model, tokenizer, info) for inference."""
    from transformers import AutoTokenizer

    artifact = Path(artifact)
    info = read_info(artifact)
    if info.get("status") == "failed":
        raise ArtifactFailed(f"no model: {info['error']}")
    verify(artifact, info["files"], f"delete {artifact} and rerun snakemake (rule quantize) to rebuild it")
    model = get_backend(info["backend"]).load(artifact, info["params"], device)
    tokenizer = AutoTokenizer.from_pretrained(artifact)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, info
