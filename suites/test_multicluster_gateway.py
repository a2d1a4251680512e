"""Multicluster gateway mode: traffic through the gateway carries the gateway's identity.

In gateway mode the target cluster's gateway terminates the source's mTLS and connects to the
target pod as `linkerd-gateway.linkerd-multicluster...` (F8.1): the target's policy must
authorize the gateway, and cannot tell remote clients apart (F8.2). The source cluster's pods
are the `linked` clients: on the reference, clients outside the target's cluster networks with
leaves of its trust anchor; on kind, prober pods of a second kind cluster installed with the
same trust anchor (F8.5) and linked to this one (F8.6, F8.7), calling the mirror of `web-svc`.
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

REMOTE_VOTEBOT = Client("remote", "vote-bot", meshed=True, network="linked",
                        name="remote-vote-bot")  # a vote-bot in the source cluster
REMOTE_PLAIN = Client("remote", "vote-bot", meshed=False, network="linked",
                      name="remote-plain")  # an unmeshed client in the source cluster
#: the remote vote-bot's identity presented directly to web: a pod here with its service
#: account and namespace has the same identity (`<sa>.<ns>.serviceaccount.identity.linkerd.
#: cluster.local` in every cluster of the trust domain), where the gateway is not in between
AS_REMOTE_VOTEBOT = Client("remote", "vote-bot", meshed=True, name="vote-bot-as-remote")
#: what a source-cluster client sends to the gateway: the target Service in the authority
VIA_GATEWAY = {"path": "/api/list", "authority": "web-svc.emojivoto.svc.cluster.local:80"}
EXPORTED = [(workshop.EMOJIVOTO_NS.name, "web-svc")]


@pytest.fixture
def gateway(mesh: Mesh, emojivoto: object) -> Dest:
    """The target cluster's gateway, with the chart's own policy (F8.3), and web-svc
    exported to the linked cluster."""
    why = mesh.cannot_place(REMOTE_VOTEBOT)
    if why is not None:
        pytest.skip(f"the {mesh.name} target has no second cluster to send traffic from ({why})")
    return mesh.multicluster_gateway(EXPORTED)


def lock_down(mesh: Mesh, web_public: str) -> None:
    mesh.apply(*workshop.emojivoto_policy(), *manifests.load(web_public))
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    for rollout in mesh.rollout_restart("emojivoto"):
        assert rollout.settled, f"emojivoto/{rollout.deployment}: {rollout.reason}"


@pytest.mark.facts("F8.1", "F8.2")
def test_traffic_through_the_gateway_arrives_with_the_gateway_identity(
        mesh: Mesh, gateway: Dest) -> None:
    """web-public admits only the gateway's identity: the remote vote-bot gets through the
    gateway, and its identity is refused when presented to web directly."""
    lock_down(mesh, "web-public-gateway-only.yml")
    expect(mesh, REMOTE_VOTEBOT, gateway, "http", **VIA_GATEWAY).becomes(OK)
    expect(mesh, AS_REMOTE_VOTEBOT, workshop.web_http, "http",
           **workshop.API_LIST).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F8.1", "F8.2")
def test_the_remote_clients_identity_is_lost_at_the_gateway(mesh: Mesh, gateway: Dest) -> None:
    """web-public admits only the remote vote-bot's identity: presented directly it passes,
    through the gateway the remote vote-bot is refused, since web sees the gateway, not it."""
    lock_down(mesh, "web-public-remote-client-only.yml")
    expect(mesh, AS_REMOTE_VOTEBOT, workshop.web_http, "http", **workshop.API_LIST).becomes(OK)
    expect(mesh, REMOTE_VOTEBOT, gateway, "http", **VIA_GATEWAY).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F8.3")
def test_the_gateway_admits_only_meshed_clients(mesh: Mesh, gateway: Dest) -> None:
    """The gateway's own Server admits any mesh identity and nothing else."""
    lock_down(mesh, "web-public-gateway-only.yml")
    expect(mesh, REMOTE_PLAIN, gateway, "http", **VIA_GATEWAY).becomes(HTTP_FORBIDDEN)
    expect(mesh, REMOTE_VOTEBOT, gateway, "http", **VIA_GATEWAY).becomes(OK)
