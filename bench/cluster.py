#!/usr/bin/env python3
"""Cluster figures, with one redis-server and two nodes on loopback:

- the round trip A->B->A of one signal between two clients on different nodes;
- how long after Redis restarts (killed, then started again on its port)
  signals flow across nodes again, and a member who joined meanwhile is seen;
- how long after a node is killed (SIGKILL) its member's user-left arrives.

    /usr/bin/python3 bench/cluster.py [--bin build/bin/signal-node] [--ttl 6]
    /usr/bin/python3 bench/cluster.py --peer /tmp/peer     # the Node.js reference

The clients are the test suite's Python WebSocket client, as in measure.py.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import ROOT, free_port, round_trips, start, stop, token  # noqa: E402
from wsclient import WSClient  # noqa: E402


class Redis:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                              capture_output=True, text=True).stdout.strip() == "PONG":
                return time.perf_counter()
            time.sleep(0.01)
        raise SystemExit("redis did not start")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def client(tool, port, room, sub):
    c = WSClient.connect("127.0.0.1", port,
                         f"/api/chat/realtime/{room}?tk={token(tool, sub, [room])}")
    c.recv_json()
    return c


def kind(m):
    return m.get("data", {}).get("type") if m.get("type") == "webrtc.signal" else m.get("type")


def wait_for(c, pred, timeout):
    """The first message matching pred, or None after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            m = c.recv_json(timeout=max(0.01, deadline - time.monotonic()))
        except AssertionError:
            return None
        if pred(m):
            return m
    return None


def round_trip(tool, ports, n):
    room = str(uuid.uuid4())
    a = client(tool, ports[0], room, "a")
    b = client(tool, ports[1], room, "b")
    wait_for(a, lambda m: kind(m) == "user-joined", 10)
    p50, p99 = round_trips(a, b, n)
    a.abort()
    b.abort()
    return p50, p99


def redis_restart(tool, redis, ports, down_s):
    room = str(uuid.uuid4())
    a = client(tool, ports[0], room, "ra")
    b = client(tool, ports[1], room, "rb")
    wait_for(a, lambda m: kind(m) == "user-joined", 10)
    redis.kill()
    # Joins while Redis is away: c must be announced to a once it is back.
    c = WSClient.connect("127.0.0.1", ports[1],
                         f"/api/chat/realtime/{room}?tk={token(tool, 'rc', [room])}")
    c.recv_json(timeout=10)
    time.sleep(down_s)  # the outage itself, so that the nodes' backoff grows as in real life
    up = redis.start()
    signal_at = joined_at = None
    i = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (signal_at and joined_at):
        i += 1
        a.send_json({"type": "probe", "data": {"i": i}})
        for m in drain(b, first_wait=0.02):
            if kind(m) == "probe" and not signal_at:
                signal_at = time.perf_counter()
        for m in drain(a):
            if kind(m) == "user-joined" and m["data"].get("senderAccountId") == "rc":
                joined_at = joined_at or time.perf_counter()
    for x in (a, b, c):
        x.abort()
    return ((signal_at - up) * 1000 if signal_at else None,
            (joined_at - up) * 1000 if joined_at else None)


def drain(c, first_wait=0.001):
    out = []
    wait = first_wait
    while True:
        try:
            out.append(c.recv_json(timeout=wait))
        except AssertionError:
            return out
        wait = 0.001


def sigkill(tool, command, redis, ttl, runs):
    took = []
    for _ in range(runs):
        env = {"SIGNAL_REDIS_URL": f"redis://127.0.0.1:{redis.port}", "SIGNAL_NODE_TTL_S": str(ttl)}
        pa, pb = free_port(), free_port()
        na, _ = start(command, pa, dict(env, SIGNAL_NODE_ID="ka"))
        nb, _ = start(command, pb, dict(env, SIGNAL_NODE_ID="kb"))
        room = str(uuid.uuid4())
        a = client(tool, pa, room, "ka")
        b = client(tool, pb, room, "kb")  # kept open: it must not leave by itself
        wait_for(a, lambda m: kind(m) == "user-joined", 10)
        nb.kill()
        t0 = time.perf_counter()
        m = wait_for(a, lambda m: kind(m) == "user-left", 3 * ttl + 10)
        if m:
            took.append(time.perf_counter() - t0)
        a.abort()
        b.abort()
        nb.wait()
        stop(na)
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "signal-node"))
    ap.add_argument("--token-bin", default=os.path.join(ROOT, "build", "bin", "signal-token"))
    ap.add_argument("--round-trips", type=int, default=2000)
    ap.add_argument("--ttl", type=int, default=6, help="SIGNAL_NODE_TTL_S for the SIGKILL runs")
    ap.add_argument("--kill-runs", type=int, default=3)
    ap.add_argument("--redis-down-s", type=float, default=5)
    ap.add_argument("--peer", metavar="DIR", help="measure the Node.js reference in DIR")
    args = ap.parse_args()
    command = ["node", os.path.join(args.peer, "server.js")] if args.peer else [args.bin]
    redis = Redis()
    redis.start()
    nodes = []
    try:
        env = {"SIGNAL_REDIS_URL": f"redis://127.0.0.1:{redis.port}"}
        ports = [free_port(), free_port()]
        for i, p in enumerate(ports):
            nodes.append(start(command, p, dict(env, SIGNAL_NODE_ID=f"bench-{i}"))[0])
        p50, p99 = round_trip(args.token_bin, ports, args.round_trips)
        print(f"cross-node round trip A->B->A ({args.round_trips}): p50 {p50:.0f} us, "
              f"p99 {p99:.0f} us")
        sig, pres = redis_restart(args.token_bin, redis, ports, args.redis_down_s)
        fmt = lambda v: f"{v:.0f} ms" if v is not None else "not within 30 s"  # noqa: E731
        print(f"after Redis was down {args.redis_down_s} s: signals across nodes again after {fmt(sig)}, "
              f"a member who joined meanwhile seen after {fmt(pres)}")
        for n in nodes:
            stop(n)
        nodes = []
        took = sigkill(args.token_bin, command, redis, args.ttl, args.kill_runs)
        if not args.kill_runs:
            pass
        elif took:
            print(f"SIGKILL of a node -> user-left at the other (TTL {args.ttl} s, "
                  f"{len(took)} runs): median {statistics.median(took):.1f} s, "
                  f"max {max(took):.1f} s")
        else:
            print("SIGKILL of a node -> no user-left")
    finally:
        for n in nodes:
            n.kill()
        redis.close()


if __name__ == "__main__":
    main()
