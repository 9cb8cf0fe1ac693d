#!/usr/bin/env python3
"""Server benchmarks: squall-server against the bare tokio-tungstenite echo server
(benches/bare_echo.rs), both driven by the same raw client (benches/raw_client.rs), in the
same run, rounds alternating, medians. Loopback only; every run is bounded.

    cargo build --release --workspace --bins --examples
    python3 benches/server.py echo [--rounds 5]     # round trips/s: bare echo vs squall-server routes
    python3 benches/server.py fanout                # deliveries/s, 1,000 subscribers in one Kite room
    python3 benches/server.py idle [--conns 10000]  # squall-server RSS per idle connection
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from run import rss_kib, server_connections  # benches/run.py, beside this file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
SERVER = os.path.join(REL, "squall-server")
BARE = os.path.join(REL, "examples", "bare-echo")
RAW = os.path.join(REL, "examples", "raw-client")
SECONDS = 5


def start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on (\S+)", line)
    if not m:
        p.kill()
        sys.exit(f"{cmd[0]} did not start: {line!r}")
    return p, m.group(1)


def squall_server(*extra, events=0):
    return start([SERVER, "--listen", "127.0.0.1:0", "--events", str(events), "--no-limit", "rate",
                  "--no-limit", "per-client", "--log", "warn", *extra])


def stop(p):
    p.terminate()
    p.wait(timeout=15)


def raw(url, *extra, timeout=120):
    out = subprocess.run([RAW, "--url", url, *extra], capture_output=True, text=True,
                         timeout=timeout, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def rate(url, in_flight=16, *extra):
    return raw(url, "--connections", "100", "--in-flight", str(in_flight),
               "--duration", f"{SECONDS}s", *extra)["rate"]


COVETPY_ECHO = ('{"type":"rpc_call","id":"{id}","data":{"method":"echo",'
                '"params":{"message":"hello","n":42}}}')

# (label, how to start the server, path, extra raw-client flags)
TARGETS = [
    ("bare echo, per-core runtimes", lambda: start([BARE, "--runtime", "per-core"]), "/", ["--no-welcome"]),
    ("bare echo, one multi-thread runtime", lambda: start([BARE, "--runtime", "multi"]), "/", ["--no-welcome"]),
    ("squall-server conformance echo", lambda: squall_server("--profile", "conformance"),
     "/conformance/ws", ["--no-welcome"]),
    ("squall-server kite ping/pong", lambda: squall_server(), "/kite/ws", []),
    ("squall-server covetpy echo RPC", lambda: squall_server(), "/covetpy/ws?token=bench",
     ["--request", COVETPY_ECHO]),
]


def echo(rounds, in_flight):
    results = {label: [] for label, *_ in TARGETS}
    for r in range(rounds):
        order = TARGETS if r % 2 == 0 else list(reversed(TARGETS))
        for label, launch, path, extra in order:
            p, addr = launch()
            try:
                results[label].append(rate(f"ws://{addr}{path}", in_flight, *extra))
            except subprocess.CalledProcessError as e:
                print(f"  {label}: failed: {e.stderr.strip()[:200]}")
                results[label].append(0.0)
            finally:
                stop(p)
        print(f"  round {r + 1}: " + ", ".join(f"{l} {v[-1]:,.0f}/s" for l, v in results.items()))
    base = results[TARGETS[0][0]]
    print(f"100 connections x {in_flight} in flight, {rounds} rounds, medians:")
    for label, values in results.items():
        paired = statistics.median(v / b for v, b in zip(values, base) if b)
        print(f"  {label:40s} {statistics.median(values):>10,.0f}/s  "
              f"ratio to bare per-core {statistics.median(values) / statistics.median(base):.2f}"
              f" (median of paired {paired:.2f})")


def fanout(subscribers, rates):
    print(f"{subscribers} subscribers of kite room workers:all, {SECONDS} s per rate")
    best = None
    for per_sec in rates:
        p, addr = squall_server("--max-connections", str(subscribers + 100), events=per_sec)
        try:
            r = raw(f"ws://{addr}/kite/ws", "--connections", str(subscribers),
                    "--fanout", '{"type":"subscribe","room":"workers:all"}',
                    "--duration", f"{SECONDS}s")
        finally:
            stop(p)
        expected = per_sec * subscribers
        complete = r["gaps"] == 0 and r["reordered"] == 0
        ok = complete and r["p99_ms"] < 50 and r["rate"] >= 0.95 * expected
        print(f"  {per_sec:>6} events/s: {r['rate']:>10,.0f} deliveries/s (published x subscribers "
              f"{expected:,}/s), p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms, "
              f"gaps {r['gaps']}, reordered {r['reordered']} -> {'ok' if ok else 'not sustained'}")
        if ok:
            best = (per_sec, r)
    if best:
        print(f"highest sustained: {best[0]} events/s = {best[1]['rate']:,.0f} deliveries/s, "
              f"p99 {best[1]['p99_ms']:.2f} ms")


def idle(conns):
    p, addr = squall_server("--max-connections", str(conns + 100))
    try:
        base = rss_kib(p.pid)
        client = subprocess.Popen([RAW, "--url", f"ws://{addr}/kite/ws", "--idle", str(conns),
                                   "--hold", "10s"], stdout=subprocess.PIPE, text=True)
        deadline = time.time() + 90
        while server_connections(addr) < conns and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        full, reached = rss_kib(p.pid), server_connections(addr)
        client.wait(timeout=60)
        print(f"squall-server: base {base} KiB, at {reached} connections {full} KiB: "
              f"{(full - base) / max(reached, 1):.2f} KiB per idle connection")
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["echo", "fanout", "idle"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--rates", default="100,250,500,750,1000")
    a = ap.parse_args()
    for exe in (SERVER, BARE, RAW):
        if not os.path.exists(exe):
            sys.exit(f"{exe} missing: cargo build --release --workspace --bins --examples")
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}")
    if a.which == "echo":
        echo(a.rounds, a.in_flight)
    elif a.which == "fanout":
        fanout(a.subscribers, [int(x) for x in a.rates.split(",")])
    else:
        idle(a.conns)


if __name__ == "__main__":
    main()
