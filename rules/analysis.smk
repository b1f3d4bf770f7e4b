rule analyze:
    input:
        runs=layout.RUNS_CSV,
        item_table=layout.ITEMS_CSV,
        script=os.path.join(R_SCRIPTS, "stats.R"),
        tables=os.path.join(R_SCRIPTS, "tables.R"),
    output:
        stats=layout.STATS_CSV,
    params:
        baseline=BASELINE,
    conda:
        "../envs/quantbench.yaml"
    log:
        f"{layout.LOGS}/analyze.log",
    script:
        "../workflow/scripts/analyze.py"


rule figures:
    input:
        runs=layout.RUNS_CSV,
        script=os.path.join(R_SCRIPTS, "figures.R"),
        tables=os.path.join(R_SCRIPTS, "tables.R"),
    output:
        figures=figure_files(),
    conda:
        "../envs/quantbench.yaml"
    log:
        f"{layout.LOGS}/figures.log",
    script:
        "../workflow/scripts/figures.py"


rule decide:
    # Non-inferiority verdicts at the config's margins (quantbench.verdicts): analysis, so changing a margin
    # reruns this and the report, nothing measured.
    input:
        runs=layout.RUNS_CSV,
        item_table=layout.ITEMS_CSV,
        windows=layout.WINDOWS_CSV,
    output:
        verdicts=layout.VERDICTS_CSV,
    params:
        baseline=BASELINE,
        margins=STUDY.settings.margins,
    conda:
        "../envs/quantbench.yaml"
    log:
        f"{layout.LOGS}/decide.log",
    script:
        "../workflow/scripts/decide.py"
