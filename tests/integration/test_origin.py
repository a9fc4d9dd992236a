"""Issue 10, item 9: SIGNAL_ALLOWED_ORIGINS (docs/configuration.md; docs/operations.md,
"Origin"). When set, an upgrade or a plain GET on the route whose Origin is not
on the list gets 403 before any token check, so a page of another site cannot
use the AuthToken cookie a browser sends along; no Origin field is allowed (no
browser omits it on a WebSocket). Unset, every origin is allowed, as before."""

import pytest

from harness import T, c_only, join, new_account, new_room, run_node_once, token
from test_operations import metrics, value
from wsclient import HandshakeError

pytestmark = c_only

ORIGIN_BODY = "Forbidden: Origin not allowed"
ALLOWED = "https://app.example.com, https://*.example.net, http://localhost:3000"


@pytest.fixture(scope="module")
def strict(module_nodes):
    return module_nodes.start({"SIGNAL_ALLOWED_ORIGINS": ALLOWED})


def refused(node, path, headers):
    with pytest.raises(HandshakeError) as e:
        node.ws(path, headers=headers)
    return e.value.response


def assert_origin_403(resp):
    assert resp.status == 403, resp
    assert resp.body.decode() == ORIGIN_BODY, resp
    assert resp.headers.get("content-type", "").startswith("text/plain"), resp


@pytest.mark.parametrize("origin", ["https://app.example.com", "https://APP.example.com:443",
                                    "https://a.example.net", "https://b.a.example.net",
                                    "http://localhost:3000", None])
def test_allowed_origins_connect(strict, origin):
    room = new_room()
    sub = new_account()
    headers = {"Origin": origin} if origin else {}
    c = strict.ws(strict.route(room, f"tk={token(sub, [room])}"), headers=headers)
    assert c.recv_json(T)["data"]["userId"] == sub


NOT_ALLOWED = ["https://evil.test", "http://app.example.com", "https://app.example.com:8443",
               "https://example.net", "https://app.example.com.evil.test", "http://localhost:3001",
               "null", "", "https://app.example.com/", "https://app.example.com, https://evil.test"]


@pytest.mark.parametrize("origin", NOT_ALLOWED)
@pytest.mark.parametrize("mode", ["upgrade", "get"])
def test_other_origins_get_403(strict, origin, mode):
    room = new_room()
    path = strict.route(room, f"tk={token(new_account(), [room])}")
    headers = {"Origin": origin}
    resp = refused(strict, path, headers) if mode == "upgrade" else strict.http("GET", path, headers=headers)
    assert_origin_403(resp)


@pytest.mark.parametrize("tok", ["none", "bad", "outsider"])
def test_origin_comes_before_the_token(strict, tok):
    """A cross-site page learns nothing of the cookie the browser sends along: no
    401 for a bad token, no member's 403 for an outsider."""
    room = new_room()
    cookie = {"none": None, "bad": "not-a-jwt", "outsider": token(new_account(), [])}[tok]
    headers = {"Origin": "https://evil.test"}
    if cookie:
        headers["Cookie"] = f"AuthToken={cookie}"
    assert_origin_403(refused(strict, strict.route(room), headers))


def test_route_and_method_come_first(strict):
    headers = {"Origin": "https://evil.test"}
    assert refused(strict, "/elsewhere", headers).status == 404
    resp = strict.http("POST", strict.route(new_room()), headers=headers, body=b"x")
    assert resp.status == 405, resp


def test_admin_endpoints_ignore_origin(strict):
    resp = strict.http("GET", "/healthz", headers={"Origin": "https://evil.test"})
    assert resp.status == 200, resp


def test_refusals_are_counted(nodes):
    n = nodes.start({"SIGNAL_ALLOWED_ORIGINS": "https://app.example.com"})
    assert value(metrics(n.port), "signal_upgrades_refused_total", status="403", reason="origin") == 0
    for _ in range(2):
        refused(n, n.route(new_room()), {"Origin": "https://evil.test"})
    ms = metrics(n.port)
    assert value(ms, "signal_upgrades_refused_total", status="403", reason="origin") == 2
    assert value(ms, "signal_upgrades_refused_total", status="401", reason="unauthorized") == 0


def test_unset_allows_every_origin(node):
    m = join(node, new_room(), client_kw={"headers": {"Origin": "https://anything.test"}})
    assert m.welcome["type"] == "webrtc"


@pytest.mark.parametrize("bad", ["*", "https://app.example.com/", "https://a.test,,https://b.test",
                                 "ftp//x", "https://a.test:99999"])
def test_bad_lists_stop_the_node(bad):
    rc, out, err = run_node_once(env={"SIGNAL_ALLOWED_ORIGINS": bad, "SIGNAL_JWT_SECRET": "x" * 32})
    assert rc != 0
    assert "SIGNAL_ALLOWED_ORIGINS" in out + err, out + err
