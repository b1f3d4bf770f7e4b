"""HQQ (half-quadratic quantization): calibration-free 4/8-bit weights, saved with hqq's own API.

transformers 5.23's `HqqConfig` cannot quantize on load ("HQQ is not available yet"), so the
artifact is hqq's format: config.json plus qmodel.pt, a plain tensor dict that reloads with
`torch.load(weights_only=True)`. lm_head stays unquantized and tied to the embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import SAFE_LOAD, Backend, Stored, copy_tokenizer, torch_dtype, torch_listing
from .shapes import check_group_size


class HQQ(Backend):
    name = "hqq"
    packages = ("hqq",)
    imports = ("transformers", "hqq.models.hf.base")
    params_schema = {
        "bits": {"enum": [4, 8]},
        "group_size": {"enum": [32, 64, 128, 256], "default": 64,
                       "description": "weights sharing one scale and zero; must divide the layers' widths"},
        "compute_dtype": {"enum": ["float32", "bfloat16"], "default": "float32"},
    }
    required = ("bits",)
    notes = ("hqq's own format (qmodel.pt); dequantizes per layer on the fly with its PyTorch backend on CPU; "
             "CUDA not yet run on a GPU")

    def kernel(self, params: dict[str, Any], device: str) -> str:
        return "hqq PyTorch backend: each layer dequantized on every call"

    def stored_tensors(self, artifact: Path) -> dict[str, Stored]:
        """qmodel.pt's tensors, named module.key (its other entries are settings: nbits, group_size, shape...)."""
        import torch

        layers = torch.load(Path(artifact) / "qmodel.pt", weights_only=True)
        return torch_listing({f"{module}.{key}": value for module, state in layers.items()
                              for key, value in state.items() if isinstance(value, torch.Tensor)})

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        from hqq.core.quantize import BaseQuantizeConfig
        from hqq.models.hf.base import AutoHQQHFModel
        from transformers import AutoModelForCausalLM

        check_group_size(source, params["group_size"])
        dtype = torch_dtype(params["compute_dtype"])
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **SAFE_LOAD)
        config = BaseQuantizeConfig(nbits=params["bits"], group_size=params["group_size"])
        AutoHQQHFModel.quantize_model(model, quant_config=config, compute_dtype=dtype, device=device)
        AutoHQQHFModel.save_quantized(model, str(out))
        copy_tokenizer(source, out)

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        from hqq.models.hf.base import AutoHQQHFModel

        model = AutoHQQHFModel.from_quantized(str(artifact), device=device,
                                              compute_dtype=torch_dtype(params["compute_dtype"]))
        return model.eval()
