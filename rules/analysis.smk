rule analyze:
    input:
        runs="results/tables/runs.csv",
        item_table="results/tables/items.csv",
        script=os.path.join(R_SCRIPTS, "stats.R"),
    output:
        stats="results/analysis/stats.csv",
    params:
        baseline=BASELINE,
    conda:
        "../envs/quantbench.yaml"
    log:
        "results/logs/analyze.log",
    script:
        "../workflow/scripts/analyze.py"


rule figures:
    input:
        runs="results/tables/runs.csv",
        script=os.path.join(R_SCRIPTS, "figures.R"),
    output:
        figures=figure_files(),
    conda:
        "../envs/quantbench.yaml"
    log:
        "results/logs/figures.log",
    script:
        "../workflow/scripts/figures.py"
