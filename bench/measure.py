#!/usr/bin/env python3
"""Single-node figures: start-up time, RSS idle and with N clients, and one
signal's round trip between two local clients.

    /usr/bin/python3 bench/measure.py [--bin build/bin/signal-node] [--clients 1000]
    /usr/bin/python3 bench/measure.py --peer /tmp/peer     # the Node.js reference

The clients are the test suite's Python WebSocket client, so the round trip
includes its overhead on both ends; compare runs made with the same tool.
Start-up time is from exec until the port accepts a TCP connection.
"""
import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from wsclient import WSClient  # noqa: E402

SECRET = "bench-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(tool, sub, rooms):
    return subprocess.check_output(
        [tool, "--secret", SECRET, "--sub", sub, "--name", sub, "--rooms", ",".join(rooms)],
        text=True).strip()


def start(command, port, extra_env=None):
    env = dict(os.environ, SIGNAL_LISTEN=f"127.0.0.1:{port}", SIGNAL_JWT_SECRET=SECRET,
               SIGNAL_DRAIN_S="0", SIGNAL_LOG_LEVEL="warn", SIGNAL_RATE_PER_S="100000",
               SIGNAL_RATE_BURST="100000", **(extra_env or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = t0 + 10
    while time.perf_counter() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, time.perf_counter() - t0
        except OSError:
            time.sleep(0.001)
    proc.kill()
    raise SystemExit("node did not start")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stop(proc):
    proc.terminate()
    proc.wait(timeout=10)


def round_trips(a, b, n):
    """p50 and p99 in microseconds of n offers A->B answered B->A (accounts a, b)."""
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        a.send_json({"type": "offer", "data": {"i": i}, "to": "b"})
        b.recv_json()
        b.send_json({"type": "answer", "data": {"i": i}, "to": "a"})
        a.recv_json()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "signal-node"))
    ap.add_argument("--token-bin", default=os.path.join(ROOT, "build", "bin", "signal-token"))
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--room-size", type=int, default=4)
    ap.add_argument("--round-trips", type=int, default=2000)
    ap.add_argument("--peer", metavar="DIR",
                    help="measure the Node.js reference in DIR (a copy of shared/peer after npm ci)")
    args = ap.parse_args()
    command = ["node", os.path.join(args.peer, "server.js")] if args.peer else [args.bin]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    startups = []
    for _ in range(10):
        proc, took = start(command, free_port())
        startups.append(took * 1000)
        stop(proc)
    print(f"start-up to accepting: median {statistics.median(startups):.1f} ms "
          f"(min {min(startups):.1f}, max {max(startups):.1f}, 10 runs)")

    port = free_port()
    proc, _ = start(command, port)
    print(f"RSS idle: {rss_kib(proc.pid) / 1024:.1f} MiB")

    rooms = [str(uuid.uuid4()) for _ in range(args.clients // args.room_size)]
    clients = []
    for i in range(args.clients):
        room = rooms[i // args.room_size]
        tok = token(args.token_bin, f"bench-{i}", [room])
        c = WSClient.connect("127.0.0.1", port, f"/api/chat/realtime/{room}?tk={tok}")
        c.recv_json()
        clients.append(c)
    print(f"RSS with {len(clients)} clients in {len(rooms)} rooms: "
          f"{rss_kib(proc.pid) / 1024:.1f} MiB")
    for c in clients:
        c.abort()

    room = str(uuid.uuid4())
    a = WSClient.connect("127.0.0.1", port, f"/api/chat/realtime/{room}?tk={token(args.token_bin, 'a', [room])}")
    a.recv_json()
    b = WSClient.connect("127.0.0.1", port, f"/api/chat/realtime/{room}?tk={token(args.token_bin, 'b', [room])}")
    b.recv_json()
    a.recv_json()  # user-joined
    p50, p99 = round_trips(a, b, args.round_trips)
    print(f"round trip A->B->A ({args.round_trips}): p50 {p50:.0f} us, p99 {p99:.0f} us")
    stop(proc)


if __name__ == "__main__":
    main()
