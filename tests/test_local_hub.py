"""The hub stand-in (tests/local_hub.py) serves the reference studies' ids to the real download code:
quantbench's hf: fetch at a pinned and at the newest commit, lm-eval's own tasks, quantbench's hub tasks;
and nothing leaves the machine."""

import io
import ipaddress
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import filled
from local_hub import MODELS
from workflow_runner import CLEAN_ENV

from run_jobs import fetch_model
from quantbench.sources import RANDOM_CONFIGS

LM_EVAL_TASKS = {  # lm-eval 0.4.13 task -> the dataset repo it reads
    "piqa": "baber/piqa", "arc_challenge": "allenai/ai2_arc", "wikitext": "EleutherAI/wikitext_document_level",
    **{t: "nyu-mll/glue" for t in ("sst2", "mrpc", "rte", "qqp", "mnli", "wnli")},
}


@pytest.fixture
def hub(local_hub_in_process, monkeypatch):
    """The stand-in for this process, with every connection or name lookup for anywhere but the loopback
    refused and recorded: what reached the real hub would show here."""
    elsewhere = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not ipaddress.ip_address(address[0]).is_loopback:
            elsewhere.append(address)
            raise ConnectionRefusedError(f"test_local_hub: no connection to {address} allowed")
        return connect(sock, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1", None):
            elsewhere.append(host)
            raise socket.gaierror(f"test_local_hub: no lookup of {host!r} allowed")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield local_hub_in_process
    assert not elsewhere, f"requests left the machine: {elsewhere}"


def parquet_rows(hub, repo_id: str, commit: str, path: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(hub.file(repo_id, commit, path))).to_pylist()


def asked(hub, repo_id: str) -> list[str]:
    """The server's GETs of `repo_id`'s files (resolve URLs)."""
    return [p for m, p, s in hub.requests() if m == "GET" and s == 200 and f"/{repo_id}/resolve/" in p]


def test_pinned_revision_fetches_the_older_commit(hub, tmp_path):
    from safetensors.torch import load_file

    repo = "meta-llama/Llama-3.2-1B"
    old, new = hub.commits[repo]
    fetch_model(f"hf:{repo}@{old}", tmp_path / "old")
    fetch_model(f"hf:{repo}", tmp_path / "new")
    for out, commit in ((tmp_path / "old", old), (tmp_path / "new", new)):
        assert json.loads((out / "manifest.json").read_text())["commit"] == commit
        assert (out / "model.safetensors").read_bytes() == hub.file(repo, commit, "model.safetensors")
    weights = [load_file(tmp_path / v / "model.safetensors")["model.embed_tokens.weight"] for v in ("old", "new")]
    assert not weights[0].equal(weights[1])
    assert any(f"/resolve/{old}/model.safetensors" in p for p in asked(hub, repo))


@pytest.mark.parametrize("repo", MODELS)
def test_every_model_stand_in_is_its_architecture_scaled_down(local_hub, tmp_path, repo):
    """Read from the built repo, not through the server (test above): config, weights and tokenizer load."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.pytorch_utils import Conv1D

    commit = local_hub.commits[repo][-1]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes(local_hub.file(repo, commit, name))
    config = json.loads((tmp_path / "config.json").read_text())
    real = json.loads(RANDOM_CONFIGS[MODELS[repo]].read_text())
    for key in ("architectures", "tie_word_embeddings", "torch_dtype"):
        assert config.get(key, config.get("dtype")) == real[key], key
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert model.config.vocab_size == len(tokenizer) == 49152
    if config["model_type"] == "llama":
        assert config["num_key_value_heads"] < config["num_attention_heads"]  # grouped-query attention
    widths = {m.in_features for m in model.modules() if isinstance(m, torch.nn.Linear)}
    widths |= {m.weight.shape[0] for m in model.modules() if isinstance(m, Conv1D)}  # GPT-2's projections
    assert all(w % 128 == 0 for w in widths), widths  # group size 128 quantizers apply
    with torch.no_grad():
        logits = model(**tokenizer("Quantization keeps the model small.", return_tensors="pt")).logits
    assert logits.shape[-1] == len(tokenizer)


def test_lm_eval_tasks_read_the_stand_in_datasets(hub):
    from lm_eval.tasks import get_task_dict

    from quantbench.tasks.harness import _lm_eval_task_index

    tasks = {name: get_task_dict([name], _lm_eval_task_index(name))[name] for name in LM_EVAL_TASKS}
    for name, repo in LM_EVAL_TASKS.items():
        docs = list(tasks[name].eval_docs)
        assert len(docs) == 30, name
        assert asked(hub, repo), f"{name}: nothing of {repo} was fetched from the stand-in"
    arc = tasks["arc_challenge"]
    shots = list(arc.fewshot_docs())
    assert len(shots) >= 25 and all("_train_" in d["id"] for d in shots)
    assert all("_test_" in d["id"] for d in arc.eval_docs)
    assert arc.fewshot_context(arc.eval_docs[0], num_fewshot=25).count("Answer:") == 26
    newest = hub.commits["nyu-mll/glue"][-1]
    validation = parquet_rows(hub, "nyu-mll/glue", newest, "mnli/validation_matched-00000-of-00001.parquet")
    assert [d["premise"] for d in tasks["mnli"].eval_docs] == [r["premise"] for r in validation]


def _qb_docs(task: dict) -> list[dict]:
    from lm_eval.tasks import TaskManager, get_task_dict

    from quantbench.tasks.harness import write_task_yaml

    with tempfile.TemporaryDirectory() as tmp:
        manager = TaskManager(include_path=str(write_task_yaml(Path(tmp), task)), include_defaults=False)
        return list(get_task_dict([task["task"]], manager)[task["task"]].eval_docs)


@pytest.mark.parametrize("name, repo, test_file", [
    ("qb_imdb", "stanfordnlp/imdb", "plain_text/test-00000-of-00001.parquet"),
    ("qb_tweeteval_sentiment", "cardiffnlp/tweet_eval", "sentiment/test-00000-of-00001.parquet"),
])
def test_quantbench_hub_tasks_read_the_scored_split_at_the_pinned_revision(hub, name, repo, test_file):
    for revision, commit in ((None, hub.commits[repo][-1]), (hub.commits[repo][0], hub.commits[repo][0])):
        docs = _qb_docs(filled({"type": "lm_eval", "task": name, "revision": revision}))
        assert [d["text"] for d in docs] == [r["text"] for r in parquet_rows(hub, repo, commit, test_file)]
    assert asked(hub, repo)


def test_tweeteval_head_trains_on_the_train_split(hub):
    from quantbench.tasks.heads import labelled_items

    task = filled({"type": "classification_head", "data": "qb_tweeteval_sentiment"})
    train = parquet_rows(hub, "cardiffnlp/tweet_eval", hub.commits["cardiffnlp/tweet_eval"][-1],
                         "sentiment/train-00000-of-00001.parquet")
    items = labelled_items(task, "train")
    assert [i["text"] for i in items] == [r["text"] for r in train]
    assert {i["label"] for i in items} == {0, 1, 2}


def test_a_subprocess_reaches_the_stand_in_through_env_alone(local_hub):
    """What a Snakemake job gets: `env` only, with the user's caches and network out of reach."""
    script = ("import datasets, huggingface_hub\n"
              "print(huggingface_hub.HfApi().model_info('openai-community/gpt2').sha)\n"
              "print(len(datasets.load_dataset('stanfordnlp/imdb', split='test')))\n")
    out = subprocess.run([sys.executable, "-c", script], env={**CLEAN_ENV, **local_hub.env}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == [local_hub.commits["openai-community/gpt2"][-1], "30"]
    assert any(Path(local_hub.env["HF_DATASETS_CACHE"]).glob("stanfordnlp*imdb*"))
