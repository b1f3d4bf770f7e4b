"""Rewrite bitsandbytes' wheel keeping only the native libraries one CUDA version needs.

The PyPI wheel (43 MB, 125 MB installed) holds libbitsandbytes for eight CUDA, six ROCm and two XPU
versions; bitsandbytes loads libbitsandbytes_cuda<torch.version.cuda>.so (and its CPU library), so the GPU
box (torch 2.11, CUDA 13.0) needs two of them. The other files and the kept ones' RECORD lines are copied
unchanged, so pip still verifies every installed file against its hash.

usage: trim_bitsandbytes.py WHEEL OUT_DIR [CUDA_VERSION]   (CUDA_VERSION as in the library name: 130)
"""

import sys
import zipfile
from pathlib import Path, PurePosixPath


def kept(name: str, cuda: str) -> bool:
    path = PurePosixPath(name)
    if not path.name.startswith("libbitsandbytes_"):
        return True
    return path.name in (f"libbitsandbytes_cuda{cuda}.so", "libbitsandbytes_cpu.so")


def trim(wheel: Path, out_dir: Path, cuda: str) -> Path:
    out = out_dir / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        names = [n for n in src.namelist() if kept(n, cuda)]
        if not any(n.endswith(f"libbitsandbytes_cuda{cuda}.so") for n in names):
            sys.exit(f"{wheel.name} has no libbitsandbytes_cuda{cuda}.so")
        for name in names:
            data = src.read(name)
            if name.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = ("\n".join(line for line in lines if kept(line.split(",", 1)[0], cuda)) + "\n").encode()
            dst.writestr(src.getinfo(name), data)
    return out


if __name__ == "__main__":
    wheel, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    print(trim(wheel, out_dir, sys.argv[3] if len(sys.argv) > 3 else "130"))
