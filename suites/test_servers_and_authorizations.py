"""Servers and ServerAuthorizations: what they select, whom they admit, and what admission refuses.

Each check runs on the policy lab (manifests/lab.yml): a meshed server with HTTP/1 on 8080
(`http`), gRPC on 9090 (`grpc`) and TCP on 7000 (`tcp`), under the cluster default
all-unauthenticated, so any denial seen comes from the Server under test.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from linkerd_conformance import (
    CONNECTION_CLOSED,
    GRPC_OK,
    HTTP_FORBIDDEN,
    OK,
    Client,
    Expected,
    Mesh,
    TargetError,
    Unsupported,
    expect,
    expectations,
    lab,
)

pytestmark = [pytest.mark.conformance, pytest.mark.feature("server", "server-authorization")]

HTTP = lab.REQUESTS["http"]
GRPC = lab.REQUESTS["grpc"]
SUFFIX = "serviceaccount.identity.linkerd.cluster.local"


def locked_http(mesh: Mesh, *objs: dict[str, Any]) -> None:
    """The lab, plus a Server on its HTTP port and whatever authorizations the check gives."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http", labels={"tier": "web"}),
                      *objs])


def mtls(*identities: str) -> dict[str, Any]:
    return {"meshTLS": {"identities": list(identities)}}


# ---- what a Server selects ----

@pytest.mark.facts("F2.8", "F1.26")
def test_a_server_without_authorizations_denies_its_port(mesh: Mesh) -> None:
    """Once a Server exists for a port, nothing reaches it until an authorization says so; other
    ports keep the default policy."""
    locked_http(mesh)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(GRPC_OK)


@pytest.mark.facts("F2.2")
def test_match_expressions_select_the_server_pod(mesh: Mesh) -> None:
    """`matchExpressions` (In) selects pods like matchLabels does."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http", selector={
        "matchExpressions": [{"key": "app", "operator": "In", "values": ["server", "x"]}]})])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


#: (operator, an expression the server pod (app=server, tier=backend) satisfies, one it fails)
OPERATORS = {
    "In": ({"key": "app", "values": ["server", "x"]}, {"key": "app", "values": ["web"]}),
    "NotIn": ({"key": "app", "values": ["client"]}, {"key": "app", "values": ["server"]}),
    "Exists": ({"key": "tier"}, {"key": "canary"}),
    "DoesNotExist": ({"key": "canary"}, {"key": "tier"}),
}


@pytest.mark.facts("F2.2")
@pytest.mark.parametrize("operator", list(OPERATORS))
def test_each_selector_operator_selects_exactly_the_pods_that_satisfy_it(
        mesh: Mesh, operator: str) -> None:
    """A Server with no authorization whose expression the server pod fails leaves its port on
    the default (allowed); one whose expression it satisfies takes the port (denied)."""
    selects, misses = ({"operator": operator, **e} for e in OPERATORS[operator])
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http", selector={
        "matchExpressions": [misses]})])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    mesh.apply(lab.server("web", "http", selector={"matchExpressions": [selects]}))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F2.2")
def test_an_empty_selector_selects_every_pod(mesh: Mesh) -> None:
    """`podSelector: {matchLabels: {}}` selects every pod of the namespace."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http", selector={"matchLabels": {}})])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F2.2")
def test_a_server_may_name_its_port_by_number(mesh: Mesh) -> None:
    """`port: 8080` selects the same port as its name `http`."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", 8080)])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F2.2")
def test_a_server_may_name_its_port_by_container_port_name(mesh: Mesh) -> None:
    """`port: grpc` resolves through the pod's container port names."""
    lab.deploy(mesh, [*lab.objects(), lab.server("api", "grpc")])
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(
        lab.DENIED["grpc"])


# ---- whom an authorization admits ----

@pytest.mark.facts("F3.3", "F3.5", "F3.7")
def test_an_authorization_admits_exactly_its_identity(mesh: Mesh) -> None:
    """`meshTLS.identities` names one identity: that client passes, another namespace's does not."""
    locked_http(mesh, lab.server_authorization("only-client", mtls(lab.identity(lab.MESHED)),
                                               server_name="web"))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F3.3")
