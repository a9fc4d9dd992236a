"""Configuration (docs/configuration.md): --help, bad values (exit 2, one line
naming the setting), flags win over env, a missing key, --dev."""

import base64
import json
import re
import socket
import subprocess
import time

import pytest

from harness import (HOST, IS_PEER, SECRET, T, c_only, free_port, join, new_account, new_room, run_node_once,
                     token)
from wsclient import HandshakeError, WSClient

SETTINGS = [
    # (variable, flag, default shown by --help or None)
    ("SIGNAL_LISTEN", "--listen", "0.0.0.0:8080"),
    ("SIGNAL_PATH_PREFIX", "--path-prefix", "/api"),
    ("SIGNAL_REDIS_URL", "--redis-url", None),
    ("SIGNAL_NODE_ID", "--node-id", None),
    ("SIGNAL_JWT_ALG", "--jwt-alg", "HS256"),
    ("SIGNAL_JWT_SECRET", "--jwt-secret", None),
    ("SIGNAL_JWT_KEY_FILE", "--jwt-key-file", None),
    ("SIGNAL_JWT_ISSUER", "--jwt-issuer", None),
    ("SIGNAL_JWT_AUDIENCE", "--jwt-audience", None),
    ("SIGNAL_JWT_LEEWAY_S", "--jwt-leeway-s", "60"),
    ("SIGNAL_MEMBERSHIP", "--membership", "token"),
    ("SIGNAL_MEMBERSHIP_KEY", "--membership-key", "chat:{room}:members"),
    ("SIGNAL_MAX_MESSAGE_BYTES", "--max-message-bytes", "65536"),
    ("SIGNAL_RATE_PER_S", "--rate-per-s", "50"),
    ("SIGNAL_RATE_BURST", "--rate-burst", "200"),
    ("SIGNAL_RATE_BYTES_PER_S", "--rate-bytes-per-s", "0"),
    ("SIGNAL_SEND_QUEUE_BYTES", "--send-queue-bytes", "1048576"),
    ("SIGNAL_SEND_QUEUE_HARD_BYTES", "--send-queue-hard-bytes", "33554432"),
    ("SIGNAL_SLOW_READER_S", "--slow-reader-s", "10"),
    ("SIGNAL_SEND_MEMORY_BYTES", "--send-memory-bytes", "268435456"),
    ("SIGNAL_WELCOME_TIMEOUT_S", "--welcome-timeout-s", "10"),
    ("SIGNAL_MAX_CONNECTIONS", "--max-connections", "100000"),
    ("SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT", "--max-connections-per-account", "20"),
    ("SIGNAL_JOIN_RATE_PER_MIN", "--join-rate-per-min", "30"),
    ("SIGNAL_JOIN_BURST", "--join-burst", "20"),
    ("SIGNAL_DRAIN_S", "--drain-s", "20"),
    ("SIGNAL_PING_S", "--ping-s", "25"),
    ("SIGNAL_LOG_LEVEL", "--log-level", "info"),
]

# settings the Node.js reference does not read
NOT_IN_PEER = {"SIGNAL_SEND_QUEUE_HARD_BYTES", "SIGNAL_SLOW_READER_S", "SIGNAL_SEND_MEMORY_BYTES",
               "SIGNAL_WELCOME_TIMEOUT_S", "SIGNAL_RATE_BYTES_PER_S", "SIGNAL_MAX_CONNECTIONS",
               "SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT", "SIGNAL_JOIN_RATE_PER_MIN", "SIGNAL_JOIN_BURST",
               "SIGNAL_DRAIN_S", "SIGNAL_PING_S", "SIGNAL_LOG_LEVEL"}


@c_only
def test_help_lists_every_setting():
    rc, out, err = run_node_once(["--help"])
    assert rc == 0, (rc, out, err)
    lines = out.splitlines()
    assert lines, f"--help printed nothing on stdout (stderr: {err!r})"
    for var, flag, default in SETTINGS:
        assert var in out, f"--help does not mention {var}"
        assert re.search(re.escape(flag) + r"(?![\w-])", out), f"--help does not mention {flag}"
        if default is not None:
            idx = next(i for i, line in enumerate(lines) if var in line or re.search(re.escape(flag) + r"(?![\w-])", line))
            window = "\n".join(lines[max(0, idx - 2):idx + 4])
            assert default in window, f"default {default!r} of {var} not shown near it:\n{window}"
    assert "--dev" in out and "--help" in out


