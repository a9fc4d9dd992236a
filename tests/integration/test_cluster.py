"""docs/protocol.md, "Several nodes": many nodes sharing one Redis behave as one
(issue 3). Rooms span nodes; participants, user-joined/left, routing,
unknown_target, an account on several nodes, per-sender order and room isolation all
hold across nodes; the Redis subscriptions follow the rooms (and go back to zero);
SIGNAL_REDIS_PREFIX; a node's clean stop, death (SIGKILL) and restart; a Redis URL
with a password and a db. Redis failures are in test_cluster_failures.py; the
single-node suites run again across nodes in the other test_cluster_*.py modules."""

import random
import re
import signal
import time

import pytest

from harness import (IS_PEER, T, Inbox, Redis, c_only, cluster_env, is_signal, join, new_account, new_room,
                     parse_iso, poll, shared_spread, start_cluster, token, wait_ready)

pytestmark = pytest.mark.cluster

# The reference's fixed heartbeat: 10 s TTL, a sweep every 3 s (so about 13 s to
# notice a dead node). The C node is started with SIGNAL_NODE_TTL_S=2 for that.
KILL_WAIT = 25 if IS_PEER else 10
CHANNEL = "signal:room:{}"  # the default prefix (the reference's fixed one)


def ids(participants):
    return sorted(p["accountId"] for p in participants)


def parts(member):
    return ids(member.welcome["data"]["participants"])


def marker(sender, receivers, tag="marker"):
    """sender's next signal must be each receiver's next packet (per-sender order
    proves that nothing else from sender, e.g. a leaked copy, came before)."""
    sender.send("marker", {"tag": tag})
    for r in receivers:
        assert r.expect_signal("marker", sender)["data"] == {"tag": tag}


@pytest.fixture(scope="module")
def _spreads():
    return {}


@pytest.fixture
def pair(_spreads, module_nodes, redis):
    """Two nodes with the default settings, shared by the module."""
    for s in shared_spread(_spreads, "pair", module_nodes, redis.url, n=2):
        yield s.nodes


@pytest.fixture
def trio(_spreads, module_nodes, redis):
    """Three nodes with the default settings, shared by the module."""
    for s in shared_spread(_spreads, "trio", module_nodes, redis.url, n=3):
        yield s.nodes


@pytest.fixture
def fast_trio(_spreads, module_nodes, redis):
    """Three nodes with the rate limit raised (for long back-to-back streams)."""
    for s in shared_spread(_spreads, "fast", module_nodes, redis.url, n=3,
                           env={"SIGNAL_RATE_PER_S": "100000", "SIGNAL_RATE_BURST": "100000"}):
        yield s.nodes


@pytest.fixture
def own_redis(tmp_base):
    """A Redis of the test's own (list it before `nodes`: the nodes stop first, while it is up)."""
    r = Redis(tmp_base)
    yield r
    r.stop()


# -- a room spans nodes ---------------------------------------------------------------

def test_room_spans_nodes(pair):
    n1, n2 = pair
    room = new_room()
    a = join(n1, room, new_account("a"), name="Alice", nick="al")
    b = join(n2, room, new_account("b"))
    p = b.welcome["data"]["participants"]
    assert len(p) == 1 and p[0]["accountId"] == a.sub
    assert p[0]["account"] == a.account and p[0]["name"] == "al" and p[0]["identity"] == "Alice"
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
    assert parts(c) == sorted([a.sub, b.sub])
    b.close()
    a.expect_left(b)
    c.expect_left(b)


