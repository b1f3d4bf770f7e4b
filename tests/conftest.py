"""Shared fixtures: a tiny random Llama with its own tokenizer, built here, no downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from workflow_runner import CLEAN_ENV, snakemake, write_study



def build_tiny_model(folder: Path, seed: int = 0, kv_heads: int = 2) -> Path:
    """A 2-layer Llama (vocab 512) with a byte-level BPE tokenizer trained on the shipped text."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from quantbench.tasks.data import data_file

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([data_file("perplexity.txt").read_text(), data_file("sentiment.jsonl").read_text()],
                            trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    tokenizer.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=kv_heads,
                         max_position_embeddings=1024, bos_token_id=0, eos_token_id=1, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def torch_runtime(folder: Path):
    """The model in `folder` in fp32 on the CPU, behind the Runtime every stage uses."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from quantbench.methods.runtime import TorchRuntime

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return TorchRuntime(model, AutoTokenizer.from_pretrained(folder), "cpu")


def filled(task: dict) -> dict:
    """A task entry with its type's defaults filled in, as the config gives it to the jobs."""
    from quantbench.defaults import fill_defaults
    from quantbench.tasks import get_task_type

    return fill_defaults(get_task_type(task["type"]).schema, task)


def score(runtime, task: dict, **inputs):
    """Evaluate `task` on `runtime` as an evaluate job does, without the job around it."""
    from quantbench.tasks import Inputs, get_task_type

    return get_task_type(task["type"]).evaluate(runtime, filled(task), Inputs(**inputs))


@pytest.fixture(scope="session")
def tiny_runtime(tiny_model):
    return torch_runtime(tiny_model)


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory, tiny_model) -> Path:
    """The tiny model fetched as the pipeline does (resources/models/{model} with manifest.json)."""
    from run_jobs import fetch_model

    out = tmp_path_factory.mktemp("fetched") / "tiny"
    fetch_model(f"path:{tiny_model}", out)
    assert json.loads((out / "manifest.json").read_text())["kind"] == "path"
    return out


@pytest.fixture(scope="session")
def study(tmp_path_factory, tiny_model):
    """The tiny study run once, uninterrupted: (workdir, completed process)."""
    workdir = write_study(tmp_path_factory.mktemp("study"), tiny_model)
    first = snakemake(workdir)
    assert first.returncode == 0, first.stderr[-5000:]
    return workdir, first


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory):
    """The hub stand-in (tests/local_hub.py) on 127.0.0.1: the reference studies' model and dataset ids, each
    at two commits, built once per session (~45 s) and served by olah. `.env` for subprocesses
    (`snakemake(workdir, env=hub.env)`), `with hub.activated():` for this process, `.commits[repo_id]`
    oldest first, `.requests()` what the server was asked."""
    import local_hub as hub_module

    # olah is a child Python: not in the LD_LIBRARY_PATH that in-process R (the figure tests) leaves behind
    hub = hub_module.start(tmp_path_factory.mktemp("local-hub"), base_env=CLEAN_ENV)
    yield hub
    hub.stop()


@pytest.fixture
def local_hub_in_process(local_hub):
    """local_hub with its variables set in this process for one test, restored afterwards (a whole session's
    worth would point every later test at the stand-in and its proxies at nowhere)."""
    with local_hub.activated():
        yield local_hub
