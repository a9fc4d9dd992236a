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
    r = dev.http(method, "/demo/")
    assert r.status == 405, r
    assert r.headers.get("allow") == "GET"


def test_a_websocket_to_the_demo_is_refused(dev):
    with pytest.raises(HandshakeError) as e:
        WSClient.connect(HOST, dev.port, "/demo/")
    assert e.value.status == 404


# -- never without --dev -------------------------------------------------------------

PATHS = ["/demo", "/demo/", "/demo/index.html", "/demo/lib/index.js", "/demo/nope"]


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
