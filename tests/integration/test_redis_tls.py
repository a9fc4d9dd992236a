"""Issue 12, TLS to Redis (docs/configuration.md, "TLS to Redis"): rediss:// URLs,
Redis's certificate checked against SIGNAL_REDIS_TLS_CA_FILE and its name against
the URL's host, client certificates for a Redis that requires them, for the bus
and for membership `redis`. Certificates are made with openssl for the module
(harness.Certificates); each Redis listens with TLS only (--port 0), so nothing
here can pass over plain TCP. A refused connection leaves the node running and
not ready, with one warning that names the Redis and the reason."""

import json
import os

import pytest

from harness import (SECRET, T, Certificates, Redis, c_only, cluster_env, join, new_account, new_room, poll,
                     run_node_once, shard_of, token, wait_ready)

pytestmark = [pytest.mark.cluster, c_only]


@pytest.fixture(scope="module")
def certs(tmp_base):
    return Certificates(os.path.join(tmp_base, "tls"))


@pytest.fixture(scope="module")
def tls_redis(tmp_base, certs):
    """A Redis with TLS only, its certificate for localhost and 127.0.0.1, no client certificate asked."""
    r = Redis(tmp_base, tls=certs)
    yield r
    r.stop()


def tls_env(certs, url, node_id, ca="ca.pem", client=False, env=None):
    """A cluster node's environment with a rediss:// URL, the CA file and, with client, the client certificate."""
    e = cluster_env(url, node_id, env)
    e["SIGNAL_REDIS_TLS_CA_FILE"] = certs.path(ca)
    if client:
        e["SIGNAL_REDIS_TLS_CERT_FILE"] = certs.path("client.pem")
        e["SIGNAL_REDIS_TLS_KEY_FILE"] = certs.path("client.key")
    return e


def readyz(node):
    r = node.http("GET", "/readyz")
    return r.status, r.body.decode()


def refusals(node):
    """The node's redis_connect_failed warnings (JSON log lines), as {role: message}."""
    found = {}
    for line in node.stderr().splitlines():
        if line.startswith("{"):
            e = json.loads(line)
            if e.get("event") == "redis_connect_failed" and e.get("level") == "warn":
                found.setdefault(e["msg"].split(":")[0], e["msg"])
    return found


def wait_refused(node, roles):
    """Waits for a refusal warning of each role ("redis bus", ...); returns them. The node must
    stay alive and not ready."""
    got = poll(lambda: refusals(node), until=lambda f: all(r in f for r in roles),
               what=f"redis_connect_failed for {roles}")
    assert node.alive(), node.logs()
    status, body = readyz(node)
    assert status == 503 and "redis" in body, (status, body)
    return got


def test_good_ca_relays_a_signal_across_nodes(nodes, certs, tls_redis):
    n1 = nodes.start(tls_env(certs, tls_redis.url, "tls-good-1"))
    n2 = nodes.start(tls_env(certs, tls_redis.url, "tls-good-2"))
    wait_ready(n1)
    wait_ready(n2)
    room = new_room()
    a = join(n1, room)
    b = join(n2, room)
    a.expect_joined(b)
    assert [p["accountId"] for p in b.welcome["data"]["participants"]] == [a.sub]
    b.send("offer", {"sdp": "v=0 over TLS"}, to=a.sub)
    assert a.expect_signal("offer", b)["data"] == {"sdp": "v=0 over TLS"}
    a.send("answer", {"sdp": "v=0 back"})
    assert b.expect_signal("answer", a)["data"] == {"sdp": "v=0 back"}
    # both nodes' connections are Redis's TLS clients: its only port is the TLS one
    assert tls_redis.numsub(f"signal:room:{room}") == 2


def test_tls_and_plain_shards_mixed(nodes, tmp_base, certs, tls_redis):
    """SIGNAL_REDIS_URL with a rediss:// shard and a redis:// one: each room relays on its own."""
    plain = Redis(tmp_base)
    try:
        servers = [tls_redis, plain]
        url = f"{tls_redis.url},{plain.url}"
        n1 = nodes.start(tls_env(certs, url, "tls-mixed-1"))
        n2 = nodes.start(tls_env(certs, url, "tls-mixed-2"))
        wait_ready(n1)
        wait_ready(n2)
        for shard in (0, 1):
            room = next(r for r in iter(new_room, None) if shard_of(r, 2) == shard)
            a = join(n1, room)
            b = join(n2, room)
            a.expect_joined(b)
            b.send("offer", {"shard": shard}, to=a.sub)
            assert a.expect_signal("offer", b)["data"] == {"shard": shard}
            assert servers[shard].numsub(f"signal:room:{room}") == 2
            assert servers[1 - shard].numsub(f"signal:room:{room}") == 0
    finally:
        plain.stop()