BAD_VALUES = [
    ("SIGNAL_LISTEN", "nonsense"),
    ("SIGNAL_LISTEN", "127.0.0.1:99999"),
    ("SIGNAL_LISTEN", "127.0.0.1:abc"),
    ("SIGNAL_LISTEN", "127.0.0.1:"),
    ("SIGNAL_LISTEN", "999.1.1.1:8080"),
    ("SIGNAL_LISTEN", "no-such-host.invalid:8080"),
    ("SIGNAL_PATH_PREFIX", "api"),
    ("SIGNAL_REDIS_URL", "http://127.0.0.1:6379"),
    ("SIGNAL_REDIS_URL", "not a url"),
    ("SIGNAL_REDIS_URL", "redis://127.0.0.1:6379/abc"),
    ("SIGNAL_NODE_ID", "has space"),
    ("SIGNAL_JWT_ALG", "HS999"),
    ("SIGNAL_JWT_ALG", "none"),
    ("SIGNAL_JWT_ALG", "PS256"),
    ("SIGNAL_JWT_LEEWAY_S", "abc"),
    ("SIGNAL_JWT_LEEWAY_S", "-1"),
    ("SIGNAL_JWT_LEEWAY_S", "1.5"),
    ("SIGNAL_MEMBERSHIP", "ldap"),
    ("SIGNAL_MAX_MESSAGE_BYTES", "abc"),
    ("SIGNAL_MAX_MESSAGE_BYTES", "0"),
    ("SIGNAL_MAX_MESSAGE_BYTES", "-5"),
    ("SIGNAL_MAX_MESSAGE_BYTES", "100abc"),
    ("SIGNAL_MAX_MESSAGE_BYTES", "99999999999999999999999999"),
    ("SIGNAL_RATE_PER_S", "x"),
    ("SIGNAL_RATE_PER_S", "-1"),
    ("SIGNAL_RATE_BURST", "x"),
    ("SIGNAL_RATE_BURST", "0"),
    ("SIGNAL_RATE_BYTES_PER_S", "x"),
    ("SIGNAL_RATE_BYTES_PER_S", "-5"),
    ("SIGNAL_SEND_QUEUE_BYTES", "x"),
    ("SIGNAL_SEND_QUEUE_BYTES", "-1"),
    ("SIGNAL_SEND_QUEUE_HARD_BYTES", "x"),
    ("SIGNAL_SEND_QUEUE_HARD_BYTES", "1000"),
    ("SIGNAL_SLOW_READER_S", "0"),
    ("SIGNAL_SEND_MEMORY_BYTES", "1000"),
    ("SIGNAL_WELCOME_TIMEOUT_S", "0"),
    ("SIGNAL_MAX_CONNECTIONS", "x"),
    ("SIGNAL_MAX_CONNECTIONS", "-3"),
    ("SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT", "0"),
    ("SIGNAL_JOIN_RATE_PER_MIN", "0"),
    ("SIGNAL_JOIN_BURST", "x"),
    ("SIGNAL_DRAIN_S", "x"),
    ("SIGNAL_DRAIN_S", "-1"),
    ("SIGNAL_PING_S", "x"),
    ("SIGNAL_PING_S", "-1"),
    ("SIGNAL_LOG_LEVEL", "verbose"),
]


def assert_config_error(rc, out, err, names):
    assert rc == 2, f"exit code {rc} (expected 2)\nstdout: {out}\nstderr: {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert any(n in lines[0] for n in names), f"the line does not name {names}: {lines[0]!r}"


def _base_env():
    return {"SIGNAL_LISTEN": f"{HOST}:{free_port()}", "SIGNAL_JWT_SECRET": SECRET}


@pytest.mark.parametrize("var,value", BAD_VALUES, ids=[f"{v}={x}" for v, x in BAD_VALUES])
def test_bad_value_env(var, value):
    if IS_PEER and var in NOT_IN_PEER:
        pytest.skip("not read by the Node.js reference")
    env = _base_env()
    env[var] = value
    rc, out, err = run_node_once(env=env, timeout=15)
    assert_config_error(rc, out, err, [var])


FLAG_OF = {v: f for v, f, _ in SETTINGS}


@c_only
@pytest.mark.parametrize("var,value", BAD_VALUES, ids=[f"{v}={x}" for v, x in BAD_VALUES])
def test_bad_value_flag(var, value):
    env = _base_env()
    rc, out, err = run_node_once([FLAG_OF[var], value], env=env, timeout=15)
    assert_config_error(rc, out, err, [var, FLAG_OF[var]])


