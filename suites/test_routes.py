"""Route-based inbound policy (2.12+): HTTPRoutes of both API groups, GRPCRoutes, their matches,
what an AuthorizationPolicy may target, and what admission refuses in a route.

A Server with routes sends each request to at most one of them, the most specific by Gateway
API precedence (F4.11); a request matching none gets 404, a gRPC call grpc-status 5 (F4.13,
F4.14). The route-free cases (probes, 404s, AuthorizationPolicy on a Server) are in
test_probes_ports_and_routes.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from linkerd_conformance import (
    GRPC_NOT_FOUND,
    GRPC_OK,
    GRPC_PERMISSION_DENIED,
    HTTP_FORBIDDEN,
    NOT_FOUND,
    OK,
    Mesh,
    TargetError,
    expect,
    lab,
    wait_for,
)

pytestmark = [pytest.mark.conformance]

POLICY = "policy.linkerd.io"
GATEWAY = "gateway.networking.k8s.io"
WEBHOOK = 'admission webhook "linkerd-policy-validator.linkerd.io" denied the request: '
GRPC = lab.REQUESTS["grpc"]  # lab.Echo/Ping
#: F4.1: the first release that serves each policy.linkerd.io HTTPRoute apiVersion
HTTPROUTE_SINCE = {"v1alpha1": "2.12", "v1beta1": "2.12", "v1beta2": "2.13", "v1beta3": "2.14"}


# ---- the objects ----

def http_route(name: str, *matches: dict[str, Any], parent: str = "web", group: str = POLICY,
               api: str | None = None, **rule: Any) -> dict[str, Any]:
    """An HTTPRoute in `group` whose parent is the lab Server `parent`, one rule of `matches`.

    policy.linkerd.io routes are written as v1beta1 (served, and seen by the webhook, on every
    release 2.12+, F4.1); Gateway API ones as v1beta1 (served wherever Linkerd reads them)."""
    version = api or "v1beta1"
    body: dict[str, Any] = {
        "parentRefs": [{"group": POLICY, "kind": "Server", "name": parent}],
        "rules": [{"matches": list(matches), **rule}]}
    return lab.resource("HTTPRoute", name, body, api_version=f"{group}/{version}")


def grpc_route(mesh: Mesh, name: str, method: str, parent: str = "grpc") -> dict[str, Any]:
    """A GRPCRoute for `service/method` whose parent is the lab Server `parent` (F4.13);
    v1alpha2 as 2.16-2.17 bundle it, v1 from 2.18. An empty part is left out (`lab.Echo/`
    matches the service alone, `/Ping` the method alone): the CRD takes one or both."""
    service, _, rpc = method.partition("/")
    version = "v1" if mesh.profile.at_least("2.18") else "v1alpha2"
    match = {k: v for k, v in (("service", service), ("method", rpc)) if v}
    return lab.resource("GRPCRoute", name, {
        "parentRefs": [{"group": POLICY, "kind": "Server", "name": parent}],
        "rules": [{"matches": [{"method": match}]}]},
        api_version=f"{GATEWAY}/{version}")


def prefix(value: str, **more: Any) -> dict[str, Any]:
    return {"path": {"type": "PathPrefix", "value": value}, **more}


def open_policy(name: str, kind: str, target: str, group: str = POLICY) -> dict[str, Any]:
    """An AuthorizationPolicy with no required authentication: every client (F4.6)."""
    return lab.resource("AuthorizationPolicy", name, {
        "targetRef": {"group": group, "kind": kind, "name": target},
        "requiredAuthenticationRefs": []})


def web(*objs: dict[str, Any]) -> list[dict[str, Any]]:
    """The lab, a Server `web` for its HTTP port, and `objs`."""
    return [*lab.objects(), lab.server("web", "http"), *objs]


def grpc_server(proxy_protocol: str | None = "gRPC") -> dict[str, Any]:
    return lab.server("grpc", "grpc", proxy_protocol=proxy_protocol)


def refusal(mesh: Mesh, obj: dict[str, Any]) -> str:
    """Apply `obj` on the deployed lab; the refusal's text (the check fails if it is admitted)."""
    with pytest.raises(TargetError) as err:
        mesh.apply(obj)
    return str(err.value)


def refused(mesh: Mesh, obj: dict[str, Any], *needles: str) -> None:
    """`obj` is refused, and the refusal says one of `needles`."""
    text = refusal(mesh, obj)
    assert any(n in text for n in needles), f"expected one of {needles!r} in: {text}"


