"""A stand-in, on this machine, for the GPU box's Python, so the CPU rehearsal tests that the kit carries what
the box lacks: a fresh venv that sees, of an installed venv's packages (`make setup`'s), only those the box
has (box-packages.txt) with what their versions here depend on, plus the few kit packages whose wheels are
built for the box's Python 3.12 alone (taken from the installed venv, as `make setup` installed them).
Every other kit package must come from the kit, as on the box.

usage: rehearsal_base.py SOURCE_VENV TARGET_VENV KIT_DIR   prints TARGET_VENV/bin/python
"""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename

HERE = Path(__file__).resolve().parent


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def box_packages() -> set[str]:
    lines = (line.split("#")[0].strip() for line in (HERE / "box-packages.txt").read_text().splitlines())
    return {normalize(line) for line in lines if line}


def kit_wheels(kit: Path) -> dict[str, bool]:
    """Kit packages, and whether this interpreter can install each one's wheel (not the cp312-only builds)."""
    here = set(sys_tags())
    return {normalize(name): bool(tags & here)
            for name, _, _, tags in map(parse_wheel_filename, (w.name for w in kit.glob("wheels/*.whl")))}


def with_dependencies(names: set[str], installed: dict, kit: set[str]) -> set[str]:
    """`names` and, transitively, what their installed versions require, except the kit's own packages."""
    todo, found = list(names), set()
    while todo:
        name = todo.pop()
        if name in found or name not in installed:
            continue
        found.add(name)
        requires = (Requirement(r) for r in installed[name].requires or [])
        todo += [normalize(r.name) for r in requires if (r.marker is None or r.marker.evaluate({"extra": ""}))
                 and normalize(r.name) not in kit]
    return found | names


def link_packages(site: Path, dists: list, farm: Path) -> None:
    """Link each top-level entry of `dists` (installed in `site`) into `farm`."""
    for dist in dists:
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            link = farm / top  # two distributions may share one (site-packages/__pycache__)
            if not link.is_symlink() and (site / top).exists():
                link.symlink_to((site / top).resolve())


def main(source: Path, target: Path, kit: Path) -> None:
    site = next(source.glob("lib/python3*/site-packages"))
    installed = {normalize(d.metadata["Name"]): d for d in importlib.metadata.distributions(path=[str(site)])}
    wheels = kit_wheels(kit)
    wanted = with_dependencies(box_packages() | {n for n, fits in wheels.items() if not fits}, installed,
                               {n for n, fits in wheels.items() if fits})
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(target)], check=True)
    farm = target / "box-packages"
    farm.mkdir()
    link_packages(site, [installed[n] for n in sorted(wanted & set(installed))], farm)
    target_site = next(target.glob("lib/python3*/site-packages"))
    (target_site / "box-packages.pth").write_text(f"{farm.resolve()}\n")
    print(target / "bin" / "python")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
