"""One plan: the runs of a study are worked out once (quantbench.plan), with no torch, and reach their
scripts whole."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import yaml

from quantbench import config, plan
from workflow_runner import CLEAN_ENV, REPO

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
HEAVY = ("torch", "transformers", "lm_eval")

PARSE_THE_SNAKEFILE = """
import sys
from snakemake.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    assert not done.code, done.code
print("imported:", *(m for m in {heavy!r} if m in sys.modules))
"""


def test_planning_and_parsing_the_snakefile_import_no_torch(tmp_path):
    planned = subprocess.run([sys.executable, "-c", "import sys, quantbench.plan, quantbench.config, quantbench.runtable; "
                              f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"],
                             capture_output=True, text=True, env=CLEAN_ENV, check=True)
    assert planned.stdout.strip() == ""
    parsed = subprocess.run([sys.executable, "-c", PARSE_THE_SNAKEFILE.format(heavy=HEAVY), "-n", "--quiet", "all",
                             "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                             "--configfile", str(REPO / "config" / "config.yaml"), "--cores", "1"],
                            capture_output=True, text=True, env=CLEAN_ENV)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    assert parsed.stdout.strip().splitlines()[-1] == "imported:", parsed.stdout[-500:]


def every_run(study: plan.Study):
    yield from (study.fetch(m) for m in study.models)
    yield from study.quantize_runs()
    yield from (study.prepare(m, t) for m in study.models for t in study.tasks)
    yield from study.evaluate_runs()
    yield from study.benchmark_runs()


def test_a_run_reaches_its_script_whole_and_as_plain_values():
    study = config.load({**DEFAULT, "on_error": "skip"})
    for run in every_run(study):
        params = plan.as_params(run)
        json.dumps(params)  # plain values: Snakemake compares them to decide what to rerun
        assert "on_error" not in params  # changing it reruns nothing measured
        given = {f.name: getattr(run, f.name) for f in dataclasses.fields(run) if f.name == "on_error"}
        assert plan.from_params(type(run), params, **given) == run


def test_changing_on_error_changes_no_rule_params():
    def params(on_error):
        study = config.load({**DEFAULT, "on_error": on_error})
        return [plan.as_params(run) for run in every_run(study)]

    assert params("skip") == params("error")


def test_the_rules_outputs_are_the_plans_paths():
    study = config.load(DEFAULT)
    outputs = study.evaluate_outputs()
    for run in study.evaluate_runs():
        ids = {"model": run.model, "method": run.method, "rep": run.rep}
        assert [p.format(**ids) for p in outputs["records"]] == [str(t.record_file) for t in run.tasks]
        assert [p.format(**ids) for p in outputs["item_logs"]] == [str(t.items_file) for t in run.tasks]
    for run in study.benchmark_runs():
        ids = {"model": run.model, "method": run.method, "rep": run.rep}
        assert [p.format(**ids) for p in study.benchmark_outputs()] == [str(b.record_file) for b in run.batches]
        assert [b.batch_size for b in run.batches] == [1, 8] and all(f"bs{b.batch_size}/" in str(b.record_file)
                                                                   for b in run.batches)


def test_only_the_plan_plans_runs():
    """No other module expands the study into runs or formats a record's path."""
    sources = [*(REPO / "src" / "quantbench").rglob("*.py"), *(REPO / "rules").glob("*.smk"),
               *(REPO / "workflow" / "scripts").glob("*.py"), *(REPO / "scripts").rglob("*.py")]
    planning = [str(p.relative_to(REPO)) for p in sources
                if p.name not in ("plan.py", "layout.py") and any(pattern in p.read_text() for pattern in
                                               ("EVAL_RECORD", "EVAL_ITEMS", "BENCH_RECORD", "PREPARED.format",
                                                "ARTIFACT.format"))]
    assert planning == []