def test_to_and_unknown_target_across_nodes(trio):
    n1, n2, n3 = trio
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    c = join(n2, room, new_account("c"))
    a.expect_joined(c)
    b.expect_joined(c)
    d1 = join(n3, room, new_account("d"))
    d2 = join(n1, room, d1.sub)  # d: one connection on n3, one on n1 (the sender's node)
    for m in (a, b, c):
        m.expect_joined(d1)
    marker(d2, [a, b, c, d1], "d2-joined")  # no second user-joined for d
    # directed to an account on another node only: nobody else gets it
    a.send("offer", {"for": "b"}, to=b.sub)
    assert b.expect_signal("offer", a) == {"type": "offer", "data": {"for": "b"}, "to": b.sub,
                                           "senderAccountId": a.sub, "senderInfo": a.account}
    marker(a, [c, b, d1, d2], "after-b")
    # directed to an account with a connection on the sender's node and one elsewhere: both, once
    a.send("offer", {"for": "d"}, to=d1.sub)
    assert d1.expect_signal("offer", a)["data"] == {"for": "d"}
    assert d2.expect_signal("offer", a)["data"] == {"for": "d"}
    marker(a, [b, c, d1, d2], "after-d")
    # from another node to the same account
    c.send("ice", {"from": "c"}, to=d1.sub)
    assert d1.expect_signal("ice", c)["to"] == d1.sub
    assert d2.expect_signal("ice", c)["to"] == d1.sub
    marker(c, [a, b, d1, d2], "after-c")
    # unknown targets, answered by the sender's node; the connection stays
    for to in (new_account("ghost"), b.sub.upper(), ""):
        a.send("offer", {}, to=to)
        a.expect_error("unknown_target")
    marker(a, [b, c, d1, d2], "after-ghosts")
    # an account that left on another node becomes unknown everywhere
    c.close()
    for m in (a, b, d1, d2):
        m.expect_left(c)
    for sender in (a, b, d1):
        sender.send("offer", {}, to=c.sub)
        sender.expect_error("unknown_target")
    marker(b, [a, d1, d2], "end")


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
    assert parts(a2) == sorted([b.sub, c.sub])
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
    # the account is one participant for a later joiner, whichever node it joins
    for n in (n1, n2):
        late = join(n, room)
        assert [p["accountId"] for p in late.welcome["data"]["participants"]].count(a1.sub) == 1, late.welcome
        for m in (b, c, a1, a2):
            m.expect_joined(late)
        late.close()
        for m in (b, c, a1, a2):
            m.expect_left(late)
    a1.close()
    marker(a2, [b, c], "a1-gone")  # a still has a2: no user-left
    a2.close()
    b.expect_left(a1)
    c.expect_left(a1)
    marker(b, [c], "end")


def test_account_on_three_nodes_leaves_with_its_last_connection(trio):
    n1, n2, n3 = trio
    room = new_room()
    o1 = join(n1, room, new_account("o1"))
    o3 = join(n3, room, new_account("o3"))
    o1.expect_joined(o3)
    x = new_account("x")
    xs = [join(n, room, x) for n in (n2, n3, n1)]
    o1.expect_joined(xs[0])
    o3.expect_joined(xs[0])
    for i, m in enumerate(xs):  # one user-joined only, and the devices hear each other
        marker(m, [o1, o3] + [d for d in xs if d is not m], f"x{i}")
    first_ts = xs[1].welcome["data"]["timestamp"]
    for n in (n1, n2, n3):  # one participant, joined when its first connection joined
        late = join(n, room)
        entries = [p for p in late.welcome["data"]["participants"] if p["accountId"] == x]
        assert len(entries) == 1, late.welcome
        assert parse_iso(entries[0]["joinedAt"]) <= parse_iso(first_ts), (entries[0], first_ts)
        for m in [o1, o3] + xs:
            m.expect_joined(late)
        late.close()
        for m in [o1, o3] + xs:
            m.expect_left(late)
    xs[0].close()  # on n2: the node with no other member
    marker(xs[1], [o1, o3, xs[2]], "still-1")
    xs[2].close()  # on n1
    marker(xs[1], [o1, o3], "still-2")
    xs[1].close()  # the last one, on n3
    o1.expect_left(xs[1])
    o3.expect_left(xs[1])
    marker(o1, [o3], "end-1")
    marker(o3, [o1], "end-3")
    late = join(n2, room)
    assert parts(late) == sorted([o1.sub, o3.sub])


