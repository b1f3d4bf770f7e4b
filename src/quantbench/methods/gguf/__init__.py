"""GGUF through llama.cpp: HF folder -> GGUF (F32/F16/BF16) -> llama.cpp quantization types (Q8_0, Q4_K_M, ...).

The converter is llama.cpp's own `convert_hf_to_gguf.py`, taken from the llama-cpp-python sdist
that the runtime is built from (scripts/install-gguf.sh), so converter and runtime are the same
llama.cpp version; it runs in a child process with that sdist's gguf-py, because the PyPI `gguf`
release lags the converter. Quantization is llama.cpp's C API (`llama_model_quantize`); with `imatrix: true`
llama.cpp's own `llama-imatrix` first measures which weights matter on the calibration text and
`llama-quantize` then spends the type's bits where they count (both built on first use: tools.py).

K-quants work on blocks of 256 weights; llama.cpp quantizes a tensor whose rows are not a multiple
of 256 (SmolLM2's width 576) with a fallback type and says so in the job's log.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from ... import calibration
from ...defaults import fill_defaults
from ...errors import DeviceUnavailable
from ..base import FLOAT_DTYPES, Backend, Stored, bits_and_share, copy_tokenizer, decode_step_bytes
from . import tools

log = logging.getLogger(__name__)

CONVERTER_ENV = "QUANTBENCH_GGUF_CONVERTER"
MODEL_FILE = "model.gguf"
# type -> bits per weight for tables and figures (nominal: K-quants mix block types)
TYPES = {"F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8, "Q6_K": 6, "Q5_K_M": 5, "Q5_0": 5, "Q4_K_M": 4, "Q4_0": 4}
CONVERTED = {"F32": "f32", "F16": "f16", "BF16": "bf16"}  # types the converter writes itself
IMATRIX_FILE = "imatrix.gguf"
# llama.cpp weighs its rounding by an importance matrix for these types; Q8_0 and the float types ignore one
IMATRIX_TYPES = ("Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_0")
IMATRIX_TOOLS = ("llama-imatrix", "llama-quantize")


def converter() -> Path:
    """llama.cpp's converter: $QUANTBENCH_GGUF_CONVERTER, else where scripts/install-gguf.sh puts it."""
    default = Path(sys.prefix) / "share" / "quantbench" / "llama.cpp" / "convert_hf_to_gguf.py"
    return Path(os.environ.get(CONVERTER_ENV, default))


