#!/usr/bin/env python3
"""Idle cluster (issue 9): 100,000 idle connections over six nodes sharing one
redis-server; each node's RSS per connection and CPU while the clients only
answer the keepalive, and the totals. With --peer, the same for the Node.js
reference (six node processes too), A B interleaved.

    /usr/bin/python3 bench/idle_cluster.py [--connections 100000] [--nodes 6] [--room-size 6]
        [--settle-s 30] [--window-s 50] [--peer DIR] [--rounds N] [--json]

Each run starts a new redis-server (loopback, --save '' --appendonly no) and
--nodes nodes, then one `signal-bench --rate 0` whose connections bind the
source addresses 127.0.0.1-127.0.0.8 in turn (one address's ports would not
be enough) and spread over worker processes, each under the open-file
limit. Member i of a room connects to node i % nodes, so --room-size must be
a multiple of --nodes; with the defaults each node holds about 16,700
connections, under its limit of 20,000 files. Once the nodes hold every
connection, the clients sit idle for --settle-s (the default keepalive, 25
s on both servers, has begun), then the nodes' and redis-server's CPU
(utime + stime from /proc) and RSS are read over --window-s (two keepalive
periods by default). The bench's --duration covers both.

With --peer DIR, each round measures signal-node, then the reference
(default 2 rounds; 1 without --peer). The script checks MemAvailable first
and stops when it looks too small for --connections.
"""
import argparse
import contextlib
import time

from benchlib import (MIB, Bench, Col, Section, add_target_args, bench_bound, cpu_s, fd_count,
                      interleaved, progress, report, rss_bytes, setup_process, start_cluster,
                      targets, tcp_sockets)

COLS = [Col("connections", "conns", ".0f"), Col("connect_s", "connect s", ".1f", "cost"),
        Col("failed", "failed", ".0f"), Col("rss_mib", "nodes MiB", ".0f", "cost"),
        Col("kib_per_conn", "KiB/conn", ".2f", "cost"),
        Col("cpu_pct", "nodes CPU%", ".2f", "cost"),
        Col("cpu_pct_10k", "% per 10k", ".3f", "cost"),
        Col("redis_cpu_pct", "redis CPU%", ".2f", "cost"),
        Col("redis_mib", "redis MiB", ".1f", "cost")]
# A rough bound on the memory one idle connection takes on this machine,
# both ends and the kernel's sockets included, by server: the check before
# the run.
KIB_PER_CONN = {"ours": 24, "reference": 64}
SOURCE_IPS = "127.0.0.1-127.0.0.8"


def mem_available_kib():
    """MemAvailable from /proc/meminfo, in KiB."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def run(args, target):
    """One idle run of target's cluster; returns its figures (a dict with a
    key per column, per_node: a dict per node, and the bench's report)."""
    n = args.connections
    duration = args.settle_s + args.window_s + 5
    with contextlib.ExitStack() as stack:
        cluster = start_cluster(stack, target, args.nodes, {})
        pids, rpid = cluster.pids, cluster.redis.pid
        bases, rss0 = [fd_count(p) for p in pids], [rss_bytes(p) for p in pids]
        bound = bench_bound(n, duration, concurrency=args.connect_concurrency)
        bench = Bench(stack, args.bench, cluster.urls,
                      ["--connections", str(n), "--room-size", str(args.room_size),
                       "--rate", "0", "--duration", str(duration), "--source-ips", SOURCE_IPS,
                       "--connect-concurrency", str(args.connect_concurrency)])
        t, held = bench.wait_connected(cluster, bases, n, bound)
        if t is None:
            raise RuntimeError(f"the nodes held {held} of {n} connections when the bench ended")
        time.sleep(max(0.0, t + args.settle_s - time.monotonic()))
        c0 = cpu_s(pids + [rpid])
        w0 = time.monotonic()
        time.sleep(args.window_s)
        c1 = cpu_s(pids + [rpid])
        wall = time.monotonic() - w0
        rss, redis_rss = [rss_bytes(p) for p in pids], rss_bytes(rpid)
        conns = tcp_sockets(cluster.ports, {"01"})
        if bench.popen.poll() is not None:
            raise RuntimeError("the bench ended before the window did")
        rep = bench.result(bound)
    cpu = [(b - a) / wall * 100 for a, b in zip(c0, c1)]
    per_node = [{"connections": conns[port], "rss_mib": r / MIB,
                 "kib_per_conn": (r - r0) / 1024 / conns[port] if conns[port] else None,
                 "cpu_pct": c}
                for port, r, r0, c in zip(cluster.ports, rss, rss0, cpu)]
    total = sum(conns.values())
    return dict(connections=total, connect_s=rep["connect_s"], failed=rep["connect_failed"],
                rss_mib=sum(rss) / MIB,
                kib_per_conn=(sum(rss) - sum(rss0)) / 1024 / total if total else None,
                cpu_pct=sum(cpu[:-1]), cpu_pct_10k=sum(cpu[:-1]) * 1e4 / total if total else None,
                redis_cpu_pct=cpu[-1], redis_mib=redis_rss / MIB, per_node=per_node, bench=rep)


