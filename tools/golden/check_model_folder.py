"""Check a model folder Precis saved (a run's output_dir or a checkpoint) with transformers 5.

    python tools/golden/check_model_folder.py FOLDER [--tokenizer-class NAME] [--card]

- `AutoTokenizer.from_pretrained(FOLDER)` loads it, with the class tokenizer_config.json names
  (--tokenizer-class: the one expected) and `model_max_length` from the model's positions limit
  (bart, pegasus: max_position_embeddings; t5: n_positions, else 512);
- it tokenizes as tokenizer.json itself does (the family classes rebuild the pipeline: a folder
  must only name one when the rebuild is the same tokenizer);
- a long input truncated with `truncation=True` then `generate` runs (an IndexError when
  model_max_length was missing and the input ran past the positions);
- generation_config.json loads;
- with --card: the usage snippet of README.md runs, loading FOLDER (its `model_id = ...` line is
  pointed at FOLDER), and prints a summary; the card has no `samples` column and no pipeline().

Exit status 0 when every check passes; each failure is printed.
"""
import argparse
import json
import os
import re
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig

TEXTS = [
    "Hannah: Hey, do you have Betty's number?\nAmanda: Lemme check\nHannah: <file_gif>\nAmanda: Sorry, can't find it.",
    "Eric: MACHINE!\r\nRob: That's so gr8!\r\nEric: I know!  And shows how Americans see Russian ;)",
    "Anna: Café at 12:30? 😀\nBen: Ja — gern.   See you there\tbye",
    # NFKC-sensitive: T5Tokenizer (no normalizer without a precompiled charsmap) would split these
    # differently from a tokenizer.json that normalizes with NFKC.
    "ﬁne Ｔｅｓｔ ① ｶﾀｶﾅ",
    "",
]


def fail(msg):
    print(f"FAIL: {msg}")
    return 1


def expected_max_length(cfg):
    if cfg["model_type"] in ("bart", "pegasus"):
        return cfg["max_position_embeddings"]
    if cfg["model_type"] == "t5":
        return cfg.get("n_positions", 512)
    raise SystemExit(f"unknown model_type {cfg['model_type']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--tokenizer-class", help="the tokenizer_class tokenizer_config.json must name")
    ap.add_argument("--card", action="store_true", help="also run README.md's usage snippet")
    args = ap.parse_args()
    d = args.folder
    errors = 0
    cfg = json.load(open(os.path.join(d, "config.json")))
    tcfg = json.load(open(os.path.join(d, "tokenizer_config.json")))
    want_len = expected_max_length(cfg)
    if args.tokenizer_class and tcfg.get("tokenizer_class") != args.tokenizer_class:
        errors += fail(f"tokenizer_class {tcfg.get('tokenizer_class')!r}, expected {args.tokenizer_class!r}")

    tok = AutoTokenizer.from_pretrained(d)
    print(f"{d}: {type(tok).__name__} (tokenizer_class {tcfg.get('tokenizer_class')}), model_max_length {tok.model_max_length}")
    if tok.model_max_length != want_len:
        errors += fail(f"model_max_length {tok.model_max_length}, expected {want_len}")
    raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    for t in TEXTS:
        a = tok(t)["input_ids"]
        b = raw.encode(t).ids
        if a != b:
            errors += fail(f"{t[:30]!r}: AutoTokenizer gives {a[:12]}… ({len(a)}), tokenizer.json {b[:12]}… ({len(b)})")
    for role in ("pad", "eos"):
        got = getattr(tok, f"{role}_token_id")
        if got != cfg.get(f"{role}_token_id"):
            errors += fail(f"{role}_token_id {got}, config.json says {cfg.get(f'{role}_token_id')}")

    GenerationConfig.from_pretrained(d)
    model = AutoModelForSeq2SeqLM.from_pretrained(d)
    model.eval()
    long = " ".join([TEXTS[0]] * 400)
    enc = tok(long, truncation=True, return_tensors="pt")
    n = enc["input_ids"].shape[1]
    if n != want_len:
        errors += fail(f"truncation=True gave {n} tokens, expected model_max_length {want_len}")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=8, num_beams=2)
    print(f"  long input: {len(raw.encode(long).ids)} tokens, truncated to {n}; generate gave {out.shape[1]} tokens")

    if args.card:
        card = open(os.path.join(d, "README.md"), encoding="utf-8").read()
        if "pipeline(" in card:
            errors += fail("README.md uses pipeline() (transformers 5 has no summarization pipeline)")
        if re.search(r"\|\s*samples\s*\|", card, re.I):
            errors += fail("README.md's results table has a samples column")
        m = re.search(r"```python\n(.*?)```", card, re.S)
        if not m:
            errors += fail("README.md has no python usage snippet")
        else:
            code, k = re.subn(r"^model_id = .*$", f"model_id = {json.dumps(os.path.abspath(d))}", m.group(1), flags=re.M)
            if k != 1:
                errors += fail("the snippet has no `model_id = ...` line")
            else:
                print("  running README.md's snippet:")
                exec(compile(code, "README.md snippet", "exec"), {})
    print("ok" if errors == 0 else f"{errors} check(s) failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
