"""Snakemake adapter: tables, statistics and figures -> results/report.html."""
from pathlib import Path

from quantbench import joblog, rbridge, report

joblog.setup(snakemake.log[0])
i = snakemake.input
report.render(Path(i.runs), Path(i.stats), Path(i.verdicts), [Path(p) for p in i.pngs],
              [Path(m) / "manifest.json" for m in i.models], Path(snakemake.output.html),
              rbridge.versions(), rbridge.test_descriptions(Path(i.stats_script)))
