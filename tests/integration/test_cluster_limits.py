"""test_limits.py again, with the clients on different nodes: the rate limit and
its errors stay with the sender's node, order holds through Redis, isolation of
rooms, the slow reader on another node than the sender, keep-alive leaves. Every
node fixture is a Spread of three nodes sharing Redis with that fixture's settings
(see test_cluster_packets.py). Left out: SIGNAL_MAX_CONNECTIONS, a per-node
limit."""

import pytest

import test_limits
from harness import NodeSet, SpreadNodes, shared_spread, single_node_tests
from wsclient import WSClient

pytestmark = pytest.mark.cluster

globals().update(single_node_tests(test_limits, exclude=["test_max_connections_503"]))


@pytest.fixture(scope="module")
def _spreads():
    return {}


@pytest.fixture
def node(_spreads, module_nodes, redis):
    yield from shared_spread(_spreads, "limits", module_nodes, redis.url)


@pytest.fixture
def limit_node(_spreads, module_nodes, redis):
    yield from shared_spread(_spreads, "limited", module_nodes, redis.url,
                             {"SIGNAL_RATE_PER_S": "1", "SIGNAL_RATE_BURST": "5", "SIGNAL_MAX_MESSAGE_BYTES": "1024"})


@pytest.fixture
def fast_node(_spreads, module_nodes, redis):
    yield from shared_spread(_spreads, "fast", module_nodes, redis.url,
                             {"SIGNAL_RATE_PER_S": "100000", "SIGNAL_RATE_BURST": "100000",
                              "SIGNAL_MAX_MESSAGE_BYTES": "262144"})


@pytest.fixture
def nodes(tmp_base, redis):
    """nodes.start(env) gives a Spread of three dedicated nodes with env."""
    ns = NodeSet(tmp_base)
    yield SpreadNodes(ns, redis.url)
    for c in WSClient.registry or []:
        c.abort()
    ns.stop_all()
