"""signal-bench (issue 9): seconds-long runs against real nodes, so that the load
generator cannot rot. They check what the bench reports about the node (nothing
lost, reordered or refused) and that its report has its documented shape; no
figure is timed. Also its usage: --help, exit codes 2 and 1."""

import json
import os
import re
import signal
import subprocess

import pytest

from harness import HOST, NODE_BIN, ROOT, SECRET, c_only, free_port, node_base_env, poll, start_cluster

BENCH_BIN = os.environ.get("SIGNAL_BENCH_BIN") or next(
    (p for p in (os.path.join(os.path.dirname(NODE_BIN), "signal-bench"), os.path.join(ROOT, "build", "bin", "signal-bench"))
     if os.access(p, os.X_OK)), os.path.join(ROOT, "build", "bin", "signal-bench"))

# The bench's signals must not meet the node's rate limit (50/s by default).
FAST = {"SIGNAL_RATE_PER_S": "100000", "SIGNAL_RATE_BURST": "100000"}

KEYS = {"connections", "connect_s", "deliveries_per_s", "latency_ms", "lost", "reordered", "errors",
        "sent", "delivered", "expected", "duration_s", "workers", "in_flight_at_end", "drain_s", "drain_end"}
LATENCY_KEYS = {"p50", "p90", "p99", "p999", "max"}


def start_bench(*args):
    """Starts signal-bench with args, its output piped."""
    if not os.access(BENCH_BIN, os.X_OK):
        pytest.fail(f"{BENCH_BIN} is missing: build it first (or set SIGNAL_BENCH_BIN)")
    return subprocess.Popen([BENCH_BIN, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=node_base_env())


def end_bench(p, timeout=120):
    """Waits for the bench p; returns (exit code, stdout, stderr)."""
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in err, f"sanitizer report from signal-bench:\n{err}"
    return p.returncode, out, err


def run_bench(*args, timeout=120):
    """Runs signal-bench with args; returns (exit code, stdout, stderr)."""
    return end_bench(start_bench(*args), timeout)


def parse_report(rc, out, err):
    """The JSON report of a run that must complete."""
    assert rc == 0, f"signal-bench exited with {rc}\nstdout: {out}\nstderr: {err}"
    report = json.loads(out)
    assert KEYS <= set(report), f"missing keys {KEYS - set(report)} in {report}"
    assert LATENCY_KEYS <= set(report["latency_ms"]), report
    return report


def bench_json(*args):
    """A run that must complete: its JSON report."""
    return parse_report(*run_bench("--secret", SECRET, "--json", *args))


def assert_clean(report, connections):
    """Every connection made, every signal delivered once and in order, nothing refused."""
    assert report["connections"] == connections, report
    assert report["errors"] == 0, report
    assert report["lost"] == 0, report
    assert report["reordered"] == 0, report
    assert report["sent"] > 0 and report["delivered"] == report["expected"] > 0, report
    assert report["deliveries_per_s"] > 0, report
    assert report["drain_end"] == "complete" and report["drain_s"] >= 0, report
    lat = report["latency_ms"]
    assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat


def url(node):
    return f"ws://{HOST}:{node.port}"


def test_open_loop_one_node(nodes):
    node = nodes.start(FAST)
    report = bench_json("--url", url(node), "--connections", "40", "--room-size", "4", "--rate", "20",
                        "--duration", "2")
    assert_clean(report, 40)
    # 10 rooms of 4: each signal reaches the 3 others.
    assert report["expected"] == 3 * report["sent"], report
    assert report["workers"] == 1, report


def test_saturate_one_node(nodes):
    node = nodes.start(FAST)
    report = bench_json("--url", url(node), "--connections", "20", "--room-size", "2", "--saturate",
                        "--window", "4", "--duration", "1")
    assert_clean(report, 20)
    assert report["mode"] == "saturate" and report["window"] == 4, report


def messages_received(node):
    """The node's signal_messages_received_total."""
    text = node.http("GET", "/metrics").text
    return float(re.search(r"^signal_messages_received_total (\S+)$", text, re.M).group(1))


@c_only
def test_saturate_node_stopped_mid_load(nodes):
    """A node stopped (SIGSTOP) in the middle of the load, for seconds: the closed loop waits with
    no more than its windows in flight, the drain ends once nothing has arrived for a while (well
    before --drain), and what was in flight is lost."""
    node = nodes.start(FAST)
    bench = start_bench("--secret", SECRET, "--json", "--url", url(node), "--connections", "20",
                        "--room-size", "4", "--saturate", "--window", "4", "--duration", "4",
                        "--drain", "60")
    try:
        # The bench sends nothing but its signals: the first one received starts the load.
        poll(lambda: messages_received(node), until=lambda n: n > 0, timeout=30, what="the load")
        os.kill(node.proc.pid, signal.SIGSTOP)
        report = parse_report(*end_bench(bench))
    finally:
        os.kill(node.proc.pid, signal.SIGCONT)
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert report["connections"] == 20 and report["errors"] == 0, report
    # Each sender: at most its window of 4, each due to 3 others.
    assert 0 < report["in_flight_at_end"] <= 20 * 4 * 3, report
    assert report["drain_end"] == "quiet" and report["drain_s"] < 60, report
    assert report["lost"] == report["in_flight_at_end"], report


@pytest.mark.cluster
def test_two_nodes_two_workers(nodes, redis):
    a, b = start_cluster(nodes, redis.url, 2, FAST, name="bench")
    report = bench_json("--url", f"{url(a)},{url(b)}", "--workers", "2", "--connections", "40",
                        "--room-size", "4", "--rate", "20", "--duration", "2")
    assert_clean(report, 40)
    assert report["workers"] == 2 and report["urls"] == 2, report


def test_help_lists_every_option():
    rc, out, _ = run_bench("--help")
    assert rc == 0
    for opt in ("--url", "--path-prefix", "--secret", "--connections", "--room-size", "--source-ips",
                "--workers", "--connect-concurrency", "--connect-timeout", "--rate", "--saturate",
                "--window", "--duration", "--drain", "--json", "--help"):
        assert opt in out, f"{opt} missing from --help"


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["--secret", "s", "--rate", "1", "--saturate"],
    ["--secret", "s", "--connections", "0"],
    ["--secret", "s", "--url", "http://127.0.0.1:1"],
    ["--secret", "s", "--source-ips", "127.0.0.9-127.0.0.1"],
])
def test_bad_usage_exits_2_with_one_line(args):
    rc, out, err = run_bench(*args)
    assert rc == 2, (rc, out, err)
    assert out == "" and len(err.strip().splitlines()) == 1, err


def test_no_node_exits_1():
    rc, out, err = run_bench("--secret", SECRET, "--url", f"ws://{HOST}:{free_port()}", "--connections", "2",
                             "--duration", "1", "--json")
    assert rc == 1, (rc, out, err)
    assert out == "" and "no connection" in err, err
