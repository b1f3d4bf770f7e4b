"""Call the study's R functions (analysis/*.R) through rpy2, writing outputs atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import atomic


def _r():
    os.environ.setdefault("R_HOME", "/usr/lib/R")  # Debian's R when `R` is not on PATH
    import rpy2.robjects as ro

    return ro


def call(script: Path, function: str, *args):
    """Give R the run table's declared columns (quantbench.runtable, as their producers declare them), source
    the table readers beside the script, then the script; call `function`."""
    from . import runtable

    ro = _r()
    ro.r(runtable.r_source())
    ro.r["source"](str(Path(script).with_name("tables.R")))
    ro.r["source"](str(script))
    return ro.r[function](*[str(a) if isinstance(a, Path) else a for a in args])


R_PACKAGES = ["ggplot2", "ragg", "effectsize", "rstatix"]


def versions() -> dict[str, str]:
    """R's version and those of the R packages the analysis uses, for the report's environment."""
    ro = _r()
    found = {"R": ro.r("R.version.string")[0]}
    for package in R_PACKAGES:
        found[package] = ro.r(f'as.character(packageVersion("{package}"))')[0]
    return found


def test_descriptions(script: Path) -> dict[str, str]:
    """What each of the statistics script's tests does (its TEST_DESCRIPTIONS), for the report."""
    descriptions = call(script, "get", "TEST_DESCRIPTIONS")
    return dict(zip(descriptions.names, descriptions))


def stats(script: Path, runs_csv: Path, items_csv: Path, baseline: str, out_csv: Path) -> None:
    with atomic.atomic_path(out_csv) as tmp:
        call(script, "qb_stats", runs_csv, items_csv, baseline, tmp)


def figures(script: Path, runs_csv: Path, outputs: list[Path]) -> None:
    """Render every figure into a scratch folder, then move each expected file into place."""
    with tempfile.TemporaryDirectory() as scratch:
        call(script, "qb_figures", runs_csv, Path(scratch))
        for out in outputs:
            made = Path(scratch) / Path(out).name
            if not made.is_file() or made.stat().st_size == 0:
                raise RuntimeError(f"R did not produce {made.name}")
            with atomic.atomic_path(out) as tmp:
                shutil.copyfile(made, tmp)
