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
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from urllib.parse import quote

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
    """The account object the node must derive from these claims (docs/protocol.md,
    "The account object")."""
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

def kernel_queued(port):
    """Bytes the kernel holds in the send queues of the sockets on port: the
    node's side of its connections (closed ones still sending included)."""
    total = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    total += int(fields[4].split(":")[0], 16)
    return total


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
                 wait=True, with_secret=True, nofile=None):
        """nofile: the process's open-file limit (soft and hard), to run it out of descriptors."""
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
        env.setdefault("SIGNAL_DRAIN_CLOSE_S", "0")
        # Membership `redis` with several shards must name its Redis: the
        # tests write their sets to the first shard (RedisShards.command).
        # A comma starts a shard only before a scheme: a Sentinel URL's
        # commas separate its sentinels.
        shards = re.split(r",(?=redis://|rediss://|redis\+sentinel://)", env.get("SIGNAL_REDIS_URL", ""))
        if env.get("SIGNAL_MEMBERSHIP") == "redis" and len(shards) > 1:
            env.setdefault("SIGNAL_MEMBERSHIP_REDIS_URL", shards[0])
        if prefix != "/api":
            env.setdefault("SIGNAL_PATH_PREFIX", prefix)
        self.env = env
        self.args = list(args)
        self.stdout_path = os.path.join(self.tmpdir, f"node-{self.port}.out")
        self.stderr_path = os.path.join(self.tmpdir, f"node-{self.port}.err")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
        self.proc = subprocess.Popen(node_command(self.args), env=node_base_env(env), stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, preexec_fn=limit)
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
        drain = float(self.env.get("SIGNAL_DRAIN_S", "0") or 0) + float(self.env.get("SIGNAL_DRAIN_CLOSE_S", "0") or 0)
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


class Balancer:
    """A load balancer's port on HOST, shaped like a Node for join(), Member and connect()."""

    prefix = "/api"
    route = Node.route
    ws = Node.ws
    connect = Node.connect
    http = Node.http

    def __init__(self, port):
        self.port = port


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


