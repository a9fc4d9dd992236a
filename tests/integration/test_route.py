"""docs/protocol.md, "Connecting" and "HTTP answers": the route, its answers, token
sources and their precedence."""

import socket
import time

import pytest

from harness import (BAD_REQUEST, FORBIDDEN, HOST, T, c_only, join, make_jwt, claims_for, new_account, new_room,
                     token)
from wsclient import HandshakeError


def assert_plain(resp, status, body):
    assert resp.status == status, resp
    assert resp.body.decode() == body, resp
    if body:
        assert resp.headers.get("content-type", "").split(";")[0].strip().lower() == "text/plain", resp


def assert_text_plain_if_typed(resp):
    """Empty error bodies: a Content-Type, if any, is text/plain."""
    ct = resp.headers.get("content-type")
    if ct is not None:
        assert ct.split(";")[0].strip().lower() == "text/plain", resp


def upgrade_refused(node, path, headers=None, **kw):
    with pytest.raises(HandshakeError) as e:
        node.ws(path, headers=headers, **kw)
    return e.value.response


def assert_401(resp):
    assert_plain(resp, 401, "Unauthorized")
    assert resp.headers.get("www-authenticate", "").split()[0].lower() == "bearer", resp


# -- the table of docs/protocol.md, "HTTP answers", as plain GET and as upgrade --

@pytest.mark.parametrize("mode", ["get", "upgrade"])
def test_no_token_401(node, mode):
    path = node.route(new_room())
    resp = node.http("GET", path) if mode == "get" else upgrade_refused(node, path)
    assert_401(resp)


@pytest.mark.parametrize("mode", ["get", "upgrade"])
@pytest.mark.parametrize("bad", ["bad-signature", "expired", "wrong-alg", "garbage", "empty-sig", "two-parts"])
def test_bad_token_401(node, mode, bad):
    room = new_room()
    claims = claims_for(new_account(), [room])
    if bad == "bad-signature":
        tok = make_jwt(claims, key="not-the-secret")
    elif bad == "expired":
        tok = make_jwt(claims_for(new_account(), [room], exp_in=-3600))  # far beyond the 60 s leeway
    elif bad == "wrong-alg":
        tok = make_jwt(claims, alg="HS512")  # right secret, but only HS256 is accepted
    elif bad == "garbage":
        tok = "not-a-jwt"
    elif bad == "empty-sig":
        tok = make_jwt(claims).rsplit(".", 1)[0] + "."
    else:
        tok = make_jwt(claims).rsplit(".", 1)[0]
    path = node.route(room, f"tk={tok}")
    resp = node.http("GET", path) if mode == "get" else upgrade_refused(node, path)
    assert_401(resp)


@pytest.mark.parametrize("mode", ["get", "upgrade"])
def test_not_member_403(node, mode):
    room = new_room()
    tok = token(new_account(), [new_room(), new_room()])
    path = node.route(room, f"tk={tok}")
    resp = node.http("GET", path) if mode == "get" else upgrade_refused(node, path)
    assert_plain(resp, 403, FORBIDDEN)


@pytest.mark.parametrize("mode", ["get", "upgrade"])
def test_no_rooms_claim_403(node, mode):
    room = new_room()
    tok = make_jwt(claims_for(new_account(), rooms=None))
    path = node.route(room, f"tk={tok}")
    resp = node.http("GET", path) if mode == "get" else upgrade_refused(node, path)
    assert_plain(resp, 403, FORBIDDEN)


def test_member_plain_get_400(node):
    room = new_room()
    resp = node.http("GET", node.route(room, f"tk={token(new_account(), [room])}"))
    assert_plain(resp, 400, BAD_REQUEST)


@pytest.mark.parametrize("broken", ["upgrade-header", "no-key", "bad-key", "version", "connection",
                                    "subprotocol"])
def test_member_broken_handshake_400(node, broken):
    room = new_room()
    repl = {"upgrade-header": {"Upgrade": "h2c"},
            "no-key": {"Sec-WebSocket-Key": None},
            "bad-key": {"Sec-WebSocket-Key": "short"},
            "version": {"Sec-WebSocket-Version": "12"},
            "connection": {"Connection": "keep-alive"},
            "subprotocol": {"Sec-WebSocket-Protocol": "chat, json"}}[broken]
    resp = upgrade_refused(node, node.route(room, f"tk={token(new_account(), [room])}"), replace_headers=repl)
    assert_plain(resp, 400, BAD_REQUEST)


