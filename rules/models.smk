rule fetch_model:
    output:
        folder=directory(layout.MODEL),
    params:
        source=lambda wc: STUDY.models[wc.model]["source"],
        device=DEVICE,  # where a random: model's weights are drawn
    resources:
        gpu=lambda wc: int(sources.is_random(STUDY.models[wc.model]["source"])),  # drawn on the GPU; downloads need none
    conda:
        "../envs/quantbench.yaml"
    log:
        f"{layout.LOGS}/fetch_model/{{model}}.log",
    script:
        "../workflow/scripts/fetch_model.py"
