#!/usr/bin/env python3
"""Cross-check Precis's Hub downloads with huggingface_hub's cache (make check-hub-cache).

Serves a tiny model repository from a loopback "Hub" (the download URL layout of huggingface.co:
/api/models/{repo}/revision/{rev}, /api/models/{repo}/tree/{rev}, HEAD/GET /{repo}/resolve/{rev}/{path},
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
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

REPO = "precis-check/bart-tiny"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path: str, data: bytes) -> bool:
    return path.endswith((".safetensors", ".bin")) or len(data) >= 10_000


class Repo:
    def __init__(self, files: dict):
        self.files = files
        self.commit = hashlib.sha1(json.dumps(sorted((p, hashlib.sha256(d).hexdigest()) for p, d in files.items())).encode()).hexdigest()
        self.objects = {hashlib.sha256(d).hexdigest(): d for p, d in files.items() if is_lfs(p, d)}


def serve(handler_cls):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_servers(repo: Repo, log: list):
    class CDN(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            log.append(("cdn", self.command, self.path))
            oid = urlsplit(self.path).path.rsplit("/", 1)[-1]
            data = repo.objects.get(oid)
            if data is None:
                self.send_error(404)
                return
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", f'"{oid}"')
            self.end_headers()
            self.wfile.write(data[start:])

    cdn = serve(CDN)
    cdn_base = f"http://127.0.0.1:{cdn.server_address[1]}"

    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, headers, body=b"", head=False):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def json(self, obj):
            self.answer(200, {"Content-Type": "application/json"}, json.dumps(obj).encode())

        def route(self, head):
            log.append(("hub", self.command, self.path))
            path = unquote(urlsplit(self.path).path)
            api = f"/api/models/{REPO}/"
            if path.startswith(api + "revision/"):
                rev = path[len(api + "revision/"):]
                if rev not in ("main", repo.commit):
                    return self.answer(404, {"X-Error-Code": "RevisionNotFound"})
                return self.json({"id": REPO, "sha": repo.commit, "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
            if path.startswith(api + "tree/"):
                entries = []
                for p, d in sorted(repo.files.items()):
                    e = {"type": "file", "oid": git_blob_sha1(d), "size": len(d), "path": p}
                    if is_lfs(p, d):
                        e["lfs"] = {"oid": hashlib.sha256(d).hexdigest(), "size": len(d), "pointerSize": 134}
                    entries.append(e)
                return self.json(entries)
            prefix = f"/{REPO}/resolve/"
            if not path.startswith(prefix):
                return self.answer(404, {"X-Error-Code": "RepositoryNotFound"})
            rev, _, file = path[len(prefix):].partition("/")
            if rev not in ("main", repo.commit) or file not in repo.files:
                return self.answer(404, {"X-Error-Code": "EntryNotFound"})
            data = repo.files[file]
            if is_lfs(file, data):
                oid = hashlib.sha256(data).hexdigest()
                return self.answer(302, {"Location": f"{cdn_base}/objects/{oid}", "X-Repo-Commit": repo.commit,
                                         "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(data)),
                                         "ETag": f'"{git_blob_sha1(data)}"'}, b"", head)
            return self.answer(200, {"X-Repo-Commit": repo.commit, "ETag": f'"{git_blob_sha1(data)}"',
                                     "Content-Length": str(len(data))}, data, head)

        def do_GET(self):
            self.route(False)

        def do_HEAD(self):
            self.route(True)

    hub = serve(Hub)
    return hub, cdn


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
    repo = Repo(files)
    log = []
    hub, cdn = make_servers(repo, log)
    endpoint = f"http://127.0.0.1:{hub.server_address[1]}"
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
    check(snap == os.path.join(hub_cache_a, f"models--{REPO.replace('/', '--')}", "snapshots", repo.commit),
          f"(a) snapshot_download(local_files_only=True) → the snapshot of commit {repo.commit[:12]}")

    # (b) huggingface_hub populates, Precis reads offline (the servers are stopped first).
    hub_cache_b = os.path.join(work, "hf-b", "hub")
    os.environ["HF_HUB_OFFLINE"] = "0"
    huggingface_hub.constants.HF_HUB_OFFLINE = False
    snap_b = snapshot_download(REPO, cache_dir=hub_cache_b, endpoint=endpoint)
    check(os.path.isfile(os.path.join(snap_b, "model.safetensors")), f"(b) huggingface_hub {huggingface_hub.__version__} populated {snap_b}")
    log.clear()
    r = run_precis(precis, summarize + ["--model", REPO], {"HF_ENDPOINT": endpoint, "HF_HUB_CACHE": hub_cache_b})
    file_requests = [x for x in log if "/resolve/" in x[2] or x[0] == "cdn"]
    check(r.returncode == 0 and r.stdout == reference.stdout and not file_requests,
          f"(b) precis online with huggingface_hub's cache: same answer, no file requests ({len(file_requests)})")
    hub.shutdown(); cdn.shutdown()
    hub.server_close(); cdn.server_close()
    r = run_precis(precis, summarize + ["--model", REPO], {"HF_ENDPOINT": endpoint, "HF_HUB_CACHE": hub_cache_b, "HF_HUB_OFFLINE": "1"})
    check(r.returncode == 0 and r.stdout == reference.stdout, "(b) precis with HF_HUB_OFFLINE=1 reads huggingface_hub's cache: same answer")
    r = run_precis(precis, summarize + ["--model", REPO + "@" + repo.commit], {"HF_HUB_CACHE": hub_cache_b, "HF_HUB_OFFLINE": "1"})
    check(r.returncode == 0 and r.stdout == reference.stdout, "(b) precis with HF_HUB_OFFLINE=1 and an explicit commit")

    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failure(s); huggingface_hub {huggingface_hub.__version__}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
