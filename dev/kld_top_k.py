"""How much of the KL divergence does the top-k reference keep? Full-vocabulary KLD against the stored
top-k one, on the perplexity text, for several k, baseline against each variant given.

    .venv/bin/python dev/kld_top_k.py results/quantized/smollm2-135m/fp32 results/quantized/smollm2-135m/bnb-nf4 ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from quantbench import artifacts
from quantbench.tasks.perplexity import kl_divergence, rest_logprob, scored_logprobs, text_ids

TASK = {"text": "qb_perplexity", "context": 512, "stride": 256, "bos": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("variants", type=Path, nargs="+")
    parser.add_argument("--k", type=int, nargs="+", default=[32, 64, 128, 256, 1024])
    args = parser.parse_args()
    baseline, _ = artifacts.load(args.baseline, "cpu")
    ids = text_ids(baseline.tokenizer, TASK)
    reference = list(scored_logprobs(baseline, ids, TASK["context"], TASK["stride"]))
    mass = {k: torch.cat([p.topk(k, -1).values.exp().sum(-1) for p, _ in reference]).mean().item() for k in args.k}
    print("| variant | full KLD mean | " + " | ".join(f"top-{k} (mass {mass[k]:.3f})" for k in args.k) + " |")
    print("|---|---|" + "---|" * len(args.k))
    for folder in args.variants:
        variant, info = artifacts.load(folder, "cpu")
        full, kept = [], {k: [] for k in args.k}
        for (p, _), (q, _) in zip(reference, scored_logprobs(variant, ids, TASK["context"], TASK["stride"])):
            full.append((p.double().exp() * (p.double() - q.double())).sum(-1))
            for k in args.k:
                top = p.topk(k, -1)
                kept[k].append(kl_divergence({"top_logprobs": top.values, "top_indices": top.indices,
                                              "rest_logprob": rest_logprob(p, top.indices)}, q))
        whole = torch.cat(full).mean().item()
        ratios = " | ".join(f"{torch.cat(kept[k]).mean().item() / whole:.4f}" for k in args.k)
        print(f"| {info['method']} | {whole:.5f} | {ratios} |", flush=True)
        variant.close()


if __name__ == "__main__":
    main()
