"""AutoRound (Intel's auto-round, SignRound): weight rounding and clipping tuned block by block with signed
gradient descent on calibration windows, exported in GPTQ's format and loaded by GPTQModel, as the GPTQ
backend's artifacts are (so the same CPU and CUDA kernels run both).

AutoRound's `torch.compile` of each block is turned off on CPU: compiling took 110 of 122 s on the tiny
test model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import calibration
from .base import SAFE_LOAD, copy_tokenizer
from .gptq import GPTQ, outside_the_project, with_a_tokenizer
from .shapes import check_group_size


class AutoRound(GPTQ):
    """GPTQ's loading and kernels; its own quantization."""

    name = "autoround"
    packages = ("auto-round", "gptqmodel")
    params_schema = {
        "bits": {"enum": [4, 8], "default": 4},
        "group_size": {"enum": [32, 64, 128], "default": 128,
                       "description": "must divide the layers' widths (SmolLM2: 32 or 64)"},
        "iters": {"type": "integer", "minimum": 0, "default": 200,
                  "description": "signed-gradient steps per block (auto-round's default 200; 0: round to nearest)"},
        "calibration": calibration.SCHEMA,
    }
    required = ()
    notes = ("auto-round 0.16.1, exported as GPTQ (symmetric) and run by GPTQModel's kernels, as GPTQ is; CUDA not "
             "yet run on a GPU")

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        import torch
        from auto_round import AutoRound as Tuner
        from transformers import AutoModelForCausalLM, AutoTokenizer

        check_group_size(source, params["group_size"])
        spec = params["calibration"]
        windows = [torch.tensor([w["input_ids"]]) for w in calibration.windows(source, spec)]
        source, out = Path(source).resolve(), Path(out).resolve()
        with outside_the_project(), with_a_tokenizer(source) as folder:
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch.float32 if device == "cpu" else torch.bfloat16, **SAFE_LOAD)
            tuner = Tuner(model, AutoTokenizer.from_pretrained(folder), bits=params["bits"],
                          group_size=params["group_size"], sym=True, iters=params["iters"], dataset=windows,
                          nsamples=len(windows), seqlen=spec["sequence_length"], seed=spec["seed"],
                          device_map=device, enable_torch_compile=device != "cpu")
            tuner.quantize()
            tuner.save_quantized(str(out), format="auto_gptq", inplace=True)
        copy_tokenizer(source, out)
