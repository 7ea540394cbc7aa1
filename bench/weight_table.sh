#!/usr/bin/env bash
# The weight-quantization acceptance table (issue 4): the default model quantized with RTN, GPTQ,
# Z-Fold and aespa at W4/W3/W2, per channel and with group size 32, then evaluated: WikiText-2
# test (calibrated on WikiText-2 valid) and TinyStories eval (calibrated on TinyStories calib).
# Each cell: ppl, KLD against FP and the quantization time. Writes bench/results/weight_table.{json,md}.
#
#   bash bench/weight_table.sh [DATASET ...]     # wikitext2 and/or tinystories (default both)
set -euo pipefail
cd "$(dirname "$0")/.."
tq=$PWD/out/weight-table/tquant
model=../shared/models/tinystories-656k
out=out/weight-table
mkdir -p "$out" bench/results
cp build/tquant "$tq"  # a rebuild while this runs must not change the binary under it
sets=("$@")
[[ ${#sets[@]} -eq 0 ]] && sets=(wikitext2 tinystories)

for set in "${sets[@]}"; do
  if [[ $set == wikitext2 ]]; then
    data=../shared/data/wikitext-2/raw/wiki.test.raw; calib=../shared/data/wikitext-2/valid.txt
  else
    data=../shared/data/tinystories/eval.txt; calib=../shared/data/tinystories/calib.txt
  fi
  [[ -f $out/$set-fp.logits ]] || $tq eval --model $model --data $data --ctx 512 \
    --save-logits "$out/$set-fp.logits" --json "$out/$set-fp.json" > "$out/$set-fp.log"
  for method in rtn gptq zfold aespa; do
    for bits in 4 3 2; do
      for group in 0 32; do
        name=$set-$method-w$bits-g$group
        [[ -f $out/$name.eval.json ]] && continue
        $tq quantize --model $model --method $method --wbits $bits --group $group --calib $calib \
          --calib-samples 128 --seed 0 --out "$out/$name.model" --json "$out/$name.quant.json" \
          > "$out/$name.quant.log" 2>&1
        $tq eval --model "$out/$name.model" --data $data --ctx 512 --kld-against "$out/$set-fp.logits" \
          --json "$out/$name.eval.json" > "$out/$name.eval.log"
        rm -rf "$out/$name.model"
        echo "$name done"
      done
    done
  done
done
/usr/bin/python3 bench/weight_table.py "$out" bench/results/weight_table
