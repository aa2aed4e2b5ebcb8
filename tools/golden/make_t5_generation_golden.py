#!/usr/bin/env python3
"""Golden reference outputs of ``T5ForConditionalGeneration.generate`` for Precis.

The T5 counterpart of make_generation_golden.py (whose transformers capture, independent greedy /
beam re-implementation, decision-margin check and JSON layout it imports): small random T5 models
(v1.0: ReLU, tied and scaled head; v1.1: gated-gelu, own head), the same list of generate()
settings (greedy, min_length + no_repeat_ngram_size, beam 4, beam 4 with length_penalty 2 and
n-gram blocking, beam 3 returning 2, max_length, sampling with a seed, config defaults), written to
``<out>/<case>/`` as config.json, generation_config.json, model.safetensors, inputs.safetensors
and expected.json. It refuses to write fixtures when transformers and the re-implementation
disagree, when a decision is closer than MIN_MARGIN, or when sdpa / no-cache / float64 change a
sequence.

Sampling with a seed (``do_sample=True`` under ``torch.manual_seed``): top_k=1, and temperature 0.7 with
top_p 0.01 (top_k 0), min_length 6 and no_repeat_ngram_size 2, returning 2 sequences per source. Both keep one candidate token per step (top_p
0.01 is below 1/vocab, the least the most likely token can have), so their tokens do not depend on the
random generator and can be token-identical across implementations while still going through the
sampling path (warpers, the draw, the expansion of each source into num_return_sequences rows); the
re-implementation checks them as greedy decisions with the same margins. Precis' sampler draws from
its own generator otherwise (GenerationTests checks that a seed makes it reproducible).

Usage:
  python make_t5_generation_golden.py --out Tests/Fixtures/generation            # (re)generate
  python make_t5_generation_golden.py --out Tests/Fixtures/generation --check    # compare
  python make_t5_generation_golden.py --search-seeds t5_v1_0 --seed-range 0 100  # seed tuning aid
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

from transformers import T5Config, T5ForConditionalGeneration  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bart_golden import canonicalize_safetensors, check_versions, compare_trees, setup_determinism  # noqa: E402
from make_generation_golden import (  # noqa: E402
    MIN_MARGIN, Margins, hf_generate, json_dump, json_value, ref_beam, ref_greedy, row_lengths, sampling_settings,
)

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

ATTN_IMPL = "eager"
SPECIAL = dict(pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)

# transformers 5.24 sizes the decoder's generation cache by num_layers: both stacks have the same depth here.
# Weights: transformers' init (initializer_factor 2: with 1, random T5s repeat one token), norms perturbed by N(0, 0.1), and the
# head's row of EOS shifted so that EOS competes at varying steps.
CASES = {
    "t5_v1_0": dict(
        seed=19, eos_shift=1.0, untied_head=False,
        config=dict(vocab_size=64, d_model=16, d_kv=8, num_heads=2, d_ff=32, num_layers=2, num_decoder_layers=2,
                    relative_attention_num_buckets=8, relative_attention_max_distance=12, feed_forward_proj="relu",
                    tie_word_embeddings=True, dropout_rate=0.0, initializer_factor=2.0, **SPECIAL),
        src_lens=[9, 6, 4],
    ),
    "t5_v1_1": dict(
        seed=2, eos_shift=0.5, untied_head=True,
        config=dict(vocab_size=48, d_model=24, d_kv=6, num_heads=3, d_ff=40, num_layers=2, num_decoder_layers=2,
                    relative_attention_num_buckets=16, relative_attention_max_distance=32, feed_forward_proj="gated-gelu",
                    tie_word_embeddings=False, dropout_rate=0.0, initializer_factor=2.0, **SPECIAL),
        src_lens=[11, 7],
    ),
}


def run_specs() -> list[dict]:
    special = dict(decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
    return [
        dict(name="greedy", settings=dict(num_beams=1, do_sample=False, max_new_tokens=12, **special)),
        dict(name="greedy_minlen8_norepeat2",
             settings=dict(num_beams=1, do_sample=False, max_new_tokens=12, min_length=8, no_repeat_ngram_size=2, **special)),
        dict(name="beam4", settings=dict(num_beams=4, do_sample=False, length_penalty=1.0, early_stopping=True, max_new_tokens=12,
                                         **special)),
        dict(name="beam4_lp2_noearly_norepeat3_minlen5",
             settings=dict(num_beams=4, do_sample=False, length_penalty=2.0, early_stopping=False, no_repeat_ngram_size=3,
                           min_length=5, max_new_tokens=12, **special)),
        dict(name="beam3_return2", settings=dict(num_beams=3, num_return_sequences=2, do_sample=False, length_penalty=1.0,
                                                 early_stopping=False, max_new_tokens=12, **special)),
        dict(name="greedy_maxlen10", settings=dict(num_beams=1, do_sample=False, max_length=10, **special)),
        dict(name="sample_topk1_seed", settings=dict(num_beams=1, do_sample=True, top_k=1, max_new_tokens=12, **special)),
        dict(name="sample_temp07_topp001_minlen6_norepeat2_return2_seed",
             settings=dict(num_beams=1, do_sample=True, temperature=0.7, top_k=0, top_p=0.01, num_return_sequences=2,
                           min_length=6, no_repeat_ngram_size=2, max_new_tokens=12, **special)),
        dict(name="defaults", settings=dict(max_new_tokens=12)),
    ]


def build_model(spec: dict, seed: int) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    cfg = T5Config(**spec["config"])
    model = T5ForConditionalGeneration(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "layer_norm" in n:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
        if spec["untied_head"]:
            model.lm_head.weight = nn.Parameter(torch.randn(model.lm_head.weight.shape, generator=gen) * cfg.d_model**-0.5)
        model.lm_head.weight[cfg.eos_token_id] += spec["eos_shift"] * model.lm_head.weight[cfg.eos_token_id].sign()
    return model


def load(case_dir: str, attn: str = ATTN_IMPL) -> T5ForConditionalGeneration:
    model = T5ForConditionalGeneration.from_pretrained(case_dir, attn_implementation=attn)
    model.to(torch.float32)
    model.eval()
    return model


def make_inputs(cfg: T5Config, src_lens, gen: torch.Generator) -> dict:
    B, S = len(src_lens), max(src_lens)
    input_ids = torch.full((B, S), cfg.pad_token_id, dtype=torch.int64)
    attention_mask = torch.zeros((B, S), dtype=torch.int64)
    for b, n in enumerate(src_lens):
        body = torch.randint(2, cfg.vocab_size, (n - 1,), generator=gen, dtype=torch.int64)
        input_ids[b, :n] = torch.cat([body, torch.tensor([cfg.eos_token_id])])
        attention_mask[b, :n] = 1
    return dict(input_ids=input_ids, attention_mask=attention_mask)


def next_eos(row: list[int], eos: int) -> int:
    """The length of a row up to and with its first EOS after the start token (all of it if none)."""
    return next((i + 1 for i in range(1, len(row)) if row[i] == eos), len(row))


def evaluate(model, inputs: dict, seed: int) -> tuple[list[dict], list[str]]:
    runs, problems = [], []
    for rs in run_specs():
        torch.manual_seed(seed)  # the sampled runs' generator (their tokens do not depend on it)
        res = hf_generate(model, inputs, rs["settings"])
        eff = {k: json_value(v) for k, v in res["effective"].items()}
        if eff["do_sample"]:
            # The warpers' settings, as generate resolved them (the kwargs over the model's generation config).
            eff.update(sampling_settings(model, rs["settings"]))
        seqs = res["sequences"].tolist()
        margins = Margins()
        if eff["num_beams"] == 1:
            if res["mode"] != ("sample" if eff["do_sample"] else "greedy_search"):
                problems.append(f"{rs['name']}: decoded by {res['mode']}")
            # Each source's rows, num_return_sequences of them side by side (sampling expands the inputs).
            ref = [row for row in ref_greedy(model, inputs, eff, margins) for _ in range(eff["num_return_sequences"])]
            ref_scores = None
        else:
            ref, ref_scores = ref_beam(model, inputs, eff, margins)
            # transformers fills beam outputs with `pad_token_id or eos_token_id[0]`: T5's pad id 0 is
            # falsy, so EOS (README "Beam search").
            fill = eff["pad_token_id"] or eff["eos_token_id"]
            ref = [r[:end] + [fill] * (len(r) - end) for r in ref for end in [next_eos(r, eff["eos_token_id"])]]
        if ref != seqs:
            problems.append(f"{rs['name']}: reference {ref} != transformers {seqs}")
        run = dict(name=rs["name"], settings=rs["settings"], effective_settings=eff, decoding=res["mode"],
                   logits_processors=res["processors"], sequences=seqs)
        if "sequences_scores" in res:
            run["scores"] = res["sequences_scores"].tolist()
            if ref_scores is not None and max(abs(a - b) for a, b in zip(run["scores"], ref_scores)) > 1e-5:
                problems.append(f"{rs['name']}: reference scores {ref_scores} != {run['scores']}")
        if margins.min < MIN_MARGIN:
            problems.append(f"{rs['name']}: decision margin {margins.min:.3g} < {MIN_MARGIN} at {margins.where}")
        runs.append(run)
    by = {r["name"]: r for r in runs}
    for r in (by["greedy"], by["beam4"]):
        eff = r["effective_settings"]
        lens = row_lengths(r["sequences"], eff["pad_token_id"], eff["eos_token_id"])
        if not any(n < eff["max_length"] for n in lens):
            problems.append(f"{r['name']}: no row ends early ({lens})")
    if by["greedy"]["sequences"] == by["beam4"]["sequences"]:
        problems.append("greedy == beam4 for every row")
    if by["greedy"]["sequences"] == by["greedy_minlen8_norepeat2"]["sequences"]:
        problems.append("min_length/no_repeat changed nothing")
    return runs, problems


@torch.no_grad()
def cross_checks(case_dir: str, inputs: dict, runs: list[dict]) -> list[str]:
    bad = []
    for vname, m in {"sdpa": load(case_dir, "sdpa"), "float64": load(case_dir).to(torch.float64)}.items():
        bad += [f"{vname}/{r['name']}" for r in runs if m.generate(**inputs, **r["settings"]).tolist() != r["sequences"]]
    eager = load(case_dir)
    bad += [f"no-cache/{r['name']}" for r in runs
            if eager.generate(**inputs, **r["settings"], use_cache=False).tolist() != r["sequences"]]
    return bad


def write_case(name: str, spec: dict, out_root: str, seed: int | None = None, dry: bool = False) -> list[str]:
    case_dir = os.path.join(out_root, name)
    os.makedirs(case_dir, exist_ok=True)
    seed = spec["seed"] if seed is None else seed
    build_model(spec, seed).save_pretrained(case_dir)
    model = load(case_dir)
    assert (model.lm_head.weight is not model.shared.weight) == spec["untied_head"]
    inputs = make_inputs(model.config, spec["src_lens"], torch.Generator().manual_seed(seed + 2))
    runs, problems = evaluate(model, inputs, seed)
    if not problems:
        problems = cross_checks(case_dir, inputs, runs)
    if dry:
        return problems
    if problems:
        raise SystemExit(f"golden[{name}]: refusing to write fixtures:\n  " + "\n  ".join(problems))
    path = os.path.join(case_dir, "inputs.safetensors")
    save_file({k: v.contiguous() for k, v in inputs.items()}, path)
    canonicalize_safetensors(path)
    with open(os.path.join(case_dir, "expected.json"), "w") as fh:
        fh.write(json_dump(runs) + "\n")
    for fn in os.listdir(case_dir):
        os.chmod(os.path.join(case_dir, fn), 0o644)
    for r in runs:
        print(f"[{name}] {r['name']}: {r['sequences']}")
    return []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "generation"))
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--search-seeds", choices=sorted(CASES))
    ap.add_argument("--seed-range", nargs=2, type=int, default=[0, 50])
    ap.add_argument("--eos-shift", type=float, default=None)
    args = ap.parse_args()
    check_versions()
    setup_determinism()
    if args.search_seeds:
        spec = dict(CASES[args.search_seeds])
        if args.eos_shift is not None:
            spec["eos_shift"] = args.eos_shift
        tmp = tempfile.mkdtemp(prefix="golden-t5gen-")
        for seed in range(*args.seed_range):
            problems = write_case(args.search_seeds, spec, tmp, seed=seed, dry=True)
            print(f"seed {seed}: {'OK' if not problems else problems[0]}", flush=True)
            if not problems:
                break
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    cases = args.case or list(CASES)
    out_root = os.path.abspath(args.out)
    target = tempfile.mkdtemp(prefix="golden-t5gen-") if args.check else out_root
    try:
        for name in cases:
            write_case(name, CASES[name], target)
        if args.check:
            bad = compare_trees(target, out_root, cases)
            if bad:
                print("golden: MISMATCH vs " + out_root + ": " + ", ".join(bad))
                return 1
            print("golden: regenerated fixtures are byte-identical to " + out_root)
    finally:
        if args.check:
            shutil.rmtree(target, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
