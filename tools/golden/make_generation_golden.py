#!/usr/bin/env python3
"""Golden reference outputs of ``BartForConditionalGeneration.generate`` for Precis.

Builds small, randomly initialised BART models (float32, CPU, seeded), runs ``model.generate``
with a fixed list of settings (greedy / beam search / n-gram blocking / min length / forced
BOS+EOS / num_return_sequences / max_length vs max_new_tokens / sampling with a seed / config
defaults) and writes, per
case, a folder ``<out>/<case>/`` with:

  config.json, generation_config.json, model.safetensors   (save_pretrained)
  inputs.safetensors     input_ids, attention_mask   (int64 [B,S], right padded with pad=1)
  expected.json          one object per run: name, settings (the exact generate() kwargs),
                         effective_settings, logits_processors, sequences, scores (beam runs)

Every run is also re-derived by an independent, literal re-implementation of the decoding rules
written down in Tests/Fixtures/generation/README.md (``ref_greedy`` / ``ref_beam`` below: full
recompute without KV cache, one batch row at a time); the script refuses to write fixtures if
transformers and the re-implementation disagree, or if any decision (argmax / top-k cut /
finished-hypothesis ranking) is closer than MIN_MARGIN, so that the fixtures are robust to the
float32 rounding differences of another implementation. It also checks that sdpa attention,
use_cache=False and a float64 copy of the model produce the same sequences.

The sampled runs (``do_sample=True`` under ``torch.manual_seed``: top_k 1; temperature 0.7 with top_p
0.01, min length and n-gram blocking, 2 sequences per source) keep one candidate token per step, so
their tokens do not depend on the random generator and can be token-identical across
implementations while going through the sampling path (warpers, the draw, the row expansion); the
re-implementation checks them as greedy decisions.

Usage:
  python make_generation_golden.py --out Tests/Fixtures/generation            # (re)generate
  python make_generation_golden.py --out Tests/Fixtures/generation --check    # regenerate in a
        temp dir and compare byte-for-byte with what is in --out (exit 1 on mismatch)
  python make_generation_golden.py --search-seeds tiny --seed-range 0 200     # seed tuning aid
"""

from __future__ import annotations

import argparse
import filecmp
import json
import math
import os
import re
import shutil
import struct
import sys
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

import transformers  # noqa: E402
from transformers import BartConfig, BartForConditionalGeneration  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Shared with the BART numerics fixtures: thread/determinism settings, the pinned-version check, and
# the fixed-order safetensors header rewrite.
from make_bart_golden import canonicalize_safetensors, check_versions, setup_determinism  # noqa: E402

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

ATTN_IMPL = "eager"

# Weights: transformers' default init with config.init_std = INIT_STD, then
#   - N(0, NOISE_STD) added to every LayerNorm weight/bias and every Linear bias,
#   - both learned positional-embedding tables multiplied by the case's pos_scale,
#   - final_logits_bias ~ N(0, FINAL_LOGITS_BIAS_STD), plus the case's eos_bias on the eos entry.
# Why not plain init_std 0.1: a random BART with tied embeddings and init_std 0.1 copies its previous
# token (the residual stream carries the input embedding straight to the tied lm_head) and barely
# looks at the encoder, so every row of every seed degenerates into one repeated token and EOS is
# either generated immediately or never (0 usable seeds of 40). Larger Linear weights (0.2) make the
# sublayers (incl. cross-attention) matter, larger positional embeddings break the copy fixed point,
# and the EOS offset makes EOS compete at varying steps.
INIT_STD = 0.2
NOISE_STD = 0.02
FINAL_LOGITS_BIAS_STD = 0.5
MIN_MARGIN = 1e-3  # smallest allowed gap at any decoding decision (see module docstring)
DROPOUTS = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
SPECIAL = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)