def test_wrong_ca_is_refused(nodes, certs, tls_redis):
    n = nodes.start(tls_env(certs, tls_redis.url, "tls-wrong-ca", ca="other-ca.pem"))
    got = wait_refused(n, ["redis bus", "redis subscriber"])
    msg = got["redis bus"]
    assert f"127.0.0.1:{tls_redis.port}" in msg, msg
    assert "TLS: certificate refused: " in msg, msg
    assert any(why in msg for why in ("self-signed certificate in certificate chain",
                                      "unable to get local issuer certificate")), msg


def test_wrong_host_name_is_refused(nodes, tmp_base, certs):
    """A certificate of the right CA for another name: refused by IP address (the bus,
    at 127.0.0.1) and by host name (membership, at localhost)."""
    r = Redis(tmp_base, tls=certs, cert="elsewhere")
    try:
        n = nodes.start(tls_env(certs, r.url, "tls-wrong-name", env={
            "SIGNAL_MEMBERSHIP": "redis", "SIGNAL_MEMBERSHIP_REDIS_URL": r.url_for(host="localhost")}))
        got = wait_refused(n, ["redis bus", "redis membership"])
        assert "TLS: certificate refused: IP address mismatch" in got["redis bus"], got
        assert f"localhost:{r.port}" in got["redis membership"], got
        assert "TLS: certificate refused: hostname mismatch" in got["redis membership"], got
    finally:
        r.stop()


def test_client_certificate_when_redis_requires_one(nodes, tmp_base, certs):
    r = Redis(tmp_base, tls=certs, args=["--tls-auth-clients", "yes"])
    try:
        with_cert = nodes.start(tls_env(certs, r.url, "tls-client-1", client=True))
        with_cert2 = nodes.start(tls_env(certs, r.url, "tls-client-2", client=True))
        without = nodes.start(tls_env(certs, r.url, "tls-client-none"))
        wait_ready(with_cert)
        wait_ready(with_cert2)
        room = new_room()
        a = join(with_cert, room)
        b = join(with_cert2, room)
        a.expect_joined(b)
        b.send("offer", {"n": 1}, to=a.sub)
        assert a.expect_signal("offer", b)["data"] == {"n": 1}
        got = wait_refused(without, ["redis bus", "redis subscriber"])
        assert "Redis asked for a client certificate" in got["redis bus"], got
    finally:
        r.stop()


def test_redis_membership_over_tls(nodes, certs, tls_redis):
    """Membership `redis` on its own rediss:// URL by host name (localhost), the bus by IP."""
    env = {"SIGNAL_MEMBERSHIP": "redis", "SIGNAL_MEMBERSHIP_REDIS_URL": tls_redis.url_for(host="localhost", db=3)}
    n1 = nodes.start(tls_env(certs, tls_redis.url, "tls-member-1", env=env))
    n2 = nodes.start(tls_env(certs, tls_redis.url, "tls-member-2", env=env))
    wait_ready(n1)
    wait_ready(n2)
    room = new_room()
    a, b = new_account(), new_account()
    tls_redis.command("SADD", f"chat:{room}:members", a, db=3)
    tls_redis.command("SADD", f"chat:{room}:members", b, db=3)
    ma = join(n1, room, a, rooms=None)
    mb = join(n2, room, b, rooms=None)
    ma.expect_joined(mb)
    mb.send("offer", {"x": 1}, to=a)
    assert ma.expect_signal("offer", mb)["data"] == {"x": 1}
    # a token that lists the room does not make a member: the set in db 3 decides
    c = n1.connect(room, token(new_account(), [room]))
    assert c.response.status == 101
    assert c.recv_close(T).code == 4403


@pytest.mark.parametrize("files, setting", [
    ({"CA": "server.key"}, "SIGNAL_REDIS_TLS_CA_FILE"),  # no certificate in it
    ({"CERT": "client.key", "KEY": "client.key"}, "SIGNAL_REDIS_TLS_CERT_FILE"),
    ({"CERT": "client.pem", "KEY": "server.key"}, "SIGNAL_REDIS_TLS_KEY_FILE"),  # another certificate's key
    ({"CERT": "client.pem", "KEY": "client-encrypted.key"}, "SIGNAL_REDIS_TLS_KEY_FILE"),  # encrypted
])
def test_unusable_tls_files_stop_the_node_at_start(certs, tls_redis, files, setting):
    """Readable files that TLS cannot use: exit code 2 at start, one line naming the setting."""
    if not os.path.exists(certs.path("client-encrypted.key")):
        certs.encrypt("client.key", "client-encrypted.key", "a passphrase")
    env = {"SIGNAL_REDIS_URL": tls_redis.url, "SIGNAL_JWT_SECRET": SECRET,
           "SIGNAL_REDIS_TLS_CA_FILE": certs.path("ca.pem")}
    env.update({f"SIGNAL_REDIS_TLS_{k}_FILE": certs.path(v) for k, v in files.items()})
    rc, out, err = run_node_once(env=env)
    assert rc == 2, (rc, out, err)
    assert err.startswith(f"signal-node: {setting}: "), err
    assert len(err.strip().splitlines()) == 1, err
