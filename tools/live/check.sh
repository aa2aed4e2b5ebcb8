#!/usr/bin/env bash
# tools/live/check.sh [STATUS.json] [OUT.png]
#
# The live page against a recorded status: writes the page with `precis-coordinator live-page`
# (BIN_DIR, default .build/debug), serves it and the status (default tools/live/status-sample.json,
# recorded from a real run with `precis cluster status --json --history`) with `python3 -m
# http.server` on loopback, loads it in headless Chromium (screenshot.sh) and checks the page's
# self-check attributes: every curve drawn, one row per member, one per evaluation. The screenshot
# goes to OUT.png when given. Exit status 1 when a check fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
status=${1:-$here/status-sample.json}
out=${2:-}
bin=${BIN_DIR:-$repo/.build/debug}
work=$(mktemp -d)
server=""
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
"$bin/precis-coordinator" live-page --output-dir "$work/site" --status "$status" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/site" >"$work/http.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/status.json', timeout=1)" 2>/dev/null; then break; fi
    sleep 0.1
done
png=${out:-$work/page.png}
"$here/screenshot.sh" "http://127.0.0.1:$port/" "$png" "$work/dom.html" >/dev/null
python3 - "$status" "$work/dom.html" <<'PY'
import json, re, sys
status = json.load(open(sys.argv[1]))
dom = open(sys.argv[2]).read()
body = re.search(r"<body([^>]*)>", dom)
if not body:
    sys.exit("check: no <body> in the DOM")
attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
members = len(status.get("servers", [])) + len(status.get("workers", []))
want = {"curves-drawn": "3", "members": str(members), "evaluations": str(len(status.get("evaluations", []))),
        "stragglers": str(sum(1 for w in status.get("workers", []) if w.get("straggler")))}
bad = [f"{k}: {attrs.get(k)!r}, expected {v!r}" for k, v in want.items() if attrs.get(k) != v]
if int(attrs.get("polls", "0")) < 1:
    bad.append(f"polls: {attrs.get('polls')!r}, expected at least 1")
if bad:
    sys.exit("check: the live page's self-check failed: " + "; ".join(bad))
print("live page: " + ", ".join(f"{k}={attrs[k]}" for k in ["polls", "curves-drawn", "members", "evaluations", "stragglers"]))
PY
if [ -n "$out" ]; then echo "screenshot: $out"; fi