CASES = {
    "tiny": dict(
        seed=25,
        pos_scale=3.0,
        eos_bias=1.0,
        config=dict(
            vocab_size=64,
            d_model=16,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
            init_std=INIT_STD,
            scale_embedding=False,
            forced_eos_token_id=2,
            **SPECIAL,
            **DROPOUTS,
        ),
        # transformers 5.x refuses generation parameters in config.json (PreTrainedConfig.save_pretrained
        # raises on `_get_generation_parameters()`), and BartConfig has no `forced_bos_token_id` field:
        # it lives in generation_config.json.
        forced_bos_token_id=0,
        src_lens=[9, 6, 4],  # B=3, S=9
    ),
    "tiny-scaled": dict(
        seed=39,
        pos_scale=15.0,  # larger than for tiny: scale_embedding multiplies token embeddings by sqrt(24)
        eos_bias=1.0,
        config=dict(
            vocab_size=80,
            d_model=24,
            encoder_layers=1,
            decoder_layers=2,
            encoder_attention_heads=3,
            decoder_attention_heads=3,
            encoder_ffn_dim=40,
            decoder_ffn_dim=40,
            max_position_embeddings=64,
            init_std=INIT_STD,
            scale_embedding=True,
            forced_eos_token_id=2,
            **SPECIAL,
            **DROPOUTS,
        ),
        forced_bos_token_id=None,
        src_lens=[11, 7],  # B=2, S=11
    ),
}


def run_specs(case_spec: dict) -> list[dict]:
    """The generate() kwargs of every run. Runs 1-6 spell out the special tokens (as in the config)."""
    cfg = case_spec["config"]
    special = dict(
        decoder_start_token_id=cfg["decoder_start_token_id"],
        eos_token_id=cfg["eos_token_id"],
        pad_token_id=cfg["pad_token_id"],
        forced_bos_token_id=case_spec["forced_bos_token_id"],
        forced_eos_token_id=cfg["forced_eos_token_id"],
    )
    return [
        dict(name="greedy", settings=dict(num_beams=1, do_sample=False, max_new_tokens=12, **special)),
        dict(
            name="greedy_minlen8_norepeat2",
            settings=dict(
                num_beams=1, do_sample=False, max_new_tokens=12, min_length=8, no_repeat_ngram_size=2, **special
            ),
        ),
        dict(
            name="beam4",
            settings=dict(
                num_beams=4, do_sample=False, length_penalty=1.0, early_stopping=True, max_new_tokens=12, **special
            ),
        ),
        dict(
            name="beam4_lp2_noearly_norepeat3_minlen5",
            settings=dict(
                num_beams=4,
                do_sample=False,
                length_penalty=2.0,
                early_stopping=False,
                no_repeat_ngram_size=3,
                min_length=5,
                max_new_tokens=12,
                **special,
            ),
        ),
        dict(
            name="beam3_return2",
            settings=dict(
                num_beams=3,
                num_return_sequences=2,
                do_sample=False,
                length_penalty=1.0,
                early_stopping=False,
                max_new_tokens=12,
                **special,
            ),
        ),
        dict(name="greedy_maxlen10", settings=dict(num_beams=1, do_sample=False, max_length=10, **special)),
        # Sampling with a seed; each keeps one candidate token per step (top_k 1; top_p 0.01, below 1/vocab,
        # the least the most likely token can have), so the tokens do not depend on the random generator.
        dict(name="sample_topk1_seed", settings=dict(num_beams=1, do_sample=True, top_k=1, max_new_tokens=12, **special)),
        dict(
            name="sample_temp07_topp001_minlen6_norepeat2_return2_seed",
            settings=dict(
                num_beams=1,
                do_sample=True,
                temperature=0.7,
                top_k=0,
                top_p=0.01,
                num_return_sequences=2,
                min_length=6,
                no_repeat_ngram_size=2,
                max_new_tokens=12,
                **special,
            ),
        ),
        dict(name="defaults", settings=dict(max_new_tokens=12)),
    ]


# --------------------------------------------------------------------------- helpers


@torch.no_grad()
def perturb(model: BartForConditionalGeneration, gen: torch.Generator, pos_scale: float, eos_bias: float) -> None:
    ln_params = set()
    for _, mod in model.named_modules():
        if isinstance(mod, nn.LayerNorm):
            ln_params.update(id(p) for p in mod.parameters(recurse=False))
    for name, p in model.named_parameters():
        if id(p) in ln_params or name.endswith(".bias"):
            p.add_(torch.randn(p.shape, generator=gen) * NOISE_STD)
    fb = model.final_logits_bias
    fb.copy_(torch.randn(fb.shape, generator=gen) * FINAL_LOGITS_BIAS_STD)
    fb[0, model.config.eos_token_id] += eos_bias
    model.model.encoder.embed_positions.weight.mul_(pos_scale)
    model.model.decoder.embed_positions.weight.mul_(pos_scale)


