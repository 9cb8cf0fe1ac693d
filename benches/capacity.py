#!/usr/bin/env python3
"""Capacity search benchmark: how long `squall capacity` takes to a +-5 % answer against
squall-server with a known capacity (`--capacity N/s`), and how far the answers of several
searches spread. Loopback only; every search is bounded by its steps.

    cargo build --release --workspace --bins
    python3 benches/capacity.py [--capacity 2000] [--runs 3] [--step 10s] [--warmup 3s]
        [--scenario scenarios/kite/capacity-pace-reference.yaml] [--procs 2]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
SERVER = os.path.join(REL, "squall-server")
SQUALL = os.path.join(REL, "squall")


def start_server(capacity):
    p = subprocess.Popen(
        [SERVER, "--listen", "127.0.0.1:0", "--events", "0", "--log", "warn",
         "--capacity", f"{capacity}/s"],
        stdout=subprocess.PIPE, text=True,
    )
    m = re.search(r"listening on (\S+)", p.stdout.readline())
    if not m:
        p.kill()
        sys.exit("squall-server did not start")
    return p, m.group(1)


def search(addr, args):
    with tempfile.TemporaryDirectory() as d:
        start = time.monotonic()
        out = subprocess.run(
            [SQUALL, "capacity", os.path.join(ROOT, args.scenario),
             "--target", f"ws://{addr}/kite/ws", "--slo", args.slo, "--from", args.start,
             "--step", args.step, "--warmup", args.warmup, "--precision", "5%",
             "--schemas", os.path.join(ROOT, "schemas"), "--no-report", "--out", d]
            + (["--procs", str(args.procs)] if args.procs else []),
            capture_output=True, text=True, timeout=900,
        )
        took = time.monotonic() - start
        with open(os.path.join(d, "results.json")) as f:
            cap = json.load(f)["capacity"]
    print(out.stdout.strip().splitlines()[0], flush=True)
    return took, cap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--capacity", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slo", default="latency.rtt.p99 < 50ms")
    ap.add_argument("--start", default="100/s", help="--from")
    ap.add_argument("--step", default="10s")
    ap.add_argument("--warmup", default="3s")
    ap.add_argument("--scenario", default=os.path.join("scenarios", "kite", "capacity.yaml"),
                    help="relative to the repository")
    ap.add_argument("--procs", type=int, default=None, help="capacity --procs N")
    args = ap.parse_args()
    server, addr = start_server(args.capacity)
    rows = []
    try:
        for i in range(args.runs):
            took, cap = search(addr, args)
            rows.append((took, cap["sustained_rate"], cap["breaking_rate"], len(cap["steps"]), cap["outcome"]))
            print(f"run {i + 1}: {took:.0f} s, {len(cap['steps'])} steps, sustained {cap['sustained_rate']}/s, "
                  f"breaks at {cap['breaking_rate']}/s ({cap['outcome']})", flush=True)
    finally:
        server.kill()
    found = [r[1] for r in rows if r[1] is not None]
    times = [r[0] for r in rows]
    n = args.capacity
    print(f"{args.scenario}{f' --procs {args.procs}' if args.procs else ''}: capacity {n}/s, "
          f"step {args.step} (warm-up {args.warmup}), precision 5 %, SLO {args.slo!r}")
    print(f"time to answer: median {statistics.median(times):.0f} s (min {min(times):.0f}, max {max(times):.0f})")
    if found:
        print(f"answers: {found}; error vs {n}/s: "
              f"{min(found) / n - 1:+.1%} .. {max(found) / n - 1:+.1%}; spread {(max(found) - min(found)) / n:.1%}")


if __name__ == "__main__":
    main()
