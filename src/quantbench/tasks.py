"""Task definitions: the offline qb_* sets shipped with quantbench, written as lm-eval task configs.

lm-eval resolves `data_files` against the current directory, so the YAML is generated at run
time with absolute paths into the installed package.
"""

from __future__ import annotations

from importlib import resources
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


def problem(task: dict[str, Any]) -> str | None:
    """A config-time check of one task entry; None when it looks runnable."""
    if task["type"] == "lm_eval":
        name = task["task"]
        if not name.startswith("qb_"):
            return None  # an lm-eval task: known only once lm-eval indexes its tasks, at run time
        if name not in BUILTIN_CHOICE_TASKS:
            return f"unknown built-in task {name!r}; built-in: {sorted(BUILTIN_CHOICE_TASKS)}"
        n_items = len(data_file(BUILTIN_CHOICE_TASKS[name][0]).read_text().splitlines())
        if task["num_fewshot"] >= n_items:
            return f"num_fewshot {task['num_fewshot']} is not below the {n_items} items of {name}"
        return None
    if task["stride"] > task["context"]:
        return f"stride {task['stride']} is larger than context {task['context']}: tokens would be skipped"
    try:
        path = text_path(task["text"])
    except KeyError as err:
        return str(err.args[0])
    return None if path.is_file() else f"text file {str(path)!r} does not exist"


def text_path(name: str) -> Path:
    if name.startswith("path:"):
        return Path(name.removeprefix("path:"))
    if name not in BUILTIN_TEXTS:
        raise KeyError(f"unknown built-in text {name!r}; built-in: {sorted(BUILTIN_TEXTS)}, or path:/file.txt")
    return data_file(BUILTIN_TEXTS[name])


def write_builtin_yaml(folder: Path) -> Path:
    """Write lm-eval YAML configs of the qb_* tasks into `folder` (for TaskManager's include_path)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, fields) in BUILTIN_CHOICE_TASKS.items():
        config = {
            "task": name,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(data_file(data))}},
            "test_split": "test",
            "output_type": "multiple_choice",
            **fields,
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder
