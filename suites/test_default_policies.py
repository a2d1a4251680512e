"""Default inbound policies: which clients each one admits, and where it comes from.

The table below is written by hand from research/linkerd-semantics.md F1.3-F1.7 and F1.2, so a
person can read it; each row is checked as a truth table over four clients (meshed or not,
inside or outside the cluster networks) for HTTP/1, gRPC and raw TCP on the lab server, which has
no Server for these ports, so its default policy decides.
"""

from __future__ import annotations

import pytest

from linkerd_conformance import (
    GRPC_OK,
    HTTP_FORBIDDEN,
    OK,
    Cell,
    Expected,
    Mesh,
    ObjectRef,
    expect,
    expect_matrix,
    expectations,
    lab,
)

pytestmark = [pytest.mark.conformance, pytest.mark.feature("default-policy")]

A, D = "allowed", "denied"
#                          meshed  unmeshed  meshed-outside  unmeshed-outside
DEFAULT_POLICIES = {
    "all-unauthenticated": (A, A, A, A),  # F1.3: anyone, from anywhere
    "all-authenticated": (A, D, A, D),  # F1.4: any mesh identity, from anywhere
    "cluster-unauthenticated": (A, A, D, D),  # F1.5: anyone inside clusterNetworks
    "cluster-authenticated": (A, D, D, D),  # F1.6: identity AND inside clusterNetworks
    "deny": (D, D, D, D),  # F1.7: no one
    "audit": (A, A, A, A),  # F1.2 (2.16+): like all-unauthenticated, but logged
}
CLIENT_ORDER = ("meshed", "unmeshed", "meshed-outside", "unmeshed-outside")
ALLOW, DENY = lab.ALLOWED_AS, lab.DENIED
POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
POLICY_ENV = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"


deploy = lab.deploy


def cells(policy: str, protocol: str) -> list[Cell]:
    row = DEFAULT_POLICIES[policy]
    out = []
    for kind, verdict in zip(CLIENT_ORDER, row, strict=True):
        expected: Expected = ALLOW[protocol] if verdict == A else DENY[protocol]
        out.append(Cell(kind, f"{protocol}:{lab.PORTS[protocol].port}", lab.CLIENTS[kind],
                        lab.PORTS[protocol], protocol, lab.REQUESTS[protocol], expected,
                        f"default {policy}"))
    return out


POLICY_PARAMS = [
    pytest.param(p, marks=[pytest.mark.versions(">=2.16")] if p == "audit" else [], id=p)
    for p in DEFAULT_POLICIES
]


@pytest.mark.facts("F1.2", "F1.3", "F1.4", "F1.5", "F1.6", "F1.7", "F5.1", "F5.3", "F5.4",
                   "F5.9")
@pytest.mark.parametrize("protocol", ["http", "grpc", "tcp"])
@pytest.mark.parametrize("policy", POLICY_PARAMS)
def test_default_policy_admits_exactly_its_clients(mesh: Mesh, policy: str,
                                                   protocol: str) -> None:
    """A pod annotated with a default policy and no Server admits the clients of its row, and
    denies the others the way the protocol dictates: 403, grpc-status 7, or a closed socket."""
    deploy(mesh, lab.with_default(policy))
    expect_matrix(mesh, cells(policy, protocol))


@pytest.mark.facts("F1.3", "F1.18")
def test_without_annotations_the_cluster_default_applies(mesh: Mesh) -> None:
    """With no annotation on pod or namespace, the proxy starts with the cluster default (as
    installed: all-unauthenticated unless the cluster was installed otherwise) and treats a
    plaintext client from inside the cluster as that default's row says."""
    deploy(mesh, lab.objects())
    [pod] = mesh.pods("lab", {"app": "server"})
    default = mesh.cluster_default
    assert mesh.proxy_env(pod)[POLICY_ENV] == default
    unmeshed = DEFAULT_POLICIES[default][CLIENT_ORDER.index("unmeshed")]
    expected = OK if unmeshed == A else HTTP_FORBIDDEN
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **lab.REQUESTS["http"]).becomes(expected)