def make_inputs(cfg: BartConfig, src_lens, gen: torch.Generator) -> dict:
    B, S = len(src_lens), max(src_lens)
    V, pad, bos, eos = cfg.vocab_size, cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id
    input_ids = torch.full((B, S), pad, dtype=torch.int64)
    attention_mask = torch.zeros((B, S), dtype=torch.int64)
    for b, n in enumerate(src_lens):
        body = torch.randint(4, V, (n - 2,), generator=gen, dtype=torch.int64)
        input_ids[b, :n] = torch.cat([torch.tensor([bos]), body, torch.tensor([eos])])
        attention_mask[b, :n] = 1
    return dict(input_ids=input_ids, attention_mask=attention_mask)


def build_model(spec: dict) -> BartForConditionalGeneration:
    torch.manual_seed(spec["seed"])
    cfg = BartConfig(**spec["config"])
    model = BartForConditionalGeneration(cfg)
    perturb(model, torch.Generator().manual_seed(spec["seed"] + 1), spec["pos_scale"], spec["eos_bias"])
    model.generation_config.forced_bos_token_id = spec["forced_bos_token_id"]
    return model


def load(case_dir: str, attn: str = ATTN_IMPL) -> BartForConditionalGeneration:
    model = BartForConditionalGeneration.from_pretrained(case_dir, attn_implementation=attn)
    model.to(torch.float32)
    model.eval()
    return model


# --------------------------------------------------------------------------- transformers runs


def describe_processor(p) -> str:
    name = type(p).__name__
    fields = {
        "NoRepeatNGramLogitsProcessor": ["ngram_size"],
        "MinLengthLogitsProcessor": ["min_length", "eos_token_id"],
        "ForcedBOSTokenLogitsProcessor": ["bos_token_id"],
        "ForcedEOSTokenLogitsProcessor": ["max_length", "eos_token_id"],
    }.get(name)
    if fields is None:
        return name
    parts = []
    for f in fields:
        v = getattr(p, f)
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        parts.append(f"{f}={v}")
    return f"{name}({', '.join(parts)})"


EFFECTIVE_KEYS = [
    "decoder_start_token_id",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "max_length",
    "max_new_tokens",
    "min_length",
    "min_new_tokens",
    "do_sample",
    "num_beams",
    "num_return_sequences",
    "length_penalty",
    "early_stopping",
    "no_repeat_ngram_size",
    "repetition_penalty",
    "encoder_no_repeat_ngram_size",
    "bad_words_ids",
    "suppress_tokens",
    "begin_suppress_tokens",
    "renormalize_logits",
    "remove_invalid_values",
    "use_cache",
]


@torch.no_grad()
def hf_generate(model, inputs: dict, settings: dict) -> dict:
    """Run model.generate(**inputs, **settings) and capture the effective config and processors."""
    captured = {}
    orig = type(model)._get_logits_processor

    def spy(self_, generation_config, *a, **kw):
        procs = orig(self_, generation_config, *a, **kw)
        captured["config"] = {k: getattr(generation_config, k) for k in EFFECTIVE_KEYS}
        captured["mode"] = generation_config.get_generation_mode().value
        captured["processors"] = [describe_processor(p) for p in procs]
        return procs

    model._get_logits_processor = spy.__get__(model)
    try:
        plain = model.generate(**inputs, **settings)
        full = model.generate(**inputs, **settings, output_scores=True, return_dict_in_generate=True)
    finally:
        del model._get_logits_processor
    assert torch.equal(plain, full.sequences), "output_scores/return_dict changed the sequences"
    out = dict(
        sequences=plain,
        effective=captured["config"],
        mode=captured["mode"],
        processors=captured["processors"],
    )
    if getattr(full, "sequences_scores", None) is not None:
        out["sequences_scores"] = full.sequences_scores
    return out


