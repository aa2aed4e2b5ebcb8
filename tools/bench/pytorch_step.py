#!/usr/bin/env python3
"""PyTorch reference for `precis bench step`: the same model config (BART, T5, …), batch shape, thread count and
optimizer (AdamW, weight decay 0.01 except biases/LayerNorms, clip 1.0, dropout from the config),
timed two ways:

  plain   — a hand-written loop: forward, backward, clip + AdamW step, each timed separately
  trainer — transformers' Seq2SeqTrainer on a dataset of the same random batches (max_steps)

Prints one JSON object per mode (ms per step, tokens/s, peak RSS of the process so far).
Run from the repo root with the golden venv:  python tools/bench/pytorch_step.py --threads 2
"""
import argparse, json, os, resource, statistics, sys, time

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_batch(vocab, b, s, t, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (b, s), generator=g)
    ids[:, 0] = 0
    ids[:, -1] = 2
    labels = torch.randint(4, vocab, (b, t), generator=g)
    labels[:, 0] = 0
    labels[:, -1] = 2
    return ids, torch.ones_like(ids), labels


def param_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if ("bias" in name or "layer_norm" in name or "layernorm" in name) else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def plain(args, cfg):
    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(cfg)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4)
    ids, mask, labels = make_batch(cfg.vocab_size, args.batch, args.source_len, args.target_len, 1)
    fwd, bwd, optim, total = [], [], [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        # --bf16: matrix products in bf16 under autocast (oneDNN's AMX / AVX-512-BF16 kernels), the rest
        # fp32, as Trainer's `bf16: true` does on CPU.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        t3 = time.perf_counter()
        if i >= args.warmup:
            fwd.append(t1 - t0); bwd.append(t2 - t1); optim.append(t3 - t2); total.append(t3 - t0)
    step = statistics.median(total)
    return {"mode": "plain", "forward_ms": 1000 * statistics.median(fwd), "backward_ms": 1000 * statistics.median(bwd),
            "optimizer_ms": 1000 * statistics.median(optim), "step_ms": 1000 * step,
            "tokens_per_s": args.batch * (args.source_len + args.target_len) / step, "peak_rss_mib": peak_rss_mib()}


def trainer(args, cfg):
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback
    import tempfile

    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(cfg)
    ids, mask, labels = make_batch(cfg.vocab_size, args.batch, args.source_len, args.target_len, 1)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return args.batch * (args.warmup + args.steps)

        def __getitem__(self, i):
            r = i % args.batch
            return {"input_ids": ids[r], "attention_mask": mask[r], "labels": labels[r]}

    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, a, s, c, **k):
            self.t = time.perf_counter()

        def on_step_end(self, a, s, c, **k):
            times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as out:
        targs = Seq2SeqTrainingArguments(output_dir=out, per_device_train_batch_size=args.batch,
                                         max_steps=args.warmup + args.steps, learning_rate=1e-4, weight_decay=0.01,
                                         max_grad_norm=1.0, logging_steps=10_000, save_strategy="no", report_to=[],
                                         dataloader_num_workers=0, use_cpu=True, disable_tqdm=True,
                                         bf16=args.bf16)
        Seq2SeqTrainer(model=model, args=targs, train_dataset=DS(), callbacks=[Timer()]).train()
    step = statistics.median(times[args.warmup:])
    return {"mode": "trainer", "step_ms": 1000 * step,
            "tokens_per_s": args.batch * (args.source_len + args.target_len) / step, "peak_rss_mib": peak_rss_mib()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/bart-small.json")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--source-len", type=int, default=256)
    ap.add_argument("--target-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="torch.autocast(cpu, bfloat16) / Trainer's bf16=True")
    ap.add_argument("--mode", choices=["plain", "trainer", "both"], default="both")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # Any model type the config names (bart, t5, …), as `precis bench step` builds it from the registry.
    fields = json.load(open(args.config))
    cfg = AutoConfig.for_model(fields.pop("model_type"), **fields)
    meta = {"torch": torch.__version__, "precision": "bf16 (autocast)" if args.bf16 else "fp32", "threads": args.threads, "batch": args.batch,
            "source_len": args.source_len, "target_len": args.target_len}
    # Each mode in its own process so peak RSS is per mode.
    if args.mode == "both":
        import subprocess
        for m in ["plain", "trainer"]:
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--mode", m], check=True)
        return
    r = plain(args, cfg) if args.mode == "plain" else trainer(args, cfg)
    print(json.dumps({**meta, **r}), flush=True)


if __name__ == "__main__":
    main()