def print_nodes(sec):
    """Prints each run's per-node figures as a table."""
    for r in sec.runs:
        print(f"\n{r['server']} round {r['round']}: per node")
        print(f"{'node':<6} {'conns':>8} {'RSS MiB':>9} {'KiB/conn':>9} {'CPU %':>7}")
        for i, nd in enumerate(r["per_node"]):
            kib = f"{nd['kib_per_conn']:.2f}" if nd["kib_per_conn"] is not None else "-"
            print(f"{i:<6} {nd['connections']:>8} {nd['rss_mib']:>9.1f} {kib:>9} "
                  f"{nd['cpu_pct']:>7.2f}")
        print(f"{'total':<6} {r['connections']:>8} {r['rss_mib']:>9.1f} "
              f"{r['kib_per_conn'] or 0:>9.2f} {r['cpu_pct']:>7.2f}   "
              f"redis-server: {r['redis_cpu_pct']:.2f} % CPU, {r['redis_mib']:.1f} MiB")


def main():
    """Parses the options, checks the memory, runs A B A B, prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(ap, peer_default=None, rounds=None)
    ap.add_argument("--connections", type=int, default=100000)
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--room-size", type=int, default=6, help="a multiple of --nodes")
    ap.add_argument("--connect-concurrency", type=int, default=500)
    ap.add_argument("--settle-s", type=float, default=30,
                    help="idle seconds before the window (default 30)")
    ap.add_argument("--window-s", type=float, default=50,
                    help="the measurement window (default 50: two keepalive periods)")
    args = ap.parse_args()
    args.rounds = args.rounds or (2 if args.peer else 1)
    if args.nodes < 2 or args.room_size % args.nodes:
        ap.error("--nodes must be 2 or more, and --room-size a multiple of it")
    setup_process()
    tgts = targets(args)
    need = args.connections * max(KIB_PER_CONN[t.key] for t in tgts)
    avail = mem_available_kib()
    progress(f"MemAvailable {avail // 1024} MiB; this run needs about {need // 1024} MiB")
    if avail < need:
        raise SystemExit("not enough memory for --connections: lower it")
    sec = Section(f"idle cluster: {args.connections} connections over {args.nodes} nodes + "
                  f"redis-server, rooms of {args.room_size}, settle {args.settle_s:g} s, "
                  f"window {args.window_s:g} s", COLS,
                  {"connections": args.connections, "nodes": args.nodes})
    for rnd, t in interleaved(args.rounds, tgts):
        progress(f"idle cluster: {t.key} round {rnd}")
        sec.add(t, rnd, run(args, t))
    if not args.json:
        print_nodes(sec)
    report("idle_cluster", args, [sec], [
        "conns: held by the nodes at the window's end; KiB/conn: (RSS - RSS before the "
        "clients) / conns, all nodes.",
        "CPU%: utime + stime over the window as a share of one core (nodes summed); "
        "cost ratio = reference / ours."])


if __name__ == "__main__":
    main()
