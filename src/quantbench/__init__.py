"""quantbench: post-training quantization studies of LLMs, as a reproducible pipeline."""

__version__ = "0.1.0"
