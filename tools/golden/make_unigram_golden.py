#!/usr/bin/env python3
"""Golden fixtures for the Swift SentencePiece Unigram tokenizers (target PrecisText).

Writes, under Tests/Fixtures/tokenizer/unigram/ (tokenizer files saved compact, not pretty):

  t5.json                 a SentencePiece Unigram model (vocab 4000, default `nmt_nfkc` rule, T5's
                          ids <pad>=0 </s>=1 <unk>=2, no <s>) trained on SAMSum train, converted by
                          transformers' `T5Tokenizer.from_pretrained` from `spiece.model`: normalizer
                          Precompiled, pre-tokenizer Sequence[WhitespaceSplit, Metaspace(always)],
                          TemplateProcessing `$A </s>`, 100 <extra_id_N> special tokens.
  t5-converter.json       the same model through transformers' T5Converter (the slow→fast
                          converter of older transformers releases, here with legacy=False):
                          normalizer Sequence[Precompiled, Strip(right), Replace(" {2,}" → "▁")],
                          Metaspace(prepend_scheme first) pre-tokenizer and decoder.
  pegasus.json            a second SentencePiece model (vocab 3000, `nmt_nfkc_cf` rule) converted
                          by `PegasusTokenizer.from_pretrained`: <unk_2>…<unk_102> offset,
                          Sequence[Precompiled, Replace(" {2,}" → " ")]; its Metaspace pre-tokenizer
                          and decoder are rewritten in the oldest JSON form
                          ({"replacement": "▁", "add_prefix_space": true}) that hub files still use.
  spm-byte-fallback.json  a byte_fallback SentencePiece model (vocab 3000, unk=0 <s>=1 </s>=2,
                          a small hand-written normalization rule set instead of nmt_nfkc)
                          through SpmConverter.build_tokenizer_from_spm_proto (legacy=False):
                          Replace regexes with \\A and \\z anchors, Metaspace(first, split=false),
                          decoders Replace/ByteFallback/Fuse/Strip, no post-processor.
  native-*.json           a `tokenizers` UnigramTrainer model (vocab 2000) with normalizer
                          Sequence[Nmt, NFKC, Replace(" {2,}" → " "), Lowercase, Strip] and
                          Metaspace variants: always (split), first (split), never (no split),
                          ws-first (Sequence[WhitespaceSplit, Metaspace(first)]); TemplateProcessing
                          `<s> $A </s>` / `<s> $A </s> $B:1 </s>:1`.
  cases.jsonl             one text per line (SAMSum dialogues and summaries drawn across the
                          three splits, hand-written and random Unicode edge cases) with, keyed by
                          tokenizer file, `ids` (Tokenizer.encode), `plain` (no special tokens;
                          edge cases only), `decoded` (skip_special_tokens; only where it is not
                          the text itself) and `decoded_all` (edge cases, only where it is not
                          `decoded`).
  extra-cases.jsonl       pairs, truncation and decode-only cases (byte tokens, unknown ids).
  nfkc-scalars.txt        `tokenizers`' NFKC and NFD of every scalar they change (Hangul
                          syllables left out): "FORM HEX: HEX HEX…" lines.
  precompiled-scalars.txt the Precompiled normalizer of t5.json on every scalar it changes
                          ("HEX: HEX…", an empty right side for removed scalars).

Reproducibility: everything but native-*.json (and their ids in cases.jsonl/extra-cases.jsonl) is
byte-identical from run to run; `tokenizers`' UnigramTrainer sums in an order that varies between
runs, so its scores (not its pieces) change in the last digits, and the expected ids with them.

Usage (a throwaway venv with the pinned tokenizers/transformers plus sentencepiece and protobuf):
  python3 -m venv /work/venv-tok && /work/venv-tok/bin/pip install -r tools/golden/requirements.txt
  RAYON_NUM_THREADS=1 /work/venv-tok/bin/python tools/golden/make_unigram_golden.py [SAMSUM_DIR]
SAMSUM_DIR defaults to ../shared/data/samsum, then data/samsum (`make data`).
"""

