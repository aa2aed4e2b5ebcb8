#!/usr/bin/env python3
"""The Hugging Face round trip (make check-hub-roundtrip), all real processes and real HTTP on loopback:

1. transformers creates a tiny random model with a real tokenizer and `save_pretrained`s it:
   BART with the byte-level BPE trained on SAMSum (Tests/Fixtures/tokenizer/samsum-bpe-8192.json), and
   (--families bart,t5) T5 with a SentencePiece Unigram `spiece.model` (Tests/Fixtures/formats/t5-spiece)
   published WITHOUT tokenizer.json, so Precis builds its tokenizer from spiece.model;
2. a loopback Hub (tools/golden/local_hub.py: download layout + the upload protocol) serves it as org/tiny-<family>;
3. `precis train` runs a cluster (1 parameter server, 2 workers, separate processes) for a few steps with
   `model:` and `tokenizer:` naming the Hub repository (downloaded through HF_ENDPOINT) and `push_to_hub`
   to org/tiny-<family>-finetuned on the same Hub (hub_token from HF_TOKEN; the Hub refuses writes without it);
4. transformers `from_pretrained("org/tiny-<family>-finetuned")` through HF_ENDPOINT: no missing, unexpected or
   mismatched keys; the weights differ from the initial ones (it trained) and equal the pushed file;
5. greedy `generate` (min_length 8, 12 new tokens at most) on SAMSum test dialogues, and `precis summarize --model org/tiny-<family>-finetuned`
   (downloaded into a fresh cache through the Hub code path) with the same settings: for every dialogue the
   same generated token ids (`--ids`) and the same text (stripped, as run_summarization and Precis do).

    python tools/golden/check_hub_roundtrip.py --precis .build/release/precis [--families bart,t5] [--keep]

Run in the pinned venv (/work/venv-golden, or `make golden-venv`). Exit status 0 only when every check holds;
each check is printed with what was compared.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_hub import LocalHub  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "hf_roundtrip_0123456789abcdef"
MAX_SOURCE = 64
MAX_NEW = 12
# A few steps leave a tiny model wanting to end at once: end of sequence is held off for this many
# tokens (transformers' min_length, the decoder start token included; `precis summarize --min-length`).
MIN_LENGTH = 8
N_TEST = 4

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def precis_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}
    env.update(extra)
    return env


def run(cmd, env, log_path, timeout=1800):
    """(exit status, stdout, stderr then stdout) of a Precis command; both also kept in log_path."""
    with open(log_path, "w") as log:
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout, cwd=ROOT)
    with open(log_path, "a") as log:
        log.write(r.stdout)
    return r.returncode, r.stdout, open(log_path).read()


def tail(text, n=30):
    return "\n".join(text.splitlines()[-n:])


# ---- 1. the tiny models transformers makes ----
# Initialised wider than usual (init_std 0.5, initializer_factor 3): a few steps from a near-uniform
# model leave it emitting <s> or </s> only; from a wide one its greedy tokens stay varied and far
# apart in logit, so the comparison below means something.

def make_bart(folder):
    import torch
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(ROOT, "Tests/Fixtures/tokenizer/samsum-bpe-8192.json"),
                                  bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
                                  model_max_length=128)
    cfg = BartConfig(vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                     pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
                     init_std=0.5)
    torch.manual_seed(1234)
    model = BartForConditionalGeneration(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return "tokenizer.json (byte-level BPE, 8192 ids)"


def make_t5(folder):
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration
    # transformers 5 builds T5's tokenizer right from a folder holding spiece.model (900 ids: 800 pieces
    # and 100 <extra_id_N> after them); T5Tokenizer(vocab_file=…) would give 104.
    os.makedirs(folder, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "Tests/Fixtures/formats/t5-spiece/spiece.model"), os.path.join(folder, "spiece.model"))
    tok_config = {"tokenizer_class": "T5Tokenizer", "extra_ids": 100, "model_max_length": 128}
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2)
    tok = AutoTokenizer.from_pretrained(folder)
    if len(tok) != 900:
        sys.exit(f"transformers built a T5 tokenizer of {len(tok)} ids from spiece.model, not 900")
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
                   relative_attention_num_buckets=8, relative_attention_max_distance=32, feed_forward_proj="gated-gelu",
                   tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                   initializer_factor=3.0)
    torch.manual_seed(1234)
    model = T5ForConditionalGeneration(cfg)
    model.save_pretrained(folder)
    # Publish the classic files only (spiece.model + tokenizer_config.json): Precis must build the tokenizer from
    # spiece.model, and the folder it pushes back holds the tokenizer.json it wrote.
    return "spiece.model only (SentencePiece Unigram, 900 ids; no tokenizer.json)"


FAMILIES = {
    "bart": dict(make=make_bart, prefix=""),
    "t5": dict(make=make_t5, prefix="summarize: "),
}


def folder_files(folder):
    out = {}
    for name in sorted(os.listdir(folder)):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            out[name] = open(p, "rb").read()
    return out


def test_dialogues(n):
    out = []
    with open(os.path.join(ROOT, "data/samsum/test.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            if d.get("dialogue"):
                out.append(d["dialogue"].replace("\r\n", "\n"))
            if len(out) == n:
                break
    return out


def roundtrip(family, precis, hub, work):
    import torch
    from safetensors.torch import load as load_safetensors
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    spec = FAMILIES[family]
    base, tuned = f"org/tiny-{family}", f"org/tiny-{family}-finetuned"
    print(f"== {family}: {base} → precis train (cluster) → {tuned} → transformers", flush=True)
    made = os.path.join(work, f"{family}-made")
    what = spec["make"](made)
    files = folder_files(made)
    base_commit = hub.publish(base, files, "tiny random model saved by transformers")
    print(f"     {base} @ {base_commit[:12]}: {', '.join(sorted(files))}; tokenizer: {what}")
    initial = load_safetensors(files["model.safetensors"])

    # ---- 3. precis train: a cluster, model and tokenizer from the Hub, pushed back to it ----
    out_dir = os.path.join(work, f"{family}-out")
    cfg_path = os.path.join(work, f"{family}.yaml")
    with open(cfg_path, "w") as f:
        f.write(f"""training:
  output_dir: {out_dir}
  model: {base}
  tokenizer: {base}
  train_file: {ROOT}/data/samsum/train.jsonl
  max_train_samples: 48
  max_source_length: {MAX_SOURCE}
  max_target_length: 16
  source_prefix: {json.dumps(spec['prefix'])}
  per_device_train_batch_size: 4
  learning_rate: 3.0e-3
  warmup_steps: 1
  max_steps: 6
  logging_steps: 2
  seed: 5
  save_strategy: 'no'
  report_to: none
  push_to_hub: true
  hub_model_id: {tuned}
  hub_strategy: end
  hub_url: {hub.endpoint}
