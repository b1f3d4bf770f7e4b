"""bitsandbytes LLM.int8 and 4-bit NF4/FP4 through transformers' BitsAndBytesConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import SAFE_LOAD, Backend, copy_tokenizer, torch_dtype


class BitsAndBytes(Backend):
    name = "bitsandbytes"
    packages = ("bitsandbytes",)
    imports = ("transformers", "bitsandbytes")
    # LLM.int8's layout flag and the 4-bit QuantState's JSON, stored as uint8 tensors
    metadata_tensors = ("weight_format", "quant_state.bitsandbytes__nf4", "quant_state.bitsandbytes__fp4")
    params_schema = {
        "bits": {"enum": [4, 8]},
        "quant_type": {"enum": ["nf4", "fp4"], "default": "nf4", "description": "4-bit only"},
        "double_quant": {"type": "boolean", "default": False, "description": "4-bit only"},
        "compute_dtype": {"enum": ["float32", "bfloat16", "float16"], "default": "float32"},
    }
    required = ("bits",)

    def _config(self, params: dict[str, Any]):
        from transformers import BitsAndBytesConfig

        if params["bits"] == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=params["quant_type"],
            bnb_4bit_use_double_quant=params["double_quant"],
            bnb_4bit_compute_dtype=torch_dtype(params["compute_dtype"]),
        )

    def kernel(self, params: dict[str, Any], device: str) -> str:
        kind = "LLM.int8" if params["bits"] == 8 else f"4-bit {params['quant_type']}"
        return f"bitsandbytes {kind} ({'CUDA' if device == 'cuda' else 'CPU'} backend)"

    def speed_caveat(self, params: dict[str, Any], weights: str) -> str | None:
        if params["bits"] == 8 and weights == "random":
            return ("random weights rarely give activations above LLM.int8's outlier threshold (6.0), so this "
                    "speed misses its slower mixed-precision matmul for outlier columns, which real models take")
        return None

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(
            source, quantization_config=self._config(params), device_map=device,
            dtype=torch_dtype(params["compute_dtype"]), **SAFE_LOAD,
        )
        model.save_pretrained(out)
        copy_tokenizer(source, out)

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        from transformers import AutoModelForCausalLM

        # The quantization config travels in the artifact's config.json.
        model = AutoModelForCausalLM.from_pretrained(
            artifact, device_map=device, dtype=torch_dtype(params["compute_dtype"]), **SAFE_LOAD
        )
        return model.eval()
