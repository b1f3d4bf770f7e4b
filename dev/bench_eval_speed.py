"""How much does lm-eval cost us? Evaluation wall time against the fastest honest hand loop.

The floor is one forward pass per distinct context: for single-token answers the last
position's distribution scores every choice at once (lm-eval does the same). Both sides score the
same items with the same model and must pick the same answers; the ratio and lm-eval's fixed cost
per job (what one `evaluate` job pays beyond the model forward passes) are printed side by side.

    .venv/bin/python dev/bench_eval_speed.py --model resources/models/smollm2-135m
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from quantbench.methods.runtime import TorchRuntime
from quantbench.tasks import Inputs, get_task_type
from quantbench.tasks.data import data_file, sample_indices

PROMPT = "{text}\nQuestion: Is this sentence positive or negative?\nAnswer:"  # qb_sentiment's doc_to_text
CHOICES = (" negative", " positive")  # lm-eval joins context and choice with a space


def hand_loop(model, tok, docs: list[dict], batch_size: int) -> list[int]:
    """Predicted choice per doc: one batched forward per context, answers read at its last token."""
    choice_ids = [tok(c, add_special_tokens=False).input_ids for c in CHOICES]
    if any(len(ids) != 1 for ids in choice_ids):
        raise SystemExit("the hand loop needs single-token answers for this tokenizer")
    choice_ids = [ids[0] for ids in choice_ids]
    predicted = []
    for start in range(0, len(docs), batch_size):
        contexts = [tok(PROMPT.format(text=d["text"]), add_special_tokens=False).input_ids
                    for d in docs[start:start + batch_size]]
        width = max(map(len, contexts))
        ids = torch.tensor([c + [tok.pad_token_id or 0] * (width - len(c)) for c in contexts])
        mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in contexts])
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        last = logits[torch.arange(len(contexts)), torch.tensor([len(c) - 1 for c in contexts])]
        predicted += last[:, choice_ids].argmax(-1).tolist()
    return predicted


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a HF model folder")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(args.model)
    all_docs = [json.loads(line) for line in data_file("sentiment.jsonl").read_text().splitlines()]
    indices = sample_indices(len(all_docs), args.limit, 42)
    docs = [all_docs[i] for i in indices]
    task = {"type": "lm_eval", "task": "qb_sentiment", "num_fewshot": 0, "limit": args.limit, "seed": 42,
            "batch_size": args.batch_size}

    runtime = TorchRuntime(model, tok, "cpu")

    def evaluate(task):
        return get_task_type("lm_eval").evaluate(runtime, task, Inputs())

    first_s, _ = timed(lambda: evaluate({**task, "limit": 1}))  # imports lm-eval: a job pays it
    one_item_s, _ = timed(lambda: evaluate({**task, "limit": 1}))
    one_forward_s, _ = timed(lambda: hand_loop(model, tok, docs[:1], 1))
    lm_eval_s, hand_s = [], []
    for _ in range(args.repeats):  # interleaved, so machine noise hits both sides alike
        seconds, scores = timed(lambda: evaluate(task))
        lm_eval_s.append(seconds)
        seconds, predicted = timed(lambda: hand_loop(model, tok, docs, args.batch_size))
        hand_s.append(seconds)
    by_doc = {i["doc_id"]: i["predicted"] for i in scores.items}
    same = sum(by_doc[i] == p for i, p in zip(indices, predicted))

    lm, hand = statistics.median(lm_eval_s), statistics.median(hand_s)
    print(f"items {len(docs)}, batch {args.batch_size}, threads {args.threads}, repeats {args.repeats}")
    print(f"same predicted answer       {same}/{len(docs)}")
    print(f"lm-eval (median)            {lm:.2f} s   {[round(s, 2) for s in lm_eval_s]}")
    print(f"hand loop (median)          {hand:.2f} s   {[round(s, 2) for s in hand_s]}")
    print(f"ratio lm-eval / hand loop   {lm / hand:.3f}")
    print(f"fixed cost per job, warm    {one_item_s - one_forward_s:.2f} s  (1 item: {one_item_s:.2f} s)")
    print(f"fixed cost per job, cold    {first_s - one_forward_s:.2f} s  (first call, imports included)")
    if same != len(docs):
        raise SystemExit("the two scorings disagree: the comparison is not like for like")


if __name__ == "__main__":
    main()
