"""The kit's study: a random-weight model (nothing to download), the fp16 baseline and twelve quantization
methods (one with a 4-bit KV cache), benchmarked at batch 1, 8 and 32, three repetitions each; no quality
tasks (random weights).

usage: study.py config --device cuda|cpu --model SOURCE   prints the study's YAML
       study.py targets STUDY_YAML                         prints the benchmark records of the methods that run
"""

import argparse
import sys

import yaml

from quantbench import config as study_config

CALIBRATION = {"samples": 32, "sequence_length": 256}  # random token ids: the cost is what is measured
METHODS = {
    "fp16": {"backend": "baseline", "dtype": "float16"},
    "bnb-int8": {"backend": "bitsandbytes", "bits": 8, "compute_dtype": "float16"},
    "bnb-nf4": {"backend": "bitsandbytes", "bits": 4, "quant_type": "nf4", "compute_dtype": "float16"},
    "quanto-int8": {"backend": "quanto", "bits": 8},
    "torchao-int8": {"backend": "torchao", "bits": 8},
    "torchao-int4": {"backend": "torchao", "bits": 4, "group_size": 64},
    "hqq-int4": {"backend": "hqq", "bits": 4, "group_size": 64, "compute_dtype": "bfloat16"},
    "gptq-int4": {"backend": "gptq", "bits": 4, "group_size": 64, "calibration": CALIBRATION},
    "awq-int4": {"backend": "awq", "group_size": 64, "calibration": {**CALIBRATION, "samples": 16}},
    "autoround-int4": {"backend": "autoround", "bits": 4, "group_size": 64, "iters": 50, "calibration": CALIBRATION},
    "torchao-w8a8": {"backend": "torchao", "bits": 8, "dynamic_activations": True},
    "torchao-fp8-w8a8": {"backend": "torchao", "bits": 8, "float8": True, "dynamic_activations": True},
    "bnb-int8-kv4": {"backend": "bitsandbytes", "bits": 8, "compute_dtype": "float16", "kv_cache": {"bits": 4}},
}
# One call on the box: each benchmark job (a method and repetition, every batch size) is a fresh process
# (imports, model load, idle power), so the number of jobs, not the generation, sets the time. The CPU
# rehearsal runs fewer on a tiny model.
BENCHMARK = {
    "cuda": {"batch_sizes": [32, 8, 1], "prompt_tokens": 64, "new_tokens": 32, "warmup": 1, "iterations": 3,
             "idle_seconds": 1, "cooldown_seconds": 0},
    "cpu": {"batch_sizes": [2], "prompt_tokens": 16, "new_tokens": 4, "warmup": 1, "iterations": 2,
            "idle_seconds": 0.2, "cooldown_seconds": 0},
}


def config(device: str, model: str) -> dict:
    return {
        "device": device,
        "on_unsupported": "skip",  # torchao int4 on the CPU rehearsal: a skipped row that says why
        "on_error": "skip",  # one method failing on the box leaves a failed row, not an unfinished study
        "baseline": "fp16",
        "models": {model.split(":", 1)[1].rsplit("/", 1)[-1].removesuffix(".json"): {"source": model}},
        "methods": METHODS,
        "benchmark": BENCHMARK[device],
        "repetitions": {"benchmark": 3 if device == "cuda" else 2},
        "energy": {"country_iso_code": "USA"},
    }


def targets(raw: dict) -> list[str]:
    """The benchmark records of the methods that can run here (not those skipped)."""
    return [str(batch.record_file) for run in study_config.load(raw).benchmark_runs() for batch in run.batches]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("config")
    write.add_argument("--device", choices=sorted(BENCHMARK), required=True)
    write.add_argument("--model", required=True)
    commands.add_parser("targets").add_argument("study")
    args = parser.parse_args(argv)
    if args.command == "config":
        print(yaml.safe_dump(config(args.device, args.model), sort_keys=False), end="")
    else:
        with open(args.study) as f:
            print("\n".join(targets(yaml.safe_load(f))))


if __name__ == "__main__":
    main(sys.argv[1:])
