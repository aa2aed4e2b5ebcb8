#!/usr/bin/env bash
# Full-corpus check of the Swift tokenizers (PrecisText) against Python `tokenizers` 0.23.3:
#
#   1. every dialogue and summary of SAMSum train/validation/test, encoded by
#      `precis tokenizer encode` with Tests/Fixtures/tokenizer/samsum-bpe-8192.json, must give
#      exactly the ids Python's Tokenizer.encode gives (special tokens added), and
#      `precis tokenizer decode --skip-special-tokens` must give the texts back;
#   2. `precis tokenizer train` on SAMSum train (dialogue + summary, vocab 8192) must produce the
#      vocab and merges Python trained (the fixture), and the Swift-trained tokenizer.json must
#      load in Python `tokenizers` and transformers' PreTrainedTokenizerFast and encode every
#      text exactly as Swift does;
#   3. with --bench, single-threaded encoding throughput of Swift and Python on the same texts;
#   4. every SAMSum dialogue and summary encoded with each SentencePiece Unigram fixture
#      (Tests/Fixtures/tokenizer/unigram/*.json: T5, Pegasus, byte fallback, tokenizers-native
#      Metaspace variants) must give Python's ids, and `precis tokenizer decode
#      --skip-special-tokens` must give Python's decode of those ids. --unigram-only runs this
#      part alone (no BPE training);
#   5. `precis tokenizer train --model unigram` on SAMSum train (vocab 8192): the tokenizer.json
#      must load in Python `tokenizers` and PreTrainedTokenizerFast and give, for every
#      validation dialogue and summary, the ids Precis gives (tools/golden/unigram_trainer.py ids),
#      and its tokens per character on validation must be within 2 % of Python's UnigramTrainer
#      trained on the same data (unigram_trainer.py compare). --unigram-train-only runs this part
#      alone.
#
# Usage:
#   VENV=/work/venv bash tools/golden/check_tokenizer_full.sh [--bench] [--unigram-only] [SAMSUM_DIR]
# SAMSUM_DIR defaults to ../shared/data/samsum, then data/samsum (`make data`). The binary is
# $PRECIS if set, else .build-text/release/precis built here (`precis tokenizer ...`); while the
# tokenizer subcommand is not registered in Sources/precis/Precis.swift, Sources/precis/
# TokenizerCommand.swift is linked into a stand-alone binary against the same build instead.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv-golden}"
PY="$VENV/bin/python"
BENCH=0
UNIGRAM_ONLY=0
UNIGRAM_TRAIN_ONLY=0
SAMSUM=""
for arg in "$@"; do
  case "$arg" in
    --bench) BENCH=1 ;;
    --unigram-only) UNIGRAM_ONLY=1 ;;
    --unigram-train-only) UNIGRAM_TRAIN_ONLY=1 ;;
    *) SAMSUM="$arg" ;;
  esac
done
if [ -z "$SAMSUM" ]; then
  for cand in "$ROOT/../shared/data/samsum" "$ROOT/data/samsum"; do
    if [ -f "$cand/train.jsonl" ]; then SAMSUM="$cand"; break; fi
  done
fi
[ -f "$SAMSUM/train.jsonl" ] || { echo "SAMSum not found: pass SAMSUM_DIR or run make data" >&2; exit 1; }
FIX="$ROOT/Tests/Fixtures/tokenizer/samsum-bpe-8192.json"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/precis-tokenizer-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"

# The `tokenizer` command line.
if [ -n "${PRECIS:-}" ]; then
  TOK=("$PRECIS" tokenizer)
