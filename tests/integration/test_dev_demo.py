"""docs/configuration.md, "Development mode": what --dev serves besides the
route. The demo page and the browser client built into the binary (each file
of web/demo/ under /demo/, each web/src/*.js under /demo/lib/, with its type
and no caching), the token endpoint /demo/token, and the demo URL printed at
start. Without --dev every /demo path is an unknown path: 404, exactly as
any other. C node only (the reference has no --dev)."""

import hashlib
import hmac
import json
import os
import re
import subprocess
import time
from urllib.parse import quote

import pytest

from harness import (HOST, ROOT, SECRET, T, admit, b64url, c_only, free_port, jwt_decode_unverified,
                     new_account, new_room)
from wsclient import HandshakeError, WSClient

pytestmark = c_only

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}


def demo_files():
    """(URL path, file) for every file the build embeds: web/demo/** and web/src/*.js."""
    out = []
    demo = os.path.join(ROOT, "web", "demo")
    for d, _, names in os.walk(demo):
        for name in names:
            if not name.startswith("."):
                f = os.path.join(d, name)
                out.append(("/demo/" + os.path.relpath(f, demo).replace(os.sep, "/"), f))
    src = os.path.join(ROOT, "web", "src")
    if os.path.isdir(src):
        out += [(f"/demo/lib/{n}", os.path.join(src, n)) for n in sorted(os.listdir(src)) if n.endswith(".js")]
    return sorted(out)


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def dev(module_nodes):
    """A --dev node with the tests' secret, so its tokens can be checked here."""
    return module_nodes.start(args=["--dev"])


def assert_file_answer(r, body, type_):
    assert r.status == 200, r
    assert r.headers["content-type"] == type_, r.headers
    assert r.headers["cache-control"] == "no-store", r.headers
    assert r.headers["x-content-type-options"] == "nosniff", r.headers
    assert int(r.headers["content-length"]) == len(body), r.headers
    return r


# -- the page and its files ----------------------------------------------------------

def test_demo_page_is_index_html(dev):
    page = read(os.path.join(ROOT, "web", "demo", "index.html"))
    for path in ("/demo/", "/demo/index.html", "/demo/?room=" + new_room()):
        r = assert_file_answer(dev.http("GET", path), page, TYPES[".html"])
        assert r.body == page, path


@pytest.mark.parametrize("path,file", demo_files(), ids=[p for p, _ in demo_files()])
def test_every_embedded_file_is_served_as_built(dev, path, file):
    """Each file of web/demo/ and web/src/ is in the binary, byte for byte, with
    the type its name says; HEAD gives the same head without the body."""
    want = read(file)
    type_ = TYPES.get(os.path.splitext(file)[1])
    got = dev.http("GET", path)
    if type_:
        assert_file_answer(got, want, type_)
    assert got.status == 200 and got.body == want, got
    head = dev.http("HEAD", path)
    assert head.status == 200 and head.body == b"", head
    assert head.headers == got.headers


def test_demo_without_slash_redirects(dev):
    r = dev.http("GET", "/demo")
    assert r.status == 301, r
    assert r.headers["location"] == "/demo/"


@pytest.mark.parametrize("path", ["/demo/nope.html", "/demo/lib/nope.js", "/demo/lib/", "/demo/index.htm",
                                  "/demo//index.html", "/demo/../demo/index.html", "/demo/%69ndex.html",
                                  "/demox", "/demo/token/x"])
def test_unknown_demo_file_is_404(dev, path):
    r = dev.http("GET", path)
    assert r.status == 404 and r.body == b"", r


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_405(dev, method):
    for path in ("/demo/", "/demo/token?sub=a&room=" + new_room()):
        r = dev.http(method, path)
        assert r.status == 405, (path, r)
        assert r.headers.get("allow") == "GET"


def test_a_websocket_to_the_demo_is_refused(dev):
    with pytest.raises(HandshakeError) as e:
        WSClient.connect(HOST, dev.port, "/demo/")
    assert e.value.status == 404


# -- the token endpoint --------------------------------------------------------------

def get_token(node, **params):
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
    return node.http("GET", "/demo/token?" + query)


def test_token_joins_the_room(dev):
    room = new_room()
    sub = new_account("demo")
    before = int(time.time()) - 1  # time() in C reads a coarser clock
    r = get_token(dev, sub=sub, name="Zoë O'Brien & co", room=room.upper(), ttl=120)
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["access-control-allow-origin"] == "*"
    answer = json.loads(r.body)
    assert set(answer) == {"token", "accountId", "expiresAt"}, answer
    assert answer["accountId"] == sub
    assert before + 120 <= answer["expiresAt"] <= int(time.time()) + 120
    tok = answer["token"]
    # signed with the node's own secret (the tests' one)
    header, claims = jwt_decode_unverified(tok)
    assert header["alg"] == "HS256"
    signing_input, _, sig = tok.rpartition(".")
    assert b64url(hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()) == sig
    assert claims == {"sub": sub, "name": "Zoë O'Brien & co", "rooms": [room.lower()],
                      "exp": answer["expiresAt"]}
    m = admit(dev, room, sub, claims, tok)
    assert m.welcome["data"]["userId"] == sub and m.welcome["data"]["roomId"] == room.lower()
    # a second account from the endpoint sees the first one
    r2 = json.loads(get_token(dev, sub=sub + "-2", room=room).body)
    m2 = admit(dev, room, sub + "-2", jwt_decode_unverified(r2["token"])[1], r2["token"])
    (p,) = m2.welcome["data"]["participants"]
    assert p["accountId"] == sub and p["account"]["name"] == "Zoë O'Brien & co"
    m.expect_joined(m2)


