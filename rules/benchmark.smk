rule benchmark:
    input:
        artifact="results/quantized/{model}/{method}",
    output:
        record="results/bench/{model}/{method}/bs{batch}/{rep}.json",
    params:
        settings=STUDY.benchmark,
        device=DEVICE,
        on_error=ON_ERROR,
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
