"""Issue 3, Redis failures: Redis killed (SIGKILL) and restarted on the same port
during traffic, a node started while Redis is down, a node stopped while Redis
is down. Each test has a Redis of its own. Delivery across a Redis outage is at
most once: what is sent while the bus is down may be lost (or, in the
reference, delivered late) for members on other nodes, never delivered twice."""

import select
import signal
import subprocess
import time
from collections import Counter

import pytest

from harness import (T, Inbox, Redis, c_only, cluster_env, is_signal, join, new_account, new_room, poll,
                     start_cluster)
from wsclient import Timeout

pytestmark = pytest.mark.cluster

RECOVER = 20  # s: bound on the cluster being whole again after Redis is back (the issue asks for 5)
QUIET = 10  # s after Redis is back during which nobody may leave and come back (reconciliation)
CHANNEL = "signal:room:{}"


def parts(member):
    return sorted(p["accountId"] for p in member.welcome["data"]["participants"])


def watch(boxes, seconds):
    """Keeps reading every inbox for that many seconds. Time itself is what is
    awaited here: the window in which a spurious leave/join could show up."""
    end = time.monotonic() + seconds
    while True:
        for b in boxes:
            b.drain()
        left = end - time.monotonic()
        if left <= 0:
            return
        p = select.poll()
        for b in boxes:
            p.register(b.member.c.fileno(), select.POLLIN)
        p.poll(int(min(left, 0.2) * 1000) + 1)


def numbers(box, type_, sender):
    return [d["data"]["n"] for d in box.signals(type_, sender)]


def strictly_increasing(xs):
    return all(x < y for x, y in zip(xs, xs[1:]))


def roster_seen(box, welcome_ids):
    """The accounts a member knows of: its welcome, then the user-joined/left it got."""
    known = set(welcome_ids)
    for kind, who in box.presence():
        (known.add if kind == "user-joined" else known.discard)(who)
    return known


def wait_roster(box, welcome_ids, want, timeout):
    deadline = time.monotonic() + timeout
    while roster_seen(box, welcome_ids) != want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout(f"{box.member.sub} knows {sorted(roster_seen(box, welcome_ids))}, "
                          f"expected {sorted(want)} (events {box.presence()})")
        box.wait_for(lambda p: p.get("type") == "webrtc.signal"
                     and p["data"].get("type") in ("user-joined", "user-left"),
                     timeout=left, start=len(box.log), what="a presence event")


@pytest.fixture
def own_redis(tmp_base):
    """A Redis of the test's own (listed before `nodes`, so the nodes stop first, while it is up)."""
    r = Redis(tmp_base)
    yield r
    r.stop()


@pytest.fixture
def down_redis(tmp_base):
    """A port where Redis is not running yet (start() starts it)."""
    r = Redis(tmp_base, start=False)
    yield r
    r.stop()