def test_concurrent_joins_and_leaves_of_one_account(trio):
    """An account joins on two nodes at the same moment, then both connections
    drop at the same moment, eight times: every node sees exactly one
    user-joined and one user-left per round (no ghost, no lost participant)."""
    n1, n2, n3 = trio
    room = new_room()
    obs = [join(n, room, new_account(f"obs{i}")) for i, n in enumerate(trio)]
    for i, m in enumerate(obs):
        for later in obs[i + 1:]:
            m.expect_joined(later)
    boxes = [Inbox(m) for m in obs]
    x = new_account("x")
    rounds = 8
    for r in range(rounds):
        ca = n1.connect(room, token(x, [room]))
        cb = n2.connect(room, token(x, [room]))  # both upgrades are done before either welcome is read
        for c in (ca, cb):
            w = c.recv_json(T)
            assert w["type"] == "webrtc" and ids(w["data"]["participants"]) == sorted(m.sub for m in obs), w
        ca.send_json({"type": "mark", "data": {"r": r, "via": "a"}})
        cb.send_json({"type": "mark", "data": {"r": r, "via": "b"}})
        for box in boxes:
            for via in ("a", "b"):
                box.wait_for(lambda p, via=via: is_signal("mark", x)(p) and p["data"]["data"] == {"r": r, "via": via},
                             what=f"round {r} mark via {via}")
        ca.abort()
        cb.abort()
        for box in boxes:
            deadline = time.monotonic() + T
            while box.presence().count(("user-left", x)) < r + 1:
                box.wait_for(is_signal("user-left", x), timeout=max(0.0, deadline - time.monotonic()),
                             start=len(box.log), what=f"round {r}: user-left of {x}")
    # a final member on every node: once every observer has seen it join, each
    # node has handled everything before; the stream holds exactly one
    # user-joined and one user-left of x per round, alternating
    for n in trio:
        late = join(n, room, new_account("late"))
        assert x not in parts(late), f"ghost of {x} in a welcome: {late.welcome}"
        for box in boxes:
            box.wait_for(is_signal("user-joined", late), what="the late member's user-joined")
    for box in boxes:
        xs = [e[0] for e in box.presence() if e[1] == x]
        assert xs == ["user-joined", "user-left"] * rounds, (box.member.sub, xs)


# -- order and isolation ---------------------------------------------------------------

def test_order_1000_across_nodes(fast_trio):
    """1,000 back-to-back signals from one client arrive in order at clients on the
    two other nodes; a directed stream too; two senders on two nodes at once."""
    n1, n2, n3 = fast_trio
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    c = join(n3, room, new_account("c"))
    a.expect_joined(c)
    b.expect_joined(c)
    n = 1000
    a.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    for m in (b, c):
        assert [m.expect_signal("seq", a)["data"]["i"] for _ in range(n)] == list(range(n))
    a.c.send_many_json([{"type": "dir", "data": {"i": i}, "to": b.sub} for i in range(n)])
    assert [b.expect_signal("dir", a)["data"]["i"] for _ in range(n)] == list(range(n))
    marker(a, [c, b], "after-directed")  # c got none of the directed ones
    # a on n1 and c on n3 at once, to b on n2: each sender's stream in its order
    a.c.send_many_json([{"type": "mix", "data": {"i": i}} for i in range(n)])
    c.c.send_many_json([{"type": "mix", "data": {"i": i}} for i in range(n)])
    seen = {a.sub: [], c.sub: []}
    for _ in range(2 * n):
        d = b.expect_signal("mix")
        seen[d["senderAccountId"]].append(d["data"]["i"])
    assert seen[a.sub] == list(range(n)) and seen[c.sub] == list(range(n))
    assert [c.expect_signal("mix", a)["data"]["i"] for _ in range(n)] == list(range(n))
    assert [a.expect_signal("mix", c)["data"]["i"] for _ in range(n)] == list(range(n))


