"""Where probe authorization stops, opaque ports, and the proxy as a native sidecar.

2.12+ admits a kubelet's httpGet probe by itself (F6.2, F6.3; `test_probes_ports_and_routes`);
these checks show its edges: from where (probeNetworks, F6.4), on which Servers (HTTP only,
F6.7), what it is not (a Prometheus scrape, F6.8), and where its paths come from once the proxy
is a native sidecar (F6.9, F6.10). Opaque ports (the annotation or the injector's default list)
are authorized per connection, so a refusal there is a closed connection, never a 403 (F5.12).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from linkerd_conformance import (
    CONNECTION_CLOSED,
    HTTP_FORBIDDEN,
    OK,
    ConformanceFailure,
    Dest,
    Mesh,
    expect,
    lab,
)

pytestmark = [pytest.mark.conformance]

HTTP = lab.REQUESTS["http"]
DENY = {"config.linkerd.io/default-inbound-policy": "deny"}
OPAQUE_PORTS = "config.linkerd.io/opaque-ports"
#: the native-sidecar opt-in every version from 2.16 reads (L2@version-2.16..version-2.20:
#: pkg/k8s/labels.go; deprecated, still honoured, from 2.19)
NATIVE_SIDECAR = {"config.alpha.linkerd.io/proxy-enable-native-sidecar": "true"}
PROBED_ADMIN = Dest(lab.NAMESPACE, "probed", 4191)
SERVER_ADMIN = Dest(lab.NAMESPACE, "server", 4191)
PROXY = "linkerd-proxy"


def probed_under_deny(mesh: Mesh, *objs: dict[str, Any]) -> None:
    """The probed server under default deny: its rollout only settles if its probes pass."""
    lab.deploy(mesh, [*lab.with_pod_annotations([*lab.objects(), *lab.probed()], DENY), *objs])


def probed_server(name: str, protocol: str) -> dict[str, Any]:
    """A Server on the probed pod's probe port (8080) with `proxyProtocol: <protocol>`."""
    return lab.server(name, "http", selector={"matchLabels": {"app": "probed"}},
                      proxy_protocol=protocol)


def newest_pod(mesh: Mesh, app: str) -> Any:
    pods = [p for p in mesh.pods(lab.NAMESPACE, {"app": app}) if p.ready]
    if not pods:
        raise ConformanceFailure(f"expected a Ready lab/{app} pod")
    return pods[-1]


def proxy_status(mesh: Mesh, app: str) -> Any:
    pod = newest_pod(mesh, app)
    found = [c for c in pod.containers if c.name == PROXY]
    if not found:
        raise ConformanceFailure(f"expected a {PROXY} container in {pod}, saw "
                                 f"{[c.name for c in pod.containers]}")
    return found[0]


# ---- probe networks (F6.4) ----

@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.4", "F6.3")
def test_probe_networks_admit_a_probe_from_outside_the_cluster_networks(mesh: Mesh) -> None:
    """probeNetworks defaults to every IPv4 address (and from 2.16 every IPv6 one too), not to
    the cluster networks: the probe's GET from an address outside them is admitted under deny,
    while any other path from there is refused."""
    lab.placeable(mesh, lab.UNMESHED_OUTSIDE)
    probed_under_deny(mesh)
    expect(mesh, lab.UNMESHED_OUTSIDE, lab.PROBED, "http", path="/ready").becomes(OK)
    expect(mesh, lab.UNMESHED_OUTSIDE, lab.PROBED, "http",
           path="/other").becomes(HTTP_FORBIDDEN)


@pytest.fixture
def without_probe_networks(mesh: Mesh) -> Iterator[Mesh]:
    """The target installed with `policyController.probeNetworks: []`: on the reference a
    second mesh, same version and faults; on kind another cluster installed so."""
    yield from lab.reinstalled(mesh, "F6.4 needs an install with an empty probeNetworks list",
                               probe_networks=())


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.4")
def test_an_empty_probe_networks_list_turns_probe_authorization_off(
        without_probe_networks: Mesh) -> None:
    """With `probeNetworks: []` the policy controller gets no `--probe-networks` and serves no
    probe routes (F6.4: the chart's destination.yaml leaves the flag out of an empty list,
    index.rs: no probe networks, no probe routes), so under deny the kubelet's GET of the
    readiness path is refused like any request and the pod never becomes Ready."""
    mesh = without_probe_networks
    mesh.apply(*lab.with_pod_annotations([*lab.objects(), *lab.probed()], DENY))
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(HTTP_FORBIDDEN)
    stalled = [r for r in mesh.wait_rollout(lab.NAMESPACE, "probed") if not r.settled]
    assert stalled, "lab/probed became Ready under deny with probeNetworks: []"


