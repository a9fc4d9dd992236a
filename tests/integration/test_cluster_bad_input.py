"""test_bad_input.py again, with the clients on different nodes: what survives bad
input on one node still reaches the peer on another (the largest message, the
reassembled fragments, the signals before a close), and the peer on the other
node sees the offender leave. `node` is a Spread of three nodes sharing Redis
(see test_cluster_packets.py)."""

import pytest

import test_bad_input
from harness import shared_spread, single_node_tests

pytestmark = pytest.mark.cluster

globals().update(single_node_tests(test_bad_input))


@pytest.fixture(scope="module")
def _spreads():
    return {}


@pytest.fixture
def node(_spreads, module_nodes, redis):
    yield from shared_spread(_spreads, "badinput", module_nodes, redis.url)
