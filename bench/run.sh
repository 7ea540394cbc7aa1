#!/usr/bin/env bash
# Runs the benchmarks (5 repetitions, medians), writes bench/results/NAME.json and
# NAME_summary.json, and prints the same-run ratios that matter:
#   forward  the BERT-base forward as a fraction of bare sgemm throughput on the same shapes, and
#            the default model's eval tokens/s (tquant_bench_forward, ~1 min)
#   calib    calibration seconds of every range estimator and of PEG on the same 16 x 512 tokens,
#            and the fake-quantized forward's time over the FP forward's on the same batch for
#            w8a8, w8a8-peg, w6a6 and per-token w8a8 (tquant_bench_calib, ~1-2 min)
#   gptq     the GPTQ solve of a 4096 x 4096 layer (synthetic H) and its GFLOP/s over a 4096^3
#            sgemm in the same run; the clip-ratio grid search on the same layer
#            (tquant_bench_gptq, ~2 min)
#   train    one training step (forward, backward, clipping, AdamW) of BERT-mini on 32 x 128
#            masked-LM tokens and of the default model's LLaMA shape on 8 x 256 tokens: tokens/s,
#            and the step's GEMM GFLOP/s over an sgemm of BERT-mini's FFN shape in the same run
#            (tquant_bench_train, ~1 min)
#   kernels  4-bit GEMV (q4_0, tquant 4-bit g32; float32 activations, and int8 activations quantized
#            in the timed loop) vs cblas_sgemv at 4096 x 4096, int8 GEMM (per-tensor, PEG K = 6) vs
#            cblas_sgemm at 512 x 4096 x 4096, on 1 and 2 threads (tquant_bench_kernels, ~2 min)
#   eval     end-to-end perplexity-evaluation tokens/s at ctx 512, F32 vs Q4_0 GGUF held packed (float and
#            int8 activations) vs W8A8 (fake and --real-int8), on 1 and 2 threads: the default model
#            on TinyStories eval text, and a LLaMA-shaped random model with hidden 1024 where the
#            linears dominate (tquant_bench_eval, ~5 min)
# Usage: bash bench/run.sh [forward] [calib] [gptq] [train] [kernels] [eval]   (default: the first four)
# TQUANT_BUILD_DIR=DIR uses (and builds the benchmark targets in) an existing build folder
# instead of running scripts/build.sh into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
benches=("$@")
[ ${#benches[@]} -eq 0 ] && benches=(forward calib gptq train)
build=${TQUANT_BUILD_DIR:-}
if [ -z "$build" ]; then
  bash scripts/build.sh >/dev/null
  build=build
else
  targets=()
  for b in "${benches[@]}"; do targets+=(--target "tquant_bench_$b"); done
  cmake --build "$build" -j "$(nproc)" "${targets[@]}" >/dev/null
fi
mkdir -p bench/results
results=()
for b in "${benches[@]}"; do
  case "$b" in forward|calib|gptq|train|kernels|eval) ;;
    *) echo "unknown benchmark '$b' (forward, calib, gptq, train, kernels, eval)" >&2; exit 2 ;; esac
  "$build/bench/tquant_bench_$b" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_out="bench/results/$b.json" --benchmark_out_format=json
  results+=("bench/results/$b.json")
done
[ ${#results[@]} -eq 0 ] || /usr/bin/python3 bench/summarize.py "${results[@]}"
