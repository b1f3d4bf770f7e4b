rule evaluate:
    input:
        artifact="results/quantized/{model}/{method}",
        reference=generation_reference,
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
