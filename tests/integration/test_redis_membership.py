"""Membership `redis` (docs/protocol.md, "Membership"): the upgrade goes through,
then SISMEMBER decides (4403 / welcome); Redis unreachable gives 1013; the loop
never blocks on Redis; messages sent before the join completes are held."""

import socket
import threading
import time

import pytest

from harness import (BAD_REQUEST, FORBIDDEN, HOST, T, Redis, RedisConn, c_only, claims_for, free_port, join,
                     make_jwt, new_account, new_room, token, wait_ready)
from wsclient import HandshakeError, WSClosed


@pytest.fixture(scope="module")
def rnode(module_nodes, redis):
    return wait_ready(module_nodes.start({"SIGNAL_MEMBERSHIP": "redis", "SIGNAL_REDIS_URL": redis.url,
                                          "SIGNAL_NODE_ID": "redis-member-node"}))


def add_member(redis, room, sub, key="chat:{room}:members"):
    assert redis.command("SADD", key.replace("{room}", room.lower()), sub) in (0, 1)


def rjoin(node, redis, room, sub=None, **kw):
    sub = sub or new_account()
    add_member(redis, room, sub)
    # the token's rooms claim plays no part with membership redis
    return join(node, room, sub, rooms=None, **kw)


class RedisSleep:
    """DEBUG SLEEP on a raw connection, in the background; .done tells when Redis woke up."""

    def __init__(self, redis, seconds):
        self.redis = redis
        self.conn = RedisConn(redis.port, timeout=seconds + 10)
        self.done = threading.Event()
        self.conn.send("DEBUG", "SLEEP", str(seconds))
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()
        self._confirm_blocked()

    def _wait(self):
        try:
            self.conn.reply()
        finally:
            self.done.set()

    def _confirm_blocked(self):
        """A PING on another connection must go unanswered: Redis is asleep."""
        probe = RedisConn(self.redis.port, timeout=5)
        try:
            for _ in range(3):
                probe.send("PING")
                try:
                    probe.reply(timeout=0.5)
                except (TimeoutError, OSError):
                    return  # no answer: asleep
            pytest.fail("Redis did not go to sleep")
        finally:
            probe.close()

    def wait(self):
        assert self.done.wait(30), "DEBUG SLEEP never returned"
        self.thread.join(5)
        self.conn.close()


def test_member_gets_welcome(rnode, redis):
    room = new_room()
    a = rjoin(rnode, redis, room)
    assert a.welcome["data"]["roomId"] == room and a.welcome["data"]["participants"] == []
    b = rjoin(rnode, redis, room)
    a.expect_joined(b)
    assert [p["accountId"] for p in b.welcome["data"]["participants"]] == [a.sub]
    b.send("offer", {"x": 1}, to=a.sub)
    assert a.expect_signal("offer", b)["data"] == {"x": 1}


def test_non_member_closed_4403_before_any_packet(rnode, redis):
    room = new_room()
    other = rjoin(rnode, redis, room)
    # a token that lists the room does not help: Redis decides
    c = rnode.connect(room, token(new_account(), [room]))
    assert c.response.status == 101
    info = c.recv_close(T)
    assert info.code == 4403, info
    assert info.reason == FORBIDDEN, info
    assert info.messages == [], info
    # the member saw nothing of it
    marker = rjoin(rnode, redis, room)
    other.expect_joined(marker)


def test_member_by_redis_with_uppercase_path(rnode, redis):
    room = new_room()
    sub = new_account()
    add_member(redis, room, sub)
    m = join(rnode, room.upper(), sub, rooms=None)
    assert m.welcome["data"]["roomId"] == room


def test_membership_follows_the_set(rnode, redis):
    room = new_room()
    sub = new_account()
    add_member(redis, room, sub)
    join(rnode, room, sub, rooms=None).close()
    redis.command("SREM", f"chat:{room}:members", sub)
    c = rnode.connect(room, token(sub, []))
    assert c.recv_close(T).code == 4403


def test_plain_get_checks_redis(rnode, redis):
    room = new_room()
    member, stranger = new_account(), new_account()
    add_member(redis, room, member)
    resp = rnode.http("GET", rnode.route(room, f"tk={token(member, [])}"))
    assert resp.status == 400 and resp.body.decode() == BAD_REQUEST, resp
    resp = rnode.http("GET", rnode.route(room, f"tk={token(stranger, [room])}"))
    assert resp.status == 403 and resp.body.decode() == FORBIDDEN, resp
    resp = rnode.http("GET", rnode.route(room))
    assert resp.status == 401


def test_bad_token_still_401_at_http(rnode, redis):
    room = new_room()
    sub = new_account()
    add_member(redis, room, sub)
    with pytest.raises(HandshakeError) as e:
        rnode.connect(room, make_jwt(claims_for(sub, []), key="wrong"))
    assert e.value.status == 401


def test_custom_membership_key(nodes, redis):
    n = wait_ready(nodes.start({"SIGNAL_MEMBERSHIP": "redis", "SIGNAL_REDIS_URL": redis.url,
                                "SIGNAL_MEMBERSHIP_KEY": "room:{room}:who",
                                "SIGNAL_NODE_ID": "custom-key-node"}))
    room = new_room()
    sub = new_account()
    add_member(redis, room, sub)  # the default key: not consulted
    c = n.connect(room, token(sub, []))
    assert c.recv_close(T).code == 4403
    add_member(redis, room, sub, key="room:{room}:who")
    join(n, room, sub, rooms=None)


