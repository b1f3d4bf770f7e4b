"""Records -> tidy run table (one row per run) and per-item table (for paired tests).

The JSON records under results/ are the source of truth: the table is rebuilt from all of them,
so rerunning a subset replaces those rows by run id and never drops the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from . import atomic

IDS = ["run_id", "kind", "status", "model", "method", "backend", "bits", "task", "batch_size", "rep"]
ENERGY = ["energy_j", "energy_method", "idle_power_w", "net_energy_j", "co2_kg", "co2_method"]


def _energy(block: dict[str, Any] | None) -> dict[str, Any]:
    block = block or {}
    return {**{k: block.get(k) for k in ENERGY}, **(block.get("gpu") or {})}


def _environment(env: dict[str, Any]) -> dict[str, Any]:
    """The environment columns: where and with what a run was measured."""
    libraries = env.get("libraries", {})
    return {"device": env["device"], "host": env.get("host"), "cpu": env.get("cpu"), "gpu": env.get("gpu"),
            "torch_version": libraries.get("torch"), "transformers_version": libraries.get("transformers"),
            "git_revision": env.get("git_revision")}


def _failed_row(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k in IDS or k in ("error", "ended")}


def quantize_row(info: dict[str, Any]) -> dict[str, Any]:
    if info.get("status") == "failed":
        return {"run_id": f"{info['model']}/{info['method']}/quantize", "kind": "quantize", **_failed_row(info)}
    return {
        "run_id": f"{info['model']}/{info['method']}/quantize", "kind": "quantize", "status": "ok",
        "model": info["model"], "method": info["method"], "backend": info["backend"], "bits": info["bits"],
        "size_bytes": info["size_bytes"], "quantize_time_s": info["wall_time_s"],
        **_energy(info["energy"]), "started": info["started"], "ended": info["ended"],
        **_environment(info["environment"]),
    }


def record_row(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("status") == "failed":
        return _failed_row(record)
    metrics = dict(record["metrics"])
    energy = metrics.pop("energy", None)
    metrics.pop("lm_eval_metrics", None)
    row = {k: record.get(k) for k in IDS if k in record}
    row.update(status="ok", size_bytes=record["size_bytes"], load_time_s=record["load_time_s"],
               started=record["started"], ended=record.get("ended"), **_environment(record["environment"]))
    row.update(metrics)
    if energy is not None:
        row.update(_energy(energy))
    return row


def skipped_rows(skipped: dict[str, str], models: Iterable[str], backends: dict[str, str]) -> list[dict]:
    return [{"run_id": f"{model}/{method}/quantize", "kind": "quantize", "status": "skipped", "model": model,
             "method": method, "backend": backends[method], "reason": why}
            for model in models for method, why in skipped.items()]


def _records(results: Path, pattern: str) -> list[Path]:
    """Finished records only: a killed writer's temporary (.name.tmp-*) is never read."""
    return sorted(p for p in results.glob(pattern) if not any(part.startswith(".") for part in p.parts))


def collect(results: Path) -> tuple[list[dict], list[dict]]:
    rows, items = [], []
    for path in _records(results, "quantized/*/*/quantization.json"):
        rows.append(quantize_row(json.loads(path.read_text())))
    for path in [*_records(results, "eval/**/*.json"), *_records(results, "bench/**/*.json")]:
        rows.append(record_row(json.loads(path.read_text())))
    for path in _records(results, "eval/**/*.items.jsonl"):
        logged = (json.loads(line) for line in path.read_text().splitlines() if line)
        items.extend(item for item in logged if "correct" in item)  # scored choices; generated text stays in the log
    return rows, items


def build(results: Path, skipped: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, items = collect(results)
    runs = pd.DataFrame(rows + skipped, columns=None if rows or skipped else IDS)
    runs = runs.drop_duplicates("run_id", keep="first")  # a real run beats an older "skipped" row
    first = [c for c in IDS if c in runs.columns]
    runs = runs[first + [c for c in runs.columns if c not in first]].sort_values("run_id", kind="stable")
    items_df = pd.DataFrame(items, columns=["run_id", "doc_id", "target", "predicted", "correct"])
    if not items_df.empty:
        ids = runs.set_index("run_id")[["model", "method", "task", "rep"]]
        items_df = items_df.join(ids, on="run_id")
    return runs.reset_index(drop=True), items_df


def write(runs: pd.DataFrame, items: pd.DataFrame, runs_csv: Path, runs_parquet: Path, items_csv: Path) -> None:
    atomic.write_text(runs_csv, runs.to_csv(index=False))
    with atomic.atomic_path(runs_parquet) as tmp:
        runs.to_parquet(tmp, index=False)
    atomic.write_text(items_csv, items.to_csv(index=False))
