"""The spec's second reading (expectations.py) says what the spec's rows say.

Each test names the rows it checks; the workshop cases use the repo's own manifests so that the
expectations the suite compares a target against are about the very objects it applies.
"""

from __future__ import annotations

from typing import Any

import pytest

from linkerd_conformance import workshop
from linkerd_conformance.expectations import (
    CLIENT_KINDS,
    DEFAULT_POLICY_TABLE,
    ClientSpec,
    Expectation,
    PodSpec,
    expect_request,
    identity_matches,
    merge_objects,
    pod_from_deployment,
    render_matrix,
    sa_identity,
)
from linkerd_conformance.outcome import (
    ALLOWED,
    CONNECTION_CLOSED,
    GRPC_OK,
    GRPC_PERMISSION_DENIED,
    HTTP_FORBIDDEN,
    NOT_FOUND,
    OK,
    Outcome,
    Verdict,
)

CLUSTER_211 = ["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16"]  # F1.21
CLUSTER_216 = [*CLUSTER_211, "fd00::/8"]  # F1.22
NS = "emojivoto"


def ident(sa: str, ns: str) -> str:
    return sa_identity(sa, ns)


def meshed(sa: str, ns: str, ip: str = "10.42.0.20") -> ClientSpec:
    return ClientSpec(ip, ident(sa, ns))


UNMESHED = ClientSpec("10.42.0.30", None)
OUTSIDE = ClientSpec("203.0.113.9", None)
KUBELET = ClientSpec("172.18.0.2", None)  # the node address on kind (F1.23, F6.1)


def cluster(version: str) -> list[str]:
    return CLUSTER_216 if version >= "2.16" else CLUSTER_211


def ask(version: str, objects: Any, pod: PodSpec, client: ClientSpec, port: int = 8080,
        protocol: str = "http", **kw: Any) -> Expectation:
    kw.setdefault("cluster_networks", cluster(version))
    return expect_request(version, objects, pod, client, port, protocol, **kw)


def deployment_pod(name: str, policy: str) -> PodSpec:
    for obj in [*workshop.emojivoto(), *workshop.probe_demo()]:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == name:
            return pod_from_deployment(obj, policy)
    raise AssertionError(name)


def server(name: str, port: int | str, labels: dict[str, str] | None = None,
           hint: str | None = None, api: str = "v1beta1", **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"podSelector": {"matchLabels": labels or {"app": "web-svc"}},
                         "port": port, **spec}
    if hint:
        s["proxyProtocol"] = hint
    return {"apiVersion": f"policy.linkerd.io/{api}", "kind": "Server",
            "metadata": {"namespace": NS, "name": name}, "spec": s}


def saz(name: str, srv: str, client: dict[str, Any], ns: str = NS) -> dict[str, Any]:
    return {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "ServerAuthorization",
            "metadata": {"namespace": ns, "name": name},
            "spec": {"server": {"name": srv}, "client": client}}


def policy(name: str, target: dict[str, Any], refs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
            "metadata": {"namespace": NS, "name": name},
            "spec": {"targetRef": target, "requiredAuthenticationRefs": refs}}


def obj(kind: str, name: str, spec: dict[str, Any], api: str = "policy.linkerd.io/v1alpha1"
        ) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"namespace": NS, "name": name},
            "spec": spec}


def web_pod(policy_: str = "deny") -> PodSpec:
    return deployment_pod("web", policy_)


# ---- the workshop (emojivoto-policy.yml, then the wildcard edit) ----

