#!/usr/bin/env bash
# Trains tquant's reference encoder models on this machine's CPU, deterministically:
#   1. an English pretraining corpus from Debian packages and the allowed ../shared text
#      (scripts/pretraining-corpus.sh; never a dev or test split), split 99:1 into train and
#      held-out documents;
#   2. a lowercased WordPiece tokenizer on the training text;
#   3. a BERT encoder pretrained with masked LM (15% masking, 80/10/10);
#   4. fine-tuned models for SST-2, MRPC, RTE, STS-B and CoLA (3 seeds each, median reported);
#   5. `tquant analyze` on the pretrained and the fine-tuned models (structured outliers).
# Usage: bash scripts/reference-models.sh [OUT_DIR]   (default: out/reference-models)
# Every stage is skipped when its output is complete, and an interrupted pretraining run is
# resumed, so running the script again continues where it stopped. The sizes below can be
# overridden from the environment (SIZE, VOCAB, SEQ_LEN, BATCH, STEPS, LR, FT_LR, FT_EPOCHS,
# SST2_EPOCHS, SEEDS). With the defaults, pretraining takes about 1 h 45 min on 2 cores (~4,100
# tokens/s) and fine-tuning about 50 min; STEPS=1000 gives a 30-minute pretraining.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(realpath -m "${1:-out/reference-models}")
SIZE=${SIZE:-mini}
VOCAB=${VOCAB:-8192}
SEQ_LEN=${SEQ_LEN:-128}
BATCH=${BATCH:-64}
STEPS=${STEPS:-3000}
LR=${LR:-1e-3}
FT_LR=${FT_LR:-2e-4}
FT_EPOCHS=${FT_EPOCHS:-3}
SST2_EPOCHS=${SST2_EPOCHS:-1}
SEEDS=${SEEDS:-1,2,3}
glue=$(realpath ../shared/data/glue)

bash scripts/build.sh
tq=$root/build/tquant
mkdir -p "$out"
log() { echo "== $(date +%H:%M:%S) $*"; }

log "corpus"
if [ ! -f "$out/corpus/MANIFEST.tsv" ]; then bash scripts/pretraining-corpus.sh "$out/corpus"; fi
if [ ! -f "$out/split/heldout.txt" ]; then
  # Every 100th document (blank-line separated) of each source is held out for the MLM curve.
  rm -rf "$out/split.tmp" && mkdir -p "$out/split.tmp"
  for f in "$out"/corpus/*.txt; do
    awk -v RS= -v ORS='\n\n' -v train="$out/split.tmp/train.txt" -v held="$out/split.tmp/heldout.txt" \
      '{ if (NR % 100 == 0) print >> held; else print >> train }' "$f"
  done
  mv "$out/split.tmp" "$out/split"
fi
wc -w "$out/split/train.txt" "$out/split/heldout.txt"

log "tokenizer"
if [ ! -f "$out/tokenizer/tokenizer.json" ]; then
  "$tq" train-tokenizer --type wordpiece --vocab-size "$VOCAB" --lowercase --data "$out/split/train.txt" \
    --out "$out/tokenizer"
fi

mlm=$out/bert-$SIZE-mlm
log "pretraining BERT-$SIZE (masked LM) into $mlm"
resume=()
if [ -f "$mlm/trainer_state.json" ]; then resume=(--resume); fi
"$tq" pretrain --arch bert --size "$SIZE" --data "$out/split/train.txt" --tokenizer "$out/tokenizer" \
  --out "$mlm" --seq-len "$SEQ_LEN" --batch "$BATCH" --micro-batch 32 --steps "$STEPS" --lr "$LR" \
  --warmup 0.06 --decay linear --weight-decay 0.01 --beta2 0.98 --eps 1e-6 --clip 1.0 --seed 0 \
  --save-every 100 --log-every 20 --eval-data "$out/split/heldout.txt" --eval-every 100 \
  --eval-sequences 512 "${resume[@]}"

finetune() {  # task train dev epochs
  local task=$1 train=$2 dev=$3 epochs=$4 dir=$out/glue/$1
  if [ -f "$dir/finetune_summary.json" ]; then return; fi
  log "fine-tuning $task"
  local resume=()
  if [ -d "$dir" ]; then resume=(--resume); fi
  "$tq" finetune --model "$mlm" --glue-task "$task" --train "$train" --dev "$dev" --out "$dir" \
    --epochs "$epochs" --batch 32 --lr "$FT_LR" --warmup 0.1 --max-length 128 --seeds "$SEEDS" \
    --log-every 100 "${resume[@]}"
}
finetune rte "$glue/RTE/train.tsv" "$glue/RTE/dev.tsv" "$FT_EPOCHS"
finetune mrpc "$glue/MRPC/train.tsv" "$glue/MRPC/dev.tsv" "$FT_EPOCHS"
finetune stsb "$glue/STS-B/train.tsv" "$glue/STS-B/dev.tsv" "$FT_EPOCHS"
finetune cola "$glue/CoLA/cola_public_raw/in_domain_train.tsv" "$glue/CoLA/dev.tsv" "$FT_EPOCHS"
finetune sst2 "$glue/SST-2/train.tsv" "$glue/SST-2/dev.tsv" "$SST2_EPOCHS"

log "outlier analysis"
first_seed=${SEEDS%%,*}
for model in "$mlm" "$out"/glue/*/seed-"$first_seed"; do
  name=$(basename "$model")
  [ "$name" = "seed-$first_seed" ] && name=$(basename "$(dirname "$model")")
  if [ ! -f "$out/analysis/$name/analysis.json" ]; then
    "$tq" analyze --model "$model" --data "$out/split/heldout.txt" --out "$out/analysis/$name" --samples 16 \
      --seq-len 128 >/dev/null
  fi
done

/usr/bin/python3 scripts/reference_models_report.py "$out" | tee "$out/REPORT.md"
log "done: the models are in $out"
