"""Joins and connections per account (docs/operations.md, "Joins and
connections per account"): one token connecting and closing in a loop is held
to its join budget (SIGNAL_JOIN_BURST, SIGNAL_JOIN_RATE_PER_MIN), so the other
members of its room get a bounded number of user-joined/user-left; excess
upgrades get 429 with Retry-After; SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT caps an
account's concurrent connections on a node, and a close frees a slot."""

import math
import time

import pytest

from harness import Inbox, T, c_only, cluster_env, is_signal, join, new_account, new_room, token
from test_operations import log_lines, metrics, value, wait_metric
from wsclient import HandshakeError

pytestmark = c_only

BURST, RATE_PER_MIN = 20, 30  # the defaults
BODY_429 = b"Too Many Requests: Too many connections or joins for this account"


def presence_of(box, sub):
    return [t for t, who in box.presence() if who == sub]


def settle(node, box, marker_from, connections):
    """Waits until the node has handled every close (only the room's steady
    members are left), then until box has read a marker sent after that: every
    presence packet the flood caused is in box.log by then."""
    wait_metric(node.port, "signal_connections", connections, what="every flood connection closed")
    marker_from.send("marker", {})
    box.wait_for(is_signal("marker", marker_from), what="the marker after the flood")


def flood(node, room, tok, box, attempts):
    """attempts upgrades with one token, one after another; each admitted one
    reads its welcome and closes at once, so that its join and its leave do
    not overlap the next one's (the most presence a flood can cause); box
    drains as it goes. Returns (upgrades admitted, the refused responses,
    seconds taken)."""
    admitted, refused = 0, []
    t0 = time.monotonic()
    for _ in range(attempts):
        try:
            c = node.connect(room, tok)
        except HandshakeError as e:
            refused.append(e.response)
        else:
            admitted += 1
            assert c.recv_json(T)["type"] == "webrtc"
            c.close()
        box.drain()
    return admitted, refused, time.monotonic() - t0


def test_join_flood_is_bounded_by_the_burst(nodes):
    """1000 connect/close of one token against a room with other members: the
    burst is admitted, then about one join every 2 s; the rest get 429 with
    Retry-After, and the other members get at most a user-joined/user-left pair
    per admitted join. Main (no limit) admits all 1000: nearly 2000 presence
    packets per member."""
    n = nodes.start()
    room = new_room()
    b = join(n, room, new_account("b"))
    c = join(n, room, new_account("c"))
    b.expect_joined(c)
    box = Inbox(b)
    x = new_account("flood")
    tok = token(x, [room])

    attempts = 1000
    admitted, refused, secs = flood(n, room, tok, box, attempts)
    settle(n, box, c, 2)
    got = presence_of(box, x)
    print(f"\njoin flood: {attempts} upgrades of one token in {secs:.1f} s: {admitted} admitted, "
          f"{len(refused)} refused; {len(got)} presence packets per other member "
          f"({len(got) / attempts:.3f} per attempt)")

    allowed = BURST + math.floor(secs * RATE_PER_MIN / 60) + 1
    assert BURST <= admitted <= allowed, (admitted, allowed, secs)
    assert len(got) <= 2 * admitted, got
    assert got == ["user-joined", "user-left"] * (len(got) // 2), got
    assert admitted + len(refused) == attempts
    for r in refused:
        assert r.status == 429, r
        assert r.body == BODY_429, r
        retry = r.headers.get("retry-after")
        assert retry is not None and retry.isdigit(), r.headers
        assert 1 <= int(retry) <= math.ceil(60 / RATE_PER_MIN), r.headers
    ms = metrics(n.port)
    assert value(ms, "signal_upgrades_refused_total", status="429", reason="account_rate") == len(refused)
    assert value(ms, "signal_upgrades_refused_total", status="429", reason="account_cap") == 0
    # one log line per account per minute, not one per refusal
    lines = [e for e in log_lines(n) if e["event"] == "account_limited"]
    assert 1 <= len(lines) <= 1 + int(secs // 60), lines
    assert lines[0]["account"] == x and lines[0]["room"] == room, lines

    # the flooder is still held back, another account joins as usual
    with pytest.raises(HandshakeError) as e:
        n.connect(room, tok)
    assert e.value.status == 429
    y = join(n, room, new_account("y"))
    box.wait_for(is_signal("user-joined", y), start=len(box.log), what="y's user-joined")
    y.close()
    box.wait_for(is_signal("user-left", y), start=len(box.log), what="y's user-left")


def test_accounts_have_their_own_budgets(nodes):
    """Joins of one account spend nothing of another's."""
    n = nodes.start({"SIGNAL_JOIN_BURST": "3", "SIGNAL_JOIN_RATE_PER_MIN": "1"})
    room = new_room()
    a, b = new_account("a"), new_account("b")
    for sub in (a, b):
        for _ in range(3):
            join(n, room, sub).c.abort()
    for sub in (a, b):
        with pytest.raises(HandshakeError) as e:
            join(n, room, sub)
        assert e.value.status == 429
        assert 1 <= int(e.value.headers["retry-after"]) <= 60, e.value.headers
    join(n, room, new_account("c"))


def test_account_connection_cap(nodes):
    """SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT=3: a fourth connection of the account
    gets 429 (in any room, without Retry-After), other accounts do not; a close
    frees a slot. The other member sees the account join once and never leave."""
    n = nodes.start({"SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT": "3"})
    room, other_room = new_room(), new_room()
    b = join(n, room, new_account("b"))
    x = new_account("x")
    xs = [join(n, room, x, rooms=[room, other_room])]
    b.expect_joined(xs[0])
    xs += [join(n, room, x, rooms=[room, other_room]) for _ in range(2)]
    for where in (room, room, other_room):
        with pytest.raises(HandshakeError) as e:
            join(n, where, x, rooms=[room, other_room])
        assert e.value.status == 429, e.value.response
        assert e.value.body == BODY_429
        assert "retry-after" not in e.value.headers, e.value.headers
    y = join(n, room, new_account("y"))
    b.expect_joined(y)
    ms = metrics(n.port)
    assert value(ms, "signal_upgrades_refused_total", status="429", reason="account_cap") == 3
    assert value(ms, "signal_upgrades_refused_total", status="429", reason="account_rate") == 0
    lines = [e for e in log_lines(n) if e["event"] == "account_limited"]
    assert len(lines) == 1 and lines[0]["account"] == x, lines

    xs[0].close()
    wait_metric(n.port, "signal_connections", 4, what="x's first connection closed")  # b, y, two of x
    again = join(n, room, x, rooms=[room, other_room])
    assert again.welcome["type"] == "webrtc"
    y.send("marker", {})
    b.expect_signal("marker", y)  # nothing of x in between: it never left


@pytest.mark.cluster
def test_cap_is_per_node(nodes, redis):
    """The cap counts the connections on one node: an account at it on one node
    still connects to another."""
    env = {"SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT": "1"}
    n1 = nodes.start(cluster_env(redis.url, f"cap-{new_account()}", env))
    n2 = nodes.start(cluster_env(redis.url, f"cap-{new_account()}", env))
    room = new_room()
    x = new_account("x")
    join(n1, room, x)
    with pytest.raises(HandshakeError) as e:
        join(n1, room, x)
    assert e.value.status == 429
    assert join(n2, room, x).welcome["type"] == "webrtc"
