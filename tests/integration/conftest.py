"""Fixtures: nodes (module-scoped default node, dedicated nodes), redis-server, client cleanup."""

import shutil
import tempfile

import pytest

import harness
from harness import Node, NodeSet
from wsclient import WSClient


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: needs several nodes sharing Redis (deselect with -m 'not cluster')")
    config.addinivalue_line("markers", "container: builds the image and runs the compose cluster with podman "
                                       "(deselect with -m 'not container')")


def pytest_report_header(config):
    what = f"{harness.PEER_DIR}/server.js (Node.js reference)" if harness.IS_PEER else harness.NODE_BIN
    return f"signal-node target: {harness.TARGET} -> {what}"


@pytest.fixture(scope="session")
def tmp_base():
    d = tempfile.mkdtemp(prefix="signal-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _abort_open_clients():
    for c in WSClient.registry or []:
        c.abort()


@pytest.fixture(autouse=True)
def _close_clients():
    """Drops every WebSocket a test opened (without a handshake) when it ends."""
    opened = []
    WSClient.registry = opened
    yield
    WSClient.registry = None
    for c in opened:
        c.abort()


@pytest.fixture(scope="module")
def module_nodes(tmp_base):
    ns = NodeSet(tmp_base)
    yield ns
    ns.stop_all()


@pytest.fixture
def nodes(tmp_base):
    """Dedicated nodes for one test; stopped with SIGTERM at the end, exit code 0 checked."""
    ns = NodeSet(tmp_base)
    yield ns
    _abort_open_clients()
    ns.stop_all()


@pytest.fixture(scope="module")
def _module_node(module_nodes):
    return {"node": module_nodes.start()}


@pytest.fixture
def node(_module_node, module_nodes) -> Node:
    """A node with the default configuration (but SIGNAL_DRAIN_S=0), shared by a module.
    A test that kills it gets an error, and the next test gets a new node."""
    n = _module_node["node"]
    if not n.alive():
        n = _module_node["node"] = module_nodes.start()
    yield n
    if not n.alive():
        n.reported = True  # reported here, not again at module teardown
        pytest.fail(f"the node died during this test (exit code {n.proc.returncode})\n{n.logs()}")


@pytest.fixture(scope="session")
def redis(tmp_base):
    """One redis-server for the session (torn down after every node); tests use their own rooms.
    With SIGNAL_TEST_REDIS_SHARDS=N, N of them as the shards of one list (harness.RedisShards)."""
    r = harness.shared_redis(tmp_base)
    yield r
    r.stop()
