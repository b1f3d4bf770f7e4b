rule quantize:
    input:
        model="resources/models/{model}",
    output:
        artifact=directory("results/quantized/{model}/{method}"),
    params:
        method=method_params,
        device=DEVICE,
        country=COUNTRY,
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        backend_env
    log:
        "results/logs/quantize/{model}/{method}.log",
    script:
        "../workflow/scripts/quantize.py"
