#!/usr/bin/env python3
"""Python `tokenizers`' UnigramTrainer next to Precis's (PrecisText UnigramTrainer).

Both train with the pipeline of `tokenizers`' SentencePieceUnigramTokenizer (normalizer
Sequence[Nmt, NFKC, Replace(" {2,}" -> " ")], Metaspace("▁", prepend_scheme="always")) and T5's
special tokens (<pad>=0, </s>=1, <unk>=2 = unk_token), on every dialogue and summary of the
records given.

  unigram_trainer.py fixture [SAMSUM_DIR]
      writes Tests/Fixtures/tokenizer/unigram-trainer/samsum-train-300-unigram-800.json: the first
      300 SAMSum train records, vocab 800 (Tests/PrecisTextTests/UnigramTrainerTests compares
      Precis's training on the same slice with it).
  unigram_trainer.py compare PRECIS_TOKENIZER_JSON VOCAB_SIZE [SAMSUM_DIR]
      trains Python on SAMSum train with VOCAB_SIZE, then prints tokens per character on SAMSum
      validation (dialogues + summaries, no special tokens) for both tokenizers, and the share of
      pieces the two vocabularies have in common. Exit status 1 if Precis's figure is more than
      2 % away from Python's.
  unigram_trainer.py ids PRECIS_TOKENIZER_JSON IDS_DIR [SAMSUM_DIR]
      loads the Precis-trained tokenizer.json in Python `tokenizers` and transformers'
      PreTrainedTokenizerFast and checks that they give, for every validation dialogue and
      summary, the ids `precis tokenizer encode` wrote to IDS_DIR/validation-{dialogue,summary}.jsonl,
      and that decoding gives the (normalized) text back.
"""
import json
import os
import sys
import time

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import Unigram

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from samsum_data import read_split, samsum_dir  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIELDS = ["dialogue", "summary"]


def texts(records):
    return [r[f] for r in records for f in FIELDS]


def train(texts_, vocab_size):
    tok = Tokenizer(Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.Nmt(), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(texts_, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return tok


def tokens_per_char(tok, texts_):
    n = sum(len(e.ids) for e in tok.encode_batch(texts_, add_special_tokens=False))
    return n / sum(len(t) for t in texts_)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "fixture":
        root = samsum_dir(ROOT, sys.argv[2] if len(sys.argv) > 2 else None)
        tok = train(texts(read_split(root, "train")[:300]), 800)
        out = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer", "unigram-trainer", "samsum-train-300-unigram-800.json")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tok.save(out, pretty=False)
        print(f"wrote {out}: {tok.get_vocab_size()} tokens")
    elif mode == "compare":
        mine_path, vocab = sys.argv[2], int(sys.argv[3])
        root = samsum_dir(ROOT, sys.argv[4] if len(sys.argv) > 4 else None)
        t0 = time.perf_counter()
        theirs = train(texts(read_split(root, "train")), vocab)
        seconds = time.perf_counter() - t0
        mine = Tokenizer.from_file(mine_path)
        val = texts(read_split(root, "validation"))
        a, b = tokens_per_char(mine, val), tokens_per_char(theirs, val)
        va, vb = set(mine.get_vocab()), set(theirs.get_vocab())
        diff = (a - b) / b
        print(f"SAMSum validation ({len(val)} texts, {sum(len(t) for t in val)} characters), vocab {vocab}:")
        print(f"  Precis UnigramTrainer:     {a:.5f} tokens/char ({mine.get_vocab_size()} tokens)")
        print(f"  tokenizers UnigramTrainer: {b:.5f} tokens/char ({theirs.get_vocab_size()} tokens, trained in {seconds:.1f} s)")
        print(f"  difference {100 * diff:+.2f} %; pieces in common {len(va & vb)} of {len(vb)} ({100 * len(va & vb) / len(vb):.1f} %)")
        sys.exit(0 if abs(diff) <= 0.02 else 1)
    elif mode == "ids":
        from transformers import PreTrainedTokenizerFast
        mine_path, ids_dir = sys.argv[2], sys.argv[3]
        root = samsum_dir(ROOT, sys.argv[4] if len(sys.argv) > 4 else None)
        tok = Tokenizer.from_file(mine_path)
        fast = PreTrainedTokenizerFast(tokenizer_file=mine_path)
        rows = read_split(root, "validation")
        ok = True
        for f in FIELDS:
            ts = [r[f] for r in rows]
            want = [e.ids for e in tok.encode_batch(ts)]
            got = [json.loads(l)["ids"] for l in open(os.path.join(ids_dir, f"validation-{f}.jsonl"), encoding="utf-8")]
            fast_ids = fast(ts)["input_ids"]
            bad = sum(1 for x, y in zip(want, got) if x != y) + abs(len(want) - len(got))
            bad_fast = sum(1 for x, y in zip(fast_ids, got) if x != y)
            normalized = [tok.normalizer.normalize_str(t) for t in ts]
            decoded = tok.decode_batch(want, skip_special_tokens=True)
            # Texts with a character the vocabulary lacks decode without it (<unk> is special).
            bad_rt = sum(1 for x, y, ids in zip(normalized, decoded, want) if 2 not in ids and x.strip() != y.strip())
            print(f"unigram-trained validation/{f}: {len(ts)} texts, ids vs tokenizers: {bad} differ, "
                  f"vs PreTrainedTokenizerFast: {bad_fast} differ, decode != normalized text (texts without <unk>): {bad_rt}")
            ok &= bad == 0 and bad_fast == 0 and bad_rt == 0
            if got and got[0][-1] != 1:
                print("FAIL: the ids do not end with </s> (1)")
                ok = False
        print("PASS unigram-trained" if ok else "FAIL unigram-trained")
        sys.exit(0 if ok else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