# --------------------------------------------------------------------------- independent reference


class Margins:
    def __init__(self):
        self.min = math.inf
        self.where = ""

    def gaps(self, values, what="", scales=None):
        """values: descending list of floats whose relative order is a decision. scales: the
        length-penalty divisor of each value; gaps are measured in undivided log-prob units
        (gap * the smaller divisor), which is where float32 rounding differences arise."""
        scales = scales or [1.0] * len(values)
        pairs = [(v, s) for v, s in zip(values, scales) if v > -1e8]
        for (a, sa), (b, sb) in zip(pairs, pairs[1:]):
            gap = (a - b) * min(sa, sb)
            if gap < self.min:
                self.min, self.where = gap, f"{what} {a:.7g} vs {b:.7g}"


def ref_process(seq: list[int], scores: torch.Tensor, eff: dict) -> torch.Tensor:
    """The logits processors, in transformers' order, for one hypothesis (README §Processors)."""
    s = scores.clone()
    n = eff["no_repeat_ngram_size"] or 0
    eos = eff["eos_token_id"]
    L = len(seq)
    if n > 0 and L >= n:
        prefix = seq[L - n + 1 :]
        for i in range(L - n + 1):
            if seq[i : i + n - 1] == prefix:
                s[seq[i + n - 1]] = -math.inf
    if eff["min_length"] and eff["min_length"] > 0 and L < eff["min_length"]:
        s[eos] = -math.inf
    if eff["forced_bos_token_id"] is not None and L == 1:
        s = torch.full_like(s, -math.inf)
        s[eff["forced_bos_token_id"]] = 0.0
    if eff["forced_eos_token_id"] is not None and L == eff["max_length"] - 1:
        s = torch.full_like(s, -math.inf)
        s[eff["forced_eos_token_id"]] = 0.0
    return s


def last_logits(model, enc_ids, enc_mask, seqs: list[list[int]]) -> torch.Tensor:
    n = len(seqs)
    out = model(
        input_ids=enc_ids.expand(n, -1),
        attention_mask=enc_mask.expand(n, -1),
        decoder_input_ids=torch.tensor(seqs, dtype=torch.int64),
        use_cache=False,
    )
    return out.logits[:, -1].float()


@torch.no_grad()
def ref_greedy(model, inputs, eff, margins: Margins) -> list[list[int]]:
    rows = []
    for b in range(inputs["input_ids"].shape[0]):
        ids, mask = inputs["input_ids"][b : b + 1], inputs["attention_mask"][b : b + 1]
        seq = [eff["decoder_start_token_id"]]
        while True:
            scores = ref_process(seq, last_logits(model, ids, mask, [seq])[0], eff)
            top = torch.topk(scores, 2).values.tolist()
            if math.isfinite(top[1]):
                margins.gaps(top, f"row {b} len {len(seq)} argmax")
            tok = int(torch.argmax(scores))
            seq.append(tok)
            if tok == eff["eos_token_id"] or len(seq) >= eff["max_length"]:
                break
        rows.append(seq)
    width = max(len(r) for r in rows)
    return [r + [eff["pad_token_id"]] * (width - len(r)) for r in rows]