def test_an_authorization_may_pick_servers_by_label(mesh: Mesh) -> None:
    """`server.selector` matches Server labels (the Server here has `tier: web`)."""
    locked_http(mesh, lab.server_authorization("by-label", {"unauthenticated": True},
                                               server_selector={"matchLabels": {"tier": "web"}}))
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)


@pytest.mark.facts("F3.11")
def test_several_authorizations_are_ored(mesh: Mesh) -> None:
    """Two authorizations on one Server: a client matching either passes."""
    locked_http(mesh,
                lab.server_authorization("a", mtls(lab.identity(lab.MESHED)), server_name="web"),
                lab.server_authorization("b", mtls(lab.identity(lab.OTHER_NS)),
                                         server_name="web"))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.XLAB, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F3.9")
def test_networks_unset_means_the_cluster_networks_only(mesh: Mesh) -> None:
    """`unauthenticated: true` without `networks` admits clients inside clusterNetworks only;
    the docs' vague "typically all IPs" is not what the controller does."""
    lab.placeable(mesh, lab.UNMESHED_OUTSIDE)
    locked_http(mesh, lab.server_authorization("anyone", {"unauthenticated": True},
                                               server_name="web"))
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.UNMESHED_OUTSIDE, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


def with_host_bits(cidr: str, last: bool = False) -> str:
    """The network written with its first (or last but one) address in place of the network
    address."""
    net = ipaddress.ip_network(cidr)
    if net.num_addresses <= 2:
        return cidr
    address = net.broadcast_address - 1 if last else net.network_address + 1
    return f"{address}/{net.prefixlen}"


@pytest.mark.facts("F3.12")
def test_a_network_written_with_host_bits_names_its_whole_network(mesh: Mesh) -> None:
    """The Server alone refuses the in-cluster client; `networks: [{cidr: <each cluster
    network written with host bits set>}]` then admits it, though its address is not the
    one written."""
    nets = [with_host_bits(n, last=True) for n in mesh.cluster_networks if ":" not in n]
    locked_http(mesh)
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    mesh.apply(lab.server_authorization("in-cluster", {
        "unauthenticated": True, "networks": [{"cidr": n} for n in nets]}, server_name="web"))
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)


@pytest.mark.facts("F3.12", "F3.4")
def test_a_bare_address_names_one_client_from_2_12_and_voids_the_authorization_on_2_11(
        mesh: Mesh) -> None:
    """`networks: [{cidr: <the unmeshed client's address>}]`, without a prefix: from 2.12 the
    address is its /32 and admits that client; 2.11's controller cannot parse it as a
    network and leaves the whole ServerAuthorization out, so the client stays refused. The
    same address as a /32 admits it on every version."""
    locked_http(mesh)
    address = mesh.client_address(lab.UNMESHED)
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    mesh.apply(lab.server_authorization("bare", {
        "unauthenticated": True, "networks": [{"cidr": address}]}, server_name="web"))
    if mesh.profile.at_least("2.12"):
        expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)
        return
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).stays(HTTP_FORBIDDEN)
    mesh.apply(lab.server_authorization("bare", {
        "unauthenticated": True, "networks": [{"cidr": f"{address}/32"}]}, server_name="web"))
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)