def test_redis_killed_and_restarted_during_traffic(own_redis, nodes):
    r = own_redis
    n1, n2 = start_cluster(nodes, r.url, 2, name="outage")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    a2 = join(n1, room, new_account("a2"))
    a.expect_joined(a2)
    b.expect_joined(a2)
    x = join(n2, room, new_account("x"))
    for m in (a, b, a2):
        m.expect_joined(x)
    a.send("hello", {})
    for m in (b, a2, x):
        m.expect_signal("hello", a)
    A, A2, B, X = (Inbox(m) for m in (a, a2, b, x))

    # traffic, and Redis dies in the middle of it
    a.c.send_many_json([{"type": "pre", "data": {"n": i}} for i in range(20)])
    r.stop()  # SIGKILL
    a.c.send_many_json([{"type": "pre", "data": {"n": i}} for i in range(20, 40)])

    # members on one node keep talking: all 40 reach a2, in order; both ways, on both nodes
    A2.wait_for(lambda p: is_signal("pre", a)(p) and p["data"]["data"]["n"] == 39, what="a's 40th signal")
    assert numbers(A2, "pre", a) == list(range(40))
    a2.send("local", {"n": 1}, to=a.sub)
    A.wait_for(is_signal("local", a2), what="a2's signal while Redis is down")
    b.send("local", {"n": 2}, to=x.sub)
    X.wait_for(is_signal("local", b), what="b's signal while Redis is down")
    x.send("local", {"n": 3})
    B.wait_for(is_signal("local", x), what="x's signal while Redis is down")
    # a leave and a join on n2 during the outage: its members hear of them at once
    x.close()
    B.wait_for(is_signal("user-left", x), what="x's user-left while Redis is down")
    y = join(n2, room, new_account("y"))
    assert parts(y) == sorted([a.sub, a2.sub, b.sub])  # what n2 knew, without x
    B.wait_for(is_signal("user-joined", y), what="y's user-joined while Redis is down")
    Y = Inbox(y)
    a.send("during", {"n": 0}, to=b.sub)  # lost, or late: never twice

    r.start()  # the same port, empty
    t_back = time.monotonic()
    # cross-node signals flow again
    n = 0
    while True:
        n += 1
        a.send("probe", {"n": n}, to=b.sub)
        try:
            B.wait_for(is_signal("probe", a), timeout=0.25)
            break
        except Timeout:
            assert time.monotonic() - t_back < RECOVER, f"no signal from n1 to n2 within {RECOVER} s of Redis restarting"
    # n1's members learn what happened on n2 meanwhile
    for box in (A, A2):
        box.wait_for(is_signal("user-left", x), timeout=max(0.0, RECOVER - (time.monotonic() - t_back)),
                     what="user-left of x (left during the outage)")
        box.wait_for(is_signal("user-joined", y), timeout=max(0.0, RECOVER - (time.monotonic() - t_back)),
                     what="user-joined of y (joined during the outage)")
    # one subscription per node again
    poll(lambda: r.numsub(CHANNEL.format(room)), until=lambda v: v == 2,
         timeout=max(1.0, RECOVER - (time.monotonic() - t_back)), what="NUMSUB of the room")
    # no duplicate deliveries: 50 signals each way arrive exactly once, in order
    a.c.send_many_json([{"type": "after", "data": {"n": i}} for i in range(50)])
    b.c.send_many_json([{"type": "after", "data": {"n": i}} for i in range(50)])
    flows = ((B, a), (Y, a), (A, b), (A2, b), (A2, a))
    for box, sender in flows:
        box.wait_for(lambda p, s=sender: is_signal("after", s)(p) and p["data"]["data"]["n"] == 49,
                     what=f"the last of {sender.sub}'s 50 signals")
    # nobody leaves and comes back while the nodes reconcile
    watch([A, A2, B, Y], max(0.0, t_back + QUIET - time.monotonic()))

    assert Counter(A.presence()) == Counter([("user-left", x.sub), ("user-joined", y.sub)]), A.presence()
    assert Counter(A2.presence()) == Counter([("user-left", x.sub), ("user-joined", y.sub)]), A2.presence()
    assert B.presence() == [("user-left", x.sub), ("user-joined", y.sub)], B.presence()
    assert Y.presence() == [], Y.presence()
    for box, sender in flows:
        assert numbers(box, "after", sender) == list(range(50)), (box.member.sub, sender.sub)
    pre = numbers(B, "pre", a)
    assert strictly_increasing(pre) and set(pre) <= set(range(40)), f"signals sent across the outage, as n2 delivered them: {pre}"
    assert len(B.signals("during", a)) <= 1
    assert strictly_increasing(numbers(B, "probe", a)), numbers(B, "probe", a)
    assert numbers(A, "local", a2) == [1] and numbers(X, "local", b) == [2] and numbers(B, "local", x) == [3]

    # welcomes are right again: on a node that had the room, and on a new node (from Redis)
    z = join(n1, room, new_account("z"))
    assert parts(z) == sorted([a.sub, a2.sub, b.sub, y.sub]), z.welcome
    for box in (A, A2, B, Y):
        box.wait_for(is_signal("user-joined", z), what="z's user-joined")
    n3 = nodes.start(cluster_env(r.url, f"outage-late-{new_account('n')}"))
    w = join(n3, room, new_account("w"))
    assert parts(w) == sorted([a.sub, a2.sub, b.sub, y.sub, z.sub]), w.welcome
    Z = Inbox(z)
    w.send("hello-all", {"n": 1})
    w.send("bye", {"n": 2})
    for box in (A, A2, B, Y, Z):
        box.wait_for(is_signal("bye", w), what="w's signal")
        assert numbers(box, "hello-all", w) == [1], box.member.sub


