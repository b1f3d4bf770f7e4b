"""Load and validate a study configuration before any job runs.

Errors name the offending key (`methods.bnb-int8.bits`) and the allowed values, so a typo
fails in a second instead of an hour into the study.
"""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import sources
from .defaults import fill_defaults, schema
from .devices import gpu_count
from .errors import ConfigError
from .methods import BACKENDS, with_defaults
from .plan import BenchmarkSettings, Method, Model, Settings, Study, Task
from .tasks import TASK_TYPES
from .tasks.data import file_problem, text_path

__all__ = ["ConfigError", "Method", "Study", "check_file", "load"]


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _check(instance: Any, schema_: dict[str, Any], prefix: tuple = ()) -> None:
    validator = jsonschema.Draft202012Validator(schema_)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            best = jsonschema.exceptions.best_match([err])
            lines.append(f"config key '{_key(prefix + tuple(best.absolute_path))}': {best.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))


class _StrictLoader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"config key '{key}' is given twice (line {key_node.start_mark.line + 1}); "
                                  "names of models, methods and tasks must be unique")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def check_file(path: str | Path) -> None:
    """Reject YAML config files with duplicate keys, which the parsed dict can no longer show."""
    with open(path) as f:
        yaml.load(f, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def known_countries() -> set[str]:
    """ISO alpha-3 codes codecarbon has carbon-intensity data for (offline)."""
    try:
        data = resources.files("codecarbon").joinpath("data/private_infra/global_energy_mix.json")
        return set(json.loads(data.read_text()))
    except (ModuleNotFoundError, FileNotFoundError):
        return set()


def load(raw: dict[str, Any], packages_here: bool = True) -> Study:
    """Validate `raw` (the parsed YAML) and return the study; raise ConfigError naming the key.
    `packages_here`: the jobs run in this environment (False: each backend's jobs run in their own)."""
    schema_ = schema()
    _check(raw, schema_)
    settings = _settings(raw, schema_["properties"])
    _check_country(settings["energy"]["country_iso_code"])
    for name, model in raw["models"].items():
        problem = sources.problem(model["source"]) or _random_problem(model["source"], raw)
        if problem:
            raise ConfigError(f"config key 'models.{name}.source': {problem}")
    if problem := file_problem(text_path, settings["benchmark"]["text"]):
        raise ConfigError(f"config key 'benchmark.text': {problem}")
    methods, skipped, unverified = _methods(raw["methods"], settings, packages_here)
    _check_baseline(settings, methods, skipped)
    backends = {name: entry["backend"] for name, entry in raw["methods"].items()}
    models = {name: Model(name, entry["source"]) for name, entry in raw["models"].items()}
    return Study(_typed_settings(settings), models, methods, _tasks(raw.get("tasks", {})), skipped, backends,
                 unverified)


def _typed_settings(settings: dict[str, Any]) -> Settings:
    bench = settings["benchmark"]
    return Settings(settings["device"], settings["on_error"], settings["on_unsupported"], settings["baseline"],
                    settings.get("threads"), settings["energy"]["country_iso_code"],
                    BenchmarkSettings(**{**bench, "batch_sizes": tuple(bench["batch_sizes"])}),
                    dict(settings["repetitions"]), dict(settings["margins"]), dict(settings.get("cost", {})))


def _settings(raw: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    settings = fill_defaults(props, raw)
    for section in ("benchmark", "repetitions", "energy", "margins"):
        settings[section] = fill_defaults(props[section]["properties"], raw.get(section, {}))
    return settings


def _random_problem(source: str, raw: dict[str, Any]) -> str | None:
    """Random weights measure cost, not quality, and carry no tokenizer (GGUF's converter needs one)."""
    if not sources.is_random(source):
        return None
    if raw.get("tasks"):
        return (f"{source} has random weights: quality tasks ({', '.join(raw['tasks'])}) would measure noise; "
                "give a benchmark-only study no tasks, or use the pretrained model")
    gguf = [name for name, entry in raw["methods"].items() if entry["backend"] == "gguf"]
    if gguf:
        return f"{source} has no tokenizer, which llama.cpp's GGUF converter needs (methods {', '.join(gguf)})"
    return None


def _check_country(country: str) -> None:
    countries = known_countries()
    if countries and country not in countries:
        raise ConfigError(f"config key 'energy.country_iso_code': {country!r} is not a country codecarbon knows; "
                          "use an ISO 3166-1 alpha-3 code such as USA, DEU, FRA, SWE")


def _check_baseline(settings: dict[str, Any], methods: dict[str, Method], skipped: dict[str, str]) -> None:
    if not methods:
        raise ConfigError("config key 'methods': no method can run here: " + "; ".join(
            f"{m}: {why}" for m, why in skipped.items()))
    settings.setdefault("baseline", next(iter(methods)))
    if settings["baseline"] not in methods:
        raise ConfigError(
            f"config key 'baseline': {settings['baseline']!r} is not a runnable method; "
            f"allowed: {sorted(methods)}")


def _entry_schema(key: str, name: str, properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    """JSON schema of one method or task entry: `key` names its backend or type, the rest is that one's keys."""
    return {"type": "object", "properties": {key: {"const": name}, **properties}, "required": [key, *required],
            "additionalProperties": False}


def _tasks(raw_tasks: dict[str, Any]) -> dict[str, Task]:
    study_tasks = {}
    for name, entry in raw_tasks.items():
        kind = TASK_TYPES.get(entry["type"])
        if kind is None:
            raise ConfigError(f"config key 'tasks.{name}.type': unknown task type {entry['type']!r}; "
                              f"allowed: {sorted(TASK_TYPES)}")
        _check(entry, _entry_schema("type", kind.name, kind.schema, kind.required), ("tasks", name))
        task = fill_defaults(kind.schema, entry)
        problem = kind.problem(task)
        if problem:
            raise ConfigError(f"config key 'tasks.{name}': {problem}")
        study_tasks[name] = Task(name, kind.name, task)
    return study_tasks


def _methods(raw_methods: dict[str, Any], settings: dict[str, Any], packages_here: bool
             ) -> tuple[dict[str, Method], dict[str, str], dict[str, str]]:
    methods: dict[str, Method] = {}
    skipped: dict[str, str] = {}
    unverified: dict[str, str] = {}
    for name, entry in raw_methods.items():
        backend = BACKENDS.get(entry["backend"])
        if backend is None:
            raise ConfigError(
                f"config key 'methods.{name}.backend': unknown backend {entry['backend']!r}; "
                f"allowed: {sorted(BACKENDS)}")
        _check(entry, _entry_schema("backend", backend.name, backend.schema(), backend.required),
               ("methods", name))
        params = with_defaults(backend, entry)
        if problem := backend.param_problem(params):
            raise ConfigError(f"config key 'methods.{name}': {problem}")
        why, unknown = _unsupported(backend, params, settings["device"], packages_here)
        if why and settings["on_unsupported"] == "error":
            raise ConfigError(f"config key 'methods.{name}': {why} (set on_unsupported: skip to record it as skipped)")
        if why:
            skipped[name] = why
            continue
        if unknown:
            unverified[name] = unknown
        methods.update({m.name: m for m in _quantizations(Method(name, backend.name, params, backend.bits(params)),
                                                          backend, settings["repetitions"]["quantize"])})
    return methods, skipped, unverified


def _quantizations(method: Method, backend, repetitions: int) -> list[Method]:
    """The method, and where its calibration is a random sample, its repetitions `<name>@q<rep>`: the same
    params with another calibration seed (seed + rep - 1), so each draws another sample."""
    if repetitions == 1 or not backend.samples_calibration:
        return [method]
    seed = method.params["calibration"]["seed"]
    return [method, *(replace(method, name=f"{method.name}@q{rep}", quantize_rep=rep, repeats=method.name,
                              params={**method.params, "calibration": {**method.params["calibration"],
                                                                       "seed": seed + rep - 1}})
                      for rep in range(2, repetitions + 1))]


def _unsupported(backend, params: dict[str, Any], device: str, packages_here: bool) -> tuple[str | None, str | None]:
    """(why the method cannot run, or None; what only its jobs can check, or None). Packages are judged here
    only where the jobs run in this environment (not in a backend's own conda environment); a GPU that
    device: auto may find is judged by NVML on this machine where it can read it, and by each job anyway."""
    missing = backend.missing_packages()
    if missing and packages_here:
        return f"backend {backend.name!r} needs packages that are not installed: {', '.join(missing)}", None
    unknown = (f"packages {', '.join(missing)} are not in this environment; its jobs check their own"
               if missing else None)
    if device == "auto":
        if backend.device_problem(params, "cpu") is None:  # runs on either device
            return None, unknown
        gpus = gpu_count()
        if gpus is None:
            return None, "; ".join(filter(None, [unknown, "it needs a GPU, which its jobs look for on their machine"]))
        device = "cuda" if gpus else "cpu"
    problem = backend.device_problem(params, device)
    return (f"{problem}, not on device: {device}" if problem else None), unknown
