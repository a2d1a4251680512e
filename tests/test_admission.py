"""The reference API server refuses what Linkerd's would, with the same words, per version."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from linkerd_conformance import manifests
from linkerd_conformance.api import KNOWN_VERSIONS, Profile
from linkerd_conformance.reference.admission import (
    IDENTITY_PATTERN,
    WEBHOOK,
    AdmissionError,
    admit,
    warnings,
)

V211, V212, V213, V216, V218, V220 = (Profile(v) for v in
                                      ("2.11", "2.12", "2.13", "2.16", "2.18", "2.20"))


def server(name: str = "web-http", api: str = "v1beta1", **spec: Any) -> dict[str, Any]:
    body = {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": "http",
            "proxyProtocol": "HTTP/1"}
    body.update(spec)
    return {"apiVersion": f"policy.linkerd.io/{api}", "kind": "Server",
            "metadata": {"name": name, "namespace": "emojivoto"},
            "spec": {k: v for k, v in body.items() if v is not None}}


def saz(client: dict[str, Any], srv: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "ServerAuthorization",
            "metadata": {"name": "web-public", "namespace": "emojivoto"},
            "spec": {"server": srv if srv is not None else {"name": "web-http"},
                     "client": client}}


def policy(kind: str, spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": "emojivoto"}, "spec": spec}


def refused(obj: dict[str, Any], profile: Profile, existing: list[dict[str, Any]] | None = None
            ) -> str:
    with pytest.raises(AdmissionError) as info:
        admit(obj, profile, existing or [])
    return str(info.value)


# --- every file this project applies ------------------------------------------------------


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_all_manifests_are_admitted(version: str) -> None:
    existing: list[dict[str, Any]] = []
    for name in manifests.names():
        for obj in manifests.load(name):
            admit(obj, Profile(version), existing)
            existing.append(obj)


# --- kinds and versions (F2.1, F3.1, F4.1) ------------------------------------------------


@pytest.mark.parametrize(("api", "first"), [("v1alpha1", "2.11"), ("v1beta1", "2.11"),
                                            ("v1beta2", "2.15"), ("v1beta3", "2.16")])
def test_server_versions(api: str, first: str) -> None:
    for version in KNOWN_VERSIONS:
        obj = server(api=api)
        if Profile(version).at_least(first):
            admit(obj, Profile(version))
        else:
            assert refused(obj, Profile(version)) == (
                f'no matches for kind "Server" in version "policy.linkerd.io/{api}"')


@pytest.mark.parametrize("kind", ["AuthorizationPolicy", "MeshTLSAuthentication",
                                  "NetworkAuthentication"])
def test_policy_kinds_arrive_in_2_12(kind: str) -> None:
    obj = policy(kind, {})
    assert refused(obj, V211) == (
        f'no matches for kind "{kind}" in version "policy.linkerd.io/v1alpha1"')
    assert "no matches" not in refused(obj, V212)  # known; refused for its empty spec instead


def test_unknown_kind() -> None:
    obj = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Serverr",
           "metadata": {"name": "x", "namespace": "emojivoto"}, "spec": {}}
    assert 'no matches for kind "Serverr" in version "policy.linkerd.io/v1beta1"' in refused(
        obj, V220)
    obj = {"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "x"}}
    assert 'no matches for kind "Deployment" in version "v1"' in refused(obj, V220)


# --- core kinds --------------------------------------------------------------------------


def test_core_objects_are_checked_against_kubernetes_schemas() -> None:
    [*_, deployment] = [o for o in manifests.load("emojivoto") if o["kind"] == "Deployment"]
    broken = copy.deepcopy(deployment)
    del broken["spec"]["selector"]
    assert refused(broken, V211) == (
        'Deployment.apps "vote-bot" is invalid: spec.selector: Required value')
    extra = copy.deepcopy(deployment)
    extra["spec"]["replicaz"] = 2
    assert 'strict decoding error: unknown field "spec.replicaz"' in refused(extra, V211)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Bad_Name"}}
    assert refused(ns, V220).startswith(
        'Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 label")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "x"}}
    assert refused(cm, V220) == "resource name may not be empty"
    admit({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
           "data": {"k": "v"}}, V220)


# --- Server (F2.2-F2.14) -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["podSelector", "port"])
def test_server_required_fields(field: str) -> None:
    obj = server(**{field: None})
    for profile in (V211, V220):
        assert refused(obj, profile) == (
            f'Server.policy.linkerd.io "web-http" is invalid: spec.{field}: Required value')


def test_server_pod_selector_is_match_labels_xor_expressions_in_2_11() -> None:
    both = server(podSelector={"matchLabels": {"app": "x"},
                               "matchExpressions": [{"key": "a", "operator": "Exists"}]})
    assert "must validate one and only one schema (oneOf)" in refused(both, V211)
    bad_op = server(podSelector={"matchExpressions": [{"key": "a", "operator": "Is"}]})
    assert refused(bad_op, V220).endswith(
        'spec.podSelector.matchExpressions[0].operator: Unsupported value: "Is": '
        'supported values: "In", "NotIn", "Exists", "DoesNotExist"')


def test_bad_proxy_protocol_crd_in_2_11_webhook_from_2_12() -> None:
    obj = server(proxyProtocol="invalid")
    assert refused(obj, V211) == (
        'Server.policy.linkerd.io "web-http" is invalid: spec.proxyProtocol: Unsupported '
        'value: "invalid": supported values: "unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", '
        '"TLS"')
    expected = (WEBHOOK + "unknown variant `invalid`, expected one of `unknown`, `HTTP/1`, "
                "`HTTP/2`, `gRPC`, `opaque`, `TLS`")
    for profile in (V212, V220):
        assert refused(obj, profile) == expected


def test_access_policy_is_checked_by_the_webhook() -> None:
    for value in ("deny", "audit", "all-authenticated", "cluster-unauthenticated"):
        admit(server(api="v1beta3", accessPolicy=value), V216)
    assert refused(server(api="v1beta3", accessPolicy="allow"), V220) == (
        WEBHOOK + "Invalid 'accessPolicy' field: invalid mode: \"allow\"")
    admit(server(api="v1beta1", accessPolicy="allow"), V220)  # pruned, not checked (F2.7)


def test_v1beta2_needs_exactly_one_selector() -> None:
    obj = server(api="v1beta2", podSelector=None)
    assert "must validate one and only one schema (oneOf). Found none valid" in refused(
        obj, V220)


def test_identical_server_spec_in_2_11_and_2_12() -> None:
    first = server("web-http")
    twin = server("web-http-2")
    numeric = server("web-http-3", port=8080)
    other = server("web-http-4", podSelector={"matchLabels": {"app": "web-svc", "x": "y"}})
    for profile in (V211, V212):
        assert refused(twin, profile, [first]) == WEBHOOK + "identical server spec already exists"
        admit(numeric, profile, [first])  # a number and its name are not compared (F2.12)
        admit(other, profile, [first])  # neither selects all, and they differ
        admit(first, profile, [first])  # an update of the same Server


def test_2_12_refuses_overlapping_servers_with_the_old_message() -> None:
    """F2.12 (revision 2): 2.12's webhook already uses the overlap rule, with 2.11's words;
    2.11 refuses only an identical spec."""
    everyone = server("admin", podSelector={"matchLabels": {}}, port="linkerd-admin")
    proxy_admin = server("proxy-admin", port="linkerd-admin", podSelector={
        "matchLabels": {"linkerd.io/control-plane-ns": "linkerd"}})
    assert refused(proxy_admin, V212, [everyone]) == (
        WEBHOOK + "identical server spec already exists")
    admit(proxy_admin, V211, [everyone])


def test_overlapping_servers_2_13_to_2_17() -> None:
    everyone = server("admin", podSelector={"matchLabels": {}}, port="linkerd-admin")
    proxy_admin = server("proxy-admin", port="linkerd-admin", podSelector={
        "matchExpressions": [{"key": "linkerd.io/control-plane-ns", "operator": "Exists"}]})
    for version in ("2.13", "2.17"):
        assert refused(proxy_admin, Profile(version), [everyone]) == (
            WEBHOOK + "Server spec 'emojivoto/admin' already defines a policy for port "
            "linkerd-admin, and selects pods that would be selected by this Server")
    for profile in (V211, V218, V220):  # 2.11: not identical; 2.18+: no check (F2.14)
        admit(proxy_admin, profile, [everyone])


# --- ServerAuthorization (F3.3-F3.10) ----------------------------------------------------


def test_server_is_name_xor_selector() -> None:
    both = saz({"unauthenticated": True},
               {"name": "web-http", "selector": {"matchLabels": {"a": "b"}}})
    neither = saz({"unauthenticated": True}, {})
    for profile in (V211, V220):
        assert '"spec.server" must validate one and only one schema (oneOf). Found 2' in refused(
            both, profile)
        assert "Found none valid" in refused(neither, profile)


def test_unauthenticated_next_to_mesh_tls() -> None:
    obj = saz({"unauthenticated": True, "meshTLS": {"identities": ["*"]}})
    assert '"spec.client" must validate one and only one schema (oneOf)' in refused(obj, V211)
    assert refused(obj, V220) == (
        WEBHOOK + "`unauthenticated` must be false if `mesh_tls` is specified")


def test_mesh_tls_is_one_of_three() -> None:
    obj = saz({"meshTLS": {"unauthenticatedTLS": True, "identities": ["*"]}})
    assert '"spec.client.meshTLS" must validate one and only one schema' in refused(obj, V211)
    assert refused(obj, V220) == (
        WEBHOOK + "`unauthenticatedTLS` be false if any `identities` or `service_accounts` is "
        "specified")


@pytest.mark.parametrize("identity", ["*", "*.emojivoto.serviceaccount.identity.linkerd.cluster."
                                      "local", "web.emojivoto.serviceaccount.identity.linkerd."
                                      "cluster.local"])
def test_good_identities(identity: str) -> None:
    for profile in (V211, V220):
        admit(saz({"meshTLS": {"identities": [identity]}}), profile)


@pytest.mark.parametrize("identity", ["emojivoto.*", "*emojivoto", "Web.emojivoto", "a..b", ""])
def test_malformed_identity_fails_the_crd_pattern(identity: str) -> None:
    obj = saz({"meshTLS": {"identities": [identity]}})
    assert refused(obj, V211) == (
        f'ServerAuthorization.policy.linkerd.io "web-public" is invalid: '
        f'spec.client.meshTLS.identities[0]: Invalid value: "{identity}": '
        f"spec.client.meshTLS.identities[0] in body should match '{IDENTITY_PATTERN}'")


def test_networks() -> None:
    def with_nets(*nets: dict[str, Any]) -> dict[str, Any]:
        return saz({"unauthenticated": True, "networks": list(nets)})

    admit(with_nets({"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}, {"cidr": "10.1.2.3"}), V211)
    assert "invalid IP address syntax" in refused(with_nets({"cidr": "10.0.0.0/33"}), V220)
    assert refused(with_nets({"cidr": "10.0.0.0/8", "except": ["10.0.0.0/7"]}), V220) == (
        WEBHOOK + "cidr '10.0.0.0/8' is completely negated by exception '10.0.0.0/7'")
    assert refused(with_nets({"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}), V220) == (
        WEBHOOK + "cidr '10.0.0.0/8' does not include exception '192.168.0.0/16'")
    assert refused(with_nets({"except": ["10.0.0.0/8"]}), V220).endswith(
        "spec.client.networks[0].cidr: Required value")


# --- AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication (F4.2-F4.10) -----


def authz(target: dict[str, Any], *refs: dict[str, Any]) -> dict[str, Any]:
    return policy("AuthorizationPolicy",
                  {"targetRef": target, "requiredAuthenticationRefs": list(refs)})


SRV = {"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}
MTLS = {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "m"}
NET = {"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "n"}
SA = {"kind": "ServiceAccount", "name": "web"}


def test_authorization_policy_rules() -> None:
    admit(authz(SRV, MTLS, NET), V212)
    admit(authz(SRV), V212)  # empty refs: every client (F4.6)
    admit(authz({"kind": "Namespace", "name": "emojivoto"}, SA), V220)
    assert refused(policy("AuthorizationPolicy", {"targetRef": SRV}), V212).endswith(
        "spec.requiredAuthenticationRefs: Required value")
    cases = {
        WEBHOOK + "cannot target another namespace: bad":
            authz({"kind": "Namespace", "name": "bad"}, SA),
        WEBHOOK + "unsupported authorization target type: Pod":  # 2.19+ (F4.3)
            authz({"kind": "Pod", "name": "x"}),
        WEBHOOK + "only a single MeshTLSAuthentication may be set": authz(SRV, MTLS, MTLS),
        WEBHOOK + "only a single ServiceAccount may be set": authz(SRV, SA, SA),
        WEBHOOK + "a MeshTLSAuthentication and ServiceAccount may not be set together":
            authz(SRV, MTLS, SA),
        WEBHOOK + "only a single NetworkAuthentication may be set": authz(SRV, NET, NET),
        WEBHOOK + "unsupported authentication kind(s): Secret":
            authz(SRV, {"kind": "Secret", "name": "s"}),
    }
    for message, obj in cases.items():
        assert refused(obj, V220) == message


def test_meshtls_authentication_rules() -> None:
    ids = ["*.emojivoto.serviceaccount.identity.linkerd.cluster.local"]
    admit(policy("MeshTLSAuthentication", {"identities": ids}), V212)
    admit(policy("MeshTLSAuthentication",
                 {"identityRefs": [{"kind": "Namespace", "name": "emojivoto"}]}), V220)
    assert "should match" in refused(policy("MeshTLSAuthentication",
                                            {"identities": ["Nope!"]}), V220)
    assert "must validate one and only one schema" in refused(
        policy("MeshTLSAuthentication", {"identities": ids, "identityRefs": [SA]}), V220)
    empty = policy("MeshTLSAuthentication", {"identities": []})
    admit(empty, V212)  # minItems only from 2.14 (F4.9)
    assert "should have at least 1 items" in refused(empty, V220)
    assert refused(policy("MeshTLSAuthentication", {"identityRefs": [
        {"kind": "Namespace", "name": "x", "namespace": "y"}]}), V220) == (
        WEBHOOK + "Namespace identity_ref is cluster-scoped and cannot have a namespace")


def test_network_authentication_rules() -> None:
    admit(policy("NetworkAuthentication", {"networks": [{"cidr": "0.0.0.0/0"}]}), V212)
    assert refused(policy("NetworkAuthentication", {"networks": []}), V220) == (
        WEBHOOK + "at least one network must be specified")


# --- AuthorizationPolicy targets and routes (F4.1, F4.3, F4.11-F4.13) ---------------------

GW = "gateway.networking.k8s.io"
V214, V215, V217, V219 = (Profile(v) for v in ("2.14", "2.15", "2.17", "2.19"))


def route(api: str = "policy.linkerd.io/v1beta1", kind: str = "HTTPRoute",
          parents: list[dict[str, Any]] | None = None, **rule: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": "r", "namespace": "emojivoto"},
            "spec": {"parentRefs": parents if parents is not None else [
                {"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}],
                "rules": [rule]}}


def test_policy_targets_per_version() -> None:
    """2.12-2.18 list the target kinds (GRPCRoute from 2.16); 2.19+ take the index's kinds,
    Gateway API HTTPRoutes included, and word a bad kind as the index does; the kind is judged
    after the authentication rules there."""
    gw_http = {"group": GW, "kind": "HTTPRoute", "name": "r"}
    grpc = {"group": GW, "kind": "GRPCRoute", "name": "r"}
    for profile in (V214, V218):
        assert refused(authz(gw_http), profile) == (
            WEBHOOK + f"invalid targetRef kind: HTTPRoute.{GW}")
    for profile in (V219, V220):
        admit(authz(gw_http), profile)
    assert refused(authz(grpc), V215) == WEBHOOK + f"invalid targetRef kind: GRPCRoute.{GW}"
    for profile in (V216, V218, V220):
        admit(authz(grpc), profile)
    pod = {"kind": "Pod", "name": "x"}
    assert refused(authz(pod), V218) == WEBHOOK + "invalid targetRef kind: Pod"
    assert refused(authz(pod, MTLS, MTLS), V218) == WEBHOOK + "invalid targetRef kind: Pod"
    assert refused(authz(pod, MTLS, MTLS), V220) == (
        WEBHOOK + "only a single MeshTLSAuthentication may be set")


def test_httproute_versions_per_release() -> None:
    """F4.1: v1alpha1 and v1beta1 in 2.12, v1beta2 from 2.13, v1beta3 from 2.14."""
    for version in KNOWN_VERSIONS:
        for api, first in (("v1alpha1", "2.12"), ("v1beta1", "2.12"), ("v1beta2", "2.13"),
                           ("v1beta3", "2.14")):
            obj = route(f"policy.linkerd.io/{api}")
            if Profile(version).at_least(first):
                admit(obj, Profile(version))
            else:
                assert refused(obj, Profile(version)) == (
                    f'no matches for kind "HTTPRoute" in version "policy.linkerd.io/{api}"')


RELATIVE = WEBHOOK + ('HttpPathMatch paths must be absolute (begin with `/`); "foo/bar" is not '
                      "an absolute path")


def test_relative_route_paths() -> None:
    """Every release refuses a relative Exact or PathPrefix path in the versions its webhook
    is registered for: 2.12-2.14 only v1alpha1 and v1beta1 (destination-rbac.yaml), so a
    v1beta2/v1beta3 route skips it there; every version from 2.15."""
    for kind in ("Exact", "PathPrefix"):
        obj = route(matches=[{"path": {"type": kind, "value": "foo/bar"}}])
        for profile in (V212, V214, V220):
            assert refused(obj, profile) == RELATIVE
    beta3 = route("policy.linkerd.io/v1beta3",
                  matches=[{"path": {"type": "Exact", "value": "foo/bar"}}])
    admit(beta3, V214)
    assert refused(beta3, V215) == RELATIVE
    admit(route(matches=[{"path": {"type": "RegularExpression", "value": "foo.*"}}]), V220)


def test_route_parents_and_backends() -> None:
    """2.12: every parentRef of a policy.linkerd.io HTTPRoute must be a Server; 2.17+: a
    Gateway API route's Service backendRef needs a port."""
    to_service = route(parents=[{"group": "core", "kind": "Service", "name": "web-svc",
                                 "port": 80}])
    assert refused(to_service, V212) == (
        WEBHOOK + "policy.linkerd.io HTTPRoutes must target only Server resources")
    admit(to_service, V213)
    no_port = route(f"{GW}/v1beta1", backendRefs=[{"name": "web-svc"}])
    admit(no_port, V216)
    assert refused(no_port, V217) == WEBHOOK + "invalid backendRef"
    admit(route(f"{GW}/v1beta1", backendRefs=[{"name": "web-svc", "port": 80}]), V217)
    admit(route(f"{GW}/v1beta1", backendRefs=[{"kind": "Other", "group": "x.io",
                                                 "name": "o"}]), V220)


