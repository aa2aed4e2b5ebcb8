#!/usr/bin/env bash
# Runs `precis bench generate` and transformers' generate() (tools/bench/pytorch_generate.py) on the
# same config, batch, source length, thread count and number of new tokens, alternating them ROUNDS
# times (this VM is noisy: interleaving keeps both sides under the same conditions), and prints every
# run plus the per-round ratios and their median.
#
#   VENV=/path/to/venv ROUNDS=5 THREADS=2 bash tools/bench/compare_generate.sh
#   MODEL=t5-scratch-small bash tools/bench/compare_generate.sh     # another preset (configs/$MODEL.json)
#   BF16=1 bash tools/bench/compare_generate.sh                      # bf16 products both sides (--bf16; autocast)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv-golden}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
BEAMS=${BEAMS:-1,4}
MODEL=${MODEL:-bart-small}
BF16=${BF16:-0}
bf16=()
[ "$BF16" = 1 ] && bf16=(--bf16)
PRECIS=${PRECIS:-.build/release/precis}
[ -x "$PRECIS" ] || swift build -c release >/dev/null
out=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  "$PRECIS" bench generate --config "$MODEL" --threads "$THREADS" --num-beams "$BEAMS" "${bf16[@]}" --json | grep '^{' | sed "s/^{/{\"round\":$r,/" | tee -a "$out/precis.jsonl"
  "$VENV/bin/python" tools/bench/pytorch_generate.py --config "configs/$MODEL.json" --threads "$THREADS" --num-beams "$BEAMS" "${bf16[@]}" 2>/dev/null \
    | grep '^{' | sed "s/^{/{\"round\":$r,/" | tee -a "$out/torch.jsonl"
done
MODEL="$MODEL" BF16="$BF16" python3 - "$out" <<'PY'
import json, statistics, sys, os
d = sys.argv[1]
def load(n): return [json.loads(l) for l in open(os.path.join(d, n)) if l.strip()]
p, t = load("precis.jsonl"), load("torch.jsonl")
print(f"\n{os.environ.get('MODEL', 'bart-small')}" + (" (bf16 products; transformers under autocast)" if os.environ.get("BF16") == "1" else ""))
for beams in sorted({x["num_beams"] for x in p}):
    pr = {x["round"]: x for x in p if x["num_beams"] == beams}
    tr = {x["round"]: x for x in t if x["num_beams"] == beams}
    rounds = sorted(set(pr) & set(tr))
    ratios = [pr[r]["tokens_per_s"] / tr[r]["tokens_per_s"] for r in rounds]
    print(f"num_beams {beams}: precis tokens/s " + " · ".join(f"{pr[r]['tokens_per_s']:.0f}" for r in rounds)
          + " | transformers " + " · ".join(f"{tr[r]['tokens_per_s']:.0f}" for r in rounds))
    print(f"  per-round ratio " + " · ".join(f"{x:.2f}" for x in ratios) + f"  → median {statistics.median(ratios):.2f}x;"
          f" peak RSS MiB precis {statistics.median(pr[r]['peak_rss_mib'] for r in rounds):.0f}, torch {statistics.median(tr[r]['peak_rss_mib'] for r in rounds):.0f}")
PY