class Certificates:
    """Certificates for TLS to Redis, made with openssl in dir (EC P-256, valid a day):
    a CA (ca.pem) and, signed by it, a server certificate for localhost and 127.0.0.1
    (server.pem, server.key), one for another name only, redis.elsewhere.test
    (elsewhere.pem, elsewhere.key), and a client certificate (client.pem, client.key);
    and another CA, trusted by nobody here (other-ca.pem)."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        self._ca("ca")
        self._ca("other-ca")
        self._leaf("server", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        self._leaf("elsewhere", "subjectAltName=DNS:redis.elsewhere.test")
        self._leaf("client", "extendedKeyUsage=clientAuth")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, *args):
        p = subprocess.run(["openssl", *args], cwd=self.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 0, f"openssl {' '.join(args)}: {p.stderr.decode()}"

    def _ca(self, name):
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-days", "1", "-subj", f"/CN=signal-test {name}", "-keyout", f"{name}.key",
                      "-out", f"{name}.pem")

    def _leaf(self, name, extension):
        with open(self.path(f"{name}.ext"), "w") as f:
            f.write(extension + "\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-subj", f"/CN=signal-test {name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                      "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")

    def redis_args(self, port, cert="server"):
        """redis-server's arguments for TLS only on port (--port 0), with the
        certificate cert ("server" or "elsewhere"), asking for no client certificate
        (a later --tls-auth-clients yes does)."""
        return ["--port", "0", "--tls-port", str(port), "--tls-cert-file", self.path(f"{cert}.pem"),
                "--tls-key-file", self.path(f"{cert}.key"), "--tls-ca-cert-file", self.path("ca.pem"),
                "--tls-auth-clients", "no"]

    def encrypt(self, key, out, passphrase):
        """Writes key again as out, encrypted with passphrase (AES-256)."""
        self._openssl("pkey", "-in", key, "-aes256", "-passout", f"pass:{passphrase}", "-out", out)

    def client_context(self):
        """The harness's own TLS client: trusts ca.pem and shows the client certificate,
        whatever name the server's certificate has (the node's checks are under test, not these)."""
        ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
        ctx.check_hostname = False
        ctx.load_cert_chain(self.path("client.pem"), self.path("client.key"))
        return ctx


class Redis:
    """A throw-away redis-server on a free loopback port.

    password: started with --requirepass (the harness's own commands AUTH with it);
    args: more redis-server arguments (e.g. an ACL user); start=False: the port is
    chosen but nothing listens on it until start() (a Redis that is down).
    tls: Certificates: Redis speaks TLS only (--port 0 --tls-port port), with the
    certificate named by cert ("server" or "elsewhere"), and asks for no client
    certificate unless args say --tls-auth-clients yes; url is then rediss://."""

    def __init__(self, tmpdir, port=None, password=None, args=(), start=True, tls=None, cert="server"):
        self.port = port or free_port()
        self.tmpdir = tmpdir
        self.password = password
        self.args = list(args)
        self.tls = tls
        self.cert = cert
        self.proc = None
        if start:
            self.start()

    @property
    def url(self):
        return self.url_for()

    def url_for(self, user=None, password=None, db=None, host=HOST):
        """redis[s]://[user:password@]host:port[/db]; password defaults to the server's."""
        password = self.password if password is None else password
        auth = ""
        if password is not None:
            auth = f"{quote(user or '', safe='')}:{quote(password, safe='')}@"
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}{host}:{self.port}" + ("" if db is None else f"/{db}")

    def start(self):
        self.log_path = os.path.join(self.tmpdir, f"redis-{self.port}.log")
        ports = self.tls.redis_args(self.port, self.cert) if self.tls else ["--port", str(self.port)]
        cmd = [REDIS_SERVER, *ports, "--bind", HOST, "--save", "", "--appendonly", "no",
               "--enable-debug-command", "yes", "--dir", self.tmpdir, "--logfile", self.log_path]
        if self.password is not None:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd + self.args,
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

    @property
    def shards(self):
        """The servers of the shard list: this one."""
        return [self]

    def for_room(self, room):
        """The server that holds room's channel and presence: this one."""
        return self

    def stop(self):
        """SIGKILL (what a crashed Redis looks like); start() brings it back, empty, on the same port."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def connection(self, timeout=5.0, db=None):
        """A fresh RedisConn to this server (over TLS when it speaks TLS)."""
        return RedisConn(self.port, timeout, password=self.password, db=db,
                         tls=self.tls.client_context() if self.tls else None)

    def command(self, *args, timeout=5.0, db=None):
        """One command over a fresh connection (AUTH and SELECT db first when needed); returns the decoded reply."""
        with self.connection(timeout, db=db) as r:
            return r.call(*args)

    # -- pub/sub and keys, as the tests look at them --
    def numsub(self, channel):
        """PUBSUB NUMSUB for one channel: how many connections are subscribed to it."""
        reply = self.command("PUBSUB", "NUMSUB", channel)
        return int(reply[1])

    def channels(self, pattern):
        return sorted(self.command("PUBSUB", "CHANNELS", pattern))

    def keys(self, pattern, db=None):
        """Every key matching pattern (SCAN, not KEYS), sorted."""
        found, cursor = set(), "0"
        with self.connection(db=db) as r:
            while True:
                cursor, batch = r.call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
                found.update(batch)
                if cursor == "0":
                    return sorted(found)


def fnv1a64(data):
    """The 64-bit FNV-1a hash of bytes (common/shard.c)."""
    h = 0xcbf29ce484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def jump_hash(key, n):
    """Lamping and Veach's jump consistent hash: key's bucket among n (common/shard.c)."""
    b, j = -1, 0
    while j < n:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(room, n):
    """The index of room's shard among n, as every node computes it."""
    return jump_hash(fnv1a64(room.lower().encode()), n)


class RedisShards:
    """n throw-away redis-servers standing in for one Redis: its url is the list
    of theirs (SIGNAL_REDIS_URL with n shards), for_room() the one a room lives
    on. What a test asks of "the Redis" is asked of every shard where that makes
    sense (numsub sums, channels and keys unite, stop and start all), and of the
    first otherwise (command, port: membership `redis` asks the first shard)."""

    def __init__(self, tmpdir, n, **kw):
        self.shards = [Redis(tmpdir, **kw) for _ in range(n)]

    @property
    def url(self):
        return self.url_for()

    def url_for(self, **kw):
        return ",".join(s.url_for(**kw) for s in self.shards)

    def for_room(self, room):
        return self.shards[shard_of(room, len(self.shards))]

    @property
    def port(self):
        return self.shards[0].port

    @property
    def password(self):
        return self.shards[0].password

    @property
    def proc(self):
        return self.shards[0].proc

    def start(self):
        for s in self.shards:
            s.start()

    def stop(self):
        for s in self.shards:
            s.stop()

    def alive(self):
        return all(s.alive() for s in self.shards)

    def command(self, *args, **kw):
        return self.shards[0].command(*args, **kw)

    def numsub(self, channel):
        return sum(s.numsub(channel) for s in self.shards)

    def channels(self, pattern):
        return sorted(set().union(*(s.channels(pattern) for s in self.shards)))

    def keys(self, pattern, db=None):
        return sorted(set().union(*(s.keys(pattern, db=db) for s in self.shards)))


