#!/usr/bin/env python3
"""Golden reference numerics for Precis' T5 implementation.

Builds small, randomly initialised ``T5ForConditionalGeneration`` models with PyTorch +
transformers (float32, CPU, deterministic, eager attention, dropout 0) and writes, per case, a
folder ``<out>/<case>/`` with the same files as make_bart_golden.py:

  config.json, generation_config.json, model.safetensors   (save_pretrained)
  batch.safetensors            input_ids, attention_mask, labels, decoder_input_ids
  expected.safetensors         loss, logits, encoder_last_hidden_state, grad.<name>
  label_smoothing.safetensors  loss, nll_loss, smooth_loss, grad.<name>  (epsilon 0.1)
  adamw.safetensors            5 AdamW steps: lr, grad_norm, loss, param.<name>, exp_avg.<name>, exp_avg_sq.<name>

Cases: ``v1_0`` (T5 v1.0: ReLU FFN, LM head tied to ``shared`` with the d_model^-0.5 scale) and
``v1_1`` (T5 v1.1 / flan: gated-gelu FFN, its own ``lm_head.weight``, no scale, heads × d_kv ≠
d_model). See Tests/Fixtures/t5/README.md.

Usage:
  python make_t5_golden.py --out Tests/Fixtures/t5            # (re)generate
  python make_t5_golden.py --out Tests/Fixtures/t5 --check    # regenerate in a temp dir and compare
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import transformers  # noqa: E402
from transformers import T5Config, T5ForConditionalGeneration, Trainer  # noqa: E402
from transformers import get_linear_schedule_with_warmup  # noqa: E402
from transformers.trainer_pt_utils import LabelSmoother  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Shared with the BART fixtures: determinism, the pinned-version check, the Trainer's label
# smoothing spelled out, gradients by name, fixed-order safetensors, the tree comparison.
from make_bart_golden import (  # noqa: E402
    ADAMW, ADAMW_STEPS, LABEL_SMOOTHING, MAX_GRAD_NORM, TRAINING_STEPS, WARMUP_STEPS,
    check_versions, compare_trees, label_smoothed_loss, named_grads, save, setup_determinism,
)

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

ATTN_IMPL = "eager"
NORM_NOISE_STD = 0.1  # added to every T5LayerNorm weight (init 1) so that a missing γ shows up
SPECIAL = dict(pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)

CASES = {
    "v1_0": dict(
        seed=20261201,
        config=dict(
            vocab_size=64, d_model=16, d_kv=8, num_heads=2, d_ff=32, num_layers=2, num_decoder_layers=2,
            # Few buckets and a short max distance, so that short sequences reach the logarithmic buckets.
            relative_attention_num_buckets=8, relative_attention_max_distance=12,
            feed_forward_proj="relu", tie_word_embeddings=True, dropout_rate=0.0, initializer_factor=1.0, **SPECIAL,
        ),
        untied_head=False,
        src_lens=[11, 8, 5],  # S = 11 (with eos)
        tgt_lens=[7, 4, 6],  # T = 7
    ),
    "v1_1": dict(
        seed=20261202,
        config=dict(
            vocab_size=48, d_model=24, d_kv=6, num_heads=3, d_ff=40, num_layers=1, num_decoder_layers=2,
            relative_attention_num_buckets=32, relative_attention_max_distance=128,
            feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0, initializer_factor=1.0, **SPECIAL,
        ),
        untied_head=True,
        src_lens=[13, 9],  # S = 13
        tgt_lens=[6, 9],  # T = 9
    ),
}


def make_batch(cfg: T5Config, src_lens, tgt_lens, gen: torch.Generator, model) -> dict:
    """Right-padded T5-like batch: tok... </s> <pad>...; labels tok... </s> -100..."""
    B, S, T = len(src_lens), max(src_lens), max(tgt_lens)
    V, pad, eos = cfg.vocab_size, cfg.pad_token_id, cfg.eos_token_id
    input_ids = torch.full((B, S), pad, dtype=torch.int64)
    attention_mask = torch.zeros((B, S), dtype=torch.int64)
    labels = torch.full((B, T), -100, dtype=torch.int64)
    for b, n in enumerate(src_lens):
        body = torch.randint(2, V, (n - 1,), generator=gen, dtype=torch.int64)
        input_ids[b, :n] = torch.cat([body, torch.tensor([eos])])
        attention_mask[b, :n] = 1
    for b, n in enumerate(tgt_lens):
        body = torch.randint(2, V, (n - 1,), generator=gen, dtype=torch.int64)
        labels[b, :n] = torch.cat([body, torch.tensor([eos])])
    return dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                decoder_input_ids=model._shift_right(labels))


def load(case_dir: str, attn: str = ATTN_IMPL) -> T5ForConditionalGeneration:
    model = T5ForConditionalGeneration.from_pretrained(case_dir, attn_implementation=attn)
    model.to(torch.float32)
    model.train()  # dropout_rate is 0, so train mode is deterministic
    return model


def forward_loss(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])


def run_adamw(case_dir: str, batch: dict, fused: bool) -> dict:
    """5 AdamW steps as the HF Trainer builds them (decay groups, linear warmup, clipping)."""
    model = load(case_dir)
    decay = set(Trainer.get_decay_parameter_names(None, model))
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n in decay], "weight_decay": ADAMW["weight_decay"]},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"], fused=fused)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=WARMUP_STEPS, num_training_steps=TRAINING_STEPS)
    lrs, norms, losses = [], [], []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad(set_to_none=True)
        out = forward_loss(model, batch)
        out.loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=MAX_GRAD_NORM)
        lrs.append(opt.param_groups[0]["lr"])
        norms.append(norm.item())
        losses.append(out.loss.item())
        opt.step()
        sched.step()
    tensors = {
        "lr": torch.tensor(lrs, dtype=torch.float32),
        "grad_norm": torch.tensor(norms, dtype=torch.float32),
        "loss": torch.tensor(losses, dtype=torch.float32),
    }
    for n, p in named:
        tensors[f"param.{n}"] = p.detach().clone()
        tensors[f"exp_avg.{n}"] = opt.state[p]["exp_avg"].detach().clone()
    return dict(tensors=tensors, decay_names=[n for n, _ in named if n in decay],
                no_decay_names=[n for n, _ in named if n not in decay])


def build_case(name: str, spec: dict, out_root: str) -> dict:
    case_dir = os.path.join(out_root, name)
    os.makedirs(case_dir, exist_ok=True)
    seed = spec["seed"]
    torch.manual_seed(seed)
    cfg = T5Config(**spec["config"])
    model = T5ForConditionalGeneration(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "layer_norm" in n:
                p.add_(torch.randn(p.shape, generator=gen) * NORM_NOISE_STD)
        if spec["untied_head"]:
            # transformers 5 builds lm_head tied to shared whatever the config says; a v1.1 checkpoint
            # has a head of its own, which from_pretrained then keeps untied.
            model.lm_head.weight = nn.Parameter(torch.randn(model.lm_head.weight.shape, generator=gen) * cfg.d_model**-0.5)
    model.save_pretrained(case_dir)

    model = load(case_dir)
    untied = model.lm_head.weight is not model.shared.weight
    assert untied == spec["untied_head"], (name, untied)
    assert model.config.scale_decoder_outputs == (not spec["untied_head"])
    param_names = [n for n, _ in model.named_parameters()]
    param_shapes = [list(p.shape) for _, p in model.named_parameters()]

    batch = make_batch(cfg, spec["src_lens"], spec["tgt_lens"], torch.Generator().manual_seed(seed + 2), model)
    save(os.path.join(case_dir, "batch.safetensors"), batch)
    meta = {
        "param_names": json.dumps(param_names),
        "param_shapes": json.dumps(param_shapes),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "attn_implementation": ATTN_IMPL,
    }

    model.zero_grad(set_to_none=True)
    out = forward_loss(model, batch)
    out.loss.backward()
    grads = named_grads(model)
    save(os.path.join(case_dir, "expected.safetensors"), {
        "loss": out.loss.detach().reshape(()),
        "logits": out.logits.detach(),
        "encoder_last_hidden_state": out.encoder_last_hidden_state.detach(),
        **grads,
    }, meta)

    sdpa = load(case_dir, "sdpa")
    o2 = forward_loss(sdpa, batch)
    o2.loss.backward()
    sdpa_diff = max((o2.logits - out.logits).abs().max().item(),
                    max((a - grads[k]).abs().max().item() for k, a in named_grads(sdpa).items()))
    assert sdpa_diff < 1e-5, f"sdpa vs eager differ by {sdpa_diff}"

    model.zero_grad(set_to_none=True)
    o3 = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
               decoder_input_ids=batch["decoder_input_ids"], use_cache=False)
    assert (o3.logits - out.logits).abs().max().item() < 1e-5
    ls_loss, nll_loss, smooth_loss = label_smoothed_loss(o3.logits, batch["labels"], LABEL_SMOOTHING)
    hf_ls = LabelSmoother(epsilon=LABEL_SMOOTHING)(o3, batch["labels"])
    assert torch.allclose(ls_loss, hf_ls, rtol=0, atol=1e-6), (ls_loss, hf_ls)
    ls_loss.backward()
    ls_grads = named_grads(model)
    save(os.path.join(case_dir, "label_smoothing.safetensors"), {
        "loss": ls_loss.detach().reshape(()), "nll_loss": nll_loss.detach().reshape(()),
        "smooth_loss": smooth_loss.detach().reshape(()), **ls_grads,
    }, {**meta, "epsilon": str(LABEL_SMOOTHING)})

    adam = run_adamw(case_dir, batch, fused=True)
    ref = run_adamw(case_dir, batch, fused=False)
    fused_diff = max((adam["tensors"]["param." + n] - ref["tensors"]["param." + n]).abs().max().item() for n in param_names)
    assert fused_diff < 1e-5, f"fused vs single-tensor AdamW differ by {fused_diff}"
    assert all(g > MAX_GRAD_NORM for g in adam["tensors"]["grad_norm"].tolist()), "clipping must activate"
    save(os.path.join(case_dir, "adamw.safetensors"), adam["tensors"], {
        **meta, "decay_names": json.dumps(adam["decay_names"]), "no_decay_names": json.dumps(adam["no_decay_names"]),
    })
    for fn in os.listdir(case_dir):
        os.chmod(os.path.join(case_dir, fn), 0o644)
    return dict(name=name, loss=out.loss.item(), ls_loss=ls_loss.item(), sdpa_diff=sdpa_diff, fused_diff=fused_diff,
                adam_loss=adam["tensors"]["loss"].tolist(), adam_grad_norm=adam["tensors"]["grad_norm"].tolist(),
                n_params=sum(math.prod(s) for s in param_shapes), max_logit=out.logits.abs().max().item())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "t5"))
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare with --out")
    args = ap.parse_args()
    check_versions()
    setup_determinism()
    cases = args.case or list(CASES)
    out_root = os.path.abspath(args.out)
    target = tempfile.mkdtemp(prefix="golden-t5-") if args.check else out_root
    try:
        for s in [build_case(n, CASES[n], target) for n in cases]:
            print(f"[{s['name']}] params={s['n_params']} loss={s['loss']:.7g} ls={s['ls_loss']:.7g} "
                  f"max|logit|={s['max_logit']:.4g} sdpa_diff={s['sdpa_diff']:.2g} fused_diff={s['fused_diff']:.2g}")
            print(f"  adamw loss {['%.6g' % x for x in s['adam_loss']]} grad_norm {['%.4g' % x for x in s['adam_grad_norm']]}")
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
