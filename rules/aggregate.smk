rule aggregate:
    input:
        artifacts=expand("results/quantized/{model}/{method}", model=STUDY.models, method=STUDY.methods),
        evals=eval_records(),
        benches=bench_records(),
    output:
        # update(): Snakemake keeps the previous table and restores it if this job fails or is killed
        runs=update("results/tables/runs.csv"),
        parquet=update("results/tables/runs.parquet"),
        item_table=update("results/tables/items.csv"),
    params:
        results=lambda wildcards, output: os.path.dirname(os.path.dirname(output.runs)),
        skipped=STUDY.skipped,
        models=list(STUDY.models),
        backends={name: m["backend"] for name, m in config["methods"].items()},
    conda:
        "../envs/quantbench.yaml"
    log:
        "results/logs/aggregate.log",
    script:
        "../workflow/scripts/aggregate.py"
