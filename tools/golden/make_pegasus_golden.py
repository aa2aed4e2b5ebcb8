#!/usr/bin/env python3
"""Golden reference numerics for Precis' Pegasus implementation.

Builds small, randomly initialised ``PegasusForConditionalGeneration`` models with PyTorch +
transformers (float32, CPU, deterministic, eager attention, dropout 0) and writes, per case, a
folder ``<out>/<case>/`` with the same files as make_bart_golden.py writes for BART:

  config.json, generation_config.json, model.safetensors   (save_pretrained)
  batch.safetensors            input_ids, attention_mask, labels, decoder_input_ids
  expected.safetensors         loss, logits, encoder_last_hidden_state, grad.<name>
  label_smoothing.safetensors  loss, nll_loss, smooth_loss, grad.<name>  (epsilon 0.1)
  adamw.safetensors            5 AdamW steps: lr, grad_norm, loss, param.<name>,
                               exp_avg.<name>, exp_avg_sq.<name>

``<name>`` runs over the *trainable* parameters (``requires_grad``): the sinusoidal position tables
``model.{encoder,decoder}.embed_positions.weight`` are frozen parameters in transformers (stored by
save_pretrained, rebuilt by ``_init_weights``) and have no gradient; their names are in the
``frozen_names`` metadata. See Tests/Fixtures/pegasus/README.md.

Usage:
  python make_pegasus_golden.py --out Tests/Fixtures/pegasus            # (re)generate
  python make_pegasus_golden.py --out Tests/Fixtures/pegasus --check    # regenerate in a temp dir
        and compare byte-for-byte with what is in --out (exit 1 on mismatch)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Shared with the BART fixtures: thread/determinism settings, the pinned-version check, the
# fixed-order safetensors writer, the spelled-out label smoother, the tree comparison and the
# optimizer/schedule constants (the same Trainer defaults apply).
import make_bart_golden as bart  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import transformers  # noqa: E402
from transformers import PegasusConfig, PegasusForConditionalGeneration, Trainer  # noqa: E402
from transformers import get_linear_schedule_with_warmup  # noqa: E402
from transformers.models.pegasus.modeling_pegasus import shift_tokens_right  # noqa: E402
from transformers.trainer_pt_utils import LabelSmoother  # noqa: E402

ATTN_IMPL = "eager"
INIT_STD = 0.1  # as BART's fixtures: far from uniform, so scaling/mask bugs show up
DROPOUTS = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)

CASES = {
    # google/pegasus-* style: relu, √d embedding scale.
    "tiny": dict(
        seed=20250601,
        config=dict(
            vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
            activation_function="relu", scale_embedding=True, init_std=INIT_STD, **DROPOUTS,
        ),
        src_lens=[11, 8, 5],  # S = 11 (including eos)
        tgt_lens=[7, 4, 6],  # T = 7
    ),
    # transformers' defaults: gelu, no embedding scale; an odd d_model (⌈d/2⌉ sin columns).
    "tiny-gelu": dict(
        seed=20250602,
        config=dict(
            vocab_size=48, d_model=15, encoder_layers=1, decoder_layers=2, encoder_attention_heads=3,
            decoder_attention_heads=3, encoder_ffn_dim=20, decoder_ffn_dim=20, max_position_embeddings=24,
            activation_function="gelu", scale_embedding=False, init_std=INIT_STD, **DROPOUTS,
        ),
        src_lens=[9, 6],  # S = 9
        tgt_lens=[5, 8],  # T = 8
    ),
}


def make_batch(cfg: PegasusConfig, src_lens, tgt_lens, gen: torch.Generator):
    """Right-padded Pegasus-like batch: tok... </s> <pad>...; labels tok... </s> -100... (no bos)."""
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
    decoder_input_ids = shift_tokens_right(labels, cfg.pad_token_id, cfg.decoder_start_token_id)
    return dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels, decoder_input_ids=decoder_input_ids)


@torch.no_grad()
def perturb(model: PegasusForConditionalGeneration, gen: torch.Generator) -> None:
    """N(0, NOISE_STD) on every LayerNorm weight/bias and every bias; a random final_logits_bias."""
    ln = set()
    for _, mod in model.named_modules():
        if isinstance(mod, nn.LayerNorm):
            ln.update(id(p) for p in mod.parameters(recurse=False))
    for name, p in model.named_parameters():
        if p.requires_grad and (id(p) in ln or name.endswith(".bias")):
            p.add_(torch.randn(p.shape, generator=gen) * bart.NOISE_STD)
    fb = model.final_logits_bias
    fb.copy_(torch.randn(fb.shape, generator=gen) * bart.NOISE_STD)


def load(case_dir: str, attn: str = ATTN_IMPL) -> PegasusForConditionalGeneration:
    model = PegasusForConditionalGeneration.from_pretrained(case_dir, attn_implementation=attn)
    model.to(torch.float32)
    model.train()  # dropouts are 0 in the config, so train mode is deterministic
    # The sinusoidal tables are built frozen (nn.Embedding(_freeze=True)), but transformers 5.24's
    # from_pretrained hands them back with requires_grad=True, so a Trainer would train them (and
    # count them in the clipped gradient norm). Precis follows the module's intent: frozen.
    for mod in (model.model.encoder.embed_positions, model.model.decoder.embed_positions):
        mod.weight.requires_grad_(False)
    return model


def trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def named_grads(model) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in trainable(model):
        assert p.grad is not None, f"no grad for {name}"
        out[f"grad.{name}"] = p.grad.detach().clone().contiguous()
    return out


def forward_loss(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])


def run_adamw(case_dir: str, batch: dict, fused: bool) -> dict:
    model = load(case_dir)
    decay = set(Trainer.get_decay_parameter_names(None, model))
    named = trainable(model)
    decay_names = [n for n, _ in named if n in decay]
    no_decay_names = [n for n, _ in named if n not in decay]
    groups = [
        {"params": [p for n, p in named if n in decay], "weight_decay": bart.ADAMW["weight_decay"]},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]
    a = bart.ADAMW
    opt = torch.optim.AdamW(groups, lr=a["lr"], betas=a["betas"], eps=a["eps"], fused=fused)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=bart.WARMUP_STEPS, num_training_steps=bart.TRAINING_STEPS)
    lrs, norms, losses = [], [], []
    for _ in range(bart.ADAMW_STEPS):
        opt.zero_grad(set_to_none=True)
        out = forward_loss(model, batch)
        out.loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in named], max_norm=bart.MAX_GRAD_NORM)
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
    for n, p in named:
        st = opt.state[p]
        tensors[f"exp_avg.{n}"] = st["exp_avg"].detach().clone()
        tensors[f"exp_avg_sq.{n}"] = st["exp_avg_sq"].detach().clone()
    return dict(tensors=tensors, decay_names=decay_names, no_decay_names=no_decay_names)


def build_case(name: str, spec: dict, out_root: str) -> dict:
    case_dir = os.path.join(out_root, name)
    os.makedirs(case_dir, exist_ok=True)
    seed = spec["seed"]

    torch.manual_seed(seed)
    cfg = PegasusConfig(**spec["config"])
    model = PegasusForConditionalGeneration(cfg)
    perturb(model, torch.Generator().manual_seed(seed + 1))
    model.save_pretrained(case_dir)

    model = load(case_dir)
    named = trainable(model)
    param_names = [n for n, _ in named]
    param_shapes = [list(p.shape) for _, p in named]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"], frozen
    assert model.lm_head.weight is model.model.shared.weight
    assert model.model.encoder.embed_tokens.padding_idx == cfg.pad_token_id

    batch = make_batch(cfg, spec["src_lens"], spec["tgt_lens"], torch.Generator().manual_seed(seed + 2))
    bart.save(os.path.join(case_dir, "batch.safetensors"), batch)
    meta = {
        "param_names": json.dumps(param_names),
        "param_shapes": json.dumps(param_shapes),
        "frozen_names": json.dumps(frozen),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "attn_implementation": ATTN_IMPL,
    }

    # ---- plain forward/backward
    model.zero_grad(set_to_none=True)
    out = forward_loss(model, batch)
    out.loss.backward()
    grads = named_grads(model)
    V = cfg.vocab_size
    ce = F.cross_entropy(out.logits.view(-1, V), batch["labels"].view(-1), ignore_index=-100)
    assert torch.allclose(ce, out.loss, rtol=0, atol=1e-6), (ce, out.loss)
    bart.save(
        os.path.join(case_dir, "expected.safetensors"),
        {"loss": out.loss.detach().reshape(()), "logits": out.logits.detach(),
         "encoder_last_hidden_state": out.encoder_last_hidden_state.detach(), **grads},
        meta,
    )

    # cross-check: sdpa attention agrees
    sdpa = load(case_dir, "sdpa")
    o2 = forward_loss(sdpa, batch)
    o2.loss.backward()
    sdpa_diff = max((o2.loss - out.loss).abs().item(), (o2.logits - out.logits).abs().max().item(),
                    bart.max_abs_diff(named_grads(sdpa), grads))
    assert sdpa_diff < 1e-5, f"sdpa vs eager differ by {sdpa_diff}"

    # ---- label smoothing 0.1 (HF Trainer LabelSmoother), decoder_input_ids passed explicitly
    model.zero_grad(set_to_none=True)
    o3 = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
               decoder_input_ids=batch["decoder_input_ids"], use_cache=False)
    assert (o3.logits - out.logits).abs().max().item() < 1e-5
    ls_loss, nll_loss, smooth_loss = bart.label_smoothed_loss(o3.logits, batch["labels"], bart.LABEL_SMOOTHING)
    hf_ls = LabelSmoother(epsilon=bart.LABEL_SMOOTHING)(o3, batch["labels"])
    assert torch.allclose(ls_loss, hf_ls, rtol=0, atol=1e-6), (ls_loss, hf_ls)
    ls_loss.backward()
    ls_grads = named_grads(model)
    bart.save(
        os.path.join(case_dir, "label_smoothing.safetensors"),
        {"loss": ls_loss.detach().reshape(()), "nll_loss": nll_loss.detach().reshape(()),
         "smooth_loss": smooth_loss.detach().reshape(()), **ls_grads},
        {**meta, "epsilon": str(bart.LABEL_SMOOTHING)},
    )

    # ---- AdamW, 5 steps, as the Trainer builds it (fused), checked against the single-tensor path
    adam = run_adamw(case_dir, batch, fused=True)
    ref = run_adamw(case_dir, batch, fused=False)
    fused_diff = max(
        (adam["tensors"]["param." + n] - ref["tensors"]["param." + n]).abs().max().item()
        for n in param_names if not n.endswith("k_proj.bias")
    )
    assert fused_diff < 1e-5, f"fused vs single-tensor AdamW differ by {fused_diff}"
    assert all(g > bart.MAX_GRAD_NORM for g in adam["tensors"]["grad_norm"].tolist()), "clipping must activate"
    a = bart.ADAMW
    bart.save(
        os.path.join(case_dir, "adamw.safetensors"),
        adam["tensors"],
        {**meta, "decay_names": json.dumps(adam["decay_names"]), "no_decay_names": json.dumps(adam["no_decay_names"]),
         "hparams": json.dumps(dict(lr=a["lr"], betas=list(a["betas"]), eps=a["eps"], weight_decay=a["weight_decay"],
                                    fused=True, steps=bart.ADAMW_STEPS, num_warmup_steps=bart.WARMUP_STEPS,
                                    num_training_steps=bart.TRAINING_STEPS, max_grad_norm=bart.MAX_GRAD_NORM,
                                    schedule="linear_with_warmup"))},
    )
    for fn in os.listdir(case_dir):
        os.chmod(os.path.join(case_dir, fn), 0o644)
    return dict(name=name, loss=out.loss.item(), ls_loss=ls_loss.item(), sdpa_diff=sdpa_diff, fused_diff=fused_diff,
                adam_loss=adam["tensors"]["loss"].tolist(), adam_grad_norm=adam["tensors"]["grad_norm"].tolist(),
                n_params=sum(math.prod(s) for s in param_shapes))


def generate(out_root: str, cases: list[str]) -> list[dict]:
    bart.setup_determinism()
    return [build_case(name, CASES[name], out_root) for name in cases]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "pegasus"))
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases (default: all)")
    ap.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare with --out")
    args = ap.parse_args()
    bart.check_versions()
    cases = args.case or list(CASES)
    out_root = os.path.abspath(args.out)
    if args.check:
        tmp = tempfile.mkdtemp(prefix="golden-pegasus-check-")
        try:
            summaries = generate(tmp, cases)
            bad = bart.compare_trees(tmp, out_root, cases)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print_summary(summaries)
        if bad:
            print("golden: MISMATCH vs " + out_root + ": " + ", ".join(bad))
            return 1
        print("golden: regenerated fixtures are byte-identical to " + out_root)
        return 0
    os.makedirs(out_root, exist_ok=True)
    print_summary(generate(out_root, cases))
    print(f"golden: wrote {', '.join(cases)} under {out_root}")
    return 0


def print_summary(summaries: list[dict]) -> None:
    for s in summaries:
        print(f"[{s['name']}] params={s['n_params']} loss={s['loss']:.9g} ls_loss={s['ls_loss']:.9g}")
        print(f"  adamw loss = {['%.7g' % x for x in s['adam_loss']]}; grad_norm = {['%.6g' % x for x in s['adam_grad_norm']]}")
        print(f"  sdpa-vs-eager {s['sdpa_diff']:.3g}; fused-vs-plain AdamW {s['fused_diff']:.3g}")


if __name__ == "__main__":
    sys.exit(main())
