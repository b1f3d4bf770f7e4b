"""optimum-quanto weight-only int8/int4/int2, saved and reloaded with quanto's own API.

transformers' QuantoConfig path cannot be serialised, so artifacts use
`QuantizedModelForCausalLM` (safetensors + quanto_qmap.json). lm_head stays unquantized by
default, as transformers does, which keeps it tied to the input embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import SAFE_LOAD, Backend, copy_tokenizer

QTYPES = {8: "qint8", 4: "qint4", 2: "qint2"}


class Quanto(Backend):
    name = "quanto"
    packages = ("optimum-quanto",)
    imports = ("transformers", "optimum.quanto")
    params_schema = {
        "bits": {"enum": list(QTYPES)},
        "exclude": {"type": "array", "items": {"type": "string"}, "default": ["lm_head"],
                    "description": "module name patterns left unquantized"},
    }
    required = ("bits",)

    def kernel(self, params: dict[str, Any], device: str) -> str:
        return f"optimum-quanto {QTYPES[params['bits']]} weights, its {'CUDA' if device == 'cuda' else 'CPU'} matmul"

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        import optimum.quanto as oq
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(source, **SAFE_LOAD).to(device)
        qmodel = oq.QuantizedModelForCausalLM.quantize(
            model, weights=getattr(oq, QTYPES[params["bits"]]), exclude=params["exclude"] or None
        )
        qmodel.save_pretrained(out)
        copy_tokenizer(source, out)

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        from optimum.quanto import QuantizedModelForCausalLM

        # Unwrap: downstream code (lm-eval, generate) wants the transformers model itself.
        return QuantizedModelForCausalLM.from_pretrained(str(artifact))._wrapped.to(device).eval()