cluster:
  coordinator: tcp://127.0.0.1:*
  servers: 1
  workers: 2
  threads_per_worker: 1
  consistency: sync
  heartbeat_interval: 0.5
  heartbeat_timeout: 60
""")
    train_cache = os.path.join(work, f"{family}-hf-train")
    env = precis_env({"HF_ENDPOINT": hub.endpoint, "HF_HOME": train_cache, "HF_TOKEN": TOKEN})
    hub.clear_log()
    rc, _, log = run([precis, "train", "--config", cfg_path], env, os.path.join(work, f"{family}-train.log"))
    if not check(rc == 0, f"precis train: a cluster of 1 server + 2 workers on {base} from the Hub, exit {rc}"):
        print(tail(log))
        return
    check("2 worker(s)" in log, "… and both workers trained (the progress line counts 2 worker(s))")
    check(f"{base} → " in log and base_commit in log, f"precis train downloaded {base} (commit {base_commit[:12]}) through HF_ENDPOINT")
    check(os.path.isdir(os.path.join(train_cache, "hub", f"models--{base.replace('/', '--')}", "snapshots", base_commit)),
          "… into the huggingface_hub cache layout under HF_HOME")
    tuned_commit, pushed = hub.head(tuned)
    commits = hub.commits(tuned)
    check(tuned_commit is not None and "model.safetensors" in (pushed or {}),
          f"precis pushed {tuned}: {len(commits)} commit(s) {[m for _, m in commits]}, head {str(tuned_commit)[:12]}, "
          f"files {sorted(pushed or {})}")
    if tuned_commit is None or "model.safetensors" not in pushed:
        print(tail(log))
        return
    writes = [r for r in hub.requests() if r[1] in ("POST", "PUT")]
    check(any("/preupload/" in r[2] for r in writes) and any("/commit/" in r[2] for r in writes)
          and any("lfs/objects/batch" in r[2] for r in writes) and any(r[0] == "cdn" for r in writes),
          f"the push used preupload, the LFS batch API, storage uploads and an NDJSON commit ({len(writes)} write requests)")

    # ---- 4. transformers loads the pushed repository through HF_ENDPOINT ----
    model, info = AutoModelForSeq2SeqLM.from_pretrained(tuned, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    check(not problems, f"transformers from_pretrained('{tuned}') through HF_ENDPOINT: {type(model).__name__}, "
                        f"no missing/unexpected/mismatched keys {problems or ''}")
    tok = AutoTokenizer.from_pretrained(tuned)
    base_tok = AutoTokenizer.from_pretrained(base)
    texts = test_dialogues(N_TEST)
    sample = [spec["prefix"] + t for t in test_dialogues(50)]
    same_ids = [tok(t)["input_ids"] for t in sample] == [base_tok(t)["input_ids"] for t in sample]
    check(same_ids, f"the pushed tokenizer ({type(tok).__name__}, {'tokenizer.json' if 'tokenizer.json' in pushed else '?'}) "
                    f"encodes 50 SAMSum test dialogues as {base}'s {type(base_tok).__name__} does")
    pushed_weights = load_safetensors(pushed["model.safetensors"])
    state = model.state_dict()
    same_as_pushed = all(torch.equal(state[k], v) for k, v in pushed_weights.items() if k in state)
    check(same_as_pushed, f"the loaded weights are the pushed model.safetensors ({len(pushed_weights)} tensors)")
    changed = [k for k, v in initial.items() if k in pushed_weights and not torch.equal(v, pushed_weights[k])]
    biggest = max((float((pushed_weights[k].float() - initial[k].float()).abs().max()) for k in changed), default=0.0)
    check(len(changed) >= len(initial) // 2 and biggest > 1e-4,
          f"it trained: {len(changed)} of {len(initial)} tensors changed (largest change {biggest:.3g})")

    # ---- 5. the same summaries from transformers and precis summarize ----
    model.eval()
    hf_ids, hf_texts = [], []
    with torch.no_grad():
        for t in texts:
            enc = tok(spec["prefix"] + t, return_tensors="pt", truncation=True, max_length=MAX_SOURCE)
            out = model.generate(**enc, num_beams=1, do_sample=False, max_new_tokens=MAX_NEW, min_length=MIN_LENGTH)
            ids = out[0].tolist()
            hf_ids.append(ids)
            hf_texts.append(tok.decode(ids, skip_special_tokens=True))
    inp = os.path.join(work, f"{family}-test.jsonl")
    with open(inp, "w") as f:
        for t in texts:
            f.write(json.dumps({"dialogue": t}) + "\n")
    summarize_cache = os.path.join(work, f"{family}-hf-summarize")
    env = precis_env({"HF_ENDPOINT": hub.endpoint, "HF_HOME": summarize_cache})
    rc, stdout, log = run([precis, "summarize", "--model", tuned, "--input", inp, "--max-source-length", str(MAX_SOURCE),
                           "--source-prefix", spec["prefix"], "--num-beams", "1", "--max-new-tokens", str(MAX_NEW),
                           "--min-length", str(MIN_LENGTH), "--ids",
                           "--batch-size", "2"], env, os.path.join(work, f"{family}-summarize.log"))
    if not check(rc == 0, f"precis summarize --model {tuned} (a fresh cache, downloaded from the Hub), exit {rc}"):
        print(tail(log))
        return
    check(tuned_commit in log, f"precis summarize downloaded {tuned} at the pushed commit {tuned_commit[:12]}")
    answers = [json.loads(l) for l in stdout.splitlines() if l.strip()]
    check(len(answers) == len(texts), f"precis summarize answered {len(answers)} of {len(texts)} dialogues")
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    for i, (theirs_ids, theirs_text, answer) in enumerate(zip(hf_ids, hf_texts, answers)):
        mine_ids, mine_text = until_eos(answer.get("ids", []), eos), answer.get("summary")
        content = [x for x in theirs_ids if x not in tok.all_special_ids]
        check(len(content) >= MIN_LENGTH - 2, f"dialogue {i}: transformers generated {len(content)} content tokens (a real comparison)")
        check(mine_ids == until_eos(theirs_ids, eos), f"dialogue {i}: token ids: transformers {theirs_ids} "
                                                      f"{'==' if mine_ids == until_eos(theirs_ids, eos) else '!='} precis {mine_ids}")
        # `precis summarize` strips the decoded text as run_summarization's postprocess_text does.
        check(mine_text == theirs_text.strip(), f"dialogue {i}: text: transformers {theirs_text.strip()!r} "
                                                f"{'==' if mine_text == theirs_text.strip() else '!='} precis {mine_text!r}")


def until_eos(ids, eos):
    """The ids up to and including the first end of sequence after the decoder start (batched rows are padded after it)."""
    for j in range(1, len(ids)):
        if ids[j] in eos:
            return list(ids[: j + 1])
    return list(ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precis", default=".build/release/precis")
    ap.add_argument("--families", default="bart,t5", help="comma-separated: bart, t5")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    precis = os.path.abspath(args.precis)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    for f in families:
        if f not in FAMILIES:
            sys.exit(f"unknown family {f!r} (bart, t5)")
    if not os.path.exists(os.path.join(ROOT, "data/samsum/test.jsonl")):
        sys.exit("data/samsum/test.jsonl is missing: run `make data`")
    work = tempfile.mkdtemp(prefix="precis-hub-roundtrip-")
    hub = LocalHub(token=TOKEN).start()
    # The Hub refuses writes without the token, so a push that lands proves Precis sent it.
    req = urllib.request.Request(hub.endpoint + "/api/repos/create", data=b'{"name": "x", "organization": "org"}', method="POST")
    try:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req)
        check(False, "the loopback Hub refuses a write without the token")
    except urllib.error.HTTPError as e:
        check(e.code == 401, f"the loopback Hub refuses a write without the token (HTTP {e.code})")
    # transformers / huggingface_hub read these when imported: the loopback Hub, a cache of our own, the token.
    os.environ.update({"HF_ENDPOINT": hub.endpoint, "HF_HOME": os.path.join(work, "hf-transformers"), "HF_TOKEN": TOKEN,
                       "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"})
    os.environ.pop("HF_HUB_CACHE", None)
    os.environ.pop("TRANSFORMERS_OFFLINE", None)
    import transformers
    import huggingface_hub
    try:
        for family in families:
            roundtrip(family, precis, hub, work)
    finally:
        hub.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failure(s); transformers {transformers.__version__}, "
          f"huggingface_hub {huggingface_hub.__version__}, families {', '.join(families)}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
