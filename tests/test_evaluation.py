"""lm-eval, as wired here, scores our sentiment set exactly as a direct transformers computation."""

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import filled, score
import run_jobs

from quantbench.tasks.data import BUILTIN_CHOICE_TASKS, data_file
from quantbench.tasks.harness import write_task_yaml

TASK = {"type": "lm_eval", "task": "qb_sentiment", "num_fewshot": 0, "limit": 30, "seed": 42, "batch_size": 8}


def direct_choice(model, tok, doc) -> int:
    """Log-likelihood of each answer after the prompt, tokenised the way lm-eval's HFLM does."""
    context = f"{doc['text']}\nQuestion: Is this sentence positive or negative?\nAnswer:"
    scores = []
    for choice in ("negative", "positive"):
        whole = tok(context + " " + choice, add_special_tokens=False).input_ids
        n_context = len(tok(context, add_special_tokens=False).input_ids)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([whole])).logits[0], -1)
        scores.append(sum(logprobs[i - 1, whole[i]].item() for i in range(n_context, len(whole))))
    return max(range(2), key=scores.__getitem__)


def test_lm_eval_accuracy_equals_direct_computation(tiny_runtime):
    model, tok = tiny_runtime.model, tiny_runtime.tokenizer
    scores = score(tiny_runtime, TASK)
    metrics, items = scores.metrics, scores.items

    docs = [json.loads(line) for line in data_file("sentiment.jsonl").read_text().splitlines()]
    expected_ids = sorted(random.Random(42).sample(range(len(docs)), 30))
    assert sorted(i["doc_id"] for i in items) == expected_ids
    for item in items:
        doc = docs[item["doc_id"]]
        assert item["target"] == doc["label"]
        assert item["predicted"] == direct_choice(model, tok, doc), f"item {item['doc_id']}"
    assert metrics["accuracy"] == sum(i["predicted"] == i["target"] for i in items) / 30
    assert metrics["accuracy"] == scores.details["lm_eval_metrics"]["acc,none"]


@pytest.mark.parametrize("name", sorted(BUILTIN_CHOICE_TASKS))
def test_every_builtin_task_runs_with_its_labels(tiny_runtime, name):
    scores = score(tiny_runtime, {**TASK, "task": name, "limit": 8})
    metrics, items = scores.metrics, scores.items
    docs = [json.loads(line) for line in data_file(BUILTIN_CHOICE_TASKS[name][0]).read_text().splitlines()]
    assert len(items) == 8 and metrics["n_items"] == 8
    assert all(i["target"] == docs[i["doc_id"]]["label"] for i in items)
    assert all(len(i["loglikelihoods"]) == 2 for i in items)


def test_hub_task_scores_a_local_mirror_in_the_hub_schema(tiny_runtime, tmp_path):
    """TweetEval sentiment from a parquet file with the hub's columns: three choices, labels kept."""
    mirror = tmp_path / "tweet_eval-sentiment-test.parquet"
    labels = [0, 1, 2, 2, 1, 0, 1, 2, 0, 1]
    pd.DataFrame({"text": [f"tweet number {i} about the weather" for i in range(10)], "label": labels}
                 ).to_parquet(mirror)
    task = {**TASK, "task": "qb_tweeteval_sentiment", "limit": None, "mirror": str(mirror)}
    scores = score(tiny_runtime, task)
    metrics, items = scores.metrics, scores.items
    assert sorted((i["doc_id"], i["target"]) for i in items) == list(enumerate(labels))
    assert all(len(i["loglikelihoods"]) == 3 for i in items)
    assert metrics["n_items"] == 10


def test_hub_task_online_reads_the_pinned_hub_dataset(tmp_path):
    task = {**TASK, "task": "qb_tweeteval_sentiment", "revision": "abc123"}
    config = yaml.safe_load((write_task_yaml(tmp_path, task) / "qb_tweeteval_sentiment.yaml").read_text())
    assert (config["dataset_path"], config["dataset_name"], config["test_split"]) == \
        ("cardiffnlp/tweet_eval", "sentiment", "test")
    assert config["dataset_kwargs"] == {"revision": "abc123"}


