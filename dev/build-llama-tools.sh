#!/usr/bin/env bash
# Builds llama.cpp's own tools (default: llama-batched-bench) from the sdist of the installed
# llama-cpp-python, so they are the same llama.cpp as quantbench's GGUF runtime. The binaries are linked
# without an rpath: run them with LD_LIBRARY_PATH set to this folder's lib/ and llama_cpp's lib folder, and
# they use the very libllama/libggml llama-cpp-python loads (dev/anchor_gguf.py does). ~7 min on 2 cores, once per version.
# Usage: dev/build-llama-tools.sh [tool ...]     (VENV=.venv by default)
set -euo pipefail
VENV=${VENV:-.venv}
TOOLS=("${@:-llama-batched-bench}")
VERSION=$("$VENV/bin/python" -c "import llama_cpp; print(llama_cpp.__version__)")
DEST=$VENV/share/quantbench/llama.cpp-tools-$VERSION
mkdir -p "$DEST/bin"
missing=()
for tool in "${TOOLS[@]}"; do [ -x "$DEST/bin/$tool" ] || missing+=("$tool"); done
[ ${#missing[@]} -eq 0 ] && exit 0

SRC=$DEST/src
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$VENV/bin/pip" download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$work"
  tar -xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
  rm -rf "$SRC"
  mv "$work/llama_cpp_python-$VERSION/vendor/llama.cpp" "$SRC"
fi
cmake -S "$SRC" -B "$DEST/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DCMAKE_SKIP_BUILD_RPATH=ON > "$DEST/cmake.log"
cmake --build "$DEST/build" --target "${missing[@]}" -j "$(nproc)" >> "$DEST/cmake.log"
# a tool is a small main over lib<tool>-impl.so and libllama-common; libllama and libggml come from llama_cpp
mkdir -p "$DEST/lib"
cp -P "$DEST"/build/bin/libllama-common.so* "$DEST/lib/"
for tool in "${missing[@]}"; do
  cp "$DEST/build/bin/lib$tool-impl.so" "$DEST/lib/"
  cp "$DEST/build/bin/$tool" "$DEST/bin/"
done
echo "built ${missing[*]} (llama-cpp-python $VERSION) into $DEST/bin"
