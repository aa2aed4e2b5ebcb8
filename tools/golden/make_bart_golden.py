#!/usr/bin/env python3
"""Golden reference numerics for Precis' BART implementation.

Builds small, randomly initialised ``BartForConditionalGeneration`` models with
PyTorch + transformers (float32, CPU, deterministic) and writes, per case, a
folder ``<out>/<case>/`` with:

  config.json, generation_config.json, model.safetensors   (save_pretrained)
  batch.safetensors            input_ids, attention_mask, labels, decoder_input_ids
  expected.safetensors         loss, logits, encoder_last_hidden_state, grad.<name>
  label_smoothing.safetensors  loss, nll_loss, smooth_loss, grad.<name>  (epsilon 0.1)
  adamw.safetensors            5 AdamW steps: lr, grad_norm, loss, param.<name>,
                               exp_avg.<name>, exp_avg_sq.<name>

See Tests/Fixtures/bart/README.md for the meaning of every tensor.

Usage:
  python make_bart_golden.py --out Tests/Fixtures/bart            # (re)generate
  python make_bart_golden.py --out Tests/Fixtures/bart --check    # regenerate in a
        temp dir and compare byte-for-byte with what is in --out (exit 1 on mismatch)
"""

from __future__ import annotations

import argparse
import filecmp
import json
import math
import os
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
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

import transformers  # noqa: E402
from transformers import BartConfig, BartForConditionalGeneration, Trainer  # noqa: E402
from transformers import get_linear_schedule_with_warmup  # noqa: E402
from transformers.models.bart.modeling_bart import shift_tokens_right  # noqa: E402
from transformers.trainer_pt_utils import LabelSmoother  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

EXPECTED_TORCH = "2.13.0+cpu"
EXPECTED_TRANSFORMERS = "5.24.0"

# Reference attention implementation. "eager" is the literal
# softmax(q k^T * scaling + mask) v formula; sdpa is cross-checked against it.
ATTN_IMPL = "eager"

# transformers' default init scheme (normal(0, init_std) for Linear/Embedding, zero padding row,
# ones/zeros for LayerNorm, zero biases), but with init_std 0.1 instead of BART's 0.02 so that
# logits and attention scores are far from uniform and scaling/mask bugs show up clearly.
INIT_STD = 0.1
NOISE_STD = 0.02
LABEL_SMOOTHING = 0.1
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
ADAMW_STEPS = 5
WARMUP_STEPS = 2
TRAINING_STEPS = 10
MAX_GRAD_NORM = 0.5

DROPOUTS = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)

CASES = {
    "tiny": dict(
        seed=20240601,
        config=dict(
            vocab_size=64,
            d_model=16,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=32,
            init_std=INIT_STD,
            scale_embedding=False,
            **DROPOUTS,
        ),
        # real (unpadded) lengths per row, including bos/eos
        src_lens=[11, 8, 5],  # S = 11
        tgt_lens=[7, 4, 6],  # T = 7
    ),
    "tiny-scaled": dict(
        seed=20240602,
        config=dict(
            vocab_size=80,
            d_model=24,
            encoder_layers=1,
            decoder_layers=2,
            encoder_attention_heads=3,
            decoder_attention_heads=3,
            encoder_ffn_dim=40,
            decoder_ffn_dim=40,
            max_position_embeddings=40,
            init_std=INIT_STD,
            scale_embedding=True,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
            **DROPOUTS,
        ),
        src_lens=[13, 9],  # S = 13
        tgt_lens=[6, 9],  # T = 9
    ),
}


# --------------------------------------------------------------------------- helpers


def setup_determinism() -> None:
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)


def check_versions() -> None:
    bad = []
    if torch.__version__ != EXPECTED_TORCH:
        bad.append(f"torch {torch.__version__} (want {EXPECTED_TORCH})")
    if transformers.__version__ != EXPECTED_TRANSFORMERS:
        bad.append(f"transformers {transformers.__version__} (want {EXPECTED_TRANSFORMERS})")
    if bad:
        print("golden: WARNING: unexpected versions: " + ", ".join(bad), file=sys.stderr)