import argparse
import base64
import json
import os
import random
import shutil
import sys
import tempfile

import sentencepiece as spm
import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from samsum_data import read_split, samsum_dir  # noqa: E402
OUT_DIR = os.path.join(REPO, "Tests", "Fixtures", "tokenizer", "unigram")
SPLITS = ["train", "validation", "test"]
DIALOGUES_PER_SPLIT = 8
SUMMARIES_PER_SPLIT = 20

TOKENIZERS = ["t5.json", "t5-converter.json", "pegasus.json", "spm-byte-fallback.json",
              "native-always.json", "native-first.json", "native-never.json", "native-ws-first.json"]


# A small hand-written SentencePiece normalization (source → target code points, hex): its charsmap
# is a few hundred bytes, unlike nmt_nfkc's 240 KB, and has multi-scalar keys and removals.
CUSTOM_RULES = (
    [(f"{0xFF21 + i:X}", f"{0x41 + i:X}") for i in range(26)] + [(f"{0xFF41 + i:X}", f"{0x61 + i:X}") for i in range(26)]
    + [(f"{0xFF10 + i:X}", f"{0x30 + i:X}") for i in range(10)]
    + [("FB01", "66 69"), ("FB02", "66 6C"), ("2026", "2E 2E 2E"), ("65 301", "E9"), ("61 300", "E0"),
       ("E9 301", "E9"), ("A0", "20"), ("3000", "20"), ("9", "20"), ("A", "20"), ("D", "20"), ("2019", "27"),
       ("201C", "22"), ("201D", "22"), ("2014", "2D 2D"), ("2122", "54 4D"), ("1", ""), ("7F", ""), ("200B", ""),
       ("FEFF", "")])


def train_spm(lines_file, prefix, **options):
    """SentencePiece Unigram on one sentence per line; one thread, so the result is reproducible."""
    spm.SentencePieceTrainer.train(input=lines_file, model_prefix=prefix, model_type="unigram",
                                   num_threads=1, minloglevel=2, **options)
    return prefix + ".model"


def save(tok, name):
    path = os.path.join(OUT_DIR, name)
    tok.save(path, pretty=False)
    return path


def old_metaspace(component):
    """The oldest Metaspace JSON form (no prepend_scheme, no split): tokenizers reads it as always/split."""
    assert component["type"] == "Metaspace" and component["prepend_scheme"] == "always", component
    return {"type": "Metaspace", "replacement": component["replacement"], "add_prefix_space": True}


class SlowT5:
    """What transformers' T5Converter reads from a slow T5Tokenizer."""

    def __init__(self, vocab_file, legacy):
        self.vocab_file = vocab_file
        self._extra_ids = 100
        self.legacy = legacy
        self.add_prefix_space = True

    def convert_tokens_to_ids(self, token):
        assert token == "</s>"
        return 1


def build_t5(model_file):
    from transformers import T5Tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(model_file, os.path.join(tmp, "spiece.model"))
        t5 = T5Tokenizer.from_pretrained(tmp)
    return Tokenizer.from_str(t5.backend_tokenizer.to_str())


def build_t5_converter(model_file):
    from transformers.convert_slow_tokenizer import T5Converter
    tok = T5Converter(SlowT5(model_file, legacy=False)).converted()
    tok.add_special_tokens([AddedToken(f"<extra_id_{i}>", normalized=False, special=True) for i in range(100)])
    return tok


def build_pegasus(model_file):
    from transformers import PegasusTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(model_file, os.path.join(tmp, "spiece.model"))
        peg = PegasusTokenizer.from_pretrained(tmp)
    doc = json.loads(peg.backend_tokenizer.to_str())
    doc["pre_tokenizer"] = old_metaspace(doc["pre_tokenizer"])
    doc["decoder"] = old_metaspace(doc["decoder"])
    return Tokenizer.from_str(json.dumps(doc))


