#!/usr/bin/env python3
"""Golden reference for Precis' bf16 training step: torch.autocast on CPU.

Builds one small, randomly initialised ``BartForConditionalGeneration`` (wide enough that the
products' inner dimensions, 64 and 128, show bf16 rounding as it is at real sizes) and writes
``<out>/bart-autocast/``:

  config.json, generation_config.json, model.safetensors   (save_pretrained, fp32 master weights)
  batch.safetensors        input_ids, attention_mask, labels, decoder_input_ids
  fp32.safetensors         loss, grad.<name>: one training step in fp32
  autocast.safetensors     loss, grad.<name>: the same step under
                           torch.autocast("cpu", dtype=torch.bfloat16) (fp32 master weights; the
                           gradients land in fp32 .grad, as Trainer's bf16=True runs them)

Precis' bf16 step (tests: Tests/PrecisModelsTests/BF16GoldenTests.swift) is compared with both.

Usage:
  python make_bf16_golden.py --out Tests/Fixtures/bf16            # (re)generate
  python make_bf16_golden.py --out Tests/Fixtures/bf16 --check    # regenerate in a temp dir, compare bytes
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bart_golden as mbg  # noqa: E402  (sets the thread count and offline environment)

import torch  # noqa: E402
from transformers import BartConfig, BartForConditionalGeneration  # noqa: E402

CASE = dict(
    seed=20261202,
    config=dict(
        vocab_size=256,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=64,
        init_std=mbg.INIT_STD,
        scale_embedding=False,
        **mbg.DROPOUTS,
    ),
    src_lens=[40, 31, 17, 26],  # S = 40
    tgt_lens=[14, 9, 12, 6],  # T = 14
)


def step(model, batch, autocast: bool):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = mbg.forward_loss(model, batch)
    loss = out.loss.float()
    loss.backward()
    return {"loss": loss.detach().reshape(()), **mbg.named_grads(model)}


def build(out_root: str) -> None:
    mbg.setup_determinism()
    case_dir = os.path.join(out_root, "bart-autocast")
    os.makedirs(case_dir, exist_ok=True)
    torch.manual_seed(CASE["seed"])
    cfg = BartConfig(**CASE["config"])
    model = BartForConditionalGeneration(cfg)
    mbg.perturb(model, torch.Generator().manual_seed(CASE["seed"] + 1))
    model.save_pretrained(case_dir)
    model = mbg.load(case_dir)
    batch = mbg.make_batch(cfg, CASE["src_lens"], CASE["tgt_lens"], torch.Generator().manual_seed(CASE["seed"] + 2))
    mbg.save(os.path.join(case_dir, "batch.safetensors"), batch)
    meta = {
        "param_names": json.dumps([n for n, _ in model.named_parameters()]),
        "torch_version": torch.__version__,
        "attn_implementation": mbg.ATTN_IMPL,
    }
    fp32 = step(model, batch, autocast=False)
    mbg.save(os.path.join(case_dir, "fp32.safetensors"), fp32, meta)
    bf16 = step(model, batch, autocast=True)
    mbg.save(os.path.join(case_dir, "autocast.safetensors"), bf16, {**meta, "autocast": "cpu bfloat16"})
    rel = (bf16["loss"] - fp32["loss"]).abs().item() / fp32["loss"].item()
    print(f"bf16 golden: loss fp32 {fp32['loss'].item():.6f}, autocast {bf16['loss'].item():.6f} (relative {rel:.2e})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    mbg.check_versions()
    if not args.check:
        build(args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        build(tmp)
        cmp = filecmp.dircmp(os.path.join(tmp, "bart-autocast"), os.path.join(args.out, "bart-autocast"))
        bad = cmp.diff_files + cmp.left_only + cmp.right_only
        if bad:
            print(f"bf16 golden: differs from {args.out}: {bad}", file=sys.stderr)
            return 1
    print("bf16 golden: matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
