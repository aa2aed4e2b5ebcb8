#!/usr/bin/env python3
"""Cross-check Precis's Hub downloads with huggingface_hub's cache (make check-hub-cache).

Serves a tiny model repository from a loopback "Hub" (tools/golden/local_hub.py: the download URL layout of
huggingface.co: /api/models/{repo}/revision/{rev}, /api/models/{repo}/tree/{rev}, HEAD/GET /{repo}/resolve/{rev}/{path},
LFS files redirected to a second "CDN" server by sha256, with Range), then:

  (a) `precis summarize --model org/name` populates a cache; huggingface_hub, offline
      (local_files_only=True / HF_HUB_OFFLINE=1), finds every file Precis fetched through
      try_to_load_from_cache, hf_hub_download and snapshot_download, byte for byte;
  (b) huggingface_hub's snapshot_download populates a cache against the same server; the server
      is stopped and `precis summarize` with HF_HUB_OFFLINE=1 reads it and answers exactly as it
      does from the plain model folder.

Run in the pinned venv (/work/venv-golden): python tools/golden/check_hub_cache.py --precis .build/debug/precis
Exit status 0 when every check holds.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_hub import LocalHub  # noqa: E402

REPO = "precis-check/bart-tiny"


def run_precis(precis, args, env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    full.update(env)
    return subprocess.run([precis] + args, env=full, capture_output=True, text=True, timeout=600)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precis", default=".build/debug/precis")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    precis = os.path.abspath(args.precis)
    work = tempfile.mkdtemp(prefix="precis-hub-cache-")
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    model = os.path.join(work, "model")
    r = run_precis(precis, ["init", "--config", "bart-tiny", "--out", model, "--seed", "11"], {})
    if r.returncode != 0:
        sys.exit(f"precis init failed: {r.stderr}")
    shutil.copy(os.path.join(root, "Tests/Fixtures/tokenizer/samsum-bpe-8192.json"), os.path.join(model, "tokenizer.json"))
    files = {}
    for name in sorted(os.listdir(model)):
        with open(os.path.join(model, name), "rb") as f:
            files[name] = f.read()
    files["README.md"] = b"# bart-tiny for the cache cross-check\n"
    hub = LocalHub().start()
    commit = hub.publish(REPO, files)
    endpoint = hub.endpoint
    inp = os.path.join(work, "in.jsonl")
    with open(inp, "w") as f:
        f.write(json.dumps({"dialogue": "Amanda: I baked cookies. Do you want some?\nJerry: Sure!"}) + "\n")
    summarize = ["summarize", "--input", inp, "--max-new-tokens", "4"]
    reference = run_precis(precis, summarize + ["--model", model], {})
    check(reference.returncode == 0 and reference.stdout.strip() != "", "precis summarize from the plain model folder")

    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"  # huggingface_hub is imported offline; (b) passes endpoint explicitly
    import huggingface_hub
    from huggingface_hub import hf_hub_download, snapshot_download, try_to_load_from_cache

    # (a) Precis populates, huggingface_hub reads offline.
    cache_a = os.path.join(work, "hf-a")
    r = run_precis(precis, summarize + ["--model", REPO], {"HF_ENDPOINT": endpoint, "HF_HOME": cache_a})
    check(r.returncode == 0 and r.stdout == reference.stdout, "precis summarize --model org/name downloads and answers as from the folder")
    needed = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]
    hub_cache_a = os.path.join(cache_a, "hub")
    for name in needed:
        p = try_to_load_from_cache(REPO, name, cache_dir=hub_cache_a)
        ok = isinstance(p, str) and open(p, "rb").read() == files[name]
        check(ok, f"(a) try_to_load_from_cache finds {name} from Precis's cache")
        p2 = hf_hub_download(REPO, name, cache_dir=hub_cache_a, local_files_only=True)
        check(open(p2, "rb").read() == files[name], f"(a) hf_hub_download(local_files_only=True) reads {name}")
    check(try_to_load_from_cache(REPO, "README.md", cache_dir=hub_cache_a) is None, "(a) Precis did not fetch README.md")
    snap = snapshot_download(REPO, cache_dir=hub_cache_a, local_files_only=True, allow_patterns=needed)
    check(snap == os.path.join(hub_cache_a, f"models--{REPO.replace('/', '--')}", "snapshots", commit),
          f"(a) snapshot_download(local_files_only=True) → the snapshot of commit {commit[:12]}")

    # (b) huggingface_hub populates, Precis reads offline (the servers are stopped first).
    hub_cache_b = os.path.join(work, "hf-b", "hub")
    os.environ["HF_HUB_OFFLINE"] = "0"
    huggingface_hub.constants.HF_HUB_OFFLINE = False
    snap_b = snapshot_download(REPO, cache_dir=hub_cache_b, endpoint=endpoint)
    check(os.path.isfile(os.path.join(snap_b, "model.safetensors")), f"(b) huggingface_hub {huggingface_hub.__version__} populated {snap_b}")
    hub.clear_log()
    r = run_precis(precis, summarize + ["--model", REPO], {"HF_ENDPOINT": endpoint, "HF_HUB_CACHE": hub_cache_b})
    file_requests = [x for x in hub.requests() if "/resolve/" in x[2] or x[0] == "cdn"]
    check(r.returncode == 0 and r.stdout == reference.stdout and not file_requests,
          f"(b) precis online with huggingface_hub's cache: same answer, no file requests ({len(file_requests)})")
    hub.stop()
    r = run_precis(precis, summarize + ["--model", REPO], {"HF_ENDPOINT": endpoint, "HF_HUB_CACHE": hub_cache_b, "HF_HUB_OFFLINE": "1"})
    check(r.returncode == 0 and r.stdout == reference.stdout, "(b) precis with HF_HUB_OFFLINE=1 reads huggingface_hub's cache: same answer")
    r = run_precis(precis, summarize + ["--model", REPO + "@" + commit], {"HF_HUB_CACHE": hub_cache_b, "HF_HUB_OFFLINE": "1"})
    check(r.returncode == 0 and r.stdout == reference.stdout, "(b) precis with HF_HUB_OFFLINE=1 and an explicit commit")

    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failure(s); huggingface_hub {huggingface_hub.__version__}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
