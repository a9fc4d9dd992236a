"""Issue 10, item 8: nothing forged reaches a client through Redis
(docs/cluster.md, "What a node accepts from a channel"). Whoever can PUBLISH
to Redis can write on a room's channel. Garbage, malformed messages and
well-formed ones whose packet is not UTF-8 JSON of the relayed shape are
dropped and counted (signal_bus_rejected_total), and nothing healthy is lost;
with SIGNAL_CLUSTER_SECRET, messages without the nodes' MAC, with another
secret's, a broken one, a stale stamp or a sequence number seen already (a
replay of a captured message) are dropped too, while the cluster relays
signals and presence as before, dead nodes' members included."""

import hashlib
import hmac
import json
import os
import signal
import time

import pytest

from harness import T, Redis, RedisConn, join, new_account, new_room, poll, start_cluster
from test_operations import log_lines, metrics, value

pytestmark = pytest.mark.cluster

CHANNEL = "signal:room:{}"
SECRET = "cluster-secret-0123456789abcdef"
OTHER_SECRET = "other-secret-0123456789abcdef"
REASONS = ("malformed", "invalid_packet", "unsigned", "unknown_key", "bad_mac", "stale", "replayed")
FAKE = "node-x:0000abcd"  # an instance no node has
KILL_WAIT = 10  # s: a dead node's members leave within 1.75 x TTL (2 s here), plus slack


def key_id(secret):
    return hmac.new(secret.encode(), b"signal-node cluster key id", hashlib.sha256).hexdigest()[:8]


def sign(secret, channel, signer, seq, message, stamp_ms=None):
    """message (bytes) behind an authentication head, as a node with secret signs it
    (docs/cluster.md, "Authenticated messages")."""
    stamp_ms = int(time.time() * 1000) if stamp_ms is None else stamp_ms
    head = f"A|{key_id(secret)}|{signer}|{seq}|{stamp_ms}|".encode()
    covered = message
    if message[:1] in (b"J", b"L"):  # less the version
        covered = message[:2] + message.split(b"|", 2)[2]
    mac = hmac.new(secret.encode(), b"signal-bus-1\n" + channel.encode() + b"\n" + head + covered,
                   hashlib.sha256).hexdigest()
    return head + mac.encode() + b"|" + message


def flip_mac(message):
    """message with one hex digit of its MAC changed."""
    at = len(b"|".join(message.split(b"|")[:5])) + 1
    return message[:at] + (b"1" if message[at:at + 1] == b"0" else b"0") + message[at + 1:]


def packet(sender, type_="offer", data=None):
    """A webrtc.signal packet as the relay writes it."""
    return json.dumps({"type": "webrtc.signal", "data": {
        "type": type_, "data": data or {}, "senderAccountId": sender,
        "senderInfo": {"id": sender, "name": None, "nick": None, "profile": {}, "updatedAt": None}}},
        separators=(",", ":")).encode()


def rejected(node):
    ms = metrics(node.port)
    return {r: value(ms, "signal_bus_rejected_total", reason=r) for r in REASONS}


def wait_rejected(node, **want):
    """Polls a node's metrics until its rejections by reason are want (0 for the others)."""
    full = {r: want.get(r, 0) for r in REASONS}
    return poll(lambda: rejected(node), until=lambda v: v == full, what=f"rejections {full}")


def publish(r, room, *messages):
    """PUBLISHes each message by hand on the room's channel; each must reach both nodes."""
    for m in messages:
        assert r.command("PUBLISH", CHANNEL.format(room), m) == 2, m


@pytest.fixture
def own_redis(tmp_base):
    r = Redis(tmp_base)
    yield r
    r.stop()


class Capture:
    """A raw subscription to a room's channel: what the nodes publish there."""

    def __init__(self, r, room):
        self.conn = RedisConn(r.port, timeout=T)
        self.conn.call("SUBSCRIBE", CHANNEL.format(room))

    def next(self, pred):
        """The next message published on the channel for which pred holds (bytes)."""
        deadline = time.monotonic() + T
        while True:
            kind, _, payload = self.conn.reply(timeout=max(0.1, deadline - time.monotonic()))
            if kind == "message" and pred(payload.encode()):
                return payload.encode()
            assert time.monotonic() < deadline, "no such message on the channel"

    def close(self):
        self.conn.close()


