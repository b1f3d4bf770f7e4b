"""Checks of a method's parameters against the model's layer shapes, before any heavy work."""

from __future__ import annotations

import functools
import math
from fnmatch import fnmatch
from pathlib import Path

from ..errors import ConfigError, Unsupported


@functools.lru_cache(maxsize=4)
def _meta_model(source: Path):
    """The model built from config.json alone (meta device, no weights); a method's checks share one."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def _linears(source: Path, skip: tuple[str, ...] = ("lm_head",)) -> dict:
    """Every nn.Linear a weight quantizer would touch."""
    import torch

    return {name: module for name, module in _meta_model(Path(source)).named_modules()
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] not in skip}


def conv1d_layers(source: Path) -> list[str]:
    """transformers' Conv1D layers (GPT-2's projections: nn.Linear's weight transposed, in x out)."""
    from transformers.pytorch_utils import Conv1D

    return [name for name, module in _meta_model(Path(source)).named_modules() if isinstance(module, Conv1D)]


def require_linears(source: Path, method: str, exclude: tuple[str, ...]) -> None:
    """Refuse a model without an nn.Linear to quantize outside the `exclude` name patterns (GPT-2's projections
    are transformers' Conv1D): a method that quantizes nn.Linear only would save it unquantized."""
    quantizable = [name for name in _linears(source, skip=()) if not any(fnmatch(name, p) for p in exclude)]
    if not quantizable:
        raise Unsupported(f"{method} quantizes torch.nn.Linear layers; this model has none outside {list(exclude)} "
                          "(GPT-2's projections are transformers' Conv1D)")


def linear_input_widths(source: Path) -> dict[str, int]:
    return {name: m.in_features for name, m in _linears(source).items()}


def linear_output_widths(source: Path) -> dict[str, int]:
    return {name: m.out_features for name, m in _linears(source).items()}


def check_group_size(source: Path, group_size: int) -> None:
    """Refuse a group size that does not divide every quantized layer's input width, naming a fix."""
    if group_size == -1:
        return
    widths = linear_input_widths(source)
    bad = sorted({w for w in widths.values() if w % group_size})
    if bad:
        gcd = math.gcd(*widths.values())
        fits = [g for g in (32, 64, 128, 256) if gcd % g == 0]
        raise ConfigError(
            f"group_size {group_size} does not divide the input width {bad} of this model's linear layers; "
            f"use {' or '.join(map(str, fits)) if fits else '-1 (per channel)'} for this model")