@c_only
def test_node_started_while_redis_is_down(down_redis, nodes):
    """The node starts without Redis, serves a room of local members, and once
    Redis is there the room spans it and a node started later. (The reference
    refuses joins to a new room with 1013 while Redis is unreachable.)"""
    r = down_redis
    (n1,) = start_cluster(nodes, r.url, 1, name="early")
    room = new_room()
    a = join(n1, room, new_account("a"))
    assert a.welcome["data"]["participants"] == []
    a2 = join(n1, room, new_account("a2"))
    assert parts(a2) == [a.sub]
    a.expect_joined(a2)
    a.send("offer", {"n": 1})
    assert a2.expect_signal("offer", a)["data"] == {"n": 1}
    a2.send("answer", {"n": 2}, to=a.sub)
    assert a.expect_signal("answer", a2)["data"] == {"n": 2}
    A, A2 = Inbox(a), Inbox(a2)

    r.start()
    t_back = time.monotonic()
    (n2,) = start_cluster(nodes, r.url, 1, name="late")
    b = join(n2, room, new_account("b"))
    B = Inbox(b)
    # b learns of a and a2 (in its welcome, or by user-joined once n1 has announced them),
    # and they of b
    wait_roster(B, parts(b), {a.sub, a2.sub}, RECOVER)
    for box in (A, A2):
        box.wait_for(is_signal("user-joined", b), timeout=max(0.0, RECOVER - (time.monotonic() - t_back)),
                     what="b's user-joined on the node started without Redis")
    b.send("offer", {"n": 3})
    for box in (A, A2):
        assert box.wait_for(is_signal("offer", b), what="b's signal")["data"]["data"] == {"n": 3}
    a.send("answer", {"n": 4}, to=b.sub)
    assert B.wait_for(is_signal("answer", a), what="a's signal")["data"]["data"] == {"n": 4}
    a2.send("end", {})
    A.wait_for(is_signal("end", a2), what="a2's end")
    B.wait_for(is_signal("end", a2), what="a2's end")
    assert A.presence() == [("user-joined", b.sub)], A.presence()
    assert A2.presence() == [("user-joined", b.sub)], A2.presence()
    assert all(kind == "user-joined" for kind, _ in B.presence()), B.presence()
    c = join(n2, room, new_account("c"))
    assert parts(c) == sorted([a.sub, a2.sub, b.sub])


@c_only
def test_sigterm_while_redis_is_down(own_redis, nodes):
    """A node stopped while Redis is down still closes its clients with 1001 and
    exits 0 promptly; when Redis is back (empty), the others drop its members."""
    r = own_redis
    n1, n2 = start_cluster(nodes, r.url, 2, name="downstop")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    B = Inbox(b)
    r.stop()
    n1.proc.send_signal(signal.SIGTERM)
    assert a.c.recv_close(T).code == 1001
    try:
        rc = n1.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the node did not exit within 10 s of SIGTERM with Redis down\n{n1.logs()}")
    assert rc == 0, n1.logs()
    r.start()
    B.wait_for(is_signal("user-left", a), timeout=RECOVER, what="a's user-left once Redis is back")
    c = join(n2, room, new_account("c"))
    assert parts(c) == [b.sub]
