"""GPTQ 4/8-bit through GPTQModel, the maintained successor of auto-gptq.

auto-gptq is not offered as an alias: it is unmaintained (last release 0.7.1, March 2024) and this
backend does not run its code, so calling a GPTQModel artifact `auto-gptq` would misreport the study.

Inference kernels are chosen here, not left to chance: on CPU, 4-bit runs GPTQModel's
TorchAtenLinear (ATen int4pack matmul, bf16 activations; ~10x faster than its generic TorchLinear
on SmolLM2) and 8-bit its TorchInt8Linear; on CUDA GPTQModel's AUTO picks Marlin/ExLlama/Triton.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from .. import calibration
from .base import FLOAT_DTYPES, Backend, copy_tokenizer, has_tokenizer
from .shapes import check_group_size

CPU_KERNELS = {4: "gptq_torch_aten", 8: "gptq_torch_int8"}


def import_gptqmodel():
    # GPTQModel sizes its CPU thread pool as cores/2 and then asks for 2 loader workers: on a 2-core
    # machine that is a ValueError at import. Give it at least 2 workers (an explicit env var wins).
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(max(2, ((os.cpu_count() or 1) + 1) // 2)))
    # Its C++ weight packer is JIT-compiled on first use (~35 s here) and packed SmolLM2 no faster
    # than the pure-torch path (31 s vs 33 s for all layers), so skip the compiler.
    os.environ.setdefault("GPTQMODEL_DISABLE_PACK_EXT", "1")
    import gptqmodel

    _rope_per_layer_type_for_gemma3()
    return gptqmodel


def _rope_per_layer_type_for_gemma3() -> None:
    """Gemma 3's sliding-window and full-attention layers rotate by different bases (10k and 1M) and its rotary
    module takes the layer type. GPTQModel 7.6 replays every layer with the first (sliding) layer's rotary
    embeddings, so GPTQ calibrated the full-attention layers on wrong activations, and AWQ's scale search
    recomputes them without the layer type (TypeError). Give Gemma 3 the per-layer refresh GPTQModel has for
    Gemma 4, and AWQ's search each layer's own embeddings."""
    import torch
    from gptqmodel.models.definitions.gemma3 import Gemma3QModel
    from gptqmodel.models.definitions.gemma4 import _prepare_gemma4_replay_kwargs

    if getattr(Gemma3QModel, "quantbench_rope_per_layer", False):
        return
    scaling = Gemma3QModel.awq_get_modules_for_scaling

    def awq_get_modules_for_scaling(self, module, input_feat, module_kwargs):
        def own(kwargs: dict) -> dict:  # the first layer's embeddings, remade for this layer's type
            cos = (kwargs.get("position_embeddings") or (None,))[0]
            if cos is None:
                return kwargs
            positions = torch.arange(cos.shape[-2], device=cos.device).expand(cos.shape[0], -1)  # windows start at 0
            rotary = self.model.model.rotary_emb(cos, positions, module.self_attn.layer_type)
            return {**kwargs, "position_embeddings": rotary}

        module_kwargs = dict(own(module_kwargs))
        features = module_kwargs.get("_awq_feature_kwargs")  # per scaled group, also holding the first layer's
        if isinstance(features, dict):
            module_kwargs["_awq_feature_kwargs"] = {name: own(kw) if isinstance(kw, dict) else kw
                                                    for name, kw in features.items()}
        return scaling(self, module, input_feat, module_kwargs)

    Gemma3QModel.rotary_embedding = "model.rotary_emb"
    Gemma3QModel.awq_preserve_explicit_position_embeddings = True
    Gemma3QModel.prepare_layer_replay_kwargs = _prepare_gemma4_replay_kwargs
    Gemma3QModel.awq_get_modules_for_scaling = awq_get_modules_for_scaling
    Gemma3QModel.quantbench_rope_per_layer = True


@contextlib.contextmanager
def outside_the_project():
    """Run GPTQModel's quantizer in a scratch working directory: it writes per-layer logs into ./logs
    of whatever directory it runs in (the repository, under Snakemake). The same numbers are kept in the
    artifact's quant_log.csv."""
    with tempfile.TemporaryDirectory(prefix="gptqmodel-") as scratch, contextlib.chdir(scratch):
        yield


