rule aggregate:
    input:
        artifacts=expand("results/quantized/{model}/{method}", model=STUDY.models, method=STUDY.methods),
        evals=eval_records(),
        benches=bench_records(),
    output:
        runs="results/tables/runs.csv",
        parquet="results/tables/runs.parquet",
        item_table="results/tables/items.csv",
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
