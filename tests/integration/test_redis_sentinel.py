"""Issue 12, Sentinel: nodes whose SIGNAL_REDIS_URL is redis+sentinel://
(docs/configuration.md, "Sentinel"). A master, a replica and three
sentinels of Debian's redis-sentinel on loopback, with a quorum of 2 and short
timeouts, written in the test's own directory (sentinels rewrite their
configuration file); the package's own service, if it runs, is never used.

The master is SIGKILLed during a call: the sentinels promote the replica and
publish +switch-master, the nodes reconnect to it, resubscribe and restore
their presence, and signals flow across nodes again within RECOVER (printed:
the time from the kill to the first signal across). Also: an unreachable
first sentinel (the second answers), and a server that is not the master
(ROLE), which never gets a node's writes; a Sentinel URL as one shard of
several."""

import os
import shutil
import subprocess
import time

import pytest

from harness import (HOST, REDIS_SERVER, T, Inbox, Redis, RedisConn, c_only, free_port, join, new_account,
                     new_room, poll, shard_of, start_cluster, wait_ready)
from wsclient import Timeout

pytestmark = [pytest.mark.cluster, c_only]

MASTER = "signal-test"  # not the package's "mymaster", whatever else runs here
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
# From the kill: the sentinels find the master down (DOWN_AFTER_MS), agree
# (quorum 2) and elect a leader within about a second, promote the replica and
# publish +switch-master within another; the nodes ask again at once, or at
# their next retry (at most 1.5 s), then restore presence and resubscribe (a
# few round trips). About 3 to 5 s; the bound leaves room for a loaded 2-core
# box and the sentinels' randomised election delays.
RECOVER = 20
# The commands a node sends, as the last command CLIENT LIST shows.
NODE_COMMANDS = {"evalsha", "eval", "publish", "subscribe", "sismember", "set", "sadd", "multi", "exec", "script|load",
                 "script", "select", "auth", "client|list", "role"}


def sentinel_cmd(conf):
    """Debian's redis-sentinel (tools/setup.sh installs it); redis-server --sentinel is the same binary."""
    binary = shutil.which("redis-sentinel")
    return [binary, conf] if binary else [REDIS_SERVER, conf, "--sentinel"]


def start_sentinel(tmpdir, master, master_port, quorum, settings):
    """A sentinel on a free loopback port that monitors master at master_port, with
    `sentinel <name> <master> <value>` for each of settings (a dict), its config in a
    folder of its own under tmpdir (sentinels rewrite it); returns (port, Popen)."""
    port = free_port()
    d = os.path.join(tmpdir, f"sentinel-{port}")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind {HOST}\ndir {d}\nlogfile {d}/sentinel.log\n"
                f"sentinel monitor {master} {HOST} {master_port} {quorum}\n")
        f.writelines(f"sentinel {name} {master} {value}\n" for name, value in settings.items())
    return port, subprocess.Popen(sentinel_cmd(conf), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)


class Sentinels:
    """A master, its replica and three sentinels (quorum 2), all on free loopback ports."""

    def __init__(self, tmpdir, n=3):
        self.tmpdir = tmpdir
        self.master = Redis(tmpdir)
        self.replica = Redis(tmpdir, args=["--replicaof", HOST, str(self.master.port)])
        self.ports, self.procs = [], []
        for _ in range(n):
            port, proc = start_sentinel(tmpdir, MASTER, self.master.port, 2,
                                        {"down-after-milliseconds": DOWN_AFTER_MS,
                                         "failover-timeout": FAILOVER_TIMEOUT_MS, "parallel-syncs": 1})
            self.ports.append(port)
            self.procs.append(proc)
        # Ready when each sentinel knows the replica and the two other sentinels,
        # and the replica is in sync: then a failover can happen.
        for port in self.ports:
            poll(lambda: self.ask(port, "SENTINEL", "MASTER", MASTER), what=f"sentinel {port} up",
                 until=lambda m: m and dict(zip(m[::2], m[1::2])).get("num-other-sentinels") == str(n - 1)
                 and dict(zip(m[::2], m[1::2])).get("num-slaves") == "1", timeout=30)
        poll(lambda: "master_link_status:up" in self.replica.command("INFO", "replication"),
             what="the replica in sync", timeout=30)

    def url(self, ports=None):
        return "redis+sentinel://" + ",".join(f"{HOST}:{p}" for p in (ports or self.ports)) + f"/{MASTER}"

    @staticmethod
    def ask(port, *args):
        try:
            with RedisConn(port, timeout=2) as r:
                return r.call(*args)
        except (OSError, RuntimeError):
            return None

    def master_port(self):
        """The master's port, as the first sentinel that answers says."""
        for port in self.ports:
            addr = self.ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            if addr:
                return int(addr[1])
        return None

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.master.stop()
        self.replica.stop()


