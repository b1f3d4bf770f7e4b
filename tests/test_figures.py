"""Every figure (analysis/figures.R via rpy2) is a valid file for full, several-model and empty studies;
the report captions each one and shows the statistics and the environment."""

from html import escape as html_escape
from pathlib import Path

import pandas as pd
import pytest
from synthetic_runs import failed_study, study
from test_verdicts import MARGINS

from quantbench import rbridge, report, verdicts
from quantbench.figures import CAPTIONS

pytest.importorskip("rpy2")
REPO = Path(__file__).resolve().parents[1]
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-"}


def draw(runs, folder: Path) -> list[Path]:
    folder.mkdir()
    runs.to_csv(folder / "runs.csv", index=False)
    outputs = [folder / "figures" / f"{name}{ext}" for name in CAPTIONS for ext in MAGIC]
    rbridge.figures(REPO / "analysis" / "figures.R", folder / "runs.csv", outputs)
    return outputs


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """A study of two models with every kind of run, its figures drawn once for the tests below."""
    runs = study()
    runs["host"], runs["device"], runs["torch_version"] = "vm", "cpu", "2.13.0+cpu"
    folder = tmp_path_factory.mktemp("two_models") / "study"
    return folder, draw(runs, folder)


def assert_valid(outputs: list[Path]) -> None:
    for path in outputs:
        data = path.read_bytes()
        assert data.startswith(MAGIC[path.suffix]) and len(data) > 1000, path.name
        if path.suffix == ".pdf":
            assert b"%%EOF" in data[-32:], path.name


def test_every_figure_is_valid_for_two_models(two_models):
    assert_valid(two_models[1])


def test_every_figure_is_valid_when_nothing_succeeded(tmp_path):
    assert_valid(draw(failed_study(), tmp_path / "study"))


def test_pareto_dominance():
    import rpy2.robjects as ro

    def dominated(quality, energy, memory, higher_is_better=True):
        vectors = [ro.FloatVector(v) for v in (quality, energy, memory)]
        return list(rbridge.call(REPO / "analysis" / "figures.R", "dominated", *vectors, higher_is_better))

    # c: as accurate as a but costs more energy; d: as cheap as b but less accurate and larger
    assert dominated([0.7, 0.6, 0.7, 0.5], [10, 5, 12, 5], [100, 100, 100, 200]) == [False, False, True, True]
    assert dominated([0.7, 0.7], [10, 10], [100, 100]) == [False, False]  # ties dominate nothing
    assert dominated([20.0, 25.0], [10, 10], [100, 100], higher_is_better=False) == [False, True]  # perplexity


@pytest.fixture
def capture(tmp_path):
    """The figure code sourced with save_both keeping the last plot as `drawn`, and the two-model study's
    run table as R reads it."""
    import rpy2.robjects as ro

    study().to_csv(tmp_path / "runs.csv", index=False)
    rbridge.call(REPO / "analysis" / "figures.R", "identity", 0)  # sources the figure code
    ro.r('save_both <- function(p, stem, width, height) assign("drawn", p, envir = globalenv())')
    return ro.r["read_run_table"](str(tmp_path / "runs.csv"))


def test_pareto_dominance_is_judged_within_each_model(capture):
    """The small model's variant is no worse than both of the big model's on all three: judged across models it
    would grey out the big model's whole front."""
    import rpy2.robjects as ro

    ro.r('variant_table <- function(runs) { v <- data.frame(model = c("big", "big", "small"), '
         'method = c("fp16", "int4", "int4"), quality = c(0.8, 0.7, 0.9), energy = c(20, 10, 5), '
         'memory = c(400, 200, 100)); attr(v, "quality") <- "accuracy"; attr(v, "memory") <- "model_rss_mb"; v }')
    ro.r["pareto_figure"](capture, "unused")
    assert list(ro.r("as.character(drawn$data$colour)")) == ["big", "big", "small"]


def test_no_figure_mixes_models_in_one_panel(capture):
    """Every figure of a two-model study is faceted by model, so each panel's marks come from one model."""
    import rpy2.robjects as ro

    for name in CAPTIONS:
        ro.r[f"{name}_figure"](capture, "unused")
        layout = ro.r("as.data.frame(ggplot_build(drawn)$layout$layout)")
        assert "model" in list(layout.names), f"{name}: not faceted by model"
        assert set(ro.r("as.character(ggplot_build(drawn)$layout$layout$model)")) == {"m1", "m2"}, name


