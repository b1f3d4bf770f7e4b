"""The whole DAG through Snakemake on the tiny random Llama: every stage, then a no-op rerun."""

import time

import pandas as pd
import pytest
import yaml

from workflow_runner import planned_jobs, snakemake

from quantbench.figures import CAPTIONS


def test_run_table_has_one_row_per_run(study):
    workdir, _ = study
    runs = pd.read_csv(workdir / "results/tables/runs.csv")
    assert len(runs) == 4 + 4 * 4 + 4 * 2 * 2  # quantize + evaluate + benchmark rows
    assert runs.run_id.is_unique and set(runs.status) == {"ok"}
    ev = runs[runs.kind == "evaluate"]
    assert ev[ev.task == "sentiment"].accuracy.between(0, 1).all()
    assert (ev[ev.task == "perplexity"].perplexity_token > 1).all()
    sentiment = ev[ev.task == "sentiment"]
    assert (sentiment.metric == "acc").all() and (sentiment.accuracy_ci_low <= sentiment.accuracy).all()
    assert (sentiment.accuracy <= sentiment.accuracy_ci_high).all() and sentiment.acc_stderr.notna().all()
    divergence = ev[ev.task == "perplexity"].set_index("method")
    assert divergence.loc["fp32", "kld_max"] < 1e-6 and divergence.loc["fp32", "top1_agreement"] == 1
    assert (divergence.drop(index="fp32").kld_mean > 0).all()
    words = ev[ev.task == "word-perplexity"]
    assert (words.perplexity_word > 1).all() and words.perplexity_token.isna().all()
    answers = ev[ev.task == "generation"].set_index("method")
    assert answers.loc["fp32", ["exact_match_vs_baseline"]].isna().all()  # the baseline is the reference
    assert answers.drop(index="fp32").exact_match_vs_baseline.between(0, 1).all()
    assert (answers.perplexity_under_baseline > 1).all() and (answers.output_tokens_mean > 0).all()
    bench = runs[runs.kind == "benchmark"]
    assert "latency_p90_s" not in bench  # two timings give no 90th percentile: the column stays empty, then unwritten
    for column in ("latency_p50_s", "latency_mean_s", "throughput_tokens_per_s", "peak_rss_mb", "energy_j",
                   "co2_kg", "energy_per_token_j", "energy_per_sample_j"):
        assert bench[column].notna().all() and (bench[column] >= 0).all(), column
    assert (bench.net_energy_j < bench.energy_j).all() and (bench.idle_power_w > 0).all()
    assert set(bench.energy_method) == set(bench.co2_method) == {"codecarbon_estimate"}  # no counters on CI
    quant = runs[runs.kind == "quantize"].set_index("method")
    assert quant.loc["fp32", "size_bytes"] > quant.loc["bnb-int8", "size_bytes"] > quant.loc["bnb-nf4", "size_bytes"]
    assert quant.quantize_time_s.notna().all()


def test_statistics_figures_and_report_exist(study):
    workdir, first = study
    stats = pd.read_csv(workdir / "results/analysis/stats.csv")
    assert set(stats.test) >= {"mcnemar_exact", "kruskal_wallis", "cliffs_delta", "dunn", "spearman"}
    for name in CAPTIONS:
        assert (workdir / f"results/figures/{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (workdir / f"results/figures/{name}.pdf").read_bytes()[:5] == b"%PDF-"
    html = (workdir / "results/report.html").read_text()
    assert "quanto-int8" in html and "data:image/png;base64" in html
    assert "results/report.html" in first.stdout + first.stderr  # the run says where its outputs are


def test_every_variant_gets_a_verdict_on_each_measure(study):
    """Accuracy from the items, token perplexity and KLD from the text's windows (aligned with the baseline's),
    decode speed and energy per token from the repetitions: three variants x (1 + 2 + 2 x 2 batch sizes)."""
    workdir, _ = study
    windows = pd.read_csv(workdir / "results/tables/windows.csv")
    runs = pd.read_csv(workdir / "results/tables/runs.csv").set_index("run_id")
    for run_id, of_run in windows.groupby("run_id"):
        assert of_run.tokens.sum() == runs.loc[run_id, "tokens_scored"]
        assert of_run.nll.sum() == pytest.approx(runs.loc[run_id, "nll_sum"])
        assert of_run.kld.sum() / of_run.tokens.sum() == pytest.approx(runs.loc[run_id, "kld_mean"], abs=1e-9)
    verdicts = pd.read_csv(workdir / "results/analysis/verdicts.csv")
    assert len(verdicts) == 3 * (1 + 2 + 2 * 2) and set(verdicts.versus) == {"fp32"}
    assert set(verdicts.verdict) <= {"non-inferior", "inferior", "inconclusive"}
    assert set(verdicts.metric) == {"accuracy", "perplexity_token", "kld_mean", "decode_tokens_per_s",
                                    "energy_per_token_j"}
    assert "<h2>Verdicts</h2>" in (workdir / "results/report.html").read_text()


def test_second_run_does_nothing(study):
    workdir, _ = study
    t0 = time.perf_counter()
    again = snakemake(workdir)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    assert time.perf_counter() - t0 < 10


def test_changes_rerun_only_what_they_affect(study):
    """A new batch size reruns the benchmarks only, a new task the evaluations only (a job measures every batch
    size, or runs every task, of one variant and repetition); the error policy reruns nothing measured."""
    workdir, _ = study
    config = yaml.safe_load((workdir / "study.yaml").read_text())
    config["benchmark"]["batch_sizes"].append(3)
    config["on_error"] = "skip"
    (workdir / "changed.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(workdir, workdir / "changed.yaml")
    assert jobs["benchmark"] == 4 * 2  # methods x repetitions
    assert not {"fetch_model", "quantize", "prepare_task", "evaluate"} & set(jobs)

    config = yaml.safe_load((workdir / "study.yaml").read_text())
    config["tasks"]["sentiment-again"] = config["tasks"]["sentiment"]
    (workdir / "changed.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(workdir, workdir / "changed.yaml")
    assert jobs["evaluate"] == 4  # methods x repetitions
    assert not {"fetch_model", "quantize", "prepare_task", "benchmark"} & set(jobs)


def test_a_second_study_in_the_same_folder_has_its_own_table(study, tmp_path):
    """Study B (two of study A's methods) in A's folder: B's table, statistics, figures and report hold no row of
    the methods B dropped, and A's results stay on disk untouched."""
    import shutil

    workdir = tmp_path / "shared"
    shutil.copytree(study[0], workdir, symlinks=True)
    config = yaml.safe_load((workdir / "study.yaml").read_text())
    config["methods"] = {m: config["methods"][m] for m in ("fp32", "bnb-int8")}
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    kept = {p: p.stat().st_mtime_ns for p in (workdir / "results").glob("*/tiny/**/*") if p.is_file()}
    figure = workdir / "results/figures/accuracy.png"
    drawn = figure.stat().st_mtime_ns

    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-4000:]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # nothing of study A was redone or removed
    runs = pd.read_csv(workdir / "results/tables/runs.csv")
    assert set(runs.method) == {"fp32", "bnb-int8"}
    assert set(pd.read_csv(workdir / "results/tables/items.csv").method) == {"fp32", "bnb-int8"}
    stats = pd.read_csv(workdir / "results/analysis/stats.csv")
    assert set(stats.method.dropna()) <= {"fp32", "bnb-int8", "all"}
    assert figure.stat().st_mtime_ns > drawn  # redrawn from B's table
    html = (workdir / "results/report.html").read_text()
    assert "bnb-int8" in html and "bnb-nf4" not in html and "quanto-int8" not in html