def build_byte_fallback(model_file):
    from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf
    proto = import_protobuf().ModelProto()
    with open(model_file, "rb") as f:
        proto.ParseFromString(f.read())
    vocab = [(p.piece, p.score) for p in proto.pieces]
    return SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=False)


def build_native(texts):
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([
        normalizers.Nmt(), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Lowercase(), normalizers.Strip(left=True, right=True)])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(vocab_size=2000, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                      unk_token="<unk>", show_progress=False, max_piece_length=12)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    tok.add_tokens([AddedToken("[SEP]", normalized=True, special=False)])
    variants = {}
    for name, pre, dec in [
        ("native-always.json", pre_tokenizers.Metaspace(prepend_scheme="always", split=True),
         decoders.Metaspace(prepend_scheme="always", split=True)),
        ("native-first.json", pre_tokenizers.Metaspace(prepend_scheme="first", split=True),
         decoders.Metaspace(prepend_scheme="first", split=True)),
        ("native-never.json", pre_tokenizers.Metaspace(prepend_scheme="never", split=False),
         decoders.Metaspace(prepend_scheme="never", split=False)),
        ("native-ws-first.json", pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                          pre_tokenizers.Metaspace(prepend_scheme="first")]),
         decoders.Metaspace(prepend_scheme="first")),
    ]:
        t = Tokenizer.from_str(tok.to_str())
        t.pre_tokenizer = pre
        t.decoder = dec
        variants[name] = t
    return variants