def test_room_isolation_many_rooms(trio):
    """20 rooms of three members, one on each node (rotated), and an account in
    three of the rooms on three nodes: every room's broadcasts and directed
    signals reach its own members only."""
    rooms = [new_room() for _ in range(20)]
    groups = []
    for i, room in enumerate(rooms):
        ms = []
        for j in range(3):
            m = join(trio[(i + j) % 3], room, new_account(f"r{i}m{j}"))
            for e in ms:
                e.expect_joined(m)
            ms.append(m)
        groups.append(ms)
    shared = new_account("shared")
    for i in range(3):
        s = join(trio[(i + 1) % 3], rooms[i], shared, rooms=rooms[:3])
        assert parts(s) == sorted(m.sub for m in groups[i])
        for m in groups[i]:
            m.expect_joined(s)
        groups[i].append(s)
    k = 3
    for i, ms in enumerate(groups):
        for j, m in enumerate(ms):
            nxt = ms[(j + 1) % len(ms)]
            m.c.send_many_json([{"type": "s", "data": {"room": i, "n": x}} for x in range(k)]
                               + [{"type": "d", "data": {"room": i}, "to": nxt.sub}])
    for i, ms in enumerate(groups):
        subs = {m.sub for m in ms}
        for j, m in enumerate(ms):
            prev = ms[(j - 1) % len(ms)]
            got = [m.expect_signal() for _ in range(k * (len(ms) - 1) + 1)]
            for d in got:
                assert d["data"]["room"] == i and d["senderAccountId"] in subs, (m.sub, i, d)
            for other in ms:
                if other is not m:
                    ns = [d["data"]["n"] for d in got if d["type"] == "s" and d["senderAccountId"] == other.sub]
                    assert ns == list(range(k)), (m.sub, other.sub, ns)
            directed = [d for d in got if d["type"] == "d"]
            assert len(directed) == 1 and directed[0]["senderAccountId"] == prev.sub, (m.sub, directed)
            assert directed[0]["to"] == m.sub
    # end markers: each member's next packet comes from its own room
    for i, ms in enumerate(groups):
        ms[0].send("end", {"room": i})
    for i, ms in enumerate(groups):
        for m in ms[1:]:
            assert m.expect_signal("end", ms[0])["data"] == {"room": i}
    for i, ms in enumerate(groups):
        ms[1].send("end", {"room": i})
        assert ms[0].expect_signal("end", ms[1])["data"] == {"room": i}


# -- subscriptions follow the rooms ----------------------------------------------------

def test_subscriptions_back_to_zero_after_churn(own_redis, nodes):
    """Clients join and leave 12 rooms on three nodes for four rounds (closing,
    dropping the TCP connection, or dropping it before the welcome): each room's
    channel has exactly one subscriber per node with members there; at the end
    PUBSUB NUMSUB is 0 for every room and PUBSUB CHANNELS is empty (and no
    presence is left in Redis)."""
    r = own_redis
    ns = start_cluster(nodes, r.url, 3, name="churn")
    rooms = [new_room() for _ in range(12)]
    rnd = random.Random(20261125)
    live = []  # (node index, room index, member, inbox)

    def check_numsub():
        for ri, room in enumerate(rooms):
            want = len({ni for ni, rj, _, _ in live if rj == ri})
            poll(lambda: r.numsub(CHANNEL.format(room)), until=lambda v: v == want,
                 what=f"PUBSUB NUMSUB of room {ri} == {want}")

    for rd in range(4):
        for _ in range(18):
            ni, ri = rnd.randrange(3), rnd.randrange(len(rooms))
            m = join(ns[ni], rooms[ri], new_account(f"c{rd}"))
            live.append((ni, ri, m, Inbox(m)))
        for _ in range(4):  # a join whose connection drops before its welcome
            ni, ri = rnd.randrange(3), rnd.randrange(len(rooms))
            ns[ni].connect(rooms[ri], token(new_account("gone"), [rooms[ri]])).abort()
        # in every room, the newest member's signal reaches every other member
        for ri in range(len(rooms)):
            here = [(m, box) for _, rj, m, box in live if rj == ri]
            if len(here) < 2:
                continue
            sender = here[-1][0]
            sender.send("ping", {"round": rd})
            for m, box in here[:-1]:
                box.wait_for(lambda p: is_signal("ping", sender)(p) and p["data"]["data"] == {"round": rd},
                             what=f"round {rd} ping in room {ri}")
        check_numsub()
        rnd.shuffle(live)
        half = len(live) // 2
        for i, (_, _, m, _) in enumerate(live[:half]):
            if i % 2:
                m.c.abort()
            else:
                m.close()
        live = live[half:]
        check_numsub()
    for i, (_, _, m, _) in enumerate(live):
        if i % 2:
            m.c.abort()
        else:
            m.close()
    live = []
    check_numsub()
    poll(lambda: r.channels(CHANNEL.format("*")), until=lambda v: v == [], what="PUBSUB CHANNELS signal:room:*")
    poll(lambda: r.keys("signal:presence:*"), until=lambda v: v == [], what="presence left in Redis")


