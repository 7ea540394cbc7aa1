#!/usr/bin/env bash
# Set up, build, and run every test (GoogleTest units and the NumPy-oracle checks) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 1200
