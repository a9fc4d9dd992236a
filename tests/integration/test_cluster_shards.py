"""Issue 12, sharding (docs/cluster.md, "Sharding"): SIGNAL_REDIS_URL as a list
of independent Redis instances. Each room lives on the shard the jump hash of
its id names (computed here too, harness.shard_of): its channel and presence
there and nowhere else. One shard killed and restarted touches only its own
rooms, and /readyz and the metrics say which shard is down; nodes whose lists
differ say so in their logs and metrics. The rest of the cluster tests run on
shards too with SIGNAL_TEST_REDIS_SHARDS=2 (tools/test.sh)."""

import json

import pytest

from harness import (HOST, RedisShards, Redis, c_only, join, new_account, new_room, poll,
                     shard_of, start_cluster)
from test_operations import get, metrics, value

pytestmark = [pytest.mark.cluster, c_only]

RECOVER = 20  # s: bound on a shard's rooms being whole again after it is back
FAST = {"SIGNAL_NODE_TTL_S": "2"}  # a sweep every 0.5 s


@pytest.fixture(params=[2, 3], ids=["2-shards", "3-shards"])
def shards(request, tmp_base):
    """Redis shards of the test's own (listed before `nodes`, so the nodes stop first)."""
    r = RedisShards(tmp_base, request.param)
    yield r
    r.stop()


@pytest.fixture
def three(tmp_base):
    r = RedisShards(tmp_base, 3)
    yield r
    r.stop()


@pytest.fixture
def two_redis(tmp_base):
    """Two Redis servers of the test's own, for lists written in different ways."""
    rs = [Redis(tmp_base), Redis(tmp_base)]
    yield rs
    for r in rs:
        r.stop()


@pytest.fixture
def two_down(tmp_base):
    """Two ports where Redis is down until the test starts it."""
    rs = [Redis(tmp_base, start=False), Redis(tmp_base, start=False)]
    yield rs
    for r in rs:
        r.stop()


def rooms_on(n_shards, per_shard):
    """per_shard fresh rooms on each of n_shards shards: {shard: [room, ...]}."""
    found = {i: [] for i in range(n_shards)}
    while any(len(v) < per_shard for v in found.values()):
        room = new_room()
        s = shard_of(room, n_shards)
        if len(found[s]) < per_shard:
            found[s].append(room)
    return found


def address(r):
    return f"{HOST}:{r.port}"


def cross_pair(n1, n2, room):
    """a on n1 and b on n2 in room, each knowing the other, and a signal across."""
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    a.send("offer", {"sdp": room})
    assert b.expect_signal("offer", a)["data"] == {"sdp": room}
    return a, b


# ---------------------------------------------------------------------------
# Where rooms live

def test_rooms_live_on_the_shard_their_hash_names(shards, nodes):
    k = len(shards.shards)
    n1, n2 = start_cluster(nodes, shards.url, 2, name="spread")
    by_shard = rooms_on(k, 3)
    members = {room: cross_pair(n1, n2, room) for rooms in by_shard.values() for room in rooms}
    for s, rooms in by_shard.items():
        for room in rooms:
            presence, channel = f"signal:presence:{room}", f"signal:room:{room}"
            for i, r in enumerate(shards.shards):
                here = i == s
                assert r.keys(f"*{room}*") == ([presence] if here else []), (room, i, s)
                assert r.command("HLEN", presence) == (2 if here else 0), (room, i)
                assert r.numsub(channel) == (2 if here else 0), (room, i)
    # Every shard has both nodes' heartbeats, and their one shard list.
    for i, r in enumerate(shards.shards):
        for nd in (n1, n2):
            assert r.command("EXISTS", f"signal:node:{nd.env['SIGNAL_NODE_ID']}") == 1
        lists = poll(lambda: r.command("HVALS", "signal:shard-lists"), until=lambda v: len(v) == 2,
                     what=f"both nodes' shard lists on shard {i}")
        want = f"{i}/{k} " + ",".join(address(x) for x in shards.shards)
        assert lists == [want, want], lists
    for nd in (n1, n2):
        ms = metrics(nd.port)
        for i, r in enumerate(shards.shards):
            assert value(ms, "signal_redis_shard_up", shard=str(i), address=address(r)) == 1
            assert value(ms, "signal_redis_shard_mismatch", shard=str(i)) == 0
            for role in ("bus", "subscriber"):
                assert value(ms, "signal_redis_connected", role=role, shard=str(i)) == 1
        resp = get(nd.port, "/readyz")
        assert (resp.status, resp.text) == (200, "ready\n"), resp
    # Leaving empties each shard's rooms.
    for a, b in members.values():
        a.close()
        b.close()
    for room in members:
        poll(lambda: shards.keys(f"*{room}*"), until=lambda v: v == [], what=f"keys of {room}")


