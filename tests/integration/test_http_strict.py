"""Issue 10, item 6: strict HTTP on the route (docs/protocol.md, "HTTP answers";
docs/operations.md, "Strict HTTP"). A body on a GET is never read as the next
request; the route is matched on the path as sent; unknown methods get 405;
malformed heads get a text/plain 400 and the connection closes, never an HTML
page and never silence; an AuthToken in a second Cookie field counts; an upgrade
needs HTTP/1.1; every answer says HTTP/1.1. Raw sockets, since a client library
would not send most of these."""

import socket
import time

import pytest

from harness import HOST, T, c_only, free_port, join, new_account, new_room, token
from test_operations import metrics, value
from wsclient import HandshakeError

WS_HEADERS = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
MALFORMED = b"Bad Request"


class Response:
    def __init__(self, status_line, headers, body):
        self.status_line = status_line
        self.status = int(status_line.split(b" ")[1])
        self.headers = headers
        self.body = body

    def __repr__(self):
        return f"<Response {self.status_line!r} {self.headers!r} {self.body[:80]!r}>"


def exchange(port, raw, timeout=T):
    """Sends raw on a new connection and reads until the node closes it (or the
    deadline passes). Returns (every response in what came back, closed)."""
    deadline = time.monotonic() + timeout
    data, closed = b"", False
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(raw)
        while not closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            closed = not chunk
            data += chunk
    return parse_responses(data), closed


def parse_responses(data):
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"an incomplete response head: {data!r}"
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, val = line.partition(b":")
            headers[name.strip().lower().decode()] = val.strip().decode("latin-1")
        n = int(headers.get("content-length", len(rest)))
        out.append(Response(lines[0], headers, rest[:n]))
        data = rest[n:]
    return out


def assert_refused(port, raw, status=400, body=MALFORMED):
    """raw gets one text/plain answer, HTTP/1.1, then the connection closes."""
    responses, closed = exchange(port, raw)
    assert len(responses) == 1, responses
    r = responses[0]
    assert r.status_line.startswith(b"HTTP/1.1 "), r
    assert r.status == status, r
    assert r.headers.get("content-type", "").startswith("text/plain"), r
    assert r.body == body, r
    if status == 405:
        assert r.headers.get("allow") == "GET", r
    assert r.headers.get("connection") == "close", r
    assert closed, f"the connection stayed open after {r}"
    return r


def member_path(node, room=None):
    room = room or new_room()
    return node.route(room, f"tk={token(new_account(), [room])}")


def request(path, extra="", version="HTTP/1.1", method="GET", upgrade=True):
    return (f"{method} {path} {version}\r\nHost: {HOST}\r\n"
            f"{WS_HEADERS if upgrade else ''}{extra}\r\n").encode()


# -- a body on a GET is never the next request ---------------------------------------------

SMUGGLED = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n"


@c_only
@pytest.mark.parametrize("target", ["member-get", "member-upgrade", "healthz"])
@pytest.mark.parametrize("body", ["chunked", "unframed"])
def test_chunked_get_is_refused_and_closed(node, target, body):
    """A GET with Transfer-Encoding gets 400 and the connection closes: lws reads no
    chunked body, and on main what followed the head was served as a second request."""
    path = "/healthz" if target == "healthz" else member_path(node)
    if body == "chunked":
        payload = f"{len(SMUGGLED):x}\r\n{SMUGGLED}\r\n0\r\n\r\n"
    else:
        payload = SMUGGLED
    raw = request(path, "Transfer-Encoding: chunked\r\n", upgrade=target == "member-upgrade")
    assert_refused(node.port, raw + payload.encode())


@c_only
@pytest.mark.parametrize("value", ["gzip, chunked", "identity", ""])
def test_any_transfer_encoding_is_refused(node, value):
    assert_refused(node.port, request(member_path(node), f"Transfer-Encoding: {value}\r\nContent-Length: 0\r\n"))


# -- the route is matched on the path as sent ----------------------------------------------

def upgrade_refused(node, path):
    with pytest.raises(HandshakeError) as e:
        node.ws(path)
    return e.value.response


PATHS = {
    "double-slash": "//api/chat/realtime/{room}",
    "dot-dot": "/x/../api/chat/realtime/{room}",
    "dot": "/api/./chat/realtime/{room}",
    "dot-before-room": "/api/chat/realtime/./{room}",
    "encoded-slash": "/api%2Fchat/realtime/{room}",
    "encoded-hyphen": "/api/chat/realtime/{room8}%2D{room_rest}",
    "encoded-letter": "/%61pi/chat/realtime/{room}",
}


