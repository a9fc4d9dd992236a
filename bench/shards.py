#!/usr/bin/env python3
"""Sharding (issue 12): cross-node deliveries per second, and what they cost
each Redis, when the rooms are spread over one, two or three redis-servers.

    /usr/bin/python3 bench/shards.py [--shards 1,2,3] [--nodes 2] [--connections 10000]
        [--room-size 2] [--duration 10] [--window 8] [--rounds 2] [--peer /tmp/peer-bench]
        [--redis-cpu PERCENT] [--tls] [--json]

For each shard count, --nodes signal-nodes share that many new redis-servers
(loopback, --save '' --appendonly no, default limits), all named in one
SIGNAL_REDIS_URL, and `signal-bench --saturate` spreads the members of each
room over the nodes, so that every delivery but the sender's own node's
crosses Redis. With --peer, the Node.js reference runs too, with one Redis
(it cannot shard), as the same-run baseline.

Reported per run: deliveries/s, lost, reordered, errors, node CPU per
million deliveries, and each redis-server's share of a core and CPU per
million deliveries, over the middle 80 % of the load (as saturate.py). On
a machine whose cores the generator, the nodes and the Redis servers share,
deliveries/s is bounded by the nodes and the generator long before Redis:
the per-shard Redis figures are what show the ceiling moving. --redis-cpu
makes Redis the bottleneck instead: each redis-server gets a CPU cgroup of
its own capped at PERCENT of a core (as root; cgroup v1 or v2), a small
stand-in for the one core a production Redis has, so that the deliveries/s
show what more shards buy once Redis is what limits. --tls runs the same over
rediss:// (certificates made for the run with openssl; signal-node only: the
reference is not given the CA), to compare with a run without.
"""
import argparse
import contextlib
import os

from benchlib import (NO_RATE_LIMIT, Col, Section, add_target_args, interleaved, progress,
                      report, saturation, setup_process, share, start_cluster, targets)

MAX_SHARDS = 3
COLS = [Col("deliveries_per_s", "deliv/s", ".0f", "rate"), Col("lost", "lost", ".0f"),
        Col("reordered", "reordered", ".0f"), Col("errors", "errors", ".0f"),
        Col("node_cpu_per_m", "node s/M", ".2f", "cost"),
        Col("redis_cpu_per_m", "redis s/M", ".2f", "cost")]
COLS += [Col(f"redis{i}_cpu_pct", f"redis{i} CPU%", ".0f") for i in range(MAX_SHARDS)]


def cpu_cap(stack, pid, percent):
    """Moves pid into a new CPU cgroup capped at percent of one core; the
    cgroup goes when stack closes (after the process has)."""
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    path = f"/sys/fs/cgroup/{'' if v2 else 'cpu/'}signal-bench-{pid}"
    os.mkdir(path)
    stack.callback(os.rmdir, path)
    period = 100000
    quota = int(period * percent / 100)
    if v2:
        with open(os.path.join(path, "cpu.max"), "w") as f:
            f.write(f"{quota} {period}")
    else:
        with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(quota))
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(pid))


def run(args, target, shards):
    """One saturation run of target over shards redis-servers; returns its
    figures (a dict with a key per column, and more)."""
    with contextlib.ExitStack() as caps, contextlib.ExitStack() as stack:
        cluster = start_cluster(stack, target, args.nodes, NO_RATE_LIMIT, shards=shards,
                                tls=args.tls)
        for r in cluster.shards if args.redis_cpu else []:
            cpu_cap(caps, r.pid, args.redis_cpu)
        out = saturation(stack, args, cluster, args.room_size)
    each = out["redis_cpu_s_each"] or []
    for i in range(MAX_SHARDS):
        out[f"redis{i}_cpu_pct"] = share(each[i], out["window_s"]) if i < len(each) else None
    return out


def main():
    """Parses the options, runs every shard count A B A B, prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(ap)
    ap.add_argument("--shards", default="1,2,3", help=f"comma list, each 1-{MAX_SHARDS}")
    ap.add_argument("--nodes", type=int, default=2, help="signal-nodes (at least 2)")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--room-size", type=int, default=2)
    ap.add_argument("--duration", type=float, default=10, help="seconds of load (default 10)")
    ap.add_argument("--window", type=int, default=8, help="signals in flight per sender")
    ap.add_argument("--drain", type=float, default=10, help="signal-bench --drain bound")
    ap.add_argument("--connect-concurrency", type=int, default=200)
    ap.add_argument("--redis-cpu", type=float, metavar="PERCENT",
                    help="cap each redis-server at PERCENT of a core (a CPU cgroup; root)")
    ap.add_argument("--tls", action="store_true", help="rediss:// to every redis-server")
    args = ap.parse_args()
    counts = [int(x) for x in args.shards.split(",")]
    if args.nodes < 2 or any(not 1 <= c <= MAX_SHARDS for c in counts):
        raise SystemExit(f"--nodes must be at least 2 and each shard count 1-{MAX_SHARDS}")
    setup_process()
    tgts = targets(args)[:1] if args.tls else targets(args)
    sections = []
    for shards in counts:
        cap = f", each capped at {args.redis_cpu:g} % of a core" if args.redis_cpu else ""
        cap += ", over TLS" if args.tls else ""
        sec = Section(f"shards: {shards} redis-server(s){cap}, {args.nodes} nodes, rooms of "
                      f"{args.room_size}, {args.connections} connections, window {args.window}, "
                      f"{args.duration:g} s", COLS, {"shards": shards, "nodes": args.nodes})
        # The reference has one Redis: it is the baseline of the one-shard run.
        for rnd, t in interleaved(args.rounds, tgts if shards == 1 else tgts[:1]):
            progress(f"shards {shards}: {t.key} round {rnd}")
            sec.add(t, rnd, run(args, t, shards))
        sections.append(sec)
    report("shards", args, sections, [
        "deliv/s: deliveries per second in the bench's window; rate ratio = ours / reference.",
        "node s/M, redis s/M: CPU seconds (utime + stime) per million deliveries, inside the "
        "load (its middle 80 %), all nodes / all redis-servers summed.",
        "redisN CPU%: shard N's redis-server, as a share of one core.",
        "lost, reordered, errors: as signal-bench counts them."])


if __name__ == "__main__":
    main()