@pytest.mark.parametrize("version", ["2.11", "2.12", "2.20"])
def test_workshop_policy_under_deny(version: str) -> None:
    objs = workshop.emojivoto_policy()
    web, emoji = web_pod(), deployment_pod("emoji", "deny")
    got = ask(version, objs, web, meshed("default", "bad"), path="/api/list")
    assert got.expected == OK and got.authorization == "serverauthorization/web-public"
    assert got.server == "server/web-http"
    assert ask(version, objs, web, OUTSIDE).expected == OK  # 0.0.0.0/0 listed explicitly
    assert ask(version, objs, emoji, meshed("web", NS), protocol="grpc",
               path="/emojivoto.v1.EmojiService/ListAll").expected == GRPC_OK
    impostor = ask(version, objs, emoji, meshed("web", "bad"), protocol="grpc")
    assert impostor.expected == GRPC_PERMISSION_DENIED  # F3.5: namespace defaults to emojivoto
    assert impostor.server == "server/emoji-grpc" and impostor.authorization is None
    assert "F2.8" in impostor.facts
    assert ask(version, objs, emoji, meshed("default", NS), protocol="grpc").expected \
        == GRPC_PERMISSION_DENIED
    # prom: 8801, no networks -> clusterNetworks only (F3.9)
    assert ask(version, objs, emoji, UNMESHED, port=8801).authorization \
        == "serverauthorization/prom-prometheus"
    assert ask(version, objs, emoji, OUTSIDE, port=8801).expected == HTTP_FORBIDDEN
    # the admin Server on linkerd-admin (4191), added by the injector (F6.1)
    assert ask(version, objs, web, KUBELET, port=4191, path="/metrics").authorization \
        == "serverauthorization/admin-everyone"


@pytest.mark.parametrize("version", ["2.11", "2.20"])
def test_workshop_wildcard_edit(version: str) -> None:
    objs = merge_objects(workshop.emojivoto_policy(), workshop.web_public_emojivoto_only())
    assert len(objs) == len(workshop.emojivoto_policy())  # an update in place, not an add
    web = web_pod()
    assert ask(version, objs, web, meshed("default", NS)).expected == OK  # vote-bot (F3.6)
    assert ask(version, objs, web, meshed("web", NS)).expected == OK
    bad = ask(version, objs, web, meshed("default", "bad"))
    assert bad.expected == HTTP_FORBIDDEN and bad.authorization is None
    assert "web-http" in bad.reason and "default.bad" in bad.reason
    assert ask(version, objs, web, UNMESHED).expected == HTTP_FORBIDDEN


# ---- default policies (F1.1-F1.8), against the hand-written table ----

KIND_CLIENTS = {
    "meshed-in-cluster": ClientSpec("10.244.1.5", ident("default", "other")),
    "unmeshed-in-cluster": ClientSpec("10.244.1.6", None),
    "meshed-outside": ClientSpec("198.51.100.7", ident("default", "other")),
    "unmeshed-outside": ClientSpec("198.51.100.8", None),
}


@pytest.mark.parametrize("version", ["2.11", "2.20"])
@pytest.mark.parametrize("default", list(DEFAULT_POLICY_TABLE))
@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_default_policy_table(version: str, default: str, kind: str) -> None:
    if default == "audit" and version == "2.11":
        pytest.skip("audit is 2.16+ (F1.2)")
    got = ask(version, [], web_pod(default), KIND_CLIENTS[kind])
    want = DEFAULT_POLICY_TABLE[default][kind]
    assert got.expected == (OK if want == "allowed" else HTTP_FORBIDDEN), got.reason
    sep = ":" if version == "2.11" else "/"
    assert got.server == f"default{sep}{default}"  # F1.8, F1.9
    assert got.authorization == (f"default{sep}{default}" if want == "allowed" else None)


def test_default_policy_tcp_denial_closes() -> None:
    got = ask("2.20", [], web_pod("deny"), UNMESHED, protocol="tcp")
    assert got.expected == CONNECTION_CLOSED  # F5.1
    assert ask("2.20", [], web_pod("all-unauthenticated"), UNMESHED, protocol="tcp").expected \
        == ALLOWED


def test_audit_only_from_216() -> None:
    for version in ("2.11", "2.15"):
        with pytest.raises(ValueError, match="not a valid"):
            ask(version, [], web_pod("audit"), UNMESHED)
    got = ask("2.16", [], web_pod("audit"), OUTSIDE)
    assert got.expected == OK and got.authorization == "default/audit"


