#!/usr/bin/env python3
"""The JSON lines and the table of tools/bench/scaling.sh.

  scaling_table.py --line COORDINATOR_LOG   one run's JSON line on stdout, from the coordinator's
                                            @summary line and the RUN_* environment scaling.sh sets
  scaling_table.py --brief  < LINE          one run in one line
  scaling_table.py --table  < LINES         the table of runs
"""
import json
import os
import sys


def link_counters(text):
    """'name tx rx' lines → {name: (tx, rx)}."""
    out = {}
    for line in text.strip().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = (int(parts[1]), int(parts[2]))
    return out


def make_line(log):
    summary = None
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("@summary "):
                summary = json.loads(line[len("@summary "):])
    if summary is None:
        sys.exit(1)
    env = os.environ
    steps = int(env["RUN_STEPS"])
    timed = steps - 2
    before, after = link_counters(env["RUN_BEFORE"]), link_counters(env["RUN_AFTER"])
    links = {}
    for name in after:
        tx = (after[name][0] - before[name][0]) / timed / 1e6
        rx = (after[name][1] - before[name][1]) / timed / 1e6
        links[name] = {"tx_mb_per_step": round(tx, 3), "rx_mb_per_step": round(rx, 3)}
    rtt = env.get("RUN_RTT", "")
    line = {
        "model": env["RUN_MODEL"], "servers": int(env["RUN_SERVERS"]), "workers": int(env["RUN_WORKERS"]),
        "rate": env["RUN_RATE"], "delay_ms": float(env["RUN_DELAY"]), "rtt_ms": float(rtt) if rtt else None,
        "mtu": int(env["RUN_MTU"]), "keys": env["RUN_KEYS"] == "1", "codec": env["RUN_CODEC"], "pull_codec": env["RUN_PULL"],
        "overlap_pull": env.get("RUN_OVERLAP", "false") == "true",
        "steps": steps, "batch_per_worker": int(env["RUN_BATCH"]), "max_source_length": int(env["RUN_SRC"]),
        "max_target_length": int(env["RUN_TGT"]), "threads_per_worker": 1, "wall_s": int(env["RUN_WALL"]),
        "summary": summary, "links": links,
        # Every host of the run is a namespace on this machine: they share its cores (the model splits
        # the servers' update over at most this many).
        "cores": os.cpu_count(),
        # The host's 1-minute load average at the start and the end of the run (other work on the cores).
        "loadavg": [float(x) for x in env.get("RUN_LOAD", "").split()],
    }
    print(json.dumps(line, sort_keys=True))


def row(r):
    s = r["summary"]
    step, compute = s["s_per_step"], s["compute_s_per_step"]
    links = r["links"]
    servers = [v for k, v in links.items() if k.startswith("s")]
    workers = [v for k, v in links.items() if k.startswith("w")]
    srv_tx = max((v["tx_mb_per_step"] for v in servers), default=0)
    srv_rx = max((v["rx_mb_per_step"] for v in servers), default=0)
    wk_rx = max((v["rx_mb_per_step"] for v in workers), default=0)
    wk_tx = max((v["tx_mb_per_step"] for v in workers), default=0)
    return [r["model"], f'{r["servers"]}x{r["workers"]}', r["rate"], f'{r["delay_ms"]:g}',
            "-" if r.get("rtt_ms") is None else f'{r["rtt_ms"]:.2f}',
            f"{step:.3f}", f"{compute:.3f}", f'{s["encode_s_per_step"]:.3f}', f'{s["waiting_s_per_step"]:.3f}',
            f"{max(0.0, step - compute):.3f}", f"{100 * max(0.0, step - compute) / step:.0f} %",
            f'{s["gradient_wire_mb_per_step"]:.1f}', f'{s["parameter_wire_mb_per_step"]:.1f}',
            f"{srv_rx:.1f}", f"{srv_tx:.1f}", f"{wk_tx:.1f}", f"{wk_rx:.1f}"]


HEADER = ["model", "SxW", "rate", "delay ms", "rtt ms", "s/step", "compute", "encode", "waiting", "not hidden", "share",
          "grad MB", "param MB", "srv rx MB", "srv tx MB", "wkr tx MB", "wkr rx MB"]


def table(lines):
    rows = [row(json.loads(l)) for l in lines if l.strip()]
    widths = [max(len(HEADER[i]), *(len(r[i]) for r in rows)) if rows else len(HEADER[i]) for i in range(len(HEADER))]
    fmt = lambda cells: "  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(cells))
    print(fmt(HEADER))
    for r in rows:
        print(fmt(r))
    print("s/step, compute (slowest worker's forward + backward), encode, waiting: the coordinator's @summary (steps 3…N); "
          "not hidden = s/step − compute; grad/param MB: wire bytes per step summed over the workers; "
          "srv/wkr MB: the busiest server's and worker's link per step and direction (/sys/class/net counters).")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--line":
        make_line(sys.argv[2])
    elif sys.argv[1:] == ["--brief"]:
        r = row(json.loads(sys.stdin.read()))
        print("  " + ", ".join(f"{h} {c}" for h, c in zip(HEADER, r)))
    elif sys.argv[1:] == ["--table"]:
        table(sys.stdin.read().splitlines())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
