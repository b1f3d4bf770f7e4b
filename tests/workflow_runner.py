"""Run the real Snakefile on a study in a scratch folder, as a user would from the command line."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# The environment as pytest started, before any in-process R (rpy2 puts R's LD_LIBRARY_PATH into
# os.environ, and a child Python then loads the system libpython's symbols and fails to import ssl).
CLEAN_ENV = dict(os.environ)

# Run-table columns that do not depend on timing: two runs of one study agree on them exactly.
DETERMINISTIC = ["run_id", "kind", "status", "model", "method", "bits", "task", "batch_size", "rep", "accuracy",
                 "n_items", "perplexity_token", "tokens_scored", "size_bytes"]

METHODS = {
    "fp32": {"backend": "baseline", "dtype": "float32"},
    "bnb-int8": {"backend": "bitsandbytes", "bits": 8},
    "bnb-nf4": {"backend": "bitsandbytes", "bits": 4},
    "quanto-int8": {"backend": "quanto", "bits": 8},
}


def write_study(workdir: Path, model: Path) -> Path:
    """The tiny-model study the pipeline tests run: every default method, both task types."""
    config = {
        "baseline": "fp32",
        "models": {"tiny": {"source": f"path:{model}"}},
        "methods": METHODS,
        "tasks": {
            "sentiment": {"type": "lm_eval", "task": "qb_sentiment", "limit": 20, "seed": 1},
            "perplexity": {"type": "perplexity", "text": "qb_perplexity", "context": 128, "stride": 64},
            "word-perplexity": {"type": "lm_eval", "task": "qb_word_perplexity"},
            "generation": {"type": "generation", "prompts": "qb_prompts", "max_new_tokens": 4, "chat_template": False},
        },
        "benchmark": {"batch_sizes": [1, 2], "prompt_tokens": 16, "new_tokens": 4, "warmup": 1, "iterations": 2,
                      "idle_seconds": 0.2, "cooldown_seconds": 0},
        "repetitions": {"evaluate": 1, "benchmark": 2},
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    return workdir


def snakemake_command(workdir: Path, *args: str, gpus: int = 1) -> list[str]:
    """Extra args come first: the options below take lists and would swallow a target after them. `gpus`: how
    many model jobs (each holds the resource `gpu`) Snakemake runs at once."""
    return [sys.executable, "-m", "snakemake", *args, "--snakefile", str(REPO / "Snakefile"), "--directory",
            str(workdir), "--configfile", str(workdir / "study.yaml"), "--cores", "2", "--resources", f"gpu={gpus}"]


def snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 1200,
              gpus: int = 1) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(workdir, *args, gpus=gpus), capture_output=True, text=True,
                          timeout=timeout, env={**CLEAN_ENV, **(env or {})})


def dry_run(workdir: Path, configfile: Path) -> str:
    """What a dry run of `configfile` prints."""
    command = snakemake_command(workdir, "-n")
    command[command.index("--configfile") + 1] = str(configfile)
    out = subprocess.run(command, capture_output=True, text=True, env=CLEAN_ENV, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout + out.stderr


def planned_jobs(workdir: Path, configfile: Path) -> dict[str, int]:
    """Jobs a dry run of `configfile` would run, per rule (from Snakemake's job stats table)."""
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", dry_run(workdir, configfile), re.M)
            if rule != "total"}
