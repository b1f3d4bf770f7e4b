"""What every quantization backend provides: the one place that knows how a method runs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
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

    def stored_tensors(self, artifact: Path) -> dict[str, Stored]:
        """Every tensor the artifact's files hold, by name, as stored (the safetensors files; a backend with its
        own format lists its own)."""
        return safetensors_listing(Path(artifact).glob("*.safetensors"))

    def weight_bytes(self, artifact: Path, device: str) -> int:
        """Bytes of weights one decode step reads on `device`: the stored tensors (decode_step_bytes) at the
        size they load in, less the library's serialized metadata."""
        return decode_step_bytes({name: t.numel * self.loaded_itemsize(t.dtype, device)
                                  for name, t in self.stored_tensors(artifact).items()
                                  if not name.endswith(self.metadata_tensors)})

    def effective_bits(self, artifact: Path, source: Path) -> dict[str, Any]:
        """Bits per weight the quantized weight matrices take as stored, and the share of the model's weight
        matrices that was quantized (module_bits: a module is quantized where the artifact stores anything but
        its float weight, and bias, of the source's shape; all its stored tensors count: quantized weights,
        scales, zeros, group indices, the library's serialized metadata). `source` is the model folder the
        artifact was quantized from. Where nothing is quantized (a float cast), the bits of the matrices as
        stored, with a share of 0."""
        return module_bits(self.stored_tensors(artifact),
                           safetensors_listing(Path(source).glob("*.safetensors")))

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
TORCH_DTYPES = {"float64": "F64", "int64": "I64", "float32": "F32", "int32": "I32", "uint32": "U32", "float16": "F16",
                "bfloat16": "BF16", "int16": "I16", "uint16": "U16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
                "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2"}
# Names of input-embedding tables across architectures (Llama/Mistral/Qwen, GPT-2, BLOOM, GPT-NeoX; GGUF),
# and the start of an output layer's (transformers; GGUF)
INPUT_EMBEDDINGS = ("embed_tokens.", "wte.", "word_embeddings.", "embed_in.", "token_embd.")
OUTPUT_LAYERS = ("lm_head.", "output.")


@dataclass(frozen=True)
class Stored:
    """One tensor as an artifact stores it: its type (a safetensors dtype name, or a GGUF tensor type), its
    shape, and its bytes in the file."""

    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def safetensors_listing(paths) -> dict[str, Stored]:
    """The tensors in these safetensors files, read from their headers (no tensor data is loaded)."""
    from safetensors import safe_open

    found = {}
    for path in paths:
        with safe_open(path, "pt") as f:
            for name in f.keys():
                piece = f.get_slice(name)
                shape, dtype = tuple(piece.get_shape()), piece.get_dtype()
                found[name] = Stored(dtype, shape, math.prod(shape) * DTYPE_BYTES[dtype])
    return found


def torch_listing(tensors: dict[str, Any]) -> dict[str, Stored]:
    """Stored entries of torch tensors (name -> tensor), their dtypes by safetensors' names."""
    return {name: Stored(TORCH_DTYPES[str(t.dtype).removeprefix("torch.")], tuple(t.shape),
                         t.numel() * t.element_size()) for name, t in tensors.items()}


