"""Unquantized baselines: the source weights cast to fp32, bf16 or fp16.

Their effective bits (Backend.effective_bits) are the dtype's, 32 or 16, with a quantized share of 0: a cast
rounds but quantizes nothing (no scales, no grid), and a share of 1 would put a bf16 baseline among the
quantized variants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import SAFE_LOAD, Backend, copy_tokenizer, torch_dtype

BITS = {"float32": 32, "bfloat16": 16, "float16": 16}


class Baseline(Backend):
    name = "baseline"
    params_schema = {"dtype": {"enum": list(BITS), "default": "float32"}}

    def bits(self, params: dict[str, Any]) -> int:
        return BITS[params["dtype"]]

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype(params["dtype"]), **SAFE_LOAD)
        model.save_pretrained(out)
        copy_tokenizer(source, out)

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(artifact, dtype=torch_dtype(params["dtype"]), **SAFE_LOAD)
        return model.to(device).eval()
