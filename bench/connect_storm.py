#!/usr/bin/env python3
"""Connect storm (issue 9): how fast one node takes N connections opened as
fast as the bench allows, what they cost it in CPU and memory, for
signal-node and the Node.js reference in the same run.

    /usr/bin/python3 bench/connect_storm.py [--connections 10000] [--connect-concurrency 1000]
        [--rounds 2] [--peer /tmp/peer-bench] [--json]

Each run starts a fresh node and runs `signal-bench --rate 0 --duration 1`:
N clients in rooms of two connect, with --connect-concurrency of them being
set up at once, each until its welcome; they are then held idle for one
second and closed. Reported: the bench's connect time (first connect to
last welcome) and connections per second, failed connects, the node's CPU
from the bench's start until half a second after it holds every
connection (per connection, in microseconds: TCP accept, HTTP upgrade, JWT
check, join, welcome; the clients are idle by then), its RSS before and at
that moment, and the growth per connection. A B A B for --rounds rounds.
"""
import argparse
import contextlib
import time

from benchlib import (MIB, Bench, Col, Section, add_target_args, bench_bound, cpu_s, fd_count,
                      interleaved, progress, report, rss_bytes, setup_process, start_cluster,
                      targets)

COLS = [Col("connect_s", "connect s", ".3f", "cost"),
        Col("conn_per_s", "conn/s", ".0f", "rate"), Col("failed", "failed", ".0f"),
        Col("cpu_us_per_conn", "CPU us/conn", ".1f", "cost"),
        Col("rss_base_mib", "RSS base", ".1f", "cost"),
        Col("rss_mib", "RSS MiB", ".1f", "cost"),
        Col("kib_per_conn", "KiB/conn", ".2f", "cost")]
# When CPU and RSS are read, after the node holds every connection (the
# bench holds them for a second): its last handshakes are done by then.
SETTLED_S = 0.5


def run(args, target):
    """One storm against a fresh node of target; returns its figures (a dict
    with a key per column, and more)."""
    n = args.connections
    with contextlib.ExitStack() as stack:
        cluster = start_cluster(stack, target, 1, {})
        pid = cluster.pids[0]
        base_fds, rss0, cpu0 = fd_count(pid), rss_bytes(pid), cpu_s([pid])[0]
        bound = bench_bound(n, 1, concurrency=args.connect_concurrency)
        bench = Bench(stack, args.bench, cluster.urls,
                      ["--connections", str(n), "--room-size", "2", "--rate", "0",
                       "--duration", "1", "--connect-concurrency", str(args.connect_concurrency)])
        t, held = bench.wait_connected(cluster, [base_fds], n, bound)
        cpu, rss = None, None
        if t is not None:
            time.sleep(max(0.0, t + SETTLED_S - time.monotonic()))
            if bench.popen.poll() is None:
                cpu, rss = cpu_s([pid])[0] - cpu0, rss_bytes(pid)
        rep = bench.result(bound)
    conns = rep["connections"]
    return dict(connect_s=rep["connect_s"],
                conn_per_s=conns / rep["connect_s"] if rep["connect_s"] else None,
                failed=rep["connect_failed"],
                cpu_us_per_conn=cpu / held * 1e6 if cpu is not None and held else None,
                rss_base_mib=rss0 / MIB, rss_mib=rss / MIB if rss else None,
                kib_per_conn=(rss - rss0) / 1024 / held if rss and held else None,
                connected=held, bench=rep)


def main():
    """Parses the options, runs the storm A B A B, prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(ap)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--connect-concurrency", type=int, default=1000,
                    help="connections being set up at once (default 1000)")
    args = ap.parse_args()
    setup_process()
    tgts = targets(args)
    sec = Section(f"connect storm: {args.connections} connections to one node, "
                  f"{args.connect_concurrency} at once", COLS,
                  {"connections": args.connections, "concurrency": args.connect_concurrency})
    for rnd, t in interleaved(args.rounds, tgts):
        progress(f"connect storm: {t.key} round {rnd}")
        sec.add(t, rnd, run(args, t))
    report("connect_storm", args, [sec], [
        "connect s: first connect to last welcome (the bench's figure); conn/s = connections / "
        "that.",
        f"CPU us/conn: the node's CPU from the bench's start until {SETTLED_S} s after it held "
        "every connection, per connection.",
        "RSS MiB: at that moment; KiB/conn = its growth over RSS base per connection.",
        "Cost ratio = reference / ours; rate ratio = ours / reference."])


if __name__ == "__main__":
    main()