# ---- served versions (F4.1) ----

@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.1")
def test_each_release_serves_its_httproute_versions(mesh: Mesh) -> None:
    """policy.linkerd.io HTTPRoute: v1alpha1 and v1beta1 from 2.12, v1beta2 from 2.13, v1beta3
    from 2.14; an apiVersion the release does not serve is unknown to the API server. The
    policy kinds beside it exist only as v1alpha1."""
    lab.deploy(mesh, web())
    for api, since in HTTPROUTE_SINCE.items():
        route = http_route(f"route-{api}", prefix("/api"), api=api)
        if mesh.profile.at_least(since):
            mesh.apply(route)
        else:
            refused(mesh, route, f'no matches for kind "HTTPRoute" in version "{POLICY}/{api}"')
    for kind in ("AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication"):
        obj = lab.resource(kind, "beta", {}, api_version=f"{POLICY}/v1beta1")
        refused(mesh, obj, f'no matches for kind "{kind}" in version "{POLICY}/v1beta1"')


# ---- matches and precedence (F4.11) ----

MATCHES = {
    # field: (the route's match, a request it selects, one it does not)
    "headers": (prefix("/api", headers=[{"name": "x-lab", "value": "yes"}]),
                {"path": "/api/x", "headers": {"x-lab": "yes"}}, {"path": "/api/x"}),
    "query": (prefix("/api", queryParams=[{"name": "tier", "value": "gold"}]),
              {"path": "/api/x?tier=gold"}, {"path": "/api/x?tier=tin"}),
    "method": (prefix("/api", method="POST"),
               {"path": "/api/x", "method": "POST"}, {"path": "/api/x", "method": "GET"}),
    # no path: the CRD's default path is PathPrefix / ("If this field is not specified, a
    # default prefix match on the "/" path is provided", L2@version-2.20:charts/linkerd-crds/
    # templates/policy/httproute.yaml l.988-993), so any path
    "method-without-path": ({"method": "POST"},
                            {"path": "/any/x", "method": "POST"},
                            {"path": "/any/x", "method": "GET"}),
}


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.11", "F4.14")
@pytest.mark.parametrize("field", list(MATCHES))
def test_a_route_match_on_each_field_selects_the_request(mesh: Mesh, field: str) -> None:
    """A route matching /api plus one header, query parameter or method takes only the
    requests that have it; the same path without it matches no route and gets 404."""
    match, selected, other = MATCHES[field]
    lab.deploy(mesh, web(http_route("api", match), open_policy("api-open", "HTTPRoute", "api")))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **selected).becomes(OK)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **other).becomes(NOT_FOUND)


#: the older, open route's PathPrefix, and a path that only it matches
BROAD = {"shorter-prefix": ("/", "/api/other"),
         "same-path-as-prefix": ("/api/secret", "/api/secret/more")}


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route", "authorization-policy")
@pytest.mark.facts("F4.11", "F4.15")
@pytest.mark.parametrize("broad", list(BROAD))
def test_a_request_takes_the_most_specific_route_only(mesh: Mesh, broad: str) -> None:
    """Two routes match /api/secret: `broad` (a PathPrefix, open to everyone, the older) and
    `narrow` (Exact /api/secret, no authorization of its own). The exact match wins over a
    shorter prefix and over a prefix of the same path, so the request is refused; `broad`'s
    authorization does not leak into it. A path matching only `broad` is served."""
    broad_prefix, only_broad = BROAD[broad]
    lab.deploy(mesh, web(http_route("broad", prefix(broad_prefix)),
                         open_policy("broad-open", "HTTPRoute", "broad")))
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/api/secret").becomes(OK)
    mesh.apply(http_route("narrow", {"path": {"type": "Exact", "value": "/api/secret"}}))
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/api/secret").becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, lab.HTTP, "http", path=only_broad).becomes(OK)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route", "authorization-policy")
@pytest.mark.facts("F4.11", "F4.15")
def test_a_route_with_a_method_beats_the_same_prefix_without_one(mesh: Mesh) -> None:
    """`broad` (PathPrefix /api, open, the older) and `get` (PathPrefix /api and method GET,
    no authorization of its own): by Gateway API precedence a GET takes `get` and is
    refused; a POST matches only `broad` and is served."""
    lab.deploy(mesh, web(http_route("broad", prefix("/api")),
                         open_policy("broad-open", "HTTPRoute", "broad")))
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/api/x").becomes(OK)
    mesh.apply(http_route("get", prefix("/api", method="GET")))
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/api/x").becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/api/x", method="POST").becomes(OK)


