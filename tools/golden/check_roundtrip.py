#!/usr/bin/env python3
"""Checks Precis against transformers on any model folder, in both directions:

1. `precis init` writes a model folder; transformers must load it with `from_pretrained` (no missing
   or unexpected keys) and give the same loss, logits and gradients as `precis inspect loss-grad`.
2. Any transformers-saved BART folder (`--hf-folder`) goes through `precis inspect loss-grad` the same way.

Usage: python tools/golden/check_roundtrip.py [--precis .build/release/precis] [--config bart-tiny]
Needs torch + transformers + safetensors (the venv of tools/golden/run.sh).
"""
import argparse, json, os, subprocess, sys, tempfile

import torch
from safetensors.torch import load_file, save_file
from transformers import BartForConditionalGeneration


def compare(precis, folder, workdir, batch_size=3, src=17, tgt=9, seed=0):
    # BART layers copy the dropout rates at construction, so they must be overridden at load time.
    model, info = BartForConditionalGeneration.from_pretrained(
        folder, output_loading_info=True, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    problems = {k: v for k, v in info.items() if v}
    model.train()
    g = torch.Generator().manual_seed(seed)
    V = model.config.vocab_size
    ids = torch.randint(4, V, (batch_size, src), generator=g)
    ids[:, 0] = 0
    mask = torch.ones_like(ids)
    ids[1, -4:] = 1
    ids[1, -5] = 2
    mask[1, -4:] = 0
    ids[:, -1][mask[:, -1] == 1] = 2
    labels = torch.randint(4, V, (batch_size, tgt), generator=g)
    labels[:, 0] = 0
    labels[2, -3:] = -100
    batch_file = os.path.join(workdir, "batch.safetensors")
    save_file({"input_ids": ids, "attention_mask": mask, "labels": labels}, batch_file)
    out_file = os.path.join(workdir, "out.safetensors")
    subprocess.run([precis, "inspect", "loss-grad", "--model", folder, "--batch", batch_file, "--out", out_file], check=True)
    ours = load_file(out_file)
    out = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False)
    out.loss.backward()
    loss_rel = abs(ours["loss"].item() - out.loss.item()) / abs(out.loss.item())
    logits_err = (ours["logits"] - out.logits.detach()).abs().max().item()
    worst = 0.0
    for name, p in model.named_parameters():
        ref = p.grad
        got = ours["grad." + name]
        if name.endswith("k_proj.bias"):
            continue
        rel = ((got - ref).norm() / ref.norm().clamp_min(1e-30)).item()
        worst = max(worst, rel)
    missing = [n for n, _ in model.named_parameters() if "grad." + n not in ours]
    return dict(loading_problems=problems, loss_rel=loss_rel, logits_max_abs=logits_err, worst_grad_rel=worst, missing_grads=missing)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precis", default=".build/release/precis")
    ap.add_argument("--config", default="bart-tiny")
    ap.add_argument("--hf-folder", default=None)
    a = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.hf_folder
        if folder is None:
            folder = os.path.join(tmp, "model")
            subprocess.run([a.precis, "init", "--config", a.config, "--out", folder, "--seed", "3"], check=True)
        r = compare(a.precis, folder, tmp)
        print(json.dumps(r, indent=2))
        ok = (not r["loading_problems"] and r["loss_rel"] <= 1e-5 and r["logits_max_abs"] <= 1e-4
              and r["worst_grad_rel"] <= 1e-4 and not r["missing_grads"])
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
