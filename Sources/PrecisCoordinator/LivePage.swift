import Foundation

/// The live page: one self-contained HTML document (inline CSS and JavaScript, no external assets,
/// works offline) that polls `status.json` beside it every 2 s and draws the run: loss and
/// learning-rate curves (evaluation losses as points), throughput, the ROUGE table of the
/// evaluations, the members with their state and rates (stragglers marked), checkpoints and hub
/// pushes. `status.json` is `StatusBoard.statusJSON()` (a `StatusReport` with `history`).
///
/// Serving it (an HTTP listener, on the coordinator's side): `GET /` → `LivePage.html`
/// (`text/html; charset=utf-8`), `GET /status.json` → `coordinator.statusBoard.statusJSON()`
/// (`application/json`, `Cache-Control: no-store`). Both are safe to call from any thread.
///
/// After each successful poll the page sets attributes on `<body>` that a headless browser can read
/// (`tools/live/screenshot.sh`, `--dump-dom`): `data-polls` (successful polls), `data-curves-drawn`
/// (charts drawn with at least one point), `data-members` (rows in the member table),
/// `data-evaluations` (rows in the ROUGE table), `data-stragglers`.
public enum LivePage {
    public static let contentType = "text/html; charset=utf-8"
    public static let statusContentType = "application/json"

    /// The status the page reads, from `board` (the same bytes as `board.statusJSON()`).
    public static func statusJSON(_ board: StatusBoard) -> Data { board.statusJSON() }

