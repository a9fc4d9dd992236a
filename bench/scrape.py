#!/usr/bin/env python3
"""The cost of one /metrics scrape with N clients connected (issue 7), and the
drain timeline of a node holding them.

    /usr/bin/python3 bench/scrape.py [--bin build/bin/signal-node] [--clients 10000]
        [--scrapes 500] [--drain-close-s 5]

Opens N WebSocket clients in rooms of two, then scrapes /metrics on the admin
listener --scrapes times, one after another. It reports the node's CPU time per
scrape (from /proc/<pid>/stat before and after, so the client's own cost is
not counted), the wall time per scrape as the client sees it, and the size of
the answer. Then it sends SIGTERM (SIGNAL_DRAIN_S=0) and reports when readyz
turned 503, when the first and the last 1001 arrived, and when the node exited.
The node's open-file limit (and this process's) must allow N + 64.
"""
import argparse
import os
import resource
import selectors
import signal
import time

from benchlib import DEFAULT_BIN, cpu_ticks, free_port, join, start_node
from wsclient import WSClosed, http_request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--scrapes", type=int, default=500)
    ap.add_argument("--drain-close-s", type=int, default=5)
    a = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    admin = free_port()
    proc, port = start_node(a.bin, dict(SIGNAL_ADMIN_LISTEN=f"127.0.0.1:{admin}", SIGNAL_DRAIN_S="0",
                                        SIGNAL_DRAIN_CLOSE_S=str(a.drain_close_s),
                                        SIGNAL_LOG_LEVEL="warn"))
    t0 = time.monotonic()
    clients = [join(port, i) for i in range(a.clients)]
    print(f"{a.clients} clients connected in {time.monotonic() - t0:.1f} s")

    size = len(http_request("127.0.0.1", admin, "GET", "/metrics", timeout=10).body)
    hz = os.sysconf("SC_CLK_TCK")
    before = cpu_ticks(proc.pid)
    w0 = time.perf_counter()
    for _ in range(a.scrapes):
        r = http_request("127.0.0.1", admin, "GET", "/metrics", timeout=10)
        assert r.status == 200
    wall = (time.perf_counter() - w0) / a.scrapes
    cpu = (cpu_ticks(proc.pid) - before) / hz / a.scrapes
    print(f"/metrics with {a.clients} clients: {size} bytes, node CPU {cpu * 1e6:.0f} us per scrape "
          f"(over {a.scrapes}), {wall * 1e6:.0f} us wall per scrape as the client sees it")

    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c.fileno(), selectors.EVENT_READ, c)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    t_ready = None
    while t_ready is None and time.monotonic() - t0 < 5:
        if http_request("127.0.0.1", admin, "GET", "/readyz", timeout=5).status == 503:
            t_ready = time.monotonic() - t0
    closes = []
    while len(closes) < len(clients) and time.monotonic() - t0 < a.drain_close_s + 60:
        for key, _ in sel.select(timeout=1):
            c = key.data
            try:
                c.recv_message(10)
            except WSClosed:
                closes.append(time.monotonic() - t0)
                sel.unregister(key.fd)
    proc.wait(timeout=60)
    t_exit = time.monotonic() - t0
    print(f"drain: readyz 503 after {t_ready * 1000:.1f} ms; {len(closes)} closes with 1001 from "
          f"{closes[0]:.2f} s to {closes[-1]:.2f} s; exit {proc.returncode} at {t_exit:.2f} s")


if __name__ == "__main__":
    main()
