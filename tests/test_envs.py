"""The conda environments (envs/*.yaml) parse and pin what requirements.txt pins. Conda's channels are not
reachable from the project's machines, so the environments are checked here, not created."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from quantbench.envs import env_name
from quantbench.methods import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
ENVS = {path.stem: yaml.safe_load(path.read_text()) for path in sorted((ROOT / "envs").glob("*.yaml"))}
# Snakemake's own packages run the workflow and never inside a job's environment.
RUNNER_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep", "pytest"}
# conda-forge's R packages and the Debian packages the project tests (scripts/install-r.sh).
R_PACKAGES = {"r-base": "r-base-core", "r-ggplot2": "r-cran-ggplot2", "r-effectsize": "r-cran-effectsize",
              "r-ragg": "r-cran-ragg", "r-rstatix": "r-cran-rstatix"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.txt: {line!r} is not pinned"
            pins[normalize(name)] = version
    return pins


def pip_pins(env: dict) -> dict[str, str]:
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    pins = {}
    for entry in pip:
        name, sep, version = entry.partition("==")
        assert sep, f"pip entry {entry!r} is not pinned"
        pins[normalize(name)] = version
    return pins


def conda_pins(env: dict) -> dict[str, str]:
    return dict(d.partition("=")[::2] for d in env["dependencies"] if isinstance(d, str) and d != "pip")


@pytest.mark.parametrize("name", sorted(ENVS))
def test_environment_pins_agree_with_requirements(name):
    env = ENVS[name]
    assert env["channels"] == ["conda-forge", "nodefaults"]
    assert conda_pins(env)["python"] == "3.11"
    pinned = requirements()
    for package, version in pip_pins(env).items():
        assert pinned.get(package) == version, f"envs/{name}.yaml pins {package}=={version}, requirements.txt " \
                                               f"{pinned.get(package)}"


def test_every_backend_has_an_environment_with_its_packages():
    core = set(pip_pins(ENVS["core"]))
    for name, backend in BACKENDS.items():
        env = env_name(name)
        assert env in ENVS, f"backend {name}: no envs/{env}.yaml"
        assert core | {normalize(p) for p in backend.packages} <= set(pip_pins(ENVS[env])), env


def test_the_pipeline_environment_holds_every_job_dependency():
    assert set(pip_pins(ENVS["quantbench"])) == set(requirements()) - RUNNER_ONLY


def test_r_pins_are_the_tested_debian_versions():
    pins = conda_pins(ENVS["quantbench"])
    assert set(R_PACKAGES) <= set(pins)
    for conda_name, debian_name in R_PACKAGES.items():
        query = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", debian_name], capture_output=True, text=True)
        if query.returncode != 0:
            pytest.skip(f"{debian_name} is not installed from Debian here (scripts/install-r.sh installs it)")
        upstream = re.match(r"[\d.]+", query.stdout).group(0).rstrip(".")
        assert upstream.startswith(pins[conda_name]), (conda_name, pins[conda_name], query.stdout)
