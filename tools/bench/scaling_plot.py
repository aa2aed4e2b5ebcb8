#!/usr/bin/env python3
"""Draws `precis bench scaling --json`'s predictions as an SVG (no plotting library needed):
efficiency (compute ÷ step) against worker hosts, one line per model and link rate.

  .build/release/precis bench scaling --json | python3 tools/bench/scaling_plot.py > docs/scaling.svg
"""
import json
import math
import sys

rows = [json.loads(l[len("@prediction "):]) for l in sys.stdin if l.startswith("@prediction ")]
if not rows:
    sys.exit("no @prediction lines on stdin (run `precis bench scaling --json`)")

W, H, L, R, T, B = 640, 400, 60, 170, 30, 50
hosts = sorted({r["hosts"] for r in rows})
xmin, xmax = math.log2(hosts[0]), math.log2(hosts[-1])
def x(h): return L + (math.log2(h) - xmin) / max(xmax - xmin, 1e-9) * (W - L - R)
def y(e): return T + (1 - e) * (H - T - B)

colors = {"bart-small": "#1b9e77", "bart-base": "#d95f02", "bart-large": "#7570b3"}
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="18" font-size="13">Predicted efficiency (compute ÷ step), servers chosen for ≥ 90 %</text>']
for e in [0, 0.25, 0.5, 0.75, 0.9, 1.0]:
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{y(e):.1f}" y2="{y(e):.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{L - 6}" y="{y(e) + 4:.1f}" text-anchor="end">{int(e * 100)} %</text>')
for h in hosts:
    out.append(f'<line x1="{x(h):.1f}" x2="{x(h):.1f}" y1="{T}" y2="{H - B}" stroke="#eee"/>')
    out.append(f'<text x="{x(h):.1f}" y="{H - B + 16}" text-anchor="middle">{h}</text>')
out.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">worker hosts</text>')
series = {}
for r in rows:
    series.setdefault((r["model"], r["gbit"]), []).append(r)
for i, ((model, gbit), rs) in enumerate(sorted(series.items())):
    rs.sort(key=lambda r: r["hosts"])
    pts = " ".join(f'{x(r["hosts"]):.1f},{y(r["efficiency"]):.1f}' for r in rs)
    dash = "" if gbit == min(g for _, g in series) else ' stroke-dasharray="6 4"'
    color = colors.get(model, "#444")
    out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
    ly = T + 14 + 18 * i
    out.append(f'<line x1="{W - R + 10}" x2="{W - R + 34}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" stroke-width="2"{dash}/>')
    out.append(f'<text x="{W - R + 40}" y="{ly}">{model}, {gbit:g} Gbit/s</text>')
out.append("</svg>")
print("\n".join(out))
