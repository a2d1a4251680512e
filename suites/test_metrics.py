"""The proxy's authorization counters (port 4191 /metrics), as each version names and labels them.

Counters must move by exactly the traffic sent: three allowed requests are three allows, two
denials are two denials (F7.1), and their labels name the Server and the authorization that
decided (F7.4 for 2.11, F7.5 for 2.12+).
"""

from __future__ import annotations

import pytest

from linkerd_conformance import (
    ALLOWED,
    CONNECTION_CLOSED,
    HTTP_FORBIDDEN,
    OK,
    ConformanceFailure,
    Mesh,
    Metrics,
    Unsupported,
    expect,
    lab,
    wait_for,
)

pytestmark = [pytest.mark.conformance, pytest.mark.feature("metrics")]

HTTP = lab.REQUESTS["http"]
OPEN = {"unauthenticated": True, "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}


def metrics(mesh: Mesh, app: str = "server") -> Metrics:
    pods = [p for p in mesh.pods("lab", {"app": app}) if p.ready]
    if not pods:
        raise ConformanceFailure(f"expected a Ready lab/{app} pod to read metrics from")
    return mesh.proxy_metrics(pods[-1])


def authz_labels(mesh: Mesh, server: str, authz: str) -> dict[str, str]:
    if mesh.profile.at_least("2.12"):  # F7.5
        return {"srv_kind": "server", "srv_name": server,
                "authz_kind": "serverauthorization", "authz_name": authz}
    return {"srv_name": server, "saz_name": authz}  # F7.4


@pytest.mark.facts("F7.1", "F7.7")
def test_http_authz_counters_move_by_exactly_the_traffic(mesh: Mesh) -> None:
    """Three allowed requests and two denied ones, after the policy settled, move
    inbound_http_authz_allow_total by 3 and inbound_http_authz_deny_total by 2 on port 8080."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http"), lab.server_authorization(
        "lab-client", {"meshTLS": {"identities": [lab.identity(lab.MESHED)]}},
        server_name="web")])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    before = metrics(mesh)
    sent = [mesh.probe(lab.MESHED, lab.HTTP, "http", **HTTP) for _ in range(3)]
    sent += [mesh.probe(lab.OTHER_NS, lab.HTTP, "http", **HTTP) for _ in range(2)]
    assert [o.verdict.value for o in sent] == ["allowed"] * 3 + ["http-forbidden"] * 2, \
        [o.short() for o in sent]

    def deltas(m: Metrics) -> tuple[float, float]:
        return (m.value("inbound_http_authz_allow_total", target_port="8080")
                - before.value("inbound_http_authz_allow_total", target_port="8080"),
                m.value("inbound_http_authz_deny_total", target_port="8080")
                - before.value("inbound_http_authz_deny_total", target_port="8080"))

    wait_for("allow +3 and deny +2 on port 8080", lambda: deltas(metrics(mesh)),
             lambda d: d == (3, 2))


def admitted_by_open_web(mesh: Mesh) -> dict[str, str]:
    """A Server on the lab's http port with an open authorization, one meshed request
    admitted, and the allow counter seen with the labels naming both; those labels."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http"),
                      lab.server_authorization("open", OPEN, server_name="web")])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    labels = authz_labels(mesh, "web", "open")
    wait_for(f"inbound_http_authz_allow_total with {labels}",
             lambda: metrics(mesh).value("inbound_http_authz_allow_total", **labels),
             lambda v: v >= 1)
    return labels


@pytest.mark.facts("F7.4", "F7.5")
def test_allow_counters_name_the_server_and_authorization(mesh: Mesh) -> None:
    """The allow counter's labels say which Server and which authorization admitted."""
    admitted_by_open_web(mesh)


@pytest.mark.facts("F1.8", "F1.9", "F7.4", "F7.5")
def test_default_denials_are_counted_against_the_default_server(mesh: Mesh) -> None:
    """A denial by the default policy names it: `default:deny` in 2.11, kind default and name
    deny from 2.12."""
    lab.deploy(mesh, lab.with_default("deny"))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    labels = ({"srv_kind": "default", "srv_name": "deny"} if mesh.profile.at_least("2.12")
              else {"srv_name": "default:deny"})
    wait_for(f"inbound_http_authz_deny_total with {labels}",
             lambda: metrics(mesh).value("inbound_http_authz_deny_total", **labels),
             lambda v: v >= 1)


