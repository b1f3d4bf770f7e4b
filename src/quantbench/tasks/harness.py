"""Tasks run by lm-evaluation-harness: choice tasks (accuracy) and rolling-log-likelihood perplexity.

quantbench's own qb_* tasks (shipped sets, hub datasets lm-eval has no task for, the word-perplexity
text) are written as lm-eval task YAML at run time, with absolute data paths (lm-eval resolves
`data_files` against the current directory); any other name is one of lm-eval's own tasks.
"""

from __future__ import annotations

import functools
import importlib
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .base import ACCURACY, N_ITEMS, Inputs, Scores, TaskType, accuracy_with_interval, quality
from .data import (BUILTIN_CHOICE_TASKS, HUB_CHOICE_TASKS, ROLLING_TEXT_TASKS, data_file, hub_source, local_files,
                   mirror_problem, n_lines, sample_indices)


# Per-item metrics of lm-eval's multiple-choice tasks that give each item a right or wrong answer
CHOICE_METRICS = ("acc", "acc_norm")
# lm-eval's aggregate metrics kept as run-table columns, each with its standard error (the rest stay in the record)
LM_EVAL_METRICS = {"acc": "acc (highest log-likelihood)", "acc_stderr": "standard error of acc",
                   "acc_norm": "acc_norm (highest log-likelihood per character)",
                   "acc_norm_stderr": "standard error of acc_norm", "f1": "F1, where the task defines it",
                   "f1_stderr": "bootstrap standard error of f1", "mcc": "Matthews correlation, where the task defines it",
                   "mcc_stderr": "bootstrap standard error of mcc"}
# lm-eval tasks whose papers report the length-normalised accuracy
ACC_NORM_TASKS = ("piqa", "arc_", "hellaswag", "openbookqa")
# lm-eval's own tasks that score rolling log-likelihood (word perplexity) rather than choices
LM_EVAL_ROLLING_TASKS = ("wikitext",)
# lm-eval's stderr: closed form for means; bootstrap draws for f1 and mcc
BOOTSTRAP_ITERS = 1000


