"""Every CPU method: quantize the tiny model, reload it in a fresh process, compare with fp32.

The checks are specific to each method (stored tensor dtypes, bytes on disk, error band), so the
test fails if a backend silently swaps one method for another or reloads broken weights.
"""

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from quantbench import artifacts
from quantbench.errors import ConfigError, CorruptArtifact, DeviceUnavailable, Unsupported
from quantbench.methods import BACKENDS, with_defaults
import run_jobs
from workflow_runner import CLEAN_ENV

# method -> (backend params, dtype that must appear among stored weights, relative logit error band).
# Bands measured on this model: bf16 0.006, 8-bit 0.007-0.010, 4-bit 0.09-0.17; they do not overlap.
TINY_CALIBRATION = {"samples": 8, "sequence_length": 64}
CPU_METHODS = {
    "fp32": ({"backend": "baseline", "dtype": "float32"}, "F32", (0.0, 1e-6)),
    "bf16": ({"backend": "baseline", "dtype": "bfloat16"}, "BF16", (1e-3, 0.015)),
    "bnb-int8": ({"backend": "bitsandbytes", "bits": 8}, "I8", (2e-3, 0.03)),
    "bnb-nf4": ({"backend": "bitsandbytes", "bits": 4, "quant_type": "nf4"}, "U8", (0.04, 0.3)),
    "bnb-fp4": ({"backend": "bitsandbytes", "bits": 4, "quant_type": "fp4"}, "U8", (0.04, 0.3)),
    "quanto-int8": ({"backend": "quanto", "bits": 8}, "I8", (2e-3, 0.03)),
    "quanto-int4": ({"backend": "quanto", "bits": 4}, "U8", (0.04, 0.3)),
    "bnb-fp4-dq": ({"backend": "bitsandbytes", "bits": 4, "quant_type": "fp4", "double_quant": True}, "U8",
                   (0.04, 0.3)),
    # GPTQ packs int4/int8 into int32 words and reloads with bf16 activations (GPTQModel's CPU kernels).
    "gptq-int4": ({"backend": "gptq", "bits": 4, "group_size": 32, "calibration": TINY_CALIBRATION}, "I32",
                  (0.04, 0.3)),
    "gptq-int4-act-order": ({"backend": "gptq", "bits": 4, "group_size": 32, "desc_act": True,
                             "calibration": TINY_CALIBRATION}, "I32", (0.04, 0.3)),
    "gptq-int8": ({"backend": "gptq", "bits": 8, "group_size": 32, "calibration": TINY_CALIBRATION}, "I32",
                  (2e-3, 0.03)),
    "autoround-int4": ({"backend": "autoround", "bits": 4, "group_size": 32, "iters": 20,
                        "calibration": TINY_CALIBRATION}, "I32", (0.04, 0.3)),
    "hqq-int4": ({"backend": "hqq", "bits": 4, "group_size": 32}, "U8", (0.04, 0.3)),
    "hqq-int8": ({"backend": "hqq", "bits": 8, "group_size": 32}, "U8", (2e-3, 0.03)),
    "torchao-int8": ({"backend": "torchao", "bits": 8}, "I8", (2e-3, 0.03)),
    "torchao-w8a8": ({"backend": "torchao", "bits": 8, "dynamic_activations": True}, "I8", (2e-3, 0.03)),
    "torchao-fp8": ({"backend": "torchao", "bits": 8, "float8": True}, "F8_E4M3", (2e-3, 0.04)),
}
# AWQ runs on its own tiny model (tiny_model_64_wide); packed like GPTQ, bf16 on reload.
AWQ_INT4 = ({"backend": "awq", "group_size": 32, "calibration": TINY_CALIBRATION}, "I32", (0.04, 0.3))
# What the artifact's config.json must say, where dtype and band alone cannot tell variants apart.
SAVED_QUANT_CONFIG = {
    "bnb-nf4": {"quant_method": "bitsandbytes", "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": False},
    "bnb-fp4": {"quant_method": "bitsandbytes", "bnb_4bit_quant_type": "fp4", "bnb_4bit_use_double_quant": False},
    "bnb-fp4-dq": {"quant_method": "bitsandbytes", "bnb_4bit_quant_type": "fp4", "bnb_4bit_use_double_quant": True},
    "gptq-int4": {"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": False},
    "gptq-int4-act-order": {"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": True},
    "gptq-int8": {"quant_method": "gptq", "bits": 8, "group_size": 32, "desc_act": False},
    "autoround-int4": {"quant_method": "gptq", "provider": "auto-round", "bits": 4, "group_size": 32, "iters": 20},
    "hqq-int4": {"nbits": 4, "group_size": 32},
    "hqq-int8": {"nbits": 8, "group_size": 32},
    "bnb-int8": {"quant_method": "bitsandbytes", "load_in_8bit": True},
    "torchao-int8": {"quant_method": "torchao", "torchao_config": "Int8WeightOnlyConfig"},
    "torchao-w8a8": {"quant_method": "torchao", "torchao_config": "Int8DynamicActivationInt8WeightConfig"},
    "torchao-fp8": {"quant_method": "torchao", "torchao_config": "Float8WeightOnlyConfig"},
    "awq-int4": {"quant_method": "awq", "format": "gemm", "bits": 4, "group_size": 32},
}
INPUT_IDS = [[5, 17, 42, 99, 123, 200, 256, 301, 7, 64, 480, 33]]


