#!/usr/bin/env bash
# The main job: set up, build, and evaluate the default model (FP32) on WikiText-2 test and on
# the in-domain TinyStories eval split.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
model=../shared/models/tinystories-656k
mkdir -p out
echo "== WikiText-2 test (raw), ctx 512"
./build/tquant eval --model "$model" --task ppl --data ../shared/data/wikitext-2/raw/wiki.test.raw \
  --ctx 512 --stride 512 --json out/fp32-wikitext2.json
echo "== TinyStories eval, ctx 512"
./build/tquant eval --model "$model" --task ppl --data ../shared/data/tinystories/eval.txt \
  --ctx 512 --stride 512 --json out/fp32-tinystories.json