@c_only
def test_redis_prefix_names_channels_and_keys(nodes, redis):
    """SIGNAL_REDIS_PREFIX t1: -> channel t1:room:<room>, presence under t1:; a node
    with another prefix on the same Redis is another cluster."""
    t1a, t1b = start_cluster(nodes, redis.url, 2, {"SIGNAL_REDIS_PREFIX": "t1:"}, name="t1")
    (t2,) = start_cluster(nodes, redis.url, 1, {"SIGNAL_REDIS_PREFIX": "t2:"}, name="t2")
    room = new_room()
    a = join(t1a, room, new_account("a"))
    assert redis.numsub(f"t1:room:{room}") == 1  # subscribed before the welcome
    b = join(t1b, room, new_account("b"))
    a.expect_joined(b)
    assert redis.numsub(f"t1:room:{room}") == 2
    assert redis.numsub(f"signal:room:{room}") == 0
    assert redis.keys(f"t1:presence:{room}") == [f"t1:presence:{room}"]
    assert redis.keys(f"*{room}*") == [f"t1:presence:{room}"]
    a.send("offer", {"n": 1})
    assert b.expect_signal("offer", a)["data"] == {"n": 1}
    # the t2: cluster shares the Redis, not the room
    c = join(t2, room, new_account("c"))
    assert c.welcome["data"]["participants"] == []
    assert redis.numsub(f"t2:room:{room}") == 1
    c.send("offer", {}, to=a.sub)
    c.expect_error("unknown_target")
    b.send("offer", {"n": 2})
    assert a.expect_signal("offer", b)["data"] == {"n": 2}
    c2 = join(t2, room, new_account("c2"))
    assert parts(c2) == [c.sub]
    c.expect_joined(c2)  # nothing of a's or b's came before
    marker(c2, [c], "t2")
    marker(a, [b], "t1")
    for m in (a, b, c, c2):
        m.close()
    for ch in (f"t1:room:{room}", f"t2:room:{room}"):
        poll(lambda: redis.numsub(ch), until=lambda v: v == 0, what=f"NUMSUB {ch}")
    poll(lambda: redis.keys(f"*{room}*"), until=lambda v: v == [], what="keys of the room")


# -- a node stops, dies, restarts --------------------------------------------------------

