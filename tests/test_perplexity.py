import math

import pytest
import torch

from quantbench.tasks.data import data_file
from quantbench.tasks.perplexity import token_perplexity


@pytest.fixture(scope="module")
def model_and_ids(tiny_runtime):
    tok = tiny_runtime.tokenizer
    text = data_file("perplexity.txt").read_text()[:1500]
    return tiny_runtime, tok(text, add_special_tokens=False).input_ids


def test_full_context_equals_transformers_loss(model_and_ids):
    runtime, ids = model_and_ids
    result = token_perplexity(runtime, ids, context=1024, stride=1024)
    ids_t = torch.tensor([ids])
    with torch.no_grad():
        expected = math.exp(runtime.model(ids_t, labels=ids_t).loss.item())
    assert result["tokens_scored"] == len(ids) - 1
    assert result["perplexity_token"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("context,stride", [(64, 32), (100, 7), (50, 49)])
def test_every_token_scored_exactly_once(model_and_ids, context, stride):
    runtime, ids = model_and_ids
    assert token_perplexity(runtime, ids, context, stride)["tokens_scored"] == len(ids) - 1


def test_disjoint_windows_match_a_hand_loop(model_and_ids):
    runtime, ids = model_and_ids
    nll, n = 0.0, 0
    with torch.no_grad():
        for begin in range(0, len(ids), 64):
            window = torch.tensor([ids[begin:begin + 64]])
            if window.shape[1] < 2:
                continue
            lp = torch.log_softmax(runtime.model(window).logits[0, :-1], -1)
            nll -= lp.gather(1, window[0, 1:, None]).sum().item()
            n += window.shape[1] - 1
    result = token_perplexity(runtime, ids, 64, 64)
    assert result["tokens_scored"] == n
    assert result["perplexity_token"] == pytest.approx(math.exp(nll / n), rel=1e-5)


def test_bos_in_every_window_scores_every_token_as_a_hand_loop_does(model_and_ids):
    """bos: window puts BOS before each window's context - 1 text tokens; every text token is scored once."""
    runtime, ids = model_and_ids
    bos, context, stride = runtime.tokenizer.bos_token_id, 64, 32
    nll, n, end_prev = 0.0, 0, 0
    with torch.no_grad():
        for begin in range(0, len(ids), stride):
            end = min(begin + context - 1, len(ids))
            window = torch.tensor([[bos, *ids[begin:end]]])
            lp = torch.log_softmax(runtime.model(window).logits[0, :-1], -1)
            fresh = end - end_prev
            nll -= lp[-fresh:].gather(1, window[0, -fresh:, None]).sum().item()
            n, end_prev = n + fresh, end
            if end == len(ids):
                break
    result = token_perplexity(runtime, ids, context, stride, bos=bos)
    assert result["tokens_scored"] == n == len(ids)
    assert result["perplexity_token"] == pytest.approx(math.exp(nll / n), rel=1e-5)


def test_window_bos_only_where_the_tokenizer_puts_bos_before_a_text():
    from types import SimpleNamespace

    from quantbench.tasks.perplexity import window_bos

    class Tok:
        def __init__(self, adds_bos):
            self.bos_token_id, self.adds_bos = 2, adds_bos

        def __call__(self, text):
            return SimpleNamespace(input_ids=[2, 7] if self.adds_bos else [7])

    assert window_bos(Tok(True), {"bos": "window"}) == 2  # Gemma's tokenizer
    assert window_bos(Tok(False), {"bos": "window"}) is None  # SmolLM2's
    assert window_bos(Tok(True), {"bos": True}) is None  # BOS once, at the start of the text (text_ids)
