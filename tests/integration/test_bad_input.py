"""Bad input of every kind: sizes (1009), fragments, deep nesting, protocol
violations, invalid UTF-8. After each, the node must keep serving others."""

import json
import threading

import pytest

from harness import T, join, join_room, new_room
from wsclient import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, WSClient

MAX = 65536  # the default SIGNAL_MAX_MESSAGE_BYTES


def padded_signal(size, type_="big"):
    """A valid data-form signal whose JSON text is exactly size bytes."""
    base = json.dumps({"type": type_, "data": {"pad": ""}}, separators=(",", ":"))
    pad = size - len(base)
    assert pad >= 0
    return json.dumps({"type": type_, "data": {"pad": "p" * pad}}, separators=(",", ":"))


def still_serves(node):
    """A fresh pair in a fresh room can exchange a signal."""
    a, b = join_room(node, new_room(), 2, prefix="alive")
    a.send("ok", {"n": 1})
    assert b.expect_signal("ok", a)["data"] == {"n": 1}


def expect_close(member, codes, timeout=T):
    info = member.c.recv_close(timeout)
    assert info.code in codes, info
    return info


# -- message size ---------------------------------------------------------------

def test_message_of_exactly_max_bytes_is_delivered(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    text = padded_signal(MAX)
    assert len(text.encode()) == MAX
    a.c.send_text(text)
    d = b.expect_signal("big", a)
    assert d["data"]["pad"] == "p" * (MAX - len('{"type":"big","data":{"pad":""}}'))


def test_message_one_byte_over_closes_1009(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_text(padded_signal(MAX + 1))
    info = expect_close(a, {1009})
    assert info.messages == []
    b.expect_left(a)
    still_serves(node)


def test_fragmented_within_limit_is_reassembled(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    text = padded_signal(60000)
    a.c.send_fragmented(text, [1, 20000, 20000])
    assert b.expect_signal("big", a)["data"]["pad"].startswith("ppp")
    # with a ping between the fragments (control frames may be interleaved)
    a.c.send_fragmented(padded_signal(3000, "frag2"), [1000, 1000], interleave_ping=True)
    assert b.expect_signal("frag2", a)["data"]["pad"].startswith("ppp")
    # many tiny fragments
    small = json.dumps({"type": "tiny", "data": {"s": "\u00e9\u2603"}}, ensure_ascii=False)
    raw = small.encode()
    a.c.send_fragmented(raw, [1] * (len(raw) - 1))  # splits inside UTF-8 sequences too
    assert b.expect_signal("tiny", a)["data"] == {"s": "\u00e9\u2603"}


def test_fragments_counted_together_1009(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    text = padded_signal(3 * 30000)  # each fragment is small, together 90000 > 65536
    a.c.send_fragmented(text, [30000, 30000])
    expect_close(a, {1009})
    b.expect_left(a)
    still_serves(node)


def test_ten_megabyte_frame_closes_1009(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    payload = b"[" * (10 * 1024 * 1024)
    frame = WSClient.build_frame(OP_TEXT, payload, mask_key=b"\x11\x22\x33\x44")
    errors = []

    def send():
        try:
            a.c.send_raw(frame, timeout=20)
        except Exception as e:  # the node may stop reading and reset: fine
            errors.append(e)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    info = a.c.recv_close(timeout=20)
    t.join(25)
    assert not t.is_alive()
    assert info.code == 1009, info
    b.expect_left(a)
    still_serves(node)


def test_huge_declared_length_closes_1009(node):
    """A header announcing 2**62 bytes, followed by more than the limit: 1009 (nothing
    of that size may be allocated)."""
    room = new_room()
    a, b = join_room(node, room, 2)
    frame = WSClient.build_frame(OP_TEXT, b"[" * (MAX + 1), length=2 ** 62, mask_key=b"\0\0\0\0")
    a.c.send_raw(frame)
    expect_close(a, {1009})
    b.expect_left(a)
    still_serves(node)


def test_hundred_thousand_brackets_over_default_limit_1009(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_text("[" * 100000)
    expect_close(a, {1009})
    still_serves(node)


# -- deep nesting within the limit -------------------------------------------------

@pytest.mark.parametrize("text", [
    "[" * 60000,
    "[" * 30000 + "]" * 30000,
    "{\"a\":" * 10000 + "1" + "}" * 10000,
], ids=["open-brackets", "balanced-brackets", "nested-objects"])
def test_deep_nesting_within_limit(node, text):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_text(text)
    err = a.recv()
    assert err["type"] == "error" and err["data"]["code"] in ("invalid_json", "invalid_message"), err
    a.send("after", {})
    assert b.expect_signal("after", a)
    still_serves(node)


def test_deep_nesting_inside_data(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    depth = 20000
    a.c.send_text('{"type":"deep","data":' + "[" * depth + "]" * depth + "}")
    a.send("after", {})
    # either refused with an error (the receiver sees only "after"), or passed through intact
    text = b.c.recv_text(T)
    if text.startswith('{"type":"webrtc.signal","data":{"type":"deep"') or '"type":"deep"' in text[:200]:
        assert text.count("[") == depth and text.count("]") == depth, text[:200]
        assert b.expect_signal("after", a)
    else:
        assert json.loads(text)["data"]["type"] == "after", text[:200]
        err = a.recv()
        assert err["type"] == "error" and err["data"]["code"] in ("invalid_json", "invalid_message"), err
    still_serves(node)


def test_many_keys_and_long_strings(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    data = {f"k{i}": i for i in range(3000)}
    a.send("keys", data)
    assert b.expect_signal("keys", a)["data"] == data
    a.send("str", {"s": "\\" * 20000})
    assert b.expect_signal("str", a)["data"] == {"s": "\\" * 20000}


# -- protocol violations -------------------------------------------------------------

def test_invalid_utf8_text(node):
    """Invalid UTF-8 in a text frame fails the connection with 1007 (RFC 6455
    8.1), with no error packet first; the peer sees nothing of it but the
    leave (more cases in test_ws_close.py)."""
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_frame(OP_TEXT, b'{"type":"offer","data":"\xff\xfe"}')
    info = expect_close(a, {1007})
    assert info.messages == [], info
    b.expect_left(a)
    still_serves(node)


PROTOCOL_VIOLATIONS = {
    "unmasked": lambda: WSClient.build_frame(OP_TEXT, b'{"type":"x","data":{}}', mask=False),
    "reserved-opcode": lambda: WSClient.build_frame(0x3, b"x"),
    "reserved-control-opcode": lambda: WSClient.build_frame(0xB, b"x"),
    "rsv-bits": lambda: WSClient.build_frame(OP_TEXT, b'{"type":"x","data":{}}', rsv=4),
    "orphan-continuation": lambda: WSClient.build_frame(OP_CONT, b"x"),
    "data-inside-fragmented": lambda: (WSClient.build_frame(OP_TEXT, b'{"type"', fin=False)
                                       + WSClient.build_frame(OP_TEXT, b'{"type":"x"}')),
    "fragmented-ping": lambda: WSClient.build_frame(OP_PING, b"x", fin=False),
    "long-ping": lambda: WSClient.build_frame(OP_PING, b"x" * 126),
    "garbage": lambda: b"\x00" * 8 + b"GET / HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("name", list(PROTOCOL_VIOLATIONS))
def test_protocol_violation_closes(node, name):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_raw(PROTOCOL_VIOLATIONS[name]())
    info = a.c.recv_close(T)
    assert info.code in (None, 1002, 1003, 1007, 1008, 1009), info
    b.expect_left(a)
    still_serves(node)


def test_client_ping_gets_pong(node):
    m = join(node, new_room())
    m.c.ping(b"hello")
    m.c.send_text("nope")
    m.expect_error("invalid_json")
    # The pong goes out at the next wakeup, and may follow that answer;
    # it is out before a later message is even read.
    m.c.send_text("nope again")
    m.expect_error("invalid_json")
    assert m.c.last_pong == b"hello"


def test_client_close_is_answered(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    info = a.c.close(1000, "bye")
    assert info is not None and info.code == 1000, info
    b.expect_left(a)


def test_close_frame_mid_message_stream(node):
    """Signals sent just before the close frame are still delivered."""
    room = new_room()
    a, b = join_room(node, room, 2)
    data = b"".join(WSClient.build_frame(OP_TEXT, json.dumps({"type": "s", "data": {"i": i}})) for i in range(20))
    a.c.send_raw(data + WSClient.build_frame(OP_CLOSE, b"\x03\xe8"))
    assert a.c.recv_close(T).code == 1000
    for i in range(20):
        assert b.expect_signal("s", a)["data"] == {"i": i}
    b.expect_left(a)


def test_binary_fragmented_invalid_message(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    a.c.send_fragmented(b'{"type":"offer","data":{}}', [5, 5], opcode=OP_BINARY)
    a.expect_error("invalid_message")
    a.send("after", {})
    b.expect_signal("after", a)


def test_connection_dropped_during_handshake(node):
    """Half a request, then a drop; then a request that never finishes its head is
    not allowed to block others."""
    import socket as s
    from harness import HOST
    c1 = s.create_connection((HOST, node.port), timeout=5)
    c1.sendall(b"GET /api/chat/realtime/")
    c1.close()
    c2 = s.create_connection((HOST, node.port), timeout=5)
    c2.sendall(b"GET /api/chat/realtime/x HTTP/1.1\r\nHost: a\r\n")  # stays open, incomplete
    try:
        still_serves(node)
    finally:
        c2.close()


def test_garbage_instead_of_http(node):
    import socket as s
    from harness import HOST
    c = s.create_connection((HOST, node.port), timeout=5)
    try:
        c.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 200)  # a TLS hello
        c.settimeout(3)  # the node may answer 400 and close, or wait: both fine
        try:
            while c.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError, s.timeout):
            pass
    finally:
        c.close()
    still_serves(node)