# ---- probe routes are HTTP routes (F6.7) ----

@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.7", "F5.4")
def test_a_grpc_server_on_the_probe_port_gets_no_probe_route(mesh: Mesh) -> None:
    """A `proxyProtocol: gRPC` Server has a default gRPC route and no HTTP routes, so no probe
    route: the probe's path, asked over HTTP/2 from the node, is refused like any request (403:
    it is not gRPC). Contrast `test_a_server_without_routes_keeps_probes_authorized`."""
    probed_under_deny(mesh)
    mesh.apply(probed_server("probed-grpc", "gRPC"))
    expect(mesh, lab.NODE, lab.PROBED, "http2", path="/ready").becomes(HTTP_FORBIDDEN)


@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.7", "F5.2")
def test_an_opaque_server_on_the_probe_port_gets_no_probe_route(mesh: Mesh) -> None:
    """An `opaque` Server has no routes at all and is authorized per connection: the probe's
    GET from the node finds its connection closed (the kubelet's probe fails)."""
    probed_under_deny(mesh)
    mesh.apply(probed_server("probed-opaque", "opaque"))
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(CONNECTION_CLOSED)


# ---- a scrape is not a probe (F6.8) ----

@pytest.mark.versions(">=2.12")
@pytest.mark.feature("probe-authorization")
@pytest.mark.facts("F6.8", "F6.3")
def test_scraping_the_admin_port_needs_its_own_authorization(mesh: Mesh) -> None:
    """Under deny, with nothing authorizing 4191, the proxy's own probes (GET /ready) pass but
    a scraper's GET /metrics (a meshed pod of another namespace, as Prometheus is) gets 403;
    a Server on 4191 authorizing the scraper lets it in."""
    scraper = lab.OTHER_NS
    lab.deploy(mesh, lab.with_pod_annotations(
        lab.without_admin_policy([*lab.objects(), *lab.probed()]), DENY))
    expect(mesh, lab.NODE, PROBED_ADMIN, "http", path="/ready").becomes(OK)
    expect(mesh, scraper, PROBED_ADMIN, "http", path="/metrics").becomes(HTTP_FORBIDDEN)
    mesh.apply(lab.server("probed-admin", 4191, selector={"matchLabels": {"app": "probed"}},
                          proxy_protocol="HTTP/1"),
               lab.server_authorization("scrapes", {"meshTLS": {"identities": [
                   lab.identity(scraper)]}}, server_name="probed-admin"))
    expect(mesh, scraper, PROBED_ADMIN, "http", path="/metrics").becomes(OK)


# ---- native sidecars (F6.9, F6.10) ----

@pytest.mark.versions(">=2.20")
@pytest.mark.feature("native-sidecar")
@pytest.mark.facts("F6.9")
def test_the_proxy_is_a_native_sidecar_by_default(mesh: Mesh) -> None:
    """From 2.20 (`proxy.nativeSidecar: true`) the injector adds the proxy as an init container
    with `restartPolicy: Always`, without any annotation."""
    lab.deploy(mesh, lab.objects())
    proxy = proxy_status(mesh, "server")
    assert proxy.sidecar, f"expected {PROXY} to be a native sidecar (an init container with " \
        f"restartPolicy Always) in {newest_pod(mesh, 'server')}, saw {proxy}"
    assert proxy.ready, proxy


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("native-sidecar", "probe-authorization")
@pytest.mark.facts("F6.9", "F6.10", "F6.3")
def test_a_native_sidecar_proxy_keeps_its_probes_authorized_under_deny(mesh: Mesh) -> None:
    """Opted in with the annotation, the proxy is an init container; its probes of 4191 (and the
    app's of 8080) are still found and admitted under deny with nothing authorizing 4191, so the
    pod becomes Ready."""
    lab.deploy(mesh, lab.with_pod_annotations(
        lab.without_admin_policy([*lab.objects(), *lab.probed()]), {**DENY, **NATIVE_SIDECAR}))
    proxy = proxy_status(mesh, "probed")
    assert proxy.sidecar and proxy.ready, f"expected a Ready native-sidecar {PROXY}, saw {proxy}"
    expect(mesh, lab.NODE, PROBED_ADMIN, "http", path="/ready").becomes(OK)
    expect(mesh, lab.NODE, PROBED_ADMIN, "http", path="/live").becomes(OK)
    expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(OK)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("native-sidecar", "probe-authorization")
