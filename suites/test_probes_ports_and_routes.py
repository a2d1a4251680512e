"""Kubelet probes, undeclared ports, and the 2.12+ policy resources (routes, AuthorizationPolicy).

Probes come in plain text from the node's address (the `node` client here). On 2.12+ the
policy controller authorizes GET on each httpGet probe's exact path unless the port's Server
has routes (F6.2-F6.7); on 2.11 nothing is authorized for them (the workshop story checks it).
"""

from __future__ import annotations

from typing import Any

import pytest

from linkerd_conformance import (
    CONNECTION_CLOSED,
    HTTP_FORBIDDEN,
    NOT_FOUND,
    OK,
    Mesh,
    expect,
    lab,
    wait_for,
)

pytestmark = [pytest.mark.conformance]

HTTP = lab.REQUESTS["http"]
SUFFIX = "serviceaccount.identity.linkerd.cluster.local"


def probed_under_deny(mesh: Mesh, *objs: dict[str, Any]) -> None:
    """The probed server under default deny: its rollout only settles if its probes pass."""
    lab.deploy(mesh, [*lab.with_pod_annotations(
        [*lab.objects(), *lab.probed()],
        {"config.linkerd.io/default-inbound-policy": "deny"}), *objs])


def route(mesh: Mesh, name: str, server: str, prefix: str) -> dict[str, Any]:
    """A policy.linkerd.io HTTPRoute in the newest version the profile serves (F4.1)."""
    version = "v1beta3" if mesh.profile.at_least("2.14") else "v1beta1"
    return lab.resource("HTTPRoute", name, {
        "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": server}],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": prefix}}]}]},
        api_version=f"policy.linkerd.io/{version}")


def policy(name: str, target_kind: str, target: str, *refs: dict[str, Any]) -> dict[str, Any]:
    group = {} if target_kind == "Namespace" else {"group": "policy.linkerd.io"}
    return lab.resource("AuthorizationPolicy", name, {
        "targetRef": {**group, "kind": target_kind, "name": target},
        "requiredAuthenticationRefs": list(refs)})


def ref(kind: str, name: str) -> dict[str, Any]:
    return {"group": "policy.linkerd.io", "kind": kind, "name": name}


# ---- probes, 2.12+ ----

@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.2", "F6.3", "F6.5")
def test_probes_are_authorized_under_deny(mesh: Mesh) -> None:
    """Under deny with no policy at all, the pod still becomes Ready, and the probe's own
    request (GET /ready from the node) is let through."""
    probed_under_deny(mesh)
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(OK)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.3")
def test_only_the_probes_get_on_its_exact_path_is_authorized(mesh: Mesh) -> None:
    """Another path, or POST on the probe's path, from the same address is denied."""
    probed_under_deny(mesh)
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/other").becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready",
           method="POST").becomes(HTTP_FORBIDDEN)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.5", "F6.6")
def test_a_server_without_routes_keeps_probes_authorized(mesh: Mesh) -> None:
    """Following the code, not restricting-access.md: a Server alone on the probe port leaves
    the probe route in place; its other requests are denied."""
    server = lab.server("probed-http", "http", selector={"matchLabels": {"app": "probed"}})
    probed_under_deny(mesh, server)
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(OK)
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/other").becomes(HTTP_FORBIDDEN)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization", "http-route")
@pytest.mark.facts("F6.5", "F4.14")
def test_attaching_a_route_takes_probe_authorization_away(mesh: Mesh) -> None:
    """Once an HTTPRoute is attached to the probe port's Server the probe route is gone, and the
    probe's path, matching no route, gets 404."""
    server = lab.server("probed-http", "http", selector={"matchLabels": {"app": "probed"}})
    lab.deploy(mesh, [*lab.objects(), *lab.probed()])
    mesh.apply(server, route(mesh, "api", "probed-http", "/api"))
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(NOT_FOUND)


# ---- routes and AuthorizationPolicy, 2.12+ ----

@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.11", "F4.14", "F4.15")
def test_requests_matching_no_route_get_404_and_routed_ones_are_authorized(mesh: Mesh) -> None:
    """With a route for /api authorized for everyone, /api/x is served and /other gets 404."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http"), route(mesh, "api", "web", "/api"),
                      policy("api-open", "HTTPRoute", "api")])
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/api/x").becomes(OK)
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/other").becomes(NOT_FOUND)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.2", "F4.5", "F4.9", "F4.10")
def test_an_authorization_policy_needs_every_authentication(mesh: Mesh) -> None:
    """Identity AND network: the lab client from inside passes; another identity, or the same
    identity from outside the cluster networks, does not."""
    lab.placeable(mesh, lab.MESHED_OUTSIDE)
    nets = [{"cidr": n} for n in mesh.cluster_networks]
    lab.deploy(mesh, [
        *lab.objects(), lab.server("web", "http"),
        lab.resource("MeshTLSAuthentication", "lab-client",
                     {"identities": [lab.identity(lab.MESHED)]}),
        lab.resource("NetworkAuthentication", "cluster", {"networks": nets}),
        policy("web-lab", "Server", "web", ref("MeshTLSAuthentication", "lab-client"),
               ref("NetworkAuthentication", "cluster"))])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED_OUTSIDE, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.7")
@pytest.mark.parametrize("kind", ["MeshTLSAuthentication", "NetworkAuthentication"])
def test_a_policy_with_a_missing_authentication_is_ignored(mesh: Mesh, kind: str) -> None:
    """Referencing an authentication that does not exist voids the policy: still denied."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http"),
                      policy("web-ghost", "Server", "web", ref(kind, "ghost"))])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).stays(HTTP_FORBIDDEN)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.3", "F4.4", "F4.6")
