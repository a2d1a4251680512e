"""What the injector and the proxy accept as a default policy, what audit leaves behind, and
what a Server selects and admission refuses.

Each check runs on the policy lab (manifests/lab.yml): a meshed server with HTTP/1 on 8080,
gRPC on 9090 and TCP on 7000, installed with the cluster default (all-unauthenticated unless the
cluster says otherwise).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from linkerd_conformance import (
    ALLOWED,
    HTTP_FORBIDDEN,
    OK,
    ConformanceFailure,
    Dest,
    Mesh,
    TargetError,
    expect,
    expectations,
    lab,
    wait_for,
)

pytestmark = [pytest.mark.conformance]

HTTP = lab.REQUESTS["http"]
TCP = lab.REQUESTS["tcp"]
POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
POLICY_ENV = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"
PROXY = "linkerd-proxy"


def server_pod(mesh: Mesh) -> Any:
    pods = [p for p in mesh.pods("lab", {"app": "server"}) if p.ready]
    if not pods:
        raise ConformanceFailure("expected a Ready lab/server pod")
    return pods[-1]


def proxy_log(mesh: Mesh, needle: str) -> str:
    """Wait for the server's proxy log to hold a line containing `needle`; that line."""
    def lines() -> list[str]:
        return [line for line in mesh.logs(server_pod(mesh), PROXY).splitlines()
                if needle in line]
    return wait_for(f"a linkerd-proxy log line with {needle!r}", lines, bool)[-1]


# ---- F1.1, F1.2, F1.19: the values the injector and the proxy accept ----

UNKNOWN_VALUES = [
    pytest.param("allow-everyone", id="made-up"),
    # 2.11-2.15's injector does not know the sixth value yet (F1.2)
    pytest.param("audit", marks=pytest.mark.versions("<=2.15"), id="audit-before-2.16"),
]


@pytest.mark.feature("default-policy")
@pytest.mark.facts("F1.1", "F1.2")
@pytest.mark.parametrize("value", UNKNOWN_VALUES)
def test_an_unknown_default_policy_value_leaves_the_cluster_default(mesh: Mesh,
                                                                    value: str) -> None:
    """An annotation value the injector does not know is not a policy: the injector warns and
    the proxy starts with the cluster default, which then decides (pkg/inject/inject.go,
    every version; the policy controller falls back the same way)."""
    lab.deploy(mesh, lab.with_default(value))
    pod = server_pod(mesh)
    assert pod.annotations.get(POLICY_ANNOTATION) == value  # the annotation itself stays
    assert mesh.proxy_env(pod)[POLICY_ENV] == mesh.cluster_default
    if mesh.cluster_default == "all-unauthenticated":
        expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("default-policy")
@pytest.mark.facts("F1.2", "F1.19")
def test_audit_reaches_the_proxy_and_the_proxy_starts_with_it(mesh: Mesh) -> None:
    """2.16's injector passes `audit` on and the proxy accepts it in its environment: the pod
    becomes Ready with LINKERD2_PROXY_INBOUND_DEFAULT_POLICY=audit."""
    lab.deploy(mesh, lab.with_default("audit"))
    pod = server_pod(mesh)
    assert mesh.proxy_env(pod)[POLICY_ENV] == "audit"
    assert all(c.ready for c in pod.containers if c.name == PROXY), pod.containers


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("default-policy", "metrics")
@pytest.mark.facts("F1.2")
@pytest.mark.parametrize("protocol", ["http", "tcp"])
def test_audit_logs_and_counts_each_admission(mesh: Mesh, protocol: str) -> None:
    """Under `audit` a plaintext client is admitted, and the proxy logs "Request allowed" with
    authz.name=audit at INFO (HTTP per request, TCP per connection) and counts the allow with
    authz_kind="default", authz_name="audit" (linkerd2-proxy policy/http.rs, policy/tcp.rs)."""
    lab.deploy(mesh, lab.with_default("audit"))
    expect(mesh, lab.UNMESHED, lab.PORTS[protocol], protocol,
           **lab.REQUESTS[protocol]).becomes(OK if protocol == "http" else ALLOWED)
    module = "policy::http" if protocol == "http" else "policy::tcp"
    line = proxy_log(mesh, "Request allowed")
    assert module in line and "authz.kind=default" in line and "authz.name=audit" in line, line
    assert "server.kind=default" in line and "server.name=audit" in line, line
    counter = f"inbound_{protocol}_authz_allow_total"
    wait_for(f'{counter}{{authz_kind="default",authz_name="audit"}} >= 1',
             lambda: mesh.proxy_metrics(server_pod(mesh)).value(
                 counter, authz_kind="default", authz_name="audit"),
             lambda v: v >= 1)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("default-policy")