@pytest.mark.parametrize("mode", ["get", "upgrade"])
@pytest.mark.parametrize("path", [
    "/", "/api", "/api/", "/api/chat", "/api/chat/realtime", "/api/chat/realtime/",
    "/api/chat/realtime/not-a-guid",
    "/api/chat/realtime/0b7f3a521c2d4e5f8a9b0c1d2e3f4a5b",            # no hyphens
    "/api/chat/realtime/{0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b}",      # braces
    "/api/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5",         # one digit short
    "/api/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b0",       # one digit long
    "/api/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5g",        # not hex
    "/api/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b/",       # trailing slash
    "/api/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b/x",
    "/api/chat/other/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    "/sphere/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b",     # not our prefix
    "/API/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
])
def test_not_found_404(node, mode, path):
    room = "0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    tok = token(new_account(), [room])
    full = f"{path}?tk={tok}"
    resp = node.http("GET", full) if mode == "get" else upgrade_refused(node, full)
    assert resp.status == 404, resp
    assert resp.body == b"", resp
    assert_text_plain_if_typed(resp)


def test_not_found_without_token(node):
    resp = node.http("GET", "/nothing/here")
    assert resp.status == 404 and resp.body == b"", resp


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_non_get_405(node, method):
    room = new_room()
    resp = node.http(method, node.route(room, f"tk={token(new_account(), [room])}"), body=b"x" if method != "DELETE" else b"")
    assert resp.status == 405, resp
    assert_text_plain_if_typed(resp)


@pytest.mark.parametrize("member, status", [(True, 400), (False, 403), (None, 401)])
def test_head_answers_like_get_without_body(node, member, status):
    room = new_room()
    query = "" if member is None else f"tk={token(new_account(), [room] if member else [])}"
    path = node.route(room, query)
    resp = node.http("HEAD", path)
    assert resp.status == status and resp.body == b"", resp
    assert node.http("GET", path).status == status


@pytest.mark.parametrize("upgrade", ["h2c", "foo"])
def test_other_upgrades_get_the_plain_answers(node, upgrade):
    """An Upgrade other than websocket is served as the plain request it also
    is: the route's own answers, text/plain."""
    room = new_room()
    repl = {"Upgrade": upgrade}
    member = node.route(room, f"tk={token(new_account(), [room])}")
    assert_plain(upgrade_refused(node, member, replace_headers=repl), 400, BAD_REQUEST)
    outsider = node.route(room, f"tk={token(new_account(), [])}")
    assert_plain(upgrade_refused(node, outsider, replace_headers=repl), 403, FORBIDDEN)
    assert_plain(upgrade_refused(node, node.route(room), replace_headers=repl), 401, "Unauthorized")
    resp = upgrade_refused(node, "/elsewhere", replace_headers=repl)
    assert resp.status == 404 and resp.body == b"", resp


@c_only
def test_subprotocol_signal_is_accepted(node):
    room = new_room()
    sub = new_account()
    c = node.ws(node.route(room, f"tk={token(sub, [room])}"),
                replace_headers={"Sec-WebSocket-Protocol": "chat, signal"})
    assert c.recv_json(T)["data"]["userId"] == sub


