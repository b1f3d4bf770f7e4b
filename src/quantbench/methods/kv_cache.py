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


def cached_tokens(spec: dict[str, Any], prompt_tokens: int, new_tokens: int) -> tuple[int, int]:
    """(quantized, full-precision) tokens in transformers' QuantizedLayer once generate() has made
    `new_tokens` from a `prompt_tokens` prompt, step by step as its update() does: the prompt is quantized
    at once; each later token joins the full-precision residual, and when the residual (already holding a
    token) would reach residual_length, all of it is quantized with the new token and the residual empties.
    The last new token is never fed back, so prompt_tokens + new_tokens - 1 tokens are cached."""
    quantized, residual = prompt_tokens, 0
    for _ in range(new_tokens - 1):
        if residual and residual + 1 >= spec["residual_length"]:
            quantized, residual = quantized + residual + 1, 0
        else:
            residual += 1
    return quantized, residual


def bytes_per_token(config, dtype_bytes: float, spec: dict[str, Any] | None, *, prompt_tokens: int,
                    new_tokens: int) -> float:
    """Bytes of keys and values per cached token over all layers at the end of a generation: in the model's
    activation dtype, or with `spec` the quantized tokens at its bits (scales and zero points not counted)
    and the full-precision residual in the activation dtype, averaged over the tokens cached."""
    config = config.get_text_config()
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    elements = 2 * config.num_hidden_layers * kv_heads * head_dim
    if not spec:
        return float(elements * dtype_bytes)
    quantized, residual = cached_tokens(spec, prompt_tokens, new_tokens)
    return elements * (quantized * spec["bits"] / 8 + residual * dtype_bytes) / (quantized + residual)


def describe(spec: dict[str, Any] | None) -> str:
    """What the kernel description adds for the option ("" without it)."""
    return f"; KV cache {spec['bits']}-bit through {spec['backend']}" if spec else ""
