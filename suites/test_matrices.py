"""Truth tables: every source against every destination, observed against the specification.

The expected cells come from `linkerd_conformance.expectations`, a reading of
research/linkerd-semantics.md written independently of any target (the reference mesh does not
import it, nor it the reference); the observed cells come from probes. On a mismatch the whole
table is printed, expected against observed, with the reason for each wrong cell.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import pytest

from linkerd_conformance import Cell, Client, Dest, Mesh, expect_matrix, expectations, lab, workshop

ClientSpec, expect_request = expectations.ClientSpec, expectations.expect_request
merge_objects, pod_from_deployment = expectations.merge_objects, expectations.pod_from_deployment

pytestmark = [pytest.mark.conformance, pytest.mark.feature("matrix")]

OUTSIDE_IP = "203.0.113.10"  # TEST-NET-3: outside every cluster network


def cluster_networks(mesh: Mesh) -> tuple[str, ...]:
    return tuple(mesh.cluster_networks)


def client_spec(mesh: Mesh, client: Client) -> ClientSpec:
    """The client as the specification sees it: an address inside or outside the cluster
    networks, and its identity when meshed."""
    if client.network == "outside":
        ip = OUTSIDE_IP
    else:
        ip = str(next(iter(ipaddress.ip_network(cluster_networks(mesh)[0]).hosts())))
    return ClientSpec(ip, client.identity)


def deployment(objs: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == name)


def cells(mesh: Mesh, policy: Sequence[dict[str, Any]], workloads: Sequence[dict[str, Any]],
          default: str, sources: dict[str, Client],
          dests: dict[str, tuple[Dest, int, str, dict[str, Any]]]) -> list[Cell]:
    out = []
    for row, client in sources.items():
        for col, (dest, port, protocol, request) in dests.items():
            pod = pod_from_deployment(deployment(workloads, dest.deployment), default)
            e = expect_request(str(mesh.profile), policy, pod, client_spec(mesh, client), port,
                               protocol, method=request.get("method", "GET")
                               if protocol != "grpc" else "POST",
                               path=request.get("path", "/"),
                               cluster_networks=cluster_networks(mesh))
            out.append(Cell(row, col, client, dest, protocol, request, e.expected, e.reason))
    return out


# ---- the workshop ----

WORKSHOP_SOURCES = {
    "votebot": workshop.emojivoto_votebot, "bad-votebot": workshop.bad_votebot,
    "web": workshop.web, "impostor": workshop.bad_impostor, "plain": workshop.unmeshed_bad,
}
WORKSHOP_DESTS: dict[str, tuple[Dest, int, str, dict[str, Any]]] = {
    "web:/": (workshop.web_http, 8080, "http", {"path": "/"}),
    "emoji:ListAll": (workshop.emoji_grpc, 8080, "grpc", workshop.LIST_ALL),
    "voting:Results": (workshop.voting_grpc, 8080, "grpc", workshop.RESULTS),
}
STAGES = {
    "deny-no-app-policy": lambda: workshop.admin_only_policy(),
    "published-policy": lambda: workshop.emojivoto_policy(),
    "wildcard-edit": lambda: merge_objects(workshop.emojivoto_policy(),
                                           workshop.web_public_emojivoto_only()),
}


@pytest.mark.facts("F1.7", "F2.8", "F3.4", "F3.5", "F3.6", "F3.7", "F5.3", "F5.4")
@pytest.mark.parametrize("stage", list(STAGES))
def test_the_workshop_matrix_matches_the_specification(mesh: Mesh, emojivoto: Any,
                                                       bad_votebot: Client, stage: str) -> None:
    """Emojivoto locked down with deny and a restart, at each stage of the workshop's policy:
    five callers against web, emoji and voting, as the specification reads."""
    policy = STAGES[stage]()
    mesh.apply(*policy)
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    for rollout in mesh.rollout_restart("emojivoto"):
        assert rollout.settled, f"emojivoto/{rollout.deployment}: {rollout.reason}"
    expect_matrix(mesh, cells(mesh, policy, workshop.emojivoto(), "deny", WORKSHOP_SOURCES,
                              WORKSHOP_DESTS))


# ---- the lab ----

LAB_SOURCES = {
    "meshed": lab.MESHED, "plain": lab.UNMESHED, "other-ns": lab.OTHER_NS, "xlab": lab.XLAB,
    "meshed-outside": lab.MESHED_OUTSIDE, "plain-outside": lab.UNMESHED_OUTSIDE,
}
LAB_DESTS: dict[str, tuple[Dest, int, str, dict[str, Any]]] = {
    "http": (lab.HTTP, 8080, "http", lab.REQUESTS["http"]),
    "grpc": (lab.GRPC, 9090, "grpc", lab.REQUESTS["grpc"]),
    "tcp": (lab.TCP, 7000, "tcp", lab.REQUESTS["tcp"]),
}


SCENARIOS = {
    "server-per-port-under-deny": ("deny", lab.server_per_port, "2.11"),
    "server-per-port-under-all-unauthenticated": ("all-unauthenticated", lab.server_per_port,
                                                  "2.11"),
    "authorization-policies-under-cluster-authenticated": ("cluster-authenticated",
                                                           lab.authorization_policies, "2.12"),
}


@pytest.mark.facts("F1.26", "F2.3", "F3.5", "F3.6", "F3.9", "F4.2", "F4.6", "F5.1")
@pytest.mark.parametrize("scenario", [
    pytest.param(name, marks=[pytest.mark.versions(f">={since}")] if since != "2.11" else [],
                 id=name) for name, (_, _, since) in SCENARIOS.items()])
def test_the_lab_matrix_matches_the_specification(mesh: Mesh, scenario: str) -> None:
    """Six callers against HTTP/1, gRPC and opaque TCP on one pod, each port with its own
    Server and authorizations, under a default policy."""
    default, build, _ = SCENARIOS[scenario]
    policy = build()
    workloads = lab.with_default(default)
    lab.deploy(mesh, [*workloads, *policy])
    objects = [*[o for o in workloads if o["kind"] in ("Server", "ServerAuthorization")],
               *policy]
    expect_matrix(mesh, cells(mesh, objects, workloads, default, LAB_SOURCES, LAB_DESTS))
