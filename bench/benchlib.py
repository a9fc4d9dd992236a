"""What the bench scripts share: starting signal-node, the Node.js reference and
redis-server on free loopback ports (and stopping them, whatever happens),
reading a process's CPU time, RSS and open files from /proc, running
signal-bench with --json, and the A/B report (a table, or one JSON object).
The Python clients are the test suite's WebSocket client (tests/integration).
"""
import json
import os
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import Certificates, free_port, make_jwt  # noqa: E402
from wsclient import WSClient  # noqa: E402

SECRET = "bench-secret"
DEFAULT_BIN = os.path.join(ROOT, "build", "bin", "signal-node")
DEFAULT_BENCH = os.path.join(ROOT, "build", "bin", "signal-bench")
DEFAULT_PEER = "/tmp/peer-bench"
HZ = os.sysconf("SC_CLK_TCK")
MIB = 2 ** 20
# Both servers read these; the reference ignores the ones it does not know.
# Quiet logs, and a SIGTERM that closes every client at once.
BASE_ENV = {"SIGNAL_JWT_SECRET": SECRET, "SIGNAL_LOG_LEVEL": "warn", "SIGNAL_LOG_FORMAT": "text",
            "SIGNAL_DRAIN_S": "0", "SIGNAL_DRAIN_CLOSE_S": "0"}
# For the load scenarios: a rate limit that a bench's signals never meet.
NO_RATE_LIMIT = {"SIGNAL_RATE_PER_S": "1000000", "SIGNAL_RATE_BURST": "1000000"}
# How long a process may take to start (its port accepting) or to stop.
START_S = 15
STOP_S = 30
# Files a server may open or close for itself while clients connect.
FD_SLACK = 32


def start_node(binary, env):
    """Starts binary with env plus SIGNAL_LISTEN on a free port and the bench
    secret; returns (process, port) once the port listens. The
    caller stops the process."""
    port = free_port()
    full = dict(os.environ, SIGNAL_LISTEN=f"127.0.0.1:{port}", SIGNAL_JWT_SECRET=SECRET, **env)
    proc = subprocess.Popen([binary], env=full, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if not wait_listening(port, proc, START_S):
        proc.kill()
        proc.wait()
        raise SystemExit("node did not start")
    return proc, port


def tcp_sockets(ports, states):
    """{port: how many TCP sockets in one of states (hex, as in /proc/net/tcp:
    "01" established, "08" close-wait, "0A" listening) have it as their local
    port}, for each of ports. A server's open connections are its sockets on
    its port in the first two states; a client's close turns the first into
    the second."""
    n = dict.fromkeys(ports, 0)
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] in states:
                    port = int(fields[1].rsplit(":", 1)[1], 16)
                    if port in n:
                        n[port] += 1
    return n


def wait_listening(port, proc, timeout):
    """Waits until the port listens (the kernel accepts connections there; no
    connection is made, so the server holds none afterwards); returns False
    if proc exits first or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if tcp_sockets([port], {"0A"})[port]:
            return True
        time.sleep(0.01)
    return False


def setup_process():
    """Raises this process's open-file limit to its hard limit (children
    inherit it), and makes SIGTERM exit through the cleanup code (every
    process started is stopped) as Ctrl-C does."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def cpu_ticks(pid):
    """utime + stime of the process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_s(pids):
    """The CPU seconds (utime + stime) each process has used, as a list."""
    return [cpu_ticks(p) / HZ for p in pids]


def rss_bytes(pid):
    """The process's resident set size, in bytes."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fd_count(pid):
    """The number of files the process has open (each connection is one)."""
    size = os.stat(f"/proc/{pid}/fd").st_size  # the count, on Linux 6.2 and later
    return size if size else len(os.listdir(f"/proc/{pid}/fd"))


