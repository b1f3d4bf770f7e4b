"""Which conda environment (envs/<name>.yaml) runs a method's jobs under `--software-deployment-method conda`.

A backend that needs a package of its own gets envs/<backend>.yaml (the core packages plus its own);
one that needs none (baseline) runs in envs/core.yaml. Backends conflict in their pins as they grow
(GPTQ and GGUF toolchains pin their own transformers or compilers), which one environment cannot hold.
"""

from __future__ import annotations

from .methods import get_backend


def env_name(backend: str) -> str:
    return backend if get_backend(backend).packages else "core"