def test_unknown_default_and_cluster_without_networks() -> None:
    with pytest.raises(ValueError):
        ask("2.20", [], web_pod("allow"), UNMESHED)
    with pytest.raises(ValueError, match="F1.20"):
        ask("2.20", [], web_pod("cluster-authenticated"), UNMESHED, cluster_networks=[])


def test_unmeshed_destination() -> None:
    pod = PodSpec(NS, {"app": "web-svc"}, "deny", [("http", 8080)], meshed=False)
    got = ask("2.20", workshop.emojivoto_policy(), pod, OUTSIDE)
    assert got.expected == ALLOWED and "not meshed" in got.reason


# ---- ServerAuthorization rules (F3.3-F3.11) ----

WILDCARD = "*.emojivoto.serviceaccount.identity.linkerd.cluster.local"


def test_wildcard_label_boundary() -> None:
    assert identity_matches(WILDCARD, ident("default", NS))
    assert identity_matches(WILDCARD, "a.b.emojivoto.serviceaccount.identity.linkerd.cluster.local")
    assert not identity_matches(WILDCARD, ident("x", "evilemojivoto"))
    assert not identity_matches(WILDCARD, "emojivoto.serviceaccount.identity.linkerd.cluster.local")
    assert identity_matches("*", ident("x", "y"))
    assert not identity_matches(ident("web", NS), ident("web", "bad"))
    objs = [server("web-http", "http", hint="HTTP/1"),
            saz("w", "web-http", {"meshTLS": {"identities": [WILDCARD]},
                                  "networks": [{"cidr": "0.0.0.0/0"}]})]
    assert ask("2.11", objs, web_pod(), meshed("x", "evilemojivoto")).expected == HTTP_FORBIDDEN
    assert ask("2.11", objs, web_pod(), meshed("x", NS)).expected == OK


