"""Abuse that needs no valid token or hurts the node itself: running out of
file descriptors, idle sockets that never finish their request, and a flooder
that never reads (it must still learn why it was closed)."""

import os
import select
import socket
import time

from harness import HOST, T, c_only, join_room, new_room, poll
from test_operations import metrics, value
from wsclient import OP_TEXT, WSClient

pytestmark = c_only


def idle_sockets(port, count):
    """count TCP connections that never send a request."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((HOST, port))
        socks.append(s)
    return socks


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_lines(node, event):
    return [line for line in node.stderr().splitlines() if f'"event":"{event}"' in line]


def closed_by_peer(sock, deadline):
    """Whether the node closed sock (EOF or reset) before deadline."""
    while time.monotonic() < deadline:
        if select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
            try:
                return sock.recv(1) == b""
            except ConnectionResetError:
                return True
    return False


def test_out_of_descriptors_pauses_accepting_instead_of_spinning(nodes):
    # 96 descriptors, and handshakes allowed to take them all.
    node = nodes.start({"SIGNAL_MAX_HANDSHAKES": "1000"}, nofile=96)
    socks = idle_sockets(node.port, 120)
    poll(lambda: log_lines(node, "accept_paused"), what="the node to run out of descriptors")
    # Out of descriptors for a whole second: a spinning accept loop burns the
    # CPU and logs every failed accept().
    lines, cpu = len(node.stderr().splitlines()), cpu_seconds(node.proc.pid)
    time.sleep(1.0)  # the window measured, not a synchronisation
    assert cpu_seconds(node.proc.pid) - cpu < 0.2
    assert len(node.stderr().splitlines()) - lines <= 1
    for s in socks:
        s.close()
    # Descriptors come back: the node accepts again, says so once, counts it.
    a, b = join_room(node, new_room(), 2)
    a.send("hello")
    b.expect_signal("hello", a)
    ms = metrics(node.port)
    assert value(ms, "signal_fd_exhaustions_total") == 1
    assert value(ms, "signal_accept_paused") == 0
    assert len(log_lines(node, "accept_paused")) == 1
    assert len(log_lines(node, "accept_resumed")) == 1


def test_idle_sockets_cannot_crowd_out_a_member(nodes):
    node = nodes.start({"SIGNAL_MAX_HANDSHAKES": "16"}, nofile=96)
    socks = idle_sockets(node.port, 150)  # more than the node has descriptors
    deadline = time.monotonic() + T
    # The oldest go first, as newer ones arrive.
    assert closed_by_peer(socks[0], deadline)
    a, b = join_room(node, new_room(), 2)
    a.send("hello")
    b.expect_signal("hello", a)
    ms = metrics(node.port)
    assert value(ms, "signal_fd_exhaustions_total") == 0
    assert value(ms, "signal_handshakes_dropped_total") >= 150 - 16
    assert value(ms, "signal_handshakes") <= 16
    for s in socks:
        s.close()


def flood(client, frame, count):
    """Writes count frames without reading anything; stops early if the
    connection fails (the node reset it). Returns the frames written."""
    data = frame * count
    try:
        client.send_raw(data, timeout=T)
    except OSError:
        return 0
    return count


def test_flooder_that_never_reads_sees_its_errors_and_1008(node):
    room = new_room()
    a, b = join_room(node, room, 2)
    frame = WSClient.build_frame(OP_TEXT, '{"type":"seq","data":{"i":1}}')
    flood(a.c, frame, 20000)
    info = a.c.recv_close(timeout=T)
    assert info.how != "reset", info
    assert info.code == 1008, info
    limited = [m for m in info.messages if '"rate_limited"' in m]
    assert len(limited) >= 1000, len(limited)
    while (p := b.recv())["data"]["type"] == "seq":
        pass
    assert p["data"]["type"] == "user-left", p
    # the socket lingered until the flooder closed it
    poll(lambda: value(metrics(node.port), "signal_lingering_closes_total", end="peer_closed"),
         what="the lingering close to end")