def test_word_perplexity_equals_direct_rolling_loglikelihood(tiny_runtime):
    """lm-eval's wikitext protocol over our text: each paragraph scored after the BOS token."""
    import math
    import re

    from datasets import load_dataset

    model, tok = tiny_runtime.model, tiny_runtime.tokenizer
    task = {**TASK, "task": "qb_word_perplexity", "limit": None}
    scores = score(tiny_runtime, task)
    metrics, items = scores.metrics, scores.items

    docs = load_dataset("text", data_files={"test": str(data_file("perplexity.txt"))}, sample_by="paragraph")["test"]
    loglikelihood, words = 0.0, 0
    for doc in docs["text"]:
        ids = [tok.bos_token_id] + tok(doc, add_special_tokens=False).input_ids
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], -1)
        loglikelihood += sum(logprobs[i - 1, ids[i]].item() for i in range(1, len(ids)))
        words += len(re.split(r"\s+", doc))
    assert items == [] and metrics["n_items"] == len(docs) > 10
    assert metrics["perplexity_word"] == pytest.approx(math.exp(-loglikelihood / words), rel=1e-4)


def test_mcnemar_refuses_to_pair_items_whose_content_changed(tiny_model_folder, tmp_path):
    """The mirror is edited between the baseline's and a variant's evaluation: same doc ids, other texts."""
    from quantbench import aggregate, rbridge

    pytest.importorskip("rpy2")
    mirror = tmp_path / "test.parquet"
    texts = [f"tweet number {i} about the weather" for i in range(12)]
    pd.DataFrame({"text": texts, "label": [i % 3 for i in range(12)]}).to_parquet(mirror)
    artifact = tmp_path / "quantized/fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", device="cpu", country="USA",
                  method={"name": "fp32", "backend": "baseline", "params": {"dtype": "float32"}})
    task = filled({**TASK, "task": "qb_tweeteval_sentiment", "limit": None, "mirror": str(mirror)})
    records = []
    for method in ("fp32", "variant"):
        record = tmp_path / f"eval/{method}.json"
        run_jobs.evaluate(artifact, record, record.with_suffix(".items.jsonl"), task=task, device="cpu", country="USA",
                      ids={"model": "tiny", "method": method, "task": "tweets", "rep": 1})
        records.append(record)
        texts[4] = "an edited tweet"  # the mirror changes after the baseline's evaluation
        pd.DataFrame({"text": texts, "label": [i % 3 for i in range(12)]}).to_parquet(mirror)
    runs, items = aggregate.build(aggregate.rows([], records, []),
                                  aggregate.item_rows(r.with_suffix(".items.jsonl") for r in records))
    aggregate.write(runs, items, tmp_path / "runs.csv", tmp_path / "runs.parquet", tmp_path / "items.csv")
    repo = Path(__file__).resolve().parents[1]
    with pytest.raises(Exception, match="task tweets of model tiny: items 4 have other content"):
        rbridge.stats(repo / "analysis/stats.R", tmp_path / "runs.csv", tmp_path / "items.csv", "fp32",
                      tmp_path / "stats.csv")


# An evaluate job in a fresh process, with the energy meter noting at each window's start whether lm-eval is
# imported already: its import (seconds) is the process's cost, not the first task's.
METERED = run_jobs.ON_PATH + """
import json, sys
from pathlib import Path
from quantbench import energy
seen, measure = [], energy.EnergyMeter.measure
energy.EnergyMeter.measure = lambda self: (seen.append("lm_eval" in sys.modules), measure(self))[1]
artifact, out = Path(sys.argv[1]), Path(sys.argv[2])
task = json.loads(sys.argv[3])
run_jobs.evaluate(artifact, out / "r.json", out / "i.jsonl", ids={"model": "tiny", "method": "fp32", "task": "s", "rep": 1},
              task=task, device="cpu", country="USA")
print(json.dumps(seen))
"""


def test_lm_eval_is_imported_before_the_first_task_is_metered(tiny_model_folder, tmp_path):
    import subprocess
    import sys

    from workflow_runner import CLEAN_ENV

    artifact = tmp_path / "fp32"
    run_jobs.quantize(tiny_model_folder, artifact, model="tiny", device="cpu", country="USA",
                  method={"name": "fp32", "backend": "baseline", "params": {"dtype": "float32"}})
    done = subprocess.run([sys.executable, "-c", METERED, str(artifact), str(tmp_path), json.dumps(filled(TASK))],
                          capture_output=True, text=True, env=CLEAN_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True]
