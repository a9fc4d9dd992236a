"""Test harness: JWTs, GUIDs, node and redis-server processes, room members.

The target is chosen by SIGNAL_TEST_TARGET: "c" (default; the binary at
SIGNAL_NODE_BIN or build/bin/signal-node) or "peer" (the Node.js reference,
`node $SIGNAL_PEER_DIR/server.js`, default /tmp/peer).
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from wsclient import DEFAULT_TIMEOUT, Timeout, WSClient, http_request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("SIGNAL_TEST_TARGET", "c")
PEER_DIR = os.environ.get("SIGNAL_PEER_DIR", "/tmp/peer")
NODE_BIN = os.environ.get("SIGNAL_NODE_BIN") or os.path.join(ROOT, "build", "bin", "signal-node")
TOKEN_BIN = os.environ.get("SIGNAL_TOKEN_BIN") or next(
    (p for p in (os.path.join(os.path.dirname(NODE_BIN), "signal-token"), os.path.join(ROOT, "build", "bin", "signal-token"))
     if os.access(p, os.X_OK)), os.path.join(ROOT, "build", "bin", "signal-token"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HOST = "127.0.0.1"
SECRET = "integration-test-secret-0123456789"
T = DEFAULT_TIMEOUT  # deadline for awaited events

IS_PEER = TARGET == "peer"
c_only = pytest.mark.skipif(IS_PEER, reason="not in the Node.js reference (C node only)")

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:00)$")

FORBIDDEN = "Forbidden: Not a member of this chat room"
BAD_REQUEST = "Bad Request: WebSocket connection expected"


# ---------------------------------------------------------------------------
# Identifiers and tokens

def new_room():
    return str(uuid.uuid4())


def new_account(prefix="acct"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_decode_unverified(token):
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


_HS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def make_jwt(claims, key=SECRET, alg="HS256", header=None):
    """An HS* (or alg none) JWT with exactly these claims. header replaces the default header."""
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = f"{b64url_json(hdr)}.{b64url_json(claims)}"
    if alg == "none":
        return signing_input + "."
    if isinstance(key, str):
        key = key.encode()
    sig = hmac.new(key, signing_input.encode(), _HS[alg]).digest()
    return f"{signing_input}.{b64url(sig)}"


def claims_for(sub, rooms=(), name="__default__", nick=None, exp_in=3600, **extra):
    now = int(time.time())
    c = {"sub": sub}
    c["name"] = f"name of {sub}" if name == "__default__" else name
    if c["name"] is None:
        del c["name"]
    if nick is not None:
        c["nick"] = nick
    if rooms is not None:
        c["rooms"] = list(rooms)
    if exp_in is not None:
        c["exp"] = now + exp_in
    c.update(extra)
    return c


def token(sub, rooms=(), **kw):
    """A valid HS256 token (SECRET) for sub, member of rooms."""
    key = kw.pop("key", SECRET)
    alg = kw.pop("alg", "HS256")
    return make_jwt(claims_for(sub, rooms, **kw), key=key, alg=alg)


def account_obj(claims):
    """The account object the node must derive from these claims (contract §2)."""
    profile = claims.get("profile")
    return {
        "id": claims["sub"],
        "name": claims.get("name"),
        "nick": claims.get("nick"),
        "profile": profile if isinstance(profile, dict) else {},
        "updatedAt": claims.get("updated_at"),
    }


def parse_iso(s):
    assert isinstance(s, str) and ISO_UTC.match(s), f"not an ISO-8601 UTC timestamp: {s!r}"
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------
# Processes

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=20.0, what="the node"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    raise Timeout(f"{what} did not accept TCP connections on port {port} within {timeout} s")


def node_command(args=()):
    if IS_PEER:
        return ["node", os.path.join(PEER_DIR, "server.js"), *args]
    return [NODE_BIN, *args]


def node_base_env(extra=None):
    """The node's environment: ours without any SIGNAL_* variable, plus sanitizer options."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNAL_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.update({k: str(v) for k, v in (extra or {}).items() if v is not None})
    return env


def require_binary():
    if IS_PEER:
        if not os.path.exists(os.path.join(PEER_DIR, "server.js")):
            pytest.fail(f"SIGNAL_TEST_TARGET=peer but {PEER_DIR}/server.js is missing")
        if not os.path.isdir(os.path.join(PEER_DIR, "node_modules")):
            pytest.fail(f"run `npm ci` in {PEER_DIR} first")
    elif not os.access(NODE_BIN, os.X_OK):
        pytest.fail(f"{NODE_BIN} is missing: build it first (or set SIGNAL_NODE_BIN)")