@pytest.mark.facts("F3.4", "F3.12")
@pytest.mark.parametrize("written", ["as-networks", "with-host-bits"])
def test_networks_except_carves_out_addresses(mesh: Mesh, written: str) -> None:
    """`networks: [{cidr: 0.0.0.0/0, except: <cluster networks>}]` admits only outside clients,
    also when each except entry is written with host bits set (`10.244.0.1/16`), which names
    the same network."""
    lab.placeable(mesh, lab.UNMESHED_OUTSIDE)
    excepts = [n if written == "as-networks" else with_host_bits(n)
               for n in mesh.cluster_networks if ":" not in n]
    locked_http(mesh, lab.server_authorization("outside-only", {
        "unauthenticated": True, "networks": [{"cidr": "0.0.0.0/0", "except": excepts}]},
        server_name="web"))
    expect(mesh, lab.UNMESHED_OUTSIDE, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F3.6")
def test_a_star_identity_admits_any_meshed_client_only(mesh: Mesh) -> None:
    """`identities: ["*"]` is any authenticated client; a plaintext one is still refused."""
    locked_http(mesh, lab.server_authorization("any-mesh", mtls("*"), server_name="web"))
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F3.6")
def test_a_wildcard_suffix_matches_on_a_label_boundary(mesh: Mesh) -> None:
    """`*.lab.serviceaccount...` admits client.lab but not client.xlab, whose identity ends in
    the same characters without the dot."""
    locked_http(mesh, lab.server_authorization("lab-only", mtls(f"*.lab.{SUFFIX}"),
                                               server_name="web"))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.XLAB, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F3.5", "F3.7")
def test_a_service_account_without_namespace_means_the_authorizations_own(mesh: Mesh) -> None:
    """`serviceAccounts: [{name: client}]` is client in namespace lab, not client anywhere."""
    locked_http(mesh, lab.server_authorization(
        "sa", {"meshTLS": {"serviceAccounts": [{"name": "client"}]}}, server_name="web"))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F3.5", "F3.7")
def test_a_service_account_may_name_another_namespace(mesh: Mesh) -> None:
    """`serviceAccounts: [{name: client, namespace: lab-other}]` admits that one only."""
    locked_http(mesh, lab.server_authorization(
        "sa-other", {"meshTLS": {"serviceAccounts": [{"name": "client",
                                                      "namespace": "lab-other"}]}},
        server_name="web"))
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


# ---- service accounts with the control plane outside namespace linkerd (F3.8) ----

CONTROL_PLANE_NS = "linkerd-cp"


@pytest.fixture
def control_plane_elsewhere(mesh: Mesh) -> Iterator[Mesh]:
    """The target with its control plane installed in namespace linkerd-cp (`linkerd install
    -L linkerd-cp`): on the reference a second mesh, same version and faults; a cluster only
    when it was installed so."""
    try:
        installed = mesh.reinstalled(control_plane_namespace=CONTROL_PLANE_NS)
    except Unsupported as e:
        pytest.skip(f"{e}; F3.8 needs a control plane outside namespace linkerd")
    with installed as elsewhere:
        yield elsewhere


def real_identity(client: Client) -> str:
    """The client's identity as its proxy holds it: naming the control plane's namespace."""
    return expectations.proxy_identity(client.service_account, client.namespace,
                                       CONTROL_PLANE_NS)


def by_service_account(mesh: Mesh, client: Client) -> Expected:
    """OK where `serviceAccounts` names the client's real identity; else the HTTP denial."""
    named = expectations.service_account_identity(
        mesh.profile.version, client.service_account, client.namespace, CONTROL_PLANE_NS)
    return OK if named == real_identity(client) else HTTP_FORBIDDEN


@pytest.mark.facts("F3.8", "F3.7")
def test_service_accounts_name_the_installed_control_plane_namespace_from_2_12(
        control_plane_elsewhere: Mesh) -> None:
    """With the control plane in linkerd-cp, 2.11 turns `serviceAccounts: [{name: client}]`
    into `client.lab.serviceaccount.identity.linkerd.cluster.local` (`identity.linkerd.`
    written into authz.rs), which no proxy holds: the client is refused. From 2.12 the
    controller writes its `--control-plane-namespace` in and admits it. The same client named
    by its real identity is admitted at every version, so the difference is the rule, not
    the identity the client holds."""
    mesh = control_plane_elsewhere
    locked_http(mesh)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    # one watch stream, in this order: once lab-other's client is admitted by its identity
    # (naming linkerd-cp), the serviceAccounts authorization is in force too
    mesh.apply(lab.server_authorization("by-service-account", {"meshTLS": {
                   "serviceAccounts": [{"name": "client"}]}}, server_name="web"),
               lab.server_authorization("other-by-identity", mtls(real_identity(lab.OTHER_NS)),
                                        server_name="web"))
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(by_service_account(
        mesh, lab.MESHED))
    mesh.apply(lab.server_authorization("by-identity", mtls(real_identity(lab.MESHED)),
                                        server_name="web"))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)


