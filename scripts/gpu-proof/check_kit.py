"""What gather.sh gathered: each piece's size, the total that travels to the GPU box (the kit plus the
repository's tree), and whether every dependency of a carried package is carried, already on the box, or
left out on purpose (omitted.txt). Exits non-zero if one is missing or the total is over the limit.

usage: check_kit.py KIT_DIR
"""

import email
import email.message
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LIMIT_MIB = 60  # of the 64 MiB a call may carry: room for the outputs' growth and the tree's
MIB = 2**20
# The GPU box's interpreter, for the dependencies' environment markers.
BOX = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def listed(path: Path) -> set[str]:
    """Names in a list file: one per line, `name` or `name: why`, `#` comments."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {normalize(re.split(r"[:=<>!~ ]", line, maxsplit=1)[0]) for line in lines if line}


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(name))


def unmet(wheels: list[Path], available: set[str]) -> dict[str, set[str]]:
    """For each carried wheel, the dependencies (for the box's Python) that are not available."""
    missing = {}
    for wheel in wheels:
        meta = wheel_metadata(wheel)
        needs = {normalize(req.name) for req in map(Requirement, meta.get_all("Requires-Dist") or [])
                 if req.marker is None or req.marker.evaluate(BOX)}
        if needs - available:
            missing[meta["Name"]] = needs - available
    return missing


def tree_bytes() -> int:
    """The working tree that travels with every call: tracked and untracked, not ignored, files."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, text=True, check=True).stdout.split("\0")
    return sum((REPO / f).stat().st_size for f in files if f and (REPO / f).is_file())


def main(kit: Path) -> int:
    pieces = sorted([*kit.glob("wheels/*.whl"), *kit.glob("sdists/*.tar.gz")], key=lambda p: -p.stat().st_size)
    for piece in pieces:
        print(f"{piece.stat().st_size / MIB:8.2f} MiB  {piece.name}")
    kit_bytes, tree = sum(p.stat().st_size for p in pieces), tree_bytes()
    total = (kit_bytes + tree) / MIB
    print(f"{kit_bytes / MIB:8.2f} MiB  the kit ({len(pieces)} files)\n{tree / MIB:8.2f} MiB  the repository's tree\n"
          f"{total:8.2f} MiB  carried in all (limit {LIMIT_MIB} MiB)")
    carried = {normalize(wheel_metadata(w)["Name"]) for w in kit.glob("wheels/*.whl")}
    carried |= {normalize(p.name.rsplit("-", 1)[0]) for p in kit.glob("sdists/*.tar.gz")}
    missing = unmet(list(kit.glob("wheels/*.whl")), carried | listed(HERE / "box-packages.txt") |
                    listed(HERE / "omitted.txt"))
    for package, names in sorted(missing.items()):
        print(f"missing: {package} needs {', '.join(sorted(names))}: carry it (wheels.txt) or say why not "
              "(omitted.txt)", file=sys.stderr)
    if total > LIMIT_MIB:
        print(f"refused: {total:.1f} MiB would travel, over {LIMIT_MIB} MiB; trim the largest pieces above",
              file=sys.stderr)
    return 1 if missing or total > LIMIT_MIB else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
