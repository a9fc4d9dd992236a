"""test_packets.py again, with the clients on different nodes (docs/protocol.md,
"Several nodes": several nodes that share a Redis behave as one server). The bodies
are test_packets.py's own; only the `node` fixture differs: a Spread of three nodes
sharing Redis, where the k-th connection to a room goes to node k mod 3. So in a
two-client test the clients are on two nodes, a third client is on the third node,
and an account's second connection is on another node than its first."""

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
    yield from shared_spread(_spreads, "packets", module_nodes, redis.url)
