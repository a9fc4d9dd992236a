"""docs/protocol.md, from "Packets the node sends" to "Errors": the welcome, the
three client forms, wrapping, routing, joins and leaves, error answers. Everything
here runs on one default node (per module); each test uses its own room."""

import datetime as dt
import json

import pytest

from harness import c_only, join, join_room, new_account, new_room, parse_iso


def packet(sender, type_, data, to=None):
    d = {"type": type_, "data": data}
    if to is not None:
        d["to"] = to
    d["senderAccountId"] = sender.sub
    d["senderInfo"] = sender.account
    return {"type": "webrtc.signal", "data": d}


def expect_packet(member, expected):
    got = member.recv()
    assert got == expected, f"{member.sub} got\n{json.dumps(got)}\nexpected\n{json.dumps(expected)}"


def marker(sender, receivers, tag="marker"):
    """sender sends a signal that must be the next thing each receiver gets
    (proves, by per-sender order, that nothing else from sender came before)."""
    sender.send("marker", {"tag": tag})
    for r in receivers:
        d = r.expect_signal("marker", sender)
        assert d["data"] == {"tag": tag}, d


# -- welcome ----------------------------------------------------------------------

def test_welcome_exact_shape(node):
    room = new_room()
    before = dt.datetime.now(dt.timezone.utc)
    m = join(node, room)
    w = m.welcome
    assert set(w) == {"type", "data"}, w
    assert set(w["data"]) == {"userId", "roomId", "message", "timestamp", "participants"}, w
    assert w["data"]["userId"] == m.sub
    assert w["data"]["roomId"] == room
    assert w["data"]["message"] == f"Connected to call of #{room}."
    assert w["data"]["participants"] == []
    ts = parse_iso(w["data"]["timestamp"])
    after = dt.datetime.now(dt.timezone.utc)
    # same machine's clock; generous bounds
    assert before - dt.timedelta(seconds=5) <= ts <= after + dt.timedelta(seconds=5), (before, ts, after)


def _participant(member):
    return {
        "identity": member.claims.get("name"),
        "name": member.claims.get("nick") or member.claims.get("name"),
        "accountId": member.sub,
        "account": member.account,
    }


def test_welcome_participants(node):
    room = new_room()
    a = join(node, room, new_account("a"), name="alice", nick="Ally",
             profile={"avatar": "a.png", "level": 3, "tags": ["x"]}, updated_at="2024-05-06T07:08:09Z")
    b = join(node, room, new_account("b"), name="bob")  # no nick: name falls back to name
    a.expect_joined(b)
    c = join(node, room, new_account("c"), name=None)  # neither name nor nick
    a.expect_joined(c)
    b.expect_joined(c)
    assert c.account["name"] is None and c.account["nick"] is None
    assert c.account["profile"] == {} and c.account["updatedAt"] is None
    d = join(node, room, new_account("d"))
    for x in (a, b, c):
        x.expect_joined(d)

    parts = d.welcome["data"]["participants"]
    assert len(parts) == 3, parts
    by_id = {p["accountId"]: p for p in parts}
    assert set(by_id) == {a.sub, b.sub, c.sub}
    for m in (a, b, c):
        p = by_id[m.sub]
        assert set(p) == {"identity", "name", "accountId", "account", "joinedAt"}, p
        joined_at = parse_iso(p["joinedAt"])
        assert joined_at <= parse_iso(d.welcome["data"]["timestamp"]) + dt.timedelta(seconds=1)
        assert {k: v for k, v in p.items() if k != "joinedAt"} == _participant(m), p
    assert by_id[a.sub]["name"] == "Ally" and by_id[a.sub]["identity"] == "alice"
    assert by_id[a.sub]["account"] == {"id": a.sub, "name": "alice", "nick": "Ally",
                                       "profile": {"avatar": "a.png", "level": 3, "tags": ["x"]},
                                       "updatedAt": "2024-05-06T07:08:09Z"}
    assert by_id[b.sub]["name"] == "bob" and by_id[b.sub]["identity"] == "bob"
    assert by_id[c.sub]["name"] is None and by_id[c.sub]["identity"] is None
    # joining order is reflected (ms resolution may make neighbours equal)
    ja, jb, jc = (parse_iso(by_id[x.sub]["joinedAt"]) for x in (a, b, c))
    assert ja <= jb <= jc


