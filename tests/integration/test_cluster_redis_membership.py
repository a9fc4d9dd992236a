"""The two-client tests of test_redis_membership.py again, with the clients on
different nodes: membership `redis` in a cluster (the same Redis as the bus).
`rnode` is a Spread of three nodes (see test_cluster_packets.py). Left out: the
tests where two clients exchange signals while Redis sleeps, which across nodes
cannot work (the bus is that Redis)."""

import pytest

import test_redis_membership
from harness import shared_spread, single_node_tests

pytestmark = pytest.mark.cluster

globals().update(single_node_tests(test_redis_membership, only=[
    "test_member_gets_welcome", "test_non_member_closed_4403_before_any_packet",
    "test_messages_before_join_are_held"]))


@pytest.fixture(scope="module")
def _spreads():
    return {}


@pytest.fixture
def rnode(_spreads, module_nodes, redis):
    yield from shared_spread(_spreads, "rmember", module_nodes, redis.url, {"SIGNAL_MEMBERSHIP": "redis"})