def test_report_captions_figures_and_shows_statistics_and_environment(two_models):
    folder, outputs = two_models
    (folder / "items.csv").write_text("\n")
    rbridge.stats(REPO / "analysis" / "stats.R", folder / "runs.csv", folder / "items.csv", "fp32",
                  folder / "stats.csv")
    pngs = [p for p in outputs if p.suffix == ".png"]
    descriptions = rbridge.test_descriptions(REPO / "analysis" / "stats.R")
    verdicts.verdicts(pd.read_csv(folder / "runs.csv"), pd.DataFrame(), pd.DataFrame(), "fp32",
                      MARGINS).to_csv(folder / "verdicts.csv", index=False)
    report.render(folder / "runs.csv", folder / "stats.csv", folder / "verdicts.csv", pngs, [], folder / "report.html",
                  rbridge.versions(),
                  descriptions)
    html = (folder / "report.html").read_text()
    assert html.index("<h2>Verdicts</h2>") < html.index("<h2>Quality")  # the report opens with the decisions
    assert "energy per token bs4</th>" in html and "non-inferior: -21.7 % [-24, -19.4], margin 5" in html
    assert html.count("data:image/png;base64") == len(CAPTIONS)
    for caption in CAPTIONS.values():
        assert html_escape(caption) in html
    for test in ("kruskal_wallis", "dunn", "cliffs_delta", "shapiro_wilk", "spearman"):
        assert f"<h3>{test}</h3>" in html and html_escape(descriptions[test]) in html  # described by stats.R
    assert "2.13.0+cpu" in html and "effectsize" in html and "R version 4" in html
    # every table scrolls in its own box: a wide one (the quality table at 1400 px) is never cut at the page edge
    assert html.count("<table") == html.count("<div class=wide><table") > 5


def test_each_perplexity_panel_has_its_own_x_axis(tmp_path):
    """Token and word perplexity come from different tasks: on a shared x axis each panel was half empty."""
    import pandas as pd
    import rpy2.robjects as ro

    runs = study()
    word = runs[(runs.kind == "evaluate") & (runs.task == "perplexity")].copy()
    word = word.assign(task="word-perplexity", perplexity_token=None, perplexity_word=word.perplexity_token * 1.6,
                       primary="perplexity_word", run_id=word.run_id.str.replace("/perplexity/", "/word-perplexity/"))
    pd.concat([runs, word]).to_csv(tmp_path / "runs.csv", index=False)
    rbridge.call(REPO / "analysis" / "figures.R", "identity", 0)  # sources the figure code
    ro.r('save_both <- function(p, stem, width, height) assign("drawn", p, envir = globalenv())')
    ro.r["perplexity_figure"](ro.r["read_run_table"](str(tmp_path / "runs.csv")), "unused")
    layout = ro.r("ggplot_build(drawn)$layout$layout")
    panels, x_scales = ro.r["nrow"](layout)[0], len(set(ro.r["as.integer"](layout.rx2("SCALE_X"))))
    assert panels == 4 and x_scales == 4  # 2 measures x 2 models, each panel its own tasks on x


def test_figures_name_a_method_by_its_effective_bits_where_they_differ(tmp_path):
    """A "4-bit" method that stores 6.2 bits per weight is labelled so; 8.1 for 8 is not worth a label."""
    import rpy2.robjects as ro

    runs = study()
    quantized = runs.kind == "quantize"
    runs.loc[quantized & (runs.method == "nf4"), "effective_bits"] = 6.16
    runs.loc[quantized & (runs.method == "int8"), "effective_bits"] = 8.1
    runs.to_csv(tmp_path / "runs.csv", index=False)
    rbridge.call(REPO / "analysis" / "figures.R", "identity", 0)
    table = ro.r["read_run_table"](str(tmp_path / "runs.csv"))
    labels = ro.r["method_labels"](ro.StrVector(["fp32", "int8", "nf4"]), table)
    assert list(labels) == ["fp32", "int8", "nf4 (6.2 bits)"]