@c_only
def test_listen_port_in_use_exits_2():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        env = {"SIGNAL_LISTEN": f"{HOST}:{taken.getsockname()[1]}", "SIGNAL_JWT_SECRET": SECRET}
        rc, out, err = run_node_once(env=env, timeout=15)
    assert_config_error(rc, out, err, ["SIGNAL_LISTEN"])


def test_membership_redis_needs_redis_url():
    env = _base_env()
    env["SIGNAL_MEMBERSHIP"] = "redis"
    rc, out, err = run_node_once(env=env, timeout=15)
    assert_config_error(rc, out, err, ["SIGNAL_MEMBERSHIP", "SIGNAL_REDIS_URL"])


def test_missing_secret_exits_2():
    rc, out, err = run_node_once(env={"SIGNAL_LISTEN": f"{HOST}:{free_port()}"}, timeout=15)
    assert_config_error(rc, out, err, ["SIGNAL_JWT_SECRET"])


def test_empty_secret_exits_2():
    rc, out, err = run_node_once(env={"SIGNAL_LISTEN": f"{HOST}:{free_port()}", "SIGNAL_JWT_SECRET": ""}, timeout=15)
    assert_config_error(rc, out, err, ["SIGNAL_JWT_SECRET"])


def test_missing_key_file_exits_2():
    rc, out, err = run_node_once(env={"SIGNAL_LISTEN": f"{HOST}:{free_port()}", "SIGNAL_JWT_ALG": "RS256"}, timeout=15)
    assert_config_error(rc, out, err, ["SIGNAL_JWT_KEY_FILE"])


