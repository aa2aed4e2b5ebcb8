"""Fixtures for reading every common checkpoint format (Tests/Fixtures/formats/).

    python tools/golden/make_formats_golden.py --out Tests/Fixtures/formats [--check] [--samsum DIR]

Weights (from the tiny fp32 fixtures of Tests/Fixtures/{bart,t5,pegasus}):
  bart-bin/            config.json + pytorch_model.bin: torch.save(BartForConditionalGeneration.state_dict())
                       (tied weights share one storage, as in published checkpoints)
  t5-bin-sharded/      T5 v1.0 as two .bin shards + pytorch_model.bin.index.json
  bart-fp16/           model.safetensors with every tensor F16
  pegasus-bin-bf16/    pytorch_model.bin with BFloat16 storages, one weight a transposed (non-contiguous) view
  evil-global.bin      a torch.save'd dict holding an object whose __reduce__ is os.system (must be refused)
  protocol4.bin        pickle protocol 4, a Parameter, a transposed view, float64
Tokenizers:
  t5-spiece/           spiece.model (Unigram, nmt_nfkc: a precompiled charsmap) + config.json (model_type t5)
  pegasus-spiece/      spiece.model (Unigram, identity normalization: no charsmap) + config.json (pegasus)
  tokenizers-golden.jsonl  per SAMSum validation dialogue: FNV-1a 64 of the ids (joined by ",") that
                       BartTokenizerFast (samsum-bpe-8192 vocab.json + merges.txt), T5TokenizerFast and
                       PegasusTokenizerFast (from the folders above, nothing else in them) give, and
                       "bart_cfg": the BART pair with BART_CFG's tokenizer_config.json and
                       special_tokens_map.json (add_prefix_space, <mask> lstrip); the
                       first dialogues and some edge cases carry their text and full ids.
The .bin files are written by torch 2.13 itself; the SentencePiece models are trained here with
sentencepiece on SAMSum train dialogues (deterministic: single thread, fixed seed sentences).
"""
import argparse
import filecmp
import hashlib
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from samsum_data import read_split, samsum_dir  # noqa: E402

FULL = 40  # dialogues whose text and ids are stored in full
EDGE = [
    "", " ", "Hello world", "  leading and  double  spaces  ", "line\nbreak\r\nwindows", "tab\tseparated",
    "Ünïcödé façade – “quotes” …", "emoji 😀👍🏽 ok", "ｆｕｌｌ ｗｉｄｔｈ ＡＢＣ １２３", "<mask> <s> </s> <pad> <unk>",
    "<extra_id_0> sentinel <extra_id_99>", "<mask_1> <mask_2> <unk_2>", "ﬁ ligature ½ ²", "A: Hi!\r\nB: Hello.\r\n",
]


BART_CFG = {
    "tokenizer_config.json": {"add_prefix_space": True, "tokenizer_class": "BartTokenizer"},
    "special_tokens_map.json": {"mask_token": {"content": "<mask>", "lstrip": True, "normalized": False,
                                               "rstrip": False, "single_word": False, "special": True}},
}


def fnv(ids):
    h = 0xCBF29CE484222325
    for b in ",".join(str(i) for i in ids).encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def make_weights(out):
    import torch
    from safetensors.torch import save_file
    from transformers import BartForConditionalGeneration, PegasusForConditionalGeneration, T5ForConditionalGeneration

    fx = os.path.join(REPO, "Tests", "Fixtures")

    def folder(name, src):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(src, "config.json"), os.path.join(d, "config.json"))
        return d

    bart_src = os.path.join(fx, "bart", "tiny")
    bart = BartForConditionalGeneration.from_pretrained(bart_src).eval()
    d = folder("bart-bin", bart_src)
    torch.save(bart.state_dict(), os.path.join(d, "pytorch_model.bin"))

    d = folder("bart-fp16", bart_src)
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in bart.state_dict().items()
          if k not in ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight")}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})

    t5_src = os.path.join(fx, "t5", "v1_0")
    t5 = T5ForConditionalGeneration.from_pretrained(t5_src).eval()
    d = folder("t5-bin-sharded", t5_src)
    sd = t5.state_dict()
    names = list(sd.keys())
    half = len(names) // 2
    shards = {"pytorch_model-00001-of-00002.bin": names[:half], "pytorch_model-00002-of-00002.bin": names[half:]}
    weight_map = {}
    for fname, keys in shards.items():
        # Clone so that a shard does not carry another shard's tied storage.
        torch.save({k: sd[k].clone() for k in keys}, os.path.join(d, fname))
        for k in keys:
            weight_map[k] = fname
    total = sum(v.numel() * v.element_size() for v in sd.values())
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)

    peg_src = os.path.join(fx, "pegasus", "tiny")
    peg = PegasusForConditionalGeneration.from_pretrained(peg_src).eval()
    d = folder("pegasus-bin-bf16", peg_src)
    sd = {}
    for k, v in peg.state_dict().items():
        v = v.detach().to(torch.bfloat16)
        if k == "model.encoder.layers.0.fc1.weight":
            v = v.t().contiguous().t()  # same values, column-major strides
            assert not v.is_contiguous()
        sd[k] = v
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo this must never run",))

    torch.save({"w": torch.zeros(2), "x": Evil()}, os.path.join(out, "evil-global.bin"))

    # Protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL…), a Parameter, a transposed view and
    # float64: values the test states.
    p4 = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
          "p": torch.nn.Parameter(torch.tensor([1.5, -2.0])),
          "d": torch.tensor([0.1, 3.0], dtype=torch.float64)}
    torch.save(p4, os.path.join(out, "protocol4.bin"), pickle_protocol=4)


