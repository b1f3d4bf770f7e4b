rule quantize:
    input:
        model=layout.MODEL,
    output:
        artifact=directory(layout.ARTIFACT),
    params:
        run=quantize_run,
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        backend_env
    log:
        f"{layout.LOGS}/quantize/{{model}}/{{method}}.log",
    script:
        "../workflow/scripts/quantize.py"