def shared_redis(tmpdir):
    """The session's Redis: SIGNAL_TEST_REDIS_SHARDS=N (N > 1) makes it N shards."""
    n = int(os.environ.get("SIGNAL_TEST_REDIS_SHARDS") or 1)
    return RedisShards(tmpdir, n) if n > 1 else Redis(tmpdir)


class RedisConn:
    """A raw RESP connection (bounded by socket timeouts); tls: an ssl.SSLContext to speak TLS with."""

    def __init__(self, port, timeout=5.0, password=None, user=None, db=None, tls=None):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        if tls:
            try:
                self.sock = tls.wrap_socket(self.sock, server_hostname=HOST)
            except BaseException:
                self.sock.close()
                raise
        self.buf = b""
        try:
            if password is not None:
                self.call(*(["AUTH", user, password] if user else ["AUTH", password]))
            if db is not None:
                self.call("SELECT", db)
        except BaseException:
            self.sock.close()
            raise

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
    return admit(node, room, sub, claims, make_jwt(claims), via=via, **(client_kw or {}))


def admit(node, room, sub, claims, tok, **connect_kw):
    """Connects to room with the token tok (of claims) and reads the welcome
    (the client is aborted if it does not come); returns the Member."""
    client = node.connect(room, tok, **connect_kw)
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


# ---------------------------------------------------------------------------
# Clusters: several nodes sharing one Redis (issue 3)

def cluster_env(redis_url, node_id, env=None):
    """A node's environment in a cluster: env plus SIGNAL_REDIS_URL (unless env has one) and SIGNAL_NODE_ID."""
    e = dict(env or {})
    e.setdefault("SIGNAL_REDIS_URL", redis_url)
    e["SIGNAL_NODE_ID"] = node_id
    return e


def wait_ready(node, timeout=T):
    """Waits until node's /readyz answers 200; returns node. A node with membership
    `redis` answers joins 1013 until its membership connection is up, a moment after
    its port opens: tests that join at once wait for this first. The reference
    server has no /readyz: it is taken as ready."""
    if IS_PEER:
        return node
    poll(lambda: node.http("GET", "/readyz", timeout=timeout).status,
         until=lambda status: status == 200, timeout=timeout, what=f"{node.port}/readyz 200")
    return node


def start_cluster(nodeset, redis_url, n=3, env=None, name="node"):
    """n nodes of nodeset sharing the Redis at redis_url, each with its own (unique)
    SIGNAL_NODE_ID; with membership `redis`, once each is ready (wait_ready)."""
    tag = uuid.uuid4().hex[:6]
    out = [nodeset.start(cluster_env(redis_url, f"{name}-{tag}-{i}", env)) for i in range(n)]
    if (env or {}).get("SIGNAL_MEMBERSHIP") == "redis":
        for nd in out:
            wait_ready(nd)
    return out


_ROOM_IN_PATH = re.compile(r"/chat/realtime/([^/?]+)")


class Spread:
    """Several nodes of one cluster standing in for "the node" of a single-node test:
    the k-th connection to a room goes to nodes[k % len(nodes)], so a test that
    joins clients one after another gets them on different nodes (and an account's
    second connection on another node than its first) without changing its body.
    Plain HTTP and raw TCP use the first node."""

    def __init__(self, nodes):
        self.nodes = list(nodes)
        self._count = {}

    def pick(self, room):
        k = room.lower()
        i = self._count.get(k, 0)
        self._count[k] = i + 1
        return self.nodes[i % len(self.nodes)]

    # the Node interface the single-node tests use
    @property
    def port(self):
        return self.nodes[0].port

    @property
    def prefix(self):
        return self.nodes[0].prefix

    def route(self, room, query=""):
        return self.nodes[0].route(room, query)

    def connect(self, room, tok, via="tk", headers=None, **kw):
        return self.pick(room).connect(room, tok, via=via, headers=headers, **kw)

    def ws(self, path, headers=None, **kw):
        m = _ROOM_IN_PATH.search(path)
        n = self.pick(m.group(1)) if m else self.nodes[0]
        return n.ws(path, headers=headers, **kw)

    def http(self, method, path, headers=None, body=b"", timeout=None):
        return self.nodes[0].http(method, path, headers=headers, body=body, timeout=timeout)

    def alive(self):
        return all(n.alive() for n in self.nodes)

    def logs(self, limit=8000):
        return "\n".join(f"=== node {n.env.get('SIGNAL_NODE_ID')} (port {n.port}, exit {n.proc.poll()}) ===\n"
                         f"{n.logs(limit)}" for n in self.nodes)


