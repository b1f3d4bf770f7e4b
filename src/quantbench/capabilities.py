"""The method capability table (backend x device), generated from the registry for docs/methods.md.

Run `python -m quantbench.capabilities > docs/methods.md`; a test keeps the file in sync.
"""

from __future__ import annotations

from .methods import BACKENDS


def _options(schema: dict) -> str:
    parts = []
    for key, spec in schema.items():
        if "properties" in spec:  # a nested object such as `calibration`: list its keys and defaults
            inner = (f"{k}={v['default']}" if "default" in v else k for k, v in spec["properties"].items())
            parts.append(f"`{key}`: {{{', '.join(inner)}}}")
            continue
        allowed = "/".join(str(v) for v in spec["enum"]) if "enum" in spec else spec.get("type", "")
        default = f" (default {spec['default']})" if "default" in spec else ""
        parts.append(f"`{key}`: {allowed}{default}")
    return "; ".join(parts)


def table() -> str:
    lines = [
        "# Methods",
        "",
        "Generated from the method registry (`src/quantbench/methods/`) by "
        "`python -m quantbench.capabilities`; do not edit by hand.",
        "",
        "| backend | CPU | CUDA | packages | options | notes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, backend in BACKENDS.items():
        cpu, cuda = ("yes" if d in backend.devices else "no" for d in ("cpu", "cuda"))
        packages = ", ".join(backend.packages) or "(transformers)"
        lines.append(f"| `{name}` | {cpu} | {cuda} | {packages} | {_options(backend.schema())} "
                     f"| {backend.notes} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
