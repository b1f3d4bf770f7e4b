rule benchmark:
    input:
        artifact=layout.ARTIFACT,
    output:
        record=layout.BENCH_RECORD,
    params:
        settings=BENCH_SETTINGS,
        device=DEVICE,
        country=COUNTRY,
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        backend_env
    log:
        f"{layout.LOGS}/benchmark/{{model}}/{{method}}/bs{{batch}}/{{rep}}.log",
    script:
        "../workflow/scripts/benchmark.py"