def run_node_once(args=(), env=None, timeout=20.0):
    """Runs the node expecting it to exit by itself (bad config, --help)."""
    require_binary()
    p = subprocess.run(node_command(args), env=node_base_env(env), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class Node:
    """One signal-node process listening on 127.0.0.1:port."""

    def __init__(self, env=None, args=(), prefix="/api", port=None, tmpdir=None, listen_via_env=True,
                 wait=True, with_secret=True):
        require_binary()
        self.port = port or free_port()
        self.prefix = prefix
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="signal-it-")
        env = dict(env or {})
        if listen_via_env:
            env.setdefault("SIGNAL_LISTEN", f"{HOST}:{self.port}")
        if with_secret and "SIGNAL_JWT_KEY_FILE" not in env and not env.get("SIGNAL_JWT_ALG", "HS").startswith(("RS", "ES")):
            env.setdefault("SIGNAL_JWT_SECRET", SECRET)
        env.setdefault("SIGNAL_DRAIN_S", "0")
        if prefix != "/api":
            env.setdefault("SIGNAL_PATH_PREFIX", prefix)
        self.env = env
        self.args = list(args)
        self.stdout_path = os.path.join(self.tmpdir, f"node-{self.port}.out")
        self.stderr_path = os.path.join(self.tmpdir, f"node-{self.port}.err")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(node_command(self.args), env=node_base_env(env), stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        self.expected_rc = 0
        self.stopped = False
        self.reported = False
        if wait and not wait_port(self.port, self.proc):
            raise AssertionError(f"node exited at start with {self.proc.returncode}:\n{self.logs()}")

    # -- output --
    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def logs(self, limit=20000):
        out, err = self.stdout(), self.stderr()
        return f"--- stdout (tail) ---\n{out[-limit:]}\n--- stderr (tail) ---\n{err[-limit:]}"

    # -- lifecycle --
    def alive(self):
        return self.proc.poll() is None

    def terminate(self, timeout=None):
        """SIGTERM, then waits for the exit (bounded); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        drain = float(self.env.get("SIGNAL_DRAIN_S", "0") or 0)
        try:
            rc = self.proc.wait(timeout=timeout or (drain + 20))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"node did not exit within {timeout or drain + 20} s of SIGTERM\n{self.logs()}")
        finally:
            self.stopped = True
            self._out.close()
            self._err.close()
        return rc

    def kill(self):
        """SIGKILL (a dying node); teardown then does not expect exit code 0."""
        self.expected_rc = -signal.SIGKILL
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.stopped = True

    def stop_and_check(self):
        if self.reported:  # its death was already reported by the test that saw it
            if not self.stopped:
                self.terminate()
            return
        if self.stopped:
            rc = self.proc.returncode
        else:
            rc = self.terminate()
        if rc != self.expected_rc:
            raise AssertionError(f"node exited with {rc} (expected {self.expected_rc})\n{self.logs()}")
        if not IS_PEER:
            err = self.stderr()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in err:
                    raise AssertionError(f"sanitizer report in node stderr:\n{self.logs()}")

    # -- URLs and connections --
    def route(self, room, query=""):
        return f"{self.prefix}/chat/realtime/{room}" + (f"?{query}" if query else "")

    def ws(self, path, headers=None, **kw):
        return WSClient.connect(HOST, self.port, path, headers=headers, **kw)

    def http(self, method, path, headers=None, body=b"", timeout=None):
        return http_request(HOST, self.port, method, path, headers=headers, body=body, timeout=timeout)

    def connect(self, room, tok, via="tk", headers=None, **kw):
        """A WebSocket to room with the token passed via tk/token/bearer/cookie."""
        headers = dict(headers or {})
        query = ""
        if via in ("tk", "token"):
            query = f"{via}={tok}"
        elif via == "bearer":
            headers["Authorization"] = f"Bearer {tok}"
        elif via == "cookie":
            headers["Cookie"] = f"AuthToken={tok}"
        elif via is not None:
            raise ValueError(via)
        return self.ws(self.route(room, query), headers=headers, **kw)


class NodeSet:
    """Starts nodes and, at teardown, stops them with SIGTERM and checks exit code 0."""

    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.nodes = []

    def start(self, env=None, **kw):
        kw.setdefault("tmpdir", self.tmpdir)
        n = Node(env=env, **kw)
        self.nodes.append(n)
        return n

    def stop_all(self):
        errors = []
        for n in self.nodes:
            try:
                n.stop_and_check()
            except AssertionError as e:
                errors.append(str(e))
        self.nodes = []
        if errors:
            raise AssertionError("\n\n".join(errors))


class Redis:
    """A throw-away redis-server on a free loopback port."""

    def __init__(self, tmpdir, port=None):
        self.port = port or free_port()
        self.tmpdir = tmpdir
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://{HOST}:{self.port}"

    def start(self):
        self.log_path = os.path.join(self.tmpdir, f"redis-{self.port}.log")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--enable-debug-command", "yes", "--dir", self.tmpdir, "--logfile", self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}")
            try:
                if self.command("PING", timeout=1) == "PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise Timeout("redis-server did not answer PING")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def command(self, *args, timeout=5.0):
        """One command over a fresh connection; returns the decoded reply."""
        with RedisConn(self.port, timeout) as r:
            return r.call(*args)


class RedisConn:
    """A raw RESP connection (bounded by socket timeouts)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("redis closed the connection")
                self.buf += data
            val, self.buf = self.buf[:n], self.buf[n + 2:]
            return val.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"bad RESP line {line!r}")

    def call(self, *args):
        self.send(*args)
        return self.reply()


