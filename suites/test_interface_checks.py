"""Checks that need more of a target than a probe: a client's own address, an object read back
as the API keeps it, a mesh installed with a chosen cluster-wide default, and policy objects
built for a namespace other than the lab's.

Each reads like the others (apply this, expect that from there); what is new is only which
member of `Mesh` it leans on, so that "Writing a check" in README.md can point here.
"""

from __future__ import annotations

import pytest

from linkerd_conformance import (
    GRPC_PERMISSION_DENIED,
    HTTP_FORBIDDEN,
    OK,
    Client,
    Mesh,
    expect,
    lab,
)

pytestmark = [pytest.mark.conformance]

HTTP = lab.REQUESTS["http"]
GRPC = lab.REQUESTS["grpc"]
POLICY_ENV = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"

#: a second pod of the lab's meshed client: same namespace, same service account, so the same
#: identity; only its address tells it from `lab.MESHED`
SIBLING = Client(lab.NAMESPACE, "client", meshed=True, name="meshed-sibling")


@pytest.mark.feature("server-authorization")
@pytest.mark.facts("F3.4")
def test_a_network_of_one_address_admits_that_pod_and_refuses_its_sibling(mesh: Mesh) -> None:
    """`networks: [{cidr: <pod IP>/32}]` admits exactly one pod: its sibling, with the same
    service account and so the same identity, is refused. Linkerd's own policy tests authorize
    one client this way (policy-test: a NetworkAuthentication of the client pod's IP)."""
    lab.placeable(mesh, lab.MESHED, SIBLING)
    lab.deploy(mesh, lab.objects())
    admitted, sibling = mesh.client_address(lab.MESHED), mesh.client_address(SIBLING)
    if admitted == sibling:
        pytest.skip(f"the {mesh.name} target gives the client pods {lab.MESHED.pod_name} and "
                    f"{SIBLING.pod_name} one address ({admitted}), so no network can tell "
                    "them apart")
    mesh.apply(lab.server("http", "http"), lab.server_authorization(
        "one-pod", {"networks": [{"cidr": f"{admitted}/32"}],
                    "meshTLS": {"serviceAccounts": [{"name": "client"}]}}, server_name="http"))
    expect(mesh, SIBLING, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)


@pytest.mark.versions(">=2.16")
@pytest.mark.feature("access-policy")
@pytest.mark.facts("F2.7")
@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_a_server_written_as_an_older_version_is_kept_without_its_access_policy(
        mesh: Mesh, version: str) -> None:
    """Only the v1beta3 Server schema has `accessPolicy`: written through an older version the
    field is pruned without a word, so reading the Server back shows none (and the Server
    denies, as the behavioural check of F2.7 shows)."""
    lab.deploy(mesh, [*lab.objects(), lab.server(
        "web", "http", api_version=f"policy.linkerd.io/{version}",
        accessPolicy="all-unauthenticated")])
    kept = mesh.get("Server", lab.NAMESPACE, "web", api_version=f"policy.linkerd.io/{version}")
    assert kept is not None, f"server/{lab.NAMESPACE}/web was applied but cannot be read back"
    assert kept["spec"]["port"] == "http", kept
    assert "accessPolicy" not in kept["spec"], (
        f"the API kept accessPolicy on a {version} Server (only v1beta3 has it): {kept['spec']}")


@pytest.mark.feature("default-policy")
@pytest.mark.facts("F1.7", "F1.18")
@pytest.mark.cluster_default("deny")
def test_a_mesh_installed_with_deny_refuses_even_meshed_clients_of_an_unannotated_pod(
        mesh: Mesh) -> None:
    """Installed with the cluster-wide default `deny`, a pod with no annotation of its own (nor
    on its namespace) gets `deny` from the injector and refuses every client, meshed ones too,
    on every port."""
    lab.deploy(mesh, lab.objects())
    [pod] = mesh.pods(lab.NAMESPACE, {"app": "server"})
    assert mesh.proxy_env(pod)[POLICY_ENV] == "deny" == mesh.cluster_default
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(GRPC_PERMISSION_DENIED)


@pytest.mark.feature("server")
@pytest.mark.facts("F2.15")
def test_a_server_in_another_namespace_leaves_the_lab_pods_alone(mesh: Mesh) -> None:
    """A Server selects pods of its own namespace only: one in namespace `other` whose selector
    and port match the lab's server, with no authorization, does not make the lab deny. A Server
    on the lab's own gRPC port, applied with it, shows the change has been pushed."""
    lab.deploy(mesh, lab.objects())
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    mesh.apply(lab.namespace("other"),
               lab.server("http", "http", namespace="other"),
               lab.server("grpc", "grpc"))
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(GRPC_PERMISSION_DENIED)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).stays(OK)
