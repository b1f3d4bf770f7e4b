"""SHA-256 of artifact files, so a truncated or altered artifact is caught before it is used."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import CorruptArtifact


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def folder_checksums(folder: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in exclude
    }


def folder_bytes(folder: Path, exclude: tuple[str, ...] = ()) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name not in exclude)


def verify(folder: Path, expected: dict[str, str], rerun_hint: str) -> None:
    """Raise CorruptArtifact naming the first file that is missing or differs."""
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            raise CorruptArtifact(f"{path} is missing; {rerun_hint}")
        if sha256_file(path) != digest:
            raise CorruptArtifact(f"{path} does not match its recorded checksum (truncated or altered); {rerun_hint}")