class GGUF(Backend):
    name = "gguf"
    packages = ("llama-cpp-python",)
    imports = ("transformers", "llama_cpp")
    params_schema = {
        "type": {"enum": list(TYPES), "description": "llama.cpp file type"},
        "n_ctx": {"type": "integer", "minimum": 64, "default": 2048,
                  "description": "llama.cpp context length at inference; also lm-eval's max length for this model"},
        # no defaults: the params (and so the cached artifacts) of a method without imatrix stay as they were
        "imatrix": {"type": "boolean", "description": "quantize with llama.cpp's importance matrix, computed by "
                    "llama-imatrix on the calibration text"},
        "calibration": {**{k: v for k, v in calibration.SCHEMA.items() if k != "default"},
                        "description": "text for imatrix: llama-imatrix reads `samples` consecutive chunks of "
                        "`sequence_length` tokens from its start (its own recipe: `seed` is not used)"},
    }
    runtime_options = {}  # llama.cpp's own KV-cache types (type_k, type_v) are not wired up yet
    required = ("type",)
    notes = ("llama.cpp via llama-cpp-python 0.3.36 (HF -> GGUF with the converter of the same llama.cpp); "
             "a batch decodes as one llama_batch; imatrix builds llama.cpp's llama-imatrix and llama-quantize from "
             "that sdist on first use (about 3 min); no kv_cache option yet; CUDA needs a llama-cpp-python built "
             "with CMAKE_ARGS=-DGGML_CUDA=on, not yet run on a GPU; on CPUs with AMX, llama.cpp's AMX and repacked "
             "weight buffers are off (they crash: llama.cpp#20824)")

    def param_problem(self, params: dict[str, Any]) -> str | None:
        if params.get("imatrix") and params["type"] not in IMATRIX_TYPES:
            return (f"llama.cpp uses no importance matrix for {params['type']}; "
                    f"imatrix applies to {', '.join(IMATRIX_TYPES)}")
        if "calibration" in params and not params.get("imatrix"):
            return "calibration is the text of the importance matrix: give it with imatrix: true only"
        if params.get("imatrix") and not all(tools.built(t) for t in IMATRIX_TOOLS):
            return tools.build_problem()
        return None

    def missing_packages(self) -> list[str]:
        missing = super().missing_packages()
        if not converter().is_file():
            missing.append(f"llama.cpp's convert_hf_to_gguf.py (not at {converter()}; run scripts/install-gguf.sh)")
        return missing

    def bits(self, params: dict[str, Any]) -> int:
        return TYPES[params["type"]]

    def install(self, params: dict[str, Any]) -> None:
        if params.get("imatrix"):
            tools.ensure(*IMATRIX_TOOLS)

    def quantize(self, source: Path, out: Path, params: dict[str, Any], device: str) -> None:
        target = out / MODEL_FILE
        kind = params["type"]
        if kind in CONVERTED:
            _convert(source, target, CONVERTED[kind])
        else:
            with tempfile.TemporaryDirectory(prefix="quantbench-gguf-") as tmp:
                f16 = Path(tmp) / "f16.gguf"  # llama.cpp's documented route: f16 first, then quantize
                _convert(source, f16, "f16")
                if params.get("imatrix"):
                    _quantize_with_imatrix(f16, out, kind, _calibration_spec(params), device)
                else:
                    _quantize(f16, target, kind)
        copy_tokenizer(source, out)

    def companion_files(self, params: dict[str, Any]) -> tuple[str, ...]:
        return (IMATRIX_FILE,) if params.get("imatrix") else ()

    def stored_tensors(self, artifact: Path) -> dict[str, Stored]:
        """The file's tensors: their llama.cpp types (F16, Q8_0, Q4_K, ...), shapes (outermost first) and bytes."""
        from gguf import GGUFReader

        return {t.name: Stored(t.tensor_type.name, tuple(int(d) for d in reversed(t.shape)), int(t.n_bytes))
                for t in GGUFReader(artifact / MODEL_FILE).tensors}

    def artifact_details(self, artifact: Path, params: dict[str, Any]) -> dict[str, Any]:
        """Tensors per stored type (K-quant files hold other types where rows are not 256-wide), and what
        llama-quantize recorded of the importance matrix it used."""
        stored = self.stored_tensors(artifact)
        details: dict[str, Any] = {"tensor_types": dict(Counter(t.dtype for t in stored.values()))}
        if params.get("imatrix"):
            from gguf import GGUFReader

            reader = GGUFReader(artifact / MODEL_FILE)
            details["imatrix"] = {key: reader.fields[f"quantize.imatrix.{key}"].contents()
                                  for key in ("entries_count", "chunks_count")}
        return details

    def weight_bytes(self, artifact: Path, device: str) -> int:
        """The file's tensors as llama.cpp maps them (decode_step_bytes)."""
        return decode_step_bytes({name: t.nbytes for name, t in self.stored_tensors(artifact).items()})

    def effective_bits(self, artifact: Path, source: Path) -> dict[str, Any]:
        """Over every tensor of 2+ dimensions the file stores (llama.cpp quantizes the token embedding too, and
        the output layer where it is not tied): a tensor is quantized where its type is not a float type (F32,
        F16, BF16), and its bytes are its blocks' (quantized values and block scales). The share is of the
        file's own matrices, so `source` is not read."""
        matrices = [t for t in self.stored_tensors(artifact).values() if len(t.shape) >= 2]
        return bits_and_share([(t.numel, t.nbytes) for t in matrices if t.dtype not in FLOAT_DTYPES],
                              [(t.numel, t.nbytes) for t in matrices if t.dtype in FLOAT_DTYPES])

    def kernel(self, params: dict[str, Any], device: str) -> str:
        return (f"llama.cpp ggml {'CUDA' if device == 'cuda' else 'CPU'} kernels ({params['type']}), every row of a "
                "batch decoded together in one llama_batch")

    def speed_caveat(self, params: dict[str, Any], weights: str) -> str | None:
        from .runtime import AMX_CAVEAT, amx_cpu

        return AMX_CAVEAT if amx_cpu() else None

    def load(self, artifact: Path, params: dict[str, Any], device: str):
        import llama_cpp

        from ..runtime import load_tokenizer
        from .runtime import LlamaCppRuntime

        # judged here, in the job's own environment: llama.cpp would otherwise run on the CPU silently
        if device == "cuda" and not llama_cpp.llama_supports_gpu_offload():
            raise DeviceUnavailable("this llama-cpp-python build cannot use the GPU; reinstall it with CMAKE_ARGS="
                                    "-DGGML_CUDA=on pip install --no-cache-dir --force-reinstall llama-cpp-python")
        return LlamaCppRuntime(artifact / MODEL_FILE, load_tokenizer(artifact), device, n_ctx=params["n_ctx"])


