"""optimum-quanto weight-only int8/int4/int2, saved and reloaded with quanto's own API.

transformers' QuantoConfig path cannot be serialised, so artifacts use
`QuantizedModelForCausalLM` (safetensors + quanto_qmap.json). lm_head stays unquantized by
default, as transformers does, which keeps it tied to the input embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import SAFE_LOAD, Backend, copy_tokenizer
from .shapes import require_linears

QTYPES = {8: "qint8", 4: "qint4", 2: "qint2"}
ALIGNMENT = 64  # bytes: torch's CPU allocator's; safetensors places tensors at 8-byte offsets


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
    notes = ("nn.Linear layers only: a model whose projections are Conv1D (GPT-2) is refused as unsupported; "
             "reloaded weights are copied to aligned memory, which torch's CPU int8 kernel needs",)

    def kernel(self, params: dict[str, Any], device: str) -> str:
        return f"optimum-quanto {QTYPES[params['bits']]} weights, its {'CUDA' if device == 'cuda' else 'CPU'} matmul"

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        require_linears(source, "optimum-quanto", tuple(params["exclude"]))
        import optimum.quanto as oq
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(source, **SAFE_LOAD).to(device)
        qmodel = oq.QuantizedModelForCausalLM.quantize(
            model, weights=getattr(oq, QTYPES[params["bits"]]), exclude=params["exclude"] or None
        )
        qmodel.save_pretrained(out)
        copy_tokenizer(source, out)

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        from optimum.quanto import QTensor, QuantizedModelForCausalLM

        # Unwrap: downstream code (lm-eval, generate) wants the transformers model itself.
        model = QuantizedModelForCausalLM.from_pretrained(str(artifact))._wrapped.to(device).eval()
        for module in model.modules():
            if isinstance(getattr(module, "weight", None), QTensor):
                realign(module.weight)
        return model


def realign(tensor) -> None:
    """Copy the parts of a quanto tensor that sit at unaligned addresses into fresh (aligned) memory.

    Reloaded weights point into the safetensors file at 8-byte offsets, and torch's int8 kernel that quanto
    calls with bf16 activations on the CPU (`torch._weight_int8pack_mm`) reads its weight with aligned vector
    loads: a weight at 8 or 24 bytes past a 32-byte boundary segfaulted (torch 2.13, a Sapphire Rapids CPU).
    """
    names, _ = tensor.__tensor_flatten__()
    for name in names:
        part = getattr(tensor, name)
        if hasattr(part, "__tensor_flatten__"):  # a quanto tensor within (int4's packed data)
            realign(part)
        elif part.data_ptr() % ALIGNMENT:
            setattr(tensor, name, part.clone())
