"""Issue 7, running it in production: /healthz, /readyz and /metrics (on the
client listener, or only on SIGNAL_ADMIN_LISTEN), metrics that move with
clients and signals and pass promtool, readiness that follows Redis, the drain
timeline on SIGTERM (one node and a cluster), and the logs (JSON by default,
text under --dev, never a token, a secret or a payload)."""

import json
import os
import re
import select
import signal
import subprocess
import time

import pytest

from harness import (HOST, SECRET, T, Member, Redis, c_only, claims_for, cluster_env, free_port, join,
                     join_room, make_jwt, new_account, new_room, poll, run_node_once, token,
                     wait_ready)
from wsclient import HandshakeError, WSClient, WSClosed, http_request

pytestmark = c_only

ENDPOINTS = ("/healthz", "/readyz", "/metrics")
PROMTOOL_DEB = "prometheus"


# ---------------------------------------------------------------------------
# Helpers

def get(port, path, method="GET"):
    return http_request(HOST, port, method, path, timeout=T)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metrics(port):
    r = get(port, "/metrics")
    assert r.status == 200, r
    return parse_metrics(r.text)


def value(ms, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in ms, f"no sample {name}{labels} in {sorted(k for k in ms if k[0] == name)}"
    return ms[key]


def wait_metric(port, name, want, what=None, **labels):
    """Polls /metrics (state that can only be polled) until name{labels} == want."""
    return poll(lambda: value(metrics(port), name, **labels), until=lambda v: v == want,
                what=what or f"{name}{labels} == {want}")


def promtool():
    """promtool from Debian's prometheus package, unpacked (not installed) into a cache folder."""
    cache = os.path.join(os.environ.get("SIGNAL_DEPS_DIR") or os.path.expanduser("~/.cache/signal-node"),
                         "promtool")
    tool = os.path.join(cache, "usr", "bin", "promtool")
    if os.access(tool, os.X_OK):
        return tool
    os.makedirs(cache, exist_ok=True)
    p = subprocess.run(["apt-get", "download", PROMTOOL_DEB], cwd=cache, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    debs = [f for f in os.listdir(cache) if f.startswith(PROMTOOL_DEB + "_") and f.endswith(".deb")]
    assert p.returncode == 0 and debs, f"apt-get download {PROMTOOL_DEB} failed:\n{p.stdout.decode()}"
    subprocess.run(["dpkg", "-x", os.path.join(cache, debs[0]), cache], check=True, timeout=120)
    os.remove(os.path.join(cache, debs[0]))
    os.remove(os.path.join(cache, "usr", "bin", "prometheus"))
    assert os.access(tool, os.X_OK), f"{tool} not in the package"
    return tool


def promtool_check(text):
    p = subprocess.run([promtool(), "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode()


def log_lines(node):
    """Every stderr line of a JSON-logging node, parsed."""
    out = []
    for line in node.stderr().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def wait_log(node, pred, what):
    return poll(lambda: [e for e in log_lines(node) if pred(e)], what=what)


# ---------------------------------------------------------------------------
# Endpoints

def test_endpoints_on_the_client_listener(node):
    r = get(node.port, "/healthz")
    assert (r.status, r.text) == (200, "ok\n"), r
    r = get(node.port, "/readyz")
    assert (r.status, r.text) == (200, "ready\n"), r
    r = get(node.port, "/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", r.headers
    ms = parse_metrics(r.text)
    assert value(ms, "signal_ready") == 1
    assert value(ms, "signal_draining") == 0
    info = [dict(k[1]) for k in ms if k[0] == "signal_build_info"]
    assert len(info) == 1 and info[0]["libwebsockets"] == "4.1.6", info
    assert re.match(r"^\d+\.\d+\.\d+$", info[0]["version"]), info
    r = get(node.port, "/metrics", method="HEAD")
    assert r.status == 200 and r.body == b"" and int(r.headers["content-length"]) > 1000, r
    r = get(node.port, "/metrics", method="POST")
    assert r.status == 405, r
    # the route still answers as before
    assert get(node.port, node.route(new_room())).status == 401


def test_admin_listener_serves_the_endpoints_and_nothing_else(nodes):
    admin = free_port()
    n = nodes.start({"SIGNAL_ADMIN_LISTEN": f"{HOST}:{admin}"})
    for path in ENDPOINTS:
        assert get(admin, path).status == 200, path
        assert get(n.port, path).status == 404, f"{path} exposed on the client listener"
        # lws picks a vhost by the Host header's name: not across listeners
        r = http_request(HOST, n.port, "GET", path, headers={"Host": "admin"}, timeout=T)
        assert r.status == 404, f"{path} exposed on the client listener with Host: admin"
    room = new_room()
    assert get(admin, n.route(room) + f"?tk={token('a', [room])}").status == 404
    with pytest.raises(HandshakeError) as e:
        WSClient.connect(HOST, admin, n.route(room, f"tk={token('a', [room])}"), timeout=T)
    assert e.value.status == 404
    # clients still join on the client listener, and the admin one counts them
    a = join(n, room)
    assert value(metrics(admin), "signal_connections") == 1
    a.close()


def test_admin_listen_must_differ_from_listen():
    port = free_port()
    rc, _, err = run_node_once(env={"SIGNAL_JWT_SECRET": SECRET, "SIGNAL_LISTEN": f"{HOST}:{port}",
                                    "SIGNAL_ADMIN_LISTEN": f"{HOST}:{port}"})
    assert rc == 2 and "SIGNAL_ADMIN_LISTEN" in err, err


# ---------------------------------------------------------------------------
# Metrics

def test_metrics_move_with_clients_and_signals(nodes):
    n = nodes.start()
    before = metrics(n.port)
    assert value(before, "signal_connections") == 0
    assert value(before, "signal_rooms") == 0
    room = new_room()
    a, b = join_room(n, room, 2)
    ms = metrics(n.port)
    assert value(ms, "signal_connections") == 2
    assert value(ms, "signal_connections_accepted_total") == 2
    assert value(ms, "signal_rooms") == 1
    assert value(ms, "signal_room_members") == 2
    a.send("offer", {"sdp": "x"})
    b.expect_signal("offer", a)
    a.c.send_text("{not json")
    a.expect_error("invalid_json")
    ms = metrics(n.port)
    assert value(ms, "signal_messages_received_total") == 2
    assert value(ms, "signal_error_packets_total", code="invalid_json") == 1
    # two welcomes, b's user-joined at a, the offer, the error
    assert value(ms, "signal_frames_sent_total") == 5
    assert value(ms, "signal_sent_bytes_total") > 0
    assert value(ms, "signal_received_bytes_total") == len('{"type":"offer","data":{"sdp":"x"}}{not json')
    assert value(ms, "signal_send_queue_bytes") == 0

    # refused upgrades, by status and reason
    other = new_room()
    for tok, want in ((None, 401), (token("c", [other]), 403)):
        with pytest.raises(HandshakeError) as e:
            n.connect(room, tok) if tok else n.connect(room, None, via=None)
        assert e.value.status == want
    with pytest.raises(HandshakeError):
        n.ws("/api/chat/elsewhere/" + room)
    ms = metrics(n.port)
    assert value(ms, "signal_upgrades_refused_total", status="401", reason="unauthorized") == 1
    assert value(ms, "signal_upgrades_refused_total", status="403", reason="forbidden") == 1
    assert value(ms, "signal_upgrades_refused_total", status="404", reason="not_found") == 1

    # closes, by code: a closes with 1000, b just goes away (1006)
    a.close()
    b.expect_left(a)
    wait_metric(n.port, "signal_connections_closed_total", 1, code="1000")
    b.c.abort()
    wait_metric(n.port, "signal_connections_closed_total", 1, code="1006")
    ms = metrics(n.port)
    assert value(ms, "signal_connections") == 0
    assert value(ms, "signal_rooms") == 0
    assert value(ms, "signal_room_members") == 0


@pytest.mark.cluster
def test_metrics_pass_promtool_and_show_the_cluster(nodes, redis):
    n1 = nodes.start(cluster_env(redis.url, f"prom-{new_account()}"))
    n2 = nodes.start(cluster_env(redis.url, f"prom-{new_account()}"))
    room = new_room()
    a = join(n1, room)
    b = join(n2, room)
    a.expect_joined(b)
    for i in range(20):
        a.send("ping", {"i": i})
        b.expect_signal("ping", a)
    text = get(n2.port, "/metrics").text
    rc, out = promtool_check(text)
    assert rc == 0 and not out.strip(), f"promtool check metrics:\n{out}\n{text}"
    ms = parse_metrics(text)
    assert value(ms, "signal_bus_received_total") == 20
    assert value(ms, "signal_bus_delivery_lag_seconds_count") == 20
    assert value(ms, "signal_bus_delivery_lag_seconds_bucket", le="+Inf") == 20
    assert 0 <= value(ms, "signal_bus_delivery_lag_seconds_sum") < 20 * 5
    # With several shards (SIGNAL_TEST_REDIS_SHARDS), the bus's connections
    # are labelled with theirs; with one Redis, as ever, they are not.
    sharded = len(redis.shards) > 1
    for i, r in enumerate(redis.shards):
        shard = {"shard": str(i)} if sharded else {}
        for role in ("bus", "subscriber"):
            assert value(ms, "signal_redis_connected", role=role, **shard) == 1
            assert value(ms, "signal_redis_reconnects_total", role=role, **shard) == 0
        assert value(ms, "signal_redis_shard_up", shard=str(i), address=f"{HOST}:{r.port}") == 1
        assert value(ms, "signal_redis_shard_mismatch", shard=str(i)) == 0
    assert value(metrics(n1.port), "signal_bus_published_total") == 20
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"):
        assert value(ms, name) > 0, name
    assert abs(value(ms, "process_start_time_seconds") - time.time()) < 600
    # no label carries a room or an account
    assert room not in text and a.sub not in text and b.sub not in text
    # the single-node output (no Redis families) passes too
    rc, out = promtool_check(get(nodes.start().port, "/metrics").text)
    assert rc == 0 and not out.strip(), out


def test_promtool_is_not_vacuous():
    rc, out = promtool_check("# TYPE x counter\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n")
    assert rc != 0 or out.strip(), "promtool accepted a duplicate sample and a counter without _total"


def test_slow_reader_drops_are_counted(nodes):
    n = nodes.start({"SIGNAL_SEND_QUEUE_BYTES": "65536", "SIGNAL_SEND_QUEUE_HARD_BYTES": "65536",
                     "SIGNAL_RATE_PER_S": "100000", "SIGNAL_RATE_BURST": "100000"})
    room = new_room()
    sender = join(n, room)
    slow = join(n, room, client_kw={"rcvbuf": 4096})  # never reads again
    sender.expect_joined(slow)
    chunk = "z" * 30000
    for i in range(540):  # 16 MB: far beyond the kernel's buffers plus the queue
        sender.send("bulk", {"i": i, "pad": chunk})
        if i % 20 == 19 and value(metrics(n.port), "signal_slow_reader_closes_total", cause="hard"):
            break
    wait_metric(n.port, "signal_slow_reader_closes_total", 1, cause="hard")
    assert value(metrics(n.port), "signal_signals_dropped_total", reason="slow_reader") >= 2
    # Gone once the close grace and lws's own flush time (5 s each) are over.
    poll(lambda: value(metrics(n.port), "signal_connections_closed_total", code="4008"),
         until=lambda v: v == 1, timeout=3 * T, what="the slow reader to be gone")
    assert value(metrics(n.port), "signal_send_queue_bytes") == 0


# ---------------------------------------------------------------------------
# Readiness

def test_readyz_follows_redis_and_healthz_does_not(nodes, tmp_base):
    r = Redis(tmp_base, start=False)
    n = nodes.start(cluster_env(r.url, f"ready-{new_account()}"))
    resp = get(n.port, "/readyz")
    assert resp.status == 503 and resp.text.startswith("not ready: redis"), resp
    assert resp.text.count("\n") == 1, resp.text
    assert value(metrics(n.port), "signal_ready") == 0
    assert get(n.port, "/healthz").status == 200
    try:
        r.start()
        poll(lambda: get(n.port, "/readyz").status, until=lambda s: s == 200, timeout=20,
             what="readyz 200 once Redis is up")
        assert value(metrics(n.port), "signal_redis_connected", role="bus") == 1
        r.stop()
        poll(lambda: get(n.port, "/readyz").status, until=lambda s: s == 503, timeout=20,
             what="readyz 503 once Redis is gone")
        assert get(n.port, "/healthz").status == 200
        r.start()
        poll(lambda: get(n.port, "/readyz").status, until=lambda s: s == 200, timeout=20,
             what="readyz 200 once Redis is back")
        assert value(metrics(n.port), "signal_redis_reconnects_total", role="bus") == 1
    finally:
        r.stop()


# ---------------------------------------------------------------------------
# Drain

def watch_closes(members, deadline):
    """Reads every member until each has its close; returns {sub: (time, code, packets before it)}."""
    seen = {m.sub: [] for m in members}
    closed = {}
    open_ = {m.c.fileno(): m for m in members}
    while open_:
        left = deadline - time.monotonic()
        assert left > 0, f"not closed in time: {[m.sub for m in open_.values()]}"
        p = select.poll()
        for fd in open_:
            p.register(fd, select.POLLIN)
        for fd, _ in p.poll(int(min(left, 0.5) * 1000) + 1):
            m = open_[fd]
            try:
                seen[m.sub].append(m.recv(timeout=T))
            except WSClosed as e:
                closed[m.sub] = (time.monotonic(), e.code, seen[m.sub])
                del open_[fd]
    return closed


def test_drain_timeline_single_node(nodes):
    drain, window, count = 3, 3, 12
    admin = free_port()
    n = nodes.start({"SIGNAL_DRAIN_S": str(drain), "SIGNAL_DRAIN_CLOSE_S": str(window),
                     "SIGNAL_ADMIN_LISTEN": f"{HOST}:{admin}"})
    room = new_room()
    members = join_room(n, room, count)
    t0 = time.monotonic()
    n.proc.send_signal(signal.SIGTERM)
    resp = poll(lambda: get(admin, "/readyz"), until=lambda r: r.status == 503, timeout=2,
                what="readyz 503 right after SIGTERM")
    assert resp.text == "not ready: draining\n", resp
    t_ready = time.monotonic() - t0
    assert get(admin, "/healthz").status == 200
    probe = new_room()
    with pytest.raises(HandshakeError) as e:
        n.connect(probe, token(new_account(), [probe]))
    assert e.value.status == 503
    # connected clients carry on during the drain
    members[0].send("during-drain", {"n": 1})
    for m in members[1:]:
        m.expect_signal("during-drain", members[0])
    assert time.monotonic() - t0 < drain, "the drain check itself took too long to mean anything"
    closed = watch_closes(members, t0 + drain + window + T)
    times = sorted(t - t0 for t, _, _ in closed.values())
    assert {code for _, code, _ in closed.values()} == {1001}
    assert times[0] >= drain - 0.3, f"closed before the drain ended: {times}"
    # spread over the window, not all at once: (count - 1) / count of it between first and last
    spread = times[-1] - times[0]
    assert spread >= 0.5 * window * (count - 1) / count, f"not spread: {times}"
    assert times[-1] <= drain + window + 3, f"past the window: {times}"
    # the last one closed saw every other leave, as it happened
    last = max(closed, key=lambda s: closed[s][0])
    lefts = {p["data"]["senderAccountId"] for p in closed[last][2] if p["data"].get("type") == "user-left"}
    assert lefts == {m.sub for m in members} - {last}, closed[last][2]
    rc = n.proc.wait(timeout=T)
    t_exit = time.monotonic() - t0
    assert rc == 0, n.logs()
    events = [e["event"] for e in log_lines(n) if e["event"] in ("drain_start", "drain_close", "stop")]
    assert events == ["drain_start", "drain_close", "stop"], n.logs()
    print(f"\ndrain timeline: readyz 503 after {t_ready * 1000:.0f} ms, first 1001 at {times[0]:.2f} s, "
          f"last at {times[-1]:.2f} s, exit at {t_exit:.2f} s")


def test_drain_in_a_cluster_moves_clients_to_another_node(nodes, redis):
    ids = [f"drain-{new_account()}" for _ in range(2)]
    env = {"SIGNAL_DRAIN_S": "1", "SIGNAL_DRAIN_CLOSE_S": "2"}
    n1 = nodes.start(cluster_env(redis.url, ids[0], env))
    n2 = nodes.start(cluster_env(redis.url, ids[1], env))
    room = new_room()
    stay = join(n2, room)
    movers = []
    for i in range(4):
        m = join(n1, room, new_account(f"mv{i}"))
        stay.expect_joined(m)
        for earlier in movers:
            earlier.expect_joined(m)
        movers.append(m)
    n1.proc.send_signal(signal.SIGTERM)
    closed = watch_closes(movers, time.monotonic() + 1 + 2 + T)
    assert {code for _, code, _ in closed.values()} == {1001}
    # the member on the other node sees each leave as it happens
    for _ in movers:
        d = stay.expect_signal("user-left", timeout=T)
        assert d["senderAccountId"] in {m.sub for m in movers}
    assert n1.proc.wait(timeout=T) == 0, n1.logs()
    # a drained client reconnects to the other node and carries on in the same room
    back = join(n2, room, movers[0].sub)
    assert [p["accountId"] for p in back.welcome["data"]["participants"]] == [stay.sub]
    stay.expect_joined(back)
    back.send("offer", {"sdp": "again"})
    stay.expect_signal("offer", back)
    stay.send("answer", {"sdp": "ok"}, to=back.sub)
    back.expect_signal("answer", stay)
    # its presence is gone from Redis
    assert redis.command("EXISTS", f"signal:node:{ids[0]}") == 0


def test_second_signal_exits_at_once(nodes):
    n = nodes.start({"SIGNAL_DRAIN_S": "60"})
    m = join(n, new_room())
    n.proc.send_signal(signal.SIGTERM)
    wait_log(n, lambda e: e["event"] == "drain_start", "the drain_start line")
    t0 = time.monotonic()
    n.proc.send_signal(signal.SIGINT)
    rc = n.proc.wait(timeout=T)
    assert time.monotonic() - t0 < 5
    n.expected_rc = 1
    assert rc == 1
    line = [e for e in log_lines(n) if e["event"] == "exit_now"]
    assert line and "exiting at once" in line[0]["msg"], n.logs()
    m.c.abort()


# ---------------------------------------------------------------------------
# Logs

def test_logs_are_json_lines_with_connection_events(nodes):
    n = nodes.start({"SIGNAL_NODE_ID": "logs-node"})
    room = new_room()
    a = join(n, room)
    a.close()
    closes = wait_log(n, lambda e: e["event"] == "conn_close", "a conn_close line")
    lines = log_lines(n)
    assert all(line.startswith("{") for line in n.stderr().splitlines()), n.stderr()
    for e in lines:
        assert {"time", "level", "node", "event", "msg"} <= set(e), e
        assert e["node"] == "logs-node"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["time"]), e
    opens = [e for e in lines if e["event"] == "conn_open"]
    assert len(opens) == 1 and opens[0]["room"] == room and opens[0]["account"] == a.sub, opens
    assert opens[0]["level"] == "info" and opens[0]["conn"].startswith("logs-node:")
    c = closes[0]
    assert (c["code"], c["room"], c["account"], c["conn"]) == (1000, room, a.sub, opens[0]["conn"]), c
    assert isinstance(c["duration_ms"], int) and c["duration_ms"] >= 0


def test_text_logs_under_dev_and_by_setting(nodes):
    n = nodes.start({"SIGNAL_LOG_FORMAT": "text", "SIGNAL_NODE_ID": "text-node"})
    join(n, new_room()).close()
    poll(lambda: "conn_close" in n.stderr(), what="a conn_close line")
    line = next(l for l in n.stderr().splitlines() if " conn_close " in l)
    assert re.match(r"^\S+Z info  text-node conn_close room=\S+ account=\S+ conn=\S+ code=1000 "
                    r"duration_ms=\d+: connection closed$", line), line
    d = nodes.start(args=["--dev"], with_secret=False)
    poll(lambda: "listening" in d.stderr(), what="the listening line")
    assert not d.stderr().lstrip().startswith("{"), d.stderr()


def test_no_token_secret_or_payload_in_any_log_line(nodes, tmp_base):
    payload = "PAYLOAD-" + new_account()
    redis = Redis(tmp_base, password="redis-pass-" + new_account())
    env = {"SIGNAL_LOG_LEVEL": "debug", "SIGNAL_MEMBERSHIP": "redis"}
    n1 = wait_ready(nodes.start(cluster_env(redis.url, f"sec-{new_account()}", env)))
    n2 = wait_ready(nodes.start(cluster_env(redis.url, f"sec-{new_account()}", env)))
    room = new_room()
    redis.command("SADD", f"chat:{room}:members", "a-" + payload[8:], "b-" + payload[8:])
    a_claims = claims_for("a-" + payload[8:], [room])
    tok_a = make_jwt(a_claims)
    ca = n1.connect(room, tok_a)
    a = Member(n1, room, a_claims["sub"], ca, a_claims, ca.recv_json(T))
    b = join(n2, room, "b-" + payload[8:], via="cookie")
    a.expect_joined(b)
    a.send("offer", {"sdp": payload})
    b.expect_signal("offer", a)
    b.c.send_text('{"type":"x","data":"' + payload + '"')  # invalid JSON carrying the payload
    b.expect_error("invalid_json")
    bad = make_jwt(claims_for(new_account(), [room]), key="wrong-" + SECRET)
    with pytest.raises(HandshakeError):
        n1.connect(room, bad, via="bearer")
    a.close()
    b.close()
    for n in (n1, n2):
        assert n.terminate() == 0, n.logs()
    redis.stop()
    for n in (n1, n2):
        text = n.stderr()
        assert "debug" in text, "the test needs debug lines to mean anything"
        for secret in (SECRET, tok_a, tok_a.split(".")[2], bad.split(".")[2], payload, redis.password):
            assert secret not in text, f"{secret[:20]}... appears in the log of {n.env['SIGNAL_NODE_ID']}"


def test_control_characters_cannot_forge_a_line(nodes):
    n = nodes.start({"SIGNAL_LOG_FORMAT": "text"})
    room = new_room()
    evil = 'evil\n2026-01-01T00:00:00.000Z info  forged conn_open "x"'
    m = join(n, room, evil)
    m.close()
    poll(lambda: "conn_close" in n.stderr(), what="a conn_close line")
    assert not any(l.startswith("2026-01-01T00:00:00.000Z") for l in n.stderr().splitlines()), n.stderr()
    assert "evil\\x0a2026" in n.stderr()
