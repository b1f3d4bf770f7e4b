"""Snakemake adapter: run, item and window tables -> non-inferiority verdicts (quantbench.verdicts)."""
from pathlib import Path

import pandas as pd

from quantbench import atomic, joblog, verdicts

joblog.setup(snakemake.log[0])
i = snakemake.input
table = verdicts.verdicts(pd.read_csv(i.runs), pd.read_csv(i.item_table), pd.read_csv(i.windows),
                          snakemake.params.baseline, snakemake.params.margins)
atomic.write_text(Path(snakemake.output.verdicts), table.to_csv(index=False))
print(table.verdict.value_counts().to_string())
