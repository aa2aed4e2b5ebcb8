#!/usr/bin/env bash
# Two builds of Precis (or one build under two environments), interleaved round by round on the
# same machine: `precis bench step` and `precis bench cluster` (fp32 gradients) of A ("old"), then
# of B ("new"), ROUNDS times; prints each round and the medians. For checking that a change leaves
# the figures unchanged within noise, or measuring what it gains.
#
#   OLD=/path/to/old/.build/release NEW=.build/release ROUNDS=5 bash tools/bench/compare_builds.sh
#   # one build, the portable kernels against the AVX2 builds, plus generation, no cluster:
#   OLD=.build/release OLD_ENV="PRECIS_NO_AVX2=1" CLUSTER=0 GENERATE=1 ROUNDS=10 bash tools/bench/compare_builds.sh
set -euo pipefail
OLD=${OLD:?set OLD to the bin dir of the other build}
NEW=${NEW:-.build/release}
OLD_ENV=${OLD_ENV:-}   # VAR=value ... set for A's runs only
NEW_ENV=${NEW_ENV:-}   # and for B's
ROUNDS=${ROUNDS:-5}
CLUSTER=${CLUSTER:-1}    # 0: leave `bench cluster` out
GENERATE=${GENERATE:-0}  # 1: also `bench generate` (greedy and beam 4, tokens/s)
STEP_ARGS=${STEP_ARGS:---config bart-small --batch 8 --source-len 256 --target-len 64 --threads 2 --steps 10 --warmup 2}
CLUSTER_ARGS=${CLUSTER_ARGS:---model bart-small --steps 12 --codecs fp32 --repeat 1 --batch 4}
GENERATE_ARGS=${GENERATE_ARGS:---config bart-small --batch 8 --source-len 256 --threads 2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# run A|B BIN ARGS...: the build's precis under its environment.
run() { local e=$OLD_ENV; [ "$1" = B ] && e=$NEW_ENV; shift; local bin=$1; shift; env $e "$bin/precis" "$@"; }
step() { run "$1" "$2" bench step $STEP_ARGS --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])'; }
cluster() {
  run "$1" "$2" bench cluster $CLUSTER_ARGS --work-dir "$work/c" --json | tail -n 1 |
    python3 -c 'import json,sys; m=json.load(sys.stdin)["medians"][0]; print(m["s_per_step"])'
}
generate() {  # "greedy,beam4" tokens/s
  run "$1" "$2" bench generate $GENERATE_ARGS --num-beams 1,4 --json |
    python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin if l.startswith("{")]; print(",".join(str(x["tokens_per_s"]) for x in r))'
}
so=(); sn=(); co=(); cn=(); go=(); gn=()
for r in $(seq 1 "$ROUNDS"); do
  a=$(step A "$OLD"); b=$(step B "$NEW"); so+=("$a"); sn+=("$b")
  line="round $r: step ms old $a new $b"
  if [ "$CLUSTER" = 1 ]; then
    c=$(cluster A "$OLD"); d=$(cluster B "$NEW"); co+=("$c"); cn+=("$d")
    line+=" | cluster s/step old $c new $d"
  fi
  if [ "$GENERATE" = 1 ]; then
    g=$(generate A "$OLD"); h=$(generate B "$NEW"); go+=("$g"); gn+=("$h")
    line+=" | generate tokens/s (greedy,beam4) old $g new $h"
  fi
  echo "$line"
done
python3 - "${so[*]}" "${sn[*]}" "${co[*]:-}" "${cn[*]:-}" "${go[*]:-}" "${gn[*]:-}" <<'PY'
import statistics as st, sys
so, sn, co, cn = ([float(x) for x in a.split()] for a in sys.argv[1:5])
go, gn = ([[float(v) for v in x.split(",")] for x in a.split()] for a in sys.argv[5:7])
def line(name, o, n, lower_is_better=True):
    ratio = st.median(n) / st.median(o)
    per = st.median([b / a for a, b in zip(o, n)])
    print(f"median {name}: old {st.median(o):.4g} new {st.median(n):.4g} (new/old {ratio:.3f}; per-round ratios median {per:.3f})")
line("step ms", so, sn)
if co: line("cluster s/step", co, cn)
for i, name in enumerate(["greedy", "beam 4"]):
    if go: line(f"generate {name} tokens/s", [x[i] for x in go], [x[i] for x in gn])
PY
