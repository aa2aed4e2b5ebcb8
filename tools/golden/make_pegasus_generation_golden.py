#!/usr/bin/env python3
"""Golden reference outputs of ``PegasusForConditionalGeneration.generate`` for Precis.

The Pegasus counterpart of make_generation_golden.py (whose transformers spy, independent greedy /
beam re-implementation, decision-margin rule, property checks and JSON layout it reuses): small,
randomly initialised Pegasus models (float32, CPU, seeded), ``model.generate`` with greedy, beam
search (length penalties 1, 2 and 0.6, early stopping on and off), min length, max length vs max
new tokens, no-repeat n-grams, sampling with a seed (top_k=1: a sampled run whose tokens do not
depend on the random generator, so they can be token-identical across implementations; Precis'
sampler draws from its own generator otherwise) and the config defaults. Per case a folder
``<out>/<case>/`` with config.json, generation_config.json, model.safetensors, inputs.safetensors
(input_ids, attention_mask: ``tok… </s>`` right padded with pad 0) and expected.json.

The script refuses to write fixtures when transformers and the re-implementation disagree, when a
decision is closer than MIN_MARGIN, or when sdpa / float64 / use_cache=False give other sequences.

Usage:
  python make_pegasus_generation_golden.py                      # (re)generate Tests/Fixtures/pegasus/generation
  python make_pegasus_generation_golden.py --check              # regenerate in a temp dir and compare
  python make_pegasus_generation_golden.py --search-seeds tiny --seed-range 0 40
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_generation_golden as gen  # noqa: E402  (BART's generation fixtures: shared machinery)

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

from transformers import PegasusConfig, PegasusForConditionalGeneration  # noqa: E402

INIT_STD = 0.2
NOISE_STD = 0.02
FINAL_LOGITS_BIAS_STD = 0.5
DROPOUTS = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)

CASES = {
    "tiny": dict(
        seed=18,
        eos_bias=1.5,
        linear_scale=2.0,
        config=dict(
            vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
            activation_function="relu", scale_embedding=False, init_std=INIT_STD, **DROPOUTS,
        ),
        src_lens=[9, 6, 4],  # B=3, S=9
    ),
}


def run_specs(spec: dict) -> list[dict]:
    cfg = PegasusConfig(**spec["config"])
    special = dict(decoder_start_token_id=cfg.decoder_start_token_id, eos_token_id=cfg.eos_token_id,
                   pad_token_id=cfg.pad_token_id, forced_eos_token_id=cfg.forced_eos_token_id)
    greedy = dict(num_beams=1, do_sample=False, **special)
    return [
        dict(name="greedy", settings=dict(max_new_tokens=12, **greedy)),
        dict(name="greedy_minlen8_norepeat2", settings=dict(max_new_tokens=12, min_length=8, no_repeat_ngram_size=2, **greedy)),
        dict(name="beam4", settings=dict(num_beams=4, do_sample=False, length_penalty=1.0, early_stopping=True,
                                         max_new_tokens=12, **special)),
        dict(name="beam4_lp2_noearly_norepeat3_minlen5",
             settings=dict(num_beams=4, do_sample=False, length_penalty=2.0, early_stopping=False, no_repeat_ngram_size=3,
                           min_length=5, max_new_tokens=12, **special)),
        # google/pegasus-xsum's generation settings: 8 beams in the hub config, length_penalty 0.6.
        dict(name="beam4_lp06_maxlen10",
             settings=dict(num_beams=4, do_sample=False, length_penalty=0.6, early_stopping=True, max_length=10, **special)),
        dict(name="greedy_maxlen10", settings=dict(max_length=10, **greedy)),
        dict(name="sample_topk1_seed",
             settings=dict(num_beams=1, do_sample=True, top_k=1, max_new_tokens=12, **special)),
        dict(name="defaults", settings=dict(max_new_tokens=12)),
    ]


@torch.no_grad()
def perturb(model: PegasusForConditionalGeneration, g: torch.Generator, eos_bias: float, linear_scale: float) -> None:
    ln = set()
    for _, mod in model.named_modules():
        if isinstance(mod, nn.LayerNorm):
            ln.update(id(p) for p in mod.parameters(recurse=False))
    for name, p in model.named_parameters():
        if p.requires_grad and (id(p) in ln or name.endswith(".bias")):
            p.add_(torch.randn(p.shape, generator=g) * NOISE_STD)
    fb = model.final_logits_bias
    fb.copy_(torch.randn(fb.shape, generator=g) * FINAL_LOGITS_BIAS_STD)
    # Stronger sublayers than the default init (their weights × `linear_scale`), so that what a row
    # generates depends on its source and its prefix rather than on the bias alone.
    for name, p in model.named_parameters():
        if name.endswith(".weight") and p.dim() == 2 and "shared" not in name and "embed" not in name:
            p.mul_(linear_scale)
    fb[0, model.config.eos_token_id] += eos_bias


def make_inputs(cfg: PegasusConfig, src_lens, g: torch.Generator) -> dict:
    B, S = len(src_lens), max(src_lens)
    input_ids = torch.full((B, S), cfg.pad_token_id, dtype=torch.int64)
    attention_mask = torch.zeros((B, S), dtype=torch.int64)
    for b, n in enumerate(src_lens):
        body = torch.randint(2, cfg.vocab_size, (n - 1,), generator=g, dtype=torch.int64)
        input_ids[b, :n] = torch.cat([body, torch.tensor([cfg.eos_token_id])])
        attention_mask[b, :n] = 1
    return dict(input_ids=input_ids, attention_mask=attention_mask)


def build_model(spec: dict) -> PegasusForConditionalGeneration:
    torch.manual_seed(spec["seed"])
    model = PegasusForConditionalGeneration(PegasusConfig(**spec["config"]))
    perturb(model, torch.Generator().manual_seed(spec["seed"] + 1), spec["eos_bias"], spec["linear_scale"])
    return model


def load(case_dir: str, attn: str = gen.ATTN_IMPL) -> PegasusForConditionalGeneration:
    model = PegasusForConditionalGeneration.from_pretrained(case_dir, attn_implementation=attn)
    model.to(torch.float32)
    model.eval()
    return model


def evaluate(model, inputs: dict, spec: dict) -> tuple[list[dict], list[str]]:
    runs, problems = [], []
    for rs in run_specs(spec):
        torch.manual_seed(spec["seed"])  # the sampled run's generator (its tokens do not depend on it)
        res = gen.hf_generate(model, inputs, rs["settings"])
        eff = {k: gen.json_value(v) for k, v in res["effective"].items()}
        eff["do_sample"] = rs["settings"].get("do_sample", eff["do_sample"])
        if eff["do_sample"]:
            eff["top_k"] = rs["settings"]["top_k"]
        seqs = res["sequences"].tolist()
        margins = gen.Margins()
        if eff["num_beams"] == 1:
            assert res["mode"] == ("sample" if eff["do_sample"] else "greedy_search"), res["mode"]
            ref, ref_scores = gen.ref_greedy(model, inputs, eff, margins), None
        else:
            assert res["mode"] == "beam_search", res["mode"]
            # transformers' beam search pads finished rows with `pad_token_id or eos_token_id[0]`: with
            # Pegasus' pad id 0 that is eos (greedy pads with pad).
            fill = eff["pad_token_id"] or eff["eos_token_id"]
            ref, ref_scores = gen.ref_beam(model, inputs, dict(eff, pad_token_id=fill), margins)
        if ref != seqs:
            problems.append(f"{rs['name']}: reference {ref} != transformers {seqs}")
        run = dict(name=rs["name"], settings=rs["settings"], effective_settings=eff, decoding=res["mode"],
                   logits_processors=res["processors"], sequences=seqs)
        if "sequences_scores" in res:
            run["scores"] = res["sequences_scores"].tolist()
            if max(abs(a - b) for a, b in zip(run["scores"], ref_scores)) > 1e-5:
                problems.append(f"{rs['name']}: reference scores {ref_scores} != {run['scores']}")
        if margins.min < gen.MIN_MARGIN:
            problems.append(f"{rs['name']}: decision margin {margins.min:.3g} < {gen.MIN_MARGIN} at {margins.where}")
        run["_margin"] = margins.min
        runs.append(run)
    # BART's usefulness checks, but repeated tokens allowed: a random tied-embedding model repeats
    # tokens, and no-repeat / beam runs still differ from greedy (checked) where it does. Rows that
    # end early and rows cut at max_length are required of greedy; beam4 may end all rows early.
    problems += [p for p in gen.property_problems(runs)
                 if "degenerate row" not in p and not p.startswith("beam4: no row reaches max_length")]
    return runs, problems


@torch.no_grad()
def cross_checks(case_dir: str, inputs: dict, runs: list[dict]) -> list[str]:
    bad = []
    variants = {"sdpa": load(case_dir, "sdpa"), "float64": load(case_dir).to(torch.float64), "eager": load(case_dir)}
    for vname, m in variants.items():
        for r in runs:
            extra = dict(use_cache=False) if vname == "eager" else {}
            if m.generate(**inputs, **r["settings"], **extra).tolist() != r["sequences"]:
                bad.append(f"{vname}/{r['name']}")
    return bad


def write_case(name: str, spec: dict, out_root: str) -> dict:
    case_dir = os.path.join(out_root, name)
    os.makedirs(case_dir, exist_ok=True)
    build_model(spec).save_pretrained(case_dir)
    model = load(case_dir)
    inputs = make_inputs(model.config, spec["src_lens"], torch.Generator().manual_seed(spec["seed"] + 2))
    path = os.path.join(case_dir, "inputs.safetensors")
    save_file({k: v.contiguous() for k, v in inputs.items()}, path)
    gen.canonicalize_safetensors(path)
    runs, problems = evaluate(model, inputs, spec)
    problems += cross_checks(case_dir, inputs, runs)
    if problems:
        raise SystemExit(f"golden[{name}]: refusing to write fixtures:\n  " + "\n  ".join(problems))
    margins = {r["name"]: r.pop("_margin") for r in runs}
    with open(os.path.join(case_dir, "expected.json"), "w") as fh:
        fh.write(gen.json_dump(runs) + "\n")
    for fn in os.listdir(case_dir):
        os.chmod(os.path.join(case_dir, fn), 0o644)
    return dict(name=name, runs=runs, margins=margins)


def search_seeds(case: str, lo: int, hi: int) -> None:
    gen.setup_determinism()
    for seed in range(lo, hi):
        spec = dict(CASES[case], seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            build_model(spec).save_pretrained(tmp)
            model = load(tmp)
            inputs = make_inputs(model.config, spec["src_lens"], torch.Generator().manual_seed(seed + 2))
            runs, problems = evaluate(model, inputs, spec)
        mm = min(r["_margin"] for r in runs)
        print(f"seed {seed}: min margin {mm:.3g}  {'OK' if not problems else problems[:4]}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "pegasus",
                                                  "generation"))
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--search-seeds", choices=sorted(CASES))
    ap.add_argument("--seed-range", nargs=2, type=int, default=[0, 40])
    args = ap.parse_args()
    gen.check_versions()
    if args.search_seeds:
        search_seeds(args.search_seeds, *args.seed_range)
        return 0
    cases = args.case or list(CASES)
    out_root = os.path.abspath(args.out)
    gen.setup_determinism()
    if args.check:
        tmp = tempfile.mkdtemp(prefix="golden-pegasus-gen-")
        try:
            summaries = [write_case(n, CASES[n], tmp) for n in cases]
            bad = gen.compare_trees(tmp, out_root, cases)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        gen.print_summary(summaries)
        if bad:
            print("golden: MISMATCH vs " + out_root + ": " + ", ".join(bad))
            return 1
        print("golden: regenerated fixtures are byte-identical to " + out_root)
        return 0
    os.makedirs(out_root, exist_ok=True)
    gen.print_summary([write_case(n, CASES[n], out_root) for n in cases])
    print(f"golden: wrote {', '.join(cases)} under {out_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
