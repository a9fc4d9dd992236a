#!/usr/bin/env python3
"""Idle cost: the node's CPU and memory while N clients sit in rooms of two and
only answer the keepalive's pings (issue 9); with --peer, the same for the
Node.js reference, A B interleaved.

    /usr/bin/python3 bench/idle.py [--bin build/bin/signal-node] [--clients 5000,10000,18000]
        [--ping-s 5] [--seconds 20] [--after-leave-s 12] [--peer DIR] [--rounds N] [--json]

For each count: starts a node, connects the clients (Python WebSocket
clients in this process, each waiting for its welcome), lets it settle for
one ping period, then measures the node's CPU time (utime + stime from
/proc) and RSS over --seconds while the clients answer every ping. Reports
CPU as a percentage of one core, and per 10,000 connections, plus RSS per
connection, and RSS --after-leave-s seconds after every client has gone
(signal-node gives freed memory back every 10 s) against its base. A short
--ping-s (SIGNAL_PING_S) makes the keepalive's cost visible in a short run:
signal-node pings each silent connection once per period.

With --peer DIR (a copy of shared/peer after npm ci), each count is measured
on both servers, --rounds times each (default 2; 1 without --peer). The
reference always pings every 25 s, so with --peer --ping-s defaults to 25
and --seconds to 50: a fair window is a multiple of 25 s. The process's
open-file limit bounds --clients (20,000 here).
"""
import argparse
import contextlib
import selectors
import time

from benchlib import (HZ, MIB, Col, Section, add_target_args, cpu_ticks, interleaved, join,
                      progress, report, rss_bytes, setup_process, start_server, targets)
from wsclient import Timeout, WSClosed

COLS = [Col("cpu_pct", "cpu % core", ".2f", "cost"),
        Col("cpu_pct_10k", "% per 10k", ".3f", "cost"),
        Col("rss_mib", "RSS MiB", ".1f", "cost"), Col("kib_per_conn", "KiB/conn", ".2f", "cost"),
        Col("pings", "pings", ".0f"), Col("dropped", "dropped", ".0f"),
        Col("rss_base_mib", "RSS base", ".1f", "cost"),
        Col("rss_after_mib", "after leave", ".1f", "cost")]


class Pump:
    """Reads every client: answers pings (counted by each client) and counts
    the connections the node dropped."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.dropped = 0

    def add(self, client):
        """Adds a client to read."""
        self.sel.register(client.fileno(), selectors.EVENT_READ, client)

    def run(self, seconds):
        """Reads for that long; with 0, once, whatever is ready now."""
        end = time.monotonic() + seconds
        while True:
            left = max(0.0, end - time.monotonic())
            for key, _ in self.sel.select(timeout=min(left, 0.5)):
                try:
                    key.data.recv_message(0)
                except Timeout:
                    pass
                except WSClosed:
                    self.sel.unregister(key.fd)
                    self.dropped += 1
            if left <= 0:
                return


def run(target, count, args):
    """Measures one fresh node of target with count idle clients; returns the
    figures (a dict with a key per column)."""
    with contextlib.ExitStack() as stack:
        proc, port = start_server(stack, target, {"SIGNAL_PING_S": str(args.ping_s)}, "idle")
        rss0 = rss_bytes(proc.pid)
        clients = []
        stack.callback(lambda: [c.abort() for c in clients])
        pump = Pump()
        for i in range(count):
            clients.append(join(port, i))
            pump.add(clients[-1])
            if i % 100 == 99:  # the first clients are pinged while the last connect
                pump.run(0)
        pump.run(args.ping_s)  # settle: the joins' work is done, the pings have started
        t0 = cpu_ticks(proc.pid)
        w0 = time.monotonic()
        pump.run(args.seconds)
        t1, rss = cpu_ticks(proc.pid), rss_bytes(proc.pid)
        cpu = (t1 - t0) / HZ / (time.monotonic() - w0)
        pings = sum(c.pings for c in clients)
        for c in clients:
            c.abort()
        # The node gives memory back at its next trim check (every 10 s).
        time.sleep(args.after_leave_s)
        rss_after = rss_bytes(proc.pid)
    return dict(cpu_pct=cpu * 100, cpu_pct_10k=cpu * 100 * 10000 / count, rss_mib=rss / MIB,
                kib_per_conn=(rss - rss0) / 1024 / count, pings=pings, dropped=pump.dropped,
                rss_base_mib=rss0 / MIB, rss_after_mib=rss_after / MIB)


def main():
    """Parses the options, measures each count (A B A B with --peer), prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(ap, peer_default=None, rounds=None, bench=False)
    ap.add_argument("--clients", default="5000,10000,18000", help="comma list of counts")
    ap.add_argument("--ping-s", type=int, help="SIGNAL_PING_S (default 25 with --peer, else 5)")
    ap.add_argument("--seconds", type=float,
                    help="the measurement window (default 50 with --peer, else 20)")
    ap.add_argument("--after-leave-s", type=float, default=12,
                    help="seconds from the clients' leaving to the last RSS reading")
    args = ap.parse_args()
    args.ping_s = args.ping_s or (25 if args.peer else 5)
    args.seconds = args.seconds or (50 if args.peer else 20)
    args.rounds = args.rounds or (2 if args.peer else 1)
    setup_process()
    tgts = targets(args)
    sections = []
    for n in (int(x) for x in args.clients.split(",")):
        sec = Section(f"idle: {n} clients in rooms of 2, signal-node pinging every "
                      f"{args.ping_s} s (the reference: 25 s), {args.seconds:g} s window",
                      COLS, {"clients": n})
        for rnd, t in interleaved(args.rounds, tgts):
            progress(f"idle {n} clients: {t.key} round {rnd}")
            sec.add(t, rnd, run(t, n, args))
        sections.append(sec)
    report("idle", args, sections, [
        "cpu: the node's utime + stime over the window, as a share of one core; pings: received "
        "by the clients in all.",
        f"after leave: RSS {args.after_leave_s:g} s after every client dropped its connection. "
        "Cost ratio = reference / ours."])


if __name__ == "__main__":
    main()