def quant_state_bytes(artifact: Path, module: str, out: int, inputs: int) -> int:
    """bitsandbytes' QuantState of one 4-bit module, stored as its JSON in a uint8 tensor: the JSON's length,
    once checked to describe this module (its length varies with the shape and double quantization's offset)."""
    with safe_open(artifact / "model.safetensors", "pt") as f:
        name = next(k for k in f.keys() if k.startswith(f"{module}.weight.quant_state.bitsandbytes__"))
        state = bytes(f.get_tensor(name).tolist())
    assert json.loads(state)["shape"] == [out, inputs] and json.loads(state)["blocksize"] == 64
    return len(state)


def _bnb_4bit(artifact, module, o, i):
    """packed 4-bit codes; an fp32 absmax per block of 64; the 16-entry fp32 code table; the QuantState JSON"""
    return 4 * o * i + 32 * o * i / 64 + 16 * 32 + 8 * quant_state_bytes(artifact, module, o, i)


def _bnb_4bit_nested(artifact, module, o, i):
    """double quantization: the absmax of each block of 64 as uint8, with an fp32 absmax per 256 of them and
    their own 256-entry fp32 code table"""
    blocks = o * i // 64
    return (4 * o * i + 8 * blocks + 32 * -(-blocks // 256) + 256 * 32 + 16 * 32
            + 8 * quant_state_bytes(artifact, module, o, i))


def _gptq(bits):
    """int32 words of packed codes; per group of 32 input columns and output column an fp16 scale and a packed
    zero of `bits` bits; an int32 group index per input column (g_idx)"""
    return lambda artifact, module, o, i: bits * o * i + (16 + bits) * o * i / 32 + 32 * i


# method -> the bits one quantized linear module (o outputs x i inputs) stores, by its format's definition;
# the model's fp32 weights make every float scale fp32 unless a format says otherwise
STORED_BITS = {
    "bnb-int8": lambda a, m, o, i: 8 * o * i + 32 * o + 8,  # int8 weight, an fp32 scale per row (SCB), its layout flag
    "bnb-nf4": _bnb_4bit, "bnb-fp4": _bnb_4bit, "bnb-fp4-dq": _bnb_4bit_nested,
    # int8 weight, an fp32 scale per row, the fp32 input and output scales
    "quanto-int8": lambda a, m, o, i: 8 * o * i + 32 * o + 2 * 32,
    # packed int4, an fp32 scale and shift per group of 128 (one per row where the row is shorter), the two scales
    "quanto-int4": lambda a, m, o, i: 4 * o * i + 2 * 32 * o * max(1, i // 128) + 2 * 32,
    "gptq-int4": _gptq(4), "gptq-int4-act-order": _gptq(4), "gptq-int8": _gptq(8), "autoround-int4": _gptq(4),
    # packed codes, an fp32 scale and zero per group of 32 (hqq's compute_dtype)
    "hqq-int4": lambda a, m, o, i: 4 * o * i + 2 * 32 * o * i / 32,
    "hqq-int8": lambda a, m, o, i: 8 * o * i + 2 * 32 * o * i / 32,
    # int8 weight, an fp32 scale and an int8 zero point per row; float8 e4m3 weight, an fp32 scale per row
    "torchao-int8": lambda a, m, o, i: 8 * o * i + (32 + 8) * o,
    "torchao-w8a8": lambda a, m, o, i: 8 * o * i + (32 + 8) * o,
    "torchao-fp8": lambda a, m, o, i: 8 * o * i + 32 * o,
    # CUDA only (test_cuda): tinygemm's packed int4 in int32 words, a bf16 scale and zero per group of 32
    "torchao-int4": lambda a, m, o, i: 4 * o * i + 2 * 16 * o * i / 32,
    # AWQ's GEMM format: packed int4, an fp16 scale and a packed 4-bit zero per group of 32, no group index
    "awq-int4": lambda a, m, o, i: 4 * o * i + (16 + 4) * o * i / 32,
}
FLOAT_BITS = {"fp32": 32, "bf16": 16}


def check_effective_bits(method: str, artifact: Path, model_folder: Path) -> None:
    """The run table's effective bits and quantized share against the format's own definition, over the model's
    linear layers (the torch backends leave the tied embedding and lm_head in float)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linears = {name: (m.out_features, m.in_features) for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and name != "lm_head"}
    parameters = sum(o * i for o, i in linears.values())
    metrics = artifacts.read_info(artifact)["metrics"]
    if method in FLOAT_BITS:
        assert (metrics["effective_bits"], metrics["quantized_share"]) == (FLOAT_BITS[method], 0)
        return
    expected = sum(STORED_BITS[method](artifact, name, o, i) for name, (o, i) in linears.items()) / parameters
    assert metrics["effective_bits"] == pytest.approx(expected, rel=1e-12), method
    embedding = config.vocab_size * config.hidden_size  # tied: lm_head is this table
    assert metrics["quantized_share"] == pytest.approx(parameters / (parameters + embedding))

# Logits of the reloaded variant, and beside them (.bytes) the weight bytes counted in its memory.
RELOAD = """
import sys, torch
from pathlib import Path
from quantbench import artifacts
from weight_count import in_memory_weight_bytes
runtime, info = artifacts.load(sys.argv[1], sys.argv[3])
Path(sys.argv[2] + ".bytes").write_text(str(in_memory_weight_bytes(runtime)))  # as loaded, before kernels cache
torch.save(runtime.forward(torch.tensor({ids})).float().cpu(), sys.argv[2])
""".format(ids=INPUT_IDS)


SAFETENSORS_NAMES = {torch.uint8: "U8", torch.int8: "I8", torch.int32: "I32", torch.float32: "F32",
                     torch.float16: "F16", torch.bfloat16: "BF16"}


def stored_dtypes(folder: Path) -> set[str]:
    dtypes = set()
    for path in folder.glob("*.safetensors"):
        with safe_open(path, "pt") as f:
            dtypes |= {str(f.get_slice(k).get_dtype()) for k in f.keys()}
    for layer in hqq_layers(folder).values():
        dtypes |= {SAFETENSORS_NAMES[v.dtype] for v in layer.values() if isinstance(v, torch.Tensor)}
    return dtypes


def hqq_layers(folder: Path) -> dict:
    """hqq's artifact: qmodel.pt, module name -> its state (tensors plus quantization metadata)."""
    path = folder / "qmodel.pt"
    return torch.load(path, weights_only=True) if path.exists() else {}


def saved_quant_settings(folder: Path) -> dict:
    """What the artifact itself records about its quantization: config.json, or hqq's per-layer metadata."""
    quantized = [layer for layer in hqq_layers(folder).values() if "W_q" in layer]
    if quantized:
        return quantized[0]
    saved = json.loads((folder / "config.json").read_text()).get("quantization_config", {})
    if saved.get("quant_method") == "torchao":  # which torchao config, as transformers serialises it
        saved["torchao_config"] = saved["quant_type"]["default"]["_type"]
    return saved


def reload_logits_in_fresh_process(artifact: Path, tmp_path: Path, device: str) -> torch.Tensor:
    out = tmp_path / "logits.pt"
    subprocess.run([sys.executable, "-c", RELOAD, str(artifact), str(out), device], check=True, capture_output=True,
                   env={**CLEAN_ENV, "PYTHONPATH": str(Path(__file__).parent)})
    return torch.load(out)


def check_weight_bytes(artifact: Path, tmp_path: Path, device: str) -> None:
    """The bytes the benchmark divides the bandwidth by, from the artifact's files, are the variant's own
    tensors counted in the memory of the process that reloaded it (after reload_logits_in_fresh_process).
    Equal for most methods; within 5 % where a kernel keeps what the files do not say: GPTQModel's int4
    constants (0.4 %), its int8 kernel's repacked matrix and per-channel scales in place of the group scales,
    zeros and g_idx (4.5 %), bitsandbytes' QuantState offset, kept in its JSON (0.03 %). A tied table counted
    twice was +68 % here (hqq), fp32 tensors that load as bf16 +56 % (GPTQ on the CPU)."""
    backend = BACKENDS[artifacts.read_info(artifact)["backend"]]
    counted = int((tmp_path / "logits.pt.bytes").read_text())
    assert backend.weight_bytes(artifact, device) == pytest.approx(counted, rel=0.05), artifact.name


def fp32_logits(model_folder: Path) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_folder, dtype=torch.float32)
    return model(torch.tensor(INPUT_IDS)).logits


@pytest.fixture(scope="module")
def reference_logits(tiny_model_folder):
    return fp32_logits(tiny_model_folder)


@pytest.fixture(scope="module")
def tiny_model_64_wide(tmp_path_factory):
    """The tiny Llama with 4 KV heads, so every layer's output is a multiple of 64 wide, as AWQ needs."""
    from conftest import build_tiny_model

    out = tmp_path_factory.mktemp("fetched") / "tiny64"
    run_jobs.fetch_model(f"path:{build_tiny_model(tmp_path_factory.mktemp('tiny64') / 'model', kv_heads=4)}", out)
    return out


def quantize_reload_and_compare(method, entry, weight_dtype, band, model_folder, reference, tmp_path,
                                device="cpu"):
    """Quantize on `device`, reload in a fresh process on `device`, compare its logits with the fp32 CPU
    `reference`."""
    low, high = band
    backend = BACKENDS[entry["backend"]]
    artifact, workdir = tmp_path / method, tmp_path / "workdir"
    workdir.mkdir()
    with contextlib.chdir(workdir):  # as under Snakemake, where the working directory is the repository
        run_jobs.quantize(model_folder, artifact, model="tiny",
                      method={"name": method, "backend": backend.name, "params": with_defaults(backend, entry)},
                      device=device, country="USA")
    assert not list(workdir.iterdir()), f"{method} wrote into the working directory"

    info = artifacts.read_info(artifact)
    assert info["backend"] == backend.name and info["method"] == method
    assert weight_dtype in stored_dtypes(artifact)
    assert info["size_bytes"] > 0 and info["files"]
    saved = saved_quant_settings(artifact)
    for key, value in SAVED_QUANT_CONFIG.get(method, {}).items():
        assert saved.get(key) == value, f"{method}: saved {key} = {saved.get(key)!r}, expected {value!r}"

    check_effective_bits(method, artifact, model_folder)

    logits = reload_logits_in_fresh_process(artifact, tmp_path, device)
    error = ((logits - reference).norm() / reference.norm()).item()
    assert low <= error <= high, f"{method}: relative logit error {error:.2e} outside [{low}, {high}]"
    check_weight_bytes(artifact, tmp_path, device)


@pytest.mark.parametrize("method", list(CPU_METHODS))
def test_quantize_save_reload(method, tiny_model_folder, reference_logits, tmp_path):
    quantize_reload_and_compare(method, *CPU_METHODS[method], tiny_model_folder, reference_logits, tmp_path)


# One layer of the reloaded variant against the two things it could compute: the dequantized int8 weight times
# the input (weight-only), or times the input quantized per token as torchao's W8A8 does (symmetric int8,
# scale max|x| / 127.5 per row, as its choose_qparams_affine). Prints the relative error to each.
ACTIVATIONS = """
import sys, torch
from quantbench import artifacts
runtime, info = artifacts.load(sys.argv[1], "cpu")
layer = runtime.model.model.layers[0].mlp.down_proj
torch.manual_seed(0)
x = torch.randn(3, layer.in_features) * torch.tensor([[1.0], [10.0], [0.1]])
x[0, 0] = 25.0  # an outlier that sets its row's scale
with torch.no_grad():
    out, weight = layer(x), layer.weight.dequantize()
    scale = x.abs().amax(dim=1, keepdim=True) / 127.5
    per_token = torch.clamp(torch.round(x / scale), -128, 127) * scale
    rel = lambda ref: ((out - ref).norm() / ref.norm()).item()
    print(rel(torch.nn.functional.linear(x, weight)), rel(torch.nn.functional.linear(per_token, weight)))
"""


def test_w8a8_reloads_with_its_activations_quantized(tiny_model_folder, tmp_path):
    """The saved config's name could be right while the reloaded layers run weight-only: check what they compute."""
    errors = {}
    for method in ("torchao-w8a8", "torchao-int8"):
        entry = CPU_METHODS[method][0]
        run_jobs.quantize(tiny_model_folder, tmp_path / method, model="tiny", device="cpu", country="USA",
                      method={"name": method, "backend": "torchao",
                              "params": with_defaults(BACKENDS["torchao"], entry)})
        done = subprocess.run([sys.executable, "-c", ACTIVATIONS, str(tmp_path / method)], check=True,
                              capture_output=True, text=True, env=CLEAN_ENV)
        errors[method] = [float(e) for e in done.stdout.split()[-2:]]
    weight_only, per_token = errors["torchao-w8a8"]
    assert per_token < 1e-5 < 1e-3 < weight_only, errors  # W8A8 quantizes its inputs
    weight_only, per_token = errors["torchao-int8"]
    assert weight_only < 1e-5 < 1e-3 < per_token, errors  # and weight-only int8 does not


def test_awq_quantize_save_reload(tiny_model_64_wide, tmp_path):
    quantize_reload_and_compare("awq-int4", *AWQ_INT4, tiny_model_64_wide, fp32_logits(tiny_model_64_wide), tmp_path)


def test_awq_refuses_layers_its_clip_search_cannot_split(tiny_model_folder, tmp_path):
    entry = {"backend": "awq", "group_size": 32, "calibration": TINY_CALIBRATION}
    with pytest.raises(ConfigError, match=r"multiple of 64; this model has \[32\]"):
        run_jobs.quantize(tiny_model_folder, tmp_path / "awq", model="tiny",
                      method={"name": "awq", "backend": "awq", "params": with_defaults(BACKENDS["awq"], entry)},
                      device="cpu", country="USA")


def tiny_gpt2(tmp_path: Path) -> Path:
    """A one-layer random GPT-2 (Conv1D projections), fetched into tmp_path / "gpt2"."""
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=128, n_head=2, vocab_size=256)).save_pretrained(tmp_path / "raw")
    run_jobs.fetch_model(f"path:{tmp_path / 'raw'}", tmp_path / "gpt2")
    return tmp_path / "gpt2"


