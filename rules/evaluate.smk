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
    # Every task of one variant and repetition in one job: one model load, one import of the libraries.
    # Changing or adding a task reruns the variant's evaluations (each evaluation is minutes at most; a load
    # of the libraries and the model per task cost more than the tasks on a small model).
    input:
        unpack(evaluate_inputs),
    output:
        records=expand(layout.EVAL_RECORD, task=STUDY.tasks, allow_missing=True),
        item_logs=expand(layout.EVAL_ITEMS, task=STUDY.tasks, allow_missing=True),
    params:
        tasks=STUDY.tasks,
        baseline=BASELINE,
        device=DEVICE,
        country=COUNTRY,
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        backend_env
    log:
        f"{layout.LOGS}/evaluate/{{model}}/{{method}}/{{rep}}.log",
    script:
        "../workflow/scripts/evaluate.py"
