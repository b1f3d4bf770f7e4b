rule fetch_model:
    output:
        folder=directory("resources/models/{model}"),
    params:
        source=lambda wc: STUDY.models[wc.model]["source"],
    conda:
        "../envs/quantbench.yaml"
    log:
        "results/logs/fetch_model/{model}.log",
    script:
        "../workflow/scripts/fetch_model.py"
