"""Model sources: a pinned hub id, a local folder, a file shipped inside a Python package, or an
architecture with seeded random weights.

Every source is normalised into one plain Hugging Face folder (config, tokenizer, safetensors)
under resources/models/{model}/ with a manifest.json saying where it came from. A `random:` model has
no tokenizer: speed, memory and energy depend on the architecture, not on the weights' values, so a
study can measure a paper-scale model's cost without downloading it (optimum-benchmark's no_weights).
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_path
from .checksums import folder_checksums, sha256_file
from .errors import ConfigError, DataError, UnsafeModel

log = logging.getLogger(__name__)

# Files worth copying from a hub repo or folder; pickled *.bin weights are deliberately absent.
MODEL_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")


@dataclass(frozen=True)
class Source:
    kind: str  # "hf" | "path" | "package" | "random"
    location: str
    revision: str | None = None

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{self.kind}:{self.location}{rev}"


def parse(text: str) -> Source:
    kind, _, rest = text.partition(":")
    if kind == "hf":
        repo, _, revision = rest.partition("@")
        return Source("hf", repo, revision or None)
    if kind in ("path", "package", "random"):
        return Source(kind, rest)
    raise ConfigError(f"unknown source {text!r}; use hf:org/name@revision, path:/folder, package:module/file or "
                      f"random:<architecture> ({', '.join(sorted(RANDOM_CONFIGS))} or a config.json path)")


# Architectures of the reference studies, shipped as Hugging Face config.json files (the published configs'
# shape: layers, widths, vocabulary, tied embeddings), for `random:<name>` models.
RANDOM_CONFIGS = {p.stem: p for p in Path(__file__).with_name("data").joinpath("configs").glob("*.json")}


def random_config(location: str) -> Path:
    """The config.json of a random: source: a shipped architecture name, or a path."""
    if location in RANDOM_CONFIGS:
        return RANDOM_CONFIGS[location]
    if location.endswith(".json"):
        return Path(location)
    raise ConfigError(f"random:{location}: not a shipped architecture ({', '.join(sorted(RANDOM_CONFIGS))}) nor a "
                      "path to a config.json")


def is_random(text: str) -> bool:
    return parse(text).kind == "random"


def package_file(location: str) -> Path:
    """The file `relative` inside the installed package `module`. A package that assembles its file on demand
    from chunk packages (it exposes `MODEL_NAME` and `assemble(path)`, as PyPI's 250 MB Gemma does, being over
    PyPI's file limit) writes it once into the user cache."""
    module, _, relative = location.partition("/")
    path = _package_folder(module) / relative
    if path.exists() or not _assembles_on_demand(module, relative):
        return path
    cached = _assembled_path(module, relative)
    _assemble_once(importlib.import_module(module), cached)
    return cached


def _package_folder(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"Python package {module!r} is not installed (`make setup` installs the shipped models)")
    return Path(next(iter(spec.submodule_search_locations)))


def _assembles_on_demand(module: str, relative: str) -> bool:
    package = importlib.import_module(module)
    return getattr(package, "MODEL_NAME", None) == relative and callable(getattr(package, "assemble", None))


def _distribution(module: str) -> tuple[str, str | None]:
    """The PyPI name and version that installed `module`: the provenance of a package: source."""
    name = importlib.metadata.packages_distributions().get(module, [module])[0]
    try:
        return name, importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:  # e.g. a folder on sys.path, not installed by pip
        return name, None


def _assembled_path(module: str, relative: str) -> Path:
    """$XDG_CACHE_HOME/quantbench/packages/<name>-<version>/<file>: shared by every study of this user, one
    per package version."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quantbench" / "packages"
    name, version = _distribution(module)
    return cache / f"{name}-{version}" / relative


def _assemble_once(package, target: Path) -> None:
    """Assemble under a lock (two studies may fetch at once) into a temporary name renamed into place only
    after the package checked its sha256, so a killed assembly leaves nothing a later run trusts; a file
    already there is reused when it still has the package's sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        expected = getattr(package, "EXPECTED_SHA256", None)
        if target.is_file() and (expected is None or sha256_file(target) == expected):
            return
        log.info("assembling %s into %s", package.MODEL_NAME, target)
        with atomic_path(target) as tmp:
            package.assemble(tmp, overwrite=True)


def problem(text: str) -> str | None:
    """A cheap check at config time; None when the source looks fetchable."""
    try:
        source = parse(text)
        if source.kind == "path" and not Path(source.location).is_dir():
            return f"folder {source.location!r} does not exist"
        if source.kind == "package":
            return _package_problem(source.location)
        if source.kind == "random" and not random_config(source.location).is_file():
            return f"config {source.location!r} does not exist"
    except ConfigError as err:
        return str(err)
    return None


def _package_problem(location: str) -> str | None:
    module, _, relative = location.partition("/")
    if (_package_folder(module) / relative).is_file():
        return None
    if not _assembles_on_demand(module, relative):
        return f"{_package_folder(module) / relative} does not exist"
    try:  # the file is assembled at fetch time from chunk packages: are they all installed?
        getattr(importlib.import_module(module), "verify_chunks", lambda: None)()
    except (ImportError, FileNotFoundError) as err:
        return f"package:{location}: a chunk package is missing ({err})"
    return None


def fetch(text: str, out: Path, device: str = "cpu") -> dict:
    """Materialise the source as a HF folder in `out` (empty, created by the caller); return its manifest.
    A random: model's weights are drawn on `device`."""
    source = parse(text)
    manifest: dict = {"source": str(source), "kind": source.kind, "weights": "pretrained"}
    if source.kind == "random":
        config = random_config(source.location)
        manifest.update(weights="random", seed=RANDOM_SEED, config_sha256=sha256_file(config))
        _random_weights(config, out, device)
    elif source.kind == "hf":
        folder, manifest["commit"] = _hub_snapshot(source)
        _copy_model_files(folder, out)
    elif source.kind == "path":
        _copy_model_files(Path(source.location), out)
    else:
        module = source.location.partition("/")[0]
        path = package_file(source.location)
        manifest["package"], manifest["package_version"] = _distribution(module)
        if not path.is_relative_to(_package_folder(module)):
            manifest["assembled_into"] = str(path)  # from the package's chunks, checked against its sha256
        manifest["input_sha256"] = sha256_file(path)
        if path.suffix == ".gguf":
            _dequantize_gguf(path, out)
            manifest["note"] = (f"weights dequantized to float32 from {path.name}: the baseline carries that "
                                "file's quantization error")
        else:
            _copy_model_files(path if path.is_dir() else path.parent, out)
    if not any(out.glob("*.safetensors")):
        raise DataError(f"{source}: no *.safetensors weights found (pickled weights are not loaded)")
    _refuse_custom_code(source, out)
    manifest["files"] = folder_checksums(out)
    return manifest


def _refuse_custom_code(source: Source, folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    if "auto_map" in config:
        raise UnsafeModel(f"{source}: config.json maps to custom modeling code ({sorted(config['auto_map'])}); "
                          "quantbench loads only architectures built into transformers (trust_remote_code=False)")


def _hub_snapshot(source: Source) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(source.location, revision=source.revision, allow_patterns=list(MODEL_FILES)))
    return folder, folder.name  # snapshots/<commit>


def _copy_model_files(folder: Path, out: Path) -> None:
    for pattern in MODEL_FILES:
        for path in folder.glob(pattern):
            shutil.copyfile(path.resolve(), out / path.name)  # resolve: hub caches hold symlinks


RANDOM_SEED = 0


def _random_weights(config_file: Path, out: Path, device: str) -> None:
    """The architecture with transformers' own seeded initialisation, built on `device` in the config's dtype
    (a GPU draws an 8B model in seconds, with no full copy in CPU memory), saved as safetensors."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**json.loads(config_file.read_text()))
    dtype = getattr(config, "dtype", None) or torch.float32
    torch.manual_seed(RANDOM_SEED)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(out)


def _dequantize_gguf(path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    model.hf_quantizer = None  # dequantized already; save as a plain float model
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(out)