    public static let html: String = ##"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Precis run</title>
<style>
  :root { --bg: #f6f7f9; --card: #ffffff; --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2f6fed; --warn: #c4320a; --ok: #12805c; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
  header { padding: 14px 20px; background: var(--ink); color: #fff; display: flex; flex-wrap: wrap; gap: 6px 22px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0 10px 0 0; }
  header .fig b { font-variant-numeric: tabular-nums; }
  header .fig span { color: #aab3c5; margin-right: 4px; }
  #conn { margin-left: auto; color: #aab3c5; }
  #conn.bad { color: #ffb4a2; }
  .bar { height: 6px; background: #394257; width: 100%; flex-basis: 100%; border-radius: 3px; overflow: hidden; }
  .bar div { height: 100%; background: #6ea2ff; width: 0; transition: width .4s; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; padding: 14px 20px 24px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; overflow-x: auto; }
  section h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
  section.wide { grid-column: 1 / -1; }
  @media (min-width: 1000px) { section.span2 { grid-column: span 2; } }
  canvas { width: 100%; height: 220px; display: block; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  td.wrap { white-space: normal; word-break: break-all; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  td.num, th.num { text-align: right; }
  tr.straggler td { background: #fff4ed; }
  .state-alive { color: var(--ok); } .state-silent { color: #b54708; } .state-lost, .state-left { color: var(--warn); }
  .tag { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; background: var(--warn); color: #fff; }
  .empty { color: var(--muted); font-style: italic; }
  .legend { font-size: 12px; color: var(--muted); margin-top: 4px; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 10px; vertical-align: -1px; }
</style>
</head>
<body data-polls="0" data-curves-drawn="0" data-members="0" data-evaluations="0" data-stragglers="0">
<header>
  <h1>Precis</h1>
  <div class="fig"><span>state</span><b id="state">…</b></div>
  <div class="fig"><span>step</span><b id="step">–</b></div>
  <div class="fig"><span>epoch</span><b id="epoch">–</b></div>
  <div class="fig"><span>loss</span><b id="loss">–</b></div>
  <div class="fig"><span>lr</span><b id="lr">–</b></div>
  <div class="fig"><span>grad norm</span><b id="gnorm">–</b></div>
  <div class="fig"><span>ex/s</span><b id="exs">–</b></div>
  <div class="fig"><span>elapsed</span><b id="elapsed">–</b></div>
  <div class="fig"><span>ETA</span><b id="eta">–</b></div>
  <div id="conn">connecting…</div>
  <div class="bar"><div id="progress"></div></div>
</header>
<main>
  <section><h2>Loss</h2><canvas id="lossChart"></canvas>
    <div class="legend"><i style="background:#2f6fed"></i>training loss (step mean)<i style="background:#c4320a"></i>evaluation loss</div></section>
  <section><h2>Learning rate</h2><canvas id="lrChart"></canvas></section>
  <section><h2>Throughput (examples/s since start)</h2><canvas id="exsChart"></canvas></section>
  <section class="span2"><h2>Evaluations (ROUGE)</h2><div id="evals"></div></section>
  <section><h2>Checkpoints</h2><div id="checkpoints"></div></section>
  <section class="wide"><h2>Members</h2><div id="members"></div></section>
  <section class="wide"><h2>Hub pushes</h2><div id="pushes"></div></section>
</main>
<script>
"use strict";
const POLL_MS = 2000;
let polls = 0;

function el(id) { return document.getElementById(id); }
function esc(s) { return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
function num(x, d) { return (typeof x === "number" && isFinite(x)) ? x.toFixed(d) : "–"; }
function sci(x) { return (typeof x === "number" && isFinite(x)) ? x.toExponential(2) : "–"; }
function dur(s) {
  if (typeof s !== "number" || !isFinite(s) || s < 0) return "–";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
  return h > 0 ? h + "h " + String(m).padStart(2, "0") + "m" : m > 0 ? m + "m " + String(r).padStart(2, "0") + "s" : r + "s";
}

// A line chart on a canvas: series [{points: [[x, y]], color, dots}], with axes and tick labels.
// Returns true when at least one point was drawn.
function chart(canvas, series, opts) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400, h = canvas.clientHeight || 220;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const all = series.flatMap(s => s.points).filter(p => isFinite(p[0]) && isFinite(p[1]) && (!opts.log || p[1] > 0));
  g.font = "11px system-ui, sans-serif"; g.fillStyle = "#667085";
  if (all.length === 0) { g.fillText("no data yet", w / 2 - 30, h / 2); return false; }
  let x0 = Math.min(...all.map(p => p[0])), x1 = Math.max(...all.map(p => p[0]));
  let y0 = Math.min(...all.map(p => p[1])), y1 = Math.max(...all.map(p => p[1]));
  if (opts.zero) y0 = Math.min(0, y0);
  if (x1 === x0) { x1 = x0 + 1; }
  if (y1 === y0) { const pad = Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad; }
  const L = 58, R = 12, T = 10, B = 24;
  const X = x => L + (x - x0) / (x1 - x0) * (w - L - R);
  const Y = y => h - B - (y - y0) / (y1 - y0) * (h - T - B);
  g.strokeStyle = "#e4e7ec"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4, py = Math.round(Y(y)) + 0.5;
    g.beginPath(); g.moveTo(L, py); g.lineTo(w - R, py); g.stroke();
    g.fillText(opts.fmt ? opts.fmt(y) : y.toPrecision(3), 4, py + 4);
  }
  for (let i = 0; i <= 4; i++) {
    const x = x0 + (x1 - x0) * i / 4;
    g.fillText(String(Math.round(x)), Math.min(X(x) - 8, w - R - 24), h - 6);
  }
  let drawn = false;
  for (const s of series) {
    const pts = s.points.filter(p => isFinite(p[0]) && isFinite(p[1]));
    if (pts.length === 0) continue;
    drawn = true;
    g.strokeStyle = s.color; g.fillStyle = s.color; g.lineWidth = 1.6;
    if (s.dots || pts.length === 1) {
      for (const p of pts) { g.beginPath(); g.arc(X(p[0]), Y(p[1]), 3.5, 0, 2 * Math.PI); g.fill(); }
    } else {
      g.beginPath();
      pts.forEach((p, i) => i === 0 ? g.moveTo(X(p[0]), Y(p[1])) : g.lineTo(X(p[0]), Y(p[1])));
      g.stroke();
    }
  }
  return drawn;
}

function table(head, rows, numeric, rowClass) {
  if (rows.length === 0) return '<div class="empty">none yet</div>';
  // numeric[i]: true (a number column), "wrap" (long text that may wrap) or false.
  const cls = i => numeric[i] === true ? ' class="num"' : numeric[i] === "wrap" ? ' class="wrap"' : "";
  let out = "<table><tr>" + head.map((h, i) => "<th" + (numeric[i] === true ? ' class="num"' : "") + ">" + esc(h) + "</th>").join("") + "</tr>";
  rows.forEach((r, k) => {
    out += "<tr" + (rowClass && rowClass[k] ? ' class="' + rowClass[k] + '"' : "") + ">" +
      r.map((c, i) => "<td" + cls(i) + ">" + c + "</td>").join("") + "</tr>";
  });
  return out + "</table>";
}

function render(s) {
  const hist = Array.isArray(s.history) ? s.history : [];
  const evals = Array.isArray(s.evaluations) ? s.evaluations : [];
  el("state").textContent = s.phase || s.state || "?";
  el("step").textContent = (s.step ?? "–") + " / " + (s.max_steps ?? "–");
  el("epoch").textContent = num(s.train_epoch, 2);
  el("loss").textContent = num(s.loss, 4);
  el("lr").textContent = sci(s.learning_rate);
  el("gnorm").textContent = num(s.grad_norm, 3);
  el("exs").textContent = num(s.examples_per_second, 1);
  el("elapsed").textContent = dur(s.elapsed_seconds);
  el("eta").textContent = dur(s.eta_seconds);
  el("progress").style.width = (s.max_steps > 0 ? Math.min(100, 100 * s.step / s.max_steps) : 0) + "%";

  let curves = 0;
  if (chart(el("lossChart"), [
    { points: hist.map(p => [p.step, p.loss]), color: "#2f6fed" },
    { points: evals.filter(e => e.metrics && typeof e.metrics.eval_loss === "number").map(e => [e.step, e.metrics.eval_loss]), color: "#c4320a", dots: true },
  ], {})) curves++;
  if (chart(el("lrChart"), [{ points: hist.map(p => [p.step, p.lr]), color: "#7a5af8" }], { fmt: y => y.toExponential(1), zero: true })) curves++;
  if (chart(el("exsChart"), [{ points: hist.map(p => [p.step, p.examples_per_second]), color: "#12805c" }], { zero: true, fmt: y => y.toFixed(1) })) curves++;

  const keys = ["eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rougeLsum", "eval_gen_len"];
  el("evals").innerHTML = table(["step", "loss", "ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum", "gen len"],
    evals.slice().reverse().map(e => [e.step].concat(keys.map(k => num(e.metrics ? e.metrics[k] : undefined, k === "eval_loss" ? 4 : 2)))),
    [true, true, true, true, true, true, true]);

  const members = (s.servers || []).map(m => Object.assign({ role: "server" }, m)).concat((s.workers || []).map(m => Object.assign({ role: "worker" }, m)));
  const worker = m => m.role === "worker";
  el("members").innerHTML = table(["name", "role", "host", "pid", "state", "heard", "contributions", "examples/s", "s/contribution", "contrib/s", "task age", ""],
    members.map(m => [esc(m.name), esc(m.role), esc(m.host), m.pid,
      '<span class="state-' + esc(m.state || (m.alive ? "alive" : "lost")) + '">' + esc(m.state || (m.alive ? "alive" : "lost")) + "</span>",
      num(m.seconds_since_heartbeat, 1) + " s ago",
      worker(m) ? m.contributions : "–", worker(m) ? num(m.examples_per_second, 1) : "–",
      worker(m) ? num(m.seconds_per_contribution, 3) : "–", worker(m) ? num(m.contributions_per_second, 2) : "–",
      worker(m) ? num(m.task_age_seconds, 1) + " s" : "–",
      m.straggler ? '<span class="tag">straggler</span>' : ""]),
    [false, false, false, true, false, true, true, true, true, true, true, false],
    members.map(m => m.straggler ? "straggler" : ""));

  const cks = Array.isArray(s.checkpoints) ? s.checkpoints : [];
  el("checkpoints").innerHTML = table(["step", "folder", "MB", "seconds", ""],
    cks.slice().reverse().map(c => [c.step, esc(c.path || "—"), num(c.bytes / 1e6, 1), num(c.seconds, 2),
      c.error ? '<span class="tag">' + esc(c.error) + "</span>" : c.removed ? "removed" : ""]), [true, "wrap", true, true, false]);
  const pushes = Array.isArray(s.pushes) ? s.pushes : [];
  el("pushes").innerHTML = table(["folder", "message", "outcome", "attempts"],
    pushes.slice().reverse().map(p => [esc(p.folder), esc(p.message), esc(p.outcome) + (p.error ? " (" + esc(p.error) + ")" : ""), p.attempts]),
    ["wrap", false, "wrap", true]);

  const b = document.body.dataset;
  b.curvesDrawn = String(curves);
  b.members = String(members.length);
  b.evaluations = String(evals.length);
  b.stragglers = String(members.filter(m => m.straggler).length);
}

async function poll() {
  try {
    const r = await fetch("status.json", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const s = await r.json();
    render(s);
    polls++;
    document.body.dataset.polls = String(polls);
    el("conn").className = "";
    el("conn").textContent = "updated " + (s.time ? s.time.replace("T", " ").replace(/\.\d+Z$/, "Z") : new Date().toISOString());
  } catch (e) {
    el("conn").className = "bad";
    el("conn").textContent = "no answer (" + e.message + "); retrying";
  }
}

poll();
setInterval(poll, POLL_MS);
</script>
</body>
</html>
"""##
}
