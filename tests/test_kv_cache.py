"""KV-cache quantization: a method option of every transformers backend, honoured after a reload in a fresh
process, with the bytes per token the benchmark reports."""

import subprocess
import sys

import pytest
import torch
from transformers import GPT2Config, LlamaConfig

from quantbench import config
from quantbench.errors import ConfigError
from quantbench.methods import BACKENDS, kv_cache, with_defaults
from test_config import DEFAULT
import run_jobs
from workflow_runner import CLEAN_ENV

PROMPT, NEW = 96, 12
# After a reload in a fresh process: the cache generate() kept (its layer type and bits, tokens cached and of
# them still in full precision), the bytes per token reported, and the logits of its last greedy step.
RELOAD = """
import sys, torch
from quantbench import artifacts
runtime, info = artifacts.load(sys.argv[1], "cpu")
text = open(sys.argv[2]).read()
ids = torch.tensor([runtime.tokenizer(text).input_ids[:{prompt}]])
out = runtime.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens={new}, do_sample=False,
                             pad_token_id=runtime.pad_token_id, return_dict_in_generate=True, output_scores=True)
layer = out.past_key_values.layers[0]
print(type(layer).__name__, getattr(layer, "nbits", None), out.past_key_values.get_seq_length(),
      layer.keys.shape[-2] if layer.keys.dim() == 4 else 0,
      runtime.kv_cache_bytes_per_token(prompt_tokens={prompt}, new_tokens={new}))
torch.save(out.scores[-1][0], sys.argv[3])
""".format(prompt=PROMPT, new=NEW)


def reload_and_generate(artifact, text, tmp_path) -> tuple[list[str], torch.Tensor]:
    logits = tmp_path / f"{artifact.name}.pt"
    done = subprocess.run([sys.executable, "-c", RELOAD, str(artifact), str(text), str(logits)], capture_output=True,
                          text=True, env=CLEAN_ENV, check=True)
    return done.stdout.strip().splitlines()[-1].split(), torch.load(logits)


@pytest.fixture(scope="module")
def plain(tiny_model_folder, tmp_path_factory):
    artifact = tmp_path_factory.mktemp("kv") / "fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", device="cpu", country="USA",
                  method={"name": "fp32", "backend": "baseline", "params": {"dtype": "float32"}})
    return artifact


@pytest.mark.parametrize("backend, layer", [("quanto", "QuantoQuantizedLayer"), ("hqq", "HQQQuantizedLayer")])
def test_quantized_kv_cache_survives_a_reload(backend, layer, tiny_model_folder, plain, tmp_path):
    from quantbench.tasks.data import text_path

    entry = {"backend": "baseline", "dtype": "float32", "kv_cache": {"backend": backend, "bits": 2,
                                                                      "residual_length": 4}}
    artifact = tmp_path / "fp32-kv2"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", device="cpu", country="USA",
                  method={"name": "fp32-kv2", "backend": "baseline",
                          "params": with_defaults(BACKENDS["baseline"], entry)})
    text = text_path("qb_perplexity")
    cache, logits = reload_and_generate(artifact, text, tmp_path)
    # 107 tokens cached; the residual of 4 was quantized twice (after tokens 4 and 8), 3 stay in fp32
    quantized, residual = kv_cache.cached_tokens({"residual_length": 4}, PROMPT, NEW)
    assert (quantized, residual) == (104, 3)
    # tiny model: 2 layers, 2 KV heads of 16 dims: 128 elements per token, at 2 bits or in fp32
    assert cache == [layer, "2", str(PROMPT + NEW - 1), str(residual), str(128 * (104 * 2 / 8 + 3 * 4) / 107)]
    full_cache, full_logits = reload_and_generate(plain, text, tmp_path)
    assert full_cache == ["DynamicLayer", "None", str(PROMPT + NEW - 1), str(PROMPT + NEW - 1), str(128 * 4.0)]
    error = ((logits - full_logits).norm() / full_logits.norm()).item()
    assert 1e-4 < error < 0.5, error  # 2-bit keys and values move the last step's logits, not beyond recognition


def test_bytes_per_token_by_value():
    smollm2 = LlamaConfig(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, hidden_size=576)
    tokens = {"prompt_tokens": 64, "new_tokens": 16}
    assert kv_cache.bytes_per_token(smollm2, 4, None, **tokens) == 2 * 30 * 3 * 64 * 4 == 46080
    # the default residual of 128 keeps all 15 fed-back new tokens in fp32, beside the 64 quantized ones
    assert kv_cache.bytes_per_token(smollm2, 4, {"bits": 4, "residual_length": 128}, **tokens) == \
        (64 * 46080 / 8 + 15 * 46080) / 79
    # a long prompt and a short residual: nearly all at 4 bits
    long = kv_cache.bytes_per_token(smollm2, 4, {"bits": 4, "residual_length": 2}, prompt_tokens=4096, new_tokens=2)
    assert long == (4096 * 46080 / 8 + 46080) / 4097
    gpt2 = GPT2Config()  # 12 layers, 12 heads of 64, no grouped KV heads
    assert kv_cache.bytes_per_token(gpt2, 2, None, **tokens) == 2 * 12 * 12 * 64 * 2


def test_kv_cache_is_refused_where_the_runtime_has_no_such_option():
    change = {"backend": "gguf", "type": "Q8_0", "kv_cache": {"bits": 4}}
    study = {**DEFAULT, "methods": {**DEFAULT["methods"], "gguf-q8_0": change}}
    with pytest.raises(ConfigError, match="methods.gguf-q8_0.*kv_cache"):
        config.load(study)
    study["methods"]["gguf-q8_0"] = {"backend": "bitsandbytes", "bits": 8, "kv_cache": {"bits": 3}}
    with pytest.raises(ConfigError, match="kv_cache.bits"):
        config.load(study)