def test_garbage_on_a_room_channel_is_dropped_and_counted(own_redis, nodes):
    r = own_redis
    n1, n2 = start_cluster(nodes, r.url, 2, name="garbage")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    good_head = f"S|{FAKE}|1@{int(time.time() * 1e6)}|0|".encode()
    malformed = [b"hello", b"S|x", f"S|{FAKE}|1|5|ab".encode(), b"\xff\xfe\x00garbage",
                 b"J|1|evil|k|v", f"S|{FAKE}|1|0|".encode(), b"A|zz|" + packet("x"),
                 f"L|1|{FAKE}|{FAKE}|x".encode()]
    invalid = [good_head + b"not json",
               good_head + packet("x").replace(b'"x"', b'"x\xff"', 1),  # invalid UTF-8
               good_head + b'{"type":"webrtc.signal","data":{"type":"offer"}}',
               good_head + packet("x")[:-1],
               f"J|99999999|{FAKE}|{FAKE}:1|not json".encode(),
               f'J|99999999|{FAKE}|{FAKE}:1|{{"account":{{"id":"ghost"}}}}'.encode()]
    assert b"x\xff" in invalid[1], invalid[1]
    publish(r, room, *malformed, *invalid)
    # Nothing forged arrives, nothing healthy is lost: a's next signal is b's next
    # packet (Redis delivers to each node in the order published), and the other way.
    a.send("offer", {"n": 1}, to=b.sub)
    assert b.expect_signal("offer", a)["data"] == {"n": 1}
    b.send("answer", {"n": 2}, to=a.sub)
    assert a.expect_signal("answer", b)["data"] == {"n": 2}
    for n in (n1, n2):
        wait_rejected(n, malformed=len(malformed), invalid_packet=len(invalid))
    # One log line, not one per message.
    publish(r, room, *malformed * 3)
    for n in (n1, n2):
        wait_rejected(n, malformed=4 * len(malformed), invalid_packet=len(invalid))
        lines = [e for e in log_lines(n) if e["event"] == "bus_rejected"]
        assert 1 <= len(lines) <= 2, lines
        assert lines[0]["level"] == "warn" and lines[0]["room"] == room, lines[0]
        assert "not json" not in n.stderr(), "a payload in the log"


def test_signed_cluster_relays_and_drops_what_it_did_not_sign(own_redis, nodes):
    r = own_redis
    env = {"SIGNAL_CLUSTER_SECRET": SECRET}
    n1, n2 = start_cluster(nodes, r.url, 2, env, name="signed")
    room = new_room()
    channel = CHANNEL.format(room)
    cap = Capture(r, room)
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    x = join(n1, room, new_account("x"))
    b.expect_joined(x)
    a.expect_joined(x)
    x_joined = cap.next(lambda m: b"J|" in m and x.sub.encode() in m)
    a.send("offer", {"n": 1}, to=b.sub)
    assert b.expect_signal("offer", a)["data"] == {"n": 1}
    offer = cap.next(lambda m: b'"n":1' in m)
    cap.close()
    plain = offer.split(b"|", 6)[6] if offer.startswith(b"A|") else offer  # behind the head
    signer = plain.split(b"|")[1].decode()
    b.send("answer", {"n": 2}, to=a.sub)
    assert a.expect_signal("answer", b)["data"] == {"n": 2}
    x.close()
    b.expect_left(x)
    a.expect_left(x)

    forged_packet = packet(a.sub, "offer", {"n": "forged"})
    head = plain.split(b"{", 1)[0]
    publish(r, room,
            plain,                                          # unsigned: the head taken off
            f"J|99999999|{signer}|{signer}:999|".encode()   # unsigned presence of a ghost
            + json.dumps({"account": {"id": "ghost"}, "joinedAt": "2025-01-01T00:00:00.000Z"}).encode(),
            offer.replace(b'"n":1', b'"n":3'),              # bad MAC: the packet changed
            flip_mac(offer),                                # bad MAC
            sign(OTHER_SECRET, channel, signer, 10 ** 6, head + forged_packet),   # another secret
            sign(SECRET, channel, signer, 10 ** 6, head + forged_packet,
                 stamp_ms=int(time.time() * 1000) - 120000),                     # stale
            offer,                                          # replayed
            x_joined)                                       # replayed presence of x, who left
    a.send("after", {"n": 4}, to=b.sub)
    assert b.expect_signal("after", a)["data"] == {"n": 4}  # nothing came before it
    b.send("after", {"n": 5})
    assert a.expect_signal("after", b)["data"] == {"n": 5}
    wait_rejected(n2, unsigned=2, bad_mac=2, unknown_key=1, stale=1, replayed=2)
    # All claim to come from n1, which takes them for its own echo: never used.
    assert rejected(n1) == {reason: 0 for reason in REASONS}
    assert offer.startswith(f"A|{key_id(SECRET)}|{signer}|".encode()), offer[:80]
    y = join(n2, room, new_account("y"))
    assert sorted(p["accountId"] for p in y.welcome["data"]["participants"]) == sorted([a.sub, b.sub])
    a.expect_joined(y)
    for n in (n1, n2):
        assert SECRET not in n.stderr()
        assert any(e["event"] == "bus_auth" and key_id(SECRET) in e["msg"] for e in log_lines(n))


