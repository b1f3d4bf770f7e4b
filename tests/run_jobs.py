"""Run one job the way its workflow script does, from a test's paths and config entries: each helper builds
the typed run (quantbench.plan) a study's plan would give the job, then runs it."""

from pathlib import Path
from typing import Any

from quantbench import plan
from quantbench.jobs import benchmark as benchmark_job
from quantbench.jobs import evaluate as evaluate_job
from quantbench.jobs import quantize as quantize_job
from quantbench.jobs.evaluate import read_prepared  # noqa: F401 (tests read prepared folders through here)
from quantbench.plan import RunId, TaskRun

# The first line of a test's script for a fresh Python process that runs jobs through this module
ON_PATH = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import run_jobs\n"
BENCHMARK_DEFAULTS = {"idle_seconds": 0, "cooldown_seconds": 0, "text": "qb_perplexity"}


def method(entry: dict[str, Any]) -> plan.Method:
    """A method from {"name", "backend", "params"} (params as the config gives them, defaults filled)."""
    from quantbench.methods import get_backend

    backend = get_backend(entry["backend"])
    return plan.Method(entry["name"], entry["backend"], entry["params"], backend.bits(entry["params"]))


def task(name: str, entry: dict[str, Any]) -> plan.Task:
    return plan.Task(name, entry["type"], entry)


def task_run(ids: dict[str, Any], name: str, entry: dict[str, Any], record: Path, items: Path,
             prepared: Path | None = None, baseline_items: Path | None = None) -> TaskRun:
    """One task of an evaluate job; `ids`: model, method, rep."""
    return TaskRun(RunId("evaluate", ids["model"], ids["method"], name, rep=ids["rep"]), task(name, entry),
                   Path(record), Path(items), prepared, baseline_items)


def fetch_model(source: str, out: Path, device: str = "cpu") -> None:
    quantize_job.fetch_model(plan.FetchRun(plan.Model("m", source), Path(out), device))


def quantize(model_dir: Path, out: Path, *, model: str, method: dict[str, Any], device: str = "cpu",
             country: str = "USA", on_error: str = "error") -> None:
    quantize_job.quantize(plan.QuantizeRun(RunId("quantize", model, method["name"]), globals()["method"](method),
                                           Path(model_dir), Path(out), device, country, on_error))


def prepare_task(artifact: Path, out: Path, *, ids: dict[str, Any], task: dict[str, Any], device: str = "cpu",
                 on_error: str = "error") -> None:
    evaluate_job.prepare_task(plan.PrepareRun(RunId("prepare", ids["model"], task=ids["task"]),
                                              globals()["task"](ids["task"], task), Path(artifact), Path(out), device,
                                              on_error))


def evaluate_tasks(artifact: Path, runs: list[TaskRun], *, ids: dict[str, Any], device: str = "cpu",
                   country: str = "USA", on_error: str = "error", baseline_artifact: Path | None = None) -> None:
    """Every task in `runs` (task_run) in one job; `ids`: model, method, rep."""
    evaluate_job.evaluate(plan.EvaluateRun(ids["model"], ids["method"], ids["rep"], Path(artifact), tuple(runs),
                                           baseline_artifact, device, country, on_error))


def evaluate(artifact: Path, out: Path, items_out: Path, *, ids: dict[str, Any], task: dict[str, Any],
             device: str = "cpu", country: str = "USA", on_error: str = "error", prepared: Path | None = None,
             baseline: tuple[Path, Path] | None = None) -> None:
    """One task on its own (`ids` with its task): `baseline`, the baseline's artifact and item log."""
    job_ids = {k: v for k, v in ids.items() if k != "task"}
    run = task_run(job_ids, ids["task"], task, out, items_out, prepared, baseline[1] if baseline else None)
    evaluate_tasks(artifact, [run], ids=job_ids, device=device, country=country, on_error=on_error,
                   baseline_artifact=baseline[0] if baseline else None)


def benchmark_run(artifact: Path, outs: dict[int, Path], *, ids: dict[str, Any], settings: dict[str, Any],
                  device: str = "cpu", country: str = "USA", on_error: str = "error") -> plan.BenchmarkRun:
    """Every batch size in `outs` (batch size -> record, in the order they run); `ids`: model, method, rep."""
    settings = {**BENCHMARK_DEFAULTS, **settings, "batch_sizes": tuple(outs)}
    batches = tuple(plan.BatchRun(RunId("benchmark", ids["model"], ids["method"], batch_size=b, rep=ids["rep"]),
                                  Path(path)) for b, path in outs.items())
    return plan.BenchmarkRun(ids["model"], ids["method"], ids["rep"], Path(artifact), batches,
                             plan.BenchmarkSettings(**settings), device, country, on_error)


def run_benchmark(artifact: Path, outs: dict[int, Path], **run: Any) -> None:
    """benchmark_run's job, run here."""
    benchmark_job.benchmark(benchmark_run(artifact, outs, **run))
