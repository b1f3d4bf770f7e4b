"""Adding a task type is one new module plus its two registry lines: a toy type written that way runs
through the whole tiny DAG (evaluate, aggregate, statistics, figures, report) without touching anything else."""

import filecmp
import shutil
from pathlib import Path

import pandas as pd
import yaml

from workflow_runner import METHODS, snakemake

SRC = Path(__file__).resolve().parents[1] / "src"

# The new task type: how often the model's top next token is the text's next token.
NEXT_TOKEN = '''
"""Toy task type: top-1 next-token accuracy on a text."""

import torch

from .base import ACCURACY, N_ITEMS, Inputs, Scores, TaskType
from .data import file_problem, text_path


class NextToken(TaskType):
    name = "next_token"
    schema = {"text": {"type": "string"}, "tokens": {"type": "integer", "minimum": 2, "default": 64}}
    required = ("text",)
    columns = (ACCURACY[0], N_ITEMS)

    def problem(self, task):
        return file_problem(text_path, task["text"])

    def describe(self, task):
        return f"top-1 next-token accuracy on the first {task['tokens']} tokens of {task['text']}"

    def evaluate(self, runtime, task, inputs: Inputs) -> Scores:
        ids = runtime.tokenizer(text_path(task["text"]).read_text()).input_ids[:task["tokens"]]
        predicted = runtime.forward(torch.tensor([ids]))[0, :-1].argmax(-1).tolist()
        items = [{"doc_id": i, "target": t, "predicted": p, "correct": int(p == t)}
                 for i, (p, t) in enumerate(zip(predicted, ids[1:]))]
        accuracy = sum(i["correct"] for i in items) / len(items)
        return Scores({"accuracy": accuracy, "n_items": len(items)}, "accuracy", items)
'''


def add_task_type(package: Path) -> None:
    (package / "tasks" / "next_token.py").write_text(NEXT_TOKEN)
    registry = package / "tasks" / "__init__.py"
    text = registry.read_text()
    text = text.replace("from .perplexity import Perplexity\n", "from .perplexity import Perplexity\n"
                        "from .next_token import NextToken\n")
    text = text.replace("    ClassificationHead(),\n", "    ClassificationHead(),\n    NextToken(),\n")
    registry.write_text(text)


def changed_files(before: Path, after: Path) -> list[str]:
    def walk(cmp, prefix=""):
        found = [prefix + n for n in cmp.diff_files + cmp.left_only + cmp.right_only]
        for name, sub in cmp.subdirs.items():
            found += walk(sub, f"{prefix}{name}/")
        return found

    return sorted(walk(filecmp.dircmp(before, after, ignore=["__pycache__"])))


def run_with_a_changed_package(tmp_path, change, config: dict) -> tuple[Path, list[str]]:
    """The tiny study `config` run with a copy of the package that `change` edited: its folder and the files
    the edit touched."""
    package = tmp_path / "src" / "quantbench"
    shutil.copytree(SRC / "quantbench", package, ignore=shutil.ignore_patterns("__pycache__"))
    change(package)
    workdir = tmp_path / "study"
    workdir.mkdir()
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workdir, env={"PYTHONPATH": str(package.parent)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return workdir, changed_files(SRC / "quantbench", package)


def test_a_new_task_type_runs_through_the_dag(tiny_model, tmp_path):
    config = {"models": {"tiny": {"source": f"path:{tiny_model}"}},
              "methods": {"fp32": METHODS["fp32"], "bnb-int8": METHODS["bnb-int8"]},
              "tasks": {"next": {"type": "next_token", "text": "qb_perplexity"}},
              "benchmark": {"batch_sizes": [1], "prompt_tokens": 8, "new_tokens": 2, "warmup": 0, "iterations": 1,
                            "idle_seconds": 0, "cooldown_seconds": 0},
              "repetitions": {"evaluate": 1, "benchmark": 1}}
    workdir, changed = run_with_a_changed_package(tmp_path, add_task_type, config)
    assert changed == ["tasks/__init__.py", "tasks/next_token.py"]

    runs = pd.read_csv(workdir / "results/tables/runs.csv").set_index("run_id")
    row = runs.loc["tiny/fp32/next/1"]
    assert row.task_type == "next_token" and row.primary == "accuracy" and row.n_items == 63
    assert 0 <= row.accuracy <= 1
    assert len(pd.read_csv(workdir / "results/tables/items.csv")) == 2 * 63
    stats = pd.read_csv(workdir / "results/analysis/stats.csv")
    assert "next" in set(stats[stats.test == "mcnemar_exact"].group)  # items paired like any choice task
    assert ">next (accuracy, 95% CI)</th>" in (workdir / "results/report.html").read_text()  # in the quality table
