rule benchmark:
    # Every batch size of one variant and repetition in one fresh process (one load, one import of the
    # libraries); each repetition is its own process, so the spread over repetitions includes loading.
    input:
        artifact=layout.ARTIFACT,
    output:
        records=expand(layout.BENCH_RECORD, batch=STUDY.benchmark["batch_sizes"], allow_missing=True),
    params:
        settings=STUDY.benchmark,  # on_error is read by the jobs themselves: changing it reruns nothing measured
        device=DEVICE,
        country=COUNTRY,
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        backend_env
    log:
        f"{layout.LOGS}/benchmark/{{model}}/{{method}}/{{rep}}.log",
    script:
        "../workflow/scripts/benchmark.py"
