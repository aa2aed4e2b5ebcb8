#!/usr/bin/env python3
"""Checks that a Pegasus folder Precis writes loads in transformers and computes the same numbers:

`precis init --config pegasus-tiny` writes a folder (with the sinusoidal position tables, as
save_pretrained writes them; Precis itself rebuilds them from the config);
`PegasusForConditionalGeneration.from_pretrained` must load it with no missing or unexpected keys,
hold tables equal to `create_weight()`, and give the same loss, logits and gradients as
`precis inspect loss-grad`.
A folder that transformers saved (`--hf-folder`) goes through the same comparison.

Usage: python tools/golden/check_pegasus_roundtrip.py [--precis .build/debug/precis] [--config pegasus-tiny]
Needs the venv of tools/golden/run.sh.
"""
import argparse, json, os, subprocess, sys, tempfile

import torch
from safetensors.torch import load_file, save_file
from transformers import PegasusForConditionalGeneration

POSITIONS = ["model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"]


def compare(precis, folder, workdir, batch_size=3, src=17, tgt=9, seed=0):
    model, info = PegasusForConditionalGeneration.from_pretrained(
        folder, output_loading_info=True, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    problems = {k: sorted(v) for k, v in info.items() if v}
    tables_ok = all(torch.equal(m.weight, m.create_weight())
                    for m in (model.model.encoder.embed_positions, model.model.decoder.embed_positions))
    for m in (model.model.encoder.embed_positions, model.model.decoder.embed_positions):
        m.weight.requires_grad_(False)  # frozen, as the module builds it (from_pretrained unfreezes it)
    model.train()
    g = torch.Generator().manual_seed(seed)
    V = model.config.vocab_size
    ids = torch.randint(2, V, (batch_size, src), generator=g)
    mask = torch.ones_like(ids)
    ids[1, -4:] = 0
    mask[1, -4:] = 0
    ids[1, -5] = 1
    ids[0, -1] = ids[2, -1] = 1
    labels = torch.randint(2, V, (batch_size, tgt), generator=g)
    labels[:, -1] = 1
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
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    for name, p in trainable:
        if name.endswith("k_proj.bias"):
            continue
        rel = ((ours["grad." + name] - p.grad).norm() / p.grad.norm().clamp_min(1e-30)).item()
        worst = max(worst, rel)
    missing = [n for n, _ in trainable if "grad." + n not in ours]
    return dict(loading_problems=problems, missing_position_tables=sorted(set(info["missing_keys"]) & set(POSITIONS)),
                position_tables_rebuilt=tables_ok, loss_rel=loss_rel, logits_max_abs=logits_err,
                worst_grad_rel=worst, missing_grads=missing)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precis", default=".build/debug/precis")
    ap.add_argument("--config", default="pegasus-tiny")
    ap.add_argument("--hf-folder", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.hf_folder
        if folder is None:
            folder = os.path.join(tmp, "model")
            subprocess.run([a.precis, "init", "--config", a.config, "--out", folder, "--seed", "3"], check=True)
        r = compare(a.precis, folder, tmp)
        print(json.dumps(r, indent=2))
        ok = (not r["loading_problems"] and r["position_tables_rebuilt"] and r["loss_rel"] <= 1e-5
              and r["logits_max_abs"] <= 1e-4 and r["worst_grad_rel"] <= 1e-4 and not r["missing_grads"])
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
