#!/usr/bin/env python3
"""Python `tokenizers` single-threaded encoding throughput, the counterpart of `precis tokenizer bench`.

  RAYON_NUM_THREADS=1 hf_tokenizer_bench.py TOKENIZER_JSON REPEAT FILE.jsonl [FILE.jsonl ...]

Every dialogue and summary of the files is one text; each pass encodes all of them with a loop of
Tokenizer.encode (special tokens added, as `precis tokenizer bench` does). The first pass starts
with the tokenizer's word cache empty. Prints one line per pass: "pass N: ... MB/s".
"""
import json
import sys
import time

from tokenizers import Tokenizer

path, repeat, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
tok = Tokenizer.from_file(path)
texts = [r[f] for p in files for r in map(json.loads, open(p, encoding="utf-8")) for f in ("dialogue", "summary")]
mb = sum(len(t.encode()) for t in texts) / 1e6
for p in range(repeat):
    t0 = time.perf_counter()
    n = 0
    for t in texts:
        n += len(tok.encode(t).ids)
    dt = time.perf_counter() - t0
    print(f"pass {p + 1}: {len(texts)} texts, {mb:.2f} MB, {n} tokens in {dt:.3f} s: {mb / dt:.2f} MB/s")
