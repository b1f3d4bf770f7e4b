rule report:
    input:
        runs="results/tables/runs.csv",
        stats="results/analysis/stats.csv",
        pngs=expand("results/figures/{name}.png", name=FIGURES),
        models=expand("resources/models/{model}", model=STUDY.models),
    output:
        html="results/report.html",
    conda:
        "../envs/quantbench.yaml"
    log:
        "results/logs/report.log",
    script:
        "../workflow/scripts/report.py"
