"""Calibration samples for GPTQ-style methods: seeded random token windows from a text.

The offline default (`qb_calibration`) is prose written for quantbench, deliberately different from
the evaluation text (`qb_perplexity`), so calibration never sees what perplexity is measured on.
Online runs can name a hub dataset instead, loaded through `datasets` at a pinned revision.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from .errors import DataError
from .tasks.data import data_file

BUILTIN = {"qb_calibration": "calibration.txt"}

# JSON schema of a method's `calibration` key (shared by every backend that calibrates).
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "default": {},
    "description": "calibration windows: `text` (qb_calibration or path:/file.txt) or a hub `dataset`",
    "properties": {
        "text": {"type": "string", "pattern": "^(qb_calibration|path:.+)$", "default": "qb_calibration"},
        "dataset": {
            "type": "object", "additionalProperties": False,
            "required": ["path", "split", "revision"],
            "description": "hub dataset for online runs, e.g. Salesforce/wikitext + wikitext-2-raw-v1; replaces `text`",
            "properties": {
                "path": {"type": "string"},
                "name": {"type": "string"},
                "split": {"type": "string"},
                "revision": {"type": "string", "pattern": "^[0-9a-f]{40}$",
                             "description": "the dataset commit, so calibration is reproducible"},
                "data_files": {"type": "string", "description": "e.g. one C4 shard: en/c4-train.00000-of-01024.json.gz"},
                "column": {"type": "string", "default": "text"},
            },
        },
        "samples": {"type": "integer", "minimum": 1, "default": 32},
        "sequence_length": {"type": "integer", "minimum": 8, "default": 256},
        "seed": {"type": "integer", "default": 42},
    },
}


def load_text(spec: dict[str, Any]) -> str:
    """The raw calibration text named by `spec` (a filled-in `calibration` entry)."""
    if "dataset" in spec:
        return _dataset_text(spec["dataset"])
    name = spec["text"]
    path = Path(name.removeprefix("path:")) if name.startswith("path:") else data_file(BUILTIN[name])
    return path.read_text()


def _dataset_text(ds: dict[str, Any]) -> str:
    import datasets

    rows = datasets.load_dataset(ds["path"], ds.get("name"), split=ds["split"], revision=ds["revision"],
                                 data_files=ds.get("data_files"))
    return "\n\n".join(t for t in rows[ds.get("column", "text")] if t.strip())


def windows(model_folder: Path, spec: dict[str, Any]) -> list[dict[str, list[int]]]:
    """`samples` windows of `sequence_length` tokens at seeded random offsets (GPTQ's C4 recipe). A random:
    model has no tokenizer, so its windows are seeded random token ids: calibrating random weights on text
    would mean nothing anyway, and the cost of the method is what such a study measures."""
    from transformers import AutoConfig, AutoTokenizer

    length, count = spec["sequence_length"], spec["samples"]
    if not (Path(model_folder) / "tokenizer_config.json").is_file():
        vocab = AutoConfig.from_pretrained(model_folder).vocab_size
        generator = random.Random(spec["seed"])
        return [{"input_ids": [generator.randrange(vocab) for _ in range(length)], "attention_mask": [1] * length}
                for _ in range(count)]
    ids = AutoTokenizer.from_pretrained(model_folder)(load_text(spec), add_special_tokens=False)["input_ids"]
    if len(ids) <= length:
        raise DataError(f"calibration text has {len(ids)} tokens, fewer than sequence_length {length}; "
                         "lower calibration.sequence_length or give a longer text")
    rng = random.Random(spec["seed"])
    starts = [rng.randrange(len(ids) - length) for _ in range(count)]
    return [{"input_ids": ids[s:s + length], "attention_mask": [1] * length} for s in starts]
