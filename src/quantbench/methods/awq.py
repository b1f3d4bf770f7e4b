"""AWQ 4-bit (activation-aware weight scaling) through GPTQModel.

llm-compressor, the other maintained AWQ, cannot be installed here: its newest release (0.14.0.1)
requires transformers<=5.17, and quantbench pins 5.23. autoawq is archived upstream; its name is
not accepted, because its code does not run here.

GPTQModel refuses AWQ on CPU by default only because it picks the CUDA GEMM kernel for packing;
asking for its portable torch kernel (AwqTorchLinear, bf16/fp16 only) makes the whole
search-scale-clip-pack pipeline run on CPU, slowly: a 20-point scale grid and a clip search per
layer (SmolLM2-135M: minutes per few layers on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import calibration
from ..errors import ConfigError, Unsupported
from .base import FLOAT_DTYPES, Backend, copy_tokenizer
from .gptq import import_gptqmodel, outside_the_project, with_a_tokenizer
from .shapes import check_group_size, conv1d_layers, linear_output_widths

# AWQ's clip search walks output channels in blocks of 64 (GPTQModel asserts it).
OUTPUT_BLOCK = 64


class AWQ(Backend):
    name = "awq"
    samples_calibration = True
    packages = ("gptqmodel",)
    params_schema = {
        "bits": {"enum": [4], "default": 4},
        "group_size": {"enum": [32, 64, 128], "default": 128,
                       "description": "must divide the layers' widths (SmolLM2: 32 or 64)"},
        "calibration": calibration.SCHEMA,
    }
    notes = ("CPU: packed with GPTQModel's portable AwqTorchLinear, run with TorchAtenAwqLinear (bf16); slow scale "
             "search; "
             "CUDA not yet run on a GPU; GPT-2 refused (its Conv1D layers break GPTQModel's scale search); "
             "llm-compressor not installable beside transformers 5.23")

    def import_libraries(self) -> None:
        super().import_libraries()
        import_gptqmodel()

    def kernel(self, params: dict[str, Any], device: str) -> str:
        return ("GPTQModel TorchAtenAwqLinear (ATen int4pack, bf16 activations)" if device == "cpu"
                else "GPTQModel AUTO")

    def loaded_itemsize(self, dtype: str, device: str) -> int:
        return 2 if dtype in FLOAT_DTYPES else super().loaded_itemsize(dtype, device)  # loads in bf16 (load_model)

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        import torch

        # Conv1D projections (weights stored in x out): GPTQModel 7.6's scale search multiplies input means by the
        # transposed weight's means and fails in a worker thread, which takes the job's process down before
        # on_error can record it (found by paper-methods' first run, GPT-2)
        if conv1d_layers(source):
            model_type = json.loads((Path(source) / "config.json").read_text()).get("model_type")
            raise Unsupported(f"GPTQModel's AWQ cannot quantize {model_type}: its Conv1D projections store weights "
                              "in x out, and the scale search fails on them (GPTQ and GGUF can)")
        check_group_size(source, params["group_size"])
        odd = sorted({w for w in linear_output_widths(source).values() if w % OUTPUT_BLOCK})
        if odd:
            raise ConfigError(f"AWQ needs every quantized layer's output width to be a multiple of {OUTPUT_BLOCK}; "
                             f"this model has {odd}")
        samples = calibration.windows(source, params["calibration"])
        gptqmodel = import_gptqmodel()
        from gptqmodel.quantization.config import AWQConfig

        config = AWQConfig(bits=params["bits"], group_size=params["group_size"])
        # AwqTorchLinear (the CPU packer) takes bf16/fp16 weights only
        kernel = gptqmodel.BACKEND.AWQ_TORCH if device == "cpu" else gptqmodel.BACKEND.AUTO
        source, out = Path(source).resolve(), Path(out).resolve()
        with outside_the_project(), with_a_tokenizer(source) as folder:
            model = gptqmodel.GPTQModel.load(str(folder), config, dtype=torch.bfloat16, device=device)
            model.quantize(samples, batch_size=1, backend=kernel)
            model.save(str(out))
        copy_tokenizer(source, out)

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        import torch

        gptqmodel = import_gptqmodel()
        # on CPU the ATen int4pack kernel, as for GPTQ (same logits as AwqTorchLinear on the tiny model)
        backend = gptqmodel.BACKEND.AWQ_TORCH_ATEN if device == "cpu" else gptqmodel.BACKEND.AUTO
        wrapper = gptqmodel.GPTQModel.load(str(artifact), backend=backend, device=device, dtype=torch.bfloat16)
        return wrapper.model.eval()
