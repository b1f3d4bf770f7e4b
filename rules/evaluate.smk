rule prepare_task:
    input:
        artifact=lambda wc: str(STUDY.prepare(wc.model, wc.task).artifact),  # the baseline's: shared by every variant
    output:
        prepared=directory(layout.PREPARED),
    params:
        run=prepare_run,
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
        **STUDY.evaluate_outputs(),
    params:
        run=evaluate_run,  # on_error is not in it: changing it reruns nothing measured
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        backend_env
    log:
        f"{layout.LOGS}/evaluate/{{model}}/{{method}}/{{rep}}.log",
    script:
        "../workflow/scripts/evaluate.py"
