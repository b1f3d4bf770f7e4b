"""Classification-head tasks: one head fitted on the baseline's hidden states, every variant scored with it."""

import json
import shutil

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import score
from quantbench import artifacts, config
from quantbench.checksums import sha256_file
from quantbench.errors import CorruptArtifact, Unsupported
from quantbench.layout import PREPARED_RECORD
from quantbench.methods.runtime import Runtime
from quantbench.tasks import heads
from quantbench.tasks.data import data_file, sample_indices
import run_jobs
from workflow_runner import METHODS, planned_jobs, snakemake, write_study

TASK = {"type": "classification_head", "data": "qb_sentiment", "train_items": 60, "eval_items": None, "seed": 42,
        "batch_size": 8, "C": 1.0, "max_iter": 1000, "mirror": None, "revision": None}
FP32 = {"name": "fp32", "backend": "baseline", "params": {"dtype": "float32"}}
BNB8 = {"name": "bnb-int8", "backend": "bitsandbytes",
        "params": {"bits": 8, "quant_type": "nf4", "double_quant": False, "compute_dtype": "float32"}}
HEAD_IDS = {"model": "tiny", "task": "head"}


@pytest.fixture(scope="module")
def results(tiny_model_folder, tmp_path_factory):
    """The baseline and bnb-int8 artifacts of the tiny model, and the head fitted on the baseline."""
    root = tmp_path_factory.mktemp("heads")
    for method in (FP32, BNB8):
        run_jobs.quantize(tiny_model_folder, root / "quantized" / method["name"], model="tiny", method=method,
                      device="cpu", country="USA")
    run_jobs.prepare_task(root / "quantized/fp32", root / "head", ids=HEAD_IDS, task=TASK, device="cpu")
    return root


def evaluate(results, method, head, name="run"):
    record = results / "eval" / method / f"{name}.json"
    run_jobs.evaluate(results / "quantized" / method, record, record.with_suffix(".items.jsonl"),
                  ids={"model": "tiny", "method": method, "task": "head", "rep": 1}, task=TASK, device="cpu",
                  country="USA", prepared=head)
    items = [json.loads(line) for line in record.with_suffix(".items.jsonl").read_text().splitlines()]
    return json.loads(record.read_text()), items


def direct_predictions(model, tok, head, doc_ids) -> list[int]:
    """Each text alone through the decoder, its last token's final state through the head's formula."""
    docs = [json.loads(line) for line in data_file("sentiment.jsonl").read_text().splitlines()]
    predicted = []
    for i in doc_ids:
        ids = tok(docs[i]["text"], return_tensors="pt").input_ids
        with torch.no_grad():
            x = model.model(input_ids=ids).last_hidden_state[0, -1].float()
        predicted.append(int((((x - head["mean"]) / head["scale"]) @ head["weight"].T + head["bias"]).argmax()))
    return predicted


def test_head_fits_deterministically_and_the_baseline_scores_as_a_direct_computation(results, tiny_model, tmp_path):
    run_jobs.prepare_task(results / "quantized/fp32", tmp_path / "again", ids=HEAD_IDS, task=TASK, device="cpu")
    assert (tmp_path / "again" / heads.HEAD_FILE).read_bytes() == (results / "head" / heads.HEAD_FILE).read_bytes()

    head_record = json.loads((results / "head" / PREPARED_RECORD).read_text())["details"]
    record, items = evaluate(results, "fp32", results / "head")
    eval_ids = [i["doc_id"] for i in items]
    assert head_record["train_items"] == 60 and len(items) == record["metrics"]["n_items"] == 60
    assert not set(eval_ids) & set(head_record["train_doc_ids"])  # never scored on a training item
    assert sorted(eval_ids + head_record["train_doc_ids"]) == list(range(120))

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    head = load_file(results / "head" / heads.HEAD_FILE)
    assert [i["predicted"] for i in items] == direct_predictions(model, tok, head, eval_ids)
    labels = [json.loads(line)["label"] for line in data_file("sentiment.jsonl").read_text().splitlines()]
    assert [i["target"] for i in items] == [labels[i] for i in eval_ids]
    assert record["metrics"]["accuracy"] == sum(i["predicted"] == i["target"] for i in items) / 60
    train_predicted = direct_predictions(model, tok, head, head_record["train_doc_ids"])
    assert head_record["train_accuracy"] == pytest.approx(
        sum(p == labels[i] for p, i in zip(train_predicted, head_record["train_doc_ids"])) / 60)


