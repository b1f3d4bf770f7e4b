#!/usr/bin/env bash
# Install R and the R packages the analysis needs from Debian, unless they are already there.
# Debian's r-cran-* packages are used because CRAN is not reachable from every machine;
# --no-install-recommends keeps this at ~150 MB instead of ~1.7 GB; r-cran-rstatix (Dunn's post-hoc
# test) brings ~120 more r-cran-* dependencies, ~180 MB installed by apt-cache's Installed-Size sums.
set -euo pipefail
packages=(r-base-core r-cran-ggplot2 r-cran-effectsize r-cran-ragg r-cran-rstatix)
if command -v Rscript >/dev/null && Rscript -e 'library(ggplot2); library(effectsize); library(ragg); library(rstatix)' >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing R from Debian: ${packages[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