#: the Server's own authorizations a route takes on (F4.15), one of each kind
SERVER_AUTHORIZATIONS = {
    "server-authorization": lambda: lab.server_authorization(
        "web-open", {"unauthenticated": True}, server_name="web"),
    "policy-on-the-server": lambda: open_policy("web-open", "Server", "web"),
    "policy-on-the-namespace": lambda: lab.resource("AuthorizationPolicy", "lab-open", {
        "targetRef": {"kind": "Namespace", "name": lab.NAMESPACE},
        "requiredAuthenticationRefs": []}),
}


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route", "authorization-policy")
@pytest.mark.facts("F4.15")
@pytest.mark.parametrize("parent", list(SERVER_AUTHORIZATIONS))
def test_a_route_without_a_policy_of_its_own_takes_its_servers_authorizations(
        mesh: Mesh, parent: str) -> None:
    """A route's authorizations are the policies targeting it plus all of its Server's: with
    `web` open to everyone by `parent`, /api/x on a route no policy targets is served, and
    /other, matching no route, gets 404."""
    lab.deploy(mesh, web(SERVER_AUTHORIZATIONS[parent](), http_route("api", prefix("/api"))))
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/other").becomes(NOT_FOUND)
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/api/x").becomes(OK)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.11", "F6.5")
def test_a_route_whose_parent_server_does_not_exist_changes_nothing(mesh: Mesh) -> None:
    """An HTTPRoute whose parentRef names a Server that does not exist is accepted by no
    Server: `web`'s requests are not routed (no 404), its own authorization still decides."""
    lab.deploy(mesh, web(open_policy("web-open", "Server", "web"),
                         http_route("elsewhere", prefix("/api"), parent="ghost")))
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/other").stays(OK)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route", "metrics")
@pytest.mark.facts("F7.2", "F4.14")
def test_route_not_found_counter_counts_the_404s(mesh: Mesh) -> None:
    """Three requests matching no route move inbound_http_route_not_found_total on port 8080
    by exactly three."""
    lab.deploy(mesh, web(http_route("api", prefix("/api")),
                         open_policy("api-open", "HTTPRoute", "api")))
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/other").becomes(NOT_FOUND)
    name = "inbound_http_route_not_found_total"

    def count() -> float:
        pods = [p for p in mesh.pods("lab", {"app": "server"}) if p.ready]
        return mesh.proxy_metrics(pods[-1]).value(name, target_port="8080") if pods else -1

    before = wait_for(f"{name} readable", count, lambda v: v >= 1)
    sent = [mesh.probe(lab.MESHED, lab.HTTP, "http", path="/other") for _ in range(3)]
    assert all(NOT_FOUND.matches(o) for o in sent), [o.short() for o in sent]
    wait_for(f"{name} +3 on port 8080", lambda: count() - before, lambda d: d == 3)


# ---- Gateway API HTTPRoutes (F4.12) and what a policy may target (F4.3) ----

@pytest.mark.versions(">=2.14")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.12", "F4.14")
def test_a_gateway_api_httproute_with_a_server_parent_routes_requests(mesh: Mesh) -> None:
    """A gateway.networking.k8s.io HTTPRoute attached to `web` routes its requests: with the
    Server open to everyone, /api/x is served and /other, matching no route, gets 404."""
    lab.deploy(mesh, web(open_policy("web-open", "Server", "web"),
                         http_route("api", prefix("/api"), group=GATEWAY)))
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/api/x").becomes(OK)
    expect(mesh, lab.MESHED, lab.HTTP, "http", path="/other").becomes(NOT_FOUND)


@pytest.mark.versions(">=2.19")
@pytest.mark.feature("http-route", "authorization-policy")
@pytest.mark.facts("F4.3", "F4.12")
def test_an_authorization_policy_may_target_a_gateway_api_httproute(mesh: Mesh) -> None:
    """From edge-25.5.1 admission takes a Gateway API HTTPRoute as a policy's target, and the
    policy authorizes that route's requests (the Server itself authorizes nothing)."""
    lab.deploy(mesh, web(http_route("api", prefix("/api"), group=GATEWAY),
                         open_policy("api-open", "HTTPRoute", "api", group=GATEWAY)))
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", path="/api/x").becomes(OK)


