"""What does transformers' generate() cost over the least a greedy decoder must do? Side by side, same prompts.

The hand loop: one forward over the prompts with the KV cache on, then one forward per new token with
that cache, argmax. Both must produce the same tokens; the ratio of their tokens/s (median of
`--repeats` alternating runs) says how much of the benchmark's torch numbers is generate()'s overhead.

    .venv/bin/python dev/anchor_torch.py results/quantized/smollm2-135m/fp32
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from quantbench import artifacts
from quantbench.benchmark import prompt_batch
from quantbench.tasks.data import text_path

from bench_eval_speed import timed  # dev/ is the script's folder


@torch.no_grad()
def hand_loop(model, prompts: torch.Tensor, new_tokens: int) -> torch.Tensor:
    out = model(prompts, use_cache=True, logits_to_keep=1)
    tokens, cache = [out.logits[:, -1].argmax(-1)], out.past_key_values
    for _ in range(new_tokens - 1):
        out = model(tokens[-1][:, None], past_key_values=cache, use_cache=True)
        tokens.append(out.logits[:, -1].argmax(-1))
        cache = out.past_key_values
    return torch.cat([prompts, torch.stack(tokens, 1)], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="a quantized artifact folder of a torch backend")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runtime, info = artifacts.load(args.artifact, "cpu")
    text = text_path("qb_perplexity").read_text()
    print(f"{info['method']} ({info['backend']}), threads {torch.get_num_threads()}, prompt {args.prompt_tokens}, "
          f"{args.new_tokens} generated, median of {args.repeats} alternating runs")
    print("| batch | generate() tokens/s | hand loop tokens/s | generate / hand loop | same tokens |")
    print("|---|---|---|---|---|")
    for batch in args.batches:
        prompts = prompt_batch(runtime, text, args.prompt_tokens, batch)
        generate = lambda: runtime.generate(prompts, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
        loop = lambda: hand_loop(runtime.model, prompts, args.new_tokens)
        generate(), loop()  # warm-up
        theirs, mine = [], []
        for _ in range(args.repeats):
            seconds, generated = timed(generate)
            theirs.append(seconds)
            seconds, looped = timed(loop)
            mine.append(seconds)
        tokens = batch * args.new_tokens
        g, h = tokens / statistics.median(theirs), tokens / statistics.median(mine)
        print(f"| {batch} | {g:.1f} | {h:.1f} | {g / h:.2f} | {torch.equal(generated, looped)} |", flush=True)


if __name__ == "__main__":
    main()
