#!/usr/bin/env bash
# The activation-quantization acceptance table (issue 3): the default model's perplexity and KL
# divergence against FP for each recipe, on WikiText-2 test (calibrated on WikiText-2 valid) and
# on TinyStories eval (calibrated on TinyStories calib). Writes one JSON per run and a summary
# (bench/results/activation_table.{json,md}).
#
#   bash bench/activation_table.sh [--quick]     # --quick: first 20,000 eval tokens, 32 windows
set -euo pipefail
cd "$(dirname "$0")/.."
tq=./build/tquant
model=../shared/models/tinystories-656k
out=out/activation-table
mkdir -p "$out" bench/results
samples=128
max_tokens=()
if [[ "${1:-}" == "--quick" ]]; then samples=32; max_tokens=(--max-tokens 20000); fi

# PEG variants derived from the shipped preset: K groups, with or without the range permutation.
for k in 4 8; do
  for perm in true false; do
    /usr/bin/python3 - "$k" "$perm" > "$out/w8a8-peg-k$k-$perm.json" <<'EOF'
import json, sys
r = json.load(open("recipes/w8a8-peg.json"))
r["activations"]["groups"] = int(sys.argv[1])
r["activations"]["permute"] = sys.argv[2] == "true"
r["name"] = f"w8a8-peg-k{sys.argv[1]}" + ("-permuted" if sys.argv[2] == "true" else "")
print(json.dumps(r, indent=2))
EOF
  done
done

run() {  # run DATASET NAME ARGS...
  local set=$1 name=$2; shift 2
  local data calib
  if [[ $set == wikitext2 ]]; then
    data=../shared/data/wikitext-2/raw/wiki.test.raw; calib=../shared/data/wikitext-2/valid.txt
  else
    data=../shared/data/tinystories/eval.txt; calib=../shared/data/tinystories/calib.txt
  fi
  local start=$SECONDS
  if [[ $name == fp ]]; then
    $tq eval --model $model --data $data --ctx 512 "${max_tokens[@]}" \
      --save-logits "$out/$set-fp.logits" --json "$out/$set-$name.json" > "$out/$set-$name.log"
  else
    $tq eval --model $model --data $data --ctx 512 "${max_tokens[@]}" --calib $calib \
      --calib-samples $samples --seed 0 --kld-against "$out/$set-fp.logits" \
      --json "$out/$set-$name.json" "$@" > "$out/$set-$name.log"
  fi
  echo "$set $name: $((SECONDS - start)) s"
}

for set in wikitext2 tinystories; do
  run $set fp
  run $set w8a8 --recipe w8a8
  run $set w8a8-mixed --recipe w8a8-mixed
  run $set w8a8-peg-k6-permuted --recipe w8a8-peg
  for k in 4 8; do
    run $set w8a8-peg-k$k --recipe "$out/w8a8-peg-k$k-false.json"
    run $set w8a8-peg-k$k-permuted --recipe "$out/w8a8-peg-k$k-true.json"
  done
  run $set w6a6 --recipe w6a6
  run $set w6a6-os-gm --recipe w6a6-os --gamma-migration
  run $set w6a6-os-gm-twc --recipe w6a6-os --gamma-migration --token-clipping coarse
  run $set w4a8 --recipe w4a8
done

/usr/bin/python3 bench/activation_table.py "$out" bench/results/activation_table
