"""The data tasks read: the offline qb_* sets, texts and prompts shipped with quantbench, and hub
datasets lm-eval has no task for (IMDB, TweetEval), read from the hub or a local mirror file, given as
the dataset fields of an lm-eval task YAML (`dataset_path`, `dataset_kwargs`, `test_split`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def data_file(name: str) -> Path:
    return Path(str(resources.files("quantbench").joinpath("data", name)))


# name -> (data file, lm-eval fields). Prompts follow lm-eval's GLUE/PIQA task styles.
BUILTIN_CHOICE_TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "qb_sentiment": ("sentiment.jsonl", {
        "doc_to_text": "{{text}}\nQuestion: Is this sentence positive or negative?\nAnswer:",
        "doc_to_choice": ["negative", "positive"],
        "doc_to_target": "label",
    }),
    "qb_nli": ("nli.jsonl", {
        "doc_to_text": "{{premise}}\nQuestion: {{hypothesis}} True or False?\nAnswer:",
        "doc_to_choice": ["True", "False"],
        "doc_to_target": "label",
    }),
    "qb_paraphrase": ("paraphrase.jsonl", {
        "doc_to_text": "Sentence 1: {{sentence1}}\nSentence 2: {{sentence2}}\nQuestion: Do both sentences mean the same thing?\nAnswer:",
        "doc_to_choice": ["no", "yes"],
        "doc_to_target": "label",
    }),
    "qb_physical": ("physical.jsonl", {
        "doc_to_text": "Question: {{goal}}\nAnswer:",
        "doc_to_choice": "{{[sol1, sol2]}}",
        "doc_to_target": "label",
    }),
}
BUILTIN_TEXTS = {"qb_perplexity": "perplexity.txt"}
# 20 prompts, 10 factual and 10 creative, for free generation
BUILTIN_PROMPTS = {"qb_prompts": "prompts.jsonl"}
# lm-eval's word/byte perplexity (the wikitext protocol: rolling log-likelihood per document) over a
# shipped text, one document per paragraph.
ROLLING_TEXT_TASKS = {"qb_word_perplexity": "perplexity.txt"}


@dataclass(frozen=True)
class HubDataset:
    """Where a hub task's items live: dataset id, configuration name and the split scored."""

    path: str
    name: str | None
    split: str


# An offline mirror of a hub task is one split saved in the hub's schema (same columns).
MIRROR_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}

# Hub datasets the seed studies use that lm-eval ships no task for; prompts in the qb_sentiment style.
HUB_CHOICE_TASKS: dict[str, tuple[HubDataset, dict[str, Any]]] = {
    "qb_imdb": (HubDataset("stanfordnlp/imdb", None, "test"), {
        "doc_to_text": "{{text}}\nQuestion: Is this review positive or negative?\nAnswer:",
        "doc_to_choice": ["negative", "positive"],
        "doc_to_target": "label",
    }),
    "qb_tweeteval_sentiment": (HubDataset("cardiffnlp/tweet_eval", "sentiment", "test"), {
        "doc_to_text": "{{text}}\nQuestion: Is this tweet negative, neutral or positive?\nAnswer:",
        "doc_to_choice": ["negative", "neutral", "positive"],
        "doc_to_target": "label",
    }),
}


def text_path(name: str) -> Path:
    return _shipped_or_path(name, BUILTIN_TEXTS, "text", "path:/file.txt")


def prompts_path(name: str) -> Path:
    return _shipped_or_path(name, BUILTIN_PROMPTS, "prompts", "path:/prompts.jsonl with id, kind, prompt")


def _shipped_or_path(name: str, shipped: dict[str, str], what: str, alternative: str) -> Path:
    if name.startswith("path:"):
        return Path(name.removeprefix("path:"))
    if name not in shipped:
        raise ConfigError(f"unknown built-in {what} {name!r}; built-in: {sorted(shipped)}, or {alternative}")
    return data_file(shipped[name])


def local_files(builder: str, path: Path) -> dict[str, Any]:
    return {"dataset_path": builder, "dataset_kwargs": {"data_files": {"test": str(Path(path).resolve())}},
            "test_split": "test"}


def hub_source(hub: HubDataset, mirror: str | None, revision: str | None) -> dict[str, Any]:
    if mirror is not None:
        return local_files(MIRROR_FORMATS[Path(mirror).suffix], Path(mirror))
    source: dict[str, Any] = {"dataset_path": hub.path, "test_split": hub.split}
    if hub.name:
        source["dataset_name"] = hub.name
    if revision:
        source["dataset_kwargs"] = {"revision": revision}
    return source


def sample_indices(n_docs: int, limit: int | None, seed: int) -> list[int]:
    """`limit` items drawn reproducibly with `seed` (lm-eval's own limit takes the first N)."""
    if limit is None or limit >= n_docs:
        return list(range(n_docs))
    return sorted(random.Random(seed).sample(range(n_docs), limit))


def file_problem(resolve, name: str) -> str | None:
    """Why the shipped or path: file `name` cannot be read (None when it can)."""
    try:
        path = resolve(name)
    except ConfigError as err:
        return str(err)
    return None if path.is_file() else f"file {str(path)!r} does not exist"


def mirror_problem(key: str, mirror: str) -> str | None:
    """Why a hub mirror file cannot stand in for its split (None when it can)."""
    if Path(mirror).suffix not in MIRROR_FORMATS:
        return f"{key} {mirror!r} must be one split in the hub's schema as {' or '.join(MIRROR_FORMATS)}"
    if not Path(mirror).is_file():
        return f"{key} file {mirror!r} does not exist"
    return None


def n_lines(name: str) -> int:
    return len(data_file(name).read_text().splitlines())
