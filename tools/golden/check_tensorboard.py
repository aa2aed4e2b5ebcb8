#!/usr/bin/env python3
"""Reads a Precis run's TensorBoard event files with TensorBoard's own reader and prints every scalar.

    tools/golden/check_tensorboard.py LOGDIR [--expect TAG ...]

LOGDIR is a run's logging_dir (or any folder above it: every event file below is read). Exits 1 when
no event file is found, a file does not load, or an --expect tag is missing; otherwise prints each
tag with its (step, value) pairs. Needs the golden venv (tensorboard is pinned in requirements.txt).
"""
import argparse
import math
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logdir")
    ap.add_argument("--expect", nargs="*", default=[], help="tags that must be present")
    args = ap.parse_args()
    runs = sorted({root for root, _, files in os.walk(args.logdir) if any("tfevents" in f for f in files)})
    if not runs:
        print(f"{args.logdir}: no event files", file=sys.stderr)
        return 1
    seen = set()
    for run in runs:
        # size_guidance 0: keep every event (the default samples 1000 scalars per tag).
        acc = EventAccumulator(run, size_guidance={"scalars": 0})
        acc.Reload()
        tags = acc.Tags()["scalars"]
        print(f"{run}: {len(tags)} scalar tag(s)")
        for tag in sorted(tags):
            events = acc.Scalars(tag)
            steps = [e.step for e in events]
            if steps != sorted(steps) or any(not math.isfinite(e.value) for e in events):
                print(f"{run}: {tag}: steps out of order or a non-finite value", file=sys.stderr)
                return 1
            print(f"  {tag} ({len(events)}): " + ", ".join(f"{e.step}={e.value:.6g}" for e in events))
            seen.add(tag)
    missing = [t for t in args.expect if t not in seen]
    if missing:
        print(f"missing tags: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
