#!/usr/bin/env bash
# Installs the Debian 12 packages tquant needs (or, given arguments, those packages).
# Idempotent: when everything is present it neither calls apt-get nor prints anything.
set -euo pipefail
packages=("$@")
((${#packages[@]})) || packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-openmp-dev liblapacke-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libicu-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup: not root and no sudo: cannot install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
