#!/usr/bin/env bash
# Runs the forward benchmarks (5 repetitions, medians) and writes bench/results/forward.json,
# then prints the ratios that matter: the BERT-base forward as a fraction of bare sgemm
# throughput on the same shapes, and the default model's eval tokens/s.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
mkdir -p bench/results
./build/bench/tquant_bench_forward --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_out=bench/results/forward.json --benchmark_out_format=json
/usr/bin/python3 bench/summarize.py bench/results/forward.json