def join(port, i, room_size=2):
    """Client i, in room i // room_size, joined (its welcome read)."""
    room = str(uuid.UUID(int=i // room_size))
    tok = make_jwt({"sub": f"c{i}", "name": f"c{i}", "rooms": [room],
                    "exp": int(time.time()) + 3600}, key=SECRET)
    c = WSClient.connect("127.0.0.1", port, f"/api/chat/realtime/{room}?tk={tok}", timeout=30)
    c.recv_json(30)
    return c


@dataclass
class Target:
    """A server under test: its key in reports ("ours" or "reference") and the
    command that starts one node of it."""
    key: str
    argv: list


def add_target_args(ap, peer_default=DEFAULT_PEER, rounds=2, bench=True):
    """Adds the options the A/B scripts share: --bin, --peer, --bench (if
    bench), --rounds and --json (rounds=None: the script chooses)."""
    ap.add_argument("--bin", default=DEFAULT_BIN, help="signal-node binary")
    ap.add_argument("--peer", metavar="DIR", default=peer_default,
                    help="the Node.js reference: a copy of shared/peer after npm ci "
                         f"(default {peer_default})")
    if bench:
        ap.add_argument("--bench", default=DEFAULT_BENCH, help="signal-bench binary")
    ap.add_argument("--rounds", type=int, default=rounds,
                    help="A B rounds: each server measured this many times "
                         f"(default {rounds or '2 with --peer, else 1'})")
    ap.add_argument("--json", action="store_true", help="print one JSON object")


def targets(args):
    """The servers to measure, ours first: signal-node, and the reference
    when args.peer is set. Exits with a message when one is missing."""
    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"no signal-node at {args.bin}")
    out = [Target("ours", [args.bin])]
    if args.peer:
        server = os.path.join(args.peer, "server.js")
        if not os.path.isfile(server) or not os.path.isdir(os.path.join(args.peer, "node_modules")):
            raise SystemExit(f"no reference server with node_modules in {args.peer} "
                             "(cp -r /work/shared/peer DIR && cd DIR && npm ci)")
        out.append(Target("reference", ["node", server]))
    return out


def interleaved(rounds, tgts):
    """Yields (round, target) for A B A B ...: every target once per round."""
    for r in range(1, rounds + 1):
        for t in tgts:
            yield r, t


class Proc:
    """A process this script started, its output in an anonymous temporary
    file (shown when it fails)."""

    def __init__(self, argv, env=None):
        self.log = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                      stderr=subprocess.STDOUT)
        self.pid = self.popen.pid

    def tail(self, n=800):
        """The last n bytes of the process's output, as text."""
        self.log.seek(0, os.SEEK_END)
        self.log.seek(max(0, self.log.tell() - n))
        return self.log.read().decode(errors="replace")

    def stop(self):
        """Stops the process: SIGTERM, then SIGKILL if it has not exited
        within STOP_S."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


def start_server(stack, target, env, name):
    """Starts one node of target on a free loopback port with BASE_ENV plus env,
    stopped when stack closes; returns (Proc, port) once the port listens."""
    port = free_port()
    full = dict(os.environ, **BASE_ENV, SIGNAL_LISTEN=f"127.0.0.1:{port}", SIGNAL_NODE_ID=name,
                **env)
    proc = Proc(target.argv, full)
    stack.callback(proc.stop)
    if not wait_listening(port, proc.popen, START_S):
        raise RuntimeError(f"{target.key} node {name} did not start:\n{proc.tail()}")
    return proc, port


def redis_ping(port, tls=None):
    """True when the redis-server on port answers PING (over TLS when tls, a
    Certificates whose CA signed its certificate)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
            s = raw
            if tls:
                ctx = ssl.create_default_context(cafile=tls.path("ca.pem"))
                s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(stack, pubsub_limit=None, tls=None):
    """Starts redis-server on a free loopback port (no persistence; the default
    limits unless pubsub_limit, e.g. "0 0 0", replaces the pub/sub clients'
    output buffer limit; TLS only when tls, a Certificates, with its server
    certificate and no client certificates asked), stopped when stack closes;
    returns (Proc, port) once it answers PING."""
    port = free_port()
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-redis-"))
    argv = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", workdir]
    argv += tls.redis_args(port) if tls else ["--port", str(port)]
    if pubsub_limit:
        argv += ["--client-output-buffer-limit", f"pubsub {pubsub_limit}"]
    proc = Proc(argv)
    stack.callback(proc.stop)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and proc.popen.poll() is None:
        if redis_ping(port, tls):
            return proc, port
        time.sleep(0.01)
    raise RuntimeError(f"redis-server did not start:\n{proc.tail()}")


