"""The container image and the compose cluster, for real: the images are built with
podman from docker/Dockerfile (the node, Redis and HAProxy targets), the cluster is
started from docker-compose.yml with podman-compose, and two WebSocket clients meet
in one room through HAProxy's published port, each on another node (read from the
nodes' JSON logs), and exchange signals both ways; the image serves the demo page
and its tokens under --dev (as the compose nodes run), and 404 without.
Everything is removed at the end but the base image (debian:bookworm-slim, made
locally by tools/base-image.sh and kept as a cache).

Deselect with -m "not container". Skipped without podman/podman-compose and in the
sanitizer run (SIGNAL_TEST_ASAN=1: the image is not a sanitizer build). About 1 min
with the base image cached, 1.5 min without, on 2 cores; bounded by DEADLINE_S.
What a killed run left behind (its pid is in the names) is removed by the next run."""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

import harness
from harness import HOST, T, Balancer, claims_for, free_port, make_jwt, new_account, new_room
from wsclient import Timeout

ROOT = harness.ROOT
DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
COMPOSE_FILE = os.path.join(ROOT, "docker-compose.yml")
DEV_ENV = os.path.join(ROOT, "docker", "dev.env")
BASE_IMAGE_SCRIPT = os.path.join(ROOT, "tools", "base-image.sh")
CONTAINERS_CONF = os.environ.get("CONTAINERS_CONF") or os.path.join(ROOT, "docker", "containers.conf")
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
PODMAN = shutil.which("podman")
PODMAN_COMPOSE = shutil.which("podman-compose")
NODES = ["node-1", "node-2", "node-3"]
TARGETS = ["redis", "haproxy", "node"]  # docker/Dockerfile stages; the node last (the slow one)
DEADLINE_S = 345  # the whole test, cold cache included
MAX_IMAGE_BYTES = 100_000_000

pytestmark = [
    harness.c_only,
    pytest.mark.container,
    pytest.mark.skipif(os.environ.get("SIGNAL_TEST_ASAN") == "1",
                       reason="SIGNAL_TEST_ASAN=1: the container image is a Release build, not a sanitizer build"),
    pytest.mark.skipif(PODMAN is None or PODMAN_COMPOSE is None,
                       reason="podman and podman-compose are needed (tools/setup.sh installs them)"),
]


def dev_secret():
    """SIGNAL_JWT_SECRET from docker/dev.env, as the nodes read it."""
    with open(DEV_ENV) as f:
        for line in f:
            line = line.strip()
            if line.startswith("SIGNAL_JWT_SECRET="):
                return line.split("=", 1)[1]
    raise AssertionError(f"no SIGNAL_JWT_SECRET in {DEV_ENV}")