@pytest.fixture
def sentinels(tmp_base):
    """Listed before `nodes`, so the nodes stop first, while Redis is up."""
    s = Sentinels(tmp_base)
    yield s
    s.stop()


def node_clients(port):
    """The clients of the Redis at port whose last command is one a node sends (not a sentinel or a replica link)."""
    with RedisConn(port) as r:
        me = str(r.call("CLIENT", "ID"))
        listing = r.call("CLIENT", "LIST")
    out = []
    for line in listing.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if f.get("id") != me and f.get("cmd") in NODE_COMMANDS and not f.get("name", "").startswith("sentinel-") and "S" not in f.get(
                "flags", "") and "M" not in f.get("flags", ""):
            out.append(f)
    return out


def roster(box, welcome_ids):
    known = set(welcome_ids)
    for kind, who in box.presence():
        (known.add if kind == "user-joined" else known.discard)(who)
    return known


def room_on(shard, n):
    while True:
        room = new_room()
        if shard_of(room, n) == shard:
            return room


def first_across(sender, box, timeout):
    """sender sends a numbered offer every 100 ms until box's member gets one; returns the seconds it took."""
    start, n = time.monotonic(), 0
    while True:
        assert time.monotonic() - start < timeout, f"no signal across within {timeout} s"
        n += 1
        sender.send("offer", {"n": n})
        try:
            box.wait_for(lambda p: p.get("type") == "webrtc.signal" and p["data"].get("type") == "offer"
                         and p["data"]["senderAccountId"] == sender.sub, timeout=0.1)
            return time.monotonic() - start
        except Timeout:
            pass


def test_master_killed_during_a_call(sentinels, nodes):
    """The master is SIGKILLed during a call across two nodes: signals flow again and
    presence is right within RECOVER; the old master, restarted, gets no node's writes."""
    n1, n2 = start_cluster(nodes, sentinels.url(), 2, name="sentinel")
    for n in (n1, n2):
        wait_ready(n)
    room = new_room()
    a = join(n1, room)
    b = join(n2, room)
    a.expect_joined(b)
    b.send("offer", {"n": 0})
    assert a.expect_signal("offer", b)["data"] == {"n": 0}
    boxes = {m.sub: Inbox(m) for m in (a, b)}
    old = sentinels.master.port
    sentinels.master.stop()
    killed = time.monotonic()
    took = first_across(a, boxes[b.sub], RECOVER)
    # The other way needs the other two connections (b's node publishing, a's
    # subscribed), which may come back a moment later: the same loop.
    first_across(b, boxes[a.sub], RECOVER)
    both = time.monotonic() - killed
    print(f"\nsentinel failover: master killed -> first signal across in {took:.2f} s, "
          f"both ways in {both:.2f} s (down-after {DOWN_AFTER_MS} ms)")
    assert both < RECOVER
    assert sentinels.master_port() == sentinels.replica.port
    # Presence: a third member's welcome on each node, the others' user-joined and user-left.
    for node in (n1, n2):
        c = join(node, room)
        assert sorted(p["accountId"] for p in c.welcome["data"]["participants"]) == sorted([a.sub, b.sub])
        for m in (a, b):
            boxes[m.sub].wait_for(lambda p: p.get("type") == "webrtc.signal" and p["data"].get("type") == "user-joined"
                                  and p["data"]["senderAccountId"] == c.sub, timeout=T, what="c's user-joined")
        c.close()
        for m in (a, b):
            boxes[m.sub].wait_for(lambda p: p.get("type") == "webrtc.signal" and p["data"].get("type") == "user-left"
                                  and p["data"]["senderAccountId"] == c.sub, timeout=T, what="c's user-left")
    assert roster(boxes[a.sub], [b.sub]) == {b.sub}
    assert roster(boxes[b.sub], [a.sub]) == {a.sub}
    for n in (n1, n2):
        assert "redis_master_switched" in n.stderr(), n.logs()
    # The old master comes back (empty, saying it is a master until the
    # sentinels make it a replica): the nodes stay on the new one.
    back = Redis(sentinels.tmpdir, port=old)
    try:
        poll(lambda: Sentinels.ask(old, "ROLE"), until=lambda r: r and r[0] == "slave", timeout=RECOVER,
             what="the old master made a replica")
        b.send("offer", {"n": "last"})
        assert boxes[a.sub].wait_for(lambda p: p.get("type") == "webrtc.signal" and p["data"].get("data") == {
            "n": "last"}, timeout=T)
        assert node_clients(old) == []
    finally:
        back.stop()