@dataclass
class Cluster:
    """Nodes of one target, and the redis-servers they share (none for one
    node; one per shard)."""
    nodes: list
    ports: list
    shards: list

    @property
    def redis(self):
        """The first (or only) redis-server, or None."""
        return self.shards[0] if self.shards else None

    @property
    def pids(self):
        """The nodes' process ids."""
        return [n.pid for n in self.nodes]

    @property
    def urls(self):
        """The nodes' WebSocket URLs."""
        return [f"ws://127.0.0.1:{p}" for p in self.ports]


def start_cluster(stack, target, count, env, pubsub_limit=None, shards=1, tls=False):
    """Starts count nodes of target (env added to each); more than one share
    new redis-servers, shards of them (SIGNAL_REDIS_URL lists them all), over
    TLS when tls (certificates made for the run with openssl). All are
    stopped when stack closes. Returns a Cluster."""
    redis = []
    if count > 1:
        certs = None
        if tls:
            certs = Certificates(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tls-")))
            env = dict(env, SIGNAL_REDIS_TLS_CA_FILE=certs.path("ca.pem"))
        for _ in range(shards):
            redis.append(start_redis(stack, pubsub_limit, certs))
        scheme = "rediss://localhost" if tls else "redis://127.0.0.1"
        env = dict(env, SIGNAL_REDIS_URL=",".join(f"{scheme}:{p}" for _, p in redis))
    nodes, ports = [], []
    for i in range(count):
        proc, port = start_server(stack, target, env, f"bench-{i}")
        nodes.append(proc)
        ports.append(port)
    return Cluster(nodes, ports, [proc for proc, _ in redis])


def fd_growth(pids, bases):
    """How many more files the processes have open together than bases: their
    new connections, give or take the few files a server opens and closes
    for itself (Node.js does, just after it starts)."""
    return sum(fd_count(p) - b for p, b in zip(pids, bases))


class Bench:
    """signal-bench, running with --json in its own process group (its workers
    included), killed when stack closes if it is still running."""

    def __init__(self, stack, binary, urls, options):
        argv = [binary, "--json", "--secret", SECRET, "--url", ",".join(urls)] + options
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, start_new_session=True)
        stack.callback(self.kill)

    def kill(self):
        """Kills the bench and its workers if they are still running."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def wait_connected(self, cluster, bases, count, timeout, stall_s=5.0):
        """Waits until the cluster's nodes hold count connections: the bench's
        connect phase is over. Cheap on the way (open files beyond bases, the
        nodes' counts before the bench started), exact at the end (their
        established sockets). If some connections fail, the count stops
        short: one that has not moved for stall_s seconds also ends the wait.
        Returns (monotonic time, connections held), or (None, held) when the
        bench ended or timeout seconds passed first."""
        deadline = time.monotonic() + timeout
        held, since, exact = -1, time.monotonic(), False
        while time.monotonic() < deadline and self.popen.poll() is None:
            now = None if exact else fd_growth(cluster.pids, bases)
            if exact or now >= count - FD_SLACK:
                exact, now = True, sum(tcp_sockets(cluster.ports, {"01"}).values())
            t = time.monotonic()
            if now >= count or (now == held and now > 0 and t - since >= stall_s):
                return t, now
            if now != held:
                held, since = now, t
            time.sleep(0.005)
        return None, max(held, 0)

    def result(self, timeout):
        """Waits (at most timeout seconds) for the bench to end; returns its
        report, parsed. Raises RuntimeError if it fails or takes too long."""
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"signal-bench took more than {timeout:.0f} s")
        if self.popen.returncode != 0:
            raise RuntimeError(f"signal-bench exited with {self.popen.returncode}: {err.strip()}")
        if err.strip():
            print(f"signal-bench: {err.strip()}", file=sys.stderr)
        return json.loads(out)


def bench_bound(connections, duration, drain=30, concurrency=200, connect_timeout=10):
    """A generous upper bound, in seconds, on a signal-bench run: start, the
    connect phase (one timeout per wave of concurrency), load and drain."""
    waves = -(-connections // concurrency)
    return 60 + connections / 1000 + waves * connect_timeout + duration + drain + 30


def wait_closed(cluster, bases, timeout):
    """Waits until the cluster's nodes hold no connection: no more open files
    than bases (their counts before the clients came) and no socket on their
    ports established or closed by the client only. Returns True, or False
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (fd_growth(cluster.pids, bases) <= 0
                and not any(tcp_sockets(cluster.ports, {"01", "08"}).values())):
            return True
        time.sleep(0.02)
    return False