@pytest.mark.parametrize("version", ["2.11", "2.20"])
def test_networks_unset_means_cluster_networks(version: str) -> None:
    unset = [server("web-http", 8080), saz("s", "web-http", {"unauthenticated": True})]
    assert ask(version, unset, web_pod(), UNMESHED).expected == OK
    got = ask(version, unset, web_pod(), OUTSIDE)
    assert got.expected == HTTP_FORBIDDEN and "F3.9" not in got.facts  # denied: no authz facts
    explicit = [server("web-http", 8080),
                saz("s", "web-http", {"unauthenticated": True,
                                      "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]})]
    assert ask(version, explicit, web_pod(), OUTSIDE).expected == OK
    excepted = [server("web-http", 8080),
                saz("s", "web-http", {"unauthenticated": True, "networks": [
                    {"cidr": "10.0.0.0/8", "except": ["10.42.0.0/16"]}]})]
    assert ask(version, excepted, web_pod(), UNMESHED).expected == HTTP_FORBIDDEN
    assert ask(version, excepted, web_pod(), ClientSpec("10.1.2.3", None)).expected == OK


def test_service_accounts_and_unauthenticated_tls() -> None:
    objs = [server("web-http", 8080),
            saz("sa", "web-http", {"meshTLS": {"serviceAccounts": [
                {"name": "vote", "namespace": "bad"}]}}),
            saz("tls", "web-http", {"meshTLS": {"unauthenticatedTLS": True}})]
    assert ask("2.11", objs, web_pod(), meshed("vote", "bad")).authorization \
        == "serverauthorization/sa"
    assert ask("2.11", objs, web_pod(), ClientSpec("10.1.1.1", None, tls=True)).authorization \
        == "serverauthorization/tls"
    assert ask("2.11", objs, web_pod(), UNMESHED).expected == HTTP_FORBIDDEN


def test_server_selector_and_namespace_scope() -> None:
    srv = server("web-http", 8080)
    srv["metadata"]["labels"] = {"tier": "front"}
    by_selector = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "ServerAuthorization",
                   "metadata": {"namespace": NS, "name": "sel"},
                   "spec": {"server": {"selector": {"matchLabels": {"tier": "front"}}},
                            "client": {"unauthenticated": True}}}
    assert ask("2.11", [srv, by_selector], web_pod(), UNMESHED).authorization \
        == "serverauthorization/sel"
    elsewhere = saz("s", "web-http", {"unauthenticated": True}, ns="bad")
    assert ask("2.11", [srv, elsewhere], web_pod(), UNMESHED).expected == HTTP_FORBIDDEN  # F2.15


# ---- protocols and hints (F2.3, F5.1-F5.4) ----

@pytest.mark.parametrize("protocol", ["http", "http2", "grpc", "tcp"])
def test_opaque_hint_closes_connections(protocol: str) -> None:
    objs = [server("web-http", 8080, hint="opaque")]
    got = ask("2.20", objs, web_pod("all-unauthenticated"), UNMESHED, protocol=protocol)
    assert got.expected == CONNECTION_CLOSED
    objs.append(saz("s", "web-http", {"unauthenticated": True}))
    assert ask("2.20", objs, web_pod(), UNMESHED, protocol=protocol).expected == ALLOWED


@pytest.mark.parametrize("version", ["2.11", "2.20"])
def test_an_opaque_ports_annotation_closes_connections_on_the_default_server(
        version: str) -> None:
    """F5.12: a port listed in config.linkerd.io/opaque-ports is opaque without any Server."""
    import dataclasses
    pod = dataclasses.replace(web_pod(), opaque_ports=(8080,))
    for protocol in ("http", "grpc", "tcp"):
        assert ask(version, [], pod, UNMESHED, protocol=protocol).expected == CONNECTION_CLOSED
    assert ask(version, [], web_pod(), UNMESHED).expected == HTTP_FORBIDDEN


def test_detected_protocols_deny_per_request() -> None:
    objs = [server("web-http", 8080)]
    assert ask("2.20", objs, web_pod(), UNMESHED, protocol="http2").expected == HTTP_FORBIDDEN
    assert ask("2.20", objs, web_pod(), UNMESHED, protocol="grpc").expected \
        == GRPC_PERMISSION_DENIED
    assert ask("2.20", objs, web_pod(), UNMESHED, protocol="tcp").expected == CONNECTION_CLOSED


def test_hint_mismatch_is_not_guessed() -> None:
    with pytest.raises(ValueError, match="not specified"):
        ask("2.20", [server("web-http", 8080, hint="HTTP/1")], web_pod(), UNMESHED,
            protocol="grpc")


# ---- ports: 2.11 declared ports only, 2.12+ numeric ports (F2.9-F2.11, F2.15) ----

def test_211_unknown_port_closed_even_for_http() -> None:
    objs = [server("metrics", 9090),
            saz("m", "metrics", {"unauthenticated": True, "networks": [{"cidr": "0.0.0.0/0"}]})]
    old = ask("2.11", objs, web_pod(), UNMESHED, port=9090)
    assert old.expected == CONNECTION_CLOSED and old.server == "default:deny"
    assert "F2.10" in old.facts and "ignores" in old.reason
    new = ask("2.12", objs, web_pod(), UNMESHED, port=9090)
    assert new.expected == OK and new.server == "server/metrics"
    allow = ask("2.11", objs[:1], web_pod("all-unauthenticated"), UNMESHED, port=9090)
    assert allow.expected == OK and allow.authorization == "default:all-unauthenticated"
    assert ask("2.12", objs[:1], web_pod("all-unauthenticated"), UNMESHED, port=9090).expected \
        == HTTP_FORBIDDEN  # the Server now applies, with no authorization (F2.8, F2.11)


@pytest.mark.parametrize("version", ["2.11", "2.12", "2.20"])
def test_named_port_must_be_declared(version: str) -> None:
    objs = [server("metrics", "metrics"), saz("m", "metrics", {"unauthenticated": True})]
    got = ask(version, objs, web_pod("all-unauthenticated"), UNMESHED, port=9090)
    assert got.authorization is not None and got.authorization.startswith("default")
    assert "metrics" in got.reason


def test_overlapping_servers_oldest_wins() -> None:
    young = server("young", 8080)
    young["metadata"]["creationTimestamp"] = "2024-02-01T00:00:00Z"
    old = server("old", "http")
    old["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    objs = [young, old, saz("s", "young", {"unauthenticated": True})]
    got = ask("2.18", objs, web_pod(), UNMESHED)
    assert got.server == "server/old" and got.expected == HTTP_FORBIDDEN and "F2.14" in got.reason


# ---- probes (F6.1-F6.7) ----

def probe_pod() -> PodSpec:
    pod = deployment_pod("probe-demo", "deny")
    assert (8080, "/ready") in pod.http_probes
    return pod


@pytest.mark.parametrize("version", ["2.12", "2.20"])
def test_probe_route_without_server(version: str) -> None:
    pod = probe_pod()
    got = ask(version, [], pod, KUBELET, path="/ready")
    assert got.expected == OK and got.authorization == "default/probe"
    assert ask(version, [], pod, KUBELET, path="/ready?verbose=1").expected == OK
    assert ask(version, [], pod, KUBELET, path="/other").expected == HTTP_FORBIDDEN
    assert ask(version, [], pod, KUBELET, method="POST", path="/ready").expected \
        == HTTP_FORBIDDEN
    assert ask(version, [], pod, KUBELET, path="/ready", probe_networks=[]).expected \
        == HTTP_FORBIDDEN  # F6.4: empty disables probe routes
    assert ask(version, [], pod, KUBELET, port=4191, path="/live").authorization \
        == "default/probe"  # the proxy's own probes (F6.3)


def test_no_probe_route_in_211() -> None:
    pod = probe_pod()
    assert ask("2.11", [], pod, KUBELET, path="/ready").expected == HTTP_FORBIDDEN  # F6.1
    assert ask("2.11", [], pod, KUBELET, port=4191, path="/live").expected == HTTP_FORBIDDEN
    assert ask("2.11", workshop.admin_only_policy(), pod, KUBELET, port=4191,
               path="/live").expected == OK
    assert ask("2.11", workshop.probe_demo_policy(), pod, KUBELET, path="/ready").authorization \
        == "serverauthorization/probe-demo-kubelet"


def test_probe_networks_ipv6_from_216() -> None:
    v6 = ClientSpec("2001:db8::7", None)
    assert ask("2.15", [], probe_pod(), v6, path="/ready").expected == HTTP_FORBIDDEN
    assert ask("2.16", [], probe_pod(), v6, path="/ready").expected == OK


def test_probe_with_server_then_route() -> None:
    srv = [o for o in workshop.probe_demo_policy() if o["kind"] == "Server"]
    assert ask("2.12", srv, probe_pod(), KUBELET, path="/ready").authorization \
        == "default/probe"  # F6.5(b), F6.6: code over the tasks page
    assert ask("2.12", srv, probe_pod(), KUBELET, path="/x").expected == HTTP_FORBIDDEN
    route = obj("HTTPRoute", "api", {
        "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server",
                        "name": "probe-demo-http"}],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}]}]},
        api="policy.linkerd.io/v1beta1")
    got = ask("2.12", [*srv, route], probe_pod(), KUBELET, path="/ready")
    assert got.expected == NOT_FOUND and "F4.14" in got.facts
    assert ask("2.12", [*srv, route], probe_pod(), KUBELET, path="/api/x").expected \
        == HTTP_FORBIDDEN


