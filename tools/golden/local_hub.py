"""A Hugging Face Hub on loopback, for the golden checks (check_hub_cache.py, check_hub_roundtrip.py).

Two real HTTP servers, as huggingface.co is laid out:

* the hub: the download side (`GET /api/models/{repo}[/revision/{rev}]`, `GET /api/models/{repo}/tree/{rev}[/{path}]`,
  `HEAD`/`GET /{repo}/resolve/{rev}/{path}` with `X-Repo-Commit` and `ETag`, LFS files redirected (302) to storage
  with `X-Linked-Etag` / `X-Linked-Size`) and the upload side Precis's pusher and huggingface_hub speak
  (`POST /api/repos/create`, `POST /api/models/{repo}/preupload/{rev}`, `POST /{repo}.git/info/lfs/objects/batch`,
  `POST /api/models/{repo}/commit/{rev}` with NDJSON lines `header`, `file`, `lfsFile`, `deletedFile`);
* "storage" (the CDN / S3 of the real Hub, another origin): LFS objects by sha256 with `Range`, basic uploads
  (`PUT /upload/{oid}`) and multipart ones (`PUT /part/{oid}/{n}` → ETag, `POST /complete/{oid}`).

Every commit is kept: `main` moves to the newest, and each commit id stays resolvable, so a pushed model is
downloadable by transformers / huggingface_hub / Precis at once. Writes need `Authorization: Bearer <token>`
when the hub has a token (reads stay public). Every request is logged as (server, method, path).

    hub = LocalHub(token="hf_secret").start()
    commit = hub.publish("org/name", {"config.json": b"{}"})
    ... hub.endpoint ...
    hub.stop()
"""
import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

#: LFS objects bigger than this are uploaded in parts of MULTIPART_CHUNK bytes.
MULTIPART_THRESHOLD = 512 * 1024
MULTIPART_CHUNK = 200_000


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_lfs(path: str, data_or_size) -> bool:
    size = data_or_size if isinstance(data_or_size, int) else len(data_or_size)
    return path.endswith((".safetensors", ".bin", ".model")) or size >= 10_000


class _Repo:
    def __init__(self):
        self.commits = {}  # commit id → {path: bytes}
        self.order = []  # commit ids, oldest first
        self.messages = {}
        self.refs = {}  # branch → commit id

    def files_at(self, rev):
        commit = self.refs.get(rev, rev)
        return commit, self.commits.get(commit)


