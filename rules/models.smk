rule fetch_model:
    output:
        folder=directory(layout.MODEL),
    params:
        run=fetch_run,
    resources:
        gpu=lambda wc: int(sources.is_random(STUDY.models[wc.model].source)),  # drawn on the GPU; downloads need none
    conda:
        "../envs/quantbench.yaml"
    log:
        f"{layout.LOGS}/fetch_model/{{model}}.log",
    script:
        "../workflow/scripts/fetch_model.py"
