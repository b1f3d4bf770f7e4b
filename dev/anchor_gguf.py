"""How close is quantbench's GGUF benchmark to llama.cpp's own? Prefill and decode tokens/s side by side.

For each GGUF file and batch size, quantbench's runtime (the benchmark's prefill and generate, timed as
the benchmark times them) and llama.cpp's `llama-batched-bench` (built from the same llama.cpp by
quantbench.methods.gguf.tools and run on llama-cpp-python's own libllama) run on the same file with the same
threads, prompt length, tokens generated, context size and batch settings, alternately, `--repeats`
times each; medians are compared.

    .venv/bin/python dev/anchor_gguf.py results/quantized/smollm2-135m/gguf-q8_0 results/quantized/smollm2-135m/gguf-q4_k_m
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import torch

from quantbench.methods.gguf import MODEL_FILE, tools
from quantbench.methods.gguf.runtime import BatchedDecoder, LlamaCppRuntime, amx_cpu, context_size
from quantbench.methods.runtime import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def batched_bench() -> tuple[Path, dict[str, str]]:
    """The tool, built if missing, and the environment that makes it load llama-cpp-python's libraries."""
    import llama_cpp

    tool = tools.ensure("llama-batched-bench") / "llama-batched-bench"
    env = tools.environment()
    lib = Path(llama_cpp.__file__).parent / "lib"
    linked = subprocess.run(["ldd", str(tool)], capture_output=True, text=True, env=env).stdout
    assert f"{lib}/libllama.so" in linked, f"llama-batched-bench does not load llama-cpp-python's libllama:\n{linked}"
    return tool, env


def theirs(tool: Path, env: dict[str, str], gguf: Path, *, batch: int, prompt: int, generated: int,
           threads: int) -> tuple[float, float]:
    """(prefill, decode) tokens/s of one llama-batched-bench run (S_PP and S_TG)."""
    command = [str(tool), "-m", str(gguf), "-c", str(context_size(batch, prompt + generated)),
               "-b", str(BatchedDecoder.N_BATCH), "-ub", str(BatchedDecoder.N_UBATCH), "-npp", str(prompt),
               "-ntg", str(generated - 1), "-npl", str(batch), "-t", str(threads), "-tb", str(threads),
               "--output-format", "jsonl", *(["--no-repack"] if amx_cpu() else [])]  # as the runtime loads
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    row = json.loads(next(line for line in out.stdout.splitlines() + out.stderr.splitlines()
                          if line.startswith("{")))
    return row["speed_pp"], row["speed_tg"]


def ours(runtime: LlamaCppRuntime, prompts: torch.Tensor, generated: int) -> tuple[float, float]:
    """(prefill, decode) tokens/s as the benchmark measures them: decode = generate - prefill."""
    t0 = time.perf_counter()
    runtime.prefill(prompts)
    prefill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    runtime.generate(prompts, max_new_tokens=generated, min_new_tokens=generated)
    generate_s = time.perf_counter() - t0
    rows, length = prompts.shape
    return rows * length / prefill_s, rows * (generated - 1) / (generate_s - prefill_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path, help="GGUF artifact folders")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tool, env = batched_bench()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, prompt {args.prompt_tokens} tokens, {args.new_tokens} generated, "
          f"median of {args.repeats} alternating runs")
    print("| file | batch | prefill ours | prefill llama.cpp | ratio | decode ours | decode llama.cpp | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for artifact in args.artifacts:
        runtime = LlamaCppRuntime(artifact / MODEL_FILE, load_tokenizer(artifact), "cpu", n_ctx=2048,
                                  threads=args.threads)
        text = (ROOT / "src" / "quantbench" / "data" / "perplexity.txt").read_text()
        ids = runtime.tokenizer(text, add_special_tokens=False).input_ids
        for batch in args.batches:
            prompts = torch.tensor([ids[i * 100:i * 100 + args.prompt_tokens] for i in range(batch)])
            ours(runtime, prompts, args.new_tokens)  # warm-up, as llama-batched-bench warms up
            mine, tool_runs = [], []
            for _ in range(args.repeats):
                mine.append(ours(runtime, prompts, args.new_tokens))
                tool_runs.append(theirs(tool, env, artifact / MODEL_FILE, batch=batch, prompt=args.prompt_tokens,
                                        generated=args.new_tokens, threads=args.threads))
            pp, tg = (statistics.median(r[i] for r in mine) for i in (0, 1))
            tpp, ttg = (statistics.median(r[i] for r in tool_runs) for i in (0, 1))
            print(f"| {artifact.name} | {batch} | {pp:.1f} | {tpp:.1f} | {pp / tpp:.2f} | {tg:.1f} | {ttg:.1f} "
                  f"| {tg / ttg:.2f} |", flush=True)
        runtime.close()


if __name__ == "__main__":
    main()
