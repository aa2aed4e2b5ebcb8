#!/usr/bin/env bash
# The best from-scratch SAMSum recipe (make train-best): BART's denoising pre-training on SAMSum's
# own dialogues and summaries, fine-tuning from it, then the test split scored with the decoding the
# model folder carries (configs/generation-samsum.json, tuned on validation) and the scores written
# into its model card. Prints each stage's wall time and the total, evaluation included.
#
#   bash tools/recipes/train_best.sh                     # = make train-best (BF16=auto)
#   BF16=false bash tools/recipes/train_best.sh          # fp32 products
#   PRETRAIN=... FINETUNE=... bash tools/recipes/train_best.sh   # other configs (ablations)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release}
PRETRAIN=${PRETRAIN:-configs/pretrain-samsum-best.yaml}
FINETUNE=${FINETUNE:-configs/train-samsum-best.yaml}
BF16=${BF16:-auto}
TEST=${TEST:-data/samsum/test.jsonl}

# The fine-tuned folder is the second config's output_dir.
OUT=$(sed -n 's/^  output_dir: *//p' "$FINETUNE" | head -1 | sed 's/[[:space:]]*#.*//; s/^"//; s/"$//')
[ -n "$OUT" ] || { echo "$FINETUNE: no training.output_dir" >&2; exit 1; }

t0=$(date +%s)
echo "== stage 1: denoising pre-training ($PRETRAIN)"
"$BIN/precis" train --config "$PRETRAIN" --in-process --bf16 "$BF16"
t1=$(date +%s)
echo "== stage 2: fine-tuning ($FINETUNE)"
"$BIN/precis" train --config "$FINETUNE" --in-process --bf16 "$BF16"
t2=$(date +%s)
echo "== test: $TEST"
"$BIN/precis" evaluate --model "$OUT" --data "$TEST" --output-dir "$OUT/eval-test" --record-in-card
t3=$(date +%s)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN { printf "wall time: pre-training %.1f min, fine-tuning %.1f min, test %.1f min, total %.1f min\n", (b-a)/60, (c-b)/60, (d-c)/60, (d-a)/60 }'
