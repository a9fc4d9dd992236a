#!/usr/bin/env python3
"""Connect storm (issue 9): how fast one node takes N connections opened as
fast as the bench allows, what they cost it in CPU and memory, for
signal-node and the Node.js reference in the same run.

    /usr/bin/python3 bench/connect_storm.py [--connections 10000] [--connect-concurrency 1000]
        [--nodes 1] [--shards 1] [--room-size 2] [--rounds 2] [--peer /tmp/peer-bench] [--json]

Each run starts a fresh node (or --nodes nodes sharing --shards new
redis-servers) and runs `signal-bench --rate 0 --duration 1`:
N clients in rooms of --room-size connect, with --connect-concurrency of them being
set up at once, each until its welcome; they are then held idle for one
second and closed. Reported: the bench's connect time (first connect to
last welcome) and connections per second, failed connects, the node's CPU
from the bench's start until half a second after it holds every
connection (per connection, in microseconds: TCP accept, HTTP upgrade, JWT
check, join, welcome; the clients are idle by then), its RSS before and at
that moment, and the growth per connection; with several nodes, their sums,
and the same for the redis-servers (what each connection's presence, and
each room's channel, costs Redis). A B A B for --rounds rounds.
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
        Col("kib_per_conn", "KiB/conn", ".2f", "cost"),
        Col("redis_us_per_conn", "redis us/conn", ".1f", "cost"),
        Col("redis_kib_per_conn", "redis KiB/conn", ".2f", "cost")]
# When CPU and RSS are read, after the node holds every connection (the
# bench holds them for a second): its last handshakes are done by then.
SETTLED_S = 0.5


def run(args, target):
    """One storm against fresh nodes of target; returns its figures (a dict
    with a key per column, and more)."""
    n = args.connections
    with contextlib.ExitStack() as stack:
        cluster = start_cluster(stack, target, args.nodes, {}, shards=args.shards)
        pids, rpids = cluster.pids, [r.pid for r in cluster.shards]
        base_fds = [fd_count(p) for p in pids]
        rss0 = [rss_bytes(p) for p in pids + rpids]
        cpu0 = cpu_s(pids + rpids)
        bound = bench_bound(n, 1, concurrency=args.connect_concurrency)
        bench = Bench(stack, args.bench, cluster.urls,
                      ["--connections", str(n), "--room-size", str(args.room_size), "--rate", "0",
                       "--duration", "1", "--connect-concurrency", str(args.connect_concurrency)])
        t, held = bench.wait_connected(cluster, base_fds, n, bound)
        cpu, rss = None, None
        if t is not None:
            time.sleep(max(0.0, t + SETTLED_S - time.monotonic()))
            if bench.popen.poll() is None:
                cpu = [b - a for a, b in zip(cpu0, cpu_s(pids + rpids))]
                rss = [rss_bytes(p) for p in pids + rpids]
        rep = bench.result(bound)
    k = len(pids)
    conns = rep["connections"]

    def per_conn(values, base, scale):
        """The sum of values (over base, if given) per held connection,
        times scale; None when it could not be read."""
        if values is None or not held:
            return None
        return (sum(values) - (sum(base) if base else 0)) * scale / held

    return dict(connect_s=rep["connect_s"],
                conn_per_s=conns / rep["connect_s"] if rep["connect_s"] else None,
                failed=rep["connect_failed"],
                cpu_us_per_conn=per_conn(cpu and cpu[:k], None, 1e6),
                rss_base_mib=sum(rss0[:k]) / MIB, rss_mib=sum(rss[:k]) / MIB if rss else None,
                kib_per_conn=per_conn(rss and rss[:k], rss0[:k], 1 / 1024),
                redis_us_per_conn=per_conn(cpu and cpu[k:], None, 1e6) if rpids else None,
                redis_kib_per_conn=per_conn(rss and rss[k:], rss0[k:], 1 / 1024) if rpids else None,
                connected=held, bench=rep)


def main():
    """Parses the options, runs the storm A B A B, prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(ap)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--connect-concurrency", type=int, default=1000,
                    help="connections being set up at once (default 1000)")
    ap.add_argument("--nodes", type=int, default=1, help="more than 1 share Redis")
    ap.add_argument("--shards", type=int, default=1, help="redis-servers, with --nodes > 1")
    ap.add_argument("--room-size", type=int, default=2)
    args = ap.parse_args()
    setup_process()
    tgts = targets(args)
    where = (f"{args.nodes} nodes and {args.shards} redis-server(s)" if args.nodes > 1
             else "one node")
    sec = Section(f"connect storm: {args.connections} connections to {where}, rooms of "
                  f"{args.room_size}, {args.connect_concurrency} at once", COLS,
                  {"connections": args.connections, "concurrency": args.connect_concurrency,
                   "nodes": args.nodes, "shards": args.shards, "room_size": args.room_size})
    for rnd, t in interleaved(args.rounds, tgts):
        progress(f"connect storm: {t.key} round {rnd}")
        sec.add(t, rnd, run(args, t))
    report("connect_storm", args, [sec], [
        "connect s: first connect to last welcome (the bench's figure); conn/s = connections / "
        "that.",
        f"CPU us/conn: the node's CPU from the bench's start until {SETTLED_S} s after it held "
        "every connection, per connection.",
        "RSS MiB: at that moment; KiB/conn = its growth over RSS base per connection "
        "(nodes summed).",
        "redis us/conn, redis KiB/conn: the same for the redis-servers, summed.",
        "Cost ratio = reference / ours; rate ratio = ours / reference."])


if __name__ == "__main__":
    main()
