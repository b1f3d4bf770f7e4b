#!/usr/bin/env bash
# Install a one-node SLURM (controller, node daemon, client tools) and munge from Debian, for
# tests/test_slurm.py, which starts the daemons itself with a throw-away configuration.
# Nothing is configured or started here; an existing install is left as it is. Without root or
# apt-get this does nothing and the SLURM test skips, saying why.
set -euo pipefail
packages=(slurmctld slurmd slurm-client munge)
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
   && command -v munged >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! sudo -n true 2>/dev/null; then
    echo "SLURM not installed (needs root for apt-get): tests/test_slurm.py will skip" >&2
    exit 0
  fi
  sudo="sudo"
fi
if ! command -v apt-get >/dev/null; then
  echo "SLURM not installed (no apt-get): tests/test_slurm.py will skip" >&2
  exit 0
fi
echo "Installing SLURM from Debian: ${packages[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
