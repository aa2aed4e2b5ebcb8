"""Where the golden scripts read SAMSum from, and how."""
import json
import os
import sys


def samsum_dir(repo, arg):
    """`arg` if given; else ../shared/data/samsum beside the repository, then data/samsum (`make data`)."""
    if arg:
        return arg
    for cand in [os.path.join(repo, "..", "shared", "data", "samsum"), os.path.join(repo, "data", "samsum")]:
        if os.path.exists(os.path.join(cand, "train.jsonl")):
            return cand
    sys.exit("SAMSum not found: pass SAMSUM_DIR or run `make data`")


def read_split(root, split):
    """The records of `split`.jsonl under `root`."""
    with open(os.path.join(root, split + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
