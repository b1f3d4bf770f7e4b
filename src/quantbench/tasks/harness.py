"""Tasks run by lm-evaluation-harness: choice tasks (accuracy) and rolling-log-likelihood perplexity.

quantbench's own qb_* tasks (shipped sets, hub datasets lm-eval has no task for, the word-perplexity
text) are written as lm-eval task YAML at run time, with absolute data paths (lm-eval resolves
`data_files` against the current directory); any other name is one of lm-eval's own tasks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .base import Inputs, Scores, TaskType
from .data import (BUILTIN_CHOICE_TASKS, HUB_CHOICE_TASKS, ROLLING_TEXT_TASKS, data_file, hub_source, local_files,
                   mirror_problem, n_lines, sample_indices)


class LmEval(TaskType):
    name = "lm_eval"
    schema = {
        "task": {"type": "string", "description": "lm-eval task name; qb_* are defined by quantbench (offline sets, "
                                                  "hub datasets)"},
        "num_fewshot": {"type": "integer", "minimum": 0, "default": 0},
        "limit": {"type": ["integer", "null"], "minimum": 1, "default": None,
                  "description": "evaluate this many items, drawn with `seed`"},
        "seed": {"type": "integer", "default": 42},
        "batch_size": {"type": "integer", "minimum": 1, "default": 8},
        "mirror": {"type": ["string", "null"], "default": None,
                   "description": "hub tasks: local .jsonl/.parquet file of the scored split in the hub's schema "
                                  "(offline)"},
        "revision": {"type": ["string", "null"], "default": None,
                     "description": "hub tasks: dataset revision (commit) to pin"},
    }
    required = ("task",)
    columns = ("accuracy", "n_items", "lm_eval_task", "num_fewshot", "perplexity_word", "perplexity_byte",
               "bits_per_byte")

    def problem(self, task: dict[str, Any]) -> str | None:
        name = task["task"]
        if name in ROLLING_TEXT_TASKS:
            return "num_fewshot must be 0 for a perplexity task" if task["num_fewshot"] else None
        hub_only = [key for key in ("mirror", "revision") if task.get(key) is not None]
        if hub_only and name not in HUB_CHOICE_TASKS:
            return f"{' and '.join(hub_only)} apply to hub tasks only ({sorted(HUB_CHOICE_TASKS)}), not to {name!r}"
        if name in HUB_CHOICE_TASKS:
            return mirror_problem("mirror", task["mirror"]) if task.get("mirror") is not None else None
        if not name.startswith("qb_"):
            return None  # an lm-eval task: known only once lm-eval indexes its tasks, at run time
        if name not in BUILTIN_CHOICE_TASKS:
            return (f"unknown built-in task {name!r}; built-in: "
                    f"{sorted(BUILTIN_CHOICE_TASKS | ROLLING_TEXT_TASKS)}, hub: {sorted(HUB_CHOICE_TASKS)}")
        n_items = n_lines(BUILTIN_CHOICE_TASKS[name][0])
        if task["num_fewshot"] >= n_items:
            return f"num_fewshot {task['num_fewshot']} is not below the {n_items} items of {name}"
        return None

    def evaluate(self, runtime, task: dict[str, Any], inputs: Inputs) -> Scores:
        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager, get_task_dict

        name = task["task"]
        with tempfile.TemporaryDirectory() as tmp:
            ours = is_quantbench_task(name)
            # include_defaults=False keeps TaskManager at ~0.01 s instead of indexing every task (8-15 s).
            manager = TaskManager(include_path=str(write_task_yaml(Path(tmp), task)) if ours else None,
                                  include_defaults=not ours)
            loaded = get_task_dict([name], manager)[name]
            output_type = getattr(loaded, "OUTPUT_TYPE", None)
            if output_type not in ("multiple_choice", "loglikelihood_rolling"):
                raise ConfigError(f"lm-eval task {name!r} is neither a single multiple-choice task nor a perplexity "
                                 "task; quantbench scores those only (groups and generation tasks are not "
                                 "supported yet)")
            indices = sample_indices(len(loaded.eval_docs), task["limit"], task["seed"])
            result = simple_evaluate(
                model=runtime.lm_eval(task["batch_size"]), tasks=[name], num_fewshot=task["num_fewshot"],
                task_manager=manager, samples={name: indices}, log_samples=True, random_seed=task["seed"],
                fewshot_random_seed=task["seed"], bootstrap_iters=0,
            )
        metrics = {k: v for k, v in result["results"][name].items() if isinstance(v, (int, float, str))}
        common = {"n_items": len(indices), "lm_eval_task": name, "num_fewshot": task["num_fewshot"]}
        details = {"lm_eval_metrics": metrics}
        if output_type == "loglikelihood_rolling":
            return Scores({"perplexity_word": metrics["word_perplexity,none"],
                           "perplexity_byte": metrics["byte_perplexity,none"],
                           "bits_per_byte": metrics["bits_per_byte,none"], **common},
                          "perplexity_word", details=details)
        items = [_item(s) for s in result["samples"][name]]
        return Scores({"accuracy": sum(i["correct"] for i in items) / len(items), **common}, "accuracy", items,
                      details)


def _item(sample: dict) -> dict:
    loglikelihoods = [float(r[0]) for r in sample["filtered_resps"]]
    predicted = max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__)
    return {
        "doc_id": sample["doc_id"],
        "doc_hash": sample.get("doc_hash"),
        "target": int(sample["target"]),
        "predicted": predicted,
        "correct": int(sample["acc"]),
        "loglikelihoods": loglikelihoods,
    }


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
            source = local_files("json", data_file(data))
        else:
            hub, fields = HUB_CHOICE_TASKS[name]
            source = hub_source(hub, task.get("mirror"), task.get("revision"))
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
    source = local_files("text", text)
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