class LocalHub:
    def __init__(self, token=None):
        self.token = token
        self.repos = {}
        self.objects = {}  # sha256 → bytes (LFS storage)
        self.parts = {}  # sha256 → {n: bytes}
        self.log = []
        self.lock = threading.Lock()
        self.hub = self.cdn = None

    # ---- state ----

    def publish(self, repo_id: str, files: dict, message: str = "publish", branch: str = "main") -> str:
        """A commit of exactly `files` (path → bytes) on `branch`; returns its id."""
        with self.lock:
            return self._commit(repo_id, dict(files), message, branch)

    def _commit(self, repo_id, files, message, branch):
        repo = self.repos.setdefault(repo_id, _Repo())
        parent = repo.refs.get(branch, "")
        seed = json.dumps([repo_id, parent, len(repo.order), message, sorted((p, sha256(d)) for p, d in files.items())])
        commit = hashlib.sha1(seed.encode()).hexdigest()
        for p, d in files.items():
            if is_lfs(p, d):
                self.objects[sha256(d)] = d
        repo.commits[commit] = files
        repo.order.append(commit)
        repo.messages[commit] = message
        repo.refs[branch] = commit
        return commit

    def head(self, repo_id: str, branch: str = "main"):
        """(commit id, {path: bytes}) of `branch`, or (None, None)."""
        with self.lock:
            repo = self.repos.get(repo_id)
            if repo is None or branch not in repo.refs:
                return None, None
            c = repo.refs[branch]
            return c, dict(repo.commits[c])

    def commits(self, repo_id: str):
        with self.lock:
            repo = self.repos.get(repo_id)
            return [(c, repo.messages[c]) for c in repo.order] if repo else []

    def requests(self):
        with self.lock:
            return list(self.log)

    def clear_log(self):
        with self.lock:
            self.log.clear()

    # ---- servers ----

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.hub.server_address[1]}"

    @property
    def storage(self):
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def start(self):
        self.cdn = _serve(_storage_handler(self))
        self.hub = _serve(_hub_handler(self))
        return self

    def stop(self):
        for s in (self.hub, self.cdn):
            if s is not None:
                s.shutdown()
                s.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _serve(handler_cls):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Handler(BaseHTTPRequestHandler):
    server_name = "?"
    hub: LocalHub = None

    def log_message(self, *a):
        pass

    def answer(self, status, headers=None, body=b"", head=False):
        headers = dict(headers or {})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def json(self, obj, status=200, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        self.answer(status, h, json.dumps(obj).encode())

    def error(self, status, code, message):
        self.json({"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message})

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def record(self):
        with self.hub.lock:
            self.hub.log.append((self.server_name, self.command, self.path))


def _storage_handler(hub: LocalHub):
    class Storage(_Handler):
        server_name = "cdn"

        def do_GET(self):
            self.record()
            parts = urlsplit(self.path).path.strip("/").split("/")
            with hub.lock:
                data = hub.objects.get(parts[-1]) if parts[0] == "objects" else None
            if data is None:
                return self.answer(404, {}, b"no such object")
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", f'"{parts[-1]}"')
            self.end_headers()
            self.wfile.write(data[start:])

        def do_PUT(self):
            self.record()
            parts = urlsplit(self.path).path.strip("/").split("/")
            data = self.body()
            if parts[0] == "upload" and len(parts) == 2:
                if sha256(data) != parts[1]:
                    return self.answer(400, {}, b"sha256 mismatch")
                with hub.lock:
                    hub.objects[parts[1]] = data
                return self.answer(200)
            if parts[0] == "part" and len(parts) == 3:
                with hub.lock:
                    hub.parts.setdefault(parts[1], {})[int(parts[2])] = data
                return self.answer(200, {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
            return self.answer(400, {}, b"bad storage request")

        def do_POST(self):
            self.record()
            parts = urlsplit(self.path).path.strip("/").split("/")
            if parts[0] != "complete" or len(parts) != 2:
                return self.answer(400, {}, b"bad storage request")
            oid = parts[1]
            req = json.loads(self.body() or b"{}")
            with hub.lock:
                stored = hub.parts.get(oid, {})
                data = bytearray()
                for i, p in enumerate(req.get("parts", [])):
                    n = p.get("partNumber")
                    chunk = stored.get(n)
                    if n != i + 1 or chunk is None or p.get("etag") != f'"{hashlib.md5(chunk).hexdigest()}"':
                        return self.answer(400, {}, b"bad part list")
                    data += chunk
                if req.get("oid") != oid or sha256(bytes(data)) != oid:
                    return self.answer(400, {}, b"sha256 mismatch")
                hub.objects[oid] = bytes(data)
                hub.parts.pop(oid, None)
            return self.json({"ok": True})

    Storage.hub = hub
    return Storage


def _hub_handler(hub: LocalHub):
    class Hub(_Handler):
        server_name = "hub"

        def authorized(self):
            if hub.token is None or self.headers.get("Authorization") == f"Bearer {hub.token}":
                return True
            self.error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return False

        def split_api(self, path, actions):
            """/api/models/{repo}/{action}/{rest} → (repo, action, rest); (repo, None, "") for /api/models/{repo}."""
            rest = path[len("/api/models/"):]
            for action in actions:
                marker = f"/{action}/"
                i = rest.find(marker)
                if i > 0:
                    return rest[:i], action, rest[i + len(marker):]
                if rest.endswith(f"/{action}"):
                    return rest[: -len(action) - 1], action, ""
            return rest.rstrip("/"), None, ""

        def info(self, repo_id, repo, commit, files):
            return {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                    "siblings": [{"rfilename": p} for p in sorted(files)]}

        def tree(self, files, prefix, recursive):
            prefix = prefix.strip("/")
            entries, folders = [], set()
            for p, d in sorted(files.items()):
                if prefix and not p.startswith(prefix + "/"):
                    continue
                rel = p[len(prefix) + 1:] if prefix else p
                if "/" in rel and not recursive:
                    folders.add((prefix + "/" if prefix else "") + rel.split("/")[0])
                    continue
                e = {"type": "file", "oid": git_blob_sha1(d), "size": len(d), "path": p}
                if is_lfs(p, d):
                    e["lfs"] = {"oid": sha256(d), "size": len(d), "pointerSize": 134}
                entries.append(e)
            return [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)] + entries

        def read(self, head):
            self.record()
            url = urlsplit(self.path)
            path = unquote(url.path)
            if path.startswith("/api/models/"):
                repo_id, action, rest = self.split_api(path, ["revision", "tree"])
                with hub.lock:
                    repo = hub.repos.get(repo_id)
                    if repo is None:
                        return self.error(404, "RepoNotFound", f"Repository {repo_id} not found")
                    rev, _, sub = rest.partition("/") if action else ("main", "", "")
                    commit, files = repo.files_at(rev or "main")
                if files is None:
                    return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                if action == "tree":
                    entries = self.tree(files, sub, "recursive=true" in url.query or "recursive=True" in url.query)
                    if sub and not entries:
                        return self.error(404, "EntryNotFound", f"{sub} does not exist on {rev}")
                    return self.json(entries)
                return self.json(self.info(repo_id, repo, commit, files))
            if "/resolve/" not in path:
                return self.error(404, "RepoNotFound", "no such route")
            repo_id, _, rest = path.lstrip("/").partition("/resolve/")
            rev, _, file = rest.partition("/")
            with hub.lock:
                repo = hub.repos.get(repo_id)
                commit, files = repo.files_at(rev) if repo else (None, None)
            if repo is None:
                return self.error(404, "RepoNotFound", f"Repository {repo_id} not found")
            if files is None:
                return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            if file not in files:
                return self.error(404, "EntryNotFound", f"{file} does not exist on {rev}")
            data = files[file]
            if is_lfs(file, data):
                oid = sha256(data)
                return self.answer(302, {"Location": f"{hub.storage}/objects/{oid}", "X-Repo-Commit": commit,
                                         "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(data)),
                                         "ETag": f'"{git_blob_sha1(data)}"'}, b"", head)
            return self.answer(200, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"',
                                     "Content-Length": str(len(data))}, data, head)

        def do_GET(self):
            self.read(False)

        def do_HEAD(self):
            self.read(True)

        def do_POST(self):
            self.record()
            path = unquote(urlsplit(self.path).path)
            body = self.body()
            if not self.authorized():
                return
            if path == "/api/repos/create":
                req = json.loads(body or b"{}")
                repo_id = "/".join(x for x in (req.get("organization"), req.get("name")) if x)
                with hub.lock:
                    if repo_id in hub.repos:
                        return self.error(409, "RepoExists", "You already created this model repo")
                    hub._commit(repo_id, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                                "initial commit", "main")
                return self.json({"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})
            if path.endswith(".git/info/lfs/objects/batch"):
                return self.lfs_batch(json.loads(body or b"{}"))
            if path.startswith("/api/models/"):
                repo_id, action, rev = self.split_api(path, ["preupload", "commit"])
                if action == "preupload":
                    return self.preupload(repo_id, rev, json.loads(body or b"{}"))
                if action == "commit":
                    return self.commit(repo_id, rev, body)
            return self.error(404, "NotFound", f"no route for POST {path}")

        def preupload(self, repo_id, rev, req):
            with hub.lock:
                repo = hub.repos.get(repo_id)
                _, files = repo.files_at(rev) if repo else (None, None)
            if files is None:
                return self.error(404, "RepoNotFound", f"Repository {repo_id} not found")
            out = []
            for f in req.get("files", []):
                p, size = f["path"], int(f["size"])
                lfs = is_lfs(p, size)
                e = {"path": p, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
                if p in files:
                    e["oid"] = sha256(files[p]) if lfs else git_blob_sha1(files[p])
                out.append(e)
            return self.json({"files": out, "commitOid": None})

        def lfs_batch(self, req):
            out = []
            for o in req.get("objects", []):
                oid, size = o["oid"], int(o["size"])
                e = {"oid": oid, "size": size}
                with hub.lock:
                    have = oid in hub.objects
                if not have:
                    if size > MULTIPART_THRESHOLD:
                        n = (size + MULTIPART_CHUNK - 1) // MULTIPART_CHUNK
                        header = {"chunk_size": str(MULTIPART_CHUNK)}
                        header.update({str(i): f"{hub.storage}/part/{oid}/{i}?X-Amz-Signature=s{i}" for i in range(1, n + 1)})
                        e["actions"] = {"upload": {"href": f"{hub.storage}/complete/{oid}", "header": header}}
                    else:
                        e["actions"] = {"upload": {"href": f"{hub.storage}/upload/{oid}?X-Amz-Signature=s"}}
                out.append(e)
            self.answer(200, {"Content-Type": "application/vnd.git-lfs+json"},
                        json.dumps({"transfer": "basic", "objects": out}).encode())

        def commit(self, repo_id, rev, body):
            lines = [json.loads(l) for l in body.split(b"\n") if l.strip()]
            if not lines or lines[0].get("key") != "header":
                return self.error(400, "BadRequest", "the first line must be the header")
            with hub.lock:
                repo = hub.repos.get(repo_id)
                _, files = repo.files_at(rev) if repo else (None, None)
                if files is None:
                    return self.error(404, "RepoNotFound", f"Repository {repo_id} not found")
                files = dict(files)
                for line in lines[1:]:
                    v = line.get("value", {})
                    if line.get("key") == "file":
                        files[v["path"]] = base64.b64decode(v["content"])
                    elif line.get("key") == "lfsFile":
                        data = hub.objects.get(v["oid"])
                        if data is None or len(data) != v["size"]:
                            return self.error(422, "BadRequest", f"LFS object {v['oid']} was not uploaded")
                        files[v["path"]] = data
                    elif line.get("key") == "deletedFile":
                        files.pop(v["path"], None)
                    else:
                        return self.error(400, "BadRequest", f"unknown key {line.get('key')}")
                commit = hub._commit(repo_id, files, lines[0]["value"].get("summary", ""), rev)
            return self.json({"success": True, "commitOid": commit, "commitUrl": f"{hub.endpoint}/{repo_id}/commit/{commit}"})

    Hub.hub = hub
    return Hub
