#!/usr/bin/env python3
"""Draws training runs' learning curves as an SVG (no plotting library needed): the training loss
against wall-clock minutes (left) and ROUGE-1 against minutes (right), with the PyTorch recipe's
published figures beside them.

  python3 tools/bench/learning_curves.py SPEC.json [RECORDED.json] > docs/learning-curves.svg

SPEC is a JSON list of runs, each
  {"label": "...", "stages": ["runs/a", "runs/b"], "test": "runs/b/eval-test/metrics.json"}
where each stage is a run folder (trainer_state.json, train_results.json) trained after the one
before it: its steps are placed on the clock after the earlier stages' train_runtime, spread
evenly over its own (trainer_state.json logs steps, not times). The loss is the summarization
stage's (the last one); a denoising stage shows as the gap before it. `test` (optional) is a
`precis evaluate` metrics.json: its ROUGE-1 is a point at the run's end. Evaluations logged during
training (eval_rouge1, greedy on the validation examples) are drawn as a dashed line.

RECORDED (default: SPEC's name with "-recorded" before ".json") keeps each run's curves by label,
so the figure can be drawn again where the run folders are gone: a run whose folders are present
is read from them and its curves written into RECORDED (temp file, then rename); a run whose
folders are missing is drawn from RECORDED; a run in neither is skipped, with a line on stderr.
"""
import json
import os
import sys

# The PyTorch + transformers recipe (same model size, tokenizer size, schedule) on a comparable 2-core
# machine, from the project notes: validation R1 (greedy, 200 dialogues) 28.8 after 28 minutes; test
# R1 36.85 (beam 4) after 90 minutes.
PYTORCH = {"validation": (28.0, 28.8), "test": (90.0, 36.85)}


def load(path):
    with open(path) as f:
        return json.load(f)


def run_curves(run):
    offset = 0.0
    loss, evals = [], []
    for i, stage in enumerate(run["stages"]):
        state = load(os.path.join(stage, "trainer_state.json"))
        runtime = load(os.path.join(stage, "train_results.json"))["train_runtime"] / 60
        hist = state["log_history"]
        steps = max([h["step"] for h in hist if "step" in h] + [1])
        if i == len(run["stages"]) - 1:
            loss = [[offset + h["step"] / steps * runtime, h["loss"]] for h in hist if "loss" in h]
            evals = [[offset + h["step"] / steps * runtime, h["eval_rouge1"]] for h in hist if "eval_rouge1" in h]
        offset += runtime
    test = None
    if run.get("test") and os.path.exists(run["test"]):
        m = load(run["test"])
        test = [offset + m.get("eval_runtime", 0) / 60, m["eval_rouge1"]]
    return {"label": run["label"], "loss": loss, "evals": evals, "test": test, "end": offset}


