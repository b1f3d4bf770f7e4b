#!/usr/bin/env bash
# Gather, on a machine that reaches PyPI, what the GPU box lacks for the kit's study and the CUDA tests, as
# wheels for its Python (CPython 3.12, x86-64 Linux), into .gpu-kit/ (git-ignored): wheels.txt downloaded,
# sdists.txt built into pure-Python wheels, bitsandbytes cut down to its CUDA 13 library, pypcre's sdist.
# Prints each piece's size and the total that travels; refuses (exit 1) over 60 MiB or with a dependency
# unaccounted for (check_kit.py).
#
# usage: scripts/gpu-proof/gather.sh        PYTHON=/path/to/python (with pip) overrides the interpreter
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KIT=$ROOT/.gpu-kit
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || { echo "gather.sh: no $PYTHON; run make setup, or set PYTHON to a python with pip" >&2; exit 1; }
PIP=("$PYTHON" -m pip --disable-pip-version-check)
# manylinux_2_N matches N exactly; the box is glibc 2.39, so every N up to it fits
PLATFORMS=()
for n in 39 35 34 31 28 27 24 17; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64)

rm -rf "$KIT"
mkdir -p "$KIT/download" "$KIT/wheels" "$KIT/sdists"
echo "== wheels for CPython 3.12 (wheels.txt)"
"${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$KIT/download" -r "$HERE/wheels.txt"
echo "== pure-Python wheels built from sdists (sdists.txt)"
"${PIP[@]}" wheel -q --no-deps -w "$KIT/wheels" -r "$HERE/sdists.txt"
echo "== pypcre's sdist (compiled on the box by run.sh)"
"${PIP[@]}" download -q --no-deps --no-binary pypcre --no-build-isolation -d "$KIT/sdists" pypcre==0.6.4
echo "== bitsandbytes without the libraries of other CUDA, ROCm and XPU versions"
"$PYTHON" "$HERE/trim_bitsandbytes.py" "$KIT"/download/bitsandbytes-*.whl "$KIT/wheels" 130
rm "$KIT"/download/bitsandbytes-*.whl
mv "$KIT"/download/*.whl "$KIT/wheels/"
rmdir "$KIT/download"
echo "== what travels"
"$PYTHON" "$HERE/check_kit.py" "$KIT"
