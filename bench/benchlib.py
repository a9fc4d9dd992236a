"""What the bench scripts share: starting a node on a free loopback port,
reading a process's CPU time and RSS from /proc, and a joined client.
The clients are the test suite's WebSocket client (tests/integration)."""
import os
import socket
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import free_port, make_jwt  # noqa: E402
from wsclient import WSClient  # noqa: E402

SECRET = "bench-secret"
DEFAULT_BIN = os.path.join(ROOT, "build", "bin", "signal-node")


def start_node(binary, env):
    """Starts binary with env plus SIGNAL_LISTEN on a free port and the bench
    secret; returns (process, port) once the port accepts connections."""
    port = free_port()
    full = dict(os.environ, SIGNAL_LISTEN=f"127.0.0.1:{port}", SIGNAL_JWT_SECRET=SECRET, **env)
    proc = subprocess.Popen([binary], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("node did not start")
            time.sleep(0.01)


def cpu_ticks(pid):
    """utime + stime of the process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def join(port, i, room_size=2):
    """Client i, in room i // room_size, joined (its welcome read)."""
    room = str(uuid.UUID(int=i // room_size))
    tok = make_jwt({"sub": f"c{i}", "name": f"c{i}", "rooms": [room], "exp": int(time.time()) + 3600},
                   key=SECRET)
    c = WSClient.connect("127.0.0.1", port, f"/api/chat/realtime/{room}?tk={tok}", timeout=30)
    c.recv_json(30)
    return c