@pytest.mark.facts("F1.2")
def test_only_audit_admissions_are_logged_as_allowed(mesh: Mesh) -> None:
    """Under `audit`, a port whose Server authorizes the client is decided by that
    authorization, which the proxy does not log: "Request allowed" is written only for an
    authorization that `is_audit()` (policy/http.rs). The audited TCP connection made after it
    is the marker that the log has caught up."""
    lab.deploy(mesh, [*lab.with_default("audit"), lab.server("web", "http"),
                      lab.server_authorization("web-anyone", {"unauthenticated": True},
                                               server_name="web")])
    pod = server_pod(mesh)
    seen = len(mesh.logs(pod, PROXY).splitlines())  # a kept pod has logged earlier checks
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.UNMESHED, lab.TCP, "tcp", **TCP).becomes(ALLOWED)
    allowed = wait_for(
        'a "Request allowed" linkerd-proxy log line from policy::tcp',
        lambda: [line for line in mesh.logs(pod, PROXY).splitlines()[seen:]
                 if "Request allowed" in line],
        lambda lines: any("policy::tcp" in line for line in lines))
    assert all("policy::tcp" in line for line in allowed), (
        "expected \"Request allowed\" only for the audited TCP connection, not for the HTTP "
        f"request web-anyone authorized; the proxy logged: {allowed}")


# ---- F1.20: a mesh installed without cluster networks ----

@pytest.fixture
def without_cluster_networks(mesh: Mesh) -> Iterator[Mesh]:
    """The target installed with empty clusterNetworks: on the reference a second mesh, same
    version and faults; on kind another cluster installed so (`targets/reinstall.py`); a
    kubeconfig cluster only when it was installed so."""
    yield from lab.reinstalled(mesh, "F1.20 needs an install without any", cluster_networks=())


REFUSED_WITHOUT_NETWORKS = [
    pytest.param("cluster-authenticated"),
    pytest.param("cluster-unauthenticated"),
    pytest.param("audit", marks=pytest.mark.versions(">=2.16")),
]


@pytest.mark.feature("default-policy")
@pytest.mark.facts("F1.20")
@pytest.mark.parametrize("policy", REFUSED_WITHOUT_NETWORKS)
def test_without_cluster_networks_the_proxy_refuses_cluster_defaults(
        without_cluster_networks: Mesh, policy: str) -> None:
    """With no cluster networks the proxy cannot build a cluster-* default, nor `audit` (its
    arm comes after the empty-networks one): it logs InvalidPortPolicy and exits, so the pod
    never becomes Ready and the rollout stalls (linkerd2-proxy env.rs `parse_default_policy`)."""
    mesh = without_cluster_networks
    mesh.apply(*lab.with_default(policy))
    stalled = [r for r in mesh.wait_rollout("lab", "server") if not r.settled]
    assert stalled, f"lab/server became Ready with {policy} and no cluster networks"
    [pod] = mesh.pods("lab", {"app": "server"})
    log = mesh.logs(pod, PROXY)
    assert f'InvalidPortPolicy("{policy}")' in log, log


@pytest.mark.feature("default-policy")
@pytest.mark.facts("F1.20")
@pytest.mark.parametrize("policy", ["deny", "all-authenticated", "all-unauthenticated"])
def test_without_cluster_networks_the_all_and_deny_defaults_still_start(
        without_cluster_networks: Mesh, policy: str) -> None:
    """`deny` and the all-* defaults need no cluster networks: the pod starts and serves."""
    mesh = without_cluster_networks
    lab.deploy(mesh, lab.with_default(policy))
    expected = OK if policy == "all-unauthenticated" else HTTP_FORBIDDEN
    expect(mesh, lab.UNMESHED_OUTSIDE, lab.HTTP, "http", **HTTP).becomes(expected)


# ---- F2.5: v1beta2 Servers select pods or external workloads, exactly one ----

def v1beta2(name: str, **selectors: Any) -> dict[str, Any]:
    body = lab.server(name, "http", api_version="policy.linkerd.io/v1beta2")
    body["spec"].pop("podSelector")
    body["spec"].update(selectors)
    return body


PODS = {"matchLabels": {"app": "server"}}
EXTERNAL = {"matchLabels": {"app": "vm"}}


@pytest.mark.versions(">=2.15")
@pytest.mark.feature("server")
@pytest.mark.facts("F2.5")
def test_a_v1beta2_server_selects_pods_or_external_workloads_never_both(mesh: Mesh) -> None:
    """v1beta2 adds externalWorkloadSelector; the CRD takes exactly one of it and podSelector:
    both, or neither, is refused; either alone is admitted."""
    lab.deploy(mesh, lab.objects())
    for name, selectors in (("both", {"podSelector": PODS, "externalWorkloadSelector": EXTERNAL}),
                            ("neither", {})):
        with pytest.raises(TargetError):
            mesh.apply(v1beta2(name, **selectors))
    mesh.apply(v1beta2("vms", externalWorkloadSelector=EXTERNAL))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)  # selects no pod
    mesh.apply(v1beta2("pods", podSelector=PODS))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


# ---- F2.15: a Server's namespace and its port name ----