def test_node_with_another_secret_is_not_heard(own_redis, nodes):
    r = own_redis
    (n1,) = start_cluster(nodes, r.url, 1, {"SIGNAL_CLUSTER_SECRET": SECRET}, name="secret-a")
    (n2,) = start_cluster(nodes, r.url, 1, {"SIGNAL_CLUSTER_SECRET": OTHER_SECRET}, name="secret-b")
    room = new_room()
    b = join(n2, room, new_account("b"))
    a = join(n1, room, new_account("a"))
    a.send("offer", {"n": 1}, to=b.sub)
    # Then a signal signed with n2's secret, by hand: n2 delivers it, after what
    # it read before, so b's next packet is neither a's user-joined nor a's offer.
    head = f"S|{FAKE}|1@{int(time.time() * 1e6)}|{len(b.sub)}|{b.sub}".encode()
    publish(r, room, sign(OTHER_SECRET, CHANNEL.format(room), FAKE, 1, head + packet("marker")))
    assert b.expect_signal("offer", "marker")["data"] == {}
    wait_rejected(n2, unknown_key=2)  # a's join, then a's offer
    wait_rejected(n1, unknown_key=1)  # the marker
    line = poll(lambda: [e for e in log_lines(n2) if e["event"] == "bus_rejected"], what="a bus_rejected line")[0]
    assert key_id(SECRET) in line["msg"] and key_id(OTHER_SECRET) in line["msg"], line
    assert "SIGNAL_CLUSTER_SECRET" in line["msg"] and line["room"] == room, line
    for n in (n1, n2):
        assert SECRET not in n.stderr() and OTHER_SECRET not in n.stderr()


def test_two_secrets_during_a_change(own_redis, nodes):
    """The middle of a change of secret: one node signs with the old secret and accepts
    the new, the other the reverse; both hear each other, and nothing is rejected."""
    r = own_redis
    (n1,) = start_cluster(nodes, r.url, 1, {"SIGNAL_CLUSTER_SECRET": SECRET,
                                            "SIGNAL_CLUSTER_SECRET_ACCEPT": OTHER_SECRET}, name="old")
    (n2,) = start_cluster(nodes, r.url, 1, {"SIGNAL_CLUSTER_SECRET": OTHER_SECRET,
                                            "SIGNAL_CLUSTER_SECRET_ACCEPT": SECRET}, name="new")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    a.send("offer", {"n": 1}, to=b.sub)
    assert b.expect_signal("offer", a)["data"] == {"n": 1}
    b.send("answer", {"n": 2}, to=a.sub)
    assert a.expect_signal("answer", b)["data"] == {"n": 2}
    b.close()
    a.expect_left(b)
    for n in (n1, n2):
        assert rejected(n) == {reason: 0 for reason in REASONS}


def test_signed_cluster_announces_a_dead_nodes_leaves(own_redis, nodes):
    """A script cannot sign: the node that sweeps a dead node publishes its leaves."""
    r = own_redis
    env = {"SIGNAL_CLUSTER_SECRET": SECRET, "SIGNAL_NODE_TTL_S": "2"}
    n1, n2 = start_cluster(nodes, r.url, 2, env, name="signed-kill")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    n2.kill()
    a.expect_left(b, timeout=KILL_WAIT)
    assert rejected(n1) == {reason: 0 for reason in REASONS}


def test_signed_cluster_stalled_node_comes_back(own_redis, nodes):
    """A node stopped past the TTL is swept; when it runs again it reads the (signed)
    leaves of its own connections and announces them again."""
    r = own_redis
    env = {"SIGNAL_CLUSTER_SECRET": SECRET, "SIGNAL_NODE_TTL_S": "2"}
    n1, n2 = start_cluster(nodes, r.url, 2, env, name="signed-stall")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    os.kill(n2.proc.pid, signal.SIGSTOP)
    try:
        a.expect_left(b, timeout=KILL_WAIT)
    finally:
        os.kill(n2.proc.pid, signal.SIGCONT)
    a.expect_joined(b, timeout=KILL_WAIT)
    b.send("offer", {"n": 1}, to=a.sub)
    assert a.expect_signal("offer", b)["data"] == {"n": 1}
    for n in (n1, n2):
        assert rejected(n) == {reason: 0 for reason in REASONS}
