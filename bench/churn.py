#!/usr/bin/env python3
"""Churn (issue 9): does a node give its memory back when its clients leave,
cycle after cycle? For signal-node and the Node.js reference in the same run.

    /usr/bin/python3 bench/churn.py [--connections 10000] [--cycles 5] [--idle-s 3]
        [--after-leave-s 12] [--rounds 2] [--peer /tmp/peer-bench] [--json]

Each run starts a fresh node and reads its RSS (base), then --cycles times:
N clients in rooms of two connect and join (`signal-bench --rate 0
--duration IDLE`), sit idle, and all leave when the bench ends. The node's
RSS is read one second after it holds every connection ("conn"), and again
--after-leave-s seconds after it has handled every close ("left"):
signal-node gives freed memory back to the OS every 10 s, so the default 12
s sees at least one of those. The last "left" against the base is the final
figure, as a percentage of the base. A B A B for --rounds rounds.
"""
import argparse
import contextlib
import time

from benchlib import (MIB, Bench, Col, Section, add_target_args, bench_bound, fd_count,
                      interleaved, progress, report, rss_bytes, setup_process, start_cluster,
                      targets, wait_closed)

# When RSS is read after the node holds every connection.
CONNECTED_S = 1.0
# How long the node may take to handle every close.
CLOSE_S = 60


def cycle(args, stack, cluster):
    """One cycle against the running node: connect, idle, leave. Returns
    (RSS with the clients connected or None, RSS after they left, failed
    connects), in bytes."""
    pid = cluster.pids[0]
    n = args.connections
    bound = bench_bound(n, args.idle_s)
    bases = [fd_count(pid)]
    bench = Bench(stack, args.bench, cluster.urls,
                  ["--connections", str(n), "--room-size", "2", "--rate", "0",
                   "--duration", str(args.idle_s)])
    t, _ = bench.wait_connected(cluster, bases, n, bound)
    rss_conn = None
    if t is not None:
        time.sleep(max(0.0, t + CONNECTED_S - time.monotonic()))
        if bench.popen.poll() is None:
            rss_conn = rss_bytes(pid)
    rep = bench.result(bound)
    if not wait_closed(cluster, bases, CLOSE_S):
        raise RuntimeError(f"the node still holds connections {CLOSE_S} s after the bench ended")
    time.sleep(args.after_leave_s)
    return rss_conn, rss_bytes(pid), rep["connect_failed"]


def run(args, target):
    """--cycles cycles against a fresh node of target; returns the figures
    (a dict with a key per column, and more)."""
    with contextlib.ExitStack() as stack:
        cluster = start_cluster(stack, target, 1, {})
        base = rss_bytes(cluster.pids[0])
        fig = {"base": base / MIB, "failed": 0}
        for i in range(1, args.cycles + 1):
            conn, left, failed = cycle(args, stack, cluster)
            fig[f"conn{i}"] = conn / MIB if conn else None
            fig[f"left{i}"] = left / MIB
            fig["failed"] += failed
    fig["final_pct"] = left / base * 100
    return fig


def main():
    """Parses the options, runs the cycles A B A B, prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(ap)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--idle-s", type=float, default=3,
                    help=f"seconds the clients stay once connected (at least {CONNECTED_S:g})")
    ap.add_argument("--after-leave-s", type=float, default=12,
                    help="seconds from the last close handled to the RSS reading (default 12)")
    args = ap.parse_args()
    if args.idle_s < CONNECTED_S:
        ap.error(f"--idle-s must be at least {CONNECTED_S:g}")
    setup_process()
    tgts = targets(args)
    cols = [Col("base", "base", ".1f", "cost")]
    for i in range(1, args.cycles + 1):
        cols += [Col(f"conn{i}", f"{i}: conn", ".1f", "cost"),
                 Col(f"left{i}", f"{i}: left", ".1f", "cost")]
    cols += [Col("final_pct", "final %", ".0f"), Col("failed", "failed", ".0f")]
    sec = Section(f"churn: RSS in MiB of one node, {args.cycles} cycles of {args.connections} "
                  f"clients (rooms of 2) connecting, idle {args.idle_s:g} s, leaving", cols,
                  {"connections": args.connections, "cycles": args.cycles})
    for rnd, t in interleaved(args.rounds, tgts):
        progress(f"churn: {t.key} round {rnd}")
        sec.add(t, rnd, run(args, t))
    report("churn", args, [sec], [
        f"N: conn = RSS {CONNECTED_S:g} s after the node held every connection of cycle N; "
        f"N: left = RSS {args.after_leave_s:g} s after it had handled every close.",
        "final % = the last 'left' as a percentage of base (no ratio). "
        "Cost ratio = reference / ours."])


if __name__ == "__main__":
    main()
