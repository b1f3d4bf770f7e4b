#!/usr/bin/env bash
# llama.cpp's HF -> GGUF converter for the gguf backend. llama-cpp-python (requirements.txt) does not
# install it, but its sdist carries it: this copies the converter of the installed version, with the
# sdist's gguf-py that it needs (PyPI's gguf lags it), to $VENV/share/quantbench/llama.cpp.
# Usage: scripts/install-gguf.sh [VENV]   (default .venv; any environment with llama-cpp-python)
set -euo pipefail
VENV=${1:-.venv}
DEST=$VENV/share/quantbench/llama.cpp
VERSION=$("$VENV/bin/python" -c "import llama_cpp; print(llama_cpp.__version__)")
if [ "$(cat "$DEST/VERSION" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/pip" download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$work"
vendor=llama_cpp_python-$VERSION/vendor/llama.cpp
tar -xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work" \
  "$vendor/convert_hf_to_gguf.py" "$vendor/conversion" "$vendor/gguf-py/gguf" "$vendor/LICENSE"
rm -rf "$DEST"
mkdir -p "$DEST/gguf-py"
cp -r "$work/$vendor/convert_hf_to_gguf.py" "$work/$vendor/conversion" "$work/$vendor/LICENSE" "$DEST/"
cp -r "$work/$vendor/gguf-py/gguf" "$DEST/gguf-py/"
echo "$VERSION" > "$DEST/VERSION"
echo "llama.cpp's converter (llama-cpp-python $VERSION) is in $DEST"
