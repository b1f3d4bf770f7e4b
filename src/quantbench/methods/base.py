"""What every quantization backend provides: the one place that knows how a method runs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from .kv_cache import SCHEMA as KV_CACHE, use_quantized_cache
from .runtime import Runtime, TorchRuntime, load_tokenizer

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
    params_schema: ClassVar[dict[str, Any]] = {}
    runtime_options: ClassVar[dict[str, Any]] = {"kv_cache": KV_CACHE}  # TorchRuntime's
    required: ClassVar[tuple[str, ...]] = ()  # params the config must give
    notes: ClassVar[str] = ""  # for the capability table: why a device is missing, kernels used, caveats

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

    def weight_bytes(self, artifact: Path) -> int:
        """Bytes of weights one decode step reads: every stored tensor, less the input embedding table where
        the model has its own output layer (a step reads only its batch's rows of that table)."""
        from safetensors import safe_open

        sizes = {}
        for path in Path(artifact).glob("*.safetensors"):
            with safe_open(path, "pt") as f:
                for name in f.keys():
                    piece = f.get_slice(name)
                    sizes[name] = math.prod(piece.get_shape()) * DTYPE_BYTES[piece.get_dtype()]
        return without_input_embedding(sizes, artifact)

    def artifact_details(self, artifact: Path, params: dict[str, Any]) -> dict[str, Any]:
        """What the written artifact holds beyond the params (e.g. the tensor types llama.cpp chose)."""
        return {}

    def prepare(self, params: dict[str, Any]) -> None:
        """Once-per-environment setup a quantization needs (e.g. building a tool). Runs before the timed and
        metered quantization: its cost is the installation's, not the method's."""

    @abstractmethod
    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        """Write a loadable artifact for the model folder `source` into the empty folder `out`."""

    def load(self, artifact: Path, params: dict[str, Any], device: str) -> Runtime:
        """The variant in `artifact`, ready for inference on `device`."""
        model = self.load_model(artifact, params, device)
        if params.get("kv_cache"):
            use_quantized_cache(model, params["kv_cache"])
        return TorchRuntime(model, load_tokenizer(artifact), device, kv_cache=params.get("kv_cache"))

    def load_model(self, artifact: Path, params: dict[str, Any], device: str):
        """The transformers model in `artifact` on `device` (backends run by TorchRuntime implement this)."""
        raise NotImplementedError(f"backend {self.name!r} loads its own runtime")


DTYPE_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2, "I8": 1,
               "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
# Names of input-embedding tables across architectures (Llama/Mistral/Qwen, GPT-2, BLOOM, GPT-NeoX; GGUF)
INPUT_EMBEDDINGS = ("embed_tokens.", "wte.", "word_embeddings.", "embed_in.", "token_embd.")


def without_input_embedding(sizes: dict[str, int], artifact: Path) -> int:
    """Sum of tensor bytes, less the input embedding's when the output layer is not tied to it."""
    from transformers import AutoConfig

    if AutoConfig.from_pretrained(artifact).tie_word_embeddings:
        return sum(sizes.values())
    return sum(size for name, size in sizes.items() if not any(e in name for e in INPUT_EMBEDDINGS))


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
