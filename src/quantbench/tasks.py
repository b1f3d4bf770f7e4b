"""Task definitions written as lm-eval task configs: the offline qb_* sets shipped with quantbench,
and hub datasets lm-eval has no task for (IMDB, TweetEval), read from the hub or a local mirror.

lm-eval resolves `data_files` against the current directory, so the YAML is generated at run
time with absolute paths.
"""

from __future__ import annotations

from importlib import resources
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml


def data_file(name: str) -> Path:
    return Path(str(resources.files(__package__).joinpath("data", name)))


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


# Labelled sets a classification head can be trained on (a `text` column and an integer `label`). A
# shipped set is one pool split in two with the task's seed; a hub dataset trains on its train split and
# is scored on the split its lm-eval task scores.
HEAD_DATA = ("qb_sentiment", "qb_tweeteval_sentiment")
HUB_TRAIN_SPLIT = "train"


def problem(task: dict[str, Any]) -> str | None:
    """A config-time check of one task entry; None when it looks runnable."""
    if task["type"] == "lm_eval":
        return _lm_eval_task_problem(task)
    if task["type"] == "classification_head":
        return _head_task_problem(task)
    if task["type"] == "generation":
        return _file_problem(prompts_path, task["prompts"])
    if task["stride"] > task["context"]:
        return f"stride {task['stride']} is larger than context {task['context']}: tokens would be skipped"
    return _file_problem(text_path, task["text"])


def _file_problem(resolve, name: str) -> str | None:
    try:
        path = resolve(name)
    except KeyError as err:
        return str(err.args[0])
    return None if path.is_file() else f"file {str(path)!r} does not exist"


def _lm_eval_task_problem(task: dict[str, Any]) -> str | None:
    name = task["task"]
    if name in ROLLING_TEXT_TASKS:
        return "num_fewshot must be 0 for a perplexity task" if task["num_fewshot"] else None
    hub_only = [key for key in ("mirror", "revision") if task.get(key) is not None]
    if hub_only and name not in HUB_CHOICE_TASKS:
        return f"{' and '.join(hub_only)} apply to hub tasks only ({sorted(HUB_CHOICE_TASKS)}), not to {name!r}"
    if name in HUB_CHOICE_TASKS:
        mirror = task.get("mirror")
        if mirror is not None and Path(mirror).suffix not in MIRROR_FORMATS:
            return f"mirror {mirror!r} must be one split in the hub's schema as {' or '.join(MIRROR_FORMATS)}"
        if mirror is not None and not Path(mirror).is_file():
            return f"mirror file {mirror!r} does not exist"
        return None
    if not name.startswith("qb_"):
        return None  # an lm-eval task: known only once lm-eval indexes its tasks, at run time
    if name not in BUILTIN_CHOICE_TASKS:
        return (f"unknown built-in task {name!r}; built-in: {sorted(BUILTIN_CHOICE_TASKS | ROLLING_TEXT_TASKS)}, "
                f"hub: {sorted(HUB_CHOICE_TASKS)}")
    n_items = len(data_file(BUILTIN_CHOICE_TASKS[name][0]).read_text().splitlines())
    if task["num_fewshot"] >= n_items:
        return f"num_fewshot {task['num_fewshot']} is not below the {n_items} items of {name}"
    return None


def _head_task_problem(task: dict[str, Any]) -> str | None:
    name = task["data"]
    if name not in HEAD_DATA:
        return f"data {name!r} cannot train a classification head; allowed: {list(HEAD_DATA)}"
    if name in BUILTIN_CHOICE_TASKS:
        hub_only = [key for key in ("mirror", "revision") if task.get(key) is not None]
        if hub_only:
            return f"{' and '.join(hub_only)}: for hub data only, not for the shipped {name!r}"
        n_items = len(data_file(BUILTIN_CHOICE_TASKS[name][0]).read_text().splitlines())
        wanted = task["train_items"] + (task["eval_items"] or 1)
        if wanted > n_items:
            return (f"train_items {task['train_items']} + eval_items {task['eval_items'] or 1} exceed the {n_items} "
                    f"items of {name}, which are split between training and evaluation")
        return None
    for split, mirror in (task.get("mirror") or {}).items():
        if Path(mirror).suffix not in MIRROR_FORMATS:
            return f"mirror.{split} {mirror!r} must be one split in the hub's schema as {' or '.join(MIRROR_FORMATS)}"
        if not Path(mirror).is_file():
            return f"mirror.{split} file {mirror!r} does not exist"
    return None


