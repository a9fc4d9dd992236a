"""Issue 9, flow control on the Redis bus (docs/cluster.md, "Backpressure"): a
node keeps a bounded amount of its publications on their way through Redis;
the rest waits in the node, in order, and goes out as the earlier ones come
back. Here Redis is stopped (SIGSTOP) while a member sends more than that
bound, so the node must hold, then give up waiting for the echoes (a stalled
subscriber), and when Redis goes on, everything arrives, once and in order."""

import contextlib
import os
import threading
import signal

import pytest

from harness import Inbox, Redis, is_signal, join, new_account, new_room, poll, start_cluster
from test_operations import metrics, value

pytestmark = pytest.mark.cluster

BIG = "x" * 60000  # 60 KB of data: 40 of them are over the node's 2 MiB bound
COUNT = 40


@pytest.fixture
def own_redis(tmp_base):
    r = Redis(tmp_base)
    yield r
    if r.proc and r.proc.poll() is None:
        os.kill(r.proc.pid, signal.SIGCONT)
    r.stop()


@contextlib.contextmanager
def redis_stalled(redis, node):
    """Stops redis (SIGSTOP) for the body, which sends through node; then,
    before it goes on (SIGCONT), waits until node holds publications and has
    given up waiting for their echoes (bus_stalled)."""
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        yield
        # Beyond the bound, publications wait in the node...
        poll(lambda: value(metrics(node.port), "signal_bus_held_bytes"), until=lambda v: v > 0,
             what="publications held by the sender's node")
        # ...until nothing has come back for a while: then the next go.
        poll(lambda: "bus_stalled" in node.logs(), what="the sender's node to give up on Redis")
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)


def test_publications_wait_for_a_stopped_redis_and_all_arrive(own_redis, nodes):
    r = own_redis
    # b reads 2.4 MB at once when Redis goes on: room in its send queue.
    n1, n2 = start_cluster(nodes, r.url, 2, name="flow", env={"SIGNAL_SEND_QUEUE_BYTES": "8388608"})
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    a.send("hello", {})
    b.expect_signal("hello", a)
    B = Inbox(b)

    with redis_stalled(r, n1):
        a.c.send_many_json([{"type": "big", "data": {"n": i, "pad": BIG}} for i in range(COUNT)])

    B.wait_for(lambda p: is_signal("big", a)(p) and p["data"]["data"]["n"] == COUNT - 1,
               what="a's last signal")
    assert [p["data"]["data"]["n"] for p in B.log if is_signal("big", a)(p)] == list(range(COUNT))
    ms = metrics(n1.port)
    assert value(ms, "signal_bus_dropped_total") == 0
    assert value(ms, "signal_bus_held_bytes") == 0
    assert value(ms, "signal_bus_slowdowns_total") == 0  # 2.4 MB held: below the pause bound


def test_flow_metrics_rest_at_zero(own_redis, nodes):
    r = own_redis
    n1, n2 = start_cluster(nodes, r.url, 2, name="calm")
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    for i in range(20):
        a.send("calm", {"n": i})
    for i in range(20):
        assert b.expect_signal("calm", a)["data"]["n"] == i
    # Everything came back: nothing is out, held, or slowed down.
    poll(lambda: value(metrics(n1.port), "signal_bus_unechoed_bytes"), until=lambda v: v == 0,
         what="n1's publications to have come back")
    ms = metrics(n1.port)
    assert value(ms, "signal_bus_held_bytes") == 0
    assert value(ms, "signal_bus_slowdowns_total") == 0
    assert value(ms, "signal_redis_subscriber_buffer_bytes") >= 0


def test_a_sender_is_paused_beyond_the_held_bound(own_redis, nodes):
    """Past 16 MiB held, the node stops reading the senders (TCP pushes back
    on them) rather than hold more, and reads them again once Redis is back."""
    r = own_redis
    many = 320  # 19 MB
    n1, n2 = start_cluster(nodes, r.url, 2, name="pause",
                           env={"SIGNAL_RATE_BURST": "1000", "SIGNAL_SEND_QUEUE_BYTES": "67108864"})
    room = new_room()
    a = join(n1, room, new_account("a"))
    b = join(n2, room, new_account("b"))
    a.expect_joined(b)
    B = Inbox(b)
    os.kill(r.proc.pid, signal.SIGSTOP)
    sender = threading.Thread(target=a.c.send_many_json, kwargs={"timeout": 60},
                              args=([{"type": "big", "data": {"n": i, "pad": BIG}} for i in range(many)],))
    try:
        sender.start()
        poll(lambda: value(metrics(n1.port), "signal_bus_slowdowns_total"), until=lambda v: v == 1,
             timeout=30, what="the node to stop reading its sender")
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
    B.wait_for(lambda p: is_signal("big", a)(p) and p["data"]["data"]["n"] == many - 1,
               timeout=60, what="a's last signal")
    sender.join(60)
    assert not sender.is_alive()
    assert [p["data"]["data"]["n"] for p in B.log if is_signal("big", a)(p)] == list(range(many))
    assert value(metrics(n1.port), "signal_bus_dropped_total") == 0
