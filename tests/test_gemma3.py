"""Gemma 3's peculiarities against the backends, on a tiny random Gemma 3: one sliding-window and one
full-attention layer whose rotary bases differ (10k and 1M, as Gemma 3's), tied embeddings."""

from pathlib import Path

import pytest
import torch

from quantbench.methods import BACKENDS, with_defaults

import run_jobs

CALIBRATION = {"samples": 4, "sequence_length": 64}


@pytest.fixture(scope="module")
def tiny_gemma3(tmp_path_factory, tiny_model) -> Path:
    """64 wide with 64-wide K/V, so that AWQ's 64-channel clip blocks fit; the tiny Llama's tokenizer."""
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    tok = AutoTokenizer.from_pretrained(tiny_model)
    folder = tmp_path_factory.mktemp("gemma3") / "model"
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=32, layer_types=["sliding_attention",
                                                                                   "full_attention"],
        sliding_window=512, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    out = tmp_path_factory.mktemp("fetched") / "gemma3"
    run_jobs.fetch_model(f"path:{folder}", out)
    return out


@pytest.mark.parametrize("entry", [{"backend": "gptq", "bits": 4, "group_size": 32, "calibration": CALIBRATION},
                                   {"backend": "awq", "group_size": 32, "calibration": CALIBRATION}],
                         ids=["gptq", "awq"])
def test_calibration_runs_each_layer_with_its_own_rotary_embeddings(entry, tiny_gemma3, tmp_path, monkeypatch):
    """GPTQModel 7.6 replayed the full-attention layer with the sliding layer's rotary embeddings (GPTQ) or
    failed asking for the layer type (AWQ); every attention call of the calibration must see its own."""
    from transformers.models.gemma3 import modeling_gemma3

    seen: dict[str, set[float]] = {}
    forward = modeling_gemma3.Gemma3Attention.forward

    def spy(self, hidden_states, position_embeddings, *args, **kwargs):
        # position 50, a frequency where the two bases differ: cos(50 * base^(-1/4)) is 0.28 (10k) or -0.01 (1M)
        seen.setdefault(self.layer_type, set()).add(round(float(position_embeddings[0][0, 50, 4]), 2))
        return forward(self, hidden_states, position_embeddings, *args, **kwargs)

    monkeypatch.setattr(modeling_gemma3.Gemma3Attention, "forward", spy)
    backend = BACKENDS[entry["backend"]]
    run_jobs.quantize(tiny_gemma3, tmp_path / "q", model="gemma3", device="cpu", country="USA",
                  method={"name": backend.name, "backend": backend.name, "params": with_defaults(backend, entry)})
    assert seen == {"sliding_attention": {0.28}, "full_attention": {-0.01}}
