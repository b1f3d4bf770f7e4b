"""Bad configs fail before any job runs, with a message naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from quantbench import config
from quantbench.config import ConfigError
from quantbench.methods import BACKENDS

DEFAULT = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())


def with_change(change):
    raw = copy.deepcopy(DEFAULT)
    change(raw)
    return raw


def test_default_study_is_valid_and_filled_with_defaults():
    study = config.load(DEFAULT)
    assert set(study.methods) == {"fp32", "bnb-int8", "bnb-nf4", "quanto-int8", "torchao-int8", "hqq-int4",
                                  "gptq-int4", "awq-int4", "gguf-q8_0", "gguf-q4_k_m"}
    assert study.methods["bnb-nf4"].params == {"bits": 4, "quant_type": "nf4", "double_quant": False,
                                                "compute_dtype": "float32"}
    assert study.methods["fp32"].bits == 32
    assert study.tasks["sentiment"].params["num_fewshot"] == 0
    assert study.baseline == "fp32"


def test_the_beyond_studies_run_on_cpu_what_can_and_skip_float8_activations(monkeypatch):
    monkeypatch.setattr(config, "gpu_count", lambda: 0)
    study = config.load(yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "beyond.yaml").read_text()))
    assert {"torchao-w8a8", "torchao-fp8"} <= set(study.methods)
    assert set(study.skipped) == {"torchao-fp8-w8a8"}
    long_context = config.load(yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "config" / "beyond-long-context.yaml").read_text()))
    assert long_context.methods["bnb-int8-kv4"].params["kv_cache"] == {"backend": "quanto", "bits": 4,
                                                                      "residual_length": 128}


BROKEN = {
    "unknown backend": (lambda c: c["methods"].update(x={"backend": "magic"}), "methods.x.backend", "allowed"),
    "unsupported bits": (lambda c: c["methods"]["bnb-int8"].update(bits=3), "methods.bnb-int8.bits", "4, 8"),
    "unknown method key": (lambda c: c["methods"]["fp32"].update(bitz=8), "methods.fp32", "bitz"),
    "wrong type": (lambda c: c["methods"]["quanto-int8"].update(bits="eight"), "methods.quanto-int8.bits", ""),
    "missing source": (lambda c: c["models"]["smollm2-135m"].pop("source"), "models.smollm2-135m", "source"),
    "bad source scheme": (lambda c: c["models"]["smollm2-135m"].update(source="ftp://x"), "models.smollm2-135m.source", ""),
    "missing folder": (lambda c: c["models"]["smollm2-135m"].update(source="path:/nonexistent/m"),
                       "models.smollm2-135m.source", "does not exist"),
    "missing package": (lambda c: c["models"]["smollm2-135m"].update(source="package:no_such_pkg/m.gguf"),
                        "models.smollm2-135m.source", "not installed"),
    "zero batch size": (lambda c: c["benchmark"].update(batch_sizes=[0]), "benchmark.batch_sizes.0", "minimum"),
    "zero repetitions": (lambda c: c["repetitions"].update(benchmark=0), "repetitions.benchmark", "minimum"),
    "unknown builtin task": (lambda c: c["tasks"]["sentiment"].update(task="qb_nope"), "tasks.sentiment", "qb_sentiment"),
    "unknown task type": (lambda c: c["tasks"].update(t={"type": "vibes"}), "tasks.t", ""),
    "stride above context": (lambda c: c["tasks"]["perplexity"].update(stride=1024), "tasks.perplexity", "stride"),
    "missing text": (lambda c: c["tasks"]["perplexity"].update(text="path:/no/such.txt"), "tasks.perplexity", "does not exist"),
    "bad country": (lambda c: c["energy"].update(country_iso_code="sweden"), "energy.country_iso_code", ""),
    "unknown country": (lambda c: c["energy"].update(country_iso_code="XYZ"), "energy.country_iso_code", "SWE"),
    "few-shot above task size": (lambda c: c["tasks"]["sentiment"].update(num_fewshot=500), "tasks.sentiment",
                                 "120 items"),
    "negative few-shot": (lambda c: c["tasks"]["sentiment"].update(num_fewshot=-1), "tasks.sentiment", ""),
    "string repetitions": (lambda c: c["repetitions"].update(evaluate="3"), "repetitions.evaluate", ""),
    "bad model name": (lambda c: c["models"].update({"bad/name": {"source": "hf:a/b@c"}}), "models", "bad/name"),
    "unknown top-level key": (lambda c: c.update(modles={}), "<top level>", "modles"),
    "baseline not a method": (lambda c: c.update(baseline="fp16"), "baseline", "fp32"),
    "bad device": (lambda c: c.update(device="tpu"), "device", "cuda"),
    "no methods": (lambda c: c.update(methods={}), "methods", ""),
    "int4 with activations": (lambda c: c["methods"]["torchao-int8"].update(bits=4, dynamic_activations=True),
                              "methods.torchao-int8", "8-bit options"),
    "mirror on a non-hub task": (lambda c: c["tasks"]["sentiment"].update(mirror="/tmp/x.jsonl"), "tasks.sentiment",
                                 "qb_imdb"),
    "missing mirror file": (lambda c: c["tasks"]["sentiment"].update(task="qb_imdb", mirror="/no/such.parquet"),
                            "tasks.sentiment", "does not exist"),
    "mirror not one split file": (lambda c: c["tasks"]["sentiment"].update(task="qb_imdb", mirror="/data/imdb"),
                                  "tasks.sentiment", ".parquet"),
    "misspelt task key": (lambda c: c["tasks"]["sentiment"].update(limt=5), "tasks.sentiment", "'limt' was unexpected"),
    "unknown task type": (lambda c: c["tasks"]["sentiment"].update(type="lm-eval"), "tasks.sentiment.type",
                          "lm_eval"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_config_names_the_key(name):
    change, key, hint = BROKEN[name]
    with pytest.raises(ConfigError) as err:
        config.load(with_change(change))
    assert f"'{key}" in str(err.value)
    assert hint in str(err.value)


def _gpu_only_backend(monkeypatch):
    monkeypatch.setattr(BACKENDS["bitsandbytes"], "devices", ("cuda",))


def test_method_that_cannot_run_on_the_device_is_refused(monkeypatch):
    _gpu_only_backend(monkeypatch)
    with pytest.raises(ConfigError, match="methods.bnb-int8.*not on device: cpu"):
        config.load(with_change(lambda c: c.update(device="cpu")))


def test_on_unsupported_skip_records_the_reason(monkeypatch):
    _gpu_only_backend(monkeypatch)
    study = config.load(with_change(lambda c: c.update(device="cpu", on_unsupported="skip")))
    assert set(study.skipped) == {"bnb-int8", "bnb-nf4"}
    assert "not on device: cpu" in study.skipped["bnb-nf4"]
    assert set(study.methods) == {"fp32", "quanto-int8", "torchao-int8", "hqq-int4", "gptq-int4", "awq-int4",
                                  "gguf-q8_0", "gguf-q4_k_m"}


def test_cpu_impossible_variant_is_skipped_under_device_auto_without_a_gpu(monkeypatch):
    # torchao int8 runs on CPU; its int4 needs CUDA kernels, which this machine has not
    monkeypatch.setattr(config, "gpu_count", lambda: 0)
    methods = {"ao-int8": {"backend": "torchao", "bits": 8}, "ao-int4": {"backend": "torchao", "bits": 4},
               "ao-w8a8-fp8": {"backend": "torchao", "bits": 8, "float8": True, "dynamic_activations": True}}
    study = config.load(with_change(lambda c: c["methods"].update(methods) or c.update(on_unsupported="skip")))
    assert "ao-int8" in study.methods
    assert "needs CUDA" in study.skipped["ao-int4"] and "not on device: cpu" in study.skipped["ao-int4"]
    assert "compute capability 8.9" in study.skipped["ao-w8a8-fp8"]
    with pytest.raises(ConfigError, match="methods.ao-int4.*needs CUDA"):
        config.load(with_change(lambda c: c["methods"].update(methods)))
    monkeypatch.setattr(config, "gpu_count", lambda: 1)
    assert {"ao-int4", "ao-w8a8-fp8"} <= set(config.load(with_change(lambda c: c["methods"].update(methods))).methods)


def test_missing_backend_package_is_reported(monkeypatch):
    monkeypatch.setattr(BACKENDS["quanto"], "packages", ("definitely-not-installed-pkg",))
    with pytest.raises(ConfigError, match="definitely-not-installed-pkg"):
        config.load(DEFAULT)


def test_duplicate_names_in_the_file_are_refused(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("models: {m: {source: 'hf:a/b@c'}}\nmethods:\n  fp32: {backend: baseline}\n"
                    "  fp32: {backend: quanto, bits: 8}\ntasks: {}\n")
    with pytest.raises(ConfigError, match="'fp32' is given twice \\(line 4\\)"):
        config.check_file(path)


def test_snakemake_refuses_a_bad_config_before_any_job(tmp_path):
    """The real entry point: a clear message naming the key, exit code 1, nothing under results/."""
    from workflow_runner import snakemake

    raw = with_change(lambda c: c["methods"]["bnb-int8"].update(bits=3))
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    done = snakemake(tmp_path)
    assert done.returncode == 1
    assert "config key 'methods.bnb-int8.bits': 3 is not one of [4, 8]" in done.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_quantize_repetitions_draw_other_calibration_samples_for_the_methods_that_sample_one():
    study = config.load({**DEFAULT, "repetitions": {**DEFAULT.get("repetitions", {}), "quantize": 3}})
    repeated = {name: m for name, m in study.methods.items() if m.repeats}
    assert set(repeated) == {"gptq-int4@q2", "gptq-int4@q3", "awq-int4@q2", "awq-int4@q3"}
    for name, method in repeated.items():
        original = study.methods[method.repeats]
        assert method.configured == original.name and method.quantize_rep == int(name[-1])
        assert method.params["calibration"]["seed"] == original.params["calibration"]["seed"] + method.quantize_rep - 1
        assert {**method.params, "calibration": None} == {**original.params, "calibration": None}
    # GGUF's importance matrix reads the text's first chunks, not a random sample: quantized once
    assert not any(m.repeats for m in study.methods.values() if m.backend not in ("gptq", "awq"))
    assert list(config.load(DEFAULT).methods) == [n for n in study.methods if "@" not in n]