def test_messages_before_join_are_held(rnode, redis):
    """The node answers 101 at once (Redis asleep), the client speaks at once; its
    messages are handled, in order, after its welcome."""
    room = new_room()
    b = rjoin(rnode, redis, room)
    sub = new_account()
    add_member(redis, room, sub)
    sleep = RedisSleep(redis, 2)
    try:
        a = rnode.connect(room, token(sub, []))
        assert not sleep.done.is_set(), "the upgrade waited for Redis"
        a.send_many_json([{"type": "early", "data": {"i": i}} for i in range(5)])
        early_done = sleep.done.is_set()
    finally:
        sleep.wait()
    w = a.recv_json(T)
    assert w["type"] == "webrtc", w
    assert w["data"]["userId"] == sub
    b.expect_signal("user-joined", sub)
    for i in range(5):
        assert b.expect_signal("early", sub)["data"] == {"i": i}
    assert not early_done, "Redis woke up before the messages were sent: the test proved nothing"


def test_slow_redis_does_not_block_connected_clients(rnode, redis):
    room = new_room()
    a = rjoin(rnode, redis, room)
    b = rjoin(rnode, redis, room)
    a.expect_joined(b)
    sleep = RedisSleep(redis, 3)
    try:
        for i in range(3):
            a.send("offer", {"i": i}, to=b.sub)
            assert b.expect_signal("offer", a)["data"] == {"i": i}
            b.send("answer", {"i": i})
            assert a.expect_signal("answer", b)["data"] == {"i": i}
        # and plain HTTP is answered meanwhile too (no Redis needed for a 404/401)
        assert rnode.http("GET", "/nowhere").status == 404
        assert rnode.http("GET", rnode.route(room)).status == 401
        assert not sleep.done.is_set(), "the exchange waited for Redis to wake up"
    finally:
        sleep.wait()


def test_joins_while_redis_sleeps_are_answered_after(rnode, redis):
    room = new_room()
    subs = [new_account() for _ in range(3)]
    for s in subs:
        add_member(redis, room, s)
    stranger = new_account()
    sleep = RedisSleep(redis, 2)
    try:
        cs = [rnode.connect(room, token(s, [])) for s in subs]
        bad = rnode.connect(room, token(stranger, [room]))
    finally:
        sleep.wait()
    for s, c in zip(subs, cs):
        assert c.recv_json(T)["data"]["userId"] == s
    assert bad.recv_close(T).code == 4403


def welcome_once_redis_is_back(n, room, sub, within=30):
    """Joins until the node, reconnected to Redis, admits sub (1013 until then)."""
    deadline = time.monotonic() + within
    while True:
        c = n.connect(room, token(sub, []))
        try:
            p = c.recv_json(T)
            break
        except WSClosed as e:
            assert e.code == 1013, e
            assert time.monotonic() < deadline, "the node never got (a working) Redis back"
            time.sleep(0.2)  # the node's reconnect back-off
    assert p["type"] == "webrtc" and p["data"]["userId"] == sub


@pytest.fixture
def own_redis(tmp_base):
    r = Redis(tmp_base)
    yield r
    r.stop()


def test_redis_unreachable_1013_then_recovers(own_redis, nodes):
    # (own_redis before nodes: at teardown the node stops first, while Redis is up)
    r = own_redis
    n = nodes.start({"SIGNAL_MEMBERSHIP": "redis", "SIGNAL_REDIS_URL": r.url, "SIGNAL_NODE_ID": "down-node"})
    room = new_room()
    sub = new_account()
    add_member(r, room, sub)
    first = join(n, room, sub, rooms=None)
    r.stop()
    c = n.connect(room, token(sub, []))
    info = c.recv_close(timeout=30)
    assert info.code == 1013, info
    assert info.reason == "Try again later", info
    assert info.messages == []
    resp = n.http("GET", n.route(room, f"tk={token(sub, [])}"), timeout=30)
    assert resp.status == 503, resp
    # the connected member was not thrown out by the outage
    first.c.send_text("x")
    assert first.recv(T)["data"]["code"] == "invalid_json"
    # Redis back (empty): the node reconnects by itself
    r.start()
    add_member(r, room, sub)
    welcome_once_redis_is_back(n, room, sub)


@c_only
def test_mute_redis_is_dropped_and_replaced(nodes, tmp_base):
    """Something that accepts TCP on the Redis port but never answers (a hung
    Redis or proxy): members get 1013, and the node drops that connection
    itself, so a working Redis on the same port is found without a restart."""
    port = free_port()
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    mute.bind((HOST, port))
    mute.listen(16)
    n = nodes.start({"SIGNAL_MEMBERSHIP": "redis", "SIGNAL_REDIS_URL": f"redis://{HOST}:{port}",
                     "SIGNAL_NODE_ID": "mute-node"})
    held, _ = mute.accept()  # the node's connection stays open, unanswered
    room = new_room()
    sub = new_account()
    info = n.connect(room, token(sub, [])).recv_close(timeout=15)
    assert info.code == 1013 and info.messages == [], info
    mute.close()
    r = Redis(tmp_base, port=port)
    try:
        add_member(r, room, sub)
        welcome_once_redis_is_back(n, room, sub)
    finally:
        held.close()
        r.stop()
