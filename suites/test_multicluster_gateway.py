"""Multicluster gateway mode: traffic through the gateway carries the gateway's identity.

In gateway mode the target cluster's gateway terminates the source's mTLS and connects to the
target pod as `linkerd-gateway.linkerd-multicluster...` (F8.1): the target's policy must
authorize the gateway, and cannot tell remote clients apart (F8.2). The source cluster is stood
for by clients outside the target's cluster networks that share its trust anchor (F8.5).
"""

from __future__ import annotations

import pytest

from linkerd_conformance import (
    HTTP_FORBIDDEN,
    OK,
    Client,
    Dest,
    Mesh,
    expect,
    manifests,
    workshop,
)

pytestmark = [pytest.mark.conformance, pytest.mark.feature("multicluster-gateway")]

GATEWAY = Dest("linkerd-multicluster", "linkerd-gateway", 4143)
REMOTE_VOTEBOT = Client("remote", "vote-bot", meshed=True, network="outside",
                        name="remote-vote-bot")  # a vote-bot in the source cluster
REMOTE_PLAIN = Client("remote", "vote-bot", meshed=False, network="outside",
                      name="remote-plain")  # an unmeshed client in the source cluster
#: what a source-cluster client sends to the gateway: the target Service in the authority
VIA_GATEWAY = {"path": "/api/list", "authority": "web-svc.emojivoto.svc.cluster.local:80"}


@pytest.fixture
def gateway(mesh: Mesh, emojivoto: object) -> Dest:
    """The target cluster's gateway, with the chart's own policy (F8.3)."""
    why = mesh.cannot_place(REMOTE_VOTEBOT)
    if why is not None:
        pytest.skip(f"the {mesh.name} target has no second cluster to send traffic from ({why})")
    mesh.apply(*manifests.load("multicluster-gateway.yml"))
    for rollout in mesh.wait_rollout("linkerd-multicluster"):
        assert rollout.settled, rollout.reason
    return GATEWAY


def lock_down(mesh: Mesh, web_public: str) -> None:
    mesh.apply(*workshop.emojivoto_policy(), *manifests.load(web_public))
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    for rollout in mesh.rollout_restart("emojivoto"):
        assert rollout.settled, f"emojivoto/{rollout.deployment}: {rollout.reason}"


@pytest.mark.facts("F8.1", "F8.2")
def test_traffic_through_the_gateway_arrives_with_the_gateway_identity(
        mesh: Mesh, gateway: Dest) -> None:
    """web-public admits only the gateway's identity: the remote vote-bot gets through the
    gateway, and is refused when it calls web directly as itself."""
    lock_down(mesh, "web-public-gateway-only.yml")
    expect(mesh, REMOTE_VOTEBOT, gateway, "http", **VIA_GATEWAY).becomes(OK)
    expect(mesh, REMOTE_VOTEBOT, workshop.web_http, "http",
           **workshop.API_LIST).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F8.1", "F8.2")
def test_the_remote_clients_identity_is_lost_at_the_gateway(mesh: Mesh, gateway: Dest) -> None:
    """web-public admits only the remote vote-bot's identity: directly it passes, through the
    gateway it is refused, since web sees the gateway, not the vote-bot."""
    lock_down(mesh, "web-public-remote-client-only.yml")
    expect(mesh, REMOTE_VOTEBOT, workshop.web_http, "http", **workshop.API_LIST).becomes(OK)
    expect(mesh, REMOTE_VOTEBOT, gateway, "http", **VIA_GATEWAY).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F8.3")
def test_the_gateway_admits_only_meshed_clients(mesh: Mesh, gateway: Dest) -> None:
    """The gateway's own Server admits any mesh identity and nothing else."""
    lock_down(mesh, "web-public-gateway-only.yml")
    expect(mesh, REMOTE_PLAIN, gateway, "http", **VIA_GATEWAY).becomes(HTTP_FORBIDDEN)
    expect(mesh, REMOTE_VOTEBOT, gateway, "http", **VIA_GATEWAY).becomes(OK)
