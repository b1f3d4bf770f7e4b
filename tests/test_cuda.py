"""The CUDA paths: every method with a CUDA path quantized and reloaded in a fresh process on the GPU, and
the tiny-model DAG on `device: cuda` (GPU memory counters, NVML energy). Run with `pytest -m cuda`; without
a GPU every test here is skipped, saying so."""

import pandas as pd
import pytest
import torch
import yaml

from test_methods import (AWQ_INT4, CPU_METHODS, quantize_reload_and_compare, reference_logits,  # noqa: F401
                          tiny_model_64_wide, fp32_logits)
from workflow_runner import snakemake, write_study

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU: torch.cuda.is_available() "
                                 "is False")]

# CPU_METHODS' bands hold on CUDA except fp32's: the GPU sums in another order (the reference is fp32 on
# the CPU). torchao int4 is CUDA-only (tinygemm); its packed weights are int32.
CUDA_METHODS = {
    **CPU_METHODS,
    "fp32": ({"backend": "baseline", "dtype": "float32"}, "F32", (0.0, 1e-5)),
    "torchao-int4": ({"backend": "torchao", "bits": 4, "group_size": 32}, "I32", (0.04, 0.3)),
}


@pytest.mark.parametrize("method", list(CUDA_METHODS))
def test_quantize_save_reload_on_cuda(method, tiny_model_folder, reference_logits, tmp_path):  # noqa: F811
    quantize_reload_and_compare(method, *CUDA_METHODS[method], tiny_model_folder, reference_logits, tmp_path,
                                device="cuda")


def test_awq_quantize_save_reload_on_cuda(tiny_model_64_wide, tmp_path):  # noqa: F811
    quantize_reload_and_compare("awq-int4", *AWQ_INT4, tiny_model_64_wide, fp32_logits(tiny_model_64_wide), tmp_path,
                                device="cuda")


def test_the_dag_on_cuda_fills_gpu_memory_and_nvml_energy(tmp_path, tiny_model):
    """The tiny study on the GPU, to its run table (the GPU box has no R for the statistics): quantbench's own
    task types only (lm-eval's tasks run the same forward passes, and lm-eval is not on the box)."""
    workdir = write_study(tmp_path / "study", tiny_model)
    config = yaml.safe_load((workdir / "study.yaml").read_text())
    config["device"] = "cuda"
    config["tasks"] = {"perplexity": config["tasks"]["perplexity"]}
    config["benchmark"]["batch_sizes"] = [2]
    config["repetitions"]["benchmark"] = 1
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))

    run = snakemake(workdir, "results/tables/runs.csv")
    assert run.returncode == 0, run.stderr[-5000:]
    runs = pd.read_csv(workdir / "results/tables/runs.csv")
    assert set(runs.status) == {"ok"} and set(runs.device) == {"cuda"}
    assert set(runs.kind) == {"quantize", "evaluate", "benchmark"}
    bench = runs[runs.kind == "benchmark"]
    assert len(bench) == len(config["methods"]) and (bench.peak_gpu_allocated_mb > 0).all()
    assert bench.energy_method.str.contains("nvml").all(), set(bench.energy_method)  # zeus_nvml, or sampled
    # a tiny model's window can be shorter than the counter's update period: then no energy, and energy_note
    # says why; a reading is a counter that moved, never 0 J
    measured, notes = bench.energy_per_token_j.notna(), bench.reindex(columns=["energy_note"]).energy_note
    assert bench.energy_per_token_j[measured].gt(0).all() and notes[~measured].notna().all()
    assert bench.gpu_samples.ge(1).all()