def web_for_identity_refs(*refs: dict[str, Any]) -> list[dict[str, Any]]:
    """A MeshTLSAuthentication of these `identityRefs` and a policy on `web` requiring it."""
    return [lab.resource("MeshTLSAuthentication", "lab-refs", {"identityRefs": list(refs)}),
            lab.resource("AuthorizationPolicy", "web-lab", {
                "targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "web"},
                "requiredAuthenticationRefs": [{"group": "policy.linkerd.io",
                                                "kind": "MeshTLSAuthentication",
                                                "name": "lab-refs"}]})]


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F3.8", "F4.9")
def test_identity_refs_to_a_service_account_name_the_installed_control_plane_namespace(
        control_plane_elsewhere: Mesh) -> None:
    """A MeshTLSAuthentication's `identityRefs` of kind ServiceAccount go through the same
    rule as `serviceAccounts` (`ClusterInfo::service_account_identity`): with the control
    plane in linkerd-cp they admit the lab client, and no one else."""
    mesh = control_plane_elsewhere
    locked_http(mesh, *web_for_identity_refs({"kind": "ServiceAccount", "name": "client"}))
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(by_service_account(
        mesh, lab.MESHED))


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.9")
def test_identity_refs_to_a_namespace_admit_its_service_accounts_only(mesh: Mesh) -> None:
    """A MeshTLSAuthentication's `identityRefs` entry of kind Namespace stands for every
    service account of that namespace: the lab client passes, lab-other's is refused."""
    locked_http(mesh, *web_for_identity_refs({"kind": "Namespace", "name": "lab"}))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


# ---- protocol hints ----

