#!/usr/bin/env python3
"""Idle cost: the node's CPU and memory while N clients sit in rooms of two and
only answer the keepalive's pings (issue 9).

    /usr/bin/python3 bench/idle.py [--bin build/bin/signal-node] [--clients 5000,10000,18000]
        [--ping-s 5] [--seconds 20]

For each count: starts a node, connects the clients (each waits for its
welcome), lets it settle for one ping period, then measures the node's CPU
time (utime + stime from /proc) and RSS over --seconds while the clients
answer every ping. Reports CPU as a percentage of one core, and per 10,000
connections, plus RSS per connection, and RSS 12 s after every client
has gone (the node gives freed memory back every 10 s) against its base. A short --ping-s makes the keepalive's
cost visible in a short run: the node pings each silent connection once per
period. The process's open-file limit bounds --clients (20,000 here).
"""
import argparse
import os
import resource
import selectors
import signal
import time

from benchlib import DEFAULT_BIN, cpu_ticks, join, rss_bytes, start_node
from wsclient import Timeout, WSClosed


class Pump:
    """Reads every client: answers pings (counted by each client) and counts
    the connections the node dropped."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.dropped = 0

    def add(self, client):
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


def run(binary, count, ping_s, seconds):
    env = dict(SIGNAL_DRAIN_S="0", SIGNAL_DRAIN_CLOSE_S="0", SIGNAL_LOG_LEVEL="warn", SIGNAL_PING_S=str(ping_s))
    proc, port = start_node(binary, env)
    try:
        rss0 = rss_bytes(proc.pid)
        clients = []
        pump = Pump()
        for i in range(count):
            clients.append(join(port, i))
            pump.add(clients[-1])
            if i % 100 == 99:  # the first clients are pinged while the last connect
                pump.run(0)
        pump.run(ping_s)  # settle: the joins' work is done, the pings have started
        t0 = cpu_ticks(proc.pid)
        w0 = time.monotonic()
        pump.run(seconds)
        t1, rss = cpu_ticks(proc.pid), rss_bytes(proc.pid)
        wall = time.monotonic() - w0
        cpu = (t1 - t0) / os.sysconf("SC_CLK_TCK") / wall
        pings = sum(c.pings for c in clients)
        for c in clients:
            c.abort()
        # The node gives memory back at its next trim check (every 10 s).
        time.sleep(float(os.environ.get("IDLE_AFTER_S", "12")))
        rss_after = rss_bytes(proc.pid)
        return cpu, rss, rss0, rss_after, pings, pump.dropped
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--clients", default="5000,10000,18000")
    ap.add_argument("--ping-s", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"{'clients':>8} {'cpu % core':>11} {'% per 10k':>10} {'RSS MiB':>8} {'KiB/conn':>9} {'pings':>7} "
          f"{'dropped':>8} {'RSS base':>9} {'after leave':>12}")
    for n in (int(x) for x in a.clients.split(",")):
        cpu, rss, rss0, rss_after, pings, dropped = run(a.bin, n, a.ping_s, a.seconds)
        print(f"{n:>8} {cpu * 100:>11.2f} {cpu * 100 * 10000 / n:>10.3f} {rss / 2**20:>8.1f} "
              f"{(rss - rss0) / 1024 / n:>9.2f} {pings:>7} {dropped:>8} {rss0 / 2**20:>9.1f} "
              f"{rss_after / 2**20:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