@pytest.mark.feature("dynamic")
@pytest.mark.facts("F7.1", "F5.10")
def test_a_terminated_connection_is_counted(mesh: Mesh) -> None:
    """Cutting an open opaque connection on revocation adds one to
    inbound_tcp_authz_terminate_total."""
    grant = lab.server_authorization("open", OPEN, server_name="raw")
    lab.deploy(mesh, [*lab.objects(), lab.server("raw", "tcp", proxy_protocol="opaque"), grant])
    try:
        s = mesh.session(lab.MESHED, lab.TCP, "tcp")
    except Unsupported as e:
        pytest.skip(str(e))
    with s:
        wait_for("the TCP echo", lambda: s.probe(**lab.REQUESTS["tcp"]), ALLOWED.matches)
        mesh.delete(grant)
        # cut: closed before an echo, or closed by the proxy right after one (F5.10)
        wait_for("the open connection to be cut",
                 lambda: (s.probe(**lab.REQUESTS["tcp"]), s.connected),
                 lambda seen: CONNECTION_CLOSED.matches(seen[0]) or not seen[1])
    wait_for("inbound_tcp_authz_terminate_total to count one termination",
             lambda: metrics(mesh).value("inbound_tcp_authz_terminate_total"),
             lambda v: v == 1)


@pytest.mark.facts("F7.7")
def test_denied_requests_are_not_counted_as_requests(mesh: Mesh) -> None:
    """On the server's proxy a denied request never becomes an inbound request: request_total
    moves by the allowed requests only (denials are counted apart, in the authz counters)."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http"), lab.server_authorization(
        "lab-client", {"meshTLS": {"identities": [lab.identity(lab.MESHED)]}},
        server_name="web")])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.OTHER_NS, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    before = metrics(mesh).value("request_total", direction="inbound", target_port="8080")
    for client in (lab.MESHED, lab.OTHER_NS, lab.OTHER_NS, lab.MESHED):
        mesh.probe(client, lab.HTTP, "http", **HTTP)
    wait_for("inbound request_total on 8080 to move by the 2 allowed requests only",
             lambda: metrics(mesh).value("request_total", direction="inbound",
                                         target_port="8080") - before,
             lambda delta: delta == 2)


@pytest.mark.versions(">=2.16")
@pytest.mark.facts("F1.2")
def test_the_audit_default_allows_and_says_so(mesh: Mesh) -> None:
    """`audit` admits everyone like all-unauthenticated, but its allows are labelled
    authz_kind=default, authz_name=audit."""
    lab.deploy(mesh, lab.with_default("audit"))
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    wait_for("inbound_http_authz_allow_total labelled authz_name=audit",
             lambda: metrics(mesh).value("inbound_http_authz_allow_total",
                                         authz_kind="default", authz_name="audit"),
             lambda v: v >= 1)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F7.5", "F6.3")
def test_a_probe_is_counted_on_the_probe_route(mesh: Mesh) -> None:
    """Under deny, the node's GET on the probe path is admitted on the synthetic `probe` route
    by the `probe` authorization; a POST on the same path and a GET on another path are no
    probes, and their refusals are counted on the `default` route of the default server."""
    lab.deploy(mesh, lab.with_pod_annotations(
        [*lab.objects(), *lab.probed()], {"config.linkerd.io/default-inbound-policy": "deny"}))
    # a default route or authorization has an empty group (proxy server-policy meta.rs)
    probe = {"route_group": "", "route_kind": "default", "route_name": "probe"}
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(OK)
    wait_for(f"inbound_http_authz_allow_total with {probe}, authz_name=probe",
             lambda: metrics(mesh, "probed").value("inbound_http_authz_allow_total",
                                                   authz_group="", authz_kind="default",
                                                   authz_name="probe",
                                                   **probe),
             lambda v: v >= 1)
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready",
           method="POST").becomes(HTTP_FORBIDDEN)
    refused = {"srv_group": "", "srv_kind": "default", "srv_name": "deny", "route_group": "",
               "route_kind": "default", "route_name": "default"}
    wait_for(f"inbound_http_authz_deny_total with {refused}",
             lambda: metrics(mesh, "probed").value("inbound_http_authz_deny_total", **refused),
             lambda v: v >= 1)
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/other").becomes(HTTP_FORBIDDEN)
    wait_for(f"inbound_http_authz_deny_total with {refused} to count both refusals",
             lambda: metrics(mesh, "probed").value("inbound_http_authz_deny_total", **refused),
             lambda v: v >= 2)
    on_probe = metrics(mesh, "probed").value("inbound_http_authz_deny_total", **probe)
    assert on_probe == 0, f"{on_probe:g} refusals counted on the probe route"


@pytest.mark.versions(">=2.12")
@pytest.mark.facts("F7.6", "F7.5")
def test_server_labels_gain_srv_port_from_2_18(mesh: Mesh) -> None:
    """From 2.18 (proxy v2.286.0) the server labels carry `srv_port`; 2.12-2.17 do not."""
    labels = admitted_by_open_web(mesh)
    with_port = metrics(mesh).value("inbound_http_authz_allow_total", srv_port="8080", **labels)
    if mesh.profile.at_least("2.18"):
        assert with_port >= 1, f"expected srv_port=\"8080\" beside {labels}"
    else:
        assert with_port == 0, f"expected no srv_port label before 2.18 beside {labels}"
