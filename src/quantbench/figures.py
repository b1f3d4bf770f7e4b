"""The study's figures (drawn by analysis/figures.R): file stem -> caption shown in the report.

The one list of figures: the Snakemake rules expect exactly these files, the report captions them.
"""

CAPTIONS = {
    "accuracy": "Accuracy of each method on each choice task, by the task's per-item metric (acc or acc_norm), "
                "with its 95% Wilson interval (mean over repetitions).",
    "perplexity": "Perplexity on each text task, lower is better: token-level (sliding window over the "
                  "concatenated text, the papers' convention) and lm-eval's word perplexity (rolling "
                  "log-likelihood per document, normalised by words, comparable across tokenizers).",
    "divergence": "KL divergence of each variant's next-token distributions from the baseline's over the "
                  "perplexity text's scored tokens (mean and 99th percentile, in nats; the baseline's top tokens plus "
                  "the rest, a lower bound of the full divergence) and how often its most likely token is the "
                  "baseline's: finer than accuracy, which 8-bit methods often tie.",
    "memory": "Model size on disk next to peak memory while generating, per batch size (peak process RSS; "
              "peak GPU memory allocated by torch when the runs used a GPU).",
    "speed": "Latency of one generate call, generated tokens per second and decode tokens per second against batch "
             "size (mean over repetitions, whiskers min-max); dashed, in the decode panel: the rate this machine's "
             "memory bandwidth allows each method (batch x bandwidth / bytes of weights read per step).",
    "energy": "Energy and CO2 of evaluating each task, per method. The subtitle names the method that "
              "measured the energy; codecarbon_estimate is an estimate, not a hardware counter.",
    "quantization": "Cost of producing each variant: wall time and energy of the quantize step (for the "
                    "baseline: loading and saving the weights).",
    "pareto": "Trade-off between quality (mean accuracy over choice tasks, or perplexity in a study without "
              "them), evaluation energy summed over tasks, and peak memory (point size), one panel per model. Grey "
              "variants are dominated: another variant of the same model is no worse on all three and better on "
              "at least one.",
}