def primary_metric(task: dict[str, Any]) -> str:
    """The per-item metric a choice task reports: the task's `metric`, else what its papers report."""
    return task["metric"] or ("acc_norm" if task["task"].startswith(ACC_NORM_TASKS) else "acc")


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
        "metric": {"enum": [*CHOICE_METRICS, None], "default": None,
                   "description": "choice tasks: the per-item metric `accuracy`, the figures and McNemar use; "
                                  "default acc_norm for piqa, arc_*, hellaswag and openbookqa (as their papers "
                                  "report them), acc otherwise"},
    }
    required = ("task",)
    columns = (
        quality("metric", "str", "choice tasks: the per-item lm-eval metric `accuracy` holds (acc, or acc_norm: "
                "log-likelihood divided by the choice's length in characters)"),
        *ACCURACY,
        *[quality(name, "float", f"lm-eval's {what}") for name, what in LM_EVAL_METRICS.items()],
        N_ITEMS,
        quality("lm_eval_task", "str", "the lm-eval task that ran"),
        quality("num_fewshot", "int", "lm-eval few-shot examples per item"),
        quality("perplexity_word", "float", "lm-eval's word perplexity (rolling log-likelihood per document, "
                "normalised by words; comparable across tokenizers)"),
        quality("perplexity_byte", "float", "lm-eval's byte perplexity"),
        quality("bits_per_byte", "float", "lm-eval's bits per byte", "bit"),
    )

    def problem(self, task: dict[str, Any]) -> str | None:
        name = task["task"]
        if name in ROLLING_TEXT_TASKS or name in LM_EVAL_ROLLING_TASKS:
            if task["metric"] is not None:
                return f"metric applies to choice tasks, not to the perplexity task {name!r}"
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

    def describe(self, task: dict[str, Any]) -> str:
        name = task["task"]
        if name in ROLLING_TEXT_TASKS or name in LM_EVAL_ROLLING_TASKS:
            return f"lm-eval {name}: word perplexity (rolling log-likelihood per document)"
        items = f"{task['limit']} items" if task["limit"] else "all items"
        return (f"lm-eval {name}, {items}, {task['num_fewshot']}-shot: {primary_metric(task)} with its 95% Wilson "
                "interval")

    def data_files(self, task: dict[str, Any]) -> list[str]:
        return [task["mirror"]] if task.get("mirror") else []

    def load_libraries(self, task: dict[str, Any]) -> None:
        importlib.import_module("lm_eval")  # seconds: datasets, evaluate's metrics

        if not is_quantbench_task(task["task"]):
            _lm_eval_task_index(task["task"])

    def evaluate(self, runtime, task: dict[str, Any], inputs: Inputs) -> Scores:
        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager, get_task_dict

        name = task["task"]
        with tempfile.TemporaryDirectory() as tmp:
            # include_defaults=False keeps TaskManager at ~0.01 s instead of indexing every task (8-15 s).
            manager = (TaskManager(include_path=str(write_task_yaml(Path(tmp), task)), include_defaults=False)
                       if is_quantbench_task(name) else _lm_eval_task_index(name))
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
                fewshot_random_seed=task["seed"], bootstrap_iters=BOOTSTRAP_ITERS,
            )
        metrics = {k: v for k, v in result["results"][name].items() if isinstance(v, (int, float, str))}
        common = {"n_items": len(indices), "lm_eval_task": name, "num_fewshot": task["num_fewshot"]}
        details = {"lm_eval_metrics": metrics, "bootstrap_iters": BOOTSTRAP_ITERS}
        if output_type == "loglikelihood_rolling":
            return Scores({"perplexity_word": metrics["word_perplexity,none"],
                           "perplexity_byte": metrics["byte_perplexity,none"],
                           "bits_per_byte": metrics["bits_per_byte,none"], **common},
                          "perplexity_word", details=details)
        metric = primary_metric(task)
        if f"{metric},none" not in metrics:
            raise ConfigError(f"lm-eval task {name!r} does not compute {metric!r} (it computes "
                              f"{sorted(k.split(',')[0] for k in metrics)}); set the task's metric")
        items = [_item(s, metric, loaded.doc_to_choice(s["doc"])) for s in result["samples"][name]]
        return Scores({"metric": metric, **accuracy_with_interval([i["correct"] for i in items]),
                       **_lm_eval_columns(metrics), **common}, "accuracy", items, details)


@functools.cache
def _lm_eval_task_index(name: str):
    """lm-eval's index of the task folders whose YAML defines `name`, built once per process: indexing all of
    lm-eval's tasks takes 8-15 s, once for every evaluate job of a study. The whole index where no YAML names it."""
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    defines = re.compile(rf"^task:\s*['\"]?{re.escape(name)}['\"]?\s*$", re.M)
    folders = sorted({str(path.parent) for path in Path(lm_eval.tasks.__file__).parent.rglob("*.yaml")
                      if defines.search(path.read_text(errors="replace"))})
    return TaskManager(include_path=folders, include_defaults=False) if folders else TaskManager()


def _lm_eval_columns(metrics: dict[str, Any]) -> dict[str, float]:
    """lm-eval's values of the declared metrics ('N/A' stderr, where it computed none, left out)."""
    found = {}
    for column in LM_EVAL_METRICS:
        value = metrics.get(f"{column},none")
        if isinstance(value, (int, float)):
            found[column] = float(value)
    return found


def _item(sample: dict, metric: str, choices: list[str]) -> dict:
    """One item: its choices' log-likelihoods, the answer `metric` picks, and both lm-eval flags.

    acc picks the highest log-likelihood; acc_norm divides each by its choice's length in characters,
    as lm-eval does.
    """
    loglikelihoods = [float(r[0]) for r in sample["filtered_resps"]]
    scores = loglikelihoods if metric == "acc" else [ll / len(c) for ll, c in zip(loglikelihoods, choices)]
    return {
        "doc_id": sample["doc_id"],
        "doc_hash": sample.get("doc_hash"),
        "target": int(sample["target"]),
        "predicted": max(range(len(scores)), key=scores.__getitem__),
        "correct": int(sample[metric]),
        **{m: int(sample[m]) for m in CHOICE_METRICS if m in sample},
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
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in CHOICE_METRICS],
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