def test_node_sigterm_announces_leaves_promptly(nodes, redis):
    """SIGTERM: the stopping node's members leave the others' rosters at once (the
    C node gets a 30 s TTL here, so the heartbeat cannot be what tells). An
    account also connected elsewhere stays."""
    env = {"SIGNAL_NODE_TTL_S": "30"}
    n1, n2 = start_cluster(nodes, redis.url, 2, env, name="term")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    b2 = join(n2, room, new_account("b2"))
    a.expect_joined(b2)
    b.expect_joined(b2)
    x1 = join(n1, room, new_account("x"))
    for m in (a, b, b2):
        m.expect_joined(x1)
    x2 = join(n2, room, x1.sub)
    marker(x2, [a, b, b2, x1], "x2")
    box = Inbox(a)
    t0 = time.monotonic()
    n2.proc.send_signal(signal.SIGTERM)
    for m in (b, b2, x2):
        assert m.c.recv_close(T).code == 1001
    deadline = 10 if not IS_PEER else 6  # the reference's heartbeat TTL is 10 s
    box.wait_for(is_signal("user-left", b), timeout=deadline, what="user-left of b")
    box.wait_for(is_signal("user-left", b2), timeout=max(0.0, deadline - (time.monotonic() - t0)),
                 what="user-left of b2")
    elapsed = time.monotonic() - t0
    assert elapsed < deadline, elapsed
    assert n2.proc.wait(timeout=30) == 0, n2.logs()
    marker(x1, [a], "x-stays")  # x still has x1: no user-left for x came before
    assert sorted(box.presence()) == sorted([("user-left", b.sub), ("user-left", b2.sub)]), box.presence()
    c = join(n1, room)
    assert parts(c) == sorted([a.sub, x1.sub])
    # a node started now reads the same from Redis
    n3 = nodes.start(cluster_env(redis.url, f"term-late-{new_account('n')}", env))
    d = join(n3, room)
    assert parts(d) == sorted([a.sub, x1.sub, c.sub])


def test_dead_node_leaves_are_announced(nodes, redis):
    """SIGKILL: the others remove its members (user-left) when its heartbeat
    expires: the C node runs with SIGNAL_NODE_TTL_S=2 here; the reference's
    fixed TTL makes it about 13 s."""
    env = {"SIGNAL_NODE_TTL_S": "2"}
    n1, n2 = start_cluster(nodes, redis.url, 2, env, name="kill")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    b2 = join(n2, room, new_account("b2"))
    a.expect_joined(b2)
    x1 = join(n1, room, new_account("x"))
    a.expect_joined(x1)
    x2 = join(n2, room, x1.sub)
    marker(x2, [a, x1], "x2")
    box = Inbox(a)
    n2.kill()
    t0 = time.monotonic()
    for m in (b, b2):
        box.wait_for(is_signal("user-left", m), timeout=max(0.0, KILL_WAIT - (time.monotonic() - t0)),
                     what=f"user-left of {m.sub} after SIGKILL")
    assert sorted(box.presence()) == sorted([("user-left", b.sub), ("user-left", b2.sub)]), box.presence()
    marker(x1, [a], "x-stays")  # x1 is alive on n1: no user-left for x
    c = join(n1, room)
    assert parts(c) == sorted([a.sub, x1.sub])
    a.expect_joined(c)
    c.send("offer", {}, to=b.sub)
    c.expect_error("unknown_target")
    n3 = nodes.start(cluster_env(redis.url, f"kill-late-{new_account('n')}", env))
    d = join(n3, room)
    assert parts(d) == sorted([a.sub, x1.sub, c.sub])


def test_node_restarted_under_the_same_id(nodes, redis):
    """A node killed and started again at once with the same SIGNAL_NODE_ID (a
    crash-looping pod): its old members are removed because the heartbeat now
    carries another boot id, well before the TTL (24 s for the C node here), and
    the new process's members are in the room."""
    env = {"SIGNAL_NODE_TTL_S": "24"}
    n1, n2 = start_cluster(nodes, redis.url, 2, env, name="reboot")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    box = Inbox(a)
    n2.kill()
    t0 = time.monotonic()
    env2 = dict(n2.env)
    del env2["SIGNAL_LISTEN"]  # the same id on another port (the old one may linger in the kernel)
    n2b = nodes.start(env2)
    box.wait_for(is_signal("user-left", b), timeout=14, what="user-left of the old process's member")
    assert time.monotonic() - t0 < 14
    b_again = join(n2b, room, b.sub)
    assert parts(b_again) == [a.sub]
    box.wait_for(is_signal("user-joined", b_again), what="user-joined of the new process's member")
    assert box.presence() == [("user-left", b.sub), ("user-joined", b.sub)], box.presence()
    b_again.send("offer", {"n": 1})
    assert a.expect_signal("offer", b_again)["data"] == {"n": 1}
    a.send("answer", {"n": 2}, to=b.sub)
    assert b_again.expect_signal("answer", a)["data"] == {"n": 2}


