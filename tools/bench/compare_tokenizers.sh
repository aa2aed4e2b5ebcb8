#!/usr/bin/env bash
# Tokenizer encoding speed, one thread: Precis (`precis tokenizer bench`, release build) and Python
# `tokenizers` (tools/bench/hf_tokenizer_bench.py, RAYON_NUM_THREADS=1, a loop of Tokenizer.encode)
# on the same texts — every dialogue and summary of SAMSum train, validation and test — for a
# byte-level BPE tokenizer and a SentencePiece Unigram one, interleaved round by round. Each run
# makes two passes: pass 1 starts with empty word caches (cold), pass 2 reuses them (warm). Prints
# every round and the medians (MB of UTF-8 per second).
#
#   VENV=/work/venv-tok ROUNDS=5 bash tools/bench/compare_tokenizers.sh
#   BPE=Tests/Fixtures/tokenizer/samsum-bpe-8192.json UNIGRAM=runs/tokenizer-unigram.json (defaults;
#   the Unigram one is trained with `precis tokenizer train --model unigram` when missing)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv-golden}
PRECIS=${PRECIS:-.build/release/precis}
ROUNDS=${ROUNDS:-5}
SAMSUM=${SAMSUM:-data/samsum}
BPE=${BPE:-Tests/Fixtures/tokenizer/samsum-bpe-8192.json}
UNIGRAM=${UNIGRAM:-runs/tokenizer-unigram.json}
FILES=("$SAMSUM/train.jsonl" "$SAMSUM/validation.jsonl" "$SAMSUM/test.jsonl")
if [ ! -f "$UNIGRAM" ]; then
  mkdir -p "$(dirname "$UNIGRAM")"
  "$PRECIS" tokenizer train --model unigram --data "$SAMSUM/train.jsonl" --fields dialogue,summary --vocab-size 8192 --out "$UNIGRAM"
fi
data_args=(); for f in "${FILES[@]}"; do data_args+=(--data "$f"); done
# "pass N: ... X MB/s" lines → "cold warm"
passes() { sed -n 's/^pass \([12]\):.* \([0-9.]*\) MB\/s.*/\2/p' | paste -sd' '; }
swift_run() { "$PRECIS" tokenizer bench --tokenizer "$1" "${data_args[@]}" --fields dialogue,summary --repeat 2 | passes; }
py_run() { RAYON_NUM_THREADS=1 "$VENV/bin/python" tools/bench/hf_tokenizer_bench.py "$1" 2 "${FILES[@]}" | passes; }
results=()
for r in $(seq 1 "$ROUNDS"); do
  for kind in bpe unigram; do
    tok=$BPE; [ "$kind" = unigram ] && tok=$UNIGRAM
    s=$(swift_run "$tok"); p=$(py_run "$tok")
    echo "round $r $kind: Precis cold/warm $s MB/s | tokenizers cold/warm $p MB/s"
    results+=("$kind $s $p")
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics as st, sys
rows = [l.split() for l in sys.stdin if l.strip()]
for kind in ("bpe", "unigram"):
    rs = [[float(x) for x in r[1:]] for r in rows if r[0] == kind]
    sc, sw, pc, pw = (st.median(c) for c in zip(*rs))
    print(f"median {kind:8s} Precis cold {sc:6.2f} warm {sw:6.2f} MB/s | tokenizers cold {pc:6.2f} warm {pw:6.2f} MB/s "
          f"| Precis/tokenizers cold {sc / pc:.2f}x warm {sw / pw:.2f}x ({len(rs)} rounds)")
'