def test_quantized_variant_is_scored_with_the_baseline_head_not_a_refitted_one(results, tmp_path):
    head_sha = sha256_file(results / "head" / heads.HEAD_FILE)
    record, items = evaluate(results, "bnb-int8", results / "head")
    assert record["metrics"]["head_sha256"] == head_sha
    # the baseline's items exactly, so McNemar pairs them
    assert [i["doc_id"] for i in items] == [i["doc_id"] for i in heads.labelled_items(TASK, "eval")]
    assert sha256_file(results / "head" / heads.HEAD_FILE) == head_sha  # evaluating never refits it

    # The head's file decides the predictions: a head with its scores negated flips every one of them.
    flipped = tmp_path / "flipped"
    shutil.copytree(results / "head", flipped)
    tensors = load_file(flipped / heads.HEAD_FILE)
    save_file({**tensors, "weight": -tensors["weight"], "bias": -tensors["bias"]}, flipped / heads.HEAD_FILE)
    head_record = json.loads((flipped / PREPARED_RECORD).read_text())
    head_record["files"][heads.HEAD_FILE] = sha256_file(flipped / heads.HEAD_FILE)
    (flipped / PREPARED_RECORD).write_text(json.dumps(head_record))
    _, flipped_items = evaluate(results, "bnb-int8", flipped, "flipped")
    assert [i["predicted"] for i in flipped_items] == [1 - i["predicted"] for i in items]

    # A head altered after it was fitted is refused, not used.
    save_file(tensors, flipped / heads.HEAD_FILE)
    with pytest.raises(CorruptArtifact, match="prepare_task"):
        evaluate(results, "bnb-int8", flipped, "altered")


def test_tweeteval_head_fits_the_train_split_and_scores_the_test_split_of_a_mirror(results, tmp_path):
    """Three labels, read offline from files in the hub's schema (the hub path loads the same fields)."""
    for split, n in (("train", 30), ("test", 12)):
        pd.DataFrame({"text": [f"{split} tweet {i} about the weather" for i in range(n)],
                      "label": [i % 3 for i in range(n)]}).to_parquet(tmp_path / f"{split}.parquet")
    task = {**TASK, "data": "qb_tweeteval_sentiment", "train_items": 24, "eval_items": 9,
            "mirror": {split: str(tmp_path / f"{split}.parquet") for split in ("train", "test")}}
    run_jobs.prepare_task(results / "quantized/fp32", tmp_path / "head", ids=HEAD_IDS, task=task, device="cpu")
    head_record = json.loads((tmp_path / "head" / PREPARED_RECORD).read_text())["details"]
    assert head_record["labels"] == ["negative", "neutral", "positive"] and head_record["train_split"] == "train"
    assert head_record["train_doc_ids"] == sample_indices(30, 24, 42)
    runtime, _ = artifacts.load(results / "quantized/fp32", "cpu")
    scores = score(runtime, task, prepared=tmp_path / "head", prepared_details=run_jobs.read_prepared(tmp_path / "head")
                   ["details"])
    metrics, items = scores.metrics, scores.items
    assert [i["doc_id"] for i in items] == sample_indices(12, 9, 42)  # the lm_eval task's draw of `limit` items
    assert [i["target"] for i in items] == [i % 3 for i in sample_indices(12, 9, 42)]
    assert all(len(i["scores"]) == 3 for i in items) and 0 <= metrics["macro_f1"] <= 1


