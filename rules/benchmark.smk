rule benchmark:
    # Every batch size of one variant and repetition in one fresh process (one load, one import of the
    # libraries); each repetition is its own process, so the spread over repetitions includes loading.
    input:
        artifact=layout.ARTIFACT,
        text=STUDY.benchmark_text_files(),  # a path: text, so that editing it reruns the benchmarks
    output:
        records=STUDY.benchmark_outputs(),
    params:
        run=benchmark_run,  # on_error is not in it: changing it reruns nothing measured
    threads: TORCH_THREADS
    resources:
        gpu=1,
    conda:
        backend_env
    log:
        f"{layout.LOGS}/benchmark/{{model}}/{{method}}/{{rep}}.log",
    script:
        "../workflow/scripts/benchmark.py"
