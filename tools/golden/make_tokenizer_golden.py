#!/usr/bin/env python3
"""Golden fixtures for the Swift byte-level BPE tokenizers (target PrecisText).

Writes, under Tests/Fixtures/tokenizer/:

  samsum-bpe-8192.json   a byte-level BPE tokenizer trained with Python `tokenizers`
                         (ByteLevelBPETokenizer: BpeTrainer, initial alphabet = the 256
                         byte-level characters, min_frequency 2) on SAMSum train
                         (dialogue + summary, one training sequence per field). BART's
                         special tokens: <s>=0 <pad>=1 </s>=2 <unk>=3 and <mask> (lstrip)
                         as the last id, so the whole vocabulary has exactly 8192 ids
                         (the trainer gets vocab_size=8191, then <mask> is added).
                         Post-processor RobertaProcessing(</s>, <s>), ByteLevel decoder.
  samsum-bpe-8192-vocab.json, samsum-bpe-8192-merges.txt
                         the same model in the classic vocab.json + merges.txt form
                         (`BPE.save`); the script checks that transformers'
                         RobertaTokenizer built from these two files encodes the sample
                         like samsum-bpe-8192.json except for <mask> (no lstrip there);
                         golden-cases.jsonl records its ids ("classic:samsum-bpe-8192").
  golden-sample.jsonl    300 dialogues + 300 summaries drawn across train/validation/test
                         (100 + 100 per split, seeded) and hand-written Unicode edge cases,
                         one JSON object per line: kind, name/split/id, text, and the ids of
                         `Tokenizer.encode(text)` (special tokens added). Edge cases also
                         carry ids_plain (add_special_tokens=False) and the decodes with
                         and without skip_special_tokens.
  sample-bpe-1000.json   a small tokenizer trained (vocab 1000, same recipe) on the texts
                         of golden-sample.jsonl: the Swift trainer must reproduce its vocab
                         and merges exactly from the same texts.
  variant-a.json         sample-bpe-1000's model with ByteLevel(add_prefix_space=True), a
                         TemplateProcessing post-processor, truncation (left, 24) and added
                         tokens with single_word / lstrip / rstrip / normalized flags.
  variant-b.json         sample-bpe-1000's model with normalizer Sequence[NFKC, Lowercase],
                         ByteLevel(use_regex=False), no post-processor, a normalized added
                         token.
  golden-cases.jsonl     encode cases (truncation, pairs, variants) and decode cases
                         (skip_special_tokens, partial UTF-8, unknown ids) with the answers
                         of Python `tokenizers`.
  gpt2-split-classes.txt how the GPT-2 split regex (Oniguruma inside `tokenizers`) classifies
                         every Unicode scalar: run-length lines "START_HEX CLASS" with CLASS in
                         L (\\p{L}), N (\\p{N}), S (\\s), O (anything else), found by
                         pre-tokenizing probe strings.

Usage (with the venv that has tokenizers 0.23.3 and transformers 5.24):
  /work/venv/bin/python tools/golden/make_tokenizer_golden.py [SAMSUM_DIR]
SAMSUM_DIR defaults to ../shared/data/samsum relative to the repository root, falling back to
data/samsum (after `make data`).
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile

import tokenizers
from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.implementations import ByteLevelBPETokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from samsum_data import read_split, samsum_dir  # noqa: E402
OUT_DIR = os.path.join(REPO, "Tests", "Fixtures", "tokenizer")
SPLITS = ["train", "validation", "test"]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
PER_SPLIT = 100


def train_bart_bpe(texts, vocab_size):
    """The recipe `precis tokenizer train` reproduces: vocab_size counts every id, <mask> included."""
    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    bpe.train_from_iterator(texts, vocab_size=vocab_size - 1, min_frequency=2,
                            special_tokens=SPECIALS, show_progress=False)
    tok = bpe._tokenizer
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, single_word=False,
                                       normalized=False, special=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    assert tok.token_to_id("<mask>") == vocab_size - 1
    return tok


def save(tok, name):
    path = os.path.join(OUT_DIR, name)
    tok.save(path, pretty=True)
    return path


# Hand-written edge cases: whitespace, contractions, numbers in many scripts, punctuation,
# emoji (ZWJ, skin tones, flags), combining marks, CJK / RTL / Indic scripts, control
# characters, unassigned and private-use scalars, letters new in Unicode 17 (which the
# Oniguruma inside `tokenizers` does not know yet), special tokens inside text, long runs.
EDGE = [
    ("empty", ""), ("space", " "), ("two-spaces", "  "), ("newline", "\n"), ("crlf", "\r\n"),
    ("tab", "\t"), ("letter", "a"), ("hello", "Hello world"), ("lead-space", " Hello"),
    ("double-space", "Hello  world"), ("trailing-spaces", "Hello   world  "),
    ("newlines", "a\n\n\nb"), ("space-newline", "a \n b"), ("crlf-dialogue", "A: hi\r\nB: hello!\r\n\r\nA: ok "),
    ("contractions", "I'm you're we've they'll he'd it's don't"),
    ("contractions-upper", "I'M YOU'RE IT'S DON'T"), ("curly-apostrophe", "it\u2019s don\u2019t"),
    ("apostrophes", "''s 's' rock'n'roll ' '' 'sx ?'s"),
    ("digits", "12345 3.14 1,000,000 4x4 abc123def  42"),
    ("other-digits", "\u0663\u0664\u0665 \u216b \u00bd \u00b2\u00b3 \u0967\u0968\u0969 \uff11\uff12"),
    ("punct", "?!... ?! -- :-) ;) <3 (a) [x] {} @user #tag"),
    ("url", "http://example.com/a?b=c&d=e e-mail@example.org"),
    ("emoji", "\U0001F600 \U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 \U0001F1F5\U0001F1F1 \u2764\ufe0f"),
    ("emoji-text", "I \u2764\ufe0f NY ok\U0001F44C \U0001F600\U0001F600\U0001F600"),
    ("combining", "e\u0301 n\u0303 \u0301 \u0301abc caf\u00e9 cafe\u0301"),
    ("zalgo", "Z\u0334\u0321\u032aa\u0337l\u0335g\u0336o\u0338"),
    ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587\uff0c\u6807\u70b9\u3002 \ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8"),
    ("rtl", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"),
    ("indic-thai", "\u0939\u093f\u0928\u094d\u0926\u0940 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22"),
    ("controls", "\x00 a\x00b \x1b[31mred\x1b[0m \x7f \x0b\x0c \x85 \x01\x02\x03"),
    ("unicode-spaces", "a\u00a0b \u3000 a\u2009b \u2028\u2029 \u1680x \u202f\u205f"),
    ("format-chars", "\u200b \ufeff a\u200cb a\u200db \u00ad"),
    ("odd-scalars", "\ufffd \U0010ffff \ue000 \u0378 \uffff \U000e0001 \U0001d7ce"),
    ("unicode17", "\u088f \u0c5c \ua7ce\ua7cf \U00010940\U00010941 x\U00011de0\U00011de1 1\U00016ff4"),
    ("nag-mundari", "\U0001e4d0\U0001e4d1 \U0001e4f0"),
    ("specials", "<s>hello</s>"), ("special-alone", "<s>"), ("mask-spaces", "a <mask> b"),
    ("mask-glued", "a<mask>b"), ("mask-lead", "  <mask>"), ("pad-unk", "<pad><unk>"),
    ("special-near-miss", "<s <<s>> < s > <S> </s"), ("masks", "<mask><mask> <mask>"),
    ("special-crlf", "Hi\r\n<mask>\r\n</s>"),
    ("long-letters", "a" * 3000), ("long-ab", "ab" * 1000), ("long-xy", "x y " * 500),
    ("long-emoji", "\U0001F600" * 200), ("long-spaces", " " * 300 + "x"),
    ("long-newlines", "\r\n" * 100 + "end"), ("long-digits", "0123456789" * 100),
]


def random_texts(rng, count):
    """Random strings over every plane (no surrogates), weighted towards interesting scalars."""
    pools = [
        lambda: chr(rng.randrange(0x20, 0x7F)),
        lambda: chr(rng.randrange(0x00, 0x20)),
        lambda: " ",
        lambda: chr(rng.randrange(0x80, 0x800)),
        lambda: chr(rng.choice([rng.randrange(0x800, 0xD800), rng.randrange(0xE000, 0x10000)])),
        lambda: chr(rng.randrange(0x10000, 0x110000)),
        lambda: chr(rng.randrange(0x1F300, 0x1FAFF)),
        lambda: rng.choice(["'s", "'t", "'re", "'ll", "\r\n", "  ", "<s>", "<mask>", "\u200d", "\u0301"]),
    ]
    out = []
    for _ in range(count):
        n = rng.randrange(1, 80)
        out.append("".join(rng.choice(pools)() for _ in range(n)))
    return out


def gpt2_split_classes():
    """Classifies every scalar the way the GPT-2 split regex in `tokenizers` sees it."""
    pt = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)

    def pieces(s):
        return len(pt.pre_tokenize_str(s))

    classes = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            classes.append("-")
            continue
        c = chr(cp)
        if pieces("a" + c) == 1:
            k = "L"
        elif pieces("1" + c) == 1:
            k = "N"
        elif pieces("!" + c) == 1:
            k = "O"
        else:
            assert pieces(c + c) == 1 and pieces("!" + c) == 2, hex(cp)
            k = "S"
        classes.append(k)
    lines = []
    prev = None
    for cp, k in enumerate(classes):
        if k != prev:
            lines.append(f"{cp:X} {k}")
            prev = k
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("samsum", nargs="?")
    ap.add_argument("--skip-classes", action="store_true", help="do not regenerate gpt2-split-classes.txt")
    args = ap.parse_args()
    root = samsum_dir(REPO, args.samsum)
    assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
    os.makedirs(OUT_DIR, exist_ok=True)
    data = {s: read_split(root, s) for s in SPLITS}

    # 1. The SAMSum tokenizer (train split, dialogue + summary).
    train_texts = [r[f] for r in data["train"] for f in ("dialogue", "summary")]
    tok = train_bart_bpe(train_texts, 8192)
    save(tok, "samsum-bpe-8192.json")
    tok = Tokenizer.from_file(os.path.join(OUT_DIR, "samsum-bpe-8192.json"))
    tok.model.save(OUT_DIR, "samsum-bpe-8192")

    # 2. The sample.
    rng = random.Random(20240601)
    sample = []
    for split in SPLITS:
        rows = data[split]
        for field in ("dialogue", "summary"):
            for i in sorted(rng.sample(range(len(rows)), PER_SPLIT)):
                sample.append({"kind": field, "split": split, "id": rows[i]["id"], "text": rows[i][field]})
    edge = [{"kind": "edge", "name": n, "text": t} for n, t in EDGE]
    edge += [{"kind": "edge", "name": f"random-{i}", "text": t} for i, t in enumerate(random_texts(rng, 40))]

    with open(os.path.join(OUT_DIR, "golden-sample.jsonl"), "w", encoding="utf-8") as f:
        for row in sample + edge:
            enc = tok.encode(row["text"])
            row["ids"] = enc.ids
            if row["kind"] == "edge":
                row["ids_plain"] = tok.encode(row["text"], add_special_tokens=False).ids
                row["decoded"] = tok.decode(enc.ids, skip_special_tokens=True)
                row["decoded_all"] = tok.decode(enc.ids, skip_special_tokens=False)
            else:
                assert tok.decode(enc.ids, skip_special_tokens=True) == row["text"], row["id"]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    # 3. The classic vocab.json + merges.txt pair, read back by transformers' RobertaTokenizer
    #    (which, in transformers 5, adds <mask> without lstrip: " <mask>" keeps its space).
    from transformers import RobertaTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(OUT_DIR, "samsum-bpe-8192-vocab.json"), os.path.join(tmp, "vocab.json"))
        shutil.copy(os.path.join(OUT_DIR, "samsum-bpe-8192-merges.txt"), os.path.join(tmp, "merges.txt"))
        rob = RobertaTokenizer.from_pretrained(tmp)
        assert rob.backend_tokenizer.to_str() is not None
        classic = [(r["text"], rob(r["text"])["input_ids"]) for r in sample[::10] + edge]
        differ = sum(1 for (text, ids), r in zip(classic, sample[::10] + edge) if ids != r["ids"])
        print(f"RobertaTokenizer(vocab.json, merges.txt) differs from samsum-bpe-8192.json on {differ} "
              f"of {len(classic)} texts (<mask> without lstrip)")
    from transformers import PreTrainedTokenizerFast
    fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(OUT_DIR, "samsum-bpe-8192.json"))
    bad = [r["text"] for r in sample + edge if fast(r["text"])["input_ids"] != r["ids"]]
    assert not bad, f"PreTrainedTokenizerFast disagrees on {len(bad)} texts"

    # 4. A small tokenizer trained on the sample texts (the Swift trainer must match it), and
    #    two pipeline variants around its model.
    sample_texts = [r["text"] for r in sample + edge]
    small = train_bart_bpe(sample_texts, 1000)
    save(small, "sample-bpe-1000.json")

    var_a = Tokenizer.from_file(os.path.join(OUT_DIR, "sample-bpe-1000.json"))
    var_a.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    var_a.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1", special_tokens=[("<s>", 0), ("</s>", 2)])
    var_a.add_special_tokens([AddedToken("<sep>", single_word=True, rstrip=True, normalized=False, special=True)])
    var_a.add_tokens([AddedToken("[NEW]", lstrip=True, normalized=True, special=False),
                      AddedToken("hello world", normalized=False, special=False),
                      AddedToken("the", single_word=True, normalized=False, special=False)])
    var_a.enable_truncation(max_length=24, direction="left")
    save(var_a, "variant-a.json")

    var_b = Tokenizer.from_file(os.path.join(OUT_DIR, "sample-bpe-1000.json"))
    var_b.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    var_b.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)
    var_b.post_processor = None
    var_b.add_tokens([AddedToken("<NEW>", normalized=True, special=False)])
    save(var_b, "variant-b.json")

    # 5. Encode / decode cases.
    short = [r["text"] for r in edge[:60]] + [s["text"] for s in sample[:5]] + [s["text"] for s in sample[300:305]]
    cases = []

    def enc_case(tname, t, text, pair=None, add=True, trunc=None):
        t.no_truncation() if trunc is None and tname != "variant-a.json" else None
        if trunc is not None:
            t.enable_truncation(**trunc)
        ids = t.encode(text, pair, add_special_tokens=add).ids
        case = {"op": "encode", "tokenizer": tname, "text": text, "add_special_tokens": add, "ids": ids}
        if pair is not None:
            case["pair"] = pair
        if trunc is not None:
            case["truncation"] = trunc
        cases.append(case)

    main_tok = Tokenizer.from_file(os.path.join(OUT_DIR, "samsum-bpe-8192.json"))
    for text in [short[0], short[7], "Hello world, how are you doing today?", sample[0]["text"], sample[300]["text"]]:
        for ml in ([2, 3, 5, 16, 64] if len(text) < 100 else [3, 64]):
            for direction in ["right", "left"]:
                enc_case("samsum-bpe-8192.json", main_tok, text, trunc={"max_length": ml, "direction": direction})
                enc_case("samsum-bpe-8192.json", main_tok, text, add=False,
                         trunc={"max_length": ml, "direction": direction})
    main_tok.no_truncation()
    pairs = [("Hello world", "How are you?"), ("", "x"), ("a <mask> b", "</s>"), (sample[1]["text"], sample[301]["text"])]
    for a, b in pairs:
        enc_case("samsum-bpe-8192.json", main_tok, a, pair=b)
        enc_case("samsum-bpe-8192.json", main_tok, a, pair=b, add=False)
        for strategy in ["longest_first", "only_first", "only_second"]:
            for ml in [8, 20]:
                t = Tokenizer.from_file(os.path.join(OUT_DIR, "samsum-bpe-8192.json"))
                t.enable_truncation(max_length=ml, strategy=strategy)
                try:
                    ids = t.encode(a, b).ids
                except Exception as e:  # noqa: BLE001 - record the failure
                    ids = None
                case = {"op": "encode", "tokenizer": "samsum-bpe-8192.json", "text": a, "pair": b,
                        "add_special_tokens": True, "truncation": {"max_length": ml, "strategy": strategy},
                        "ids": ids}
                cases.append(case)

    variant_texts = short + [
        "the <sep> the", "x<sep>y", "a   <sep>   b", "<sep>", "hello world!", "say hello world",
        "the theme then the", "[NEW] [NEW]x  [NEW]", "THE [new] <NEW> <new> \uff28\uff45\uff4c\uff4c\uff4f",
        "\u2460 \ufb01 \u00c5 A\u030a \u1e9b\u0323", "ΣΑΣ ΌΣΟΣ",
    ]
    for tname in ["variant-a.json", "variant-b.json", "sample-bpe-1000.json"]:
        t = Tokenizer.from_file(os.path.join(OUT_DIR, tname))
        for text in variant_texts:
            enc_case(tname, t, text)
            enc_case(tname, t, text, add=False)
        enc_case(tname, t, "first part", pair="second <sep> part")

    # Decode cases: specials, partial UTF-8 sequences (byte-level characters of single bytes),
    # unknown ids, added tokens that are not byte-level strings.
    vocab = main_tok.get_vocab()
    bytes_to_char = {}
    n = 0
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    for b in range(256):
        if b in printable:
            bytes_to_char[b] = chr(b)
        else:
            bytes_to_char[b] = chr(256 + n)
            n += 1

    def byte_id(b):
        return vocab[bytes_to_char[b]]

    h = main_tok.encode("Hello", add_special_tokens=False).ids
    decode_ids = [
        [0] + h + [2], [0, 1, 2, 3, 8191], h + [8191] + h, [byte_id(0xE2)], [byte_id(0xE2), byte_id(0x82)] + h,
        [byte_id(0xF0), byte_id(0x9F), byte_id(0x98)], [byte_id(0xFF), byte_id(0xC0), byte_id(0x80)] + h,
        [byte_id(0xED), byte_id(0xA0), byte_id(0x80)], h + [99999] + h, [], [byte_id(0x00), byte_id(0x0A)],
    ]
    for ids in decode_ids:
        for skip in [False, True]:
            cases.append({"op": "decode", "tokenizer": "samsum-bpe-8192.json", "decode_ids": ids,
                          "skip_special_tokens": skip, "text": main_tok.decode(ids, skip_special_tokens=skip)})
    ta = Tokenizer.from_file(os.path.join(OUT_DIR, "variant-a.json"))
    for text in ["say hello world <sep> [NEW] the end", "the <sep>"]:
        ids = ta.encode(text).ids
        for skip in [False, True]:
            cases.append({"op": "decode", "tokenizer": "variant-a.json", "decode_ids": ids,
                          "skip_special_tokens": skip, "text": ta.decode(ids, skip_special_tokens=skip)})

    for text, ids in classic:
        cases.append({"op": "encode", "tokenizer": "classic:samsum-bpe-8192", "text": text,
                      "add_special_tokens": True, "ids": ids})

    with open(os.path.join(OUT_DIR, "golden-cases.jsonl"), "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")

    # 6. GPT-2 split classes for every scalar.
    if not args.skip_classes:
        with open(os.path.join(OUT_DIR, "gpt2-split-classes.txt"), "w") as f:
            f.write("\n".join(gpt2_split_classes()) + "\n")

    total = sum(os.path.getsize(os.path.join(OUT_DIR, p)) for p in os.listdir(OUT_DIR))
    print(f"wrote {OUT_DIR}: {len(sample)} SAMSum texts, {len(edge)} edge cases, {len(cases)} cases, "
          f"{total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