def test_awq_refuses_gpt2_whose_conv1d_layers_break_its_scale_search(tmp_path):
    """GPTQModel's AWQ raised in a worker thread and the process died unrecorded (paper-methods' GPT-2)."""
    source = tiny_gpt2(tmp_path)
    entry = {"backend": "awq", "group_size": 64, "calibration": TINY_CALIBRATION}
    with pytest.raises(Unsupported, match="cannot quantize gpt2: its Conv1D projections"):
        run_jobs.quantize(source, tmp_path / "awq", model="gpt2",
                      method={"name": "awq", "backend": "awq", "params": with_defaults(BACKENDS["awq"], entry)},
                      device="cpu", country="USA")
    assert not (tmp_path / "awq").exists()


def test_group_size_that_does_not_divide_the_model_is_refused_before_quantizing(tiny_model_folder, tmp_path):
    # the tiny model's layers are 64 and 128 wide, as SmolLM2's 576 is not a multiple of 128
    entry = {"backend": "gptq", "bits": 4, "group_size": 256}
    with pytest.raises(ConfigError, match=r"group_size 256 does not divide .*\[64, 128\].*use 32 or 64"):
        run_jobs.quantize(tiny_model_folder, tmp_path / "g256", model="tiny",
                      method={"name": "g256", "backend": "gptq", "params": with_defaults(BACKENDS["gptq"], entry)},
                      device="cpu", country="USA")
    assert not (tmp_path / "g256").exists()