def poll(fn, until=bool, timeout=T, interval=0.05, what="condition"):
    """Calls fn() until until(value) holds (bounded by timeout); returns that value.
    For state that can only be polled (Redis PUBSUB, keys), never for events a client receives."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise Timeout(f"{what}: not reached within {timeout} s (last value: {value!r})")
        time.sleep(interval)


def is_signal(type_=None, sender=None):
    """A predicate on packets: a webrtc.signal (of type_, from sender: a Member or an account id)."""
    sid = sender.sub if isinstance(sender, Member) else sender

    def pred(p):
        if p.get("type") != "webrtc.signal":
            return False
        d = p["data"]
        return (type_ is None or d.get("type") == type_) and (sid is None or d.get("senderAccountId") == sid)
    return pred


class Inbox:
    """Everything one member receives, kept in arrival order. wait_for() reads until
    a packet matching a predicate is there (others are kept, not dropped), so a
    test can wait for one event among unrelated ones and check the whole stream
    (no duplicates, order) afterwards."""

    def __init__(self, member):
        self.member = member
        self.log = []

    def drain(self):
        """Reads what is already waiting, without blocking."""
        while self.member.c.pending():
            self.log.append(self.member.recv())
        return self.log

    def wait_for(self, pred, timeout=T, what="a matching packet", start=0):
        """The first packet from log index start on that matches pred (reading more as needed)."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.log):
                if pred(self.log[i]):
                    return self.log[i]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"{self.member.sub}: {what} not received within {timeout} s; "
                              f"last packets: {json.dumps(self.log[-8:])[:3000]}")
            try:
                self.log.append(self.member.recv(left))
            except Timeout:
                pass

    def signals(self, type_=None, sender=None):
        """The data of every logged webrtc.signal of type_ from sender."""
        pred = is_signal(type_, sender)
        return [p["data"] for p in self.log if pred(p)]

    def presence(self):
        """(type, account id) of every logged user-joined / user-left, in order."""
        return [(p["data"]["type"], p["data"]["senderAccountId"]) for p in self.log
                if p.get("type") == "webrtc.signal" and p["data"].get("type") in ("user-joined", "user-left")]


def shared_spread(holder, key, nodeset, redis_url, env=None, n=3):
    """Body of a function-scoped fixture standing in for a module's shared node: yields
    holder[key], a Spread of n nodes (started on first use, and again after one died).
    A node that dies during the test fails that test with its logs; the others are
    still stopped and checked (exit code 0) at module teardown."""
    s = holder.get(key)
    if s is None or not s.alive():
        s = holder[key] = Spread(start_cluster(nodeset, redis_url, n, env, name=key))
    yield s
    dead = [nd for nd in s.nodes if not nd.alive()]
    if dead:
        for nd in dead:
            nd.reported = True
        pytest.fail(f"a node died during this test\n{s.logs()}")


class SpreadNodes:
    """Stands in for the `nodes` fixture in the cluster variants of single-node tests:
    start(env) starts n nodes with env sharing the Redis at redis_url and returns
    them as one Spread. A SIGNAL_NODE_ID in env becomes the prefix of the nodes' ids."""

    def __init__(self, nodeset, redis_url, n=3):
        self.nodeset = nodeset
        self.redis_url = redis_url
        self.n = n

    def start(self, env=None, **kw):
        env = dict(env or {})
        name = env.pop("SIGNAL_NODE_ID", "spread")
        redis_url = env.pop("SIGNAL_REDIS_URL", self.redis_url)
        tag = uuid.uuid4().hex[:6]
        return Spread([self.nodeset.start(cluster_env(redis_url, f"{name}-{tag}-{i}", env), **kw)
                       for i in range(self.n)])


def single_node_tests(module, only=None, exclude=()):
    """The test functions of a single-node test module, to be run again by a cluster
    variant module (globals().update(single_node_tests(test_x))) with its own fixtures."""
    names = [n for n in dir(module) if n.startswith("test_") and callable(getattr(module, n))]
    if only is not None:
        missing = set(only) - set(names)
        assert not missing, f"{module.__name__} has no {sorted(missing)}"
        names = [n for n in names if n in only]
    missing = set(exclude) - set(names)
    assert not missing, f"{module.__name__} has no {sorted(missing)}"
    return {n: getattr(module, n) for n in names if n not in exclude}