@pytest.mark.facts("F6.10", "F6.3")
def test_a_startup_probe_of_a_sidecar_init_container_is_authorized(mesh: Mesh) -> None:
    """An app's own native sidecar (an init container) with a startupProbe GET /started on 8081:
    under deny the probe is admitted and the pod becomes Ready; another path is refused."""
    lab.deploy(mesh, lab.with_pod_annotations([*lab.objects(), *lab.probed_sidecar()],
                                              {**DENY, **NATIVE_SIDECAR}))
    expect(mesh, lab.NODE, lab.PROBED_SIDECAR, "http", path="/started").becomes(OK)
    expect(mesh, lab.NODE, lab.PROBED_SIDECAR, "http", path="/other").becomes(HTTP_FORBIDDEN)


@pytest.mark.versions(">=2.19")
@pytest.mark.feature("native-sidecar")
@pytest.mark.facts("F6.9", "F6.10", "F2.2")
def test_a_server_naming_linkerd_admin_selects_a_native_sidecar_proxy(mesh: Mesh) -> None:
    """The lab's Server `port: linkerd-admin` (open to everyone) selects 4191 of a native
    sidecar too, since 2.19 indexes init containers' named ports (#14144): under deny a meshed
    client's GET /metrics is admitted."""
    lab.deploy(mesh, lab.with_pod_annotations(lab.objects(), {**DENY, **NATIVE_SIDECAR}))
    assert proxy_status(mesh, "server").sidecar
    expect(mesh, lab.OTHER_NS, SERVER_ADMIN, "http", path="/metrics").becomes(OK)


# ---- opaque ports (F5.12) ----

@pytest.mark.feature("opaque-ports")
@pytest.mark.facts("F5.12", "F5.1", "F5.2")
def test_a_port_in_the_opaque_ports_annotation_is_refused_at_tcp(mesh: Mesh) -> None:
    """`config.linkerd.io/opaque-ports: "8080"` on the pod: under deny an HTTP request to 8080
    finds its connection closed, not a 403."""
    lab.deploy(mesh, lab.with_pod_annotations(lab.objects(), {**DENY, OPAQUE_PORTS: "8080"}))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(CONNECTION_CLOSED)
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(CONNECTION_CLOSED)


@pytest.mark.feature("opaque-ports")
@pytest.mark.facts("F5.12", "F1.11")
def test_the_opaque_ports_annotation_on_the_namespace_reaches_the_pod(mesh: Mesh) -> None:
    """Written on the namespace, the annotation is copied onto the pod by the injector, and
    HTTP to 8080 under deny is refused at the TCP level."""
    objs = lab.with_pod_annotations(lab.objects(), DENY)
    for obj in objs:
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] == lab.NAMESPACE:
            obj["metadata"] = {**obj["metadata"], "annotations": {OPAQUE_PORTS: "8080"}}
    lab.deploy(mesh, objs)
    pod = newest_pod(mesh, "server")
    assert pod.annotations.get(OPAQUE_PORTS) == "8080", \
        f"expected {OPAQUE_PORTS}: 8080 on {pod}, saw {dict(pod.annotations)}"
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(CONNECTION_CLOSED)


@pytest.mark.feature("opaque-ports")
@pytest.mark.facts("F5.12", "F5.1")
def test_a_default_opaque_port_is_refused_at_tcp(mesh: Mesh) -> None:
    """A pod declaring 3306 (MySQL's, in `proxy.opaquePorts`) and no annotation gets
    `config.linkerd.io/opaque-ports: "3306"` from the injector; HTTP to it under deny is
    refused at the TCP level."""
    lab.deploy(mesh, lab.with_pod_annotations([*lab.objects(), *lab.opaque_default()], DENY))
    pod = newest_pod(mesh, "mysql-port")
    assert pod.annotations.get(OPAQUE_PORTS) == "3306", \
        f"expected the injector's {OPAQUE_PORTS}: 3306 on {pod}, saw {dict(pod.annotations)}"
    expect(mesh, lab.MESHED, lab.OPAQUE_DEFAULT, "http", **HTTP).becomes(CONNECTION_CLOSED)
