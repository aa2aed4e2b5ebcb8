#!/usr/bin/env bash
# Two builds of Precis, interleaved round by round on the same machine: `precis bench step` and
# `precis bench cluster` (fp32 gradients) of build A, then of build B, ROUNDS times; prints each
# round and the medians. For checking that a change leaves the figures unchanged within noise.
#
#   OLD=/path/to/old/.build/release NEW=.build/release ROUNDS=5 bash tools/bench/compare_builds.sh
set -euo pipefail
OLD=${OLD:?set OLD to the bin dir of the other build}
NEW=${NEW:-.build/release}
ROUNDS=${ROUNDS:-5}
STEP_ARGS=${STEP_ARGS:---config bart-small --batch 8 --source-len 256 --target-len 64 --threads 2 --steps 10 --warmup 2}
CLUSTER_ARGS=${CLUSTER_ARGS:---model bart-small --steps 12 --codecs fp32 --repeat 1 --batch 4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { "$1/precis" bench step $STEP_ARGS --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])'; }
cluster() {
  "$1/precis" bench cluster $CLUSTER_ARGS --work-dir "$work/c" --json | tail -n 1 |
    python3 -c 'import json,sys; m=json.load(sys.stdin)["medians"][0]; print(m["s_per_step"])'
}
declare -a so sn co cn
for r in $(seq 1 "$ROUNDS"); do
  a=$(step "$OLD"); b=$(step "$NEW"); so+=("$a"); sn+=("$b")
  c=$(cluster "$OLD"); d=$(cluster "$NEW"); co+=("$c"); cn+=("$d")
  echo "round $r: step ms old $a new $b | cluster s/step old $c new $d"
done
python3 - "${so[*]}" "${sn[*]}" "${co[*]}" "${cn[*]}" <<'PY'
import statistics as st, sys
so, sn, co, cn = ([float(x) for x in a.split()] for a in sys.argv[1:5])
print(f"median step ms: old {st.median(so):.1f} new {st.median(sn):.1f} (new/old {st.median(sn)/st.median(so):.3f}; "
      f"per-round ratios median {st.median([b/a for a, b in zip(so, sn)]):.3f})")
print(f"median cluster s/step: old {st.median(co):.4f} new {st.median(cn):.4f} (new/old {st.median(cn)/st.median(co):.3f}; "
      f"per-round ratios median {st.median([b/a for a, b in zip(co, cn)]):.3f})")
PY