@c_only
def test_h2c_upgrades_hold_no_connection_slot(nodes):
    """h2c upgrades stay HTTP (400 for a member) and take none of the
    SIGNAL_MAX_CONNECTIONS slots, even pipelined on one kept-alive connection."""
    n = nodes.start({"SIGNAL_MAX_CONNECTIONS": "1"})
    room = new_room()
    path = n.route(room, f"tk={token(new_account(), [room])}")
    request = (f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    with socket.create_connection((HOST, n.port), timeout=T) as s:
        s.sendall(request.encode() * 3)
        got = b""
        deadline = time.monotonic() + T
        while got.count(b"HTTP/1.1 400") < 3:
            assert time.monotonic() < deadline, got
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        sub = new_account()  # while that connection is still open
        c = n.connect(room, token(sub, [room]))
        assert c.recv_json(T)["data"]["userId"] == sub


def test_non_get_405_without_token(node):
    resp = node.http("POST", node.route(new_room()), body=b"{}")
    assert resp.status == 405, resp


def test_node_serves_many_plain_requests(node):
    """Plain requests in a row do not disturb the node (keep-alive off, Connection: close)."""
    room = new_room()
    for _ in range(20):
        assert node.http("GET", node.route(room)).status == 401
    m = join(node, room)
    assert m.welcome["data"]["roomId"] == room


# -- token sources ---------------------------------------------------------------

@pytest.mark.parametrize("via", ["tk", "token", "bearer", "cookie"])
def test_token_sources(node, via):
    room = new_room()
    sub = new_account()
    m = join(node, room, sub, via=via)
    assert m.welcome["data"]["userId"] == sub


def test_cookie_among_others(node):
    room = new_room()
    sub = new_account()
    tok = token(sub, [room])
    c = node.ws(node.route(room), headers={"Cookie": f"theme=dark; AuthToken={tok}; lang=en"})
    assert c.recv_json(T)["data"]["userId"] == sub


def test_bearer_scheme_case_insensitive(node):
    room = new_room()
    sub = new_account()
    c = node.ws(node.route(room), headers={"Authorization": f"bearer {token(sub, [room])}"})
    assert c.recv_json(T)["data"]["userId"] == sub


def _sources(node, room, tk=None, tok_param=None, bearer=None, cookie=None):
    query = "&".join(f"{k}={v}" for k, v in (("tk", tk), ("token", tok_param)) if v is not None)
    headers = {}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if cookie is not None:
        headers["Cookie"] = f"AuthToken={cookie}"
    return node.route(room, query), headers


PRECEDENCE = [
    # (sources, who connects or None for 401); "a"/"b" valid tokens of two accounts, "x" a bad one
    (dict(tk="a", bearer="b"), "a"),
    (dict(tk="a", cookie="b"), "a"),
    (dict(tk="a", tok_param="b"), "a"),
    (dict(tok_param="a", bearer="b"), "a"),
    (dict(tok_param="a", cookie="b"), "a"),
    (dict(bearer="a", cookie="b"), "a"),
    (dict(tk="a", bearer="x"), "a"),
    (dict(tk="a", cookie="x"), "a"),
    (dict(bearer="a", cookie="x"), "a"),
    (dict(tk="x", bearer="a"), None),
    (dict(tk="x", cookie="a"), None),
    (dict(tk="x", tok_param="a"), None),
    (dict(tok_param="x", bearer="a"), None),
    (dict(bearer="x", cookie="a"), None),
]


@pytest.mark.parametrize("sources,winner", PRECEDENCE, ids=[
    "-".join(f"{k}={v}" for k, v in s.items()) for s, _ in PRECEDENCE])
def test_first_found_wins(node, sources, winner):
    room = new_room()
    subs = {"a": new_account("a"), "b": new_account("b")}
    toks = {"a": token(subs["a"], [room]), "b": token(subs["b"], [room]),
            "x": make_jwt(claims_for(new_account("x"), [room]), key="wrong-secret")}
    path, headers = _sources(node, room, **{k: toks[v] for k, v in sources.items()})
    if winner is None:
        assert_401(upgrade_refused(node, path, headers))
    else:
        c = node.ws(path, headers=headers)
        assert c.recv_json(T)["data"]["userId"] == subs[winner]


# -- GUID case, prefix, headers ------------------------------------------------

def test_guid_any_case(node):
    room = new_room()
    upper = room.upper()
    a = join(node, upper, new_account("a"), rooms=[room])
    assert a.welcome["data"]["roomId"] == room
    assert a.welcome["data"]["message"] == f"Connected to call of #{room}."
    # mixed case path, upper-case room in the claim: same room
    mixed = room[:18].upper() + room[18:]
    b = join(node, mixed, new_account("b"), rooms=[upper])
    assert b.welcome["data"]["roomId"] == room
    assert [p["accountId"] for p in b.welcome["data"]["participants"]] == [a.sub]
    a.expect_joined(b)
    b.send("offer", {"x": 1})
    assert a.expect_signal("offer", b)["data"] == {"x": 1}


def test_path_prefix_sphere(nodes):
    n = nodes.start(prefix="/sphere")
    room = new_room()
    m = join(n, room)
    assert m.welcome["data"]["roomId"] == room
    tok = token(new_account(), [room])
    resp = n.http("GET", f"/api/chat/realtime/{room}?tk={tok}")
    assert resp.status == 404 and resp.body == b""
    resp = upgrade_refused(n, f"/api/chat/realtime/{room}?tk={tok}")
    assert resp.status == 404
    assert n.http("GET", f"/sphere/chat/realtime/{room}?tk={tok}").status == 400


@pytest.mark.parametrize("kib", [12, 15.5])
def test_large_request_headers(node, kib):
    """Request headers up to 16 KiB: a big cookie beside the AuthToken cookie."""
    room = new_room()
    sub = new_account()
    big = "x" * int(kib * 1024)
    c = node.ws(node.route(room), headers={"Cookie": f"big={big}; AuthToken={token(sub, [room])}"})
    assert c.recv_json(T)["data"]["userId"] == sub


def test_query_with_other_parameters(node):
    room = new_room()
    sub = new_account()
    c = node.ws(node.route(room, f"v=2&tk={token(sub, [room])}&lang=en"))
    assert c.recv_json(T)["data"]["userId"] == sub
