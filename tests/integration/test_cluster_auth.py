"""The two-client tests of test_auth.py again, with the clients on different nodes:
the account derived from the token (RS/ES included) is what members on other
nodes see, and a token expiring on one node is a user-left on the others.
Nodes are Spreads of three nodes sharing Redis (see test_cluster_packets.py)."""

import pytest

import test_auth
from harness import NodeSet, SpreadNodes, shared_spread, single_node_tests
from test_auth import keys  # noqa: F401  (the fixture, for test_asymmetric_end_to_end)
from wsclient import WSClient

pytestmark = pytest.mark.cluster

globals().update(single_node_tests(test_auth, only=["test_account_from_claims", "test_token_expiry_closes_4001",
                                           "test_asymmetric_end_to_end", "test_signal_token_hs256"]))


@pytest.fixture(scope="module")
def _spreads():
    return {}


@pytest.fixture
def node(_spreads, module_nodes, redis):
    yield from shared_spread(_spreads, "auth", module_nodes, redis.url)


@pytest.fixture
def nodes(tmp_base, redis):
    """nodes.start(env) gives a Spread of three dedicated nodes with env."""
    ns = NodeSet(tmp_base)
    yield SpreadNodes(ns, redis.url)
    for c in WSClient.registry or []:
        c.abort()
    ns.stop_all()