# ---------------------------------------------------------------------------
# One shard's outage

def test_a_shard_killed_and_restarted_touches_only_its_rooms(three, nodes):
    n1, n2 = start_cluster(nodes, three.url, 2, FAST, name="outage")
    by_shard = rooms_on(3, 1)
    dead, (room0,) = three.shards[0], by_shard[0]
    pairs = {s: cross_pair(n1, n2, rooms[0]) for s, rooms in by_shard.items()}
    a0, b0 = pairs[0]
    c0 = join(n1, room0, new_account("c"))  # a0's neighbour on n1
    a0.expect_joined(c0)
    b0.expect_joined(c0)

    dead.stop()
    for nd in (n1, n2):
        resp = poll(lambda: get(nd.port, "/readyz"), until=lambda r: "shard 0" in r.text,
                    what="/readyz naming the shard that is down")
        assert resp.status == 200, resp
        assert resp.text.startswith("ready\n") and f"redis shard 0 ({address(dead)}) down" in resp.text
        assert resp.text.count("\n") == 2, resp.text  # only shard 0
        ms = metrics(nd.port)
        assert value(ms, "signal_ready") == 1
        assert value(ms, "signal_redis_shard_up", shard="0", address=address(dead)) == 0
        for i in (1, 2):
            assert value(ms, "signal_redis_shard_up", shard=str(i), address=address(three.shards[i])) == 1
        assert value(ms, "signal_redis_connected", role="bus", shard="0") == 0
        assert value(ms, "signal_redis_connected", role="bus", shard="1") == 1

    # The other shards' rooms: signals and presence across nodes as ever.
    for s in (1, 2):
        a, b = pairs[s]
        for i in range(5):
            a.send("during", {"i": i})
        assert [b.expect_signal("during", a)["data"]["i"] for _ in range(5)] == list(range(5))
        d = join(n2, by_shard[s][0], new_account("d"))
        a.expect_joined(d)
        b.expect_joined(d)
        d.close()
        a.expect_left(d)
        b.expect_left(d)
    # The dead shard's room: local members keep working.
    a0.send("local", {})
    c0.expect_signal("local", a0)

    dead.start()
    channel = f"signal:room:{room0}"
    poll(lambda: dead.numsub(channel), until=lambda v: v == 2, timeout=RECOVER,
         what="both nodes subscribed again on the restarted shard")
    poll(lambda: dead.command("HLEN", f"signal:presence:{room0}"), until=lambda v: v == 3,
         timeout=RECOVER, what="the room's presence restored on the restarted shard")
    for nd in (n1, n2):
        poll(lambda: get(nd.port, "/readyz").text, until=lambda t: t == "ready\n", timeout=RECOVER,
             what="/readyz whole again")
    # Each one's next packet: nobody left and came back in the room meanwhile.
    a0.send("after", {})
    c0.expect_signal("after", a0)
    b0.expect_signal("after", a0)
    b0.send("back", {})
    a0.expect_signal("back", b0)


def test_readyz_is_503_only_when_every_shard_is_down(two_down, nodes):
    down = two_down
    n = nodes.start({"SIGNAL_REDIS_URL": ",".join(r.url for r in down), "SIGNAL_NODE_ID": "all-down"})
    resp = get(n.port, "/readyz")
    assert resp.status == 503, resp
    assert resp.text.splitlines() == [
        "not ready: every redis shard is down",
        f"redis shard 0 ({address(down[0])}) down: redis bus connection down",
        f"redis shard 1 ({address(down[1])}) down: redis bus connection down"], resp.text
    assert value(metrics(n.port), "signal_ready") == 0
    down[1].start()
    resp = poll(lambda: get(n.port, "/readyz"), until=lambda r: r.status == 200, timeout=RECOVER,
                what="ready once one shard is up")
    assert resp.text == f"ready\nredis shard 0 ({address(down[0])}) down: redis bus connection down\n"
    down[0].start()
    poll(lambda: get(n.port, "/readyz").text, until=lambda t: t == "ready\n", timeout=RECOVER,
         what="no shard down")


# ---------------------------------------------------------------------------
# Shard lists that differ