def test_welcome_lists_each_account_once_and_not_self(node):
    room = new_room()
    a1 = join(node, room, new_account("a"))
    b = join(node, room, new_account("b"))
    a1.expect_joined(b)
    b2 = join(node, room, b.sub)  # b's second device: no user-joined, b listed once for later joiners
    a2 = join(node, room, a1.sub)
    assert [p["accountId"] for p in a2.welcome["data"]["participants"]] == [b.sub]
    assert [p["accountId"] for p in b2.welcome["data"]["participants"]] == [a1.sub]
    c = join(node, room)
    assert sorted(p["accountId"] for p in c.welcome["data"]["participants"]) == sorted([a1.sub, b.sub])


def test_joined_at_is_earliest_connection(node):
    room = new_room()
    a1 = join(node, room, new_account("a"))
    c = join(node, room)
    a1.expect_joined(c)
    j1 = next(p["joinedAt"] for p in c.welcome["data"]["participants"] if p["accountId"] == a1.sub)
    a2 = join(node, room, a1.sub)  # second connection, later
    d = join(node, room)
    a1.expect_joined(d)
    a2.expect_joined(d)
    c.expect_joined(d)
    assert next(p["joinedAt"] for p in d.welcome["data"]["participants"] if p["accountId"] == a1.sub) == j1
    # a1 leaves; the account is still there through a2, joined later
    a1.close()
    marker(a2, [c, d])  # c and d saw no user-left
    e = join(node, room)
    j2 = next(p["joinedAt"] for p in e.welcome["data"]["participants"] if p["accountId"] == a1.sub)
    assert parse_iso(j2) >= parse_iso(j1)
    assert parse_iso(j2) <= parse_iso(e.welcome["data"]["timestamp"]) + dt.timedelta(seconds=1)


# -- the three client forms, wrapping -------------------------------------------

FORMS = [
    # (what the client sends (with TO as placeholder for the target), expected type, data, with to)
    ({"type": "offer", "data": {"sdp": "v=0\r\n", "kind": "offer"}}, "offer", {"sdp": "v=0\r\n", "kind": "offer"}, False),
    ({"type": "offer", "data": {"sdp": "x"}, "to": "TO"}, "offer", {"sdp": "x"}, True),
    ({"type": "offer", "offer": {"sdp": "v=0"}}, "offer", {"offer": {"sdp": "v=0"}}, False),
    ({"type": "answer", "answer": {"sdp": "a"}, "to": "TO"}, "answer", {"answer": {"sdp": "a"}}, True),
    ({"type": "ice-candidate", "candidate": {"candidate": "c", "sdpMid": "0", "sdpMLineIndex": 0}, "extra": [1, 2]},
     "ice-candidate", {"candidate": {"candidate": "c", "sdpMid": "0", "sdpMLineIndex": 0}, "extra": [1, 2]}, False),
    ({"type": "bye"}, "bye", {}, False),
    ({"type": "webrtc.signal", "data": {"type": "offer", "data": {"sdp": "e"}}}, "offer", {"sdp": "e"}, False),
    ({"type": "webrtc.signal", "data": {"type": "offer", "data": {"sdp": "e"}, "to": "TO"}}, "offer", {"sdp": "e"}, True),
    ({"type": "webrtc.signal", "data": {"type": "ice-candidate", "candidate": {"c": 1}}}, "ice-candidate", {"candidate": {"c": 1}}, False),
    # data form: fields beside type/data/to are ignored
    ({"type": "offer", "data": {"a": 1}, "extra": "ignored", "n": 5}, "offer", {"a": 1}, False),
    # data of any JSON kind passes through
    ({"type": "custom", "data": "a string"}, "custom", "a string", False),
    ({"type": "custom", "data": 42.5}, "custom", 42.5, False),
    ({"type": "custom", "data": [1, "two", {"three": 3}, None]}, "custom", [1, "two", {"three": 3}, None], False),
    ({"type": "custom", "data": {"uni": "h\u00e9llo \u2603 \U0001F600", "esc": "\"\\/\b\f\n\r\t\u0001"}},
     "custom", {"uni": "h\u00e9llo \u2603 \U0001F600", "esc": "\"\\/\b\f\n\r\t\u0001"}, False),
    ({"type": "custom", "data": {"deep": {"a": {"b": {"c": {"d": [[[[]]]]}}}}, "big": 12345678901234, "neg": -1.5e-7, "t": True, "f": False, "z": None}},
     "custom", {"deep": {"a": {"b": {"c": {"d": [[[[]]]]}}}}, "big": 12345678901234, "neg": -1.5e-7, "t": True, "f": False, "z": None}, False),
    # "to": null is the same as no "to"
    ({"type": "offer", "data": {"n": 1}, "to": None}, "offer", {"n": 1}, False),
    ({"type": "webrtc.signal", "data": {"type": "offer", "data": {"n": 2}, "to": None}}, "offer", {"n": 2}, False),
    # unusual but valid types
    ({"type": "x" * 64, "data": {}}, "x" * 64, {}, False),
    ({"type": "a.b:c/d e", "data": {}}, "a.b:c/d e", {}, False),
]