# ---------------------------------------------------------------------------
# Room members

class Member:
    """A joined connection: the client, its claims and the welcome it got."""

    def __init__(self, node, room, sub, client, claims, welcome):
        self.node = node
        self.room = room
        self.sub = sub
        self.c = client
        self.claims = claims
        self.account = account_obj(claims)
        self.welcome = welcome

    def send(self, type_, data=None, to=None, **extra):
        msg = {"type": type_}
        if data is not None:
            msg["data"] = data
        if to is not None:
            msg["to"] = to
        msg.update(extra)
        self.c.send_json(msg)

    def recv(self, timeout=T):
        return self.c.recv_json(timeout)

    def expect_signal(self, type_=None, sender=None, timeout=T):
        """The next packet must be a webrtc.signal (of type_ from sender when given); returns its data."""
        p = self.recv(timeout)
        assert p.get("type") == "webrtc.signal", f"{self.sub} expected a webrtc.signal, got {p}"
        d = p["data"]
        if type_ is not None:
            assert d.get("type") == type_, f"{self.sub} expected a {type_!r} signal, got {p}"
        if sender is not None:
            sid = sender.sub if isinstance(sender, Member) else sender
            assert d.get("senderAccountId") == sid, f"{self.sub} expected a signal from {sid}, got {p}"
        return d

    def expect_joined(self, other, timeout=T):
        d = self.expect_signal("user-joined", other, timeout)
        assert d == {"type": "user-joined", "data": {}, "senderAccountId": other.sub,
                     "senderInfo": other.account}, d
        return d

    def expect_left(self, other, timeout=T):
        d = self.expect_signal("user-left", other, timeout)
        assert d == {"type": "user-left", "data": {}, "senderAccountId": other.sub,
                     "senderInfo": other.account}, d
        return d

    def expect_error(self, code, timeout=T):
        p = self.recv(timeout)
        assert p.get("type") == "error", f"{self.sub} expected error {code}, got {p}"
        assert set(p) == {"type", "data"}, p
        assert set(p["data"]) == {"code", "message"}, p
        assert p["data"]["code"] == code, f"expected error {code}, got {p}"
        assert isinstance(p["data"]["message"], str) and p["data"]["message"], p
        return p["data"]

    def close(self):
        return self.c.close()


def join(node, room, sub=None, claims=None, via="tk", rooms=None, client_kw=None, **claim_kw):
    """Connects sub to room (a member by token unless rooms is given) and reads the welcome.
    claim_kw go to claims_for (name, nick, exp_in, profile, updated_at...)."""
    sub = sub or new_account()
    if claims is None:
        claims = claims_for(sub, [room] if rooms is None else rooms, **claim_kw)
    client = node.connect(room, make_jwt(claims), via=via, **(client_kw or {}))
    try:
        welcome = client.recv_json(T)
    except BaseException:
        client.abort()
        raise
    assert welcome.get("type") == "webrtc", f"first packet is not the welcome: {welcome}"
    return Member(node, room, sub, client, claims, welcome)


def join_room(node, room, n, prefix="m"):
    """n members joining one after another; every earlier member has consumed the later ones' user-joined."""
    members = []
    for i in range(n):
        m = join(node, room, new_account(f"{prefix}{i}"))
        for earlier in members:
            earlier.expect_joined(m)
        members.append(m)
    return members


def signal_token_bin():
    if not os.access(TOKEN_BIN, os.X_OK):
        pytest.skip(f"{TOKEN_BIN} not built")
    return TOKEN_BIN


def run_signal_token(*args):
    p = subprocess.run([signal_token_bin(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20, env=node_base_env())
    assert p.returncode == 0, f"signal-token {args} failed with {p.returncode}: {p.stderr.decode()}"
    tok = p.stdout.decode().strip()
    assert tok.count(".") == 2, f"signal-token printed {tok!r}"
    return tok
