rule prepare_task:
    input:
        artifact=layout.ARTIFACT.replace("{method}", BASELINE),  # prepared on the baseline, shared by every variant
    output:
        prepared=directory(layout.PREPARED),
    params:
        task=lambda wc: STUDY.tasks[wc.task],
        device=DEVICE,
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        method_env(BASELINE)  # it loads the baseline's artifact
    log:
        f"{layout.LOGS}/prepare_task/{{model}}/{{task}}.log",
    script:
        "../workflow/scripts/prepare_task.py"


rule evaluate:
    input:
        artifact=layout.ARTIFACT,
        prepared=prepared_input,
        baseline=baseline_input,
        data=task_data,
    output:
        record=layout.EVAL_RECORD,
        item_log=layout.EVAL_ITEMS,
    params:
        task=lambda wc: STUDY.tasks[wc.task],
        device=DEVICE,
        country=COUNTRY,
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        backend_env
    log:
        f"{layout.LOGS}/evaluate/{{model}}/{{method}}/{{task}}/{{rep}}.log",
    script:
        "../workflow/scripts/evaluate.py"