def _calibration_spec(params: dict[str, Any]) -> dict[str, Any]:
    """The calibration keys with their defaults: GGUF's schema has none, so plain methods keep their params."""
    return fill_defaults(calibration.SCHEMA["properties"], params.get("calibration", {}))


def _convert(source: Path, target: Path, outtype: str) -> None:
    """HF folder -> GGUF; the job's log keeps the converter's account of every tensor."""
    script = converter()
    tools.call([sys.executable, str(script), str(source), "--outtype", outtype, "--outfile", str(target)],
               f"llama.cpp's converter on {source}", env={**os.environ, "PYTHONPATH": str(script.parent / "gguf-py")})


def _quantize(source: Path, target: Path, kind: str) -> None:
    import llama_cpp
    import torch

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    params.nthread = torch.get_num_threads()
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        raise RuntimeError(f"llama.cpp could not quantize {source} to {kind} (see the log above)")


def _quantize_with_imatrix(f16: Path, out: Path, kind: str, spec: dict[str, Any], device: str) -> None:
    """llama.cpp's importance-matrix recipe: llama-imatrix on the f16 model over the calibration text, then
    llama-quantize with it. The matrix stays in the artifact beside the model, named as the model's metadata
    names it (`quantize.imatrix.file`)."""
    import torch

    threads, matrix = str(torch.get_num_threads()), out.resolve() / IMATRIX_FILE
    (f16.parent / "calibration.txt").write_text(calibration.load_text(spec))
    tools.run("llama-imatrix", ["-m", str(f16), "-f", "calibration.txt", "-o", str(matrix),
                                "-c", str(spec["sequence_length"]), "--chunks", str(spec["samples"]), "-t", threads,
                                "-ngl", "999" if device == "cuda" else "0"], cwd=f16.parent)
    if not matrix.is_file():  # llama-imatrix exits 0 when it cannot write its output
        raise RuntimeError(f"llama-imatrix wrote no {IMATRIX_FILE} (see the log above)")
    from gguf import GGUFReader

    chunks = GGUFReader(matrix).fields["imatrix.chunk_count"].contents()
    if chunks < spec["samples"]:
        log.warning("the calibration text holds %d chunks of %d tokens, not the %d asked for: the importance matrix "
                    "is measured on those %d", chunks, spec["sequence_length"], spec["samples"], chunks)
    tools.run("llama-quantize", ["--imatrix", IMATRIX_FILE, str(f16), MODEL_FILE, kind, threads], cwd=out)
