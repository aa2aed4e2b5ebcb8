#!/usr/bin/env python3
"""PyTorch reference for `precis bench generate`: transformers' generate() on the same random-init
config, batch, source length, thread count and number of new tokens (EOS banned until the last
step via min_new_tokens), greedy and beam search; with --bf16 under torch.autocast("cpu",
dtype=torch.bfloat16), as `precis bench generate --bf16` runs its products. Prints one JSON line per
beam size."""
import argparse, contextlib, json, os, resource, time

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/bart-small.json")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--source-len", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--num-beams", default="1,4")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bf16", action="store_true", help="generate under torch.autocast(\"cpu\", dtype=torch.bfloat16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    # Any model type the config names (bart, t5, pegasus), as `precis bench generate` builds it from the registry.
    fields = json.load(open(a.config))
    cfg = AutoConfig.for_model(fields.pop("model_type"), **fields)
    model = AutoModelForSeq2SeqLM.from_config(cfg).eval()
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(4, cfg.vocab_size, (a.batch, a.source_len), generator=g)
    ids[:, 0] = 0   # the same ids as Seq2SeqBatch.random (the values do not change the work)
    ids[:, -1] = 2
    mask = torch.ones_like(ids)
    for beams in [int(x) for x in a.num_beams.split(",")]:
        best = float("inf")
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if a.bf16 else contextlib.nullcontext()
            with torch.no_grad(), autocast:
                out = model.generate(input_ids=ids, attention_mask=mask, num_beams=beams, do_sample=False,
                                     max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, early_stopping=True,
                                     forced_eos_token_id=None, no_repeat_ngram_size=0)
            best = min(best, time.perf_counter() - t0)
            assert out.shape[1] == a.new_tokens + 1, out.shape
        print(json.dumps({"num_beams": beams, "seconds": best, "tokens_per_s": a.batch * a.new_tokens / best,
                          "batch": a.batch, "source_len": a.source_len, "new_tokens": a.new_tokens, "threads": a.threads,
                          "torch": torch.__version__, "model_type": cfg.model_type,
                          "precision": "bf16" if a.bf16 else "fp32",
                          "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


if __name__ == "__main__":
    main()
