"""The five reference studies (config/paper-*.yaml) run end to end on CPU against the hub stand-in
(tests/local_hub.py): each config's models fetched by their hf: ids, its lm-eval tasks reading their hub
datasets, every method, task, model, batch size and statistic, through run table, statistics, figures and
report. What a CPU test must change is in OVERRIDES and PER_STUDY below, nowhere else."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_runner import REPO, snakemake

PAPERS = sorted((REPO / "config").glob("paper-*.yaml"))

# Fewer items, tokens and repetitions than a GPU study (its sizes would take days on 2 cores); no method, task,
# model, batch size or statistic is dropped. A method the CPU cannot run is recorded as skipped, as a user's
# GPU-less run would record it.
OVERRIDES = {
    "device": "cpu",
    "threads": 1,  # with PARALLEL_JOBS: a stand-in computes for milliseconds, a job's time is its imports
    "on_unsupported": "skip",
    "benchmark": {"prompt_tokens": 16, "new_tokens": 4, "warmup": 1, "iterations": 3, "idle_seconds": 0,
                  "cooldown_seconds": 0},
    "repetitions": {"evaluate": 1, "benchmark": 2},
}
TASK_OVERRIDES = {
    "lm_eval": {"limit": 6},
    "generation": {"max_new_tokens": 6},
    "classification_head": {"train_items": 24, "eval_items": 6},
}
ONE_BENCHMARK = {"benchmark": 1}  # tests over repetitions run in the three studies below that repeat them
PER_STUDY = {
    # ARC's 25-shot prompts are ~1,000 tokens each, 4 choices per item
    "paper-awq-w4a16": {"tasks": {"arc": {"limit": 2}}, "repetitions": ONE_BENCHMARK},
    "paper-methods": {"tasks": {"arc": {"limit": 2}}, "repetitions": ONE_BENCHMARK},
    "paper-energy": {"repetitions": ONE_BENCHMARK},
    # paper-bnb-piqa (three models) keeps two benchmark repetitions: statistics per model over them. One study
    # repeats evaluations too: Kruskal-Wallis and Cliff's delta over evaluation repetitions, and Shapiro-Wilk
    # (n >= 3) over benchmark repetitions, run end to end
    "paper-quanto-tweeteval": {"repetitions": {"evaluate": 2, "benchmark": 3}},
}
PARALLEL_JOBS = 2  # model jobs at once, one per core (torch, transformers and the torchao it imports: ~10 s a job)
# Variants that cannot run here ("model/method", or a method for every model): their status and what their
# quantize row must say. The study records them and goes on (on_error: skip), as a user's run would.
NOT_RUN = {"paper-methods": {"torchao-fp8": ("skipped", "float8"),  # on CPU
                             # anywhere: GPT-2's Conv1D projections
                             "gpt2/awq-4": ("failed", "cannot quantize gpt2"),
                             "gpt2/quanto-int8": ("failed", "quantizes torch.nn.Linear layers")}}
# A pinned revision: the older of the stand-in's two commits of this model (the study's default is the newest)
PINNED = ("paper-bnb-piqa", "llama-3.2-1b")


def merged(base: dict, override: dict) -> dict:
    return {k: merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
            for k, v in {**base, **override}.items()}


def cpu_study(path: Path, hub) -> dict:
    """The paper config with the overrides above."""
    study = merged(yaml.safe_load(path.read_text()), OVERRIDES)
    for task in study["tasks"].values():
        task.update(TASK_OVERRIDES.get(task["type"], {}))
    study = merged(study, PER_STUDY.get(path.stem, {}))
    if path.stem == PINNED[0]:
        model = study["models"][PINNED[1]]
        model["source"] += f"@{hub.commits[model['source'].removeprefix('hf:')][0]}"
    return study


@pytest.fixture(scope="module", params=PAPERS, ids=lambda p: p.stem)
def paper_run(request, local_hub, tmp_path_factory):
    """The paper config run once: (name, the study as run, its workdir, its run table, its statistics)."""
    path = request.param
    study = cpu_study(path, local_hub)
    workdir = tmp_path_factory.mktemp(path.stem)
    (workdir / "study.yaml").write_text(yaml.safe_dump(study))
    started = time.perf_counter()
    out = snakemake(workdir, env=local_hub.env, timeout=2400, gpus=PARALLEL_JOBS)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    runs = pd.read_csv(workdir / "results/tables/runs.csv")
    print(f"\n{path.stem}: {len(runs)} runs ({(runs.status != 'ok').sum()} not ok) in "
          f"{time.perf_counter() - started:.0f} s")
    return path.stem, study, workdir, runs, pd.read_csv(workdir / "results/analysis/stats.csv")


def variant(row) -> str:
    return f"{row.model}/{row.method}"


def test_every_planned_run_is_in_the_run_table(paper_run):
    name, study, _, runs, _ = paper_run
    not_run = NOT_RUN.get(name, {})
    skipped = [m for m, (status, _) in not_run.items() if status == "skipped"]  # planned out at config time
    methods = [m for m in study["methods"] if m not in skipped]
    reps = study["repetitions"]
    expected = {
        *(f"{model}/{method}/quantize" for model in study["models"] for method in study["methods"]),
        *(f"{model}/{method}/{task}/{rep}" for model, method, task, rep in itertools.product(
            study["models"], methods, study["tasks"], range(1, reps["evaluate"] + 1))),
        *(f"{model}/{method}/bs{batch}/{rep}" for model, method, batch, rep in itertools.product(
            study["models"], methods, study["benchmark"]["batch_sizes"], range(1, reps["benchmark"] + 1))),
    }
    assert set(runs.run_id[runs.kind != "prepare"]) == expected
    problems = runs[runs.status != "ok"]
    keys = {next((k for k in (variant(row), row.method) if k in not_run), None) for row in problems.itertuples()}
    assert keys == set(not_run), problems[["run_id", "status", "error", "reason"]].to_string()
    for row in problems.itertuples():
        status, why = not_run.get(variant(row)) or not_run[row.method]
        assert row.status == status, row.run_id
        if row.kind == "quantize":
            assert why in str(row.reason if status == "skipped" else row.error), row


def test_every_task_scored_what_its_config_asks(paper_run):
    _, study, _, runs, _ = paper_run
    evals = runs[(runs.kind == "evaluate") & (runs.status == "ok")]
    for name, task in study["tasks"].items():
        rows = evals[evals.task == name]
        if task["type"] == "lm_eval" and task["task"] != "wikitext":
            assert (rows.n_items == task["limit"]).all(), (name, rows.n_items.tolist())
            assert rows.accuracy.between(0, 1).all()
        elif task["type"] == "lm_eval":
            assert (rows.perplexity_word > 1).all()


def test_each_model_is_compared_with_its_own_baseline(paper_run):
    """Statistics per model: McNemar pairs one model's items with its own baseline's; where benchmarks repeat,
    a Kruskal-Wallis test counts the model's own runs and Cliff's delta recomputed from them matches."""
    _, study, _, runs, stats = paper_run
    evals = runs[(runs.kind == "evaluate") & (runs.status == "ok")]
    mcnemar = stats[stats.test == "mcnemar_exact"]
    assert set(mcnemar.model) == set(study["models"])
    for row in mcnemar.itertuples():
        assert row.n == evals[(evals.model == row.model) & (evals.task == row.group)].n_items.iloc[0]
    if study["repetitions"]["benchmark"] < 2:
        return
    bench = runs[(runs.kind == "benchmark") & (runs.status == "ok")]
    kruskal = stats[(stats.test == "kruskal_wallis") & stats.group.str.startswith("bs")]
    assert set(kruskal.model) == set(study["models"])
    for row in kruskal.itertuples():
        own = bench[(bench.model == row.model) & (bench.batch_size == int(row.group[2:]))]
        assert row.n == own[row.metric].notna().sum()
    cliff = stats[(stats.test == "cliffs_delta") & (stats.metric == "throughput_tokens_per_s")]
    assert set(cliff.model) == set(study["models"])
    for row in cliff.itertuples():
        own = bench[(bench.model == row.model) & (bench.batch_size == int(row.group[2:]))]
        x, y = (own[own.method == m].throughput_tokens_per_s for m in (row.method, row.versus))
        delta = sum((a > b) - (a < b) for a in x for b in y) / (len(x) * len(y))
        assert row.effect == pytest.approx(delta)


def test_the_report_shows_every_model_and_method(paper_run):
    _, study, workdir, _, _ = paper_run
    html = (workdir / "results/report.html").read_text()
    assert html.count("data:image/png;base64") >= 8
    for name in [*study["models"], *study["methods"]]:
        assert name in html


def test_a_pinned_revision_fetches_the_pinned_commit(paper_run, local_hub):
    name, study, workdir, _, _ = paper_run
    if name != PINNED[0]:
        pytest.skip("the revision is pinned in one study")
    repo, commit = study["models"][PINNED[1]]["source"].removeprefix("hf:").split("@")
    assert commit == local_hub.commits[repo][0] != local_hub.commits[repo][-1]
    fetched = workdir / "resources/models" / PINNED[1]
    assert json.loads((fetched / "manifest.json").read_text())["commit"] == commit
    assert (fetched / "model.safetensors").read_bytes() == local_hub.file(repo, commit, "model.safetensors")
