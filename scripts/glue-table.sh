#!/usr/bin/env bash
# The GLUE table of issue 6 (METHODS.md §2 and §3) on the reference encoders that
# scripts/reference-models.sh fine-tuned: for each task and seed model, FP32, the PTQ settings,
# Outlier Suppression, AdaRound and QAT; then scripts/glue_table_report.py writes TABLE.md with
# the median over seeds of the dev metric, the model size in bytes and the time each method took.
# Usage: bash scripts/glue-table.sh [REFERENCE_DIR] [OUT_DIR]
#   (defaults: out/reference-models, out/glue-table)
# Every finished cell is skipped on a rerun. Environment: TASKS (default "sst2 mrpc rte stsb
# cola"), SEEDS ("1 2 3"), QAT_EPOCHS (default 6, METHODS.md §2), QAT_MAX_TRAIN (0 = the whole
# train split; a number keeps the first N examples, for a cheaper run), CALIB_SAMPLES (256),
# ADAROUND_ITERS (1000), ROWS (default "ptq adaround qat": which groups of rows to run), TQUANT
# (a tquant binary to use instead of building ./build/tquant: the table of a fixed build while
# the tree changes).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ref=$(realpath -m "${1:-out/reference-models}")
out=$(realpath -m "${2:-out/glue-table}")
TASKS=${TASKS:-"sst2 mrpc rte stsb cola"}
SEEDS=${SEEDS:-"1 2 3"}
QAT_EPOCHS=${QAT_EPOCHS:-6}
QAT_MAX_TRAIN=${QAT_MAX_TRAIN:-0}
CALIB_SAMPLES=${CALIB_SAMPLES:-256}
ADAROUND_ITERS=${ADAROUND_ITERS:-1000}
ROWS=${ROWS:-"ptq adaround qat"}
wants() { [[ " $ROWS " == *" $1 "* ]]; }
glue=$(realpath ../shared/data/glue)
[ -d "$ref/glue" ] || { echo "error: $ref/glue: no fine-tuned models; run scripts/reference-models.sh first" >&2; exit 1; }

if [ -n "${TQUANT:-}" ]; then
  tq=$(realpath "$TQUANT")
  [ -x "$tq" ] || { echo "error: TQUANT=$TQUANT: not an executable" >&2; exit 1; }
else
  bash scripts/build.sh
  tq=$root/build/tquant
fi
log() { echo "== $(date +%H:%M:%S) $*"; }

train_tsv() {
  case $1 in
    sst2) echo "$glue/SST-2/train.tsv" ;; mrpc) echo "$glue/MRPC/train.tsv" ;; rte) echo "$glue/RTE/train.tsv" ;;
    stsb) echo "$glue/STS-B/train.tsv" ;; cola) echo "$glue/CoLA/cola_public_raw/in_domain_train.tsv" ;;
  esac
}
dev_tsv() {
  case $1 in
    sst2) echo "$glue/SST-2/dev.tsv" ;; mrpc) echo "$glue/MRPC/dev.tsv" ;; rte) echo "$glue/RTE/dev.tsv" ;;
    stsb) echo "$glue/STS-B/dev.tsv" ;; cola) echo "$glue/CoLA/dev.tsv" ;;
  esac
}

# cell NAME COMMAND...: runs once, keeps the wall time in NAME.seconds (eval writes NAME.json).
cell() {
  local name=$1; shift
  if [ -f "$dir/$name.seconds" ]; then return; fi
  log "$task seed $seed: $name"
  local t0; t0=$(date +%s.%N)
  "$@" > "$dir/$name.log" 2>&1 || { echo "error: $name failed; see $dir/$name.log" >&2; tail -5 "$dir/$name.log" >&2; exit 1; }
  awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f\n", a - b }' > "$dir/$name.seconds"
}

for task in $TASKS; do
  train=$(train_tsv "$task") dev=$(dev_tsv "$task")
  if [ "$QAT_MAX_TRAIN" -gt 0 ]; then
    mkdir -p "$out/$task"
    awk -v n=$((QAT_MAX_TRAIN + 1)) 'NR <= n' "$train" > "$out/$task/qat-train.tsv"
    qat_train=$out/$task/qat-train.tsv
  else
    qat_train=$train
  fi
  for seed in $SEEDS; do
    model=$ref/glue/$task/seed-$seed
    dir=$out/$task/seed-$seed
    mkdir -p "$dir"
    ev=("$tq" eval --task glue --glue-task "$task" --data "$dev")
    cal=(--calib "$train" --calib-samples "$CALIB_SAMPLES" --seed "$seed")
    cell fp32 "${ev[@]}" --model "$model" --json "$dir/fp32.json"
    if wants ptq; then
      cell w8a8 "${ev[@]}" --model "$model" --recipe w8a8 "${cal[@]}" --json "$dir/w8a8.json"
      cell w8a8-mixed "${ev[@]}" --model "$model" --recipe w8a8-mixed "${cal[@]}" --json "$dir/w8a8-mixed.json"
      cell w8a8-peg "${ev[@]}" --model "$model" --recipe w8a8-peg "${cal[@]}" --json "$dir/w8a8-peg.json"
      cell w6a6 "${ev[@]}" --model "$model" --recipe w6a6 "${cal[@]}" --json "$dir/w6a6.json"
      cell w6a6-os "${ev[@]}" --model "$model" --recipe w6a6-os --gamma-migration --token-clipping fine "${cal[@]}" \
        --json "$dir/w6a6-os.json"
      # QAT's recipes without training: what QAT has to recover.
      cell w4a8 "${ev[@]}" --model "$model" --recipe w4a8 "${cal[@]}" --json "$dir/w4a8.json"
      cell w4a8-emb2 "${ev[@]}" --model "$model" --recipe w4a8-emb2 "${cal[@]}" --json "$dir/w4a8-emb2.json"
    fi
    if wants adaround; then
      # AdaRound: 4-bit per-channel weights learned layer by layer on the task's own sentences.
      # (every field with a space in it is a sentence; ids, labels and scores have none)
      awk -F'\t' '{ for (i = 1; i <= NF && n < 4000; ++i) if ($i ~ / /) { print $i; ++n } }' "$train" \
        > "$dir/adaround-calib.txt"
      cell adaround-quantize "$tq" quantize --model "$model" --method adaround --wbits 4 --sym --iters "$ADAROUND_ITERS" \
        --calib "$dir/adaround-calib.txt" --calib-len 128 --seed "$seed" --out "$dir/w4-adaround" --json "$dir/adaround-quantize.json"
      cell w4a32-adaround "${ev[@]}" --model "$dir/w4-adaround" --json "$dir/w4a32-adaround.json"
    fi
    wants qat || continue
    for recipe in w8a8 w4a8 w4a8-emb2; do
      cell "qat-$recipe" "$tq" qat --model "$model" --recipe "$recipe" --glue-task "$task" --train "$qat_train" --dev "$dev" \
        --out "$dir/qat-$recipe" --seeds "$seed" --epochs "$QAT_EPOCHS"
    done
  done
done
python3 scripts/glue_table_report.py "$out" "$ref" > "$out/TABLE.md.tmp" && mv "$out/TABLE.md.tmp" "$out/TABLE.md"
log "done: $out/TABLE.md"