@torch.no_grad()
def ref_beam(model, inputs, eff, margins: Margins) -> tuple[list[list[int]], list[float]]:
    nb, nret = eff["num_beams"], eff["num_return_sequences"]
    lp, es, max_len, eos = eff["length_penalty"], eff["early_stopping"], eff["max_length"], eff["eos_token_id"]
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    out_rows, out_scores = [], []
    for b in range(inputs["input_ids"].shape[0]):
        ids, mask = inputs["input_ids"][b : b + 1], inputs["attention_mask"][b : b + 1]
        start = eff["decoder_start_token_id"]
        running = [[start] for _ in range(nb)]
        running_scores = f32([0.0] + [-1e9] * (nb - 1))
        finished: list[tuple[float, list[int]]] = []  # sorted by score, descending; at most nb
        done = False
        cur_len = 1
        while True:
            logp = F.log_softmax(last_logits(model, ids, mask, running), dim=-1)
            logp = torch.stack([ref_process(running[i], logp[i], eff) for i in range(nb)])
            V = logp.shape[-1]
            cand = (logp + running_scores[:, None]).reshape(-1)
            k = 2 * nb
            vals, idx = torch.topk(cand, k + 1)
            cands = []
            for r in range(k + 1):
                src, tok = int(idx[r]) // V, int(idx[r]) % V
                seq = running[src] + [tok]
                hit = tok == eos or len(seq) >= max_len
                cands.append((vals[r], seq, hit))
            if not done:
                # decisions that matter: which non-finished candidates become the next running beams, and
                # whether a finished candidate is in the top nb (finalisable)
                live_vals = [float(c[0]) for c in cands if not c[2]]
                margins.gaps(live_vals[nb - 1 : nb + 1], f"row {b} len {cur_len} running cut")
                if cands[nb - 1][2] or cands[nb][2]:
                    margins.gaps([float(cands[nb - 1][0]), float(cands[nb][0])], f"row {b} len {cur_len} top-nb cut")
            cands = cands[:k]
            # next running beams: the best nb candidates that did not finish
            live = [c for c in cands if not c[2]][:nb]
            if len(live) < nb:
                assert all(c[2] for c in cands) and len(cands[0][1]) >= max_len
            # finished hypotheses: only the top-nb candidates, score / (generated length) ** lp
            if not done and not (es is True and len(finished) == nb):
                for r in range(nb):
                    v, seq, hit = cands[r]
                    if hit:
                        finished.append((float(v / float((len(seq) - 1) ** lp)), seq))
                finished.sort(key=lambda t: -t[0])
                margins.gaps(
                    [t[0] for t in finished[: nb + 1]],
                    f"row {b} len {cur_len} finished",
                    [float((len(t[1]) - 1) ** lp) for t in finished[: nb + 1]],
                )
                finished = finished[:nb]
            cur_len += 1
            if all(c[2] for c in cands):
                break
            running = [c[1] for c in live]
            running_scores = torch.stack([c[0] for c in live])
            if not done and len(finished) == nb:
                best = float(running_scores[0] / float((cur_len - 1) ** lp))
                if es is not True:
                    margins.gaps(
                        sorted([best, finished[-1][0]], reverse=True),
                        f"row {b} len {cur_len} heuristic",
                        [float(min(cur_len - 1, len(finished[-1][1]) - 1) ** lp)] * 2,
                    )
                if es is True or not best > finished[-1][0]:
                    done = True
        out_rows.extend(seq for _, seq in finished[:nret])
        out_scores.extend(s for s, _ in finished[:nret])
    width = max(len(r) for r in out_rows)
    return [r + [eff["pad_token_id"]] * (width - len(r)) for r in out_rows], out_scores


# --------------------------------------------------------------------------- per case


def json_value(v):
    if isinstance(v, torch.Tensor):
        return v.tolist()
    return v


SAMPLING_KEYS = dict(temperature=1.0, top_k=50, top_p=1.0)  # GenerationConfig's defaults


def sampling_settings(model, settings: dict) -> dict:
    """The warpers' settings as generate resolves them: the kwargs over the model's generation config."""
    out = {}
    for k, default in SAMPLING_KEYS.items():
        v = settings.get(k, getattr(model.generation_config, k, None))
        out[k] = default if v is None else v
    return out


