"""The reference mesh's fixed bugs around defaults, the API store and client addresses.

Each test fails with its fix reverted: an unknown default-policy value raised a bare KeyError
from `apply` (and `audit` was honoured before 2.16); explicit nulls were stored, so
`requiredAuthenticationRefs: null` was admitted; two Clients differing only by name shared one
address.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linkerd_conformance import HTTP_FORBIDDEN, OK, Client, Profile, TargetError, lab
from linkerd_conformance.reference.mesh import ReferenceMesh
from linkerd_conformance.reference.store import drop_nulls
from linkerd_conformance.waiting import expect

ENV = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"


@pytest.fixture
def mesh_of(request: pytest.FixtureRequest) -> Iterator[ReferenceMesh]:
    with ReferenceMesh(Profile(request.param)) as mesh:
        yield mesh


@pytest.mark.parametrize(("mesh_of", "value"), [("2.11", "audit"), ("2.15", "audit"),
                                                ("2.11", "bogus"), ("2.20", "bogus")],
                         indirect=["mesh_of"])
def test_an_unknown_default_value_is_ignored_with_the_injectors_warning(
        mesh_of: ReferenceMesh, value: str) -> None:
    lab.deploy(mesh_of, lab.with_default(value))  # used to raise KeyError('bogus')
    [pod] = mesh_of.pods("lab", {"app": "server"})
    assert pod.annotations["config.linkerd.io/default-inbound-policy"] == value
    assert mesh_of.proxy_env(pod)[ENV] == "all-unauthenticated"
    [warning] = mesh_of.workloads.injector_log
    assert ("unrecognized value used for the config.linkerd.io/default-inbound-policy "
            "annotation, valid values are: [all-unauthenticated, all-authenticated, "
            "cluster-unauthenticated, cluster-authenticated, deny") in warning
    assert ("audit]" in warning) == mesh_of.profile.at_least("2.16")
    assert "linkerd/proxy-injector.log" in mesh_of.diagnostics(["lab"])


@pytest.mark.parametrize("mesh_of", ["2.16"], indirect=True)
def test_audit_is_a_default_from_2_16(mesh_of: ReferenceMesh) -> None:
    lab.deploy(mesh_of, lab.with_default("audit"))
    [pod] = mesh_of.pods("lab", {"app": "server"})
    assert mesh_of.proxy_env(pod)[ENV] == "audit"
    assert mesh_of.workloads.injector_log == []


def test_drop_nulls_removes_null_fields_at_every_depth() -> None:
    assert drop_nulls({"a": None, "b": {"c": None, "d": 1}, "e": [{"f": None}, None]}) == \
        {"b": {"d": 1}, "e": [{}, None]}


@pytest.mark.parametrize("mesh_of", ["2.12"], indirect=True)
def test_a_null_field_is_a_missing_field(mesh_of: ReferenceMesh) -> None:
    mesh_of.apply(*[o for o in lab.objects() if o["kind"] == "Namespace"])
    policy = lab.resource("AuthorizationPolicy", "nulls", {
        "targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "web"},
        "requiredAuthenticationRefs": None})
    with pytest.raises(TargetError, match=r"spec.requiredAuthenticationRefs: Required value"):
        mesh_of.apply(policy)
    mesh_of.apply(lab.server("web", "http", proxyProtocol=None))
    stored = mesh_of.store.get("Server", "lab", "web")
    assert stored is not None and "proxyProtocol" not in stored["spec"]


@pytest.mark.parametrize("mesh_of", ["2.11"], indirect=True)
def test_two_clients_differing_by_name_have_their_own_addresses(mesh_of: ReferenceMesh) -> None:
    first = Client(lab.NAMESPACE, "client", meshed=False, name="first")
    second = Client(lab.NAMESPACE, "client", meshed=False, name="second")
    lab.deploy(mesh_of, lab.objects())
    ip, _ = mesh_of._client(first)
    assert ip != mesh_of._client(second)[0]
    assert mesh_of._client(first)[0] == ip  # the same client keeps its address
    # so a network can tell them apart: only the first one's address is authorized
    mesh_of.apply(lab.server("web", "http"), lab.server_authorization(
        "first-only", {"unauthenticated": True, "networks": [{"cidr": f"{ip}/32"}]},
        server_name="web"))
    expect(mesh_of, first, lab.HTTP, "http", **lab.REQUESTS["http"]).becomes(OK)
    expect(mesh_of, second, lab.HTTP, "http", **lab.REQUESTS["http"]).becomes(HTTP_FORBIDDEN)