@pytest.mark.feature("server")
@pytest.mark.facts("F2.15")
def test_a_server_selects_pods_of_its_own_namespace_only(mesh: Mesh) -> None:
    """A Server in lab-other that selects every pod on port `http` leaves lab's server alone."""
    elsewhere = lab.server("everyone", "http", selector={"matchLabels": {}})
    elsewhere["metadata"]["namespace"] = "lab-other"
    lab.deploy(mesh, [*lab.objects(), elsewhere])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).stays(OK)
    mesh.apply(lab.server("here", "http", selector={"matchLabels": {}}))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


SIDECAR_PORT = 8081


def with_second_http_container(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lab whose server pod has a second container serving HTTP on 8081, its port also
    named `http`."""
    out = copy.deepcopy(objs)
    for obj in out:
        if obj.get("kind") == "Deployment" and obj["metadata"]["name"] == "server":
            containers = obj["spec"]["template"]["spec"]["containers"]
            image = containers[0]["image"]
            containers.append({"name": "sidecar", "image": image,
                               "args": ["serve", "--http", str(SIDECAR_PORT)],
                               "ports": [{"name": "http", "containerPort": SIDECAR_PORT}]})
    return out


@pytest.mark.feature("server")
@pytest.mark.facts("F2.15")
def test_a_port_name_selects_every_container_port_carrying_it(mesh: Mesh) -> None:
    """`port: http` selects 8080 of one container and 8081 of the other, both named `http`."""
    lab.deploy(mesh, [*with_second_http_container(lab.objects()), lab.server("web", "http")])
    sidecar = Dest(lab.NAMESPACE, "server", SIDECAR_PORT)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, sidecar, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, lab.TCP, "tcp", **TCP).becomes(ALLOWED)  # not named http


# ---- F5.8: what the proxy logs when it refuses ----

@pytest.mark.feature("denial")
@pytest.mark.facts("F5.8")
@pytest.mark.parametrize("protocol", ["http", "tcp"])
def test_a_refusal_is_logged_with_the_versions_fields(mesh: Mesh, protocol: str) -> None:
    """Under deny the proxy logs `Request denied` (HTTP) or `Connection denied` (TCP) at INFO,
    with 2.11's `server=` field, or from 2.12 `server.group`/`server.kind`/`server.name`
    (and, for HTTP, `route.*` and `client.tls`/`client.ip`)."""
    lab.deploy(mesh, lab.with_default("deny"))
    expect(mesh, lab.UNMESHED, lab.PORTS[protocol], protocol,
           **lab.REQUESTS[protocol]).becomes(lab.DENIED[protocol])
    message = "Request denied" if protocol == "http" else "Connection denied"
    line = proxy_log(mesh, message)
    assert line.startswith("INFO") or " INFO " in line, line
    if mesh.profile.at_least("2.12"):
        assert "server.kind=default" in line and "server.name=deny" in line, line
        if protocol == "http":
            assert "route.kind=" in line and "client.tls=" in line and "client.ip=" in line
    else:
        assert " server=default:deny " in line and " tls=" in line and " client=" in line, line
        assert "server.kind=" not in line, line


# ---- F2.1, F3.1: the versions served, and the warnings of the deprecated ones ----

API_VERSIONS = ("v1alpha1", "v1beta1", "v1beta2", "v1beta3")


def written_in(kind: str, api_version: str) -> dict[str, Any]:
    """A Server or ServerAuthorization of the lab, spelt in `api_version`."""
    if kind == "Server":
        port = 9990 + API_VERSIONS.index(api_version)  # one port each: no overlap (F2.13)
        return lab.server(f"web-{api_version}", port,
                          api_version=f"policy.linkerd.io/{api_version}")
    saz = lab.server_authorization(f"web-{api_version}", {"unauthenticated": True},
                                   server_name="web-v1beta1")
    saz["apiVersion"] = f"policy.linkerd.io/{api_version}"
    return saz


@pytest.mark.feature("server", "server-authorization")
@pytest.mark.facts("F2.1", "F3.1")
@pytest.mark.parametrize("kind", ["Server", "ServerAuthorization"])
def test_served_versions_are_admitted_and_deprecated_ones_warn(mesh: Mesh, kind: str) -> None:
    """Each apiVersion the version's CRDs serve is admitted, with the CRD's deprecationWarning
    when it is deprecated (none in 2.11; v1alpha1 from 2.12; Server v1beta1 from 2.15, with
    2.17's wording "policy.linkerd.io/v1beta1 Server is deprecated; use policy.linkerd.io/
    v1beta3 Server"); one it does not serve is refused."""
    mesh.apply(*[o for o in lab.objects() if o["kind"] in ("Namespace", "ServiceAccount")])
    version = mesh.profile.version
    for api_version in API_VERSIONS:
        obj = written_in(kind, api_version)
        if not expectations.served(version, kind, api_version):
            with pytest.raises(TargetError, match="no matches for kind"):
                mesh.apply(obj)
            continue
        warning = expectations.deprecation_warning(version, kind, api_version)
        assert mesh.apply(obj) == ([warning] if warning else []), (kind, api_version)
