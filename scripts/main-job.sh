#!/usr/bin/env bash
# The main job: set up, build, evaluate the default model (FP32) on WikiText-2 test and on the
# in-domain TinyStories eval split, then quantize its weights with aespa (4-bit, groups of 32)
# into a packed checkpoint and measure what was lost. Results land in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
model=../shared/models/tinystories-656k
stories=../shared/data/tinystories
mkdir -p out
echo "== WikiText-2 test (raw), ctx 512"
./build/tquant eval --model "$model" --task ppl --data ../shared/data/wikitext-2/raw/wiki.test.raw \
  --ctx 512 --stride 512 --json out/fp32-wikitext2.json
echo "== TinyStories eval, ctx 512"
./build/tquant eval --model "$model" --task ppl --data $stories/eval.txt \
  --ctx 512 --stride 512 --save-logits out/fp32-tinystories.logits --json out/fp32-tinystories.json
echo "== Weight quantization: aespa, 4-bit, groups of 32, calibrated on TinyStories calib"
./build/tquant quantize --model "$model" --method aespa --wbits 4 --group 32 --calib $stories/calib.txt \
  --calib-samples 128 --out out/tinystories-aespa-w4g32 --json out/aespa-w4g32-quantize.json
echo "== The quantized checkpoint on TinyStories eval, KL divergence against FP"
./build/tquant eval --model out/tinystories-aespa-w4g32 --task ppl --data $stories/eval.txt \
  --ctx 512 --stride 512 --kld-against out/fp32-tinystories.logits --json out/aespa-w4g32-tinystories.json