# -- Redis URL with a password and a db -------------------------------------------------

@pytest.fixture
def auth_redis(tmp_base):
    r = Redis(tmp_base, password="s3cret-pw", args=["--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all"])
    yield r
    r.stop()


@pytest.mark.parametrize("form", ["password", "default-user", "acl-user"])
def test_redis_url_with_password_and_db(auth_redis, nodes, form):
    """redis://[user]:password@host:port/db: AUTH and SELECT on every connection
    (bus and membership `redis`); the presence keys are in that db."""
    r = auth_redis
    db = {"password": 5, "default-user": 3, "acl-user": 7}[form]
    url = {"password": r.url_for(db=db), "default-user": r.url_for(user="default", db=db),
           "acl-user": r.url_for(user="alice", password="alice-pw", db=db)}[form]
    n1, n2 = start_cluster(nodes, url, 2, {"SIGNAL_MEMBERSHIP": "redis"}, name=f"auth-{form}")
    room = new_room()
    a_sub, b_sub, stranger = new_account("a"), new_account("b"), new_account("s")
    assert r.command("SADD", f"chat:{room}:members", a_sub, b_sub, db=db) == 2
    a = join(n1, room, a_sub, rooms=None)
    b = join(n2, room, b_sub, rooms=None)
    assert parts(b) == [a.sub]
    a.expect_joined(b)
    b.send("offer", {"n": 1})
    assert a.expect_signal("offer", b)["data"] == {"n": 1}
    a.send("answer", {"n": 2}, to=b.sub)
    assert b.expect_signal("answer", a)["data"] == {"n": 2}
    assert r.keys(f"signal:presence:{room}", db=db) == [f"signal:presence:{room}"]
    assert r.command("DBSIZE", db=0) == 0, r.keys("*", db=0)
    # membership is read in that db too: a member of the set in db 0 only is refused
    assert r.command("SADD", f"chat:{room}:members", stranger, db=0) == 1
    assert n2.connect(room, token(stranger, [room])).recv_close(T).code == 4403
    c = join(n2, room, rooms=None, sub=a_sub)  # a's second device, on the other node
    marker(c, [a, b], "c")


@c_only
def test_membership_redis_url_apart_from_the_bus(own_redis, nodes, redis):
    """SIGNAL_MEMBERSHIP_REDIS_URL: membership `redis` asks that Redis; the bus and
    presence stay on SIGNAL_REDIS_URL. Without a bus, it is enough on its own."""
    m = own_redis
    n1, n2 = start_cluster(nodes, redis.url, 2, {"SIGNAL_MEMBERSHIP": "redis",
                                                  "SIGNAL_MEMBERSHIP_REDIS_URL": m.url}, name="mship")
    room = new_room()
    a_sub, b_sub, stranger = new_account("a"), new_account("b"), new_account("s")
    m.command("SADD", f"chat:{room}:members", a_sub, b_sub)
    redis.command("SADD", f"chat:{room}:members", stranger)  # the bus's Redis: not asked
    a = join(n1, room, a_sub, rooms=None)
    b = join(n2, room, b_sub, rooms=None)
    assert parts(b) == [a.sub]
    a.expect_joined(b)
    assert n1.connect(room, token(stranger, [room])).recv_close(T).code == 4403
    b.send("offer", {})
    a.expect_signal("offer", b)
    assert redis.keys(f"signal:presence:{room}") == [f"signal:presence:{room}"]
    assert m.keys("signal:*") == []
    solo = wait_ready(nodes.start({"SIGNAL_MEMBERSHIP": "redis", "SIGNAL_MEMBERSHIP_REDIS_URL": m.url,
                                   "SIGNAL_NODE_ID": "mship-solo"}))
    s = join(solo, room, a_sub, rooms=None)
    assert s.welcome["data"]["participants"] == []  # no bus: a room of its own
    assert solo.connect(room, token(stranger, [room])).recv_close(T).code == 4403


