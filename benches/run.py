#!/usr/bin/env python3
"""Macro-benchmarks: squall against the raw client (benches/raw_client.rs), same server,
same run, alternating, medians of several rounds. Loopback only; every run is bounded.

    cargo build --release --workspace --bins --examples
    python3 benches/run.py roundtrip [--rounds 5]   # round trips/s at 100x16 and 100x1
    python3 benches/run.py idle [--conns 10000]      # RSS per idle connection
    python3 benches/run.py cpu [--rounds 5]          # CPU per round trip, checking vs not
    python3 benches/run.py pacing [--rounds 5]       # how late paced sends go out, light load
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
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
SERVER = os.path.join(REL, "squall-server")
SQUALL = os.path.join(REL, "squall")
RAW = os.path.join(REL, "examples", "raw-client")
PACE_SECONDS = 5.0  # the pace step's duration in benches/scenarios/rtt-*.yaml


def start_server(*extra):
    p = subprocess.Popen(
        [SERVER, "--listen", "127.0.0.1:0", "--profile", "kite", "--events", "0", "--no-limit", "rate", "--no-limit", "per-client", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = p.stdout.readline()
    m = re.search(r"listening on (\S+)", line)
    if not m:
        p.kill()
        sys.exit(f"squall-server did not start: {line!r}")
    return p, m.group(1)


def raw_rate(addr, in_flight):
    out = subprocess.run(
        [RAW, "--url", f"ws://{addr}/ws", "--connections", "100", "--in-flight", str(in_flight),
         "--duration", f"{int(PACE_SECONDS)}s"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["rate"]


def squall_rate(addr, in_flight, check):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            [SQUALL, "run", os.path.join(ROOT, "benches", "scenarios", f"rtt-{in_flight}.yaml"),
             "--target", f"ws://{addr}/ws", "--quiet", "--out", d,
             "--schemas", os.path.join(ROOT, "schemas")] + ([] if check else ["--no-check"]),
            timeout=120, check=False,
        )
        with open(os.path.join(d, "results.json")) as f:
            r = json.load(f)
    rtt = r["metrics"]["rtt"]["latency"]
    return rtt["count"] / PACE_SECONDS, r["health"], rtt


def roundtrip(rounds):
    server, addr = start_server()
    try:
        for in_flight in (16, 1):
            raws, ours, checked = [], [], []
            for i in range(rounds):
                raws.append(raw_rate(addr, in_flight))
                # Checking and --no-check take turns going first: a drift of the machine's
                # load within a round then favours neither.
                runs = {}
                for check in ((False, True) if i % 2 == 0 else (True, False)):
                    runs[check] = squall_rate(addr, in_flight, check=check)
                rate, health, rtt = runs[False]
                ours.append(rate)
                crate = runs[True][0]
                checked.append(crate)
                print(f"  100x{in_flight} round {i + 1}: raw {raws[-1]:,.0f}/s  squall --no-check {rate:,.0f}/s"
                      f"  squall checking {crate:,.0f}/s"
                      f"  (p50 {rtt['p50']}us p99 {rtt['p99']}us, saturated={health['generator_saturated']})")
            mr, ms, mc = statistics.median(raws), statistics.median(ours), statistics.median(checked)
            paired = statistics.median(o / r for o, r in zip(ours, raws))
            cost = statistics.median(1 - c / o for c, o in zip(checked, ours))
            print(f"100x{in_flight}: raw median {mr:,.0f}/s, squall --no-check median {ms:,.0f}/s, "
                  f"ratio of medians {ms / mr:.2f}, median of paired ratios {paired:.2f}; "
                  f"checking every frame: median {mc:,.0f}/s, cost {cost:.0%} (median of paired)")
    finally:
        server.terminate()
        server.wait(timeout=10)


def cpu_ticks(pid):
    """utime + stime of a process so far, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def squall_cpu(server, addr, check):
    """One 100x16 run: (round trips, client user s, client sys s, involuntary and voluntary
    context switches, server CPU s), the client's from its rusage."""
    with tempfile.TemporaryDirectory() as d:
        before = cpu_ticks(server.pid)
        p = subprocess.Popen(
            [SQUALL, "run", os.path.join(ROOT, "benches", "scenarios", "rtt-16.yaml"),
             "--target", f"ws://{addr}/ws", "--quiet", "--out", d,
             "--schemas", os.path.join(ROOT, "schemas")] + ([] if check else ["--no-check"]),
        )
        _, _, ru = os.wait4(p.pid, 0)
        server_s = (cpu_ticks(server.pid) - before) / os.sysconf("SC_CLK_TCK")
        with open(os.path.join(d, "results.json")) as f:
            n = json.load(f)["metrics"]["rtt"]["latency"]["count"]
    return n, ru.ru_utime, ru.ru_stime, ru.ru_nivcsw, ru.ru_nvcsw, server_s


