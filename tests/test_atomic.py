import pytest

from quantbench.atomic import atomic_path, write_json


def test_file_appears_only_on_success(tmp_path):
    target = tmp_path / "out" / "record.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary left behind either
    write_json(target, {"a": 1})
    assert target.read_text().strip().startswith("{")


def test_folder_replaces_empty_placeholder_and_keeps_permissions(tmp_path):
    target = tmp_path / "artifact"
    target.mkdir()  # Snakemake may create the output folder
    with atomic_path(target, directory=True) as tmp:
        (tmp / "weights").write_text("w")
    assert (target / "weights").read_text() == "w"
    assert target.stat().st_mode & 0o777 == 0o755


def test_folder_never_merges_into_existing_content(tmp_path):
    target = tmp_path / "artifact"
    target.mkdir()
    (target / "old").write_text("x")
    with pytest.raises(OSError):
        with atomic_path(target, directory=True) as tmp:
            (tmp / "new").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_temporaries_of_a_killed_writer_are_cleared_on_the_next_write(tmp_path):
    target = tmp_path / "artifact"
    (tmp_path / ".artifact.tmp-dead1").mkdir()
    (tmp_path / ".artifact.tmp-dead1" / "half.safetensors").write_text("x")
    (tmp_path / ".other.tmp-keep").write_text("not ours")
    with atomic_path(target, directory=True) as tmp:
        (tmp / "ok").write_text("y")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-keep", "artifact"]
