"""What every quantization backend provides: the one place that knows how a method runs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .kv_cache import SCHEMA as KV_CACHE, use_quantized_cache

if TYPE_CHECKING:
    from .runtime import Runtime

SAFE_LOAD = {"use_safetensors": True, "trust_remote_code": False}


class Backend(ABC):
    """A quantization library: quantize a HF model folder into an artifact, and load it back as a Runtime.

    `params_schema` is a JSON schema (properties only) for the method's keys besides `backend`, and
    `runtime_options` for the keys of the runtime it loads into (not of its quantization); defaults in
    both are filled in before `quantize`/`load` see the params.
    """

    name: ClassVar[str]
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    packages: ClassVar[tuple[str, ...]] = ()  # distribution names this backend imports
    imports: ClassVar[tuple[str, ...]] = ("transformers",)  # modules its runtime loads with
    # stored tensors (by the end of their names) that hold a library's serialized metadata, not weights
    metadata_tensors: ClassVar[tuple[str, ...]] = ()
    params_schema: ClassVar[dict[str, Any]] = {}
    runtime_options: ClassVar[dict[str, Any]] = {"kv_cache": KV_CACHE}  # TorchRuntime's
    required: ClassVar[tuple[str, ...]] = ()  # params the config must give
    notes: ClassVar[str] = ""  # for the capability table: why a device is missing, kernels used, caveats
    # the artifact depends on a random calibration sample (`calibration.seed`): quantizing it again with another
    # seed (repetitions.quantize) measures the spread the sample causes
    samples_calibration: ClassVar[bool] = False

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if not _distribution_installed(p)]

    def schema(self) -> dict[str, Any]:
        """JSON-schema properties of a method entry besides `backend`."""
        return {**self.params_schema, **self.runtime_options}

    def param_problem(self, params: dict[str, Any]) -> str | None:
        """Why these params (defaults filled in) do not go together; None when they do."""
        return None

    def device_problem(self, params: dict[str, Any], device: str) -> str | None:
        """Why this method (backend + params) cannot run on `device` (cpu or cuda); None when it can."""
        if device not in self.devices:
            return f"backend {self.name!r} runs on {', '.join(self.devices)} only"
        return None

    def bits(self, params: dict[str, Any]) -> int:
        """Weight bit-width of this method, for tables and figures."""
        return int(params.get("bits", 16))

    def kernel(self, params: dict[str, Any], device: str) -> str:
        """What computes this method's matrix products on `device`, for the report's speed section."""
        return f"PyTorch {'CUDA' if device == 'cuda' else 'CPU'} matmuls through transformers' generate()"

    def speed_caveat(self, params: dict[str, Any], weights: str) -> str | None:
        """Why a speed measured with these params and weights (pretrained | random) may not be the method's
        speed on a real model; None when nothing is known to differ."""
        return None

    def import_libraries(self) -> None:
        """Import what the runtime loads with, so that memory read afterwards is the model's, not a library's."""
        for module in self.imports:
            importlib.import_module(module)

    def weight_bytes(self, artifact: Path, device: str) -> int:
        """Bytes of weights one decode step reads on `device`: the stored tensors (decode_step_bytes) at the
        size they load in, less the library's serialized metadata."""
        from safetensors import safe_open

        sizes = {}
        for path in Path(artifact).glob("*.safetensors"):
            with safe_open(path, "pt") as f:
                for name in f.keys():
                    piece = f.get_slice(name)
                    if not name.endswith(self.metadata_tensors):
                        sizes[name] = math.prod(piece.get_shape()) * self.loaded_itemsize(piece.get_dtype(), device)
        return decode_step_bytes(sizes)

    def loaded_itemsize(self, dtype: str, device: str) -> int:
        """Bytes per element, once loaded on `device`, of a stored tensor of safetensors `dtype` (a backend
        that converts tensors as it loads them says so here)."""
        return DTYPE_BYTES[dtype]

    def companion_files(self, params: dict[str, Any]) -> tuple[str, ...]:
        """Files an artifact keeps beside the model that are not part of it (e.g. llama.cpp's importance
        matrix): left out of its size on disk, and reported on their own."""
        return ()

    def artifact_details(self, artifact: Path, params: dict[str, Any]) -> dict[str, Any]:
        """What the written artifact holds beyond the params (e.g. the tensor types llama.cpp chose)."""
        return {}

    def install(self, params: dict[str, Any]) -> None:
        """Once-per-environment setup a quantization needs (e.g. building a tool). Runs before the timed and
        metered quantization: its cost is the installation's, not the method's."""

    @abstractmethod
    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        """Write a loadable artifact for the model folder `source` into the empty folder `out`."""

    def load(self, artifact: Path, params: dict[str, Any], device: str) -> Runtime:
        """The variant in `artifact`, ready for inference on `device`."""
        from .runtime import TorchRuntime, load_tokenizer

        model = self.load_model(artifact, params, device)
        if params.get("kv_cache"):
            use_quantized_cache(model, params["kv_cache"])
        return TorchRuntime(model, load_tokenizer(artifact), device, kv_cache=params.get("kv_cache"))

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        """The transformers model in `artifact` on `device` (backends run by TorchRuntime implement this)."""
        raise NotImplementedError(f"backend {self.name!r} loads its own runtime")


FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
DTYPE_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2, "I8": 1,
               "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
# Names of input-embedding tables across architectures (Llama/Mistral/Qwen, GPT-2, BLOOM, GPT-NeoX; GGUF),
# and the start of an output layer's (transformers; GGUF)
INPUT_EMBEDDINGS = ("embed_tokens.", "wte.", "word_embeddings.", "embed_in.", "token_embd.")
OUTPUT_LAYERS = ("lm_head.", "output.")


def decode_step_bytes(sizes: dict[str, int]) -> int:
    """Bytes of the stored tensors (name -> bytes) one decode step reads: all of them, but the input
    embedding where an output layer is stored too, since a step reads only its batch's rows of the
    embedding and all of the output layer. Where no output layer is stored, the embedding is the output
    layer (tied), read once; where a format stores a tied table twice (hqq saves lm_head beside
    embed_tokens), it is counted once too."""
    total = sum(sizes.values())
    if not any(name.startswith(OUTPUT_LAYERS) for name in sizes):
        return total
    return total - sum(size for name, size in sizes.items() if any(e in name for e in INPUT_EMBEDDINGS))


def _distribution_installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return importlib.util.find_spec(name.replace("-", "_")) is not None


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def has_tokenizer(folder: Path) -> bool:
    """Whether the model folder has a tokenizer (a random: model has none)."""
    return (Path(folder) / "tokenizer_config.json").is_file()


def copy_tokenizer(source: Path, out: Path) -> None:
    from transformers import AutoTokenizer

    if has_tokenizer(source):
        AutoTokenizer.from_pretrained(source).save_pretrained(out)
