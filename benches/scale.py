#!/usr/bin/env python3
"""Many held connections on one machine: `squall run --procs P` against
`squall-server --procs S`, each connection subscribed to one Kite room and receiving an
event every 10 s (every frame checked), held for the hold phase. Reports peak RSS per
connection on both sides, the connect rate, and the merged result's counts beside the
server's own /metrics (summed over its processes). Loopback only; bounded in time.

    cargo build --release --bins
    python3 benches/scale.py --conns 100000 --procs 6 --server-procs 6 [--ramp 50s] [--hold 60s]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.environ.get("SQUALL_BIN_DIR", os.path.join(ROOT, "target", "release"))
SERVER = os.path.join(REL, "squall-server")
SQUALL = os.path.join(REL, "squall")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def tree_rss(pid):
    """RSS of a process and its children (the --procs processes), KiB."""
    return rss_kib(pid) + sum(rss_kib(c) for c in children(pid))


def metrics(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'squall_server_(\w+)\{protocol="kite"\} (\d+)', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=100000)
    ap.add_argument("--procs", type=int, default=6)
    ap.add_argument("--server-procs", type=int, default=6)
    ap.add_argument("--ramp", default="50s")
    ap.add_argument("--hold", default="60s")
    a = ap.parse_args()
    per_server = a.conns // a.server_procs + 2000
    server = subprocess.Popen(
        [SERVER, "--listen", "127.0.0.1:0", "--profile", "kite", "--procs", str(a.server_procs),
         "--threads", "1", "--events", "0.1", "--no-limit", "rate", "--no-limit", "per-client",
         "--max-connections", str(per_server), "--log", "error"],
        stdout=subprocess.PIPE, text=True,
    )
    addr = re.search(r"listening on (\S+)", server.stdout.readline()).group(1)
    time.sleep(1.0)
    server_base = tree_rss(server.pid)
    with open(os.path.join(ROOT, "benches", "scenarios", "held.yaml")) as f:
        text = f.read().replace("vus: 100000", f"vus: {a.conns}")
        text = text.replace("ramp: 50s", f"ramp: {a.ramp}").replace("hold: 60s", f"hold: {a.hold}")
    with tempfile.TemporaryDirectory() as d:
        scen = os.path.join(d, "held.yaml")
        with open(scen, "w") as f:
            f.write(text)
        out = os.path.join(d, "out")
        t0 = time.time()
        p = subprocess.Popen([SQUALL, "run", scen, "--target", f"ws://{addr}/kite/ws", "--procs",
                              str(a.procs), "--quiet", "--no-report", "--out", out,
                              "--schemas", os.path.join(ROOT, "schemas")])
        time.sleep(1.2)  # inside the 2 s before the common start: processes up, no load
        client_base = tree_rss(p.pid)
        peak_client = peak_server = peak_conns = 0
        while p.poll() is None and time.time() - t0 < 900:
            peak_client = max(peak_client, tree_rss(p.pid))
            peak_server = max(peak_server, tree_rss(server.pid))
            try:
                peak_conns = max(peak_conns, metrics(addr).get("connections_active", 0))
            except OSError:
                pass
            time.sleep(1.0)
        if p.poll() is None:
            p.terminate()
        code = p.wait(timeout=120)
        time.sleep(2.0)
        srv = metrics(addr)
        with open(os.path.join(out, "results.json")) as f:
            r = json.load(f)
    server.terminate()
    server.wait(timeout=60)
    c = r["counters"]
    series = r["series"]
    reach = next((pt["t"] for pt in series if pt["active_connections"] >= 0.99 * a.conns), None)
    rates = [b["active_connections"] - a_["active_connections"] for a_, b in zip(series, series[1:])]
    print(json.dumps({
        "exit_code": code,
        "connections_target": a.conns,
        "peak_connections_server": peak_conns,
        "peak_connections_squall": max((pt["active_connections"] for pt in series), default=0),
        "seconds_to_99pct": reach,
        "connect_rate_mean_per_s": round(0.99 * a.conns / reach) if reach else None,
        "connect_rate_peak_per_s": max(rates, default=0),
        "client_rss_kib": {"base": client_base, "peak": peak_client,
                           "per_conn": round((peak_client - client_base) / max(peak_conns, 1), 2)},
        "server_rss_kib": {"base": server_base, "peak": peak_server,
                           "per_conn": round((peak_server - server_base) / max(peak_conns, 1), 2)},
        "squall": {"opened": c["connections"]["opened"], "failed": c["connections"]["failed"],
                   "frames_in": c["frames_in"], "frames_out": c["frames_out"],
                   "bytes_out": c["bytes_out"], "frames_checked": r["violations"]["checked"],
                   "violations": r["violations"]["total"], "errors": c["errors"],
                   "status": r["status"], "health": r["health"].get("generator_saturated")},
        "server": {"opened": srv.get("connections_total"), "frames_in": srv.get("frames_in_total"),
                   "frames_out": srv.get("frames_out_total"), "bytes_in": srv.get("bytes_in_total")},
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