@pytest.mark.parametrize("mode", ["get", "upgrade"])
@pytest.mark.parametrize("name", sorted(PATHS))
def test_path_matched_as_sent(node, mode, name):
    """What a gateway in front would see: these are not the route, even for a member
    (on main lws decoded and collapsed them into it, and the member got in)."""
    room = new_room()
    path = PATHS[name].format(room=room, room8=room[:8], room_rest=room[9:])
    path += f"?tk={token(new_account(), [room])}"
    resp = node.http("GET", path) if mode == "get" else upgrade_refused(node, path)
    assert resp.status == 404 and resp.body == b"", resp


def test_route_as_sent_still_admits(node):
    room = new_room()
    m = join(node, room)
    assert m.welcome["data"]["roomId"] == room


# -- methods -----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
def test_known_foreign_methods_405(node, method):
    """On main, lws answered these with its own 403 HTML page."""
    responses, _ = exchange(node.port, request(member_path(node), "Connection: close\r\n", method=method,
                                               upgrade=False))
    assert len(responses) == 1 and responses[0].status == 405, responses
    assert responses[0].headers.get("allow") == "GET", responses
    assert b"<html" not in responses[0].body.lower(), responses


@c_only
@pytest.mark.parametrize("method, path", [("TRACE", None), ("PROPFIND", None), ("FOO", None),
                                          ("TRACE", "/elsewhere"), ("CONNECT", f"{HOST}:443")])
def test_unknown_methods_405_and_close(node, method, path):
    """A method lws does not know gets 405 whatever the path (lws refuses it before it
    reads one), text/plain, then the connection closes. CONNECT made a silent raw
    socket on main."""
    assert_refused(node.port, request(path or member_path(node), method=method, upgrade=False),
                   status=405, body=b"")


# -- malformed heads ---------------------------------------------------------------------

def malformed(node, case, upgrade):
    """The raw request of a malformed case, for a member of a room."""
    path = member_path(node)
    route, query = path.split("?")
    line = f"GET {path} HTTP/1.1\r\n".encode()
    host = f"Host: {HOST}\r\n".encode()
    fields = host + b"User-Agent: test\r\n"
    if case == "absolute-form":
        line = f"GET http://{HOST}:{node.port}{path} HTTP/1.1\r\n".encode()
    elif case == "asterisk-form":
        line = b"GET * HTTP/1.1\r\n"
    elif case == "nul-in-path":
        line = f"GET {route}\0?{query} HTTP/1.1\r\n".encode()
    elif case == "http-2.0":
        line = f"GET {path} HTTP/2.0\r\n".encode()
    elif case == "no-version":
        line = f"GET {path}\r\n".encode()
    elif case == "nul-in-host":
        fields = b"Host: a\0b\r\n"
    else:
        fields = host + {
            "obs-fold-space": b"User-Agent: a\r\n b\r\n",
            "obs-fold-tab": b"User-Agent: a\r\n\tb\r\n",
            "space-before-colon": b"User-Agent : a\r\n",
            "nul-in-value": b"User-Agent: a\0b\r\n",
            "control-byte": b"User-Agent: a\x01b\r\n",
            "bare-cr": b"User-Agent: a\rb\r\n",
            "latin-1": b"User-Agent: caf\xe9\r\n",
            "lone-continuation": b"User-Agent: \x80\r\n",
            "overlong": b"User-Agent: \xc0\xaf\r\n",
            "surrogate": b"User-Agent: \xed\xa0\x80\r\n",
            "truncated": b"User-Agent: \xe2\x82\r\n",
            "above-u10ffff": b"User-Agent: \xf4\x90\x80\x80\r\n",
        }[case]
    return line + fields + (WS_HEADERS.encode() if upgrade else b"") + b"\r\n"


MALFORMED_CASES = ["absolute-form", "asterisk-form", "obs-fold-space", "obs-fold-tab", "space-before-colon",
                   "nul-in-value", "nul-in-host", "nul-in-path", "control-byte", "bare-cr", "http-2.0",
                   "no-version", "latin-1", "lone-continuation", "overlong", "surrogate", "truncated",
                   "above-u10ffff"]


@c_only
@pytest.mark.parametrize("upgrade", [False, True], ids=["get", "upgrade"])
@pytest.mark.parametrize("case", MALFORMED_CASES)
def test_malformed_head_400_and_close(node, case, upgrade):
    """Each gets a text/plain 400 "Bad Request" and the connection closes; on main
    some got lws's HTML page, some silence, some the route's answers, and a NUL in
    Host even let the member in."""
    assert_refused(node.port, malformed(node, case, upgrade))


@c_only
def test_valid_utf8_and_unknown_fields_are_fine(node):
    """The strict head refuses what is not UTF-8, not what is beyond ASCII. On main an
    unknown field named like the start of a known one (X-A, of X-Auth-Token) swallowed
    the field after it, here Upgrade, and the member got a 400."""
    room = new_room()
    sub = new_account()
    raw = (f"GET {node.route(room, f'tk={token(sub, [room])}')} HTTP/1.1\r\nHost: {HOST}\r\n"
           f"User-Agent: naïve\r\nX-A: café ☕ 😀\r\n{WS_HEADERS}\r\n").encode()
    with socket.create_connection((HOST, node.port), timeout=T) as s:
        s.sendall(raw)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head