def test_method_impossible_on_the_device_is_refused_before_loading_the_model(tiny_model_folder, tmp_path):
    entry = {"backend": "torchao", "bits": 4}
    with pytest.raises(DeviceUnavailable, match="torchao int4 needs CUDA"):
        run_jobs.quantize(tiny_model_folder, tmp_path / "ao4", model="tiny",
                      method={"name": "ao4", "backend": "torchao", "params": with_defaults(BACKENDS["torchao"], entry)},
                      device="cpu", country="USA")
    assert not (tmp_path / "ao4").exists()


def test_corrupt_artifact_is_refused(tiny_model_folder, tmp_path):
    artifact = tmp_path / "fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny",
                  method={"name": "fp32", "backend": "baseline", "params": {"dtype": "float32"}},
                  device="cpu", country="USA")
    weights = artifact / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated, as by a full disk
    with pytest.raises(CorruptArtifact, match="model.safetensors.*rule quantize"):
        artifacts.load(artifact, "cpu")


def test_sizes_on_disk_follow_bit_width(tiny_model_folder, tmp_path):
    sizes = {}
    for method in ("fp32", "bnb-int8", "bnb-nf4"):
        entry = CPU_METHODS[method][0]
        backend = BACKENDS[entry["backend"]]
        run_jobs.quantize(tiny_model_folder, tmp_path / method, model="tiny",
                      method={"name": method, "backend": backend.name, "params": with_defaults(backend, entry)},
                      device="cpu", country="USA")
        sizes[method] = json.loads((tmp_path / method / "quantization.json").read_text())["size_bytes"]
    assert sizes["fp32"] > sizes["bnb-int8"] > sizes["bnb-nf4"]