def test_gateway_api_route_kinds_per_release() -> None:
    """Gateway API HTTPRoute from 2.14 (v1beta1), GRPCRoute from 2.16 (v1alpha2; v1 from
    2.18), as Linkerd's CRD bundle serves them."""
    assert refused(route(f"{GW}/v1beta1"), V213) == (
        f'no matches for kind "HTTPRoute" in version "{GW}/v1beta1"')
    admit(route(f"{GW}/v1beta1"), V214)
    grpc = route(f"{GW}/v1alpha2", kind="GRPCRoute")
    assert "no matches" in refused(grpc, V215)
    admit(grpc, V216)
    assert "no matches" in refused(route(f"{GW}/v1", kind="GRPCRoute"), V217)
    admit(route(f"{GW}/v1", kind="GRPCRoute"), V218)
@pytest.mark.parametrize(("version", "kind", "api", "expected"), [
    ("2.11", "Server", "v1alpha1", None),
    ("2.12", "Server", "v1alpha1", "policy.linkerd.io/v1alpha1 Server is deprecated; use "
                                   "policy.linkerd.io/v1beta1 Server"),
    ("2.14", "Server", "v1beta1", None),
    ("2.15", "Server", "v1beta1", "policy.linkerd.io/v1alpha1 Server is deprecated; use "
                                  "policy.linkerd.io/v1beta2 Server"),
    ("2.17", "Server", "v1beta1", "policy.linkerd.io/v1beta1 Server is deprecated; use "
                                  "policy.linkerd.io/v1beta3 Server"),
    ("2.20", "Server", "v1beta3", None),
    ("2.20", "ServerAuthorization", "v1alpha1", "policy.linkerd.io/v1alpha1 ServerAuthorization "
                                                "is deprecated; use policy.linkerd.io/v1beta1 "
                                                "ServerAuthorization"),
    ("2.20", "ServerAuthorization", "v1beta1", None),
])
def test_deprecated_versions_warn(version: str, kind: str, api: str,
                                  expected: str | None) -> None:
    """F2.1, F3.1: the CRDs' deprecationWarning, as the API server sends it on a write."""
    obj = {"apiVersion": f"policy.linkerd.io/{api}", "kind": kind,
           "metadata": {"name": "x", "namespace": "app"}, "spec": {}}
    assert warnings(obj, Profile(version)) == ([expected] if expected else [])
    assert warnings({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "x"}}, Profile(version)) == []