@pytest.mark.versions("2.14-2.18")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.3")
def test_gateway_api_httproute_targets_are_refused_before_edge_25_5_1(mesh: Mesh) -> None:
    """Until edge-25.5.1 the webhook knew only policy.linkerd.io HTTPRoutes as targets."""
    lab.deploy(mesh, web(http_route("api", prefix("/api"), group=GATEWAY)))
    refused(mesh, open_policy("api-open", "HTTPRoute", "api", group=GATEWAY),
            WEBHOOK + f"invalid targetRef kind: HTTPRoute.{GATEWAY}")


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.3")
def test_admission_refuses_a_target_of_an_unknown_kind(mesh: Mesh) -> None:
    """A policy targeting a Pod is refused: by the kind list until 2.18, by the index's own
    conversion from 2.19 (edge-25.5.1), each in its words."""
    lab.deploy(mesh, web())
    target = lab.resource("AuthorizationPolicy", "pod", {
        "targetRef": {"kind": "Pod", "name": "server"}, "requiredAuthenticationRefs": []})
    message = ("unsupported authorization target type: Pod" if mesh.profile.at_least("2.19")
               else "invalid targetRef kind: Pod")
    refused(mesh, target, WEBHOOK + message)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.3")
def test_admission_refuses_a_namespace_target_in_another_namespace(mesh: Mesh) -> None:
    """A policy may target only its own Namespace: naming `lab-other` from `lab` is refused."""
    lab.deploy(mesh, web())
    other = lab.resource("AuthorizationPolicy", "other-ns", {
        "targetRef": {"kind": "Namespace", "name": "lab-other"},
        "requiredAuthenticationRefs": []})
    refused(mesh, other, WEBHOOK + "cannot target another namespace: lab-other")


@pytest.mark.versions("2.12-2.15")
@pytest.mark.feature("authorization-policy")
@pytest.mark.facts("F4.3")
def test_grpcroute_targets_are_refused_before_2_16(mesh: Mesh) -> None:
    """Before 2.16 a GRPCRoute is not a target an AuthorizationPolicy may name."""
    lab.deploy(mesh, web())
    refused(mesh, open_policy("ping-open", "GRPCRoute", "ping", group=GATEWAY),
            WEBHOOK + f"invalid targetRef kind: GRPCRoute.{GATEWAY}")


# ---- GRPCRoutes (F4.13) ----

@pytest.mark.versions(">=2.16")
@pytest.mark.feature("grpc-route", "authorization-policy")
@pytest.mark.facts("F4.13", "F4.3")
def test_a_grpc_call_matching_a_grpcroute_is_authorized_by_its_policy(mesh: Mesh) -> None:
    """On a `proxyProtocol: gRPC` Server, a GRPCRoute for lab.Echo/Ping and a policy targeting
    it let the call through, though the Server authorizes nothing itself."""
    lab.deploy(mesh, [*lab.objects(), grpc_server(), grpc_route(mesh, "ping", "lab.Echo/Ping"),
                      open_policy("ping-open", "GRPCRoute", "ping", group=GATEWAY)])
    expect(mesh, lab.UNMESHED, lab.GRPC, "grpc", **GRPC).becomes(GRPC_OK)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("grpc-route")
@pytest.mark.facts("F4.13", "F4.14")
def test_a_grpc_call_matching_no_grpcroute_gets_not_found(mesh: Mesh) -> None:
    """With a GRPCRoute for lab.Echo/Pong only, a call to lab.Echo/Ping matches no route: the
    proxy answers grpc-status 5 (NotFound), trailers-only, not an HTTP 404."""
    lab.deploy(mesh, [*lab.objects(), grpc_server(), grpc_route(mesh, "pong", "lab.Echo/Pong"),
                      open_policy("pong-open", "GRPCRoute", "pong", group=GATEWAY)])
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(GRPC_NOT_FOUND)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("grpc-route", "authorization-policy")
@pytest.mark.facts("F4.17", "F4.13")
def test_of_grpcroute_matches_the_one_matching_more_of_the_service_then_the_method_wins(
        mesh: Mesh) -> None:
    """Three GRPCRoutes on the gRPC Server, oldest and alphabetically first first: `a-ping`
    names only the method Ping, `b-echo` only the service lab.Echo (and a policy opens it),
    `c-echo-pong` lab.Echo/Pong. Ping matches `a-ping` and `b-echo`: the service's eight
    characters beat the method's four, so the call is let through, though `a-ping` is older.
    Pong matches `b-echo` and `c-echo-pong`: the same service, and a method too, so
    `c-echo-pong`, which authorizes nothing, refuses it."""
    lab.deploy(mesh, [*lab.objects(), grpc_server()])
    mesh.apply(grpc_route(mesh, "a-ping", "/Ping"))
    mesh.apply(grpc_route(mesh, "b-echo", "lab.Echo/"),
               open_policy("b-echo-open", "GRPCRoute", "b-echo", group=GATEWAY))
    mesh.apply(grpc_route(mesh, "c-echo-pong", "lab.Echo/Pong"))
    pong = {**GRPC, "method": "lab.Echo/Pong"}
    expect(mesh, lab.UNMESHED, lab.GRPC, "grpc", **pong).becomes(GRPC_PERMISSION_DENIED)
    expect(mesh, lab.UNMESHED, lab.GRPC, "grpc", **GRPC).becomes(GRPC_OK)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("grpc-route")