# The reloaded quanto int8 model's weight addresses, then its logits with bf16 activations: the case quanto sends
# to torch's int8 kernel (_weight_int8pack_mm), which reads its weight with aligned vector loads.
QUANTO_BF16 = """
import sys, torch
from optimum.quanto import QTensor
from quantbench import artifacts
runtime, info = artifacts.load(sys.argv[1], "cpu")
weights = [m.weight for m in runtime.model.modules() if isinstance(getattr(m, "weight", None), QTensor)]
print(sum(w._data.data_ptr() % 64 != 0 for w in weights), len(weights), flush=True)
torch.save(runtime.forward(torch.tensor({ids})).float(), sys.argv[2])
""".format(ids=INPUT_IDS)


def file_offsets(path: Path, suffix: str) -> list[int]:
    """Where in a safetensors file each tensor named *suffix starts (its 8-byte length, JSON header, data)."""
    with path.open("rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
    return [8 + length + entry["data_offsets"][0] for name, entry in header.items() if name.endswith(suffix)]


def test_quanto_int8_runs_bf16_activations_on_weights_read_from_unaligned_file_offsets(tiny_model, tmp_path):
    """safetensors stores tensors at 8-byte offsets; a reloaded int8 weight left there segfaulted in torch's
    int8 kernel on an AVX-512 CPU (every quanto-int8 job of paper-quanto-tweeteval's bf16 model)."""
    from transformers import AutoModelForCausalLM

    bf16 = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16)
    bf16.save_pretrained(tmp_path / "raw")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "raw" / name).write_bytes((tiny_model / name).read_bytes())
    run_jobs.fetch_model(f"path:{tmp_path / 'raw'}", tmp_path / "bf16")
    entry = CPU_METHODS["quanto-int8"][0]
    run_jobs.quantize(tmp_path / "bf16", tmp_path / "q8", model="tiny", device="cpu", country="USA",
                  method={"name": "q8", "backend": "quanto", "params": with_defaults(BACKENDS["quanto"], entry)})
    assert any(offset % 64 for offset in file_offsets(tmp_path / "q8" / "model.safetensors", "weight._data"))
    done = subprocess.run([sys.executable, "-c", QUANTO_BF16, str(tmp_path / "q8"), str(tmp_path / "logits.pt")],
                          capture_output=True, text=True, env=CLEAN_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    unaligned, count = map(int, done.stdout.split()[-2:])
    assert count == 14 and unaligned == 0
    reference = bf16(torch.tensor(INPUT_IDS)).logits.float()
    logits = torch.load(tmp_path / "logits.pt")
    assert ((logits - reference).norm() / reference.norm()).item() < 0.05


def test_quanto_refuses_gpt2_whose_projections_are_not_linear_layers(tmp_path):
    """optimum-quanto replaces nn.Linear only: GPT-2 came out with nothing quantized, and quanto refused to save
    it after the load (paper-methods' first run)."""
    tiny_gpt2(tmp_path)
    entry = CPU_METHODS["quanto-int8"][0]
    with pytest.raises(Unsupported, match=r"optimum-quanto quantizes torch.nn.Linear layers; this model has none "
                                          r"outside \['lm_head'\]"):
        run_jobs.quantize(tmp_path / "gpt2", tmp_path / "q8", model="gpt2", device="cpu", country="USA",
                      method={"name": "q8", "backend": "quanto", "params": with_defaults(BACKENDS["quanto"], entry)})
    assert not (tmp_path / "q8").exists()


def test_effective_bits_find_each_module_under_the_name_the_library_saved_it():
    """module_bits on listings alone: a library that saved the modules under another base prefix (GPT-2's hub
    names have none, transformers writes `transformer.`), a float bias kept beside a quantized weight, a tied
    table stored twice (hqq's lm_head), and a quantized tensor that belongs to no source module."""
    from quantbench.methods.base import Stored, module_bits

    def t(dtype, *shape, itemsize=4):
        return Stored(dtype, shape, itemsize * torch.Size(shape).numel())

    source = {"wte.weight": t("F32", 100, 8), "h.0.attn.c_attn.weight": t("F32", 8, 24),
              "h.0.attn.c_attn.bias": t("F32", 24), "h.0.ln_1.weight": t("F32", 8)}
    stored = {"transformer.wte.weight": t("F32", 100, 8), "lm_head.weight": t("F32", 100, 8),
              "transformer.h.0.attn.c_attn.qweight": t("I32", 1, 24),
              "transformer.h.0.attn.c_attn.scales": t("F16", 1, 24, itemsize=2),
              "transformer.h.0.attn.c_attn.bias": t("F32", 24), "transformer.h.0.ln_1.weight": t("F32", 8)}
    # 192 weights in 96 + 48 bytes; the bias is not counted, the tied lm_head and the norm belong to no matrix
    assert module_bits(stored, source) == {"effective_bits": 6.0, "quantized_share": 192 / 992,
                                           "quantized_parameters": 192, "quantized_bytes": 144}
    # Gemma 3's checkpoints name the text model language_model.model.*, transformers 5 saves model.language_model.*
    reordered = {"language_model.model.embed_tokens.weight": t("F32", 100, 8),
                 "language_model.model.layers.0.q_proj.weight": t("F32", 24, 8)}
    saved = {"model.language_model.embed_tokens.weight": t("F32", 100, 8),
             "model.language_model.layers.0.q_proj.qweight": t("I32", 1, 24),
             "model.language_model.layers.0.q_proj.scales": t("F16", 1, 24, itemsize=2)}
    assert module_bits(saved, reordered)["quantized_share"] == 192 / 992
    with pytest.raises(ValueError, match="h.0.mlp.c_fc.qweight"):
        module_bits({**stored, "transformer.h.0.mlp.c_fc.qweight": t("I32", 1, 32)}, source)
    # a float cast: nothing quantized, the bits the matrices are stored in
    cast = {name: Stored("BF16", s.shape, s.nbytes // 2) for name, s in source.items()}
    assert module_bits(cast, source)["effective_bits"] == 16 and module_bits(cast, source)["quantized_share"] == 0
