"""Atomic writes: a killed job leaves a temporary name behind, never a file a later run trusts."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _tmp_sibling(target: Path, directory: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    for stale in target.parent.glob(prefix + "*"):  # left by a killed job writing this same target
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    fd, name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `target`; rename it onto `target` only if the block succeeds.

    Works for files and folders. An existing empty folder at `target` (Snakemake may create one)
    is replaced; a non-empty one is an error rather than silently merged.
    """
    target = Path(target)
    tmp = _tmp_sibling(target, directory)
    try:
        yield tmp
        tmp.chmod(0o755 if directory else 0o644)  # mkdtemp/mkstemp create owner-only entries
        if directory and target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | os.PathLike, data: object) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
