#!/usr/bin/env bash
# The default bart-small recipe (configs/train-samsum.yaml) trained STEPS steps in one process, in
# fp32 and with bf16 products (training.bf16: true), same seed and data order; then the two loss
# curves compared: a moving average of WINDOW steps, its largest relative difference, the final
# loss (the mean of the last WINDOW steps), one line per 50 steps, and a verdict against 1 %.
#
#   bash tools/bench/bf16_loss_curve.sh                      # make bf16-loss-curve
#   STEPS=100 THREADS=2 bash tools/bench/bf16_loss_curve.sh
#   PRECIS_BF16_EMULATE=1 bash tools/bench/bf16_loss_curve.sh   # a CPU without AMX / AVX-512-BF16 (slow)
#   COMPARE_ONLY=1 bash tools/bench/bf16_loss_curve.sh       # compare what OUT holds (runs cut short too)
#   PARALLEL=1 ...                                           # both runs at once (THREADS each)
#   RUNS=fp32 ... / RUNS=bf16 ...                            # one of the two (then COMPARE_ONLY=1)
#
# The recipe's settings, except: max_steps STEPS, warmup_steps a tenth of them (the recipe warms up
# over 400 of its ~5,500 steps), the loss logged every step, no evaluation, no checkpoints, no
# TensorBoard, and the committed SAMSum tokenizer when runs/tokenizer.json is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-300}
THREADS=${THREADS:-$(nproc)}
WINDOW=${WINDOW:-25}
OUT=${OUT:-runs/bf16-loss-curve}
CONFIG=${CONFIG:-configs/train-samsum.yaml}
PRECIS=${PRECIS:-.build/release/precis}
TOKENIZER=${TOKENIZER:-runs/tokenizer.json}
RUNS=${RUNS:-fp32 bf16}
[ -f "$TOKENIZER" ] || TOKENIZER=Tests/Fixtures/tokenizer/samsum-bpe-8192.json

run() {  # run NAME BF16
  "$PRECIS" train --in-process --config "$CONFIG" --threads "$THREADS" \
    --set "output_dir=$OUT/$1" --set "max_steps=$STEPS" --set "warmup_steps=$(( (STEPS + 9) / 10 ))" \
    --set logging_steps=1 --set "eval_strategy=\"no\"" --set "save_strategy=\"no\"" --set load_best_model_at_end=false \
    --set report_to=none --set "tokenizer=$TOKENIZER" --set "bf16=$2" > "$OUT/$1.log" 2>&1
}

if [ "${COMPARE_ONLY:-0}" != 1 ]; then
  [ -x "$PRECIS" ] || swift build -c release --product precis >/dev/null
  [ -f data/samsum/train.jsonl ] || make data >/dev/null
  mkdir -p "$OUT"
  echo "bf16 loss curve: $STEPS steps of $CONFIG, $THREADS thread(s), window $WINDOW; logs in $OUT/{fp32,bf16}.log"
  if [ "${PARALLEL:-0}" = 1 ]; then
    run fp32 false & f=$!; run bf16 true & b=$!
    wait $f; wait $b
  else
    for r in $RUNS; do
      start=$(date +%s); run "$r" "$([ "$r" = bf16 ] && echo true || echo false)"; echo "$r: $(( $(date +%s) - start )) s"
    done
  fi
fi

python3 - "$OUT" "$WINDOW" <<'PY'
import json, sys, os
out, window = sys.argv[1], int(sys.argv[2])
def losses(name):
    with open(os.path.join(out, name, "trainer_state.json")) as f:
        h = json.load(f)["log_history"]
    return {int(e["step"]): e["loss"] for e in h if "loss" in e}
a, b = losses("fp32"), losses("bf16")
steps = sorted(set(a) & set(b))
steps = [s for i, s in enumerate(steps) if s == i + 1]   # the common prefix, one entry per step
if len(steps) < window:
    sys.exit(f"only {len(steps)} common steps logged: fewer than the window ({window})")
def ma(d, i): return sum(d[s] for s in steps[i - window + 1:i + 1]) / window
print(f"{'step':>6} {'fp32 loss':>10} {'bf16 loss':>10} {'fp32 MA':>9} {'bf16 MA':>9} {'rel. diff of MA':>16}")
worst, worst_step = 0.0, 0
for i in range(window - 1, len(steps)):
    x, y = ma(a, i), ma(b, i)
    r = abs(y - x) / abs(x)
    if r > worst: worst, worst_step = r, steps[i]
    if steps[i] % 50 == 0 or i == len(steps) - 1:
        s = steps[i]
        print(f"{s:>6} {a[s]:>10.4f} {b[s]:>10.4f} {x:>9.4f} {y:>9.4f} {100 * r:>15.4f}%")
fx, fy = ma(a, len(steps) - 1), ma(b, len(steps) - 1)
final = abs(fy - fx) / abs(fx)
print(f"steps compared: {len(steps)} (moving average over {window} steps, from step {steps[window - 1]})")
print(f"largest relative difference of the moving averages: {100 * worst:.4f}% at step {worst_step}")
print(f"final loss (mean of the last {window} steps): fp32 {fx:.4f}, bf16 {fy:.4f}, relative difference {100 * final:.4f}%")
ok = worst <= 0.01 and final <= 0.01
print(f"per step, largest |bf16 - fp32| / fp32: {100 * max(abs(b[s] - a[s]) / abs(a[s]) for s in steps):.4f}%")
print(f"verdict: {'within' if ok else 'NOT within'} 1 % of the fp32 run" + ("" if steps[-1] >= 300 else f" over {steps[-1]} steps (not 300)"))
sys.exit(0 if ok else 1)
PY
