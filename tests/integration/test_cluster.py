"""Contract §5: many nodes sharing one Redis behave as one. Rooms span nodes;
participants, user-joined/left, routing, unknown_target, order, isolation and
a node's death all hold across nodes."""

import signal
import time

import pytest

from harness import T, join, new_account, new_room

# Rooms across nodes arrive with the Redis bus (issue 3); until then these
# tests document the behaviour it must have.
pytestmark = [pytest.mark.cluster,
              pytest.mark.skip(reason="needs the Redis cluster bus (issue 3)")]


@pytest.fixture(scope="module")
def pair(module_nodes, redis):
    n1 = module_nodes.start({"SIGNAL_REDIS_URL": redis.url, "SIGNAL_NODE_ID": "cluster-a"})
    n2 = module_nodes.start({"SIGNAL_REDIS_URL": redis.url, "SIGNAL_NODE_ID": "cluster-b"})
    return n1, n2


def marker(sender, receivers, tag="marker"):
    sender.send("marker", {"tag": tag})
    for r in receivers:
        assert r.expect_signal("marker", sender)["data"] == {"tag": tag}


def test_room_spans_nodes(pair):
    n1, n2 = pair
    room = new_room()
    a = join(n1, room, new_account("a"), name="Alice", nick="al")
    b = join(n2, room, new_account("b"))
    parts = b.welcome["data"]["participants"]
    assert len(parts) == 1 and parts[0]["accountId"] == a.sub
    assert parts[0]["account"] == a.account and parts[0]["name"] == "al" and parts[0]["identity"] == "Alice"
    a.expect_joined(b)
    b.send("offer", {"sdp": "x"})
    d = a.expect_signal("offer", b)
    assert d == {"type": "offer", "data": {"sdp": "x"}, "senderAccountId": b.sub, "senderInfo": b.account}
    a.send("answer", {"sdp": "y"}, to=b.sub)
    d = b.expect_signal("answer", a)
    assert d["to"] == b.sub and d["senderInfo"] == a.account
    c = join(n1, room, new_account("c"))
    a.expect_joined(c)
    b.expect_joined(c)
    assert sorted(p["accountId"] for p in c.welcome["data"]["participants"]) == sorted([a.sub, b.sub])
    b.close()
    a.expect_left(b)
    c.expect_left(b)


def test_to_and_unknown_target_across_nodes(pair):
    n1, n2 = pair
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    c = join(n2, room, new_account("c"))
    a.expect_joined(c)
    b.expect_joined(c)
    a.send("offer", {"for": "b"}, to=b.sub)
    assert b.expect_signal("offer", a)["data"] == {"for": "b"}
    a.send("offer", {}, to=new_account("ghost"))
    a.expect_error("unknown_target")
    marker(a, [c, b])  # c got nothing of the directed signal


def test_account_on_two_nodes(pair):
    n1, n2 = pair
    room = new_room()
    b = join(n1, room, new_account("b"))
    c = join(n2, room, new_account("c"))
    b.expect_joined(c)
    a1 = join(n1, room, new_account("a"))
    b.expect_joined(a1)
    c.expect_joined(a1)
    a2 = join(n2, room, a1.sub)  # the same account's second device, on the other node
    assert sorted(p["accountId"] for p in a2.welcome["data"]["participants"]) == sorted([b.sub, c.sub])
    marker(a2, [b, c, a1], "a2-joined")  # no second user-joined
    # a1's signal reaches a2 on the other node, and the others
    a1.send("offer", {"from": "a1"})
    for m in (a2, b, c):
        assert m.expect_signal("offer", a1)["data"] == {"from": "a1"}
    # directed to the account: both devices, across nodes
    c.send("ring", {}, to=a1.sub)
    a1.expect_signal("ring", c)
    a2.expect_signal("ring", c)
    marker(c, [b, a1, a2], "after-ring")
    a1.close()
    marker(a2, [b, c], "a1-gone")  # a still has a2: no user-left
    a2.close()
    b.expect_left(a1)
    c.expect_left(a1)
    marker(b, [c], "end")


def test_order_and_isolation_across_nodes(pair):
    n1, n2 = pair
    r1, r2 = new_room(), new_room()
    a = join(n1, r1, new_account("a"))
    b = join(n2, r1, new_account("b"))
    a.expect_joined(b)
    x = join(n1, r2, new_account("x"))
    y = join(n2, r2, new_account("y"))
    x.expect_joined(y)
    n = 150
    a.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    x.c.send_many_json([{"type": "other", "data": {"i": i}} for i in range(20)])
    assert [b.expect_signal("seq", a)["data"]["i"] for _ in range(n)] == list(range(n))
    assert [y.expect_signal("other", x)["data"]["i"] for _ in range(20)] == list(range(20))
    marker(a, [b], "r1-end")
    marker(x, [y], "r2-end")


def test_node_sigterm_announces_leaves(nodes, redis):
    n1 = nodes.start({"SIGNAL_REDIS_URL": redis.url, "SIGNAL_NODE_ID": "term-a"})
    n2 = nodes.start({"SIGNAL_REDIS_URL": redis.url, "SIGNAL_NODE_ID": "term-b"})
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    n2.proc.send_signal(signal.SIGTERM)
    assert b.c.recv_close(T).code == 1001
    a.expect_left(b)
    assert n2.proc.wait(timeout=30) == 0, n2.logs()
    c = join(n1, room)
    assert [p["accountId"] for p in c.welcome["data"]["participants"]] == [a.sub]


def test_dead_node_leaves_are_announced(nodes, redis):
    """A node killed with SIGKILL: its members leave the others' rosters (in the
    reference, within about 13 s)."""
    n1 = nodes.start({"SIGNAL_REDIS_URL": redis.url, "SIGNAL_NODE_ID": "kill-a"})
    n2 = nodes.start({"SIGNAL_REDIS_URL": redis.url, "SIGNAL_NODE_ID": "kill-b"})
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    b2 = join(n2, room, new_account("b2"))
    a.expect_joined(b2)
    n2.kill()
    t0 = time.monotonic()
    left = set()
    while len(left) < 2:
        d = a.expect_signal("user-left", timeout=max(0.1, 40 - (time.monotonic() - t0)))
        left.add(d["senderAccountId"])
    assert left == {b.sub, b2.sub}
    c = join(n1, room)
    assert [p["accountId"] for p in c.welcome["data"]["participants"]] == [a.sub]
    a.expect_joined(c)
    c.send("offer", {}, to=b.sub)
    c.expect_error("unknown_target")