def _fill_to(obj, target):
    if isinstance(obj, dict):
        return {k: (target if v == "TO" and k == "to" else _fill_to(v, target)) for k, v in obj.items()}
    return obj


@pytest.mark.parametrize("sent,type_,data,with_to", FORMS, ids=[f"form{i}" for i in range(len(FORMS))])
def test_client_forms(node, sent, type_, data, with_to):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_json(_fill_to(sent, b.sub))
    expect_packet(b, packet(a, type_, data, to=b.sub if with_to else None))
    # and nothing came back to the sender: b's answer is a's next packet
    marker(b, [a])


@pytest.mark.parametrize("data", [
    '{"n":0.1,"big":12345678901234567890.5,"e":1E+2,"neg":-0.0}',
    '{ "sdp" : "v=0\\r\\n", "s":"caf\\u00e9\\/" }',
    '[1, 2.50, true, null]',
], ids=["numbers", "spacing-and-escapes", "array"])
def test_data_is_relayed_byte_for_byte(node, data):
    """The client's own data bytes go out: numbers as written (no 0.1 turned
    into 0.10000000000000001), its spacing and escapes kept."""
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_text('{"type":"offer","data":' + data + ',"to":"' + b.sub + '"}')
    _, payload = b.c.recv_message(10)
    got = payload.decode()
    assert got.startswith('{"type":"webrtc.signal","data":{"type":"offer","data":' + data + ','), got
    assert json.loads(got) == packet(a, "offer", json.loads(data), to=b.sub)