@pytest.mark.facts("F1.10", "F1.11")
def test_namespace_annotation_beats_the_cluster_default(mesh: Mesh) -> None:
    """A namespace annotation present when the pod is created is copied onto it (F1.11)."""
    objs = lab.objects()
    mesh.apply(*[o for o in objs if o["kind"] == "Namespace"])
    mesh.annotate(ObjectRef("Namespace", "lab"), {POLICY_ANNOTATION: "deny"})
    deploy(mesh, objs)
    [pod] = mesh.pods("lab", {"app": "server"})
    assert pod.annotations.get(POLICY_ANNOTATION) == "deny"
    assert mesh.proxy_env(pod)[POLICY_ENV] == "deny"
    expect(mesh, lab.MESHED, lab.HTTP, "http", **lab.REQUESTS["http"]).becomes(HTTP_FORBIDDEN)


@pytest.mark.facts("F1.11")
def test_pod_annotation_beats_the_namespace_annotation(mesh: Mesh) -> None:
    """The injector copies namespace annotations only where the pod has none of its own."""
    objs = lab.with_default("all-unauthenticated")
    mesh.apply(*[o for o in objs if o["kind"] == "Namespace"])
    mesh.annotate(ObjectRef("Namespace", "lab"), {POLICY_ANNOTATION: "deny"})
    deploy(mesh, objs)
    [pod] = mesh.pods("lab", {"app": "server"})
    assert mesh.proxy_env(pod)[POLICY_ENV] == "all-unauthenticated"
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **lab.REQUESTS["http"]).becomes(OK)


@pytest.mark.facts("F1.13")
def test_annotating_a_running_pod_changes_the_default_the_controller_serves_from_2_12(
        mesh: Mesh) -> None:
    """From 2.12 the policy controller re-reads a pod's annotations whenever the pod object
    changes and pushes the new default to its ports with no Server, so annotating a running pod
    `deny` closes its HTTP port without a restart; 2.11's controller reads them once, so the
    port stays open. Either way the proxy's environment keeps the default it started with
    (F1.12), and the pod is the same one."""
    deploy(mesh, lab.with_default("all-unauthenticated"))
    [pod] = mesh.pods("lab", {"app": "server"})
    expect(mesh, lab.MESHED, lab.HTTP, "http", **lab.REQUESTS["http"]).becomes(OK)
    mesh.annotate(ObjectRef("Pod", pod.name, "lab"), {POLICY_ANNOTATION: "deny"})
    [annotated] = mesh.pods("lab", {"app": "server"})
    assert annotated.name == pod.name, "the server pod was replaced"
    assert annotated.annotations.get(POLICY_ANNOTATION) == "deny", annotated.annotations
    assert mesh.proxy_env(annotated)[POLICY_ENV] == "all-unauthenticated"
    probe = expect(mesh, lab.MESHED, lab.HTTP, "http", **lab.REQUESTS["http"])
    if expectations.running_pod_default_followed(mesh.profile.version):
        probe.becomes(HTTP_FORBIDDEN)
    else:
        probe.stays(OK)
    [after] = mesh.pods("lab", {"app": "server"})
    assert after.name == pod.name, "the server pod was replaced"


@pytest.mark.facts("F1.24")
def test_require_identity_ports_turn_unauthenticated_into_authenticated(mesh: Mesh) -> None:
    """`proxy-require-identity-inbound-ports: "8080"` makes all-unauthenticated demand an
    identity on 8080 only: a plaintext client gets 403 there and is still served on 9090."""
    deploy(mesh, lab.with_pod_annotations(lab.objects(), {
        POLICY_ANNOTATION: "all-unauthenticated",
        "config.linkerd.io/proxy-require-identity-inbound-ports": "8080"}))
    expect(mesh, lab.UNMESHED, lab.HTTP, "http",
           **lab.REQUESTS["http"]).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **lab.REQUESTS["http"]).becomes(OK)
    expect(mesh, lab.UNMESHED, lab.GRPC, "grpc", **lab.REQUESTS["grpc"]).becomes(GRPC_OK)