def progress(msg):
    """One line of progress on stderr, so that the report stays clean."""
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Col:
    """One column of a report: the key in each run's figures, its header, its
    format, and kind: "cost" (ratio reference / ours), "rate" (ratio ours /
    reference) or None (no ratio)."""
    key: str
    head: str
    fmt: str = ".1f"
    kind: str = None


class Section:
    """One configuration's runs (each server, each round), then the median of
    each server's rounds and the ratio of the medians."""

    def __init__(self, title, cols, config):
        self.title, self.cols, self.config = title, cols, config
        self.runs = []

    def add(self, target, rnd, figures):
        """Records one run's figures (a dict with a key per column, and more)."""
        self.runs.append(dict(server=target.key, round=rnd, **figures))

    def medians(self):
        """{server: {column key: median over its rounds}} (None when no run has
        a value)."""
        out = {}
        for server in dict.fromkeys(r["server"] for r in self.runs):
            out[server] = {}
            for c in self.cols:
                vals = [r[c.key] for r in self.runs if r["server"] == server
                        and r.get(c.key) is not None]
                out[server][c.key] = statistics.median(vals) if vals else None
        return out

    def ratios(self, med):
        """{column key: ratio of the medians} for the cost and rate columns."""
        if "ours" not in med or "reference" not in med:
            return {}
        out = {}
        for c in self.cols:
            ours, ref = med["ours"][c.key], med["reference"][c.key]
            if c.kind and ours and ref:
                out[c.key] = ref / ours if c.kind == "cost" else ours / ref
        return out

    def to_json(self):
        """The section as a JSON-able dict."""
        med = self.medians()
        return {"title": self.title, "config": self.config, "runs": self.runs,
                "median": med, "ratio": self.ratios(med)}

    def print(self):
        """Prints the section as a table."""
        widths = [max(len(c.head), 9) for c in self.cols]

        def row(label, vals, missing="-"):
            """Prints one row: label, then vals' value for each column (a
            string as it is, missing for None)."""
            cells = []
            for c, w in zip(self.cols, widths):
                v = vals.get(c.key)
                text = missing if v is None else v if isinstance(v, str) else f"{v:{c.fmt}}"
                cells.append(f" {text:>{w}}")
            print(f"{label:<18}" + "".join(cells))

        print(f"\n{self.title}")
        print(f"{'':<18}" + "".join(f" {c.head:>{w}}" for c, w in zip(self.cols, widths)))
        for r in self.runs:
            row(f"{r['server']} round {r['round']}", r)
        med = self.medians()
        for server, vals in med.items():
            row(f"{server} median", vals)
        ratios = self.ratios(med)
        if ratios:
            row("ratio", {k: f"{v:.2f}x" for k, v in ratios.items()}, missing="")


def report(scenario, args, sections, notes=()):
    """Prints the sections: tables with the notes under them, or with
    args.json one JSON object (scenario, options, notes, sections)."""
    if args.json:
        print(json.dumps({"scenario": scenario, "options": vars(args), "notes": list(notes),
                          "sections": [s.to_json() for s in sections]}))
        return
    for s in sections:
        s.print()
    if notes:
        print()
    for n in notes:
        print(n)