def module_bits(stored: dict[str, Stored], source: dict[str, Stored]) -> dict[str, Any]:
    """Effective bits per weight of an artifact's quantized modules (Backend.effective_bits), from its stored
    tensors and those of the model folder it was quantized from.

    The source's weight matrices (float tensors of 2+ dimensions but biases: linear layers, embeddings, an
    untied output layer) name its modules (`model.layers.0.self_attn.q_proj.weight`:
    `model.layers.0.self_attn.q_proj`); each stored tensor belongs to the longest module its name starts with
    (ModuleNames: where a library saved the modules under another base prefix, by the end of their names). A
    module whose stored tensors are its source tensors (weight, bias), float and of the same shapes, is not
    quantized (kept in float, or cast); any other is, and all its stored tensors count (a source bias aside)
    over its source matrices' elements. A module with nothing stored is left out (a tied table the artifact
    stores under one name only); a stored non-float tensor outside every module is an error (its bytes would
    go uncounted)."""
    matrices = {name: t for name, t in source.items()
                if len(t.shape) >= 2 and t.dtype in FLOAT_DTYPES and not name.endswith(".bias")}
    names = ModuleNames(n.rpartition(".")[0] for n in matrices)
    modules: dict[str, dict[str, Stored]] = {}
    for name, t in source.items():
        module = names.exact(name)
        if module is not None:
            modules.setdefault(module, {})[name.removeprefix(module)] = t
    kept: dict[str, dict[str, Stored]] = {}
    for name, t in stored.items():
        found = names.find(name)
        if found is not None:
            module, rest = found
            kept.setdefault(module, {})[rest] = t
        elif t.dtype not in FLOAT_DTYPES:
            raise ValueError(f"stored tensor {name} ({t.dtype}) belongs to none of the source model's weight "
                             "matrices: cannot count its bits")
    quantized, unquantized = [], []  # (elements, stored bytes) per module
    for module, own in modules.items():
        here = kept.get(module)
        if not here:
            continue
        weights = {rest for rest in own if module + rest in matrices}
        elements = sum(own[rest].numel for rest in weights)
        if here.keys() == own.keys() and all(t.dtype in FLOAT_DTYPES and t.shape == own[rest].shape
                                              for rest, t in here.items()):
            unquantized.append((elements, sum(t.nbytes for rest, t in here.items() if rest in weights)))
        else:  # all but a float bias kept beside the quantized weight
            quantized.append((elements, sum(t.nbytes for rest, t in here.items()
                                            if rest in weights or rest not in own)))
    return bits_and_share(quantized, unquantized)


class ModuleNames:
    """The source model's module names, found in a stored tensor's name: the longest module it starts with, or,
    where a library saved the modules under another base prefix (`transformer.h.0.attn.c_attn` for
    `h.0.attn.c_attn`, `model.language_model.layers.0...` for `language_model.model.layers.0...`), the module
    its name less leading parts is, or the one module whose name ends in those parts."""

    def __init__(self, modules):
        self.modules = set(modules)
        self.tails: dict[str, str | None] = {}
        for module in self.modules:
            parts = module.split(".")
            for start in range(1, len(parts)):
                tail = ".".join(parts[start:])
                self.tails[tail] = module if self.tails.get(tail, module) == module else None

    def exact(self, name: str) -> str | None:
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in self.modules:
                return ".".join(parts[:end])
        return None

    def find(self, name: str) -> tuple[str, str] | None:
        """(module, the rest of the name from the module's end: `.weight`, `.qweight`, ...), or None."""
        module = self.exact(name)
        if module is not None:
            return module, name.removeprefix(module)
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            for start in range(end):  # start 0: a tail (the source's name is the longer)
                key = ".".join(parts[start:end])
                module = key if key in self.modules else self.tails.get(key)
                if module is not None:
                    return module, "." + ".".join(parts[end:]) if end < len(parts) else ""
        return None


def bits_and_share(quantized: list[tuple[int, int]], unquantized: list[tuple[int, int]]) -> dict[str, Any]:
    """effective_bits and quantized_share from (elements, stored bytes) of the quantized and the float weight
    matrices; where none is quantized, the bits of the float ones as stored."""
    q_elements, q_bytes = sum(e for e, _ in quantized), sum(b for _, b in quantized)
    f_elements, f_bytes = sum(e for e, _ in unquantized), sum(b for _, b in unquantized)
    if not q_elements + f_elements:
        raise ValueError("the artifact stores no weight matrix")
    return {"effective_bits": 8 * (q_bytes / q_elements if q_elements else f_bytes / f_elements),
            "quantized_share": q_elements / (q_elements + f_elements),
            "quantized_parameters": q_elements, "quantized_bytes": q_bytes}


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