def commandstat(r, command):
    """How many times Redis ran command (INFO commandstats)."""
    info = r.command("INFO", "commandstats")
    m = re.search(rf"^cmdstat_{command}:calls=(\d+)", info, re.M)
    return int(m.group(1)) if m else 0


@c_only
def test_scripts_run_by_digest_and_survive_a_script_flush(own_redis, nodes):
    """The bus loads its Lua scripts once and runs them with EVALSHA; after SCRIPT
    FLUSH (Redis answers NOSCRIPT) each call is sent again whole with EVAL, and
    joins, leaves, loads and sweeps go on as before."""
    r = own_redis
    n1, n2 = start_cluster(nodes, r.url, 2, name="sha")
    room = new_room()
    a = join(n1, room)
    b = join(n2, room)
    a.expect_joined(b)
    assert commandstat(r, "evalsha") > 0
    evals = commandstat(r, "eval")
    assert r.command("SCRIPT", "FLUSH") == "OK"
    c = join(n2, room)  # its join script meets NOSCRIPT, then runs as EVAL
    a.expect_joined(c)
    b.expect_joined(c)
    assert commandstat(r, "eval") > evals
    c.close()
    a.expect_left(c)
    b.expect_left(c)
    # a room opened after the flush loads its presence (the scripts are back)
    other = new_room()
    d = join(n1, other)
    e = join(n2, other)
    d.expect_joined(e)
    assert parts(e) == [d.sub]
    a.send("offer", {"after": "flush"})
    assert b.expect_signal("offer", a)["data"] == {"after": "flush"}


def acl_from_docs():
    """The ACL SETUSER line of docs/configuration.md, as arguments."""
    import os
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "configuration.md")) as f:
        line = next(l.strip() for l in f if l.strip().startswith("ACL SETUSER signal "))
    return line.split()[2:]


@c_only
@pytest.mark.parametrize("acl", ["documented", "without-evalsha", "without-client-list"])
def test_acl_user_runs_the_cluster(tmp_base, nodes, acl):
    """The ACL documented in docs/configuration.md is enough for the whole
    cluster; an older ACL that allows EVAL but not EVALSHA nor SCRIPT LOAD
    still works, the scripts then sent whole (logged once), and one without
    CLIENT LIST too, flow control then seeing only each node's own share
    (logged once)."""
    rules = acl_from_docs()
    if acl == "without-evalsha":
        rules = [x for x in rules if x not in ("+evalsha", "+script|load")]
    if acl == "without-client-list":
        rules = [x for x in rules if x != "+client|list"]
    r = Redis(tmp_base)
    try:
        assert r.command("ACL", "SETUSER", *rules) == "OK"
        password = next(x[1:] for x in rules if x.startswith(">"))
        url = r.url_for(user=rules[0], password=password)
        n1, n2 = start_cluster(nodes, url, 2, name=f"acl-{acl}")
        room = new_room()
        a = join(n1, room)
        b = join(n2, room)
        assert parts(b) == [a.sub]
        a.expect_joined(b)
        b.send("offer", {"n": 1})
        assert a.expect_signal("offer", b)["data"] == {"n": 1}
        # Publishing makes a node ask Redis for the subscribers' buffers.
        if acl == "without-client-list":
            poll(lambda: "bus_no_client_list" in n2.stderr(), what="n2 to find CLIENT LIST refused")
        else:
            poll(lambda: "cmdstat_client|list:" in r.command("INFO", "commandstats"),
                 what="a node to ask Redis for CLIENT LIST")
        b.close()
        a.expect_left(b)
        for n in (n1, n2):
            assert n.terminate() == 0, n.logs()
            denied = "redis_script_digest_denied" in n.stderr()
            assert denied == (acl == "without-evalsha"), n.logs()
            assert "redis_script_failed" not in n.stderr(), n.logs()
        assert n1.stderr().count("bus_no_client_list") == 0
        assert n2.stderr().count("bus_no_client_list") == (acl == "without-client-list"), n2.logs()
    finally:
        r.stop()
