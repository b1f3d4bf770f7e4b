rule train_head:
    input:
        artifact=f"results/quantized/{{model}}/{BASELINE}",
    output:
        head=directory("results/heads/{model}/{task}"),
    params:
        task=lambda wc: STUDY.tasks[wc.task],
        device=DEVICE,
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        method_env(BASELINE)  # it loads the baseline's artifact
    log:
        "results/logs/train_head/{model}/{task}.log",
    script:
        "../workflow/scripts/train_head.py"


rule evaluate:
    input:
        artifact="results/quantized/{model}/{method}",
        reference=generation_reference,
        head=classification_head,
    output:
        record="results/eval/{model}/{method}/{task}/{rep}.json",
        item_log="results/eval/{model}/{method}/{task}/{rep}.items.jsonl",
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
        "results/logs/evaluate/{model}/{method}/{task}/{rep}.log",
    script:
        "../workflow/scripts/evaluate.py"
