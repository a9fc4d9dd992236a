"""Shutdown: SIGTERM closes clients with 1001 and exits 0; SIGNAL_DRAIN_S."""

import signal
import time

from harness import HOST, T, c_only, join, join_room, new_account, new_room, token
from wsclient import HandshakeError


def test_sigterm_closes_clients_1001_and_exits_0(nodes):
    n = nodes.start()
    r1, r2 = new_room(), new_room()
    a, b = join_room(n, r1, 2)
    c = join(n, r2)
    a2 = join(n, r1, a.sub)
    n.proc.send_signal(signal.SIGTERM)
    for m in (a, b, c, a2):
        info = m.c.recv_close(timeout=T)
        assert info.code == 1001, info
        # nothing but the close: no user-left storm while shutting down
        assert all('"user-left"' not in x for x in info.messages), info.messages
    rc = n.proc.wait(timeout=20)
    assert rc == 0, n.logs()


def test_sigterm_with_idle_and_half_open_connections(nodes):
    """Clients that never answer the close, and a TCP connection that never finished
    its handshake, do not keep the node from exiting."""
    import socket
    n = nodes.start()
    m = join(n, new_room())
    raw = socket.create_connection((HOST, n.port), timeout=5)
    raw.sendall(b"GET /api/chat/realtime/")
    try:
        n.proc.send_signal(signal.SIGTERM)
        rc = n.proc.wait(timeout=30)
        assert rc == 0, n.logs()
    finally:
        raw.close()
    assert m is not None


@c_only
def test_drain_then_1001(nodes):
    drain = 4
    n = nodes.start({"SIGNAL_DRAIN_S": str(drain)})
    room = new_room()
    a, b, c = join_room(n, room, 3)
    t0 = time.monotonic()
    n.proc.send_signal(signal.SIGTERM)
    # the node stops accepting: new connections are refused (or answered 503)
    deadline = t0 + drain - 0.5
    refused = False
    while not refused:
        assert time.monotonic() < deadline, "still accepting connections while draining"
        try:
            probe_room = new_room()  # not the room under test: no user-joined there
            x = n.connect(probe_room, token(new_account(), [probe_room]))
            x.abort()
            time.sleep(0.05)
        except HandshakeError as e:
            assert e.status == 503, e.response
            refused = True
        except (ConnectionRefusedError, ConnectionResetError, OSError):
            refused = True
    # connected clients go on meanwhile
    a.send("during-drain", {"n": 1})
    b.expect_signal("during-drain", a)
    c.expect_signal("during-drain", a)
    b.close()  # a client that finishes by itself during the drain
    a.expect_left(b)
    c.expect_left(b)
    # then the rest are closed with 1001
    for m in (a, c):
        info = m.c.recv_close(timeout=drain + T)
        assert info.code == 1001, info
    assert time.monotonic() - t0 >= drain - 1, "closed before the drain time"
    rc = n.proc.wait(timeout=20)
    assert rc == 0, n.logs()