def test_one_shard_of_several(sentinels, nodes, tmp_base):
    """A Sentinel URL as one shard of SIGNAL_REDIS_URL beside a plain one: the
    master's failover leaves the other shard's rooms untouched, and its own
    rooms recover."""
    plain = Redis(tmp_base)
    try:
        n1, n2 = start_cluster(nodes, f"{sentinels.url()},{plain.url}", 2, name="sentinel-shard")
        calls = []
        for shard in (0, 1):
            room = room_on(shard, 2)
            a = join(n1, room)
            b = join(n2, room)
            a.expect_joined(b)
            calls.append((a, Inbox(b)))
        sentinels.master.stop()
        # The plain shard's call goes on at once (well before any failover ends) ...
        (a, box) = calls[1]
        assert first_across(a, box, T) < DOWN_AFTER_MS / 1000
        # ... and the Sentinel shard's comes back.
        (a, box) = calls[0]
        first_across(a, box, RECOVER)
    finally:
        plain.stop()


def test_first_sentinel_unreachable(sentinels, nodes):
    """Nothing listens where the first sentinel should be: the second one is asked,
    by the bus's connections and by membership `redis`'s (the same URL), which
    share one watch per node."""
    url = sentinels.url([free_port()] + sentinels.ports[1:])
    # (start_cluster waits for each to be ready: membership `redis`)
    n1, n2 = start_cluster(nodes, url, 2, {"SIGNAL_MEMBERSHIP": "redis"}, name="sentinel-skip")
    room = new_room()
    a_sub, b_sub = new_account("a"), new_account("b")
    assert sentinels.master.command("SADD", f"chat:{room}:members", a_sub, b_sub) == 2
    a = join(n1, room, a_sub, rooms=None)
    b = join(n2, room, b_sub, rooms=None)
    assert [p["accountId"] for p in b.welcome["data"]["participants"]] == [a.sub]
    a.expect_joined(b)
    b.send("offer", {"n": 1})
    assert a.expect_signal("offer", b)["data"] == {"n": 1}
    assert len(node_clients(sentinels.master.port)) == 6  # 2 nodes x publisher, subscriber, membership
    for n in (n1, n2):  # one watch, on the second sentinel; the first one's failure logged once
        poll(lambda: "redis_sentinel_watching" in n.stderr(), what="the node to follow the master")
        assert n.stderr().count("redis_sentinel_watching") == 1, n.logs()
        assert f"following master {MASTER} on {HOST}:{sentinels.ports[1]}" in n.stderr(), n.logs()
        assert n.stderr().count("redis_sentinel_watch_lost") == 1, n.logs()


def test_a_replica_is_never_written(sentinels, nodes, tmp_base):
    """A sentinel names a replica as the master: the node checks ROLE, logs it,
    never becomes ready and sends the replica nothing but the handshake."""
    # A sentinel of its own that monitors the replica as if it were a master.
    port, proc = start_sentinel(tmp_base, "liar", sentinels.replica.port, 1,
                                {"down-after-milliseconds": 60000})
    try:
        poll(lambda: Sentinels.ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "liar"),
             until=lambda a: a == [HOST, str(sentinels.replica.port)], what="the liar sentinel up")
        (n,) = start_cluster(nodes, f"redis+sentinel://{HOST}:{port}/liar", 1, name="sentinel-liar")
        poll(lambda: "redis_not_master" in n.stderr(), what="the node to refuse the replica")
        assert n.http("GET", "/readyz").status == 503
        assert n.stderr().count("redis_not_master") <= 2, n.logs()  # bus and subscriber, once each
        assert "redis_up" not in n.stderr(), n.logs()
        info = sentinels.replica.command("INFO", "commandstats")
        # (sentinels PUBLISH and SUBSCRIBE on every server: their hello channel)
        for cmd in ("evalsha", "eval", "script", "sadd", "hset", "multi", "exec"):
            assert f"cmdstat_{cmd}:" not in info, info
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_master_demoted_under_a_node(tmp_base, nodes):
    """A plain redis:// server made a replica while a node uses it (no sentinel
    to tell): its scripts answer READONLY, the node drops the connection, and
    ROLE keeps it off the replica (not ready) until it is a master again."""
    other = Redis(tmp_base)
    r = Redis(tmp_base)
    try:
        (n,) = start_cluster(nodes, r.url, 1, name="demoted", env={"SIGNAL_NODE_TTL_S": "2"})
        wait_ready(n)
        assert r.command("REPLICAOF", HOST, str(other.port)) == "OK"
        poll(lambda: "redis_not_master" in n.stderr(), what="the node to leave the replica")
        assert "READONLY" in n.stderr(), n.logs()
        poll(lambda: n.http("GET", "/readyz").status, until=lambda s: s == 503, what="the node not ready")
        assert r.command("REPLICAOF", "NO", "ONE") == "OK"
        wait_ready(n)
    finally:
        r.stop()
        other.stop()
