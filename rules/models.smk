rule fetch_model:
    output:
        folder=directory(layout.MODEL),
    params:
        source=lambda wc: STUDY.models[wc.model]["source"],
        device=DEVICE,  # where a random: model's weights are drawn
    resources:
        gpu=1,
    conda:
        "../envs/quantbench.yaml"
    log:
        f"{layout.LOGS}/fetch_model/{{model}}.log",
    script:
        "../workflow/scripts/fetch_model.py"