# Hand-written edge cases: what SentencePiece normalization (nmt_nfkc: NFKC, control characters,
# whitespace), grapheme clusters, unknown characters and byte fallback, Metaspace prepending and
# special tokens inside text can get wrong.
EDGE = [
    ("empty", ""), ("space", " "), ("two-spaces", "  "), ("newline", "\n"), ("crlf", "\r\n"), ("tab", "\t"),
    ("letter", "a"), ("hello", "Hello world"), ("lead-space", " Hello"), ("lead-spaces", "   Hello"),
    ("double-space", "Hello  world"), ("trailing-spaces", "Hello   world  "), ("inner-tabs", "a\t\tb \t c"),
    ("newlines", "a\n\n\nb"), ("space-newline", "a \n b"), ("crlf-dialogue", "A: hi\r\nB: hello!\r\n\r\nA: ok "),
    ("dialogue", "Amanda: I baked  cookies. Do you want some?\nJerry: Sure!\nAmanda: I'll bring you tomorrow :-)"),
    ("metaspace-literal", "\u2581hello \u2581\u2581world\u2581"), ("metaspace-only", "\u2581"),
    ("metaspace-lead", "\u2581\u2581x"), ("lead-metaspace-space", " \u2581x"),
    ("contractions", "I'm you're we've they'll he'd it's don't"), ("curly", "it\u2019s \u201cquoted\u201d \u2014 dash\u2026"),
    ("digits", "12345 3.14 1,000,000 4x4 abc123def  42"),
    ("accents-composed", "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m Stra\u00dfe \u0130stanbul"),
    ("accents-decomposed", "cafe\u0301 nai\u0308ve A\u030angstro\u0308m e\u0301\u0301 \u0301lead"),
    ("nfkc", "\ufb01 \ufb02 \u2460 \u2474 \u00bd \u00b2 \u2122 \u3250 \u337f \u212b \u2126 \u1e9b\u0323 \u00a8a \u00a8"),
    ("fullwidth", "\uff28\uff45\uff4c\uff4c\uff4f\uff0c\u3000\uff37\uff4f\uff52\uff4c\uff44\uff01 \uff11\uff12\uff13"),
    ("halfwidth-kana", "\uff76\uff9e\uff77\uff9e \uff8a\uff9f \uff71\uff72\uff73"),
    ("compat-spaces", "a\u00a0b \u3000c a\u2009b \u2028\u2029 \u1680x \u202f\u205f \u2003y"),
    ("emoji", "\U0001F600 \U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 \U0001F1EB\U0001F1F7 \u2764\ufe0f 1\ufe0f\u20e3"),
    ("emoji-text", "I \u2764\ufe0f NY ok\U0001F44C \U0001F600\U0001F600\U0001F600 :D"),
    ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587\uff0c\u6807\u70b9\u3002 \ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8"),
    ("hangul-jamo", "\u1112\u1161\u11ab \u1100\u1173\u11af"),
    ("rtl", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"),
    ("indic-thai", "\u0939\u093f\u0928\u094d\u0926\u0940 \u0915\u094d\u0937 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22 \u0e01\u0e33"),
    ("zalgo", "Z\u0334\u0321\u032aa\u0337\u0338\u0335l\u0335g\u0336o\u0338 e\u0301\u0302\u0303\u0304\u0305"),
    ("controls", "\x00 a\x00b \x1b[31mred\x1b[0m \x7f \x0b\x0c \x85 \x01\x02\x03 \x8f\x9f"),
    ("lead-control", "\x01hello"), ("lead-controls", "\x01\x02 hello"), ("lead-zwsp", "\u200bhello"),
    ("lead-nbsp", "\u00a0hello"), ("lead-ideographic-space", "\u3000hello"), ("lead-diaeresis", "\u00a8a b"),
    ("lead-ligature", "\ufb01ne"), ("lead-tab", "\thello"), ("lead-newline", "\nhello"),
    ("format-chars", "\u200b \ufeff a\u200cb a\u200db \u00ad x\u200ey \u2060"),
    ("odd-scalars", "\ufffd \U0010ffff \ue000 \u0378 \uffff \U000e0001 \U0001d7ce \U0001d400"),
    ("new-scalars", "\u32ff \ua7f2 \U0001e030 \U00010781 \U0001f16c \u088f"),
    ("specials", "</s>hello</s>"), ("special-alone", "</s>"), ("special-spaces", "a </s> b"),
    ("pad-unk", "<pad><unk>"), ("unk-text", "<unk> x"), ("extra-ids", "<extra_id_0> a <extra_id_99>b"),
    ("special-near-miss", "</s <</s>> < /s > </S>"), ("s-token", "<s>x</s>"), ("sep", "a [SEP] b [sep]"),
    ("mask", "<mask_1> <mask_2> x"), ("byte-token-text", "<0x41> <0xFF>"),
    ("long-letters", "a" * 1000), ("long-ab", "ab" * 300), ("long-xy", "x y " * 100),
    ("long-emoji", "\U0001F600" * 100), ("long-spaces", " " * 300 + "x"), ("long-cjk", "\u65e5\u672c" * 150),
    ("long-newlines", "\r\n" * 100 + "end"), ("long-digits", "0123456789" * 30),
    ("long-unknown", "\U00013000" * 50 + " \u0f00" * 20),
]


def random_texts(rng, count):
    """Random strings over every plane (no surrogates), weighted towards interesting scalars."""
    pools = [
        lambda: chr(rng.randrange(0x20, 0x7F)),
        lambda: chr(rng.randrange(0x00, 0x20)),
        lambda: " ",
        lambda: chr(rng.randrange(0x80, 0x800)),
        lambda: chr(rng.randrange(0x300, 0x370)),
        lambda: chr(rng.choice([rng.randrange(0x800, 0xD800), rng.randrange(0xE000, 0x10000)])),
        lambda: chr(rng.randrange(0xFF00, 0xFFF0)),
        lambda: chr(rng.randrange(0x10000, 0x110000)),
        lambda: chr(rng.randrange(0x1F300, 0x1FAFF)),
        lambda: rng.choice(["\u2581", "\r\n", "  ", "</s>", "<pad>", "\u200d", "\u0301", "\u3000", "\ufb01", "'s"]),
    ]
    out = []
    for _ in range(count):
        n = rng.randrange(1, 60)
        out.append("".join(rng.choice(pools)() for _ in range(n)))
    return out


def scalar_table(fn, skip=range(0)):
    """fn applied to every scalar (no surrogates): the lines 'HEX: HEX HEX…' of those it changes."""
    lines = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or cp in skip:
            continue
        c = chr(cp)
        out = fn(c)
        if out != c:
            lines.append(f"{cp:X}:" + "".join(f" {ord(x):X}" for x in out))
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("samsum", nargs="?")
    args = ap.parse_args()
    root = samsum_dir(REPO, args.samsum)
    assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
    os.makedirs(OUT_DIR, exist_ok=True)
    data = {s: read_split(root, s) for s in SPLITS}
    train_texts = [r[f] for r in data["train"] for f in ("dialogue", "summary")]

    with tempfile.TemporaryDirectory() as tmp:
        lines_file = os.path.join(tmp, "train.txt")
        with open(lines_file, "w", encoding="utf-8") as f:
            for text in train_texts:
                for line in text.split("\n"):
                    if line.strip():
                        f.write(line + "\n")
        t5_model = train_spm(lines_file, os.path.join(tmp, "t5"), vocab_size=4000, pad_id=0, eos_id=1, unk_id=2,
                             bos_id=-1, character_coverage=1.0)
        peg_model = train_spm(lines_file, os.path.join(tmp, "pegasus"), vocab_size=3000, pad_id=0, eos_id=1,
                              unk_id=2, bos_id=-1, character_coverage=0.9995, normalization_rule_name="nmt_nfkc_cf")
        rules_file = os.path.join(tmp, "rules.tsv")
        with open(rules_file, "w", encoding="utf-8") as f:
            f.write("".join(f"{source}\t{target}\n" for source, target in CUSTOM_RULES))
        bf_model = train_spm(lines_file, os.path.join(tmp, "bf"), vocab_size=3000, unk_id=0, bos_id=1, eos_id=2,
                             pad_id=-1, character_coverage=0.9995, byte_fallback=True,
                             normalization_rule_tsv=rules_file)
        save(build_t5(t5_model), "t5.json")
        save(build_t5_converter(t5_model), "t5-converter.json")
        save(build_pegasus(peg_model), "pegasus.json")
        save(build_byte_fallback(bf_model), "spm-byte-fallback.json")
    for name, tok in build_native(train_texts).items():
        save(tok, name)
    toks = {name: Tokenizer.from_file(os.path.join(OUT_DIR, name)) for name in TOKENIZERS}

    # The texts: SAMSum dialogues and summaries across the splits, edge cases, random strings.
    rng = random.Random(20240914)
    rows = []
    for split in SPLITS:
        for field, count in (("dialogue", DIALOGUES_PER_SPLIT), ("summary", SUMMARIES_PER_SPLIT)):
            for i in sorted(rng.sample(range(len(data[split])), count)):
                rows.append({"kind": field, "name": f"{split}/{data[split][i]['id']}", "text": data[split][i][field]})
    rows += [{"kind": "edge", "name": n, "text": t} for n, t in EDGE]
    rows += [{"kind": "edge", "name": f"random-{i}", "text": t} for i, t in enumerate(random_texts(rng, 60))]

    with open(os.path.join(OUT_DIR, "cases.jsonl"), "w", encoding="utf-8") as f:
        for row in rows:
            row.update(ids={}, plain={}, decoded={}, decoded_all={})
            for name in TOKENIZERS:
                tok = toks[name]
                ids = tok.encode(row["text"]).ids
                row["ids"][name] = ids
                decoded = tok.decode(ids, skip_special_tokens=True)
                if decoded != row["text"]:
                    row["decoded"][name] = decoded
                if row["kind"] == "edge":
                    row["plain"][name] = tok.encode(row["text"], add_special_tokens=False).ids
                    decoded_all = tok.decode(ids, skip_special_tokens=False)
                    if decoded_all != decoded:
                        row["decoded_all"][name] = decoded_all
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")

    # Pairs, truncation, decoding of id sequences that encoding never produces.
    extra = []
    pairs = [("Hello world", "How are you?"), ("", "x"), ("a </s> b", "</s>"), (" lead", " second lead"),
             (rows[0]["text"], rows[1]["text"])]
    for name in TOKENIZERS:
        tok = toks[name]
        for a, b in pairs:
            for add in (True, False):
                extra.append({"op": "encode", "tokenizer": name, "text": a, "pair": b, "add_special_tokens": add,
                              "ids": tok.encode(a, b, add_special_tokens=add).ids})
        for ml in (1, 2, 5):
            t = Tokenizer.from_file(os.path.join(OUT_DIR, name))
            t.enable_truncation(max_length=ml)
            extra.append({"op": "encode", "tokenizer": name, "text": "Hello there, my friend!", "add_special_tokens": True,
                          "truncation": {"max_length": ml}, "ids": t.encode("Hello there, my friend!").ids})
    for name in TOKENIZERS:
        tok = toks[name]
        vocab = tok.get_vocab()
        size = tok.get_vocab_size()
        meta = vocab.get("\u2581")
        hello = tok.encode("Hello world", add_special_tokens=False).ids
        seqs = [[], hello, [size + 5] + hello, hello + [0, 1, 2, 3], [0, 1, 2, 3]]
        if meta is not None:
            seqs += [[meta], [meta, meta] + hello, hello + [meta, meta]]
        double = vocab.get("\u2581\u2581")
        if double is not None:
            seqs.append([double] + hello)
        byte_ids = {b: vocab.get(f"<0x{b:02X}>") for b in range(256)}
        if all(v is not None for v in byte_ids.values()):
            seqs += [[byte_ids[0xE2], byte_ids[0x82], byte_ids[0xAC]] + hello,
                     [byte_ids[0xE2], byte_ids[0x82]] + hello + [byte_ids[0xFF]],
                     [byte_ids[0xF0], byte_ids[0x9F], byte_ids[0x98], byte_ids[0x80]],
                     hello + [byte_ids[0x20], byte_ids[0x41]]]
        for ids in seqs:
            for skip in (False, True):
                extra.append({"op": "decode", "tokenizer": name, "decode_ids": ids, "skip_special_tokens": skip,
                              "text": tok.decode(ids, skip_special_tokens=skip)})
    with open(os.path.join(OUT_DIR, "extra-cases.jsonl"), "w", encoding="utf-8") as f:
        for c in extra:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")

    # Per-scalar tables: tokenizers' Unicode normalization (its own tables, not Python's) and the
    # Precompiled charsmap of t5.json.
    nfkc, nfd = normalizers.NFKC(), normalizers.NFD()
    with open(os.path.join(OUT_DIR, "nfkc-scalars.txt"), "w") as f:
        for form, n in (("NFKC", nfkc), ("NFD", nfd)):
            # Hangul syllables decompose algorithmically; the edge cases cover them.
            for line in scalar_table(n.normalize_str, skip=range(0xAC00, 0xD7A4)):
                f.write(f"{form} {line}\n")
    charsmap = json.load(open(os.path.join(OUT_DIR, "t5.json"), encoding="utf-8"))["normalizer"]["precompiled_charsmap"]
    pre = normalizers.Precompiled(base64.b64decode(charsmap))
    with open(os.path.join(OUT_DIR, "precompiled-scalars.txt"), "w") as f:
        f.write("\n".join(scalar_table(pre.normalize_str)) + "\n")

    total = sum(os.path.getsize(os.path.join(OUT_DIR, p)) for p in os.listdir(OUT_DIR))
    print(f"wrote {OUT_DIR}: {len(rows)} texts × {len(TOKENIZERS)} tokenizers, {len(extra)} extra cases, "
          f"{total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