def mismatch_lines(nd):
    """The redis_shard_mismatch log lines of a node, as parsed JSON."""
    return [json.loads(line) for line in nd.stderr().splitlines() if '"redis_shard_mismatch"' in line]


def test_shard_lists_in_another_order_are_detected(two_redis, nodes):
    r0, r1 = two_redis
    a = nodes.start({**FAST, "SIGNAL_REDIS_URL": f"{r0.url},{r1.url}", "SIGNAL_NODE_ID": "order-a"})
    b = nodes.start({**FAST, "SIGNAL_REDIS_URL": f"{r1.url},{r0.url}", "SIGNAL_NODE_ID": "order-b"})
    for nd in (a, b):
        for shard in ("0", "1"):
            poll(lambda: value(metrics(nd.port), "signal_redis_shard_mismatch", shard=shard),
                 until=lambda v: v == 1, what=f"shard {shard}'s mismatch on {nd.env['SIGNAL_NODE_ID']}")
    lines = mismatch_lines(a)
    assert len(lines) == 2, lines  # once per shard, not once per sweep
    (shard0,) = [ln for ln in lines if f"on shard 0 ({address(r0)})" in ln["msg"]]
    assert shard0["level"] == "warn" and "1 live node uses another shard list" in shard0["msg"], shard0
    assert f'"1/2 {address(r1)},{address(r0)}"' in shard0["msg"], shard0  # what the other has
    assert f'this node "0/2 {address(r0)},{address(r1)}"' in shard0["msg"], shard0
    # The other node dead, its list goes with the sweep, and the mismatch with it.
    b.kill()
    for r in (r0, r1):
        poll(lambda: r.command("HKEYS", "signal:shard-lists"), until=lambda v: len(v) == 1,
             what="the dead node's list swept")
    for shard in ("0", "1"):
        poll(lambda: value(metrics(a.port), "signal_redis_shard_mismatch", shard=shard),
             until=lambda v: v == 0, what=f"shard {shard}'s mismatch over")
    again = [ln for ln in mismatch_lines(a) if "uses this node's shard list again" in ln["msg"]]
    assert len(again) == 2 and all(ln["level"] == "info" for ln in again), again


def test_an_extra_shard_is_detected(two_redis, nodes):
    r0, r1 = two_redis
    two = nodes.start({**FAST, "SIGNAL_REDIS_URL": f"{r0.url},{r1.url}", "SIGNAL_NODE_ID": "extra-two"})
    one = nodes.start({**FAST, "SIGNAL_REDIS_URL": r0.url, "SIGNAL_NODE_ID": "extra-one"})
    # They meet on r0 only: each sees the other differ there; r1 has one node.
    for nd in (two, one):
        poll(lambda: value(metrics(nd.port), "signal_redis_shard_mismatch", shard="0"),
             until=lambda v: v == 1, what=f"the mismatch on {nd.env['SIGNAL_NODE_ID']}")
    assert value(metrics(two.port), "signal_redis_shard_mismatch", shard="1") == 0
    (line,) = mismatch_lines(one)
    assert f'"0/2 {address(r0)},{address(r1)}"' in line["msg"], line
    assert f'this node "0/1 {address(r0)}"' in line["msg"], line
    assert line["msg"].startswith("redis bus: "), line  # one URL: named as ever


# ---------------------------------------------------------------------------
# One URL

def test_one_url_keeps_its_metrics_and_readiness(two_redis, nodes):
    r = two_redis[0]
    n1, n2 = start_cluster(nodes, r.url, 2, name="one")
    room = new_room()
    cross_pair(n1, n2, room)
    assert r.keys(f"*{room}*") == [f"signal:presence:{room}"]
    ms = metrics(n1.port)
    for role in ("bus", "subscriber"):
        assert value(ms, "signal_redis_connected", role=role) == 1  # no shard label
        assert value(ms, "signal_redis_reconnects_total", role=role) == 0
    assert not any(dict(k[1]).get("shard") for k in ms if k[0].startswith("signal_redis_connected"))
    assert value(ms, "signal_redis_shard_up", shard="0", address=address(r)) == 1
    assert value(ms, "signal_redis_shard_mismatch", shard="0") == 0
    resp = get(n1.port, "/readyz")
    assert (resp.status, resp.text) == (200, "ready\n")
    listening = next(ln for ln in n1.stderr().splitlines() if '"listening"' in ln)
    assert "bus redis)" in listening, listening
