"""Calibration windows: reproducible, the requested shape, and never drawn from the evaluation text."""

import re

import pytest
from quantbench import calibration
from quantbench.methods import BACKENDS, with_defaults
from quantbench.tasks.data import data_file


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_shipped_calibration_text_shares_no_passage_with_the_evaluation_text():
    # no 8-word run in common: GPTQ calibrated on qb_perplexity would flatter its own perplexity
    def ngrams(words):
        return {tuple(words[i:i + 8]) for i in range(len(words) - 7)}

    calib, evaluation = _words(data_file("calibration.txt").read_text()), _words(data_file("perplexity.txt").read_text())
    assert len(calib) > 2000
    assert not ngrams(calib) & ngrams(evaluation)


def test_windows_are_seeded_and_shaped_as_configured(tiny_model_folder):
    spec = with_defaults(BACKENDS["gptq"], {"bits": 4, "calibration": {"samples": 5, "sequence_length": 40}})
    spec = spec["calibration"]
    assert spec["text"] == "qb_calibration" and spec["seed"] == 42  # nested defaults filled in
    first, again = calibration.windows(tiny_model_folder, spec), calibration.windows(tiny_model_folder, spec)
    other_seed = calibration.windows(tiny_model_folder, {**spec, "seed": 7})
    assert first == again and first != other_seed
    assert len(first) == 5 and all(len(w["input_ids"]) == 40 == sum(w["attention_mask"]) for w in first)


def test_text_shorter_than_a_window_is_refused(tiny_model_folder, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Too short to calibrate on.")
    spec = {"text": f"path:{short}", "samples": 4, "sequence_length": 64, "seed": 0}
    with pytest.raises(ValueError, match="fewer than sequence_length 64"):
        calibration.windows(tiny_model_folder, spec)


def test_dataset_calibration_goes_through_datasets(tmp_path, tiny_model_folder):
    # the hub route, exercised offline with the packaged `json` builder (a hub id would need the network)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(f'{{"text": "Row {i}: the quick brown fox jumps over the lazy dog again."}}\n'
                            for i in range(40)) + '{"text": "   "}\n')
    spec = {"dataset": {"path": "json", "data_files": str(rows), "split": "train", "revision": "0" * 40,
                        "column": "text"}, "samples": 3, "sequence_length": 16, "seed": 1}
    text = calibration.load_text(spec)
    assert text.startswith("Row 0: the quick") and text.count("Row ") == 40 and not text.endswith("\n\n")
    assert len(calibration.windows(tiny_model_folder, spec)) == 3
