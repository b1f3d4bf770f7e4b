"""torchao through transformers' TorchAoConfig: 8-bit weights as int8 or float8 (e4m3), optionally with
activations quantized per token at run time to the same type (W8A8), and weight-only int4 (CUDA).

W8A8 int8 (Int8DynamicActivationInt8WeightConfig) and float8 weight-only (Float8WeightOnlyConfig) run,
save and reload on CPU. Float8 activations (Float8DynamicActivationFloat8WeightConfig) need CUDA compute
capability 8.9+ (torchao asserts it when quantizing).

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
FLOAT8_ACTIVATIONS_ON_CPU = ("torchao float8 activations need CUDA compute capability 8.9+ (Ada, Hopper) "
                             "or MI300")


class TorchAO(Backend):
    name = "torchao"
    packages = ("torchao",)
    imports = ("transformers", "torchao")
    params_schema = {
        "bits": {"enum": [8, 4]},
        "group_size": {"enum": [32, 64, 128, 256], "default": 128,
                       "description": "4-bit only; must divide the layers' widths"},
        "float8": {"type": "boolean", "default": False,
                   "description": "8-bit only: weights as float8 e4m3 instead of int8"},
        "dynamic_activations": {"type": "boolean", "default": False,
                                "description": "8-bit only: activations quantized per token at run time to the "
                                               "weights' type (W8A8); float8 activations need CUDA 8.9+"},
    }
    required = ("bits",)
    notes = ("int8: per-channel weights, fp32 activations on CPU, or int8 activations too (W8A8). float8 "
             "weights: CPU and CUDA; float8 activations: CUDA 8.9+ only, not yet run on a GPU. int4: CUDA only, "
             "not yet run on a GPU (" + INT4_ON_CPU + ")")

    def param_problem(self, params: dict[str, Any]) -> str | None:
        if params["bits"] == 4 and (params["float8"] or params["dynamic_activations"]):
            return "float8 and dynamic_activations are 8-bit options (torchao's int4 is weight-only)"
        return None

    def device_problem(self, params: dict[str, Any], device: str) -> str | None:
        if params["bits"] == 4 and device == "cpu":
            return INT4_ON_CPU
        if params["float8"] and params["dynamic_activations"] and device == "cpu":
            return FLOAT8_ACTIVATIONS_ON_CPU
        return super().device_problem(params, device)

    def _config(self, params: dict[str, Any]):
        import torchao.quantization as ao
        from transformers import TorchAoConfig

        if params["bits"] == 4:
            return TorchAoConfig(ao.Int4WeightOnlyConfig(group_size=params["group_size"],
                                                          int4_packing_format="tile_packed_to_4d"))
        configs = {(False, False): ao.Int8WeightOnlyConfig, (False, True): ao.Int8DynamicActivationInt8WeightConfig,
                   (True, False): ao.Float8WeightOnlyConfig,
                   (True, True): ao.Float8DynamicActivationFloat8WeightConfig}
        return TorchAoConfig(configs[params["float8"], params["dynamic_activations"]]())

    def _dtype(self, params: dict[str, Any]):
        # the int4 and float8-activation CUDA kernels take bf16 activations; the others keep the baseline's fp32
        cuda_kernels = params["bits"] == 4 or (params["float8"] and params["dynamic_activations"])
        return torch_dtype("bfloat16" if cuda_kernels else "float32")

    def kernel(self, params: dict[str, Any], device: str) -> str:
        if params["bits"] == 4:
            return f"torchao int4 weight-only (group {params['group_size']}), torch's tinygemm kernel"
        weights = "float8 e4m3" if params["float8"] else "int8"
        if params["dynamic_activations"]:
            return f"torchao {weights} weights and per-token dynamic {weights} activations (W8A8)"
        return f"torchao {weights} weight-only (fp32 activations)"

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
