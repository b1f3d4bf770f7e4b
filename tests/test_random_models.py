"""random: sources: the reference studies' architectures with seeded random weights, for cost studies that
download nothing. Speed, memory and energy are measured on them; quality is refused."""

import json

import pytest
import torch
import yaml

from quantbench import config, sources
from quantbench.errors import ConfigError
import run_jobs
from workflow_runner import METHODS, planned_jobs

# Parameter counts published for these models (model cards; GPT-2: 124M as counted by transformers)
PUBLISHED = {"llama-3.2-1b": 1_235_814_400, "llama-3.2-3b": 3_212_749_824, "llama-3.1-8b": 8_030_261_248,
             "llama-2-7b": 6_738_415_616, "gpt2": 124_439_808}
TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300,
        "max_position_embeddings": 256, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
        "torch_dtype": "float32"}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shipped_architecture_has_the_published_parameter_count(name):
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = json.loads(sources.RANDOM_CONFIGS[name].read_text())
    with torch.device("meta"):  # the shape alone: no memory
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**spec))
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]


def study(source: str, **extra) -> dict:
    return {"models": {"m": {"source": source}}, "methods": {"fp32": METHODS["fp32"]}, **extra}


def test_quality_tasks_and_gguf_on_random_weights_are_refused():
    tasks = {"ppl": {"type": "perplexity", "text": "qb_perplexity"}}
    with pytest.raises(ConfigError, match="models.m.source.*random weights: quality tasks \\(ppl\\)"):
        config.load(study("random:llama-3.2-1b", tasks=tasks))
    with pytest.raises(ConfigError, match="no tokenizer.*GGUF.*gguf-q8"):
        config.load({**study("random:gpt2"), "methods": {"gguf-q8": {"backend": "gguf", "type": "Q8_0"}}})
    with pytest.raises(ConfigError, match="not a shipped architecture"):
        config.load(study("random:llama-9b"))
    assert config.load(study("random:llama-3.1-8b")).tasks == {}


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    spec = tmp_path_factory.mktemp("arch") / "config.json"
    spec.write_text(json.dumps(TINY))
    folder = tmp_path_factory.mktemp("fetched") / "random"
    run_jobs.fetch_model(f"random:{spec}", folder, "cpu")
    return folder


def test_random_weights_are_seeded_and_have_no_tokenizer(random_model, tmp_path):
    manifest = json.loads((random_model / "manifest.json").read_text())
    assert manifest["weights"] == "random" and manifest["seed"] == 0
    assert not (random_model / "tokenizer_config.json").exists()
    again = tmp_path / "again"
    run_jobs.fetch_model(manifest["source"], again, "cpu")
    assert json.loads((again / "manifest.json").read_text())["files"] == manifest["files"]  # same draw, byte for byte


@pytest.mark.parametrize("method", ["fp32", "bnb-int8", "gptq"])
def test_quantize_and_benchmark_a_random_model(random_model, tmp_path, method):
    from quantbench.methods import BACKENDS, with_defaults

    entry = {"gptq": {"backend": "gptq", "bits": 4, "group_size": 32,
                      "calibration": {"samples": 4, "sequence_length": 32}}}.get(method, METHODS.get(method))
    backend = BACKENDS[entry["backend"]]
    artifact = tmp_path / method
    run_jobs.quantize(random_model, artifact, model="m", device="cpu", country="USA",
                  method={"name": method, "backend": backend.name, "params": with_defaults(backend, entry)})
    settings = {"prompt_tokens": 8, "new_tokens": 3, "warmup": 0, "iterations": 2, "idle_seconds": 0,
                "cooldown_seconds": 0}
    run_jobs.run_benchmark(artifact, {2: tmp_path / "bench.json"}, ids={"model": "m", "method": method, "rep": 1},
                       settings=settings, device="cpu", country="USA")
    record = json.loads((tmp_path / "bench.json").read_text())
    assert record["status"] == "ok" and record["weights"] == "random"
    assert record["metrics"]["throughput_tokens_per_s"] > 0 and record["metrics"]["bandwidth_bound_tokens_per_s"] > 0
    # random weights rarely reach LLM.int8's outlier threshold: its row says the speed misses that path
    caveat = record["metrics"].get("speed_caveat", "")
    assert ("outlier" in caveat) == (method == "bnb-int8"), caveat


def test_a_benchmark_only_study_plans_no_evaluation(tmp_path):
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({**study("random:llama-3.2-1b"),
                                                         "methods": {"fp32": METHODS["fp32"],
                                                                     "bnb-int8": METHODS["bnb-int8"]}}))
    jobs_ = planned_jobs(tmp_path, tmp_path / "study.yaml")
    assert jobs_["quantize"] == 2 and jobs_["benchmark"] == 2 * 3 and "evaluate" not in jobs_  # methods x repetitions