else
  swift build -c release --scratch-path .build-text --product precis >&2
  if .build-text/release/precis tokenizer encode --help 2>&1 | grep -q -- "--no-special-tokens"; then
    TOK=(.build-text/release/precis tokenizer)
  else
    echo "check: 'precis tokenizer' is not registered yet; linking TokenizerCommand.swift stand-alone" >&2
    mkdir -p .build-text/shim
    echo '@main struct TokenizerShim { static func main() { TokenizerCommand.main() } }' > .build-text/shim/main.swift
    swiftc -O -parse-as-library -module-name precis_tokenizer -I .build-text/release/Modules \
      .build-text/shim/main.swift Sources/precis/TokenizerCommand.swift \
      .build-text/release/PrecisText.build/*.o .build-text/release/ArgumentParser.build/*.o \
      .build-text/release/ArgumentParserToolInfo.build/*.o -o .build-text/shim/precis-tokenizer
    TOK=(.build-text/shim/precis-tokenizer)
  fi
fi

SPLITS=(train validation test)
FIELDS=(dialogue summary)
UNIGRAM_DIR="$ROOT/Tests/Fixtures/tokenizer/unigram"

# 4. The Unigram fixtures: encode and decode every text with each of them, compare with Python.
check_unigram() {
  local fix name
  for fix in "$UNIGRAM_DIR"/*.json; do
    name="$(basename "$fix" .json)"
    for s in "${SPLITS[@]}"; do
      for f in "${FIELDS[@]}"; do
        "${TOK[@]}" encode --tokenizer "$fix" --input "$SAMSUM/$s.jsonl" --field "$f" > "$WORK/u-$name-$s-$f.jsonl"
        "${TOK[@]}" decode --tokenizer "$fix" --input "$WORK/u-$name-$s-$f.jsonl" --skip-special-tokens > "$WORK/u-$name-$s-$f.decoded.jsonl"
      done
    done
  done
  "$PY" - "$SAMSUM" "$UNIGRAM_DIR" "$WORK" <<'PYEOF'
import glob, json, os, sys
from tokenizers import Tokenizer

samsum, fixtures, work = sys.argv[1:4]
ok = True
for fix in sorted(glob.glob(os.path.join(fixtures, "*.json"))):
    name = os.path.basename(fix)[:-5]
    tok = Tokenizer.from_file(fix)
    total = bad_ids = bad_decode = 0
    for s in ["train", "validation", "test"]:
        rows = [json.loads(l) for l in open(f"{samsum}/{s}.jsonl", encoding="utf-8")]
        for f in ["dialogue", "summary"]:
            texts = [r[f] for r in rows]
            want = [e.ids for e in tok.encode_batch(texts)]
            got = [json.loads(l)["ids"] for l in open(f"{work}/u-{name}-{s}-{f}.jsonl", encoding="utf-8")]
            decoded = [json.loads(l)["text"] for l in open(f"{work}/u-{name}-{s}-{f}.decoded.jsonl", encoding="utf-8")]
            want_decoded = tok.decode_batch(want, skip_special_tokens=True)
            total += len(texts)
            if len(got) != len(want) or len(decoded) != len(want):
                print(f"FAIL unigram {name} {s}/{f}: {len(got)} id lines, {len(decoded)} decoded lines for {len(texts)} texts")
                ok = False
                continue
            diff = [i for i, (a, b) in enumerate(zip(want, got)) if a != b]
            if diff:
                print(f"FAIL unigram {name} {s}/{f}: {len(diff)} of {len(texts)} differ, first at line {diff[0] + 1}")
            bad_ids += len(diff)
            bad_decode += sum(1 for a, b in zip(want_decoded, decoded) if a != b)
    ok &= bad_ids == 0 and bad_decode == 0
    print(f"4. unigram {name}: {total} texts, ids {'identical' if bad_ids == 0 else f'{bad_ids} DIFFER'}, "
          f"decodes {'identical' if bad_decode == 0 else f'{bad_decode} DIFFER'}")
print("PASS unigram" if ok else "FAIL unigram")
sys.exit(0 if ok else 1)
PYEOF
}

# 5. Unigram training: Python loads the Precis-trained tokenizer and agrees on the ids; the
#    vocabulary compresses SAMSum like Python's UnigramTrainer does.
check_unigram_trained() {
  local start end f
  start=$(date +%s.%N)
  "${TOK[@]}" train --model unigram --data "$SAMSUM/train.jsonl" --fields dialogue,summary --vocab-size 8192 \
    --out "$WORK/unigram-trained.json"
  end=$(date +%s.%N)
  echo "check: swift unigram training took $(echo "$end - $start" | bc) s" >&2
  mkdir -p "$WORK/unigram-ids"
  for f in "${FIELDS[@]}"; do
    "${TOK[@]}" encode --tokenizer "$WORK/unigram-trained.json" --input "$SAMSUM/validation.jsonl" --field "$f" \
      > "$WORK/unigram-ids/validation-$f.jsonl"
  done
  "$PY" "$HERE/unigram_trainer.py" ids "$WORK/unigram-trained.json" "$WORK/unigram-ids" "$SAMSUM"
  "$PY" "$HERE/unigram_trainer.py" compare "$WORK/unigram-trained.json" 8192 "$SAMSUM"
}

if [ "$UNIGRAM_ONLY" = 1 ]; then
  check_unigram
  exit $?
fi
if [ "$UNIGRAM_TRAIN_ONLY" = 1 ]; then
  check_unigram_trained
  exit $?
fi

# 1. Encode and decode every text with the fixture tokenizer.
for s in "${SPLITS[@]}"; do
  for f in "${FIELDS[@]}"; do
    "${TOK[@]}" encode --tokenizer "$FIX" --input "$SAMSUM/$s.jsonl" --field "$f" > "$WORK/swift-$s-$f.jsonl"
    "${TOK[@]}" decode --tokenizer "$FIX" --input "$WORK/swift-$s-$f.jsonl" --skip-special-tokens > "$WORK/swift-$s-$f.decoded.jsonl"
  done
done

# 2. Train on SAMSum train, then encode everything with the Swift-trained tokenizer.
START=$(date +%s.%N)
"${TOK[@]}" train --data "$SAMSUM/train.jsonl" --fields dialogue,summary --vocab-size 8192 --out "$WORK/swift-trained.json"
END=$(date +%s.%N)
echo "check: swift training took $(echo "$END - $START" | bc) s" >&2
for s in "${SPLITS[@]}"; do
  for f in "${FIELDS[@]}"; do
    "${TOK[@]}" encode --tokenizer "$WORK/swift-trained.json" --input "$SAMSUM/$s.jsonl" --field "$f" > "$WORK/trained-$s-$f.jsonl"
  done
done

"$PY" - "$SAMSUM" "$FIX" "$WORK" <<'PYEOF'
import json, sys, time
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

samsum, fix, work = sys.argv[1:4]
ok = True

def compare(label, want_rows, got_path):
    got = [json.loads(l)["ids"] for l in open(got_path, encoding="utf-8")]
    if len(got) != len(want_rows):
        print(f"FAIL {label}: {len(got)} output lines for {len(want_rows)} inputs")
        return False
    bad = [i for i, (a, b) in enumerate(zip(want_rows, got)) if a != b]
    if bad:
        print(f"FAIL {label}: {len(bad)} of {len(got)} differ, first at line {bad[0] + 1}")
    return not bad

py = Tokenizer.from_file(fix)
total = 0
for s in ["train", "validation", "test"]:
    rows = [json.loads(l) for l in open(f"{samsum}/{s}.jsonl", encoding="utf-8")]
    for f in ["dialogue", "summary"]:
        texts = [r[f] for r in rows]
        total += len(texts)
        want = [e.ids for e in py.encode_batch(texts)]
        ok &= compare(f"fixture ids {s}/{f}", want, f"{work}/swift-{s}-{f}.jsonl")
        decoded = [json.loads(l)["text"] for l in open(f"{work}/swift-{s}-{f}.decoded.jsonl", encoding="utf-8")]
        rt = sum(1 for a, b in zip(texts, decoded) if a != b) + abs(len(texts) - len(decoded))
        if rt:
            print(f"FAIL round trip {s}/{f}: {rt} texts differ")
            ok = False
print(f"1. fixture tokenizer: {total} texts compared with Python tokenizers ({'all identical' if ok else 'DIFFERENCES'}); "
      f"decode round trip checked")

# Training equivalence.
mine = json.load(open(f"{work}/swift-trained.json", encoding="utf-8"))
theirs = json.load(open(fix, encoding="utf-8"))
same_vocab = mine["model"]["vocab"] == theirs["model"]["vocab"]
same_merges = mine["model"]["merges"] == theirs["model"]["merges"]
same_doc = mine == theirs
print(f"2. training: vocab identical: {same_vocab}, merges identical: {same_merges} "
      f"({len(mine['model']['merges'])} vs {len(theirs['model']['merges'])}), whole tokenizer.json identical: {same_doc}")
if not same_merges:
    m, t = mine["model"]["merges"], theirs["model"]["merges"]
    first = next((i for i, (a, b) in enumerate(zip(m, t)) if a != b), min(len(m), len(t)))
    print(f"   first different merge at rank {first}: swift {m[first:first + 3]} python {t[first:first + 3]}")
ok &= same_vocab and same_merges

trained = Tokenizer.from_file(f"{work}/swift-trained.json")
fast = PreTrainedTokenizerFast(tokenizer_file=f"{work}/swift-trained.json")
n = 0
for s in ["train", "validation", "test"]:
    rows = [json.loads(l) for l in open(f"{samsum}/{s}.jsonl", encoding="utf-8")]
    for f in ["dialogue", "summary"]:
        texts = [r[f] for r in rows]
        want = [e.ids for e in trained.encode_batch(texts)]
        ok &= compare(f"swift-trained ids {s}/{f} (tokenizers)", want, f"{work}/trained-{s}-{f}.jsonl")
        want_fast = fast(texts)["input_ids"]
        ok &= compare(f"swift-trained ids {s}/{f} (PreTrainedTokenizerFast)", want_fast, f"{work}/trained-{s}-{f}.jsonl")
        n += len(texts)
print(f"3. swift-trained tokenizer.json: loads in tokenizers and PreTrainedTokenizerFast, {n} texts encoded "
      f"({'identical to Swift' if ok else 'DIFFERENCES'})")
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PYEOF

check_unigram
check_unigram_trained

if [ "$BENCH" = 1 ]; then
  echo "--- Swift (one thread) ---"
  "${TOK[@]}" bench --tokenizer "$FIX" --data "$SAMSUM/train.jsonl" --data "$SAMSUM/validation.jsonl" \
    --data "$SAMSUM/test.jsonl" --fields dialogue,summary --repeat 3
  echo "--- Python tokenizers (RAYON_NUM_THREADS=1) ---"
  RAYON_NUM_THREADS=1 "$PY" - "$FIX" "$SAMSUM" <<'PYEOF'
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
texts = [r[f] for s in ["train", "validation", "test"] for r in map(json.loads, open(f"{sys.argv[2]}/{s}.jsonl", encoding="utf-8"))
         for f in ("dialogue", "summary")]
mb = sum(len(t.encode()) for t in texts) / 1e6
for p in range(3):
    t0 = time.perf_counter(); n = sum(len(tok.encode(t).ids) for t in texts); dt = time.perf_counter() - t0
    print(f"Tokenizer.encode loop, pass {p + 1}: {len(texts)} texts, {mb:.2f} MB, {n} tokens in {dt:.3f} s: {mb / dt:.2f} MB/s")
for p in range(3):
    t0 = time.perf_counter(); n = sum(len(e.ids) for e in tok.encode_batch(texts)); dt = time.perf_counter() - t0
    print(f"Tokenizer.encode_batch, pass {p + 1}: {dt:.3f} s: {mb / dt:.2f} MB/s")
PYEOF
fi
