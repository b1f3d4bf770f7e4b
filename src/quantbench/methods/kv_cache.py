"""KV-cache quantization, an option of any method run by transformers: generate() keeps the attention keys
and values in transformers' QuantizedCache (optimum-quanto or HQQ kernels) instead of the model's dtype.

It changes what generate() does (free generation, the benchmark), not a forward pass over a whole sequence
(lm-eval scoring, perplexity): those keep no cache. The prompt's keys and values are quantized once the
prompt has been read; the newest `residual_length` generated tokens stay in full precision until there are
that many, then join the quantized part.
"""

from __future__ import annotations

from typing import Any

SCHEMA = {
    "type": "object",
    "description": "quantize the KV cache in generate() (transformers' QuantizedCache)",
    "properties": {
        "backend": {"enum": ["quanto", "hqq"], "default": "quanto"},
        "bits": {"enum": [2, 4]},
        "residual_length": {"type": "integer", "minimum": 0, "default": 128,
                            "description": "newest tokens kept in full precision (transformers' default 128)"},
    },
    "required": ["bits"],
    "additionalProperties": False,
}


def use_quantized_cache(model, spec: dict[str, Any]) -> None:
    """Every later generate() of `model` keeps its KV cache quantized as `spec` says."""
    model.generation_config.cache_implementation = "quantized"
    model.generation_config.cache_config = {"backend": spec["backend"], "nbits": spec["bits"],
                                            "residual_length": spec["residual_length"]}


def bytes_per_token(config, dtype_bytes: float, spec: dict[str, Any] | None) -> float:
    """Bytes of keys and values one token adds to the cache over all layers: at `spec`'s bits when the cache
    is quantized (scales and zero points not counted), else in the model's activation dtype."""
    config = config.get_text_config()
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    per_element = spec["bits"] / 8 if spec else dtype_bytes
    return float(2 * config.num_hidden_layers * kv_heads * head_dim * per_element)


def describe(spec: dict[str, Any] | None) -> str:
    """What the kernel description adds for the option ("" without it)."""
    return f"; KV cache {spec['bits']}-bit through {spec['backend']}" if spec else ""
