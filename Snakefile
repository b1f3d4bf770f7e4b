# quantbench: fetch -> quantize -> evaluate / benchmark -> aggregate -> R statistics and figures -> report.
# Every output is cached; rerunning does only what is missing or out of date.
from snakemake.utils import min_version

min_version("9.0")


# A study given with --configfile replaces the default one rather than being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/quantize.smk"
include: "rules/evaluate.smk"
include: "rules/benchmark.smk"
include: "rules/aggregate.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True


onsuccess:
    print_outputs()
