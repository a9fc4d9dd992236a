"""test_packets.py again, on a cluster whose nodes sign what they send each other
(SIGNAL_CLUSTER_SECRET, docs/cluster.md "Authenticated messages"): signals,
targets, presence and accounts on several nodes behave exactly as without the
secret. Nodes are a Spread of three sharing Redis (see test_cluster_packets.py)."""

import pytest

import test_packets
from harness import shared_spread, single_node_tests

pytestmark = pytest.mark.cluster

globals().update(single_node_tests(test_packets))


@pytest.fixture(scope="module")
def _spreads():
    return {}


@pytest.fixture
def node(_spreads, module_nodes, redis):
    env = {"SIGNAL_CLUSTER_SECRET": "signed-cluster-secret-0123456789"}
    yield from shared_spread(_spreads, "signed", module_nodes, redis.url, env)