def make_batch(cfg: BartConfig, src_lens, tgt_lens, gen: torch.Generator):
    """Right-padded BART-like batch: <s> tok... </s> <pad>...; labels <s> tok... </s> -100..."""
    B, S, T = len(src_lens), max(src_lens), max(tgt_lens)
    V, pad, bos, eos = cfg.vocab_size, cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id
    input_ids = torch.full((B, S), pad, dtype=torch.int64)
    attention_mask = torch.zeros((B, S), dtype=torch.int64)
    labels = torch.full((B, T), -100, dtype=torch.int64)
    for b, n in enumerate(src_lens):
        body = torch.randint(4, V, (n - 2,), generator=gen, dtype=torch.int64)
        input_ids[b, :n] = torch.cat([torch.tensor([bos]), body, torch.tensor([eos])])
        attention_mask[b, :n] = 1
    for b, n in enumerate(tgt_lens):
        body = torch.randint(4, V, (n - 2,), generator=gen, dtype=torch.int64)
        labels[b, :n] = torch.cat([torch.tensor([bos]), body, torch.tensor([eos])])
    decoder_input_ids = shift_tokens_right(labels, cfg.pad_token_id, cfg.decoder_start_token_id)
    return dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        labels=labels,
        decoder_input_ids=decoder_input_ids,
    )


@torch.no_grad()
def perturb(model: BartForConditionalGeneration, gen: torch.Generator) -> list[str]:
    """Add N(0, NOISE_STD) to every LayerNorm weight/bias and every bias; randomise final_logits_bias."""
    ln_params = set()
    for _, mod in model.named_modules():
        if isinstance(mod, nn.LayerNorm):
            ln_params.update(id(p) for p in mod.parameters(recurse=False))
    touched = []
    for name, p in model.named_parameters():
        if id(p) in ln_params or name.endswith(".bias"):
            p.add_(torch.randn(p.shape, generator=gen) * NOISE_STD)
            touched.append(name)
    fb = model.final_logits_bias
    fb.copy_(torch.randn(fb.shape, generator=gen) * NOISE_STD)
    touched.append("final_logits_bias")
    return touched


def load(case_dir: str, attn: str = ATTN_IMPL) -> BartForConditionalGeneration:
    model = BartForConditionalGeneration.from_pretrained(case_dir, attn_implementation=attn)
    model.to(torch.float32)
    model.train()  # dropouts are 0 in the config, so train mode is deterministic
    return model


def named_grads(model) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no grad for {name}"
        out[f"grad.{name}"] = p.grad.detach().clone().contiguous()
    return out


def forward_loss(model, batch):
    return model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        labels=batch["labels"],
    )


def label_smoothed_loss(logits: torch.Tensor, labels: torch.Tensor, eps: float):
    """HF Trainer LabelSmoother, spelled out."""
    V = logits.shape[-1]
    log_probs = F.log_softmax(logits, dim=-1)
    mask = labels.ne(-100)
    safe = labels.clamp(min=0)
    nll = -log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    smooth = -log_probs.sum(-1)
    n = mask.sum()
    nll_loss = (nll * mask).sum() / n
    smooth_loss = (smooth * mask).sum() / (n * V)
    return (1 - eps) * nll_loss + eps * smooth_loss, nll_loss, smooth_loss


def max_abs_diff(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def save(path: str, tensors: dict, metadata: dict | None = None) -> None:
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(tensors, path, metadata=metadata)
    canonicalize_safetensors(path)


def canonicalize_safetensors(path: str) -> None:
    """Rewrite the JSON header with a fixed key order (safetensors writes __metadata__ from a
    hash map, so its key order changes run to run); tensor bytes are untouched. Makes
    regenerated fixtures byte-identical."""
    with open(path, "rb") as fh:
        raw = fh.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    meta = header.pop("__metadata__", None)
    ordered = {}
    if meta is not None:
        ordered["__metadata__"] = {k: meta[k] for k in sorted(meta)}
    for k in sorted(header, key=lambda k: (header[k]["data_offsets"][0], k)):
        ordered[k] = header[k]
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text + data)


# --------------------------------------------------------------------------- per case


