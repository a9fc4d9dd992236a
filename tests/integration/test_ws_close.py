"""RFC 6455 close handling and UTF-8 (docs/protocol.md, "Close codes"): a close
frame with a code that may not be sent, or of one byte, gets 1002 and never
the client's reason back; a close reason or a text message that is not UTF-8
gets 1007, whole or in fragments. Each time the peer sees the offender leave
and nothing of what it sent, and the node keeps serving others."""

import struct

import pytest

from harness import T, c_only, join_room, new_room
from test_bad_input import still_serves
from test_operations import metrics, value, wait_metric
from wsclient import OP_BINARY, OP_CONT, OP_TEXT, WSClient

REASON = "client-reason"

# RFC 6455 §7.4.1 reserves 1004-1006 and 1015 (never on the wire), the rest
# below 3000 is unassigned (§7.4.2), and codes end at 4999.
FORBIDDEN_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
# 1012-1014 were registered with IANA after the RFC; 3000-4999 are for
# libraries and applications.
ALLOWED_CODES = [1001, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999]


def close_with(member, payload):
    """Sends a close frame with this raw payload; returns the node's answer."""
    info = member.c.close(payload=payload, timeout=T)
    assert info is not None, "no close frame from the node"
    return info


def gone(a, b, node):
    """a's connection is over: b, in its room, sees it leave (and nothing
    before that), and the node serves a fresh pair."""
    b.expect_left(a)
    still_serves(node)


# -- close frames --------------------------------------------------------------

@pytest.mark.parametrize("code", FORBIDDEN_CODES)
def test_forbidden_close_code_gets_1002_without_the_reason(node, code):
    a, b = join_room(node, new_room(), 2)
    info = close_with(a, struct.pack("!H", code) + REASON.encode())
    assert info.code == 1002, info
    assert REASON not in info.reason, info
    gone(a, b, node)


@pytest.mark.parametrize("code", ALLOWED_CODES)
def test_allowed_close_code_is_echoed(node, code):
    a, b = join_room(node, new_room(), 2)
    info = close_with(a, struct.pack("!H", code) + REASON.encode())
    assert info.code == code, info
    gone(a, b, node)


def test_one_byte_close_payload_gets_1002(node):
    """Half a code: the node must not echo a one-byte close frame."""
    a, b = join_room(node, new_room(), 2)
    info = close_with(a, b"\x03")
    assert info.code == 1002, info
    gone(a, b, node)


@pytest.mark.parametrize("reason", [b"ok\xff", b"ok\xce", b"\xc0\xaf", b"\xed\xa0\x80"],
                         ids=["invalid-byte", "cut-short", "overlong", "surrogate"])
def test_close_reason_not_utf8_gets_1007(node, reason):
    a, b = join_room(node, new_room(), 2)
    info = close_with(a, b"\x03\xe8" + reason)
    assert info.code == 1007, info
    assert reason not in info.reason.encode(), info
    gone(a, b, node)


def test_close_reason_in_utf8_is_echoed(node):
    a, b = join_room(node, new_room(), 2)
    info = close_with(a, b"\x03\xe8" + "au revoir \u00e9\u2603\U0001f600".encode())
    assert (info.code, info.reason) == (1000, "au revoir \u00e9\u2603\U0001f600"), info
    gone(a, b, node)


# -- text frames ---------------------------------------------------------------

F = WSClient.build_frame
NOT_UTF8 = {
    "in-a-string": [F(OP_TEXT, b'{"type":"offer","data":"\xff\xfe"}')],
    "not-json-either": [F(OP_TEXT, b"\xff")],
    "cut-short-at-the-end": [F(OP_TEXT, b'{"type":"offer","data":{}}\xe2\x98')],
    "in-a-later-fragment": [F(OP_TEXT, b'{"type":"offer",', fin=False),
                            F(OP_CONT, b'"data":"\xc3\x28"}')],
    "sequence-broken-across-fragments": [F(OP_TEXT, b'{"type":"offer","data":"\xc3', fin=False),
                                         F(OP_CONT, b'x"}')],
    "cut-short-then-empty-final-fragment": [F(OP_TEXT, b'{"type":"offer","data":{}}\xe2\x98', fin=False),
                                            F(OP_CONT, b"")],
}


@pytest.mark.parametrize("name", list(NOT_UTF8))
def test_text_not_utf8_closes_1007(node, name):
    """RFC 6455 §8.1: the connection fails with 1007, with no error packet
    first and nothing relayed."""
    a, b = join_room(node, new_room(), 2)
    a.c.send_raw(b"".join(NOT_UTF8[name]))
    info = a.c.recv_close(T)
    assert info.code == 1007, info
    assert info.messages == [], info
    gone(a, b, node)


def test_utf8_split_across_fragments_is_relayed(node):
    """A sequence cut between fragments is whole once they are joined: a
    four-byte one over four fragments, then an empty final one."""
    a, b = join_room(node, new_room(), 2)
    raw = '{"type":"emoji","data":{"s":"\U0001f600"}}'.encode()
    cut = raw.index(b"\xf0")
    pieces = [raw[:cut + 1], raw[cut + 1:cut + 2], raw[cut + 2:cut + 3], raw[cut + 3:], b""]
    a.c.send_raw(b"".join(F(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1)
                          for i, p in enumerate(pieces)))
    assert b.expect_signal("emoji", a)["data"] == {"s": "\U0001f600"}


def test_utf8_that_is_not_json_is_still_invalid_json(node):
    """Only the encoding fails the connection: UTF-8 that is not JSON gets
    the usual answer, and the connection stays."""
    a, b = join_room(node, new_room(), 2)
    a.c.send_text("nope \u00e9\u2603")
    a.expect_error("invalid_json")
    a.send("after", {})
    assert b.expect_signal("after", a)["data"] == {}


def test_binary_frame_is_not_judged_as_utf8(node):
    """Binary frames carry no text: bytes that are not UTF-8 get the usual
    invalid_message, not 1007."""
    a, b = join_room(node, new_room(), 2)
    a.c.send_frame(OP_BINARY, b"\xff\xfe")
    a.expect_error("invalid_message")
    a.send("after", {})
    assert b.expect_signal("after", a)["data"] == {}


# -- metrics -------------------------------------------------------------------

@c_only
def test_closes_counted_by_the_code_sent(nodes):
    """signal_connections_closed_total counts these closes by the code the
    node answered with, libwebsockets' own 1002 for a framing error too."""
    n = nodes.start()
    a, b, c, d = join_room(n, new_room(), 4)
    close_with(a, struct.pack("!H", 5000))
    close_with(b, b"\x03\xe8\xff")
    c.c.send_frame(OP_TEXT, b"\xff")
    assert c.c.recv_close(T).code == 1007
    d.c.send_frame(OP_TEXT, b'{"type":"x","data":{}}', mask=False)
    assert d.c.recv_close(T).code == 1002
    wait_metric(n.port, "signal_connections_closed_total", 2, code="1002")
    wait_metric(n.port, "signal_connections_closed_total", 2, code="1007")
    assert value(metrics(n.port), "signal_connections_closed_total", code="1006") == 0
