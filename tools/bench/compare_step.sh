#!/usr/bin/env bash
# Runs `precis bench step` and the PyTorch reference (plain loop and HF Trainer) on the same config,
# batch, lengths and thread count, alternating them ROUNDS times (this VM is noisy: interleaving
# keeps both sides under the same conditions), and prints every run plus the medians.
#
#   VENV=/path/to/venv ROUNDS=8 THREADS=2 bash tools/bench/compare_step.sh
#   MODEL=t5-scratch-small bash tools/bench/compare_step.sh     # another preset (configs/$MODEL.json)
#   BF16=1 bash tools/bench/compare_step.sh   # bf16 products: `bench step --bf16` against torch.autocast
#                                             # (and Trainer's bf16=True), plus Precis fp32 in the same rounds
# The venv needs torch==2.13.0+cpu, transformers, accelerate (tools/golden/run.sh makes one).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv-golden}
ROUNDS=${ROUNDS:-8}  # this VM is noisy: fewer rounds move the medians by ±10 %
THREADS=${THREADS:-2}
STEPS=${STEPS:-10}
MODEL=${MODEL:-${CONFIG:-bart-small}}  # CONFIG= is the same
# A preset built into precis, or a config.json under configs/ (bart-base-shapes: facebook/bart-base's dimensions).
PMODEL=$MODEL; [ -f "configs/$MODEL.json" ] && PMODEL="configs/$MODEL.json"
BATCH=${BATCH:-8}
ARGS=(--batch "$BATCH" --source-len 256 --target-len 64 --threads "$THREADS" --steps "$STEPS")
BF16=${BF16:-0}
PBF=(); TBF=()
[ "$BF16" = 1 ] && PBF=(--bf16) && TBF=(--bf16)
PRECIS=${PRECIS:-.build/release/precis}
[ -x "$PRECIS" ] || swift build -c release >/dev/null
out=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  "$PRECIS" bench step --config "$PMODEL" "${ARGS[@]}" "${PBF[@]}" --json | tee -a "$out/precis.jsonl"
  "$VENV/bin/python" tools/bench/pytorch_step.py --config "configs/$MODEL.json" "${ARGS[@]}" "${TBF[@]}" --mode plain 2>/dev/null | grep "^{\"" | tee -a "$out/torch.jsonl"
  "$VENV/bin/python" tools/bench/pytorch_step.py --config "configs/$MODEL.json" "${ARGS[@]}" "${TBF[@]}" --mode trainer 2>/dev/null | grep "^{\"" | tee -a "$out/trainer.jsonl"
  if [ "$BF16" = 1 ]; then "$PRECIS" bench step --config "$PMODEL" "${ARGS[@]}" --json | tee -a "$out/precis-fp32.jsonl"; fi
done
python3 - "$out" <<'PY'
import json, statistics, sys, os
d = sys.argv[1]
def load(n): return [json.loads(l) for l in open(os.path.join(d, n)) if l.strip()]
p, t, tr = load("precis.jsonl"), load("torch.jsonl"), load("trainer.jsonl")
med = lambda xs, k: statistics.median(x[k] for x in xs)
print()
print(f"{'':24}{'step ms':>10}{'tokens/s':>11}{'fwd ms':>9}{'bwd ms':>9}{'opt ms':>9}{'peak RSS MiB':>14}")
print(f"{'precis':24}{med(p,'step_ms'):10.1f}{med(p,'tokens_per_s'):11.0f}{med(p,'forward_ms'):9.1f}{med(p,'backward_ms'):9.1f}{med(p,'optimizer_ms'):9.1f}{med(p,'peak_rss_mib'):14.0f}")
print(f"{'pytorch (plain loop)':24}{med(t,'step_ms'):10.1f}{med(t,'tokens_per_s'):11.0f}{med(t,'forward_ms'):9.1f}{med(t,'backward_ms'):9.1f}{med(t,'optimizer_ms'):9.1f}{med(t,'peak_rss_mib'):14.0f}")
print(f"{'pytorch (HF Trainer)':24}{med(tr,'step_ms'):10.1f}{med(tr,'tokens_per_s'):11.0f}{'':27}{med(tr,'peak_rss_mib'):14.0f}")
print(f"\nprecis / pytorch tokens/s: {med(p,'tokens_per_s')/med(t,'tokens_per_s'):.2f}x (plain), {med(p,'tokens_per_s')/med(tr,'tokens_per_s'):.2f}x (Trainer)")
print(f"precis GFLOP/s {med(p,'gflops'):.1f} of sgemm peak {med(p,'sgemm_peak_gflops'):.1f} ({100*med(p,'gflops')/med(p,'sgemm_peak_gflops'):.0f}%, best burst before the steps), kernel {p[0]['blas_kernel']}")
print(f"  per-round fractions of the best burst: median {100*statistics.median(x['gflops']/x['sgemm_peak_gflops'] for x in p):.0f}%")
if all(x.get('sgemm_between_steps_gflops') for x in p):
  print(f"  of sgemm measured between the steps (median of bursts, same conditions): {med(p,'sgemm_between_steps_gflops'):.1f} GFLOP/s, "
        f"per-round fractions median {100*statistics.median(x['gflops']/x['sgemm_between_steps_gflops'] for x in p):.0f}%")
if os.path.exists(os.path.join(d, "precis-fp32.jsonl")):
  f = load("precis-fp32.jsonl")
  print(f"{'precis fp32 (same rounds)':24}{med(f,'step_ms'):10.1f}{med(f,'tokens_per_s'):11.0f}{med(f,'forward_ms'):9.1f}{med(f,'backward_ms'):9.1f}{med(f,'optimizer_ms'):9.1f}{med(f,'peak_rss_mib'):14.0f}")
  print(f"precis bf16 / precis fp32 tokens/s: {med(p,'tokens_per_s')/med(f,'tokens_per_s'):.2f}x")
  # Each round's own ratio (the two runs minutes apart, so the VM's drift cancels more than across rounds).
  rs = [a['tokens_per_s'] / b['tokens_per_s'] for a, b in zip(p, f)]
  print(f"  per round: {' · '.join(f'{r:.2f}' for r in rs)} (median {statistics.median(rs):.2f}x)")
print(f"precis peak RSS / pytorch: {med(p,'peak_rss_mib')/med(t,'peak_rss_mib'):.2f}")
PY