def build_case(name: str, spec: dict, out_root: str) -> dict:
    case_dir = os.path.join(out_root, name)
    os.makedirs(case_dir, exist_ok=True)
    seed = spec["seed"]

    # ---- model: default HF init, then noise on norms / biases / final_logits_bias
    torch.manual_seed(seed)
    cfg = BartConfig(**spec["config"])
    model = BartForConditionalGeneration(cfg)
    noise_gen = torch.Generator().manual_seed(seed + 1)
    perturb(model, noise_gen)
    model.save_pretrained(case_dir)

    # ---- reload what was written, check the round trip is exact
    model = load(case_dir)
    with safe_open(os.path.join(case_dir, "model.safetensors"), "pt") as f:
        saved_keys = sorted(f.keys())
    state = model.state_dict()
    for k in saved_keys:
        assert torch.equal(state[k], f_get(case_dir, k)), k
    param_names = [n for n, _ in model.named_parameters()]
    param_shapes = [list(p.shape) for _, p in model.named_parameters()]
    assert model.lm_head.weight is model.model.shared.weight
    assert model.model.encoder.embed_tokens.weight is model.model.shared.weight
    assert model.model.decoder.embed_tokens.weight is model.model.shared.weight

    # ---- batch
    batch_gen = torch.Generator().manual_seed(seed + 2)
    batch = make_batch(cfg, spec["src_lens"], spec["tgt_lens"], batch_gen)
    save(os.path.join(case_dir, "batch.safetensors"), batch)

    meta_common = {
        "param_names": json.dumps(param_names),
        "param_shapes": json.dumps(param_shapes),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "attn_implementation": ATTN_IMPL,
    }

    # ---- plain forward/backward (train mode)
    model.zero_grad(set_to_none=True)
    out = forward_loss(model, batch)
    out.loss.backward()
    grads = named_grads(model)
    V = cfg.vocab_size
    ce = F.cross_entropy(out.logits.view(-1, V), batch["labels"].view(-1), ignore_index=-100)
    assert torch.allclose(ce, out.loss, rtol=0, atol=1e-6), (ce, out.loss)
    expected = {
        "loss": out.loss.detach().reshape(()),
        "logits": out.logits.detach(),
        "encoder_last_hidden_state": out.encoder_last_hidden_state.detach(),
        **grads,
    }
    save(os.path.join(case_dir, "expected.safetensors"), expected, meta_common)

    # cross-check: sdpa attention gives the same numbers (to float tolerance)
    sdpa = load(case_dir, "sdpa")
    sdpa.zero_grad(set_to_none=True)
    o2 = forward_loss(sdpa, batch)
    o2.loss.backward()
    sdpa_diff = max(
        (o2.loss - out.loss).abs().item(),
        (o2.logits - out.logits).abs().max().item(),
        max_abs_diff(named_grads(sdpa), grads),
    )
    assert sdpa_diff < 1e-5, f"sdpa vs eager differ by {sdpa_diff}"
    del sdpa

    # ---- label smoothing 0.1 (HF Trainer LabelSmoother). Note: the Trainer pops `labels`
    # before calling the model, so decoder_input_ids must be passed explicitly.
    model.zero_grad(set_to_none=True)
    o3 = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        decoder_input_ids=batch["decoder_input_ids"],
        use_cache=False,
    )
    logits_diff = (o3.logits - out.logits).abs().max().item()
    assert logits_diff < 1e-5, f"explicit decoder_input_ids changed logits by {logits_diff}"
    print(f"  [{name}] explicit decoder_input_ids vs labels-shift logits diff {logits_diff:.3g}")
    ls_loss, nll_loss, smooth_loss = label_smoothed_loss(o3.logits, batch["labels"], LABEL_SMOOTHING)
    hf_ls = LabelSmoother(epsilon=LABEL_SMOOTHING)(o3, batch["labels"])
    torch_ls = F.cross_entropy(
        o3.logits.view(-1, V), batch["labels"].view(-1), ignore_index=-100, label_smoothing=LABEL_SMOOTHING
    )
    assert torch.allclose(ls_loss, hf_ls, rtol=0, atol=1e-6), (ls_loss, hf_ls)
    assert torch.allclose(ls_loss, torch_ls, rtol=0, atol=1e-6), (ls_loss, torch_ls)
    assert torch.allclose(nll_loss, out.loss, rtol=0, atol=1e-6)
    ls_loss.backward()
    ls_grads = named_grads(model)
    save(
        os.path.join(case_dir, "label_smoothing.safetensors"),
        {
            "loss": ls_loss.detach().reshape(()),
            "nll_loss": nll_loss.detach().reshape(()),
            "smooth_loss": smooth_loss.detach().reshape(()),
            **ls_grads,
        },
        {**meta_common, "epsilon": str(LABEL_SMOOTHING)},
    )

    # ---- AdamW, 5 steps, as HF Trainer builds it (default optim in 5.24 = adamw_torch_fused)
    adam = run_adamw(case_dir, batch, fused=True)
    ref = run_adamw(case_dir, batch, fused=False)
    # k_proj.bias has a mathematically zero gradient (softmax is shift-invariant per query), so its
    # gradient is float rounding noise that Adam normalises to O(lr) updates: exclude it here.
    fused_diff = max(
        (adam["tensors"]["param." + n] - ref["tensors"]["param." + n]).abs().max().item()
        for n in param_names
        if not n.endswith("k_proj.bias")
    )
    assert fused_diff < 1e-5, f"fused vs single-tensor AdamW differ by {fused_diff}"
    assert all(g > MAX_GRAD_NORM for g in adam["tensors"]["grad_norm"].tolist()), "clipping must activate"
    save(
        os.path.join(case_dir, "adamw.safetensors"),
        adam["tensors"],
        {
            **meta_common,
            "decay_names": json.dumps(adam["decay_names"]),
            "no_decay_names": json.dumps(adam["no_decay_names"]),
            "hparams": json.dumps(
                dict(
                    lr=ADAMW["lr"],
                    betas=list(ADAMW["betas"]),
                    eps=ADAMW["eps"],
                    weight_decay=ADAMW["weight_decay"],
                    fused=True,
                    steps=ADAMW_STEPS,
                    num_warmup_steps=WARMUP_STEPS,
                    num_training_steps=TRAINING_STEPS,
                    max_grad_norm=MAX_GRAD_NORM,
                    schedule="linear_with_warmup",
                )
            ),
        },
    )

    for fn in os.listdir(case_dir):  # safetensors writes 0600; make fixtures world-readable
        os.chmod(os.path.join(case_dir, fn), 0o644)

    return dict(
        name=name,
        loss=out.loss.item(),
        ls_loss=ls_loss.item(),
        max_grad=max(g.abs().max().item() for g in grads.values()),
        max_ls_grad=max(g.abs().max().item() for g in ls_grads.values()),
        max_logit=out.logits.abs().max().item(),
        adam_loss=adam["tensors"]["loss"].tolist(),
        adam_lr=adam["tensors"]["lr"].tolist(),
        adam_grad_norm=adam["tensors"]["grad_norm"].tolist(),
        sdpa_diff=sdpa_diff,
        fused_diff=fused_diff,
        n_params=sum(math.prod(s) for s in param_shapes),
        saved_keys=saved_keys,
        param_names=param_names,
        decay_names=adam["decay_names"],
    )


