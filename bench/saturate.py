#!/usr/bin/env python3
"""Saturation (issue 9): how many signals a server delivers per second when
every member sends as fast as a closed loop allows, and what each delivery
costs in CPU, for signal-node and the Node.js reference in the same run.

    /usr/bin/python3 bench/saturate.py [--connections 10000] [--room-sizes 2,10,50]
        [--nodes 1] [--duration 10] [--window 8] [--rounds 2] [--peer /tmp/peer-bench]
        [--redis-pubsub-limit "0 0 0"] [--json]

For each number of nodes (--nodes, a comma list: 1 is one node with its
in-process bus; more share one new redis-server on loopback, started with
--save '' --appendonly no and its default limits unless --redis-pubsub-limit
replaces the pub/sub clients' output buffer limit) and each room size, runs
`signal-bench --saturate` against fresh servers of each kind, A B A B for
--rounds rounds, with the rate limit raised out of the way on both.

Reported per run: deliveries/s (in the bench's load window), lost,
reordered, errors (as the bench counts them), and the fair figure: CPU
seconds per million deliveries, for the nodes (summed) and for
redis-server, from utime + stime in /proc/<pid>/stat. The CPU is sampled
over a window inside the load: the load starts about 20 ms after the nodes
hold every connection (the bench's connect phase is over), and the window
leaves out a tenth of --duration at each end (no connecting, no ramp, no
drain). The CPU per second in that window, divided by the deliveries per
second the bench counted over its whole load window, gives the figure; the
CPU % columns are the same CPU per second as a share of one core. The JSON
has the whole-run figure too (CPU from the bench's start to its end,
connecting and teardown included, over every signal delivered, the
drain's included).

signal-bench spreads its connections over worker processes so that each
stays under the open-file limit (20,000 here); each node holds its share.
"""
import argparse
import contextlib

from benchlib import (NO_RATE_LIMIT, Col, Section, add_target_args, interleaved, progress,
                      report, saturation, setup_process, start_cluster, targets)

COLS = [Col("deliveries_per_s", "deliv/s", ".0f", "rate"), Col("lost", "lost", ".0f"),
        Col("reordered", "reordered", ".0f"), Col("errors", "errors", ".0f"),
        Col("node_cpu_per_m", "node s/M", ".2f", "cost"),
        Col("redis_cpu_per_m", "redis s/M", ".2f", "cost"),
        Col("node_cpu_pct", "node CPU%", ".0f"), Col("redis_cpu_pct", "redis CPU%", ".0f")]


def run(args, target, room_size, nodes):
    """One saturation run of target with fresh nodes (and redis-server);
    returns its figures (a dict with a key per column, and more)."""
    with contextlib.ExitStack() as stack:
        cluster = start_cluster(stack, target, nodes, NO_RATE_LIMIT, args.redis_pubsub_limit)
        return saturation(stack, args, cluster, room_size)


def main():
    """Parses the options, runs every configuration A B A B, prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(ap)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--room-sizes", default="2,10,50", help="comma list (default 2,10,50)")
    ap.add_argument("--nodes", default="1",
                    help="comma list of node counts; more than 1 share one redis-server")
    ap.add_argument("--duration", type=float, default=10, help="seconds of load (default 10)")
    ap.add_argument("--window", type=int, default=8, help="signals in flight per sender")
    ap.add_argument("--drain", type=float, default=10, help="signal-bench --drain bound")
    ap.add_argument("--connect-concurrency", type=int, default=200)
    ap.add_argument("--redis-pubsub-limit", metavar="'HARD SOFT SECONDS'",
                    help="redis-server's client-output-buffer-limit for pubsub clients "
                         "(default: redis's own, 32mb 8mb 60)")
    args = ap.parse_args()
    setup_process()
    tgts = targets(args)
    sections = []
    for nodes in (int(x) for x in args.nodes.split(",")):
        for size in (int(x) for x in args.room_sizes.split(",")):
            where = f"{nodes} nodes + redis-server" if nodes > 1 else "1 node"
            sec = Section(f"saturate: rooms of {size}, {where}, {args.connections} connections, "
                          f"window {args.window}, {args.duration:g} s",
                          COLS, {"room_size": size, "nodes": nodes})
            for rnd, t in interleaved(args.rounds, tgts):
                progress(f"saturate rooms of {size}, {nodes} node(s): {t.key} round {rnd}")
                sec.add(t, rnd, run(args, t, size, nodes))
            sections.append(sec)
    report("saturate", args, sections, [
        "deliv/s: deliveries per second in the bench's window; rate ratio = ours / reference.",
        "node s/M, redis s/M: CPU seconds (utime + stime) per million deliveries, inside the "
        "load (its middle 80 %);",
        "  node = all nodes summed; cost ratio = reference / ours. CPU% = share of one core.",
        "lost, reordered, errors: as signal-bench counts them (errors includes failed "
        "connects and closes)."])


if __name__ == "__main__":
    main()
