"""torchao weight-only int8 (CPU and CUDA) and int4 (CUDA) through transformers' TorchAoConfig.

int4 cannot run on CPU with torchao 0.18 + transformers 5.23: `Int4WeightOnlyConfig` needs the
`mslk` CUDA kernels ("Requires mslk >= 1.0.0"), and the CPU route `PrototypeInt4WeightOnlyConfig`
quantizes but its Int4OpaqueTensor cannot be written to safetensors, the only format transformers
5 saves, so the artifact could not be reused by the evaluate and benchmark jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import SAFE_LOAD, Backend, copy_tokenizer, torch_dtype
from .shapes import check_group_size

INT4_ON_CPU = ("torchao int4 needs CUDA: Int4WeightOnlyConfig requires the mslk CUDA kernels, and the CPU "
               "packing (PrototypeInt4WeightOnlyConfig) cannot be saved to safetensors")


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
        return TorchAoConfig(ao.Int4WeightOnlyConfig(group_size=params["group_size"]))

    def _dtype(self, params: dict[str, Any]):
        # the int4 CUDA kernels take bf16 activations; int8 keeps the baseline's fp32
        return torch_dtype("float32" if params["bits"] == 8 else "bfloat16")

    def kernel(self, params: dict[str, Any], device: str) -> str:
        return ("torchao int8 weight-only (fp32 activations)" if params["bits"] == 8
                else f"torchao int4 weight-only (group {params['group_size']})")

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