@c_only
def test_the_node_serves_on_after_malformed_heads(node):
    for case in MALFORMED_CASES:
        exchange(node.port, malformed(node, case, True))
    m = join(node, new_room())
    assert m.welcome["type"] == "webrtc"


# -- the token in a second Cookie field --------------------------------------------------------

def test_authtoken_in_a_second_cookie_field(node):
    """lws joins repeated Cookie fields without a separator; on main the token in
    the second one was not found (401)."""
    room = new_room()
    sub = new_account()
    c = node.ws(node.route(room), headers=[("Cookie", "theme=dark; lang=en"),
                                           ("Cookie", f"AuthToken={token(sub, [room])}")])
    assert c.recv_json(T)["data"]["userId"] == sub


def test_first_cookie_field_wins(node):
    room = new_room()
    a, b = new_account("a"), new_account("b")
    c = node.ws(node.route(room), headers=[("Cookie", f"AuthToken={token(a, [room])}"),
                                           ("Cookie", f"AuthToken={token(b, [room])}")])
    assert c.recv_json(T)["data"]["userId"] == a


# -- versions and status lines -------------------------------------------------------------

@c_only
def test_websocket_upgrade_over_http_1_0_is_400(node):
    """RFC 6455 4.1: the handshake is HTTP/1.1; on main a member got in over 1.0."""
    assert_refused(node.port, request(member_path(node), version="HTTP/1.0"))


def _first_status_line(node, raw):
    responses, _ = exchange(node.port, raw)
    assert responses, "no answer"
    return responses[0].status_line


@pytest.mark.parametrize("case", ["401", "403", "404", "400-handshake", "405"])
def test_refused_upgrades_say_http_1_1(node, case):
    """On main lws wrote these as HTTP/1.0: it reads the request's version only
    after the upgrade callback."""
    room = new_room()
    if case == "401":
        raw = request(node.route(room))
    elif case == "403":
        raw = request(node.route(room, f"tk={token(new_account(), [])}"))
    elif case == "404":
        raw = request("/elsewhere")
    elif case == "405":
        raw = request(member_path(node), method="POST", extra="Content-Length: 0\r\n")
    else:
        raw = request(member_path(node)).replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 12")
    line = _first_status_line(node, raw)
    assert line.startswith(b"HTTP/1.1 " + case[:3].encode()), line


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/elsewhere"])
def test_plain_answers_say_http_1_1(node, path):
    assert _first_status_line(node, request(path, "Connection: close\r\n", upgrade=False)).startswith(b"HTTP/1.1 ")


# -- admin endpoints and the counter -------------------------------------------------------------

@c_only
@pytest.mark.parametrize("listener", ["client", "admin"])
def test_admin_endpoints_keep_working(nodes, listener):
    """/healthz, /readyz and /metrics answer GET and HEAD, HTTP/1.0 and 1.1, on
    the client listener or on SIGNAL_ADMIN_LISTEN; strict HTTP holds there too."""
    admin_port = free_port()
    env = {"SIGNAL_ADMIN_LISTEN": f"{HOST}:{admin_port}"} if listener == "admin" else {}
    n = nodes.start(env)
    port = admin_port if listener == "admin" else n.port
    for path in ("/healthz", "/readyz", "/metrics"):
        for version in ("HTTP/1.0", "HTTP/1.1"):
            for method in ("GET", "HEAD"):
                raw = f"{method} {path} {version}\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
                responses, closed = exchange(port, raw)
                assert [r.status for r in responses] == [200], (path, version, method, responses)
                assert responses[0].status_line.startswith(b"HTTP/1.1 200"), responses
                assert (responses[0].body == b"") == (method == "HEAD"), responses
                assert closed
    healthz = request("/healthz", upgrade=False)
    assert_refused(port, request("/healthz", "Transfer-Encoding: chunked\r\n", upgrade=False) + SMUGGLED.encode())
    assert_refused(port, healthz.replace(b"\r\n\r\n", b"\r\nUser-Agent: \xff\r\n\r\n"))
    assert_refused(port, request("/healthz", upgrade=False, method="TRACE"), status=405, body=b"")


@c_only
def test_malformed_requests_are_counted(nodes):
    """signal_http_malformed_total counts the node's own refusals and lws's."""
    n = nodes.start()
    assert value(metrics(n.port), "signal_http_malformed_total") == 0
    assert_refused(n.port, malformed(n, "absolute-form", True))                   # the node's
    assert_refused(n.port, malformed(n, "nul-in-value", False))                   # lws's
    assert_refused(n.port, request("/x", method="TRACE", upgrade=False), status=405, body=b"")
    assert value(metrics(n.port), "signal_http_malformed_total") == 3
