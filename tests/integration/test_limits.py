"""Limits: rate limit (rate_limited, 1008), per-sender order under load, message
size setting, slow readers (4008), SIGNAL_MAX_CONNECTIONS (503), keep-alive."""

import select
import time

import pytest

from harness import T, c_only, join, join_room, new_account, new_room
from wsclient import HandshakeError, Timeout, WSClosed


def pump(members, until, timeout=T):
    """Reads packets from whichever member has one, feeding (member, packet) to
    until(); stops when it returns True. Bounded by timeout."""
    deadline = time.monotonic() + timeout
    while True:
        progressed = False
        for m in members:
            while m.c.pending():
                if until(m, m.recv(max(0.5, deadline - time.monotonic()))):
                    return
                progressed = True
        if progressed:
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout("pump: condition not reached in time")
        p = select.poll()
        for m in members:
            p.register(m.c.fileno(), select.POLLIN)
        p.poll(min(200, max(1, int(left * 1000))))


def probe_until_delivered(sender, receiver, timeout=T):
    """After rate limiting: sends a probe every 0.25 s until one gets through (bucket refilled)."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        sender.send("probe", {"n": n})
        got = {}

        def until(m, p):
            if m is sender and p["type"] == "error":
                assert p["data"]["code"] == "rate_limited", p
                got["limited"] = True
                return True
            if m is receiver and p["type"] == "webrtc.signal" and p["data"]["type"] == "probe":
                got["ok"] = p["data"]["data"]["n"]
                return True
            return False

        pump([sender, receiver], until)
        if "ok" in got:
            assert got["ok"] == n
            return
        time.sleep(0.25)  # waiting for the token bucket to refill (time is the event here)
    raise Timeout("no probe got through after rate limiting")


# -- rate limit ------------------------------------------------------------------

def test_default_rate_limit_burst(node):
    """Defaults 50/s, burst 200: of 400 back-to-back signals, the first 200 pass and
    some of the rest are refused with rate_limited."""
    room = new_room()
    a, b = join_room(node, room, 2)
    n = 400
    a.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    delivered, limited = [], []

    def until(m, p):
        if m is a:
            assert p["type"] == "error" and p["data"]["code"] == "rate_limited", p
            limited.append(p)
        else:
            assert p["data"]["type"] == "seq" and p["data"]["senderAccountId"] == a.sub, p
            delivered.append(p["data"]["data"]["i"])
        return len(delivered) + len(limited) == n

    pump([a, b], until, timeout=30)
    assert delivered[:200] == list(range(200)), delivered[:210]
    assert delivered == sorted(delivered)
    assert len(limited) >= 1
    probe_until_delivered(a, b)


@pytest.fixture(scope="module")
def limit_node(module_nodes):
    return module_nodes.start({"SIGNAL_RATE_PER_S": "1", "SIGNAL_RATE_BURST": "5",
                               "SIGNAL_MAX_MESSAGE_BYTES": "1024"})


def test_rate_limited_errors_and_connection_stays(limit_node):
    room = new_room()
    a, b = join_room(limit_node, room, 2)
    n = 20
    t0 = time.monotonic()
    a.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    delivered, limited = [], []

    def until(m, p):
        if m is a:
            assert set(p) == {"type", "data"} and p["type"] == "error", p
            assert set(p["data"]) == {"code", "message"} and p["data"]["code"] == "rate_limited", p
            limited.append(p)
        else:
            delivered.append(p["data"]["data"]["i"])
        return len(delivered) + len(limited) == n

    pump([a, b], until)
    elapsed = time.monotonic() - t0
    assert delivered[:5] == [0, 1, 2, 3, 4], delivered
    assert delivered == sorted(delivered)
    assert len(delivered) <= 5 + int(elapsed) + 1, (delivered, elapsed)
    assert len(limited) == n - len(delivered) >= 1
    probe_until_delivered(a, b)


def test_rate_limit_abuse_closes_1008(limit_node):
    room = new_room()
    a, b = join_room(limit_node, room, 2)
    n = 5 + 1001 + 50
    a.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    info = a.c.recv_close(timeout=30)
    assert info.code == 1008, info
    limited = [m for m in info.messages if '"rate_limited"' in m]
    assert len(limited) >= 1000, len(limited)
    assert len(limited) == len(info.messages), [m for m in info.messages if '"rate_limited"' not in m][:3]
    got = [b.expect_signal("seq", a)["data"]["i"] for _ in range(5)]
    assert got == [0, 1, 2, 3, 4]
    b.expect_left(a)
    # the node still serves
    c, d = join_room(limit_node, new_room(), 2)
    c.send("ok", {})
    d.expect_signal("ok", c)


def test_rate_limit_is_per_connection(limit_node):
    """Another connection of the same account has its own bucket."""
    room = new_room()
    a1 = join(limit_node, room, new_account("a"))
    a2 = join(limit_node, room, a1.sub)
    b = join(limit_node, room)
    a1.expect_joined(b)
    a2.expect_joined(b)
    a1.c.send_many_json([{"type": "x", "data": {"i": i}} for i in range(8)])
    for i in range(5):
        assert b.expect_signal("x", a1)["data"]["i"] == i
    a2.send("y", {"from": "a2"})
    # a2's signal gets through whatever a1's bucket holds
    def until(m, p):
        return m is b and p["data"]["type"] == "y"
    pump([b], until)


@c_only
def test_pings_count_against_the_rate_limit(limit_node):
    """webrtc.ping is a message like any other for the rate limit (burst 5)."""
    room = new_room()
    a, b = join_room(limit_node, room, 2)
    n = 9
    a.c.send_many_json([{"type": "webrtc.ping"}] * n)
    got = [a.recv() for _ in range(n)]
    pongs = [p for p in got if p == {"type": "webrtc.pong"}]
    limited = [p for p in got if p.get("type") == "error" and p["data"]["code"] == "rate_limited"]
    assert len(pongs) + len(limited) == n, got
    assert got[:5] == [{"type": "webrtc.pong"}] * 5 and len(limited) >= 1, got
    # nothing reached b: a's first signal to get through is b's next packet
    probe_until_delivered(a, b)


def test_custom_max_message_bytes(limit_node):
    room = new_room()
    a, b = join_room(limit_node, room, 2)
    base = '{"type":"s","data":{"p":""}}'
    a.c.send_text('{"type":"s","data":{"p":"' + "x" * (1024 - len(base)) + '"}}')
    assert len(b.expect_signal("s", a)["data"]["p"]) == 1024 - len(base)
    a.c.send_text('{"type":"s","data":{"p":"' + "x" * (1025 - len(base)) + '"}}')
    assert a.c.recv_close(T).code == 1009


# -- order and throughput with the rate limit raised ---------------------------------

@pytest.fixture(scope="module")
def fast_node(module_nodes):
    return module_nodes.start({"SIGNAL_RATE_PER_S": "100000", "SIGNAL_RATE_BURST": "100000",
                               "SIGNAL_MAX_MESSAGE_BYTES": "262144"})


def test_per_sender_order_500(fast_node):
    room = new_room()
    a, b, c = join_room(fast_node, room, 3)
    n = 500
    a.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    for m in (b, c):
        assert [m.expect_signal("seq", a)["data"]["i"] for _ in range(n)] == list(range(n))
    # a directed stream keeps its order too
    a.c.send_many_json([{"type": "seq", "data": {"i": i}, "to": b.sub} for i in range(n)])
    assert [b.expect_signal("seq", a)["data"]["i"] for _ in range(n)] == list(range(n))
    a.send("end", {})
    c.expect_signal("end", a)  # c got none of the directed ones


def test_room_isolation_many_rooms(fast_node):
    """Several rooms at once, one account in two of them: nothing crosses rooms."""
    rooms = [new_room() for _ in range(4)]
    shared = new_account("shared")
    groups = [join_room(fast_node, r, 2, prefix=f"r{i}-") for i, r in enumerate(rooms)]
    s0 = join(fast_node, rooms[0], shared, rooms=rooms[:2])
    s1 = join(fast_node, rooms[1], shared, rooms=rooms[:2])
    for m in groups[0]:
        m.expect_joined(s0)
    for m in groups[1]:
        m.expect_joined(s1)
    assert {p["accountId"] for p in s1.welcome["data"]["participants"]} == {m.sub for m in groups[1]}
    # everyone sends into its own room; wait until each room's receivers have it
    for i, (x, y) in enumerate(groups):
        x.send("s", {"room": i})
    for i, (x, y) in enumerate(groups):
        assert y.expect_signal("s", x)["data"] == {"room": i}
    assert s0.expect_signal("s", groups[0][0])["data"] == {"room": 0}
    assert s1.expect_signal("s", groups[1][0])["data"] == {"room": 1}
    # directed at the shared account from room 1: only its room-1 connection gets it
    x1 = groups[1][0]
    x1.send("direct", {"room": 1}, to=shared)
    assert s1.expect_signal("direct", x1)["to"] == shared
    # the shared account directs at itself in room 1: it has no other connection there
    s1.send("self", {}, to=shared)
    s1.send("s1-done", {})
    for m in groups[1]:
        m.expect_signal("s1-done", s1)
    # the shared account speaks in room 0
    s0.send("from-shared", {"room": 0})
    for m in groups[0]:
        m.expect_signal("from-shared", s0)
    # end markers: each receiver's next packet comes from its own room
    for i, (x, y) in enumerate(groups):
        x.send("end", {"room": i})
    for i, (x, y) in enumerate(groups):
        assert y.expect_signal("end", x)["data"] == {"room": i}
    assert s0.expect_signal("end", groups[0][0])["data"] == {"room": 0}
    assert s1.expect_signal("end", x1)["data"] == {"room": 1}


def test_deep_nesting_over_100k_within_limit(fast_node):
    room = new_room()
    a, b = join_room(fast_node, room, 2)
    a.c.send_text("[" * 100000)
    err = a.recv()
    assert err["type"] == "error" and err["data"]["code"] in ("invalid_json", "invalid_message"), err
    a.c.send_text("[" * 100000 + "]" * 100000)
    err = a.recv()
    assert err["type"] == "error" and err["data"]["code"] in ("invalid_json", "invalid_message"), err
    a.send("after", {})
    b.expect_signal("after", a)


# -- slow reader -----------------------------------------------------------------

def test_slow_reader_closed_4008_others_keep_receiving(nodes):
    # Both bounds at 64 KiB: the reader is closed as soon as it holds more
    # (test_slow_readers.py has the soft bound's time).
    n = nodes.start({"SIGNAL_RATE_PER_S": "100000", "SIGNAL_RATE_BURST": "100000",
                     "SIGNAL_SEND_QUEUE_BYTES": "65536", "SIGNAL_SEND_QUEUE_HARD_BYTES": "65536"})
    room = new_room()
    sender, fast = join_room(n, room, 2)
    slow = join(n, room, new_account("slow"), client_kw={"rcvbuf": 4096})
    sender.expect_joined(slow)
    fast.expect_joined(slow)
    # 16 MB: far beyond what the kernel buffers (a few MB) plus the 64 KiB queue can hold
    chunk = "z" * 30000
    total = 540
    fast_events = []
    for i in range(total):
        sender.send("bulk", {"i": i, "pad": chunk})
        while True:  # the fast reader gets every signal, in order, as it goes
            p = fast.recv()
            d = p["data"]
            if d["type"] == "bulk":
                assert d["data"]["i"] == i, (d["data"]["i"], i)
                break
            fast_events.append(d)
    # the slow reader, reading at last, finds the close (or the end of the connection)
    # before the end of the stream
    info = slow.c.recv_close(timeout=30, keep_messages=True)
    assert info.code in (4008, None), info
    assert len(info.messages) < total, "the slow reader was never cut off"
    # everyone else saw it leave, and goes on
    if not fast_events:
        fast.expect_left(slow)
    else:
        assert [e["type"] for e in fast_events] == ["user-left"] and fast_events[0]["senderAccountId"] == slow.sub
    sender.expect_left(slow)
    fast.send("still", {})
    sender.expect_signal("still", fast)


# -- max connections (C node only) --------------------------------------------------

@c_only
def test_max_connections_503(nodes):
    n = nodes.start({"SIGNAL_MAX_CONNECTIONS": "3"})
    room = new_room()
    ms = [join(n, room, new_account(f"m{i}")) for i in range(3)]
    with pytest.raises(HandshakeError) as e:
        join(n, room)
    assert e.value.status == 503, e.value.response
    ms[0].close()
    deadline = time.monotonic() + T
    while True:  # the slot is freed once the node has processed the close
        try:
            m = join(n, room)
            break
        except HandshakeError as e:
            assert e.status == 503
            assert time.monotonic() < deadline, "no slot freed after a close"
            time.sleep(0.05)
    ms[1].send("hi", {})
    m.expect_signal("hi", ms[1])


# -- keep-alive (C node only) ----------------------------------------------------

@c_only
def test_keepalive_drops_silent_peer(nodes):
    n = nodes.start({"SIGNAL_PING_S": "1"})
    room = new_room()
    answering = join(n, room, new_account("pong"))
    silent = join(n, room, new_account("silent"), client_kw={"auto_pong": False})
    answering.expect_joined(silent)
    seen = []
    t0 = time.monotonic()
    deadline = t0 + 12
    dropped = None
    while dropped is None:
        assert time.monotonic() < deadline, f"silent client not dropped ({silent.c.pings} pings seen)"
        try:
            seen.append(answering.recv(0.1))
        except Timeout:
            pass
        try:
            silent.c.recv_message(0.1)
        except Timeout:
            pass
        except WSClosed as e:
            dropped = e
    assert silent.c.pings >= 1, "no ping was sent to the silent client"
    assert answering.c.pings >= 1, "no ping was sent to the answering client"
    # the answering client is still there, and saw the silent one leave
    def until(m, p):
        seen.append(p)
        return p["data"]["type"] == "user-left"
    if not any(p["data"]["type"] == "user-left" for p in seen):
        pump([answering], until)
    left = [p for p in seen if p["data"]["type"] == "user-left"]
    assert left[0]["data"]["senderAccountId"] == silent.sub
    other = join(n, room)
    answering.expect_joined(other)
    other.send("after", {})
    answering.expect_signal("after", other)


@c_only
def test_keepalive_counts_app_pings_as_life(nodes):
    """A client that answers no WebSocket ping (as a browser page cannot see
    them) but sends webrtc.ping is kept: its pings are signs of life."""
    n = nodes.start({"SIGNAL_PING_S": "1"})
    room = new_room()
    app = join(n, room, new_account("app"), client_kw={"auto_pong": False})
    # 4 s without a WebSocket pong, where a silent client is dropped 2-3 s
    # after its last frame: time itself is what is awaited here.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 4:
        app.send("webrtc.ping")
        assert app.recv() == {"type": "webrtc.pong"}
        time.sleep(0.3)
    other = join(n, room, new_account("other"))
    assert [p["accountId"] for p in other.welcome["data"]["participants"]] == [app.sub]
    app.expect_joined(other)


# -- bytes per sender (C node only) ----------------------------------------------

@c_only
def test_byte_budget_keeps_one_sender_from_flooding_a_queue(nodes):
    """Messages may be few but big: a sender gets at most twice
    SIGNAL_RATE_BYTES_PER_S in one burst (here 32 KiB, below the 64 KiB send
    queue), the rest is rate_limited, and the reader keeps its connection."""
    n = nodes.start({"SIGNAL_RATE_BYTES_PER_S": "16384", "SIGNAL_SEND_QUEUE_BYTES": "65536",
                     "SIGNAL_MAX_MESSAGE_BYTES": "16384", "SIGNAL_RATE_BURST": "1000",
                     "SIGNAL_RATE_PER_S": "1000"})
    room = new_room()
    sender, reader = join_room(n, room, 2)
    pad = "p" * 8000
    sender.c.send_many_json([{"type": "big", "data": {"i": i, "pad": pad}} for i in range(12)])
    # Each message ends as an error to the sender or a delivery to the reader,
    # in whichever order the two arrive: wait for either.
    limited = 0
    delivered = []
    deadline = time.monotonic() + T
    while len(delivered) + limited < 12:
        assert time.monotonic() < deadline, (limited, delivered)
        select.select([sender.c._c.sock, reader.c._c.sock], [], [], 0.5)
        if sender.c.pending():
            d = sender.recv()["data"]
            assert d["code"] == "rate_limited", d
            limited += 1
        elif reader.c.pending():
            delivered.append(reader.expect_signal("big", sender)["data"]["i"])
    assert 2 <= limited <= 10, limited
    assert delivered == sorted(delivered)
    sender.send("after", {})
    reader.expect_signal("after", sender)


@c_only
def test_one_packet_larger_than_the_queue_still_arrives(nodes):
    """The queue bound is on what waits behind the frame in flight: a message
    bigger than SIGNAL_SEND_QUEUE_BYTES reaches a reader whose queue is empty."""
    n = nodes.start({"SIGNAL_SEND_QUEUE_BYTES": "1024"})
    room = new_room()
    a, b = join_room(n, room, 2)
    a.send("big", {"pad": "q" * 3000})
    assert b.expect_signal("big", a)["data"]["pad"] == "q" * 3000


def test_far_future_exp_is_no_expiry(node):
    """exp far in the future (beyond what milliseconds fit in 64 bits) is just
    a token that does not expire soon: no overflow, no early 4001."""
    room = new_room()
    a = join(node, room, exp_in=None, exp=9000000000000000000)
    b = join(node, room)
    a.expect_joined(b)
    b.send("hi", {})
    a.expect_signal("hi", b)