@pytest.mark.facts("F2.3", "F5.1", "F5.2")
def test_an_opaque_server_denies_http_by_closing_the_connection(mesh: Mesh) -> None:
    """With `proxyProtocol: opaque` the proxy does not look for HTTP, so a denied HTTP client
    sees its connection closed, not a 403."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http", proxy_protocol="opaque")])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(CONNECTION_CLOSED)


@pytest.mark.facts("F5.1", "F5.3", "F5.4")
def test_a_denied_http2_request_that_is_not_grpc_gets_403(mesh: Mesh) -> None:
    """HTTP/2 without `application/grpc` is plain HTTP to the proxy: 403, not grpc-status 7."""
    locked_http(mesh)
    expect(mesh, lab.MESHED, lab.HTTP, "http2", **HTTP).becomes(HTTP_FORBIDDEN)


# ---- admission ----

def _refused(mesh: Mesh, obj: dict[str, Any], *needles: str) -> None:
    mesh.apply(*lab.objects())
    with pytest.raises(TargetError) as err:
        mesh.apply(obj)
    for needle in needles:
        assert needle in str(err.value), f"expected {needle!r} in the refusal: {err.value}"


@pytest.mark.facts("F3.6")
def test_admission_refuses_a_malformed_identity(mesh: Mesh) -> None:
    """Identities must match the CRD pattern: `Web_App!` is refused."""
    _refused(mesh, lab.server_authorization("bad", mtls("Web_App!"), server_name="web"),
             "spec.client.meshTLS.identities[0]", "Web_App!")


@pytest.mark.facts("F3.4", "F3.10")
def test_admission_refuses_unauthenticated_next_to_meshtls(mesh: Mesh) -> None:
    """`unauthenticated: true` together with `meshTLS` is refused (the workshop's trap): by the
    2.11 CRD's oneOf, and from 2.12 by the webhook's own sentence."""
    needle = ("`unauthenticated` must be false if `mesh_tls` is specified"
              if mesh.profile.at_least("2.12") else '"spec.client" must validate one and only one')
    _refused(mesh, lab.server_authorization(
        "both", {"unauthenticated": True, "meshTLS": {"identities": ["*"]}}, server_name="web"),
        needle)


@pytest.mark.versions("2.11")
@pytest.mark.facts("F2.4")
def test_admission_refuses_an_unknown_proxy_protocol_2_11(mesh: Mesh) -> None:
    """2.11: the CRD's enum refuses `proxyProtocol: invalid`."""
    _refused(mesh, lab.server("web", "http", proxy_protocol="invalid"),
             'Unsupported value: "invalid"')


@pytest.mark.versions(">=2.12")
@pytest.mark.facts("F2.4")
def test_admission_refuses_an_unknown_proxy_protocol(mesh: Mesh) -> None:
    """2.12+: the policy webhook refuses it with serde's `unknown variant`."""
    _refused(mesh, lab.server("web", "http", proxy_protocol="invalid"),
             "linkerd-policy-validator.linkerd.io", "unknown variant `invalid`")


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.10")
def test_admission_refuses_a_network_authentication_without_networks(mesh: Mesh) -> None:
    """A NetworkAuthentication must list a network: the webhook refuses `networks: []` in its
    own words (policy-controller `admission.rs`), rather than storing one that matches no
    client."""
    _refused(mesh, lab.resource("NetworkAuthentication", "nowhere", {"networks": []}),
             "at least one network must be specified")


def _overlapping_server_refusal(mesh: Mesh) -> str:
    """Apply a Server, then a second one for the same port selecting every pod; the refusal."""
    mesh.apply(*lab.objects(), lab.server("first", "http"))
    with pytest.raises(TargetError) as err:
        mesh.apply(lab.server("second", "http", selector={"matchLabels": {}}))
    return str(err.value)


@pytest.mark.versions("2.11")
@pytest.mark.facts("F2.12")
def test_2_11_refuses_only_an_identical_server(mesh: Mesh) -> None:
    """2.11's webhook compares whole specs: a second Server with the same port and selector is
    refused ("identical server spec already exists"), one selecting every pod on that port is
    admitted (the controller then logs the conflict and keeps the first)."""
    mesh.apply(*lab.objects(), lab.server("first", "http"))
    with pytest.raises(TargetError) as err:
        mesh.apply(lab.server("twin", "http"))
    assert "identical server spec already exists" in str(err.value), err.value
    mesh.apply(lab.server("second", "http", selector={"matchLabels": {}}))


@pytest.mark.versions("2.12")
@pytest.mark.facts("F2.12")
def test_admission_refuses_overlapping_servers_with_the_old_message(mesh: Mesh) -> None:
    """2.12: the overlap rule already applies, and the refusal still reads as 2.11's."""
    refusal = _overlapping_server_refusal(mesh)
    assert "identical server spec already exists" in refusal, refusal


@pytest.mark.versions("2.13-2.17")
@pytest.mark.facts("F2.13")
def test_admission_refuses_overlapping_servers(mesh: Mesh) -> None:
    """2.13-2.17: a second Server for the same port and pods is refused."""
    refusal = _overlapping_server_refusal(mesh)
    assert "already defines a policy for port" in refusal, refusal


@pytest.mark.versions(">=2.18")
@pytest.mark.facts("F2.14")
def test_the_oldest_of_overlapping_servers_wins(mesh: Mesh) -> None:
    """2.18+: overlapping Servers are accepted and the oldest decides."""
    lab.deploy(mesh, [*lab.objects(), lab.server("first", "http"),
                      lab.server_authorization("first-open", {"unauthenticated": True},
                                               server_name="first")])
    mesh.apply(lab.server("second", "http", selector={"matchLabels": {}}))
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).stays(OK)


@pytest.mark.facts("F3.5")
def test_unauthenticated_tls_admits_tls_clients_without_identity(mesh: Mesh) -> None:
    """`meshTLS.unauthenticatedTLS: true` wants TLS, not an identity: a TLS client without a
    certificate passes, a plaintext one does not."""
    lab.placeable(mesh, lab.ANONYMOUS_TLS)
    locked_http(mesh, lab.server_authorization("tls-only", {"meshTLS": {
        "unauthenticatedTLS": True}}, server_name="web"))
    expect(mesh, lab.ANONYMOUS_TLS, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
