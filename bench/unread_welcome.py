#!/usr/bin/env python3
"""Unread welcomes (issue 10): the memory a node holds for clients that connect
with one token to a room whose welcome is large, and never read.

    /usr/bin/python3 bench/unread_welcome.py [--bin build/bin/signal-node[,other]]
        [--members 120] [--profile-bytes 10000] [--clients 40] [--seconds 60]
        [--env NAME=VALUE]... [--json]

For each binary (a comma list, measured one after the other): starts a node,
joins --members reading members, each with a profile of --profile-bytes in
its token (so the welcome lists them all: about members x profile bytes),
then connects --clients more with one token of another account, each with a
4 KiB receive buffer, that never read anything, not even their welcome. It
samples the node's RSS (/proc/<pid>/statm), the bytes the kernel holds in
the send queues of the node's sockets (/proc/net/tcp: with the node's
writes straight to the socket, that is where an unread welcome sits) and
its open connections every half second for --seconds, and reports: the
welcome's size, RSS before the non-readers came, the peaks, both at a few
times after they connected, and when the last of them was gone (the
node's signal_connections back to the members). The node gives freed
memory back every 10 s (node/main.c).
"""
import argparse
import contextlib
import json
import time
import uuid

from benchlib import MIB, SECRET, Target, progress, rss_bytes, start_server
from harness import http_request, kernel_queued, make_jwt
from wsclient import Timeout, WSClient

MARKS = (5, 10, 15, 20, 30, 45, 60, 90)


def connections(port):
    """The node's signal_connections gauge."""
    body = http_request("127.0.0.1", port, "GET", "/metrics", timeout=10).body.decode()
    for line in body.splitlines():
        if line.startswith("signal_connections "):
            return int(float(line.split()[1]))
    raise RuntimeError("no signal_connections in /metrics")


def token(sub, room, profile_bytes=0):
    """A token of sub for room, with a profile of about profile_bytes."""
    claims = {"sub": sub, "name": sub, "rooms": [room], "exp": int(time.time()) + 3600}
    if profile_bytes:
        claims["profile"] = {"bio": "p" * profile_bytes}
    return make_jwt(claims, key=SECRET)


def drain(clients):
    """Reads whatever the members have waiting (their user-joined packets); a
    frame that has not wholly arrived yet is left for the next call."""
    for c in clients:
        try:
            while c.pending():
                c.recv_json(0.2)
        except Timeout:
            pass


def run(binary, args):
    """One node: returns its figures."""
    with contextlib.ExitStack() as stack:
        env = dict(kv.split("=", 1) for kv in args.env)
        proc, port = start_server(stack, Target("ours", [binary]), env, "welcome")
        room = str(uuid.uuid4())
        path = f"/api/chat/realtime/{room}?tk="
        members = []
        for i in range(args.members):
            c = WSClient.connect("127.0.0.1", port, path + token(f"m{i}", room, args.profile_bytes),
                                 timeout=30)
            stack.callback(c.abort)
            c.recv_json(30)
            members.append(c)
            drain(members)
        progress(f"{binary}: {args.members} members joined")
        probe = WSClient.connect("127.0.0.1", port, path + token("probe", room), timeout=30)
        welcome = len(probe.recv_text(30).encode())
        probe.close()
        drain(members)
        base = rss_bytes(proc.pid)
        one = token("unread", room)
        t0 = time.monotonic()
        for _ in range(args.clients):
            c = WSClient.connect("127.0.0.1", port, path + one, timeout=30, rcvbuf=4096)
            stack.callback(c.abort)
        samples, gone_at = [], None
        while time.monotonic() - t0 < args.seconds:
            drain(members)
            t = time.monotonic() - t0
            n = connections(port)
            samples.append((t, rss_bytes(proc.pid), n, kernel_queued(port)))
            if gone_at is None and n <= args.members:
                gone_at = t
            time.sleep(0.5)
        at = {}
        for mark in MARKS:
            near = [s for s in samples if s[0] >= mark]
            if near:
                at[mark] = (near[0][1] / MIB, near[0][3] / MIB)
        return {"binary": binary, "welcome_bytes": welcome, "rss_base_mib": base / MIB,
                "rss_peak_mib": max(s[1] for s in samples) / MIB,
                "kernel_peak_mib": max(s[3] for s in samples) / MIB, "at_mib": at,
                "non_readers_gone_s": gone_at}


def main():
    """Parses the options, measures each binary, prints the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/bin/signal-node", help="comma list of binaries")
    ap.add_argument("--members", type=int, default=120)
    ap.add_argument("--profile-bytes", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the node")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = [run(b, args) for b in args.bin.split(",")]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        gone = r["non_readers_gone_s"]
        print(f"{r['binary']}: welcome {r['welcome_bytes'] / MIB:.2f} MiB, "
              f"RSS base {r['rss_base_mib']:.1f} MiB, peak {r['rss_peak_mib']:.1f} MiB, "
              f"kernel send queues peak {r['kernel_peak_mib']:.1f} MiB, "
              f"non-readers gone after {'-' if gone is None else f'{gone:.1f} s'}")
        print("  after they connected, RSS / kernel send queues: " +
              ", ".join(f"{m} s {v:.1f}/{k:.1f}" for m, (v, k) in r["at_mib"].items()) + " MiB")


if __name__ == "__main__":
    main()
