rule report:
    input:
        runs=layout.RUNS_CSV,
        stats=layout.STATS_CSV,
        verdicts=layout.VERDICTS_CSV,
        pngs=expand(layout.FIGURE, name=FIGURES, ext="png"),
        models=expand(layout.MODEL, model=STUDY.models),
        stats_script=os.path.join(R_SCRIPTS, "stats.R"),  # what each of its tests does
    output:
        html=layout.REPORT,
    conda:
        "../envs/quantbench.yaml"
    log:
        f"{layout.LOGS}/report.log",
    script:
        "../workflow/scripts/report.py"