def cpu(rounds):
    """Where checking's cost goes in a run: CPU per round trip of the client (user, system)
    and of the server, and the client's context switches, with and without checking."""
    server, addr = start_server()
    try:
        rows = {False: [], True: []}
        for i in range(rounds):
            for check in (False, True):
                n, u, s, inv, vol, srv = squall_cpu(server, addr, check)
                rows[check].append((u * 1e6 / n, s * 1e6 / n, srv * 1e6 / n, inv, vol, n / PACE_SECONDS))
                print(f"  round {i + 1} {'checking' if check else '--no-check'}: {n / PACE_SECONDS:,.0f}/s, "
                      f"client user {rows[check][-1][0]:.3f} us/rt, sys {rows[check][-1][1]:.3f} us/rt, "
                      f"server {rows[check][-1][2]:.3f} us/rt, context switches {inv} involuntary, {vol} voluntary")
        for check in (False, True):
            med = [statistics.median(r[k] for r in rows[check]) for k in range(6)]
            print(f"100x16 {'checking' if check else '--no-check'} (medians): {med[5]:,.0f}/s, client user "
                  f"{med[0]:.3f} us/rt, sys {med[1]:.3f} us/rt, server {med[2]:.3f} us/rt, "
                  f"{med[3]:,.0f} involuntary / {med[4]:,.0f} voluntary context switches per run")
    finally:
        server.terminate()
        server.wait(timeout=10)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_connections(addr):
    """Open WebSocket connections on the server, summed over its protocols."""
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        return sum(int(float(line.split()[-1])) for line in r.read().decode().splitlines()
                   if line.startswith("squall_server_connections_active"))


def idle(conns):
    server, addr = start_server("--max-connections", str(conns + 100))
    try:
        out = subprocess.run(
            [RAW, "--url", f"ws://{addr}/ws", "--idle", str(conns), "--hold", "2s"],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout
        raw = json.loads(out.strip().splitlines()[-1])
        print(f"raw client: {raw['rss_per_conn_kib']:.2f} KiB per idle connection")
        with tempfile.TemporaryDirectory() as d:
            scen = os.path.join(d, "idle.yaml")
            with open(os.path.join(ROOT, "benches", "scenarios", "idle.yaml")) as f:
                text = f.read().replace("vus: 10000", f"vus: {conns}")
            with open(scen, "w") as f:
                f.write(text)
            p = subprocess.Popen([SQUALL, "run", scen, "--target", f"ws://{addr}/ws", "--quiet",
                                  "--no-check", "--out", os.path.join(d, "out")])
            time.sleep(1.5)  # inside the scenario's opening 3 s at 0 VUs
            base = rss_kib(p.pid)
            deadline = time.time() + 60
            while server_connections(addr) < conns and time.time() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
            full = rss_kib(p.pid)
            reached = server_connections(addr)
            p.terminate()
            p.wait(timeout=30)
        per = (full - base) / max(reached, 1)
        print(f"squall: base {base} KiB, at {reached} connections {full} KiB: {per:.2f} KiB per idle connection")
    finally:
        server.terminate()
        server.wait(timeout=10)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def pacing(rounds, samples=True):
    """10 VUs x 100/s, one in flight: per round, latency p90 beside service p90 (results.json),
    and with `samples` how late sends went out (sent - intended, from `--samples`)."""
    server, addr = start_server()
    rows = []
    try:
        for i in range(rounds):
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "samples.jsonl")
                subprocess.run(
                    [SQUALL, "run", os.path.join(ROOT, "benches", "scenarios", "pacing.yaml"),
                     "--target", f"ws://{addr}/ws", "--quiet", "--no-report", "--no-check",
                     "--out", d] + (["--samples", path] if samples else []),
                    timeout=120, check=False,
                )
                with open(os.path.join(d, "results.json")) as f:
                    m = json.load(f)["metrics"]["rtt"]
                late = [0.0]
                if samples:
                    with open(path) as f:
                        late = [(json.loads(x)["sent_ns"] - json.loads(x)["intended_ns"]) / 1000 for x in f]
            row = (pct(late, 50), pct(late, 99), max(late), m["latency"]["p90"], m["service"]["p90"])
            rows.append(row)
            print(f"round {i + 1}: sends late p50 {row[0]:.0f} us, p99 {row[1]:.0f} us, max {row[2]:.0f} us;"
                  f" latency p90 {row[3]} us vs service p90 {row[4]} us ({m['latency']['count']} samples)")
    finally:
        server.terminate()
        server.wait(timeout=10)
    med = [statistics.median(r[k] for r in rows) for k in range(5)]
    print(f"median of {rounds}: sends late p50 {med[0]:.0f} us, p99 {med[1]:.0f} us, max {med[2]:.0f} us;"
          f" latency p90 {med[3]:.0f} us vs service p90 {med[4]:.0f} us")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["roundtrip", "idle", "cpu", "pacing"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--squall", help="another squall binary to measure (an older build, for A/B)")
    a = ap.parse_args()
    if a.squall:
        global SQUALL
        SQUALL = os.path.abspath(a.squall)
    for exe in (SERVER, SQUALL) + (() if a.which == "pacing" else (RAW,)):
        if not os.path.exists(exe):
            sys.exit(f"{exe} missing: cargo build --release --workspace --bins --examples")
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}")
    if a.which == "roundtrip":
        roundtrip(a.rounds)
    elif a.which == "cpu":
        cpu(a.rounds)
    elif a.which == "pacing":
        # An older build has no --samples: its lateness shows only as latency over service.
        pacing(a.rounds, samples=not a.squall)
    else:
        idle(a.conns)


if __name__ == "__main__":
    main()
