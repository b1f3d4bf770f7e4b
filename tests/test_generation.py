"""Free generation: greedy answers, agreement with the baseline's, perplexity under the baseline."""

import math

import pytest
import torch

from conftest import filled

from quantbench.errors import ConfigError
from quantbench.tasks import generation

# what the load measures, which differ between two loads of one variant
MEASURED_AT_LOAD = {"load_time_s", "load_peak_rss_mb", "loaded_rss_mb"}
TASK = filled({"type": "generation", "prompts": "qb_prompts", "max_new_tokens": 6, "chat_template": False})


def test_greedy_answers_to_every_shipped_prompt(tiny_runtime):
    items = generation.generate(tiny_runtime, TASK)
    assert len(items) == 20 and {i["kind"] for i in items} == {"factual", "creative"}
    assert all(1 <= len(i["output_tokens"]) <= 6 for i in items)
    assert items == generation.generate(tiny_runtime, TASK)  # greedy: the same answers again
    again = tiny_runtime.model.generate(torch.tensor([items[0]["prompt_tokens"]]), max_new_tokens=6, do_sample=False)
    assert again[0, len(items[0]["prompt_tokens"]):].tolist() == items[0]["output_tokens"]


def test_prompts_answered_together_give_each_prompt_its_own_answer(tiny_runtime):
    """Left padding within a batch (transformers) changes no answer against one prompt at a time."""
    alone = generation.generate(tiny_runtime, {**TASK, "batch_size": 1})
    together = generation.generate(tiny_runtime, {**TASK, "batch_size": 8})
    assert len({len(i["prompt_tokens"]) for i in alone}) > 1  # prompts of several lengths: padding happens
    assert [i["output_tokens"] for i in together] == [i["output_tokens"] for i in alone]


def test_perplexity_under_a_model_is_of_the_answer_given_its_prompt(tiny_runtime):
    item = {"prompt_tokens": [5, 6, 7], "output_tokens": [8, 9]}
    with torch.no_grad():
        logprobs = torch.log_softmax(tiny_runtime.model(torch.tensor([[5, 6, 7, 8, 9]])).logits[0], -1)
    expected = math.exp(-(logprobs[2, 8] + logprobs[3, 9]).item() / 2)
    assert generation.perplexity_under(tiny_runtime, [item]) == pytest.approx(expected, rel=1e-5)


def test_agreement_counts_identical_answers_and_the_shared_prefix():
    reference = [{"doc_id": "a", "output_tokens": [1, 2, 3, 4]}, {"doc_id": "b", "output_tokens": [5, 6]}]
    same = generation.agreement(reference, reference)
    assert same == {"exact_match_vs_baseline": 1.0, "prefix_agreement_vs_baseline": 1.0}
    drifted = [{"doc_id": "a", "output_tokens": [1, 2, 9, 4]}, {"doc_id": "b", "output_tokens": [7, 6]}]
    assert generation.agreement(drifted, reference) == {"exact_match_vs_baseline": 0.0,
                                                        "prefix_agreement_vs_baseline": (2 / 4 + 0) / 2}


def test_chat_template_requested_for_a_tokenizer_without_one_is_refused(tiny_runtime):
    with pytest.raises(ConfigError, match="chat_template: false"):
        generation.prompt_ids(tiny_runtime.tokenizer, "hello", chat_template=True)


def test_an_evaluate_job_reloads_the_variant_after_a_task_loaded_the_baseline(tiny_model_folder, tmp_path):
    """A comparing task frees the variant to load the baseline; the job loads the variant again for the next
    task, and every task's scores equal those of a job that ran that task alone."""
    import json

    import run_jobs

    baseline, variant = tmp_path / "quantized/fp32", tmp_path / "quantized/bf16"
    for artifact, dtype in ((baseline, "float32"), (variant, "bfloat16")):
        run_jobs.quantize(tiny_model_folder, artifact, model="tiny", device="cpu", country="USA",
                      method={"name": artifact.name, "backend": "baseline", "params": {"dtype": dtype}})
    sentiment = filled({"type": "lm_eval", "task": "qb_sentiment", "limit": 10})
    tasks = {"gen": TASK, "gen-again": TASK, "sentiment": sentiment}
    ids = {"model": "tiny", "rep": 1}

    def runs(method, folder):
        return [run_jobs.task_run({**ids, "method": method}, name, task, folder / f"{name}.json",
                                  folder / f"{name}.items.jsonl",
                                  baseline_items=tmp_path / "fp32" / f"{name}.items.jsonl" if method != "fp32" else None)
                for name, task in tasks.items()]

    run_jobs.evaluate_tasks(baseline, runs("fp32", tmp_path / "fp32"), ids={**ids, "method": "fp32"}, device="cpu",
                        country="USA")
    run_jobs.evaluate_tasks(variant, runs("bf16", tmp_path / "together"), ids={**ids, "method": "bf16"}, device="cpu",
                        country="USA", baseline_artifact=baseline)
    for run in runs("bf16", tmp_path / "alone"):
        run_jobs.evaluate_tasks(variant, [run], ids={**ids, "method": "bf16"}, device="cpu", country="USA",
                            baseline_artifact=baseline)

    def scores(folder, name):
        record = json.loads((tmp_path / folder / f"{name}.json").read_text())
        assert record["status"] == "ok", record.get("error")
        return {k: v for k, v in record["metrics"].items() if k not in MEASURED_AT_LOAD}

    for name in tasks:
        assert scores("together", name) == scores("alone", name)
    assert scores("together", "gen")["perplexity_under_baseline"] > 1
