#!/usr/bin/env bash
# tools/live/screenshot.sh URL OUT.png [DOM.html]
#
# Loads URL in headless Chromium (Debian's `chromium`; $CHROMIUM overrides the binary), lets the
# page run for a few seconds of virtual time (it polls status.json every 2 s), and writes a
# screenshot to OUT.png and, when DOM.html is given, the DOM after the scripts ran (`--dump-dom`),
# where the live page's self-check attributes are (`data-curves-drawn`, `data-members`, ...).
# $WINDOW (default 1400,1100) is the window size; $BUDGET_MS (default 6000) the virtual time.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 URL OUT.png [DOM.html]" >&2; exit 1; fi
url=$1 out=$2 dom=${3:-}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$chromium" ]; then echo "$0: no chromium found (apt-get install chromium, or set CHROMIUM)" >&2; exit 1; fi
window=${WINDOW:-1400,1100}
budget=${BUDGET_MS:-6000}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-extensions
       --user-data-dir="$profile" --window-size="$window" --virtual-time-budget="$budget" --run-all-compositor-stages-before-draw)
"$chromium" "${flags[@]}" --screenshot="$out" "$url" >/dev/null 2>"$profile/screenshot.err" || {
    echo "$0: chromium failed to take the screenshot:" >&2; cat "$profile/screenshot.err" >&2; exit 1; }
[ -s "$out" ] || { echo "$0: no screenshot written to $out" >&2; cat "$profile/screenshot.err" >&2; exit 1; }
if [ -n "$dom" ]; then
    "$chromium" "${flags[@]}" --dump-dom "$url" >"$dom" 2>"$profile/dom.err" || {
        echo "$0: chromium failed to dump the DOM:" >&2; cat "$profile/dom.err" >&2; exit 1; }
fi
echo "wrote $out${dom:+ and $dom}"