def dechunk(body):
    """An HTTP/1.1 chunked body, decoded (HAProxy's stats page is chunked)."""
    out = []
    while body:
        size_line, _, rest = body.partition("\r\n")
        size = int(size_line.split(";")[0].strip() or "0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2:]
    return "".join(out)


class Stack:
    """The images and the compose project of one test run, with unique names; every
    command bounded by the test's deadline."""

    def __init__(self, tmp_path):
        self.start = time.monotonic()
        self.deadline = self.start + DEADLINE_S
        self.tmp = str(tmp_path)
        self.project = f"signaltest{os.getpid()}{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.images = {t: f"localhost/signal-{t}:{self.project}" for t in TARGETS}
        self.env = harness.node_base_env({
            "CONTAINERS_CONF": CONTAINERS_CONF,
            "SIGNAL_PORT": self.port,
            "SIGNAL_NODE_IMAGE": self.images["node"],
            "SIGNAL_REDIS_IMAGE": self.images["redis"],
            "SIGNAL_HAPROXY_IMAGE": self.images["haproxy"],
        })
        self.timings = {}
        self.up = False

    # -- commands --
    def remaining(self):
        return self.deadline - time.monotonic()

    def run(self, args, timeout=60, check=True, what=None, log=None):
        """Runs a command (bounded by timeout and by the test's deadline); returns (rc, stdout, stderr)."""
        limit = min(timeout, max(1.0, self.remaining()))
        what = what or " ".join(args[:3])
        out = open(log, "w+") if log else subprocess.PIPE
        try:
            p = subprocess.run(args, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT if log else subprocess.PIPE, timeout=limit, cwd=ROOT)
        except subprocess.TimeoutExpired:
            tail = self._tail(log) if log else ""
            raise Timeout(f"{what}: not done within {limit:.0f} s{tail}")
        finally:
            if log:
                out.close()
        stdout = p.stdout.decode("utf-8", "replace") if p.stdout else ""
        stderr = p.stderr.decode("utf-8", "replace") if p.stderr else ""
        if check and p.returncode != 0:
            tail = self._tail(log) if log else f"\n{stdout[-3000:]}\n{stderr[-3000:]}"
            raise AssertionError(f"{what} failed with {p.returncode}{tail}")
        return p.returncode, stdout, stderr

    @staticmethod
    def _tail(log, n=40):
        with open(log, errors="replace") as f:
            return "\n--- " + log + " (tail) ---\n" + "".join(f.readlines()[-n:])

    def podman(self, *args, timeout=30, check=True):
        return self.run([PODMAN, *args], timeout=timeout, check=check, what=f"podman {' '.join(args[:2])}")

    def compose(self, *args, timeout=60, check=True):
        return self.run([PODMAN_COMPOSE, "-p", self.project, "-f", COMPOSE_FILE, *args], timeout=timeout,
                        check=check, what=f"podman-compose {args[0]}",
                        log=os.path.join(self.tmp, f"compose-{args[0]}.log"))

    def timed(self, name, fn, *args, **kw):
        t0 = time.monotonic()
        try:
            return fn(*args, **kw)
        finally:
            self.timings[name] = time.monotonic() - t0

    # -- steps --
    def base_image(self):
        self.run([BASE_IMAGE_SCRIPT], timeout=180, what="tools/base-image.sh",
                 log=os.path.join(self.tmp, "base-image.log"))

    def build(self, target):
        # --layers=false: no intermediate images are left behind (nothing to clean but the tag);
        # --force-rm: nor build containers when it fails.
        self.run([PODMAN, "build", "--isolation=chroot", "--pull=never", "--format", "docker", "--layers=false",
                  "--force-rm",
                  "-f", DOCKERFILE, "--target", target, "-t", self.images[target], ROOT],
                 timeout=300, what=f"podman build --target {target}",
                 log=os.path.join(self.tmp, f"build-{target}.log"))

    def container(self, service):
        return f"{self.project}_{service}_1"

    def compose_up(self):
        self.up = True
        self.compose("up", "-d", "--no-build", timeout=90)

    def running(self, service):
        rc, out, _ = self.podman("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}",
                                 self.container(service), check=False)
        return rc == 0 and out.split()[0] == "true", out.strip()

    def logs(self, service):
        _, out, err = self.podman("logs", self.container(service), check=False)
        return out + err

    def all_logs(self, limit=4000):
        return "\n".join(f"--- {s} (tail) ---\n{self.logs(s)[-limit:]}" for s in ["redis", *NODES, "haproxy"])

    def log_records(self, service):
        """The node's JSON log lines, parsed (other lines skipped)."""
        records = []
        for line in self.logs(service).splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
        return records

    def haproxy_servers(self):
        """{server: (status, current sessions)} from HAProxy's stats page, read inside its container."""
        script = ('exec 3<>/dev/tcp/127.0.0.1/8404 && printf "GET /stats;csv HTTP/1.0\\r\\n\\r\\n" >&3 '
                  '&& timeout 5 cat <&3')
        rc, out, _ = self.podman("exec", self.container("haproxy"), "bash", "-c", script, timeout=15, check=False)
        if rc != 0 or "\r\n\r\n" not in out:
            return {}
        head, body = out.split("\r\n\r\n", 1)
        if "transfer-encoding: chunked" in head.lower():
            body = dechunk(body)
        body = body.lstrip("# ")
        rows = list(csv.DictReader(io.StringIO(body)))
        return {r["svname"]: (r["status"], int(r["scur"] or 0)) for r in rows
                if r.get("pxname") == "nodes" and r.get("svname") != "BACKEND"}

    def wait(self, what, fn, timeout=60, interval=0.25):
        """Polls fn() (container state, bounded) until it returns a true value; fails early when a container died."""
        deadline = min(time.monotonic() + timeout, self.deadline)
        last = None
        while True:
            last = fn()
            if last:
                return last
            for s in ["redis", *NODES, "haproxy"]:
                alive, state = self.running(s)
                if not alive:
                    raise AssertionError(f"{s} is not running ({state}) while waiting for {what}\n{self.all_logs()}")
            if time.monotonic() >= deadline:
                raise Timeout(f"{what}: not reached within {timeout} s (last: {last!r})\n{self.all_logs()}")
            time.sleep(interval)

    def ok(self, *args):
        """A podman command exits 0 (bounded)."""
        return self.podman(*args, timeout=15, check=False)[0] == 0

    def all_up(self):
        servers = self.haproxy_servers()
        return servers if sorted(servers) == NODES and all(st == "UP" for st, _ in servers.values()) else None

    def wait_ready(self):
        for n in NODES:
            c = self.container(n)
            # The image's HEALTHCHECK (liveness, /healthz), then readiness (/readyz: Redis reached).
            self.wait(f"{n} healthy (podman healthcheck run)", lambda: self.ok("healthcheck", "run", c))
            self.wait(f"{n} ready (signal-healthcheck /readyz)",
                      lambda: self.ok("exec", c, "signal-healthcheck", "/readyz"))
        self.wait("HAProxy sees node-1..3 UP", self.all_up)

    def sweep_stale(self):
        """Removes what earlier runs killed before their teardown left: containers, networks and
        images named signaltest<pid>..., whose pid is gone."""
        def dead(name):
            m = re.match(r"signaltest(\d+)[0-9a-f]{6}", name)
            if not m or int(m.group(1)) == os.getpid():
                return None
            try:
                os.kill(int(m.group(1)), 0)
                return None
            except ProcessLookupError:
                return m.group(0)
            except PermissionError:
                return None
        stale = set()
        _, out, _ = self.podman("ps", "-a", "--format", '{{index .Labels "io.podman.compose.project"}}', check=False)
        _, nets, _ = self.podman("network", "ls", "--format", "{{.Name}}", check=False)
        _, imgs, _ = self.podman("images", "--format", "{{.Tag}}", "--filter", "reference=localhost/signal-*",
                                 check=False)
        for name in (out + nets + imgs).split():
            if dead(name):
                stale.add(dead(name))
        for project in sorted(stale):
            _, ids, _ = self.podman("ps", "-aq", "--filter", f"label=io.podman.compose.project={project}", check=False)
            if ids.split():
                self.podman("rm", "-f", "-t", "2", *ids.split(), check=False, timeout=60)
            self.podman("network", "rm", "-f", f"{project}_default", check=False)
            for t in TARGETS:
                if self.ok("image", "exists", f"localhost/signal-{t}:{project}"):
                    self.podman("rmi", "-f", f"localhost/signal-{t}:{project}", check=False)
        return sorted(stale)

    def teardown(self):
        """Removes what this run made (bounded even when the deadline passed); returns the errors."""
        errors = []

        def attempt(what, fn):
            try:
                fn()
            except BaseException as e:  # keep cleaning
                errors.append(f"{what}: {e}")

        def force(args, timeout=60):
            p = subprocess.run([PODMAN, *args], env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout)
            return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

        if self.up:
            attempt("compose down", lambda: subprocess.run(
                [PODMAN_COMPOSE, "-p", self.project, "-f", COMPOSE_FILE, "down", "-t", "5"], env=self.env,
                stdin=subprocess.DEVNULL, capture_output=True, timeout=120, cwd=ROOT))
        # Whatever compose left (a failed up), then the network (podman-compose 1.0.3 keeps it).
        _, ids, _ = force(["ps", "-aq", "--filter", f"label=io.podman.compose.project={self.project}"])
        if ids.split():
            attempt("podman rm", lambda: force(["rm", "-f", "-t", "2", *ids.split()]))
        rc, _, _ = force(["network", "exists", f"{self.project}_default"])
        if rc == 0:
            attempt("network rm", lambda: force(["network", "rm", "-f", f"{self.project}_default"]))
        for img in self.images.values():
            rc, _, _ = force(["image", "exists", img])
            if rc == 0:
                attempt(f"rmi {img}", lambda img=img: force(["rmi", "-f", img]))
        # Check that nothing is left.
        _, left, _ = force(["ps", "-aq", "--filter", f"label=io.podman.compose.project={self.project}"])
        if left.split():
            errors.append(f"containers left: {left.split()}")
        if force(["network", "exists", f"{self.project}_default"])[0] == 0:
            errors.append(f"network {self.project}_default left")
        for img in self.images.values():
            if force(["image", "exists", img])[0] == 0:
                errors.append(f"image {img} left")
        return errors


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        t0 = time.monotonic()
        errors = s.teardown()
        s.timings["teardown"] = time.monotonic() - t0
        s.timings["total"] = time.monotonic() - s.start
        print("\ncontainer test timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in s.timings.items()),
              file=sys.stderr)
        if errors:
            pytest.fail("teardown: " + "; ".join(errors))


# The image alone, without network: a node in production mode, then one with
# --dev, each asked for the demo page and a token (bash alone: no curl in the
# image). Prints "<mode> <path> <status>" lines and "<mode> exit <code>".
MODES_SCRIPT = r"""
check() {
  mode=$1; port=$2; shift 2
  SIGNAL_LISTEN=127.0.0.1:$port SIGNAL_ADMIN_LISTEN=127.0.0.1:$((port + 1)) signal-node "$@" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  for path in /demo/ "/demo/token?sub=a&room=0f8fad5b-d9cb-469f-a165-70867728950e" /demo/lib/nope.js; do
    exec 3<>/dev/tcp/127.0.0.1/$port
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$path" >&3
    status=
    IFS=$' \r' read -r -t 5 _ status _ <&3
    exec 3<&-
    echo "$mode $path ${status:-none}"
  done
  kill -TERM $pid
  wait $pid
  echo "$mode exit $?"
}
check prod 8080
check dev 8090 --dev
"""
DEMO_TOKEN = "/demo/token?sub=a&room=0f8fad5b-d9cb-469f-a165-70867728950e"


def connect(lb, room, token):
    """A member joined through the balancer: a welcome read within the deadline."""
    claims = harness.jwt_decode_unverified(token)[1]
    m = harness.admit(lb, room, claims["sub"], claims, token)
    welcome = m.welcome
    assert welcome["data"]["userId"] == claims["sub"] and welcome["data"]["roomId"] == room, welcome
    return m


def test_image_and_compose_cluster(stack):
    s = stack
    s.timed("sweep", s.sweep_stale)
    had_base = s.podman("image", "exists", BASE_IMAGE, check=False)[0] == 0
    s.timed("base image" + (" (cached)" if had_base else " (made)"), s.base_image)
    for t in TARGETS:
        s.timed(f"build {t}", s.build, t)

    # The node image: small, non-root, both ports, a HEALTHCHECK (kept by --format docker), SIGTERM.
    _, out, _ = s.podman("image", "inspect", s.images["node"])
    img = json.loads(out)[0]
    cfg = img["Config"]
    size = img["Size"]
    print(f"\nnode image: {size / 1e6:.1f} MB", file=sys.stderr)
    assert size < MAX_IMAGE_BYTES, f"the node image is {size / 1e6:.1f} MB (limit {MAX_IMAGE_BYTES / 1e6:.0f} MB)"
    assert cfg.get("User") == "10001:10001", cfg.get("User")
    assert {"8080/tcp", "9090/tcp"} <= set(cfg.get("ExposedPorts") or {}), cfg.get("ExposedPorts")
    assert cfg.get("StopSignal") == "SIGTERM", cfg.get("StopSignal")
    check = img.get("Healthcheck") or cfg.get("Healthcheck") or {}
    assert "/usr/local/bin/signal-healthcheck" in check.get("Test", []), check
    assert "SIGNAL_ADMIN_LISTEN=0.0.0.0:9090" in cfg.get("Env", []), cfg.get("Env")

    # The demo page is in the binary: the image serves it under --dev, and only then.
    t0 = time.monotonic()
    _, out, _ = s.podman("run", "--rm", "--network", "none", "--name", f"{s.project}_modes",
                         "--label", f"io.podman.compose.project={s.project}",
                         "-e", "SIGNAL_JWT_SECRET=modes-test-secret", "-e", "SIGNAL_DRAIN_S=0",
                         "--entrypoint", "bash", s.images["node"], "-c", MODES_SCRIPT, timeout=60)
    assert out.split("\n")[:-1] == [
        "prod /demo/ 404", f"prod {DEMO_TOKEN} 404", "prod /demo/lib/nope.js 404", "prod exit 0",
        "dev /demo/ 200", f"dev {DEMO_TOKEN} 200", "dev /demo/lib/nope.js 404", "dev exit 0",
    ], out
    s.timings["demo modes"] = time.monotonic() - t0

    s.timed("compose up", s.compose_up)
    s.timed("healthy", s.wait_ready)
    node1 = s.container("node-1")
    # No build tools in the runtime image; both binaries there.
    s.podman("exec", node1, "sh", "-c",
             "command -v signal-node signal-token >/dev/null"
             " && ! command -v cc && ! command -v gcc && ! command -v cmake")

    # One published port, HAProxy's on 127.0.0.1; the nodes' admin ports stay inside.
    for svc in ["redis", *NODES, "haproxy"]:
        _, ports, _ = s.podman("port", s.container(svc))
        expected = f"8080/tcp -> {HOST}:{s.port}" if svc == "haproxy" else ""
        assert ports.strip() == expected, f"{svc} publishes {ports.strip()!r}"
    lb = Balancer(s.port)
    r = lb.http("GET", "/metrics")
    assert r.status != 200, f"/metrics is served on the client port through HAProxy: {r}"

    t0 = time.monotonic()
    secret = dev_secret()
    room = new_room()
    alice = new_account("alice")
    # Alice's token from the harness, Bob's from signal-token inside the image (same dev secret).
    a = connect(lb, room, make_jwt(claims_for(alice, [room], name="Alice"), key=secret))
    assert a.welcome["data"]["participants"] == [], a.welcome
    bob = new_account("bob")
    _, tok, _ = s.podman("exec", node1, "signal-token", "--sub", bob, "--name", "Bob", "--rooms", room, "--ttl", "600")
    b = connect(lb, room, tok.strip())
    assert [p["accountId"] for p in b.welcome["data"]["participants"]] == [alice], b.welcome
    a.expect_joined(b)

    # Each landed on another node: the conn_open lines of the nodes' JSON logs.
    def landed():
        where = {}
        for n in NODES:
            for r in s.log_records(n):
                if r.get("event") == "conn_open" and r.get("account") in (alice, bob):
                    assert r.get("node") == n and r.get("room") == room, r
                    where.setdefault(r["account"], []).append(n)
        return where if len(where) == 2 else None
    where = s.wait("conn_open of both clients in the nodes' logs", landed, timeout=T)
    assert len(where[alice]) == 1 and len(where[bob]) == 1, where
    assert where[alice] != where[bob], f"both clients on {where[alice]}"
    conns = {n: c for n, (_, c) in s.haproxy_servers().items() if c}
    assert conns == {where[alice][0]: 1, where[bob][0]: 1}, conns

    # Signals both ways, across the two nodes through Redis.
    a.send("offer", {"sdp": "v=0 from alice"})
    assert b.expect_signal("offer", a)["data"] == {"sdp": "v=0 from alice"}
    b.send("answer", {"sdp": "v=0 from bob"}, to=alice)
    d = a.expect_signal("answer", b)
    assert d["data"] == {"sdp": "v=0 from bob"} and d["to"] == alice, d
    assert d["senderInfo"]["name"] == "Bob", d

    b.close()
    a.expect_left(b)
    a.close()
    s.wait("conn_close of both clients in the nodes' logs",
           lambda: {r["account"] for n in NODES for r in s.log_records(n)
                    if r.get("event") == "conn_close" and r.get("account") in (alice, bob) and "code" in r}
           == {alice, bob}, timeout=T)
    s.timings["clients"] = time.monotonic() - t0

    # Development mode (docker/dev.env): the demo page through HAProxy, and a
    # token from /demo/token that any node accepts (the nodes share the secret).
    t0 = time.monotonic()
    page = lb.http("GET", "/demo/")
    with open(os.path.join(ROOT, "web", "demo", "index.html"), "rb") as f:
        assert (page.status, page.body) == (200, f.read()), page
    assert page.headers["content-type"] == "text/html; charset=utf-8", page.headers
    carol = new_account("carol")
    r = lb.http("GET", f"/demo/token?sub={carol}&name=Carol&room={room}")
    assert r.status == 200 and r.headers["access-control-allow-origin"] == "*", r
    c = connect(lb, room, json.loads(r.body)["token"])
    assert c.welcome["data"]["participants"] == [], c.welcome
    c.close()
    s.timings["demo"] = time.monotonic() - t0

    # A stop drains and exits 0: SIGTERM reaches the node as PID 1, as a non-root user.
    t0 = time.monotonic()
    s.podman("stop", "-t", "10", s.container("haproxy"), timeout=30)
    s.podman("stop", "-t", "30", *[s.container(n) for n in NODES], timeout=60)
    for n in NODES:
        _, code, _ = s.podman("inspect", "-f", "{{.State.ExitCode}}", s.container(n))
        assert code.strip() == "0", f"{n} exited with {code.strip()} after SIGTERM\n{s.logs(n)[-3000:]}"
    s.timings["stop"] = time.monotonic() - t0