def head_labels(name: str) -> list[str]:
    """The class names of a head task's data, in label order."""
    return (BUILTIN_CHOICE_TASKS.get(name) or HUB_CHOICE_TASKS[name])[1]["doc_to_choice"]


def head_sources(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Where a head task's items live, as lm-eval dataset fields per split: `all` for a shipped set
    (split by the caller), `train` and `test` for a hub dataset (or its mirror files)."""
    name = task["data"]
    if name in BUILTIN_CHOICE_TASKS:
        return {"all": _local_files("json", data_file(BUILTIN_CHOICE_TASKS[name][0]))}
    hub = HUB_CHOICE_TASKS[name][0]
    mirror = task.get("mirror") or {}
    return {"train": _hub_source(replace(hub, split=HUB_TRAIN_SPLIT), mirror.get("train"), task.get("revision")),
            "test": _hub_source(hub, mirror.get("test"), task.get("revision"))}


def text_path(name: str) -> Path:
    return _shipped_or_path(name, BUILTIN_TEXTS, "text", "path:/file.txt")


def prompts_path(name: str) -> Path:
    return _shipped_or_path(name, BUILTIN_PROMPTS, "prompts", "path:/prompts.jsonl with id, kind, prompt")


def _shipped_or_path(name: str, shipped: dict[str, str], what: str, alternative: str) -> Path:
    if name.startswith("path:"):
        return Path(name.removeprefix("path:"))
    if name not in shipped:
        raise KeyError(f"unknown built-in {what} {name!r}; built-in: {sorted(shipped)}, or {alternative}")
    return data_file(shipped[name])


def is_quantbench_task(name: str) -> bool:
    """Defined here rather than in lm-eval's own task index (which takes 8-15 s to build)."""
    return name in BUILTIN_CHOICE_TASKS or name in HUB_CHOICE_TASKS or name in ROLLING_TEXT_TASKS


def write_task_yaml(folder: Path, task: dict[str, Any]) -> Path:
    """Write the lm-eval YAML of one qb_* task into `folder` (for TaskManager's include_path)."""
    name = task["task"]
    if name in ROLLING_TEXT_TASKS:
        config = _rolling_text_config(name, data_file(ROLLING_TEXT_TASKS[name]))
    else:
        if name in BUILTIN_CHOICE_TASKS:
            data, fields = BUILTIN_CHOICE_TASKS[name]
            source = _local_files("json", data_file(data))
        else:
            hub, fields = HUB_CHOICE_TASKS[name]
            source = _hub_source(hub, task.get("mirror"), task.get("revision"))
        config = {
            "task": name,
            **source,
            "output_type": "multiple_choice",
            **fields,
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def _rolling_text_config(name: str, text: Path) -> dict[str, Any]:
    source = _local_files("text", text)
    source["dataset_kwargs"]["sample_by"] = "paragraph"
    return {
        "task": name,
        **source,
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "{{text}}",
        # lm-eval's own aggregations (weighted by words and bytes), as in its wikitext task
        "metric_list": [{"metric": m} for m in ("word_perplexity", "byte_perplexity", "bits_per_byte")],
    }


def _local_files(builder: str, path: Path) -> dict[str, Any]:
    return {"dataset_path": builder, "dataset_kwargs": {"data_files": {"test": str(Path(path).resolve())}},
            "test_split": "test"}


def _hub_source(hub: HubDataset, mirror: str | None, revision: str | None) -> dict[str, Any]:
    if mirror is not None:
        return _local_files(MIRROR_FORMATS[Path(mirror).suffix], Path(mirror))
    source: dict[str, Any] = {"dataset_path": hub.path, "test_split": hub.split}
    if hub.name:
        source["dataset_name"] = hub.name
    if revision:
        source["dataset_kwargs"] = {"revision": revision}
    return source