def test_no_probe_route_on_grpc_server() -> None:
    srv = server("probe-grpc", 8080, labels={"app": "probe-demo"}, hint="gRPC")
    got = ask("2.20", [srv], probe_pod(), KUBELET, protocol="http2", path="/ready")
    assert got.expected == HTTP_FORBIDDEN  # F6.7


# ---- accessPolicy (F2.6, F2.7) ----

def test_access_policy_v1beta3_only() -> None:
    srv = server("web-http", 8080, api="v1beta3", accessPolicy="all-unauthenticated")
    got = ask("2.16", [srv], web_pod(), OUTSIDE)
    assert got.expected == OK and got.authorization == "default/all-unauthenticated"
    pruned = server("web-http", 8080, api="v1beta1", accessPolicy="all-unauthenticated")
    got = ask("2.16", [pruned], web_pod(), OUTSIDE)
    assert got.expected == HTTP_FORBIDDEN and "F2.7" in got.reason
    with pytest.raises(ValueError, match="not served"):
        ask("2.15", [srv], web_pod(), OUTSIDE)
    with pytest.raises(ValueError, match="accessPolicy"):
        ask("2.16", [server("w", 8080, api="v1beta3", accessPolicy="allow")], web_pod(), OUTSIDE)
    audit = server("web-http", 8080, api="v1beta3", accessPolicy="audit")
    assert ask("2.20", [audit], web_pod(), OUTSIDE).authorization == "default/audit"
    authn = server("web-http", 8080, api="v1beta3", accessPolicy="cluster-authenticated")
    assert ask("2.20", [authn], web_pod(), UNMESHED).expected == HTTP_FORBIDDEN
    assert ask("2.20", [authn], web_pod(), meshed("a", "b")).expected == OK