def test_token_defaults_to_an_hour_and_no_name(dev):
    before = int(time.time()) - 1  # time() in C reads a coarser clock
    answer = json.loads(get_token(dev, sub="x", room=new_room()).body)
    _, claims = jwt_decode_unverified(answer["token"])
    assert "name" not in claims
    assert before + 3600 <= claims["exp"] <= int(time.time()) + 3600


def test_token_name_plus_and_percent_are_decoded_once(dev):
    r = dev.http("GET", "/demo/token?sub=a&room=" + new_room() + "&name=Al%C3%A9+B%2541")
    _, claims = jwt_decode_unverified(json.loads(r.body)["token"])
    assert claims["name"] == "Alé B%41"


BAD = [
    ("room=ROOM", "sub is required"),
    ("sub=a", "room is required"),
    ("sub=&room=ROOM", "sub must be"),
    ("sub=a%20b&room=ROOM", "sub must be"),
    ("sub=" + "a" * 65 + "&room=ROOM", "sub must be"),
    ("sub=a&room=not-a-guid", "room must be a GUID"),
    ("sub=a&room=ROOM&ttl=0", "ttl must be"),
    ("sub=a&room=ROOM&ttl=86401", "ttl must be"),
    ("sub=a&room=ROOM&ttl=1h", "ttl must be"),
    ("sub=a&room=ROOM&name=" + "n" * 65, "name must be"),
    ("sub=a&room=ROOM&name=%FF", "name must be"),
    ("sub=a&room=ROOM&name=a%01b", "name must be"),
    ("sub=a&sub=b&room=ROOM", "given twice"),
]


@pytest.mark.parametrize("query,why", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_token_refuses_bad_parameters(dev, query, why):
    r = dev.http("GET", "/demo/token?" + query.replace("ROOM", new_room()))
    assert r.status == 400, r
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["access-control-allow-origin"] == "*"
    assert why in r.text, r.text


def test_token_carries_the_issuer_and_audience_the_node_checks(nodes):
    n = nodes.start({"SIGNAL_JWT_ISSUER": "https://issuer.example", "SIGNAL_JWT_AUDIENCE": "signal",
                     "SIGNAL_JWT_ALG": "HS384"}, args=["--dev"])
    room = new_room()
    answer = json.loads(get_token(n, sub="iss-1", room=room).body)
    header, claims = jwt_decode_unverified(answer["token"])
    assert header["alg"] == "HS384"
    assert claims["iss"] == "https://issuer.example" and claims["aud"] == "signal"
    admit(n, room, "iss-1", claims, answer["token"])


def test_token_needs_an_hs_secret(nodes, tmp_path):
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(key)], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True)
    n = nodes.start({"SIGNAL_JWT_ALG": "ES256", "SIGNAL_JWT_KEY_FILE": str(pub)}, args=["--dev"])
    r = get_token(n, sub="a", room=new_room())
    assert r.status == 501, r
    assert r.text == "--dev tokens need an HS secret"
    assert r.headers["access-control-allow-origin"] == "*"
    # the page itself is still there
    assert n.http("GET", "/demo/").status == 200


# -- the printed URL -----------------------------------------------------------------

def printed(n, pattern):
    """The match of pattern in n's stdout, once the node has printed it (bounded)."""
    deadline = time.monotonic() + T
    while not (m := pattern.search(n.stdout())):
        assert n.alive() and time.monotonic() < deadline, f"{pattern.pattern} not on stdout\n{n.logs()}"
        time.sleep(0.05)
    return m


def test_dev_prints_the_demo_url_for_the_same_room(nodes):
    port = free_port()
    n = nodes.start({"SIGNAL_LISTEN": f"{HOST}:{port}"}, args=["--dev"], port=port, with_secret=False)
    pattern = re.compile(r"^  Demo  http://127\.0\.0\.1:(\d+)(/demo/\?room=([0-9a-f-]{36}))$", re.M)
    got_port, path, room = printed(n, pattern).groups()
    assert int(got_port) == port
    alice = re.search(r"Alice ws://\S+/chat/realtime/([0-9a-f-]{36})\?", n.stdout())
    assert alice and alice.group(1) == room
    assert n.http("GET", path).status == 200
    # with the node's random secret, its own tokens work
    answer = json.loads(get_token(n, sub="me", room=room).body)
    admit(n, room, "me", jwt_decode_unverified(answer["token"])[1], answer["token"])


def test_dev_demo_url_names_a_prefix_other_than_api(nodes):
    """The page assumes /api: a node behind a gateway's prefix tells it in the URL."""
    port = free_port()
    n = nodes.start({"SIGNAL_LISTEN": f"{HOST}:{port}"}, args=["--dev"], port=port, with_secret=False,
                    prefix="/sphere")
    printed(n, re.compile(r"^  Demo  http://\S+/demo/\?room=[0-9a-f-]{36}&prefix=/sphere$", re.M))


# -- never without --dev -------------------------------------------------------------

PATHS = ["/demo", "/demo/", "/demo/index.html", "/demo/lib/index.js", "/demo/token?sub=a&room=ROOM",
         "/demo/nope"]


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_without_dev_every_demo_path_is_an_unknown_path(node, method):
    """A production node serves no page and mints no token: /demo answers as
    /no-such-path does, status, head and body."""
    unknown = node.http(method, "/no-such-path")
    assert unknown.status == 404
    for path in PATHS:
        r = node.http(method, path.replace("ROOM", new_room()))
        assert (r.status, r.headers, r.body) == (unknown.status, unknown.headers, unknown.body), path


def test_dev_false_is_production(nodes):
    n = nodes.start({"SIGNAL_DEV": "false"})
    assert n.http("GET", "/demo/").status == 404
    assert n.http("GET", "/demo/token?sub=a&room=" + new_room()).status == 404