def f_get(case_dir: str, key: str) -> torch.Tensor:
    with safe_open(os.path.join(case_dir, "model.safetensors"), "pt") as f:
        return f.get_tensor(key)


def run_adamw(case_dir: str, batch: dict, fused: bool) -> dict:
    model = load(case_dir)
    # Trainer.get_decay_parameter_names does not use `self`.
    decay = set(Trainer.get_decay_parameter_names(None, model))
    named = list(model.named_parameters())
    decay_names = [n for n, p in named if n in decay and p.requires_grad]
    no_decay_names = [n for n, p in named if n not in decay and p.requires_grad]
    groups = [
        {"params": [p for n, p in named if n in decay and p.requires_grad], "weight_decay": ADAMW["weight_decay"]},
        {"params": [p for n, p in named if n not in decay and p.requires_grad], "weight_decay": 0.0},
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
        assert all(g["lr"] == lrs[-1] for g in opt.param_groups)
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


# --------------------------------------------------------------------------- main


def generate(out_root: str, cases: list[str]) -> list[dict]:
    setup_determinism()
    return [build_case(name, CASES[name], out_root) for name in cases]


def compare_trees(a: str, b: str, cases: list[str]) -> list[str]:
    bad = []
    for case in cases:
        da, db = os.path.join(a, case), os.path.join(b, case)
        names = sorted(set(os.listdir(da)) | set(os.listdir(db)) if os.path.isdir(db) else os.listdir(da))
        for fn in names:
            pa, pb = os.path.join(da, fn), os.path.join(db, fn)
            if not (os.path.exists(pa) and os.path.exists(pb)) or not filecmp.cmp(pa, pb, shallow=False):
                bad.append(f"{case}/{fn}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "bart"))
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases (default: all)")
    ap.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare with --out")
    args = ap.parse_args()
    check_versions()
    cases = args.case or list(CASES)
    out_root = os.path.abspath(args.out)

    if args.check:
        tmp = tempfile.mkdtemp(prefix="golden-check-")
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


def print_summary(summaries: list[dict]) -> None:
    for s in summaries:
        print(f"[{s['name']}] params={s['n_params']}")
        print(f"  loss            = {s['loss']:.9g}")
        print(f"  ls loss (0.1)   = {s['ls_loss']:.9g}")
        print(f"  max |logit|     = {s['max_logit']:.6g}")
        print(f"  max |grad|      = {s['max_grad']:.6g}   (label smoothing: {s['max_ls_grad']:.6g})")
        print(f"  adamw lr        = {['%.6g' % x for x in s['adam_lr']]}")
        print(f"  adamw grad_norm = {['%.6g' % x for x in s['adam_grad_norm']]}  (max_norm {MAX_GRAD_NORM})")
        print(f"  adamw loss      = {['%.7g' % x for x in s['adam_loss']]}")
        print(f"  sdpa-vs-eager max diff = {s['sdpa_diff']:.3g}; fused-vs-plain AdamW max diff = {s['fused_diff']:.3g}")


if __name__ == "__main__":
    sys.exit(main())
