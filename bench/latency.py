#!/usr/bin/env python3
"""Latency under a fixed open-loop load (issue 9): p50, p90, p99, p99.9 and max
of a signal's delivery (the bench's receive time - send time), for
signal-node and the Node.js reference in the same run, under the same load.

    /usr/bin/python3 bench/latency.py [--connections 1000] [--room-size 2] [--rate 5]
        [--rate-ours R1 --rate-ref R2] [--nodes 1] [--duration 20] [--rounds 2]
        [--peer /tmp/peer-bench] [--json]

Each member sends --rate signals per second (`signal-bench --rate`), whatever
the server does, for --duration seconds, against fresh servers of each kind,
A B A B for --rounds rounds, with the rate limit raised out of the way on
both. --nodes (a comma list) also runs the load over that many nodes sharing
one new redis-server, member i of a room on node i % nodes. --rate-ours and
--rate-ref give each server its own rate, for comparisons such as "our p99
at half our saturation rate against the reference's at a tenth of its own"
(find those rates with saturate.py: deliveries/s / (connections x (room
size - 1)) is the saturation rate per member). The nodes' CPU over the load
window (its middle 80 %) is reported as a share of one core, as in saturate.py.
"""
import argparse
import contextlib

from benchlib import (NO_RATE_LIMIT, Col, Section, add_target_args, interleaved, load_run,
                      progress, report, setup_process, share, start_cluster, targets)

PCTS = ["p50", "p90", "p99", "p999", "max"]
COLS = ([Col("rate", "rate/member", "g"), Col("deliveries_per_s", "deliv/s", ".0f")]
        + [Col(p, f"{p} ms", ".3f", "cost") for p in PCTS]
        + [Col("lost", "lost", ".0f"), Col("errors", "errors", ".0f"),
           Col("node_cpu_pct", "node CPU%", ".1f")])


def run(args, target, rate, nodes):
    """One open-loop run of target at rate signals/s per member, with fresh
    nodes (and redis-server); returns its figures (a dict with a key per
    column, and more)."""
    with contextlib.ExitStack() as stack:
        cluster = start_cluster(stack, target, nodes, NO_RATE_LIMIT)
        rep, fig = load_run(stack, args.bench, cluster, args.connections, args.duration,
                            ["--room-size", str(args.room_size), "--rate", str(rate),
                             "--drain", str(args.drain)])
    return dict(fig, rate=rate, deliveries_per_s=rep["deliveries_per_s"], lost=rep["lost"],
                errors=rep["errors"], node_cpu_pct=share(fig["node_cpu_s"], fig["window_s"]),
                bench=rep, **rep["latency_ms"])


def main():
    """Parses the options, runs each node count A B A B, prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(ap)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--room-size", type=int, default=2)
    ap.add_argument("--rate", type=float, default=5, help="signals/s per member, both servers")
    ap.add_argument("--rate-ours", type=float, help="signal-node's rate (default --rate)")
    ap.add_argument("--rate-ref", type=float, help="the reference's rate (default --rate)")
    ap.add_argument("--nodes", default="1",
                    help="comma list of node counts; more than 1 share one redis-server")
    ap.add_argument("--duration", type=float, default=20, help="seconds of load (default 20)")
    ap.add_argument("--drain", type=float, default=10, help="signal-bench --drain bound")
    args = ap.parse_args()
    setup_process()
    rates = {"ours": args.rate_ours or args.rate, "reference": args.rate_ref or args.rate}
    tgts = targets(args)
    sections = []
    for nodes in (int(x) for x in args.nodes.split(",")):
        where = f"{nodes} nodes + redis-server" if nodes > 1 else "1 node"
        same = rates["ours"] == rates["reference"]
        load = (f"{rates['ours']:g} signals/s per member" if same else
                f"{rates['ours']:g} (ours) / {rates['reference']:g} (reference) signals/s "
                "per member")
        sec = Section(f"latency: {where}, {args.connections} connections in rooms of "
                      f"{args.room_size}, {load}, {args.duration:g} s", COLS,
                      {"nodes": nodes, "rates": rates})
        for rnd, t in interleaved(args.rounds, tgts):
            progress(f"latency {nodes} node(s): {t.key} round {rnd}")
            sec.add(t, rnd, run(args, t, rates[t.key], nodes))
        sections.append(sec)
    report("latency", args, sections, [
        "Latency: receive time - send time of each signal sent in the window, whenever it "
        "arrived; cost ratio = reference / ours.",
        "node CPU%: the nodes' CPU (summed) inside the load (its middle 80 %), as a share of "
        "one core."])


if __name__ == "__main__":
    main()
