rule aggregate:
    input:
        artifacts=artifacts(),
        evals=eval_records(),
        item_logs=eval_item_logs(),
        benches=bench_records(),
    output:
        # update(): Snakemake keeps the previous table and restores it if this job fails or is killed
        runs=update(layout.RUNS_CSV),
        parquet=update(layout.RUNS_PARQUET),
        item_table=update(layout.ITEMS_CSV),
        windows=update(layout.WINDOWS_CSV),
    params:
        skipped=[records.skipped(*run) for run in STUDY.skipped_runs()],
        cost=STUDY.settings.cost,  # prices: changing one re-derives the cost columns, nothing measured
    conda:
        "../envs/quantbench.yaml"
    log:
        f"{layout.LOGS}/aggregate.log",
    script:
        "../workflow/scripts/aggregate.py"