def test_sender_identity_cannot_be_spoofed(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    evil = {"id": "evil", "name": "Mallory", "nick": None, "profile": {}, "updatedAt": None}
    # data form: the fields are ignored
    a.c.send_json({"type": "offer", "data": {"x": 1}, "senderAccountId": "evil", "senderInfo": evil})
    expect_packet(b, packet(a, "offer", {"x": 1}))
    # envelope: the same
    a.c.send_json({"type": "webrtc.signal", "data": {"type": "offer", "data": {"x": 2},
                                                      "senderAccountId": "evil", "senderInfo": evil}})
    expect_packet(b, packet(a, "offer", {"x": 2}))
    # flat form: they are client data, but the packet's sender is still the token's
    a.c.send_json({"type": "offer", "senderAccountId": "evil", "senderInfo": evil})
    expect_packet(b, packet(a, "offer", {"senderAccountId": "evil", "senderInfo": evil}))
    # inside data: passed through as data, sender from the token
    a.c.send_json({"type": "offer", "data": {"senderAccountId": "evil"}})
    expect_packet(b, packet(a, "offer", {"senderAccountId": "evil"}))


def test_sender_info_comes_from_token(node):
    room = new_room()
    a = join(node, room, new_account("a"), name="Alice", nick="al", profile={"p": [1, {"q": None}]},
             updated_at="2023-01-02T03:04:05.678Z")
    b = join(node, room)
    a.expect_joined(b)
    a.send("offer", {"k": "v"})
    d = b.expect_signal("offer", a)
    assert d["senderInfo"] == {"id": a.sub, "name": "Alice", "nick": "al", "profile": {"p": [1, {"q": None}]},
                               "updatedAt": "2023-01-02T03:04:05.678Z"}


# -- routing ----------------------------------------------------------------------

def test_broadcast_reaches_every_other_member(node):
    room = new_room()
    ms = join_room(node, room, 5)
    ms[2].send("offer", {"n": 1})
    for i, m in enumerate(ms):
        if i != 2:
            expect_packet(m, packet(ms[2], "offer", {"n": 1}))
    marker(ms[0], [ms[2]])  # ms[2] got nothing of its own


def test_to_routes_to_all_connections_of_that_account_only(node):
    room = new_room()
    a1 = join(node, room, new_account("a"))
    a2 = join(node, room, a1.sub)
    b = join(node, room, new_account("b"))
    a1.expect_joined(b)
    a2.expect_joined(b)
    c = join(node, room, new_account("c"))
    for x in (a1, a2, b):
        x.expect_joined(c)
    c.send("offer", {"for": "a"}, to=a1.sub)
    expect_packet(a1, packet(c, "offer", {"for": "a"}, to=a1.sub))
    expect_packet(a2, packet(c, "offer", {"for": "a"}, to=a1.sub))
    marker(c, [b, a1, a2])  # b got nothing before the marker
    # directed to b from a1: a2 (same account as the sender) does not get it either
    a1.send("answer", {"for": "b"}, to=b.sub)
    expect_packet(b, packet(a1, "answer", {"for": "b"}, to=b.sub))
    marker(a1, [a2, c, b])


def test_to_own_account_reaches_own_other_connections(node):
    room = new_room()
    a1 = join(node, room, new_account("a"))
    a2 = join(node, room, a1.sub)
    b = join(node, room)
    a1.expect_joined(b)
    a2.expect_joined(b)
    a1.send("sync", {"s": 1}, to=a1.sub)
    expect_packet(a2, packet(a1, "sync", {"s": 1}, to=a1.sub))
    marker(a1, [b, a2])
    marker(b, [a1])  # a1 did not get its own signal


def test_sender_other_connections_receive(node):
    room = new_room()
    a1 = join(node, room, new_account("a"))
    a2 = join(node, room, a1.sub)
    a3 = join(node, room, a1.sub)
    b = join(node, room)
    for x in (a1, a2, a3):
        x.expect_joined(b)
    a1.send("offer", {"dev": 1})
    for x in (a2, a3, b):
        expect_packet(x, packet(a1, "offer", {"dev": 1}))
    # the sending connection itself got nothing: b's next signal is the first thing it sees
    marker(b, [a1])


@pytest.mark.parametrize("target", ["random", "other-room", "empty", "case"])
def test_unknown_target(node, target):
    room = new_room()
    a, b = join_room(node, room, 2)
    other = join(node, new_room(), new_account("elsewhere"))
    to = {"random": new_account("ghost"), "other-room": other.sub, "empty": "", "case": b.sub.upper()}[target]
    a.send("offer", {"x": 1}, to=to)
    a.expect_error("unknown_target")
    marker(a, [b])  # nothing reached b, and a's connection still works
    a.c.send_json({"type": "webrtc.signal", "data": {"type": "offer", "data": {}, "to": to}})
    a.expect_error("unknown_target")
    marker(a, [b], "again")


def test_target_that_left_is_unknown(node):
    room = new_room()
    a, b, c = join_room(node, room, 3)
    b.close()
    a.expect_left(b)
    c.expect_left(b)
    a.send("offer", {}, to=b.sub)
    a.expect_error("unknown_target")
    marker(a, [c])


# -- user-joined / user-left ----------------------------------------------------

def test_user_joined_on_first_connection_only(node):
    room = new_room()
    b = join(node, room, new_account("b"))
    a1 = join(node, room, new_account("a"))
    b.expect_joined(a1)
    a2 = join(node, room, a1.sub)
    marker(a2, [b, a1])  # no user-joined for the second connection before a2's first signal
    a3 = join(node, room, a1.sub)
    marker(a3, [b, a1, a2])


def test_user_left_on_last_connection_only(node):
    room = new_room()
    b = join(node, room, new_account("b"))
    d = join(node, room, new_account("d"))
    b.expect_joined(d)
    a1 = join(node, room, new_account("a"))
    b.expect_joined(a1)
    d.expect_joined(a1)
    a2 = join(node, room, a1.sub)
    a1.close()
    marker(a2, [b, d], "a2-still-here")
    a2.close()
    b.expect_left(a1)
    d.expect_left(a1)
    marker(d, [b], "after")  # exactly one user-left
    marker(b, [d], "after-b")


def test_user_left_on_abrupt_disconnect(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    b.c.abort()  # TCP drop without a closing handshake
    a.expect_left(b)


def test_rejoin_after_leaving(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    b.close()
    a.expect_left(b)
    b2 = join(node, room, b.sub)
    a.expect_joined(b2)
    assert [p["accountId"] for p in b2.welcome["data"]["participants"]] == [a.sub]


@pytest.mark.parametrize("msg", [
    {"type": "user-joined", "data": {}},
    {"type": "user-left", "data": {}},
    {"type": "user-left"},
    {"type": "user-joined", "data": {}, "to": "TO"},
    {"type": "webrtc.signal", "data": {"type": "user-joined", "data": {}}},
    {"type": "webrtc.signal", "data": {"type": "user-left"}},
], ids=["joined", "left", "left-flat", "joined-to", "env-joined", "env-left-flat"])
def test_reserved_types_refused(node, msg):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_json(_fill_to(msg, b.sub))
    a.expect_error("invalid_message")
    marker(a, [b])


# -- error answers: the connection stays ----------------------------------------

INVALID_MESSAGES = [
    ("array", "[]"),
    ("array-of-object", '[{"type":"offer"}]'),
    ("string", '"offer"'),
    ("number", "5"),
    ("null", "null"),
    ("true", "true"),
    ("no-type", "{}"),
    ("no-type-data", '{"data":{"type":"offer"}}'),
    ("type-number", '{"type":5,"data":{}}'),
    ("type-null", '{"type":null,"data":{}}'),
    ("type-array", '{"type":["offer"],"data":{}}'),
    ("type-object", '{"type":{"a":1},"data":{}}'),
    ("type-bool", '{"type":true}'),
    ("type-empty", '{"type":"","data":{}}'),
    ("type-65", json.dumps({"type": "t" * 65, "data": {}})),
    ("type-1000", json.dumps({"type": "t" * 1000, "data": {}})),
    ("to-number", '{"type":"offer","data":{},"to":5}'),
    ("to-object", '{"type":"offer","data":{},"to":{"id":"x"}}'),
    ("to-array", '{"type":"offer","data":{},"to":["x"]}'),
    ("to-bool", '{"type":"offer","data":{},"to":false}'),
    ("flat-to-number", '{"type":"offer","offer":{},"to":1}'),
    ("env-data-string", '{"type":"webrtc.signal","data":"offer"}'),
    ("env-data-array", '{"type":"webrtc.signal","data":[{"type":"offer"}]}'),
    ("env-data-null", '{"type":"webrtc.signal","data":null}'),
    ("env-no-data", '{"type":"webrtc.signal"}'),
    ("env-inner-no-type", '{"type":"webrtc.signal","data":{"data":{}}}'),
    ("env-inner-type-number", '{"type":"webrtc.signal","data":{"type":1,"data":{}}}'),
    ("env-inner-type-65", json.dumps({"type": "webrtc.signal", "data": {"type": "u" * 65, "data": {}}})),
    ("env-inner-to-number", '{"type":"webrtc.signal","data":{"type":"offer","data":{},"to":7}}'),
    ("env-nested", '{"type":"webrtc.signal","data":{"type":"webrtc.signal","data":{"type":"offer","data":{}}}}'),
]


@pytest.mark.parametrize("text", [t for _, t in INVALID_MESSAGES], ids=[i for i, _ in INVALID_MESSAGES])
def test_invalid_message(node, text):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_text(text)
    a.expect_error("invalid_message")
    marker(a, [b])


INVALID_JSON = [
    ("word", "hello"),
    ("open-brace", "{"),
    ("single-quotes", "{'type':'offer'}"),
    ("empty", ""),
    ("spaces", "   "),
    ("trailing-garbage", '{"type":"offer","data":{}} x'),
    ("two-values", '{"type":"offer"}{"type":"offer"}'),
    ("trailing-comma", '{"type":"offer","data":{},}'),
    ("nan", '{"type":"offer","data":NaN}'),
    ("unquoted-key", '{type:"offer"}'),
    ("bad-escape", '{"type":"off\\qer"}'),
    ("control-char", '{"type":"off\u0001er"}'),
    ("truncated", '{"type":"offer","data":{"sdp":"v=0'),
]


@pytest.mark.parametrize("text", [t for _, t in INVALID_JSON], ids=[i for i, _ in INVALID_JSON])
def test_invalid_json(node, text):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_text(text)
    a.expect_error("invalid_json")
    marker(a, [b])


def test_binary_frame_invalid_message(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_binary(json.dumps({"type": "offer", "data": {}}).encode())
    a.expect_error("invalid_message")
    a.c.send_binary(b"\x00\xff\xfe")
    a.expect_error("invalid_message")
    marker(a, [b])


def test_errors_in_a_row_keep_the_connection(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    bad = ["nope", "[]", '{"type":"user-left"}', '{"type":"offer","to":"ghost"}', '{"type":7}']
    codes = ["invalid_json", "invalid_message", "invalid_message", "unknown_target", "invalid_message"]
    for text in bad:
        a.c.send_text(text)
    for code in codes:
        a.expect_error(code)
    marker(a, [b])


# -- webrtc.ping (C node only: an extension beyond the guide) ----------------------

PONG = {"type": "webrtc.pong"}


@c_only
@pytest.mark.parametrize("ping", [
    {"type": "webrtc.ping"},
    {"type": "webrtc.ping", "data": {"t": 12345}},
    {"type": "webrtc.ping", "to": "TO", "data": [1, 2]},
    {"type": "webrtc.signal", "data": {"type": "webrtc.ping"}},
], ids=["bare", "with-data", "with-to", "envelope"])
def test_ping_is_answered_to_the_sender_only(node, ping):
    """docs/protocol.md, "Keepalive": the pong goes to the sending connection
    alone, never to the room (nor through Redis to other nodes)."""
    room = new_room()
    a, b = join_room(node, room, 2)
    a2 = join(node, room, a.sub)  # the sender's other device gets nothing either
    a.c.send_json(_fill_to(ping, b.sub))
    assert a.recv() == PONG
    # a's next signal is the first thing b and a2 get: the ping went nowhere
    marker(a, [b, a2])
    # and nothing else came back to a: b's answer is a's next packet
    marker(b, [a])


@c_only
def test_pings_in_a_row_get_pongs_in_order_with_signals(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_many_json([{"type": "webrtc.ping"}, {"type": "offer", "data": {"i": 1}},
                        {"type": "webrtc.ping"}, {"type": "webrtc.ping"}])
    assert [a.recv() for _ in range(3)] == [PONG] * 3
    assert b.expect_signal("offer", a)["data"] == {"i": 1}
    marker(a, [b])


def test_per_sender_order_small(node):
    room = new_room()
    a, b, c = join_room(node, room, 3)
    n = 150  # below the default burst of 200
    a.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    for m in (b, c):
        got = [m.expect_signal("seq", a)["data"]["i"] for _ in range(n)]
        assert got == list(range(n))


def test_message_is_delivered_by_other_senders_interleaved(node):
    """Two senders at once: each one's signals arrive in its order at the receiver."""
    room = new_room()
    a, b, c = join_room(node, room, 3)
    n = 60
    a.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    b.c.send_many_json([{"type": "seq", "data": {"i": i}} for i in range(n)])
    seen = {a.sub: [], b.sub: []}
    for _ in range(2 * n):
        d = c.expect_signal("seq")
        seen[d["senderAccountId"]].append(d["data"]["i"])
    assert seen[a.sub] == list(range(n)) and seen[b.sub] == list(range(n))