# ---- AuthorizationPolicy family (F4.2-F4.15) ----

MTLS = obj("MeshTLSAuthentication", "web-only", {"identities": [ident("web", NS)]})
NET = obj("NetworkAuthentication", "cluster", {"networks": [{"cidr": "10.0.0.0/8"}]})
MTLS_REF = {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "web-only"}
NET_REF = {"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "cluster"}
TO_SERVER = {"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}


def test_authorization_policy_requires_all_refs() -> None:
    objs = [server("web-http", 8080), MTLS, NET, policy("both", TO_SERVER, [MTLS_REF, NET_REF])]
    got = ask("2.12", objs, web_pod(), meshed("web", NS))
    assert got.expected == OK and got.authorization == "authorizationpolicy/both"
    assert ask("2.12", objs, web_pod(), meshed("web", NS, ip="203.0.113.1")).expected \
        == HTTP_FORBIDDEN
    assert ask("2.12", objs, web_pod(), meshed("vote", NS)).expected == HTTP_FORBIDDEN
    assert ask("2.12", objs, web_pod(), UNMESHED).expected == HTTP_FORBIDDEN


def test_authorization_policy_defaults_and_missing_refs() -> None:
    only_mtls = [server("web-http", 8080), MTLS, policy("m", TO_SERVER, [MTLS_REF])]
    assert ask("2.20", only_mtls, web_pod(), meshed("web", NS, ip="203.0.113.1")).expected \
        == OK  # F4.6: no NetworkAuthentication -> every network
    missing = [server("web-http", 8080), MTLS, policy("gone", TO_SERVER, [MTLS_REF, NET_REF])]
    got = ask("2.20", missing, web_pod(), meshed("web", NS))
    assert got.expected == HTTP_FORBIDDEN and "F4.7" in got.reason
    everyone = [server("web-http", 8080), policy("all", TO_SERVER, [])]
    assert ask("2.20", everyone, web_pod(), OUTSIDE).authorization == "authorizationpolicy/all"
    sa_ref = [server("web-http", 8080),
              policy("sa", TO_SERVER, [{"kind": "ServiceAccount", "name": "web"}])]
    assert ask("2.20", sa_ref, web_pod(), meshed("web", NS)).expected == OK
    with pytest.raises(ValueError, match="not served"):
        ask("2.11", everyone, web_pod(), OUTSIDE)


def test_namespace_target_attaches_to_servers_only() -> None:
    ns_policy = policy("ns", {"kind": "Namespace", "name": NS}, [])
    assert ask("2.20", [server("web-http", 8080), ns_policy], web_pod(), OUTSIDE).authorization \
        == "authorizationpolicy/ns"
    assert ask("2.20", [ns_policy], web_pod(), OUTSIDE).expected == HTTP_FORBIDDEN  # F4.4


def test_route_policies_plus_server_policies() -> None:
    route = obj("HTTPRoute", "api", {
        "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                                "method": "GET"}]}]}, api="policy.linkerd.io/v1beta3")
    on_route = policy("api", {"group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "api"},
                      [MTLS_REF])
    objs = [server("web-http", 8080), route, MTLS, on_route]
    assert ask("2.14", objs, web_pod(), meshed("web", NS), path="/api/list").authorization \
        == "authorizationpolicy/api"
    assert ask("2.14", objs, web_pod(), meshed("vote", NS), path="/api/list").expected \
        == HTTP_FORBIDDEN
    assert ask("2.14", objs, web_pod(), meshed("web", NS), path="/apix").expected == NOT_FOUND
    assert ask("2.14", objs, web_pod(), meshed("web", NS), method="POST",
               path="/api/vote").expected == NOT_FOUND
    server_wide = [*objs, policy("srv", TO_SERVER, [])]
    assert ask("2.14", server_wide, web_pod(), OUTSIDE, path="/api/list").authorization \
        == "authorizationpolicy/srv"  # F4.15


def test_gateway_routes_by_version() -> None:
    route = obj("HTTPRoute", "api", {
        "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}],
        "rules": [{"matches": [{"path": {"type": "Exact", "value": "/api"}}]}]},
        api="gateway.networking.k8s.io/v1")
    objs = [server("web-http", 8080), route, policy("srv", TO_SERVER, [])]
    assert ask("2.13", objs, web_pod(), OUTSIDE, path="/x").expected == OK  # ignored (F4.12)
    assert ask("2.14", objs, web_pod(), OUTSIDE, path="/x").expected == NOT_FOUND


def test_grpc_route_216() -> None:
    emoji = deployment_pod("emoji", "deny")
    srv = server("emoji-grpc", "grpc", labels={"app": "emoji-svc"}, hint="gRPC")
    route = obj("GRPCRoute", "list", {
        "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "emoji-grpc"}],
        "rules": [{"matches": [{"method": {"service": "emojivoto.v1.EmojiService",
                                           "method": "ListAll"}}]}]},
        api="gateway.networking.k8s.io/v1")
    on_route = policy("list", {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute",
                               "name": "list"}, [])
    objs = [srv, route, on_route]
    ok = ask("2.16", objs, emoji, UNMESHED, protocol="grpc",
             path="/emojivoto.v1.EmojiService/ListAll")
    assert ok.expected == GRPC_OK and ok.authorization == "authorizationpolicy/list"
    assert ask("2.16", objs, emoji, UNMESHED, protocol="grpc",
               path="/emojivoto.v1.EmojiService/FindByShortcode").expected == NOT_FOUND
    assert ask("2.15", [srv, on_route], emoji, UNMESHED, protocol="grpc").expected \
        == GRPC_PERMISSION_DENIED


# ---- the truth table ----

def test_render_matrix_marks_wrong_cells() -> None:
    objs = workshop.emojivoto_policy()
    web = web_pod()
    sources = {"vote-bot": meshed("default", NS), "outside": OUTSIDE}
    dests = {"web:8080": 8080, "web:9999": 9999}
    expected = {(s, d): ask("2.11", objs, web, c, port=p)
                for s, c in sources.items() for d, p in dests.items()}
    observed = {("vote-bot", "web:8080"): Outcome(Verdict.ALLOWED, "http", status=200),
                ("outside", "web:8080"): Outcome(Verdict.HTTP_FORBIDDEN, "http", status=403),
                ("vote-bot", "web:9999"): Outcome(Verdict.CONNECTION_CLOSED, "tcp")}
    text = render_matrix(list(sources), list(dests), expected, observed)
    assert "expected:" in text and "observed:" in text and "diff" in text
    assert "2 of 3 cells right" in text  # 9999: 2.11 closes at accept (F2.10)
    assert "! outside -> web:8080" in text
    assert "! vote-bot -> web:9999" not in text
    lines = text.splitlines()
    diff_row = next(i for i, line in enumerate(lines) if line.startswith("diff"))
    assert "!" in lines[diff_row + 3]
