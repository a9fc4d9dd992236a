"""RFC 6455 close handling (docs/protocol.md, "Close codes"): a close frame
with a code that may not be sent, or of one byte, gets 1002 and never the
client's reason back; a close reason that is not UTF-8 gets 1007. Each time
the peer sees the offender leave, and the node keeps serving others."""

import struct

import pytest

from harness import T, c_only, join_room, new_room
from test_bad_input import still_serves
from test_operations import wait_metric

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


# -- metrics -------------------------------------------------------------------

@c_only
def test_closes_counted_by_the_code_sent(nodes):
    """signal_connections_closed_total counts these closes by the code the
    node answered with."""
    n = nodes.start()
    a, b = join_room(n, new_room(), 2)
    close_with(a, struct.pack("!H", 5000))
    close_with(b, b"\x03\xe8\xff")
    wait_metric(n.port, "signal_connections_closed_total", 1, code="1002")
    wait_metric(n.port, "signal_connections_closed_total", 1, code="1007")
