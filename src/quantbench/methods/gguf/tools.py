"""llama.cpp's own programs (llama-imatrix, llama-quantize, llama-batched-bench), built from the sdist of
the installed llama-cpp-python, so that they are the very llama.cpp of the GGUF runtime.

PyPI ships none of them, so each is built once per environment and llama-cpp-python version, on first
use, under a lock (parallel jobs wait for one build), into <env>/share/quantbench/llama.cpp-tools-<version>.
Only a tool's own code and llama.cpp's `common` library are kept: at run time the tool loads the libllama
and libggml that llama-cpp-python loads, so it computes exactly what the runtime computes. The build is at
-O1 because the heavy work happens in those libraries: 2.7 min on 2 cores, where a Release build takes 4.
Build it ahead (e.g. on a login node with internet) with `python -m quantbench.methods.gguf.tools TOOL...`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)

CMAKE_OPTIONS = ["-DCMAKE_BUILD_TYPE=None", "-DCMAKE_C_FLAGS=-O1", "-DCMAKE_CXX_FLAGS=-O1",
                 "-DBUILD_SHARED_LIBS=ON", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                 "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_OPENSSL=OFF", "-DCMAKE_SKIP_BUILD_RPATH=ON"]


def version() -> str:
    import llama_cpp

    return llama_cpp.__version__


def home() -> Path:
    return Path(sys.prefix) / "share" / "quantbench" / f"llama.cpp-tools-{version()}"


def built(tool: str) -> bool:
    return (home() / "bin" / tool).is_file()


def build_problem() -> str | None:
    """Why the tools cannot be built here (said at config validation, before any job); None when they can."""
    missing = [name for name in ("cmake", "c++") if shutil.which(name) is None]
    if missing:
        return (f"building llama.cpp's tools needs {' and '.join(missing)} on PATH (Debian: apt-get install "
                f"cmake g++), or build them ahead on a machine that has both: python -m quantbench.methods.gguf.tools")
    return None


def ensure(*tools: str) -> Path:
    """The folder holding `tools`, building the missing ones first."""
    home().mkdir(parents=True, exist_ok=True)
    with open(home() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [tool for tool in tools if not built(tool)]
        if missing:
            _build(missing)
    return home() / "bin"


def run(tool: str, args: list[str], *, cwd: Path | None = None) -> None:
    """Run `tool` on llama-cpp-python's libraries."""
    ensure(tool)
    call([str(home() / "bin" / tool), *args], f"llama.cpp's {tool}", cwd=cwd, env=environment())


def call(command: list[str], what: str, *, cwd: Path | None = None, env: dict[str, str] | None = None,
         log_to: TextIO | None = None) -> None:
    """Run `command`, its output written to `log_to` (the job's log by default); fail naming `what` and the
    output's last lines."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    output = done.stdout + done.stderr
    (log_to or sys.stderr).write(output)
    if done.returncode != 0:
        last = [line for line in output.splitlines() if line.strip()][-3:]
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {' | '.join(last)}")


def environment() -> dict[str, str]:
    """The environment in which a tool loads its `common` from here and libllama from llama-cpp-python."""
    import llama_cpp

    runtime_libs = Path(llama_cpp.__file__).parent / "lib"
    return {**os.environ, "LD_LIBRARY_PATH": f"{home() / 'lib'}:{runtime_libs}"}


def _build(tools: list[str]) -> None:
    log.info("building llama.cpp's %s from the llama-cpp-python %s sdist (once; about 3 min on 2 cores)",
             ", ".join(tools), version())
    source, build = home() / "src", home() / "build"
    if not (source / "CMakeLists.txt").is_file():
        _unpack_sdist(source)
    with open(home() / "build.log", "w") as build_log:  # compilers' warnings: thousands of lines
        what = f"building llama.cpp's {', '.join(tools)} (whole output: {build_log.name})"
        call(["cmake", "-S", str(source), "-B", str(build), *CMAKE_OPTIONS], what, log_to=build_log)
        call(["cmake", "--build", str(build), "--target", *tools, "-j", str(os.cpu_count() or 1)], what,
             log_to=build_log)
    lib, bin_ = home() / "lib", home() / "bin"
    lib.mkdir(exist_ok=True)
    bin_.mkdir(exist_ok=True)
    products = build / "bin"
    for path in sorted(products.glob("libllama-common*.so*")) + sorted(products.glob("lib*-impl.so")):
        _copy(path, lib / path.name)
    for tool in tools:  # the executable last: its presence means the tool is complete
        _copy(products / tool, bin_ / tool)
    log.info("built %s into %s", ", ".join(tools), bin_)


def _unpack_sdist(dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="quantbench-llama-sdist-") as tmp:
        call([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
              f"llama-cpp-python=={version()}", "-d", tmp], "downloading the llama-cpp-python sdist")
        with tarfile.open(next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))) as sdist:
            sdist.extractall(tmp, filter="data")
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(Path(tmp) / f"llama_cpp_python-{version()}" / "vendor" / "llama.cpp", dest)


def _copy(source: Path, target: Path) -> None:
    """Copy (links as links) so that a killed build never leaves a half-written file under its final name."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    if source.is_symlink():
        tmp.symlink_to(os.readlink(source))
    else:
        shutil.copy2(source, tmp)
    os.replace(tmp, target)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(ensure(*(sys.argv[1:] or ["llama-imatrix", "llama-quantize"])))