@pytest.mark.facts("F4.13")
def test_a_grpcroute_on_a_server_of_another_protocol_is_never_served(mesh: Mesh) -> None:
    """The same GRPCRoute and policy on a Server without `proxyProtocol: gRPC` reach no proxy:
    the Server, which authorizes nothing, refuses the call."""
    lab.deploy(mesh, [*lab.objects(), grpc_server(None), grpc_route(mesh, "ping", "lab.Echo/Ping"),
                      open_policy("ping-open", "GRPCRoute", "ping", group=GATEWAY)])
    expect(mesh, lab.UNMESHED, lab.GRPC, "grpc", **GRPC).stays(GRPC_PERMISSION_DENIED)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("grpc-route", "probe-authorization")
@pytest.mark.facts("F6.5", "F4.13")
def test_a_grpcroute_never_takes_probe_authorization_away(mesh: Mesh) -> None:
    """A GRPCRoute attached to the probe port's (HTTP) Server is not served, so, unlike an
    HTTPRoute, it leaves the probe route in place: the kubelet's GET /ready still passes."""
    server = lab.server("probed-http", "http", selector={"matchLabels": {"app": "probed"}})
    lab.deploy(mesh, [*lab.objects(), *lab.probed()])
    mesh.apply(server, grpc_route(mesh, "ping", "lab.Echo/Ping", parent="probed-http"))
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").stays(OK)


# ---- admission of routes (F4.11) ----

@pytest.mark.versions(">=2.12")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.11")
def test_admission_refuses_a_relative_route_path(mesh: Mesh) -> None:
    """Route paths must be absolute: `foo/bar` is refused by the policy webhook."""
    lab.deploy(mesh, web())
    refused(mesh, http_route("relative", {"path": {"type": "Exact", "value": "foo/bar"}}),
            WEBHOOK + 'HttpPathMatch paths must be absolute (begin with `/`); "foo/bar" is not '
            "an absolute path")


def _service_parent() -> dict[str, Any]:
    route = http_route("to-service", prefix("/api"))
    route["spec"]["parentRefs"] = [{"group": "core", "kind": "Service", "name": "server",
                                    "port": 8080}]
    return route


@pytest.mark.versions("2.12")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.11")
def test_2_12_refuses_an_httproute_whose_parent_is_not_a_server(mesh: Mesh) -> None:
    """2.12's policy.linkerd.io HTTPRoutes are inbound only: a Service parent is refused."""
    lab.deploy(mesh, web())
    refused(mesh, _service_parent(),
            WEBHOOK + "policy.linkerd.io HTTPRoutes must target only Server resources")


@pytest.mark.versions(">=2.13")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.11")
def test_an_httproute_may_have_a_service_parent_from_2_13(mesh: Mesh) -> None:
    """From 2.13 a policy.linkerd.io HTTPRoute may also attach to a Service (outbound)."""
    lab.deploy(mesh, web())
    mesh.apply(_service_parent())


@pytest.mark.versions(">=2.17")
@pytest.mark.feature("http-route")
@pytest.mark.facts("F4.11")
def test_admission_refuses_a_service_backend_without_a_port(mesh: Mesh) -> None:
    """A Gateway API HTTPRoute whose Service backendRef has no port is refused: by Linkerd's
    webhook ("invalid backendRef", 2.17+), or first by the Gateway API v1 CRDs' own rule
    where they carry it (Gateway API v1.0+, bundled from 2.18)."""
    lab.deploy(mesh, web())
    refused(mesh, http_route("no-port", prefix("/api"), group=GATEWAY,
                             backendRefs=[{"name": "server"}]),
            WEBHOOK + "invalid backendRef", "Must have port for Service reference")
