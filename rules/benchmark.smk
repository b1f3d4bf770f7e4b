rule benchmark:
    input:
        artifact="results/quantized/{model}/{method}",
    output:
        record="results/bench/{model}/{method}/bs{batch}/{rep}.json",
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
        "results/logs/benchmark/{model}/{method}/bs{batch}/{rep}.log",
    script:
        "../workflow/scripts/benchmark.py"