@contextlib.contextmanager
def with_a_tokenizer(source: Path):
    """The model folder GPTQModel is given: GPTQModel loads a tokenizer with every model, and a random: model
    has none, so it gets a stand-in (one token per id), in a scratch copy made of links. The stand-in is never
    used to read text: calibration windows of a random model are token ids, and quantbench's loader drops the
    tokenizer of a random model's artifact."""
    if has_tokenizer(source):
        yield source
        return
    from tokenizers import Tokenizer, models
    from transformers import AutoConfig, PreTrainedTokenizerFast

    config = AutoConfig.from_pretrained(source)
    eos = config.eos_token_id[0] if isinstance(config.eos_token_id, list) else config.eos_token_id
    vocab = {f"<{i}>": i for i in range(config.vocab_size)}
    with tempfile.TemporaryDirectory(prefix="quantbench-random-") as scratch:
        for path in Path(source).iterdir():
            (Path(scratch) / path.name).symlink_to(path.resolve())
        PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<0>")),
                                eos_token=f"<{eos}>").save_pretrained(scratch)
        yield Path(scratch)


class GPTQ(Backend):
    name = "gptq"
    samples_calibration = True
    packages = ("gptqmodel",)
    params_schema = {
        "bits": {"enum": [4, 8]},
        "group_size": {"enum": [-1, 32, 64, 128, 256], "default": 128,
                       "description": "columns sharing one scale; -1 = per channel; must divide the layers' widths"},
        "desc_act": {"type": "boolean", "default": False,
                     "description": "act-order: quantize columns by decreasing activation size; false uses "
                                    "GPTQModel's group-aware reordering instead"},
        "calibration": calibration.SCHEMA,
    }
    required = ("bits",)
    notes = ("CPU kernels: 4-bit TorchAtenLinear, 8-bit TorchInt8Linear (bf16 activations); "
             "CUDA: GPTQModel AUTO (not yet run on a GPU). No `auto-gptq` alias: that package is unmaintained "
             "and not what runs")

    def loaded_itemsize(self, dtype: str, device: str) -> int:
        # on the CPU every float tensor loads as bf16 (load_model): an fp32 embedding is read at half its size
        return 2 if device == "cpu" and dtype in FLOAT_DTYPES else super().loaded_itemsize(dtype, device)

    def import_libraries(self) -> None:
        super().import_libraries()
        import_gptqmodel()

    def kernel(self, params: dict[str, Any], device: str) -> str:
        return (f"GPTQModel {CPU_KERNELS[params['bits']]} (bf16 activations)" if device == "cpu"
                else "GPTQModel AUTO (Marlin/ExLlama/Triton)")

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        import torch

        check_group_size(source, params["group_size"])
        samples = calibration.windows(source, params["calibration"])
        gptqmodel = import_gptqmodel()
        config = gptqmodel.QuantizeConfig(
            bits=params["bits"], group_size=params["group_size"], desc_act=params["desc_act"],
            act_group_aware=not params["desc_act"],
        )
        # fp32 on CPU keeps the Hessian as exact as the baseline; on a GPU bf16 halves the memory.
        dtype = torch.float32 if device == "cpu" else torch.bfloat16
        source, out = Path(source).resolve(), Path(out).resolve()
        with outside_the_project(), with_a_tokenizer(source) as folder:
            model = gptqmodel.GPTQModel.load(str(folder), config, dtype=dtype, device=device)
            model.quantize(samples, batch_size=1)
            model.save(str(out))
        copy_tokenizer(source, out)  # GPTQModel's saved tokenizer has its own pad-token edits

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        import torch

        gptqmodel = import_gptqmodel()
        if device == "cpu":
            # the CPU int4pack/int8 kernels take bf16 activations only
            backend, dtype = gptqmodel.BACKEND(CPU_KERNELS[params["bits"]]), torch.bfloat16
        else:
            backend, dtype = gptqmodel.BACKEND.AUTO, "auto"
        wrapper = gptqmodel.GPTQModel.load(str(artifact), backend=backend, device=device, dtype=dtype)
        return wrapper.model.eval()  # the transformers model itself, for lm-eval and generate