@pytest.mark.parametrize("case", ["nonexistent", "garbage", "ec-for-rs256", "rsa-for-es256", "p384-for-es256"])
def test_bad_key_file_exits_2(tmp_path, case):
    def gen(name, *opts):
        p = tmp_path / f"{name}.pem"
        subprocess.run(["openssl", "genpkey", *opts, "-out", str(p)], check=True, capture_output=True, timeout=60)
        pub = tmp_path / f"{name}.pub.pem"
        subprocess.run(["openssl", "pkey", "-in", str(p), "-pubout", "-out", str(pub)], check=True,
                       capture_output=True, timeout=60)
        return str(p), str(pub)

    env = {"SIGNAL_LISTEN": f"{HOST}:{free_port()}"}
    if case == "nonexistent":
        env.update(SIGNAL_JWT_ALG="RS256", SIGNAL_JWT_KEY_FILE=str(tmp_path / "nope.pem"))
    elif case == "garbage":
        f = tmp_path / "garbage.pem"
        f.write_text("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n")
        env.update(SIGNAL_JWT_ALG="RS256", SIGNAL_JWT_KEY_FILE=str(f))
    elif case == "ec-for-rs256":
        env.update(SIGNAL_JWT_ALG="RS256", SIGNAL_JWT_KEY_FILE=gen("ec", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")[1])
    elif case == "rsa-for-es256":
        env.update(SIGNAL_JWT_ALG="ES256", SIGNAL_JWT_KEY_FILE=gen("rsa", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")[1])
    else:
        env.update(SIGNAL_JWT_ALG="ES256", SIGNAL_JWT_KEY_FILE=gen("ec384", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384")[1])
    rc, out, err = run_node_once(env=env, timeout=15)
    assert_config_error(rc, out, err, ["SIGNAL_JWT_KEY_FILE"])


# -- flags ------------------------------------------------------------------------

def _refused(port):
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return False
    except OSError:
        return True


@c_only
@pytest.mark.parametrize("style", ["space", "equals"])
def test_flags_win_over_env(nodes, style):
    env_port, flag_port = free_port(), free_port()
    flags = {"--listen": f"{HOST}:{flag_port}", "--path-prefix": "/sphere", "--jwt-secret": "flag-secret"}
    args = []
    for k, v in flags.items():
        args += [f"{k}={v}"] if style == "equals" else [k, v]
    n = nodes.start({"SIGNAL_LISTEN": f"{HOST}:{env_port}", "SIGNAL_PATH_PREFIX": "/api",
                     "SIGNAL_JWT_SECRET": "env-secret"}, args=args, port=flag_port, prefix="/sphere",
                    listen_via_env=False)
    assert _refused(env_port)
    room = new_room()
    c = n.connect(room, token(new_account(), [room], key="flag-secret"))
    assert c.recv_json(T)["type"] == "webrtc"
    with pytest.raises(HandshakeError) as e:
        n.connect(room, token(new_account(), [room], key="env-secret"))
    assert e.value.status == 401
    resp = n.http("GET", f"/api/chat/realtime/{room}")
    assert resp.status == 404


@c_only
def test_unknown_flag_refused():
    rc, out, err = run_node_once(["--no-such-flag"], env=_base_env(), timeout=15)
    assert rc != 0, (out, err)


# -- --dev -------------------------------------------------------------------------

URL_RE = re.compile(r"ws://([^/\s]+)(/\S*/chat/realtime/([0-9A-Fa-f-]{36})\?tk=([A-Za-z0-9_.-]+))")


@c_only
def test_dev_prints_working_url(nodes):
    port = free_port()
    n = nodes.start({"SIGNAL_LISTEN": f"{HOST}:{port}"}, args=["--dev"], port=port, with_secret=False)
    deadline = time.monotonic() + T
    m = None
    while m is None:
        m = URL_RE.search(n.stdout())
        if m is None:
            assert n.alive(), f"node exited\n{n.logs()}"
            assert time.monotonic() < deadline, f"no ws:// URL on stdout (it must be flushed)\n{n.logs()}"
            time.sleep(0.05)
    hostport, path, room, tok = m.groups()
    assert hostport.rsplit(":", 1)[-1] == str(port), f"URL {m.group(0)} does not name port {port}"
    c = WSClient.connect(HOST, port, path)
    w = c.recv_json(T)
    assert w["type"] == "webrtc" and w["data"]["roomId"] == room.lower()
    # a second client with the same URL sees the first one (same account: not listed) and can signal
    c2 = WSClient.connect(HOST, port, path)
    assert c2.recv_json(T)["type"] == "webrtc"
    c2.send_json({"type": "offer", "data": {"dev": True}})
    got = c.recv_json(T)
    assert got["data"]["type"] == "offer" and got["data"]["data"] == {"dev": True}


@c_only
@pytest.mark.parametrize("alg", ["HS256", "HS384"])
def test_dev_with_secret_given_still_starts(nodes, alg):
    """--dev beside a real secret: the node starts, and the printed URL, signed
    with that secret and algorithm, works."""
    port = free_port()
    n = nodes.start({"SIGNAL_LISTEN": f"{HOST}:{port}", "SIGNAL_JWT_SECRET": SECRET, "SIGNAL_JWT_ALG": alg},
                    args=["--dev"], port=port)
    deadline = time.monotonic() + T
    while not URL_RE.search(n.stdout()):
        assert time.monotonic() < deadline, n.logs()
        time.sleep(0.05)
    hostport, path, room, tok = URL_RE.search(n.stdout()).groups()
    assert json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))["alg"] == alg
    c = WSClient.connect(HOST, port, path)
    assert c.recv_json(T)["type"] == "webrtc"


@c_only
def test_dev_with_a_public_key_prints_no_url(nodes, tmp_path):
    """--dev with RS256 and only a public key cannot sign: one line says so."""
    key = tmp_path / "k.pem"
    pub = tmp_path / "k.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(key)], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True)
    port = free_port()
    n = nodes.start({"SIGNAL_LISTEN": f"{HOST}:{port}", "SIGNAL_JWT_ALG": "RS256",
                     "SIGNAL_JWT_KEY_FILE": str(pub), "SIGNAL_JWT_SECRET": SECRET}, args=["--dev"], port=port)
    deadline = time.monotonic() + T
    while "need the private key" not in n.stdout():
        assert n.alive() and time.monotonic() < deadline, n.logs()
        time.sleep(0.05)
    assert not URL_RE.search(n.stdout())


@c_only
def test_log_level_debug_and_error_start(nodes):
    for level in ("debug", "error", "warn", "info"):
        n = nodes.start({"SIGNAL_LOG_LEVEL": level})
        m = join(n, new_room())
        m.close()


def test_node_id_and_issuer_settings_accepted(nodes):
    n = nodes.start({"SIGNAL_NODE_ID": "node-a.1_x", "SIGNAL_JWT_LEEWAY_S": "0",
                     "SIGNAL_MAX_MESSAGE_BYTES": "1000000", "SIGNAL_SEND_QUEUE_BYTES": "2000000"})
    join(n, new_room())