def test_a_namespace_policy_covers_servers_but_not_the_default(mesh: Mesh) -> None:
    """A policy on Namespace lab with no required authentication opens every Server of the
    namespace, while a port with no Server keeps the pod's default (deny here)."""
    lab.deploy(mesh, [*lab.with_default("deny"), lab.server("web", "http"),
                      policy("whole-lab", "Namespace", "lab")])
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.UNMESHED, lab.GRPC, "grpc",
           **lab.REQUESTS["grpc"]).becomes(lab.DENIED["grpc"])


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("access-policy")
@pytest.mark.facts("F2.6")
def test_a_v1beta3_server_access_policy_admits_unmatched_traffic(mesh: Mesh) -> None:
    """`accessPolicy: all-unauthenticated` opens a Server that has no authorization."""
    lab.deploy(mesh, [*lab.objects(), lab.server(
        "web", "http", api_version="policy.linkerd.io/v1beta3",
        accessPolicy="all-unauthenticated")])
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("access-policy")
@pytest.mark.facts("F2.7")
def test_access_policy_on_an_older_server_version_is_pruned(mesh: Mesh) -> None:
    """The same field written as policy.linkerd.io/v1beta1 is dropped: the Server denies."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http",
                                                 accessPolicy="all-unauthenticated")])
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


# ---- undeclared ports ----

@pytest.mark.versions("2.11")
@pytest.mark.feature("undeclared-ports")
@pytest.mark.facts("F2.9")
def test_2_11_ignores_a_server_on_an_undeclared_port(mesh: Mesh) -> None:
    """A Server for 8080 on a pod that declares no port 8080 has no effect in 2.11."""
    lab.deploy(mesh, [*lab.objects(), *lab.undeclared(), lab.server(
        "undeclared-http", 8080, selector={"matchLabels": {"app": "undeclared"}})])
    expect(mesh, lab.MESHED, lab.UNDECLARED, "http", **HTTP).stays(OK)


@pytest.mark.versions("2.11")
@pytest.mark.feature("undeclared-ports")
@pytest.mark.facts("F2.9", "F2.10")
def test_2_11_closes_connections_to_undeclared_ports_under_deny(mesh: Mesh) -> None:
    """Under deny an undeclared port is refused at accept time, before HTTP is detected: the
    HTTP client sees its connection closed, not a 403, and the proxy counts the refusal as
    `inbound_tcp_errors_total{error="unknown port denied"}`."""
    lab.deploy(mesh, lab.with_pod_annotations([*lab.objects(), *lab.undeclared()],
                                              {"config.linkerd.io/default-inbound-policy":
                                               "deny"}))
    expect(mesh, lab.MESHED, lab.UNDECLARED, "http", **HTTP).becomes(CONNECTION_CLOSED)
    [pod] = [p for p in mesh.pods("lab", {"app": "undeclared"}) if p.ready][-1:]
    wait_for('inbound_tcp_errors_total{error="unknown port denied"} >= 1',
             lambda: mesh.proxy_metrics(pod).value("inbound_tcp_errors_total",
                                                   error="unknown port denied"),
             lambda v: v >= 1)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("undeclared-ports")
@pytest.mark.facts("F2.11")
def test_a_numeric_server_port_applies_without_being_declared(mesh: Mesh) -> None:
    """2.12+ discovers policy for any numeric port: the Server locks 8080 anyway."""
    lab.deploy(mesh, [*lab.objects(), *lab.undeclared(), lab.server(
        "undeclared-http", 8080, selector={"matchLabels": {"app": "undeclared"}})])
    expect(mesh, lab.MESHED, lab.UNDECLARED, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.versions(">=2.20")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.8")
def test_deleting_a_meshtls_authentication_revokes_its_policy(mesh: Mesh) -> None:
    """Deleting the MeshTLSAuthentication a policy requires voids the policy. (2.12-2.19 kept
    the deleted identities in force until the controller restarted, F4.8; fixed in 2.20.)"""
    authn = lab.resource("MeshTLSAuthentication", "lab-client",
                         {"identities": [lab.identity(lab.MESHED)]})
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http"), authn,
                      policy("web-lab", "Server", "web", ref("MeshTLSAuthentication",
                                                             "lab-client"))])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    mesh.delete(authn)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.3")
def test_tcp_socket_probes_are_not_authorized(mesh: Mesh) -> None:
    """Only httpGet probes get a probe route: a port probed with tcpSocket stays denied to the
    node under deny (its probe passes anyway, since the proxy accepts the connection)."""
    lab.deploy(mesh, lab.with_pod_annotations([*lab.objects(), *lab.probed_tcp()],
                                              {"config.linkerd.io/default-inbound-policy":
                                               "deny"}))
    expect(mesh, lab.NODE, lab.PROBED_TCP, "tcp",
           **lab.REQUESTS["tcp"]).becomes(CONNECTION_CLOSED)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("undeclared-ports")
@pytest.mark.facts("F2.11")
def test_a_named_server_port_must_be_declared(mesh: Mesh) -> None:
    """2.12+ discovers numeric ports only: a Server naming port `http` on a pod that declares
    no such name selects nothing, and the port keeps its default."""
    lab.deploy(mesh, [*lab.objects(), *lab.undeclared(), lab.server(
        "undeclared-http", "http", selector={"matchLabels": {"app": "undeclared"}})])
    expect(mesh, lab.MESHED, lab.UNDECLARED, "http", **HTTP).stays(OK)