def save(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    spec = sys.argv[1]
    if len(sys.argv) == 3:
        recorded_path = sys.argv[2]
    else:
        stem = spec[:-len(".json")] if spec.endswith(".json") else spec
        recorded_path = stem + "-recorded.json"
    recorded = load(recorded_path) if os.path.exists(recorded_path) else {}
    runs, changed = [], False
    for r in load(spec):
        if all(os.path.exists(os.path.join(s, "trainer_state.json")) for s in r["stages"]):
            try:
                curves = run_curves(r)
            except (OSError, KeyError, ValueError) as e:
                print(f"skipped {r['label']}: {e}", file=sys.stderr)
                continue
            kept = {k: curves[k] for k in ("loss", "evals", "test", "end")}
            kept["source"] = "read from " + ", ".join(r["stages"])
            if recorded.get(r["label"]) != kept:
                recorded[r["label"]], changed = kept, True
            runs.append(curves)
        elif r["label"] in recorded:
            runs.append(dict(recorded[r["label"]], label=r["label"]))
        else:
            print(f"skipped {r['label']}: no run folders ({', '.join(r['stages'])}) and not in {recorded_path}",
                  file=sys.stderr)
    if changed:
        save(recorded_path, recorded)
    W, H, PW, T, B, L = 920, 380, 340, 40, 50, 55
    tmax = max([r["end"] for r in runs] + [PYTORCH["test"][0]]) * 1.05
    colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']

    def panel(x0, title, ylo, yhi, yticks):
        def x(t): return x0 + t / tmax * PW
        def y(v): return T + (1 - (v - ylo) / (yhi - ylo)) * (H - T - B)
        out.append(f'<text x="{x0}" y="22" font-size="13">{title}</text>')
        for v in yticks:
            out.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{x0 - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        for t in range(0, int(tmax) + 1, 30):
            out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{T}" y2="{H - B}" stroke="#eee"/>')
            out.append(f'<text x="{x(t):.1f}" y="{H - B + 16}" text-anchor="middle">{t}</text>')
        out.append(f'<text x="{x0 + PW / 2}" y="{H - 14}" text-anchor="middle">minutes of training</text>')
        return x, y

    lo, hi = 1.5, 7.0   # the loss axis; a loss outside it is drawn at its edge
    x, y = panel(L, "Training loss (label-smoothed) against minutes", lo, hi, [2, 3, 4, 5, 6, 7])
    for i, r in enumerate(runs):
        pts = " ".join(f"{x(t):.1f},{y(min(max(v, lo), hi)):.1f}" for t, v in r["loss"])
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colors[i % 6]}" stroke-width="1.5"/>')
    x0 = L + PW + 80
    x, y = panel(x0, "ROUGE-1 against minutes", 10, 45, [10, 20, 30, 36.85, 40, 45])
    for i, r in enumerate(runs):
        c = colors[i % 6]
        if r["evals"]:
            pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in r["evals"])
            out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="1.5" stroke-dasharray="5 3"/>')
        if r["test"]:
            t, v = r["test"]
            out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="4.5" fill="{c}"/>')
    for kind, (t, v) in PYTORCH.items():
        shape = f'<rect x="{x(t) - 4:.1f}" y="{y(v) - 4:.1f}" width="8" height="8" fill="black"/>' if kind == "test" else \
            f'<rect x="{x(t) - 4:.1f}" y="{y(v) - 4:.1f}" width="8" height="8" fill="none" stroke="black"/>'
        out.append(shape)
    ly = T + 8
    for i, r in enumerate(runs):
        out.append(f'<circle cx="{x0 + PW + 14}" cy="{ly + 18 * i - 4}" r="4.5" fill="{colors[i % 6]}"/>')
        out.append(f'<text x="{x0 + PW + 24}" y="{ly + 18 * i}">{r["label"]}</text>')
    n = len(runs)
    out.append(f'<rect x="{x0 + PW + 10}" y="{ly + 18 * n - 8}" width="8" height="8" fill="black"/>')
    out.append(f'<text x="{x0 + PW + 24}" y="{ly + 18 * n}">PyTorch recipe, test</text>')
    out.append(f'<rect x="{x0 + PW + 10}" y="{ly + 18 * (n + 1) - 8}" width="8" height="8" fill="none" stroke="black"/>')
    out.append(f'<text x="{x0 + PW + 24}" y="{ly + 18 * (n + 1)}">PyTorch recipe, validation greedy</text>')
    out.append(f'<text x="{x0 + PW + 10}" y="{ly + 18 * (n + 2)}">dots: test, beam 4, lp 1.2</text>')
    out.append(f'<text x="{x0 + PW + 10}" y="{ly + 18 * (n + 3)}">dashes: validation greedy, 200</text>')
    out.append("</svg>")
    # The legend needs room on the right: about 6.5 px a character at font-size 12.
    legend = max([250] + [int(6.5 * len(r["label"])) + 40 for r in runs])
    out[0] = out[0].replace(f'width="{W}"', f'width="{x0 + PW + legend}"')
    out[1] = out[1].replace(f'width="{W}"', f'width="{x0 + PW + legend}"')
    print("\n".join(out))


if __name__ == "__main__":
    main()