def evaluate(model, inputs: dict, spec: dict) -> tuple[list[dict], list[str]]:
    """All runs for one case; returns (run objects, list of property failures for seed tuning)."""
    runs, problems = [], []
    for rs in run_specs(spec):
        torch.manual_seed(spec["seed"])  # the sampled runs' generator (their tokens do not depend on it)
        res = hf_generate(model, inputs, rs["settings"])
        eff = {k: json_value(v) for k, v in res["effective"].items()}
        if eff["do_sample"]:
            eff.update(sampling_settings(model, rs["settings"]))
        seqs = res["sequences"].tolist()
        margins = Margins()
        if eff["num_beams"] == 1:
            assert res["mode"] == ("sample" if eff["do_sample"] else "greedy_search"), res["mode"]
            # Sampling expands each source into num_return_sequences rows, side by side.
            ref = [row for row in ref_greedy(model, inputs, eff, margins) for _ in range(eff["num_return_sequences"])]
            ref_scores = None
        else:
            assert res["mode"] == "beam_search", res["mode"]
            ref, ref_scores = ref_beam(model, inputs, eff, margins)
        if ref != seqs:
            problems.append(f"{rs['name']}: reference {ref} != transformers {seqs}")
        run = dict(name=rs["name"], settings=rs["settings"], effective_settings=eff)
        run["decoding"] = res["mode"]
        run["logits_processors"] = res["processors"]
        run["sequences"] = seqs
        if "sequences_scores" in res:
            hf_scores = res["sequences_scores"].tolist()
            run["scores"] = hf_scores
            if ref_scores is not None and max(abs(a - b) for a, b in zip(hf_scores, ref_scores)) > 1e-5:
                problems.append(f"{rs['name']}: reference scores {ref_scores} != {hf_scores}")
        if margins.min < MIN_MARGIN:
            problems.append(f"{rs['name']}: decision margin {margins.min:.3g} < {MIN_MARGIN} at {margins.where}")
        run["_margin"] = margins.min
        runs.append(run)
    problems += property_problems(runs)
    return runs, problems


def row_lengths(seqs: list[list[int]], pad: int, eos: int) -> list[int]:
    out = []
    for s in seqs:
        n = len(s)
        # position of the first eos after the decoder start token
        for i in range(1, len(s)):
            if s[i] == eos:
                n = i + 1
                break
        out.append(n)
    return out


def property_problems(runs: list[dict]) -> list[str]:
    """The fixture is only useful if rows differ in how they end, and greedy != beam."""
    probs = []
    by = {r["name"]: r for r in runs}
    for r in runs:
        eff = r["effective_settings"]
        lens = row_lengths(r["sequences"], eff["pad_token_id"], eff["eos_token_id"])
        if r["name"] in ("greedy", "beam4"):
            if not any(n < eff["max_length"] for n in lens):
                probs.append(f"{r['name']}: no row ends early ({lens}, max_length {eff['max_length']})")
            if not any(n == eff["max_length"] for n in lens):
                probs.append(f"{r['name']}: no row reaches max_length ({lens}, {eff['max_length']})")
        for s in r["sequences"]:
            body = [t for t in s[2:] if t not in (eff["pad_token_id"], eff["eos_token_id"])]
            if len(body) >= 3 and len(set(body)) < 3:
                probs.append(f"{r['name']}: degenerate row {s}")
    if by["greedy"]["sequences"] == by["beam4"]["sequences"]:
        probs.append("greedy == beam4 for every row")
    if by["greedy"]["sequences"] == by["greedy_minlen8_norepeat2"]["sequences"]:
        probs.append("min_length/no_repeat changed nothing")
    if by["beam4"]["sequences"] == by["beam4_lp2_noearly_norepeat3_minlen5"]["sequences"]:
        probs.append("beam4 variants identical")
    return probs


@torch.no_grad()
def cross_checks(case_dir: str, inputs: dict, runs: list[dict]) -> list[str]:
    """sdpa, no-cache and float64 must give the same sequences (robustness of the fixtures)."""
    bad = []
    variants = {"sdpa": load(case_dir, "sdpa"), "float64": load(case_dir).to(torch.float64)}
    for vname, m in variants.items():
        for r in runs:
            got = m.generate(**inputs, **r["settings"]).tolist()
            if got != r["sequences"]:
                bad.append(f"{vname}/{r['name']}")
    eager = load(case_dir)
    for r in runs:
        got = eager.generate(**inputs, **r["settings"], use_cache=False).tolist()
        if got != r["sequences"]:
            bad.append(f"no-cache/{r['name']}")
    return bad


