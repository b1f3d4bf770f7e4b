"""torchao weight-only int8 (CPU and CUDA) and int4 (CUDA) through transformers' TorchAoConfig.

int4 is packed for tinygemm (`int4_packing_format="tile_packed_to_4d"`), the int4 kernel in torch itself
(`aten._weight_int4pack_mm`, CUDA compute capability 8.0+), and saved to safetensors. torchao 0.18's default
packing ("plain") needs the `mslk` kernels, which come from PyTorch's own index only (PyPI's `mslk` is an
empty 0.0.0 placeholder), so a pip install from PyPI could not run it. int4 cannot run on CPU: tinygemm's
packing asks for a CUDA device, and the CPU route `PrototypeInt4WeightOnlyConfig` quantizes but its
Int4OpaqueTensor cannot be written to safetensors, the only format transformers 5 saves, so the artifact
could not be reused by the evaluate and benchmark jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import SAFE_LOAD, Backend, copy_tokenizer, torch_dtype
from .shapes import check_group_size

INT4_ON_CPU = ("torchao int4 needs CUDA: its tinygemm kernel runs on CUDA only, and the CPU packing "
               "(PrototypeInt4WeightOnlyConfig) cannot be saved to safetensors")


class TorchAO(Backend):
    name = "torchao"
    packages = ("torchao",)
    params_schema = {
        "bits": {"enum": [8, 4]},
        "group_size": {"enum": [32, 64, 128, 256], "default": 128,
                       "description": "4-bit only; must divide the layers' widths"},
    }
    required = ("bits",)
    notes = ("int8: per-channel weights, fp32 activations on CPU. int4: CUDA only, not yet run on a GPU ("
             + INT4_ON_CPU + ")")

    def device_problem(self, params: dict[str, Any], device: str) -> str | None:
        if params["bits"] == 4 and device == "cpu":
            return INT4_ON_CPU
        return super().device_problem(params, device)

    def _config(self, params: dict[str, Any]):
        import torchao.quantization as ao
        from transformers import TorchAoConfig

        if params["bits"] == 8:
            return TorchAoConfig(ao.Int8WeightOnlyConfig())
        return TorchAoConfig(ao.Int4WeightOnlyConfig(group_size=params["group_size"],
                                                      int4_packing_format="tile_packed_to_4d"))

    def _dtype(self, params: dict[str, Any]):
        # the int4 CUDA kernels take bf16 activations; int8 keeps the baseline's fp32
        return torch_dtype("float32" if params["bits"] == 8 else "bfloat16")

    def kernel(self, params: dict[str, Any], device: str) -> str:
        return ("torchao int8 weight-only (fp32 activations)" if params["bits"] == 8
                else f"torchao int4 weight-only (group {params['group_size']}), torch's tinygemm kernel")

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        from transformers import AutoModelForCausalLM

        if params["bits"] == 4:
            # torchao silently leaves a layer unquantized when its width is not a multiple of the group
            check_group_size(source, params["group_size"])
        model = AutoModelForCausalLM.from_pretrained(source, quantization_config=self._config(params),
                                                     device_map=device, dtype=self._dtype(params), **SAFE_LOAD)
        model.save_pretrained(out)
        copy_tokenizer(source, out)

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(artifact, device_map=device, dtype=self._dtype(params),
                                                    **SAFE_LOAD).eval()