def test_runtime_without_hidden_states_is_refused_with_the_reason(results, tiny_model):
    class NoHiddenStates(Runtime):  # as llama.cpp's: logits, no hidden states
        forward = generate = generate_batch = lm_eval = vocab_size = None

    runtime = NoHiddenStates(AutoTokenizer.from_pretrained(tiny_model), "cpu")
    details = run_jobs.read_prepared(results / "head")["details"]
    with pytest.raises(Unsupported, match="NoHiddenStates does not expose the model's hidden states"):
        score(runtime, TASK, prepared=results / "head", prepared_details=details)


def bad_tasks(tmp_path):
    mirror = tmp_path / "train.jsonl"
    mirror.write_text('{"text": "fine", "label": 1}\n')
    head = {"type": "classification_head", "data": "qb_sentiment"}
    tweets = {**head, "data": "qb_tweeteval_sentiment"}
    return [
        ({**head, "data": "qb_nli"}, "cannot train a classification head"),
        ({**head, "train_items": 100, "eval_items": 30}, "exceed the 120 items"),
        ({**head, "train_items": 120}, "exceed the 120 items"),
        ({**head, "revision": "abc"}, "for hub data only"),
        ({**tweets, "mirror": {"train": str(mirror), "test": str(tmp_path / "missing.jsonl")}}, "does not exist"),
        ({**tweets, "mirror": {"train": str(mirror)}}, "'test' is a required property"),
        ({**head, "C": 0}, "tasks.bad.C"),
    ]


def test_bad_head_tasks_are_refused_before_any_job(tiny_model, tmp_path):
    base = {"models": {"tiny": {"source": f"path:{tiny_model}"}}, "methods": {"fp32": METHODS["fp32"]}}
    for task, message in bad_tasks(tmp_path):
        with pytest.raises(config.ConfigError, match=message):
            config.load({**base, "tasks": {"bad": task}})
    good = config.load({**base, "tasks": {"ok": {"type": "classification_head", "data": "qb_sentiment"}}})
    assert good.tasks["ok"].params == {**TASK, "type": "classification_head"}


def test_workflow_fits_one_head_per_model_and_scores_every_method_with_it(tiny_model, tmp_path):
    workdir = write_study(tmp_path, tiny_model)
    study = yaml.safe_load((workdir / "study.yaml").read_text())
    study["models"]["tiny2"] = study["models"]["tiny"]
    study["tasks"]["head"] = {"type": "classification_head", "data": "qb_sentiment", "eval_items": 20}
    (workdir / "two-models.yaml").write_text(yaml.safe_dump(study))
    planned = planned_jobs(workdir, workdir / "two-models.yaml")
    prepared_types = {"classification_head", "perplexity"}  # the head, and the divergence reference
    assert {t["type"] for t in study["tasks"].values()} & prepared_types == prepared_types
    # one per model and preparing task, not per method or repetition
    assert planned["prepare_task"] == 2 * sum(t["type"] in prepared_types for t in study["tasks"].values())
    assert planned["evaluate"] == 2 * len(METHODS)  # one job per variant runs all its tasks

    # Run it for real (the baseline only; test_quantized_variant_... covers a variant in-process): the head is
    # fitted by its own job, passed to evaluate, recorded by checksum, and a rerun redoes nothing.
    study.update(models={"tiny": study["models"]["tiny"]}, tasks={"head": study["tasks"]["head"]},
                 methods={"fp32": METHODS["fp32"]})
    (workdir / "study.yaml").write_text(yaml.safe_dump(study))
    target = "results/eval/tiny/fp32/head/1.json"
    run = snakemake(workdir, target)
    assert run.returncode == 0, run.stderr[-4000:]
    head_sha = sha256_file(workdir / "results/prepared/tiny/head" / heads.HEAD_FILE)
    assert json.loads((workdir / target).read_text())["metrics"]["head_sha256"] == head_sha
    assert len((workdir / "results/eval/tiny/fp32/head/1.items.jsonl").read_text().splitlines()) == 20
    again = snakemake(workdir, target)
    assert "Nothing to be done" in again.stdout + again.stderr
