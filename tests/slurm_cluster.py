"""A throw-away one-node SLURM cluster on localhost: munged, slurmctld and slurmd from Debian's packages.

Configuration, state, spool and logs live in one scratch folder; ports are picked free. slurmd runs
configless (it fetches slurm.conf and gres.conf from slurmctld and links /run/slurm/conf to its cache)
because snakemake-executor-plugin-slurm-jobstep 0.6.1 drops SLURM_CONF from the environment of the
srun it starts inside each job, so that srun must find the configuration the way a compute node does.
That also puts munged on its default socket: an already running munged is used as it is.

The node advertises a GPU node's shape (16 CPUs, 125 GB, `Gres=gpu:1` backed by /dev/null) whatever
the machine has (`SlurmdParameters=config_overrides`): what is tested is scheduling, not capacity.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("munge", "sbatch", "squeue", "scontrol", "sinfo", "scancel")
MUNGE_SOCKET_DIR = Path("/run/munge")
CONFIGLESS_LINK = Path("/run/slurm/conf")


def missing_programs() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name, path=SBIN) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _wait(condition, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not happen within {timeout:.0f} s\n{tail}")


class LocalSlurm:
    """Start with `start()`, always `stop()` (it cancels jobs and ends only the daemons it started)."""

    def __init__(self, folder: Path, base_env: dict[str, str]):
        self.folder = folder
        self.node = socket.gethostname().split(".")[0]
        self.ctld_port, self.slurmd_port = _free_port(), _free_port()
        self.conf = folder / "slurm.conf"
        self.env = {**base_env, "PATH": SBIN, "SLURM_CONF": str(self.conf)}
        self._daemons: list[tuple[str, subprocess.Popen]] = []

    # -- commands ---------------------------------------------------------------------------
    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=30, check=check)

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still remembers (finished ones for MinJobAge = 300 s), as key=value fields."""
        out = self.run("scontrol", "show", "job", "--oneliner").stdout
        return [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in out.splitlines() if line.strip()]

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        for sub in ("state", "spool"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not self._munge_answers():
            self._start_munged()
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        _wait(lambda: self.run("scontrol", "ping", check=False).stdout.count("UP") > 0, 30, "slurmctld answering",
              self.folder / "slurmctld.log")
        self._spawn("slurmd", ["slurmd", "-D", "--conf-server", f"127.0.0.1:{self.ctld_port}"])
        _wait(lambda: self.run("sinfo", "-h", "-n", self.node, "-o", "%t", check=False).stdout.strip() == "idle",
              30, f"node {self.node} idle", self.folder / "slurmd.log")

    def stop(self) -> None:
        try:
            if any(name == "slurmctld" for name, _ in self._daemons):
                self.run("scancel", "--user", str(os.getuid()), check=False)
                _wait(lambda: not self.run("squeue", "-h", check=False).stdout.strip(), 30, "jobs cancelled")
        finally:
            self._end_daemons()

    def _end_daemons(self) -> None:
        for name, proc in reversed(self._daemons):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._daemons.clear()
        if CONFIGLESS_LINK.is_symlink() and str(os.readlink(CONFIGLESS_LINK)).startswith(str(self.folder)):
            CONFIGLESS_LINK.unlink()

    # -- pieces -----------------------------------------------------------------------------
    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.folder / f"{name}.out", "w")
        self._daemons.append((name, subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)))
        log.close()

    def _munge_answers(self) -> bool:
        return self.run("munge", "-n", check=False).returncode == 0

    def _start_munged(self) -> None:
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        MUNGE_SOCKET_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        # --force: munged refuses to run as root otherwise; --foreground so that stop() can end it.
        self._spawn("munged", ["munged", "--foreground", "--force", f"--key-file={key}",
                               f"--pid-file={self.folder / 'munged.pid'}", f"--log-file={self.folder / 'munged.log'}",
                               f"--seed-file={self.folder / 'munged.seed'}"])
        _wait(self._munge_answers, 15, "munged answering", self.folder / "munged.log")

    def _write_config(self) -> None:
        f = self.folder
        self.conf.write_text(f"""\
ClusterName=quantbench-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldParameters=enable_configless
SlurmdParameters=config_overrides
StateSaveLocation={f / 'state'}
SlurmdSpoolDir={f / 'spool'}
SlurmctldPidFile={f / 'slurmctld.pid'}
SlurmdPidFile={f / 'slurmd.pid'}
SlurmctldLogFile={f / 'slurmctld.log'}
SlurmdLogFile={f / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# No slurmdbd here: the plugin's squeue status checks see a finished job for this long.
MinJobAge=300
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 CPUs=16 RealMemory=128000 Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP
""")
        (f / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n")