def write_case(name: str, spec: dict, out_root: str) -> dict:
    case_dir = os.path.join(out_root, name)
    os.makedirs(case_dir, exist_ok=True)
    model = build_model(spec)
    model.save_pretrained(case_dir)
    model = load(case_dir)
    assert model.generation_config.forced_bos_token_id == spec["forced_bos_token_id"]
    inputs = make_inputs(model.config, spec["src_lens"], torch.Generator().manual_seed(spec["seed"] + 2))
    path = os.path.join(case_dir, "inputs.safetensors")
    save_file({k: v.contiguous() for k, v in inputs.items()}, path)
    canonicalize_safetensors(path)

    runs, problems = evaluate(model, inputs, spec)
    problems += cross_checks(case_dir, inputs, runs)
    if problems:
        raise SystemExit(f"golden[{name}]: refusing to write fixtures:\n  " + "\n  ".join(problems))
    margins = {r["name"]: r.pop("_margin") for r in runs}
    with open(os.path.join(case_dir, "expected.json"), "w") as fh:
        fh.write(json_dump(runs) + "\n")
    for fn in os.listdir(case_dir):
        os.chmod(os.path.join(case_dir, fn), 0o644)
    return dict(name=name, runs=runs, margins=margins)


def json_dump(runs: list[dict]) -> str:
    """Pretty JSON, but each token row on one line."""
    text = json.dumps(runs, indent=2, sort_keys=False)
    # collapse innermost number lists (token rows, scores) onto one line
    def collapse(m):
        return "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]"

    return re.sub(r"\[\s*((?:-?[0-9.e+-]+\s*,\s*)*-?[0-9.e+-]+)\s*\]", collapse, text)


# --------------------------------------------------------------------------- seed search


def search_seeds(case: str, lo: int, hi: int) -> None:
    setup_determinism()
    base = CASES[case]
    for seed in range(lo, hi):
        spec = dict(base, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            model = build_model(spec)
            model.save_pretrained(tmp)
            model = load(tmp)
            inputs = make_inputs(model.config, spec["src_lens"], torch.Generator().manual_seed(seed + 2))
            runs, problems = evaluate(model, inputs, spec)
        status = "OK" if not problems else f"{len(problems)} problems: {problems[:6]}"
        mm = min(r["_margin"] for r in runs)
        print(f"seed {seed}: min margin {mm:.3g}  {status}", flush=True)


# --------------------------------------------------------------------------- main


def generate(out_root: str, cases: list[str]) -> list[dict]:
    setup_determinism()
    return [write_case(name, CASES[name], out_root) for name in cases]


def compare_trees(a: str, b: str, cases: list[str]) -> list[str]:
    bad = []
    for case in cases:
        da, db = os.path.join(a, case), os.path.join(b, case)
        names = sorted(set(os.listdir(da)) | (set(os.listdir(db)) if os.path.isdir(db) else set()))
        for fn in names:
            pa, pb = os.path.join(da, fn), os.path.join(db, fn)
            if not (os.path.exists(pa) and os.path.exists(pb)) or not filecmp.cmp(pa, pb, shallow=False):
                bad.append(f"{case}/{fn}")
    return bad


def print_summary(summaries: list[dict]) -> None:
    for s in summaries:
        print(f"[{s['name']}]")
        for r in s["runs"]:
            sc = f"  scores={['%.6g' % x for x in r['scores']]}" if "scores" in r else ""
            print(f"  {r['name']:<38} margin={s['margins'][r['name']]:.3g}{sc}")
            for row in r["sequences"]:
                print(f"      {row}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "generation")
    )
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases (default: all)")
    ap.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare with --out")
    ap.add_argument("--search-seeds", choices=sorted(CASES), help="print which seeds satisfy the fixture checks")
    ap.add_argument("--seed-range", nargs=2, type=int, default=[0, 50])
    args = ap.parse_args()
    check_versions()
    if args.search_seeds:
        search_seeds(args.search_seeds, *args.seed_range)
        return 0
    cases = args.case or list(CASES)
    out_root = os.path.abspath(args.out)

    if args.check:
        tmp = tempfile.mkdtemp(prefix="golden-gen-check-")
        try:
            summaries = generate(tmp, cases)
            bad = compare_trees(tmp, out_root, cases)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print_summary(summaries)
        if bad:
            print("golden: MISMATCH vs " + out_root + ": " + ", ".join(bad))
            return 1
        print("golden: regenerated fixtures are byte-identical to " + out_root)
        return 0

    os.makedirs(out_root, exist_ok=True)
    summaries = generate(out_root, cases)
    print_summary(summaries)
    print(f"golden: wrote {', '.join(cases)} under {out_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