def load_run(stack, bench_bin, cluster, connections, duration, options):
    """Runs signal-bench (connections, --duration duration, and options) against
    the cluster, killed when stack closes. Samples the CPU time of the nodes
    (summed) and of redis-server at the bench's start and end, and over a
    window inside its load: the load starts about 20 ms after the nodes hold
    every connection (the bench's connect phase is over), and the window
    leaves out a tenth of duration at each end. Returns (the bench's report,
    figures): figures has run_node_cpu_s and run_redis_cpu_s (the whole run),
    node_cpu_s, redis_cpu_s and window_s (the window's CPU and length; None if
    it could not be placed: connections failed, or this process woke up too
    late to sample its end before the load's),
    and connected (connections held when the load began)."""
    pids = cluster.pids
    rpids = [r.pid for r in cluster.shards]
    bases = [fd_count(p) for p in pids]
    before = cpu_s(pids + rpids)
    bound = bench_bound(connections, duration)
    bench = Bench(stack, bench_bin, cluster.urls,
                  ["--connections", str(connections), "--duration", str(duration)] + options)
    t, held = bench.wait_connected(cluster, bases, connections, bound)
    window, window_s = None, None
    if t is not None and held >= connections:
        time.sleep(max(0.0, t + duration / 10 - time.monotonic()))
        w0, t0 = cpu_s(pids + rpids), time.monotonic()
        time.sleep(max(0.0, t + duration * 9 / 10 - t0))
        w1, t1 = cpu_s(pids + rpids), time.monotonic()
        if t1 <= t + duration:  # before the load's end (a late wake-up can miss it)
            window, window_s = [b - a for a, b in zip(w0, w1)], t1 - t0
    rep = bench.result(bound)
    run = [b - a for a, b in zip(before, cpu_s(pids + rpids))]
    n = len(pids)
    figures = {
        "run_node_cpu_s": sum(run[:n]),
        "run_redis_cpu_s": sum(run[n:]) if rpids else None,
        "node_cpu_s": sum(window[:n]) if window else None,
        "redis_cpu_s": sum(window[n:]) if window and rpids else None,
        "redis_cpu_s_each": window[n:] if window and rpids else None,
        "window_s": window_s, "connected": held}
    return rep, figures


def saturation(stack, args, cluster, room_size):
    """Runs `signal-bench --saturate` in rooms of room_size against the cluster
    (args: bench, connections, duration, window, drain, connect_concurrency)
    and returns its figures: load_run's, the bench's counts, and its CPU per
    million deliveries and share of a core over the load's window (nodes
    summed, Redis summed) and over the whole run."""
    rep, fig = load_run(stack, args.bench, cluster, args.connections, args.duration,
                        ["--room-size", str(room_size), "--saturate",
                         "--window", str(args.window), "--drain", str(args.drain),
                         "--connect-concurrency", str(args.connect_concurrency)])

    def per_m(cpu):
        """The window's CPU per second over the bench's deliveries per second,
        per million, or None without a window."""
        if cpu is None:
            return None
        return per_million(cpu / fig["window_s"], rep["deliveries_per_s"])

    return dict(fig, deliveries_per_s=rep["deliveries_per_s"], lost=rep["lost"],
                reordered=rep["reordered"], errors=rep["errors"],
                node_cpu_per_m=per_m(fig["node_cpu_s"]), redis_cpu_per_m=per_m(fig["redis_cpu_s"]),
                node_cpu_pct=share(fig["node_cpu_s"], fig["window_s"]),
                redis_cpu_pct=share(fig["redis_cpu_s"], fig["window_s"]),
                run_node_cpu_per_m=per_million(fig["run_node_cpu_s"], rep["delivered"]),
                run_redis_cpu_per_m=per_million(fig["run_redis_cpu_s"], rep["delivered"]),
                bench=rep)


def share(cpu, seconds):
    """cpu seconds over that many seconds, as a percentage of one core, or
    None when either is missing."""
    return cpu / seconds * 100 if cpu is not None and seconds else None


def per_million(cpu, count):
    """CPU seconds per million of count, or None when either is missing or 0."""
    return cpu / count * 1e6 if cpu is not None and count else None
