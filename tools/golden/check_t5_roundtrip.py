#!/usr/bin/env python3
"""Checks that a model folder Precis writes for T5 loads in transformers and computes the same numbers:
`precis init` writes the folder (the same writer as training checkpoints); `T5ForConditionalGeneration.
from_pretrained` must load it with no missing or unexpected keys, keep an untied head untied, and give
the same loss, logits and gradients as `precis inspect loss-grad`.

Usage: python tools/golden/check_t5_roundtrip.py [--precis .build/debug/precis] [--config t5-tiny ...]
Needs the venv of tools/golden/run.sh. Exit 1 on any mismatch.
"""
import argparse, json, os, subprocess, sys, tempfile

import torch
from safetensors.torch import load_file, save_file
from transformers import T5ForConditionalGeneration

# A flan-t5-like tiny config: gated-gelu, own LM head, heads × d_kv ≠ d_model.
FLAN_TINY = {"model_type": "t5", "vocab_size": 300, "d_model": 32, "d_kv": 6, "num_heads": 4, "d_ff": 48, "num_layers": 2,
             "num_decoder_layers": 3, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "dropout_rate": 0.1}


def compare(precis, folder, workdir, batch_size=3, src=17, tgt=9, seed=0):
    model, info = T5ForConditionalGeneration.from_pretrained(folder, output_loading_info=True, dropout_rate=0.0)
    problems = {k: v for k, v in info.items() if v}
    cfg = json.load(open(os.path.join(folder, "config.json")))
    untied = model.lm_head.weight is not model.shared.weight
    model.train()
    g = torch.Generator().manual_seed(seed)
    V = model.config.vocab_size
    ids = torch.randint(2, V, (batch_size, src), generator=g)
    mask = torch.ones_like(ids)
    ids[1, -4:] = 0
    mask[1, -4:] = 0
    labels = torch.randint(2, V, (batch_size, tgt), generator=g)
    labels[2, -3:] = -100
    batch_file = os.path.join(workdir, "batch.safetensors")
    save_file({"input_ids": ids, "attention_mask": mask, "labels": labels}, batch_file)
    out_file = os.path.join(workdir, "out.safetensors")
    subprocess.run([precis, "inspect", "loss-grad", "--model", folder, "--batch", batch_file, "--out", out_file], check=True)
    ours = load_file(out_file)
    out = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False)
    out.loss.backward()
    worst = max(((ours["grad." + n] - p.grad).norm() / p.grad.norm().clamp_min(1e-30)).item()
                for n, p in model.named_parameters())
    return dict(loading_problems=problems, untied_head=untied, tie_word_embeddings_in_config=cfg.get("tie_word_embeddings"),
                loss_rel=abs(ours["loss"].item() - out.loss.item()) / abs(out.loss.item()),
                logits_max_abs=(ours["logits"] - out.logits.detach()).abs().max().item(), worst_grad_rel=worst,
                missing_grads=[n for n, _ in model.named_parameters() if "grad." + n not in ours])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precis", default=".build/debug/precis")
    ap.add_argument("--config", action="append", help="presets or config.json paths (default: t5-tiny and a flan-like tiny)")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        configs = args.config
        if not configs:
            flan = os.path.join(tmp, "flan-tiny.json")
            json.dump(FLAN_TINY, open(flan, "w"))
            configs = ["t5-tiny", flan]
        for i, config in enumerate(configs):
            folder = os.path.join(tmp, f"m{i}")
            subprocess.run([args.precis, "init", "--config", config, "--out", folder, "--seed", "3"], check=True)
            r = compare(args.precis, folder, tmp)
            good = (not r["loading_problems"] and not r["missing_grads"] and r["loss_rel"] < 1e-5
                    and r["logits_max_abs"] < 1e-4 and r["worst_grad_rel"] < 1e-4)
            ok &= good
            print(("OK  " if good else "BAD ") + config + ": " + json.dumps(r))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