def train_spm(prefix, texts, normalization):
    """Trains in `prefix`'s folder with relative names: the model records its input and prefix."""
    import sentencepiece as spm
    folder, name = os.path.split(prefix)
    with open(prefix + ".txt", "w", encoding="utf-8") as f:
        f.write("\n".join(texts))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        spm.set_random_generator_seed(1)
        spm.SentencePieceTrainer.train(input=name + ".txt", model_prefix=name, vocab_size=800, model_type="unigram",
                                       pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0,
                                       normalization_rule_name=normalization, num_threads=1, minloglevel=2)
    finally:
        os.chdir(cwd)
    return prefix + ".model"


def make_tokenizers(out, samsum):
    from transformers import BartTokenizerFast, PegasusTokenizerFast, T5TokenizerFast

    train = [r["dialogue"].replace("\r\n", " ").replace("\n", " ") for r in read_split(samsum, "train")[:3000]]
    tmp = tempfile.mkdtemp()
    try:
        toks = {}
        for name, norm, model_type, cls in [("t5-spiece", "nmt_nfkc", "t5", T5TokenizerFast),
                                            ("pegasus-spiece", "identity", "pegasus", PegasusTokenizerFast)]:
            d = os.path.join(out, name)
            os.makedirs(d, exist_ok=True)
            shutil.copy(train_spm(os.path.join(tmp, name), train, norm), os.path.join(d, "spiece.model"))
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump({"model_type": model_type}, f)
            only = os.path.join(tmp, name + "-only")
            os.makedirs(only)
            shutil.copy(os.path.join(d, "spiece.model"), only)
            toks[model_type] = cls.from_pretrained(only)
        bart_only = os.path.join(tmp, "bart-only")
        os.makedirs(bart_only)
        shutil.copy(os.path.join(REPO, "Tests/Fixtures/tokenizer/samsum-bpe-8192-vocab.json"), os.path.join(bart_only, "vocab.json"))
        shutil.copy(os.path.join(REPO, "Tests/Fixtures/tokenizer/samsum-bpe-8192-merges.txt"), os.path.join(bart_only, "merges.txt"))
        toks["bart"] = BartTokenizerFast.from_pretrained(bart_only)
        # The same pair with the optional files that change it: add_prefix_space, <mask> taking the space before it.
        for name, obj in BART_CFG.items():
            with open(os.path.join(bart_only, name), "w") as f:
                json.dump(obj, f)
        toks["bart_cfg"] = BartTokenizerFast.from_pretrained(bart_only)
    finally:
        shutil.rmtree(tmp)

    lines = []
    dialogues = [r["dialogue"] for r in read_split(samsum, "validation")]
    for kind, texts in [("validation", dialogues), ("edge", EDGE)]:
        for i, text in enumerate(texts):
            rec = {"set": kind, "i": i}
            full = kind == "edge" or i < FULL
            if full:
                rec["text"] = text
            for fam in ["bart", "bart_cfg", "t5", "pegasus"]:
                ids = toks[fam](text)["input_ids"]
                rec[fam] = fnv(ids)
                if full:
                    rec[fam + "_ids"] = ids
            lines.append(json.dumps(rec, ensure_ascii=False))
    with open(os.path.join(out, "tokenizers-golden.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "Tests", "Fixtures", "formats"))
    ap.add_argument("--samsum", default=None)
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare")
    args = ap.parse_args()
    import torch
    torch.manual_seed(0)
    out = tempfile.mkdtemp() if args.check else args.out
    os.makedirs(out, exist_ok=True)
    make_weights(out)
    make_tokenizers(out, samsum_dir(REPO, args.samsum))
    if args.check:
        # torch.save embeds a random serialization id, so .bin files are compared by their tensors.
        bad = []
        for root, _, files in os.walk(out):
            for fn in files:
                rel = os.path.relpath(os.path.join(root, fn), out)
                mine, theirs = os.path.join(out, rel), os.path.join(args.out, rel)
                if not os.path.exists(theirs):
                    bad.append(rel + " (missing)")
                elif rel.endswith(".bin"):
                    if rel in ("evil-global.bin", "protocol4.bin"):
                        continue
                    a, b = torch.load(mine, weights_only=True), torch.load(theirs, weights_only=True)
                    if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
                        bad.append(rel)
                elif not filecmp.cmp(mine, theirs, shallow=False):
                    bad.append(rel)
        shutil.rmtree(out)
        if bad:
            sys.exit("formats fixtures differ: " + ", ".join(bad))
        print("formats fixtures: identical")
    else:
        print("wrote", out, hashlib.sha256(open(os.path.join(out, "tokenizers-golden.jsonl"), "rb").read()).hexdigest()[:12])


if __name__ == "__main__":
    main()
