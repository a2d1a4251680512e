"""The per-version semantics records (`linkerd_conformance.semantics`).

(a) there is a record for every known version, and every field's comment names rows of
    `docs/semantics.md` that exist;
(b) adding a version is one record: a fictional 2.21 that differs from 2.20 in one field shows
    that difference on a reference mesh, and nothing else;
(c) the record and the independent reading in `expectations.py` agree wherever both speak.
"""

from __future__ import annotations

import dataclasses
import inspect
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from linkerd_conformance import (
    CONNECTION_CLOSED,
    GRPC_OK,
    GRPC_PERMISSION_DENIED,
    NOT_FOUND,
    Profile,
    expectations,
    facts,
    workshop,
)
from linkerd_conformance.api import KNOWN_VERSIONS
from linkerd_conformance.reference.faults import FAULT_EDITS, FAULTS, FaultSet
from linkerd_conformance.reference.mesh import ReferenceMesh
from linkerd_conformance.semantics import SEMANTICS, Semantics, semantics_of
from linkerd_conformance.waiting import expect

FACT_ID = re.compile(r"\bF\d+\.\d+\b")


# ---- (a) one record per version, every field grounded in the specification ----------------


def field_comments() -> dict[str, str]:
    """Each field of `Semantics` -> its comment: the comment lines just above it plus the
    comment at the end of its line."""
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(Semantics).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped)
            continue
        field = re.match(r"^    (\w+): [^=]+?(?:#(.*))?$", line)
        if field and not stripped.startswith(("def ", "return", '"""')):
            out[field.group(1)] = " ".join([*pending, field.group(2) or ""])
        pending = []
    return out


def test_every_known_version_has_a_record() -> None:
    assert tuple(SEMANTICS) == KNOWN_VERSIONS
    for version in KNOWN_VERSIONS:
        record = semantics_of(Profile(version))
        assert record.version == version and record is SEMANTICS[version]
    with pytest.raises(ValueError, match="no semantics record"):
        semantics_of("2.99")


def test_every_field_comment_names_facts_of_the_specification() -> None:
    comments = field_comments()
    fields = [f.name for f in dataclasses.fields(Semantics)]
    assert sorted(comments) == sorted(fields), "a field without a parsable comment line"
    known = facts.load()
    for name in fields:
        if name == "version":  # the record's key, not a behaviour
            continue
        ids = FACT_ID.findall(comments[name])
        assert ids, f"Semantics.{name}'s comment names no fact id: {comments[name]!r}"
        missing = [i for i in ids if i not in known]
        assert not missing, f"Semantics.{name} names ids not in docs/semantics.md: {missing}"


def test_records_are_frozen_and_built_from_the_previous_version() -> None:
    record = SEMANTICS["2.20"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.denial_text = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.served_versions["Server"] = ()  # type: ignore[index]
    # the changes between consecutive versions are what the specification dates
    changed = {}
    versions = list(SEMANTICS)
    for before, after in zip(versions, versions[1:], strict=False):
        a, b = SEMANTICS[before], SEMANTICS[after]
        changed[after] = sorted(f.name for f in dataclasses.fields(Semantics)
                                if f.name != "version" and getattr(a, f.name) != getattr(b, f.name))
    # F4.11, F2.1
    assert changed["2.17"] == ["backend_port_required", "deprecation_warnings"]
    # F9.10, F4.3; F6.9, F6.10: the beta native-sidecar annotation, init containers' named
    # ports indexed
    assert changed["2.19"] == ["control_plane_ports", "gateway_api_bundled",
                               "init_container_ports_indexed", "native_sidecar_annotations",
                               "policy_targets"]
    # F4.8; F6.9: native sidecars by default, the stable annotation
    assert changed["2.20"] == ["meshtls_deletion_bug", "native_sidecar_annotations",
                               "native_sidecar_default"]
    # F7.6, F2.14; the bundled Gateway API CRDs move to v1.1.1 (F4.12, F4.13)
    # F8.6, F8.7: `multicluster link-gen`
    assert changed["2.18"] == ["metric_labels", "multicluster_link_gen", "overlapping_servers",
                               "served_versions"]


def test_fault_edits_are_named_faults() -> None:
    assert set(FAULT_EDITS) <= set(FAULTS)
    base = SEMANTICS["2.20"]
    for name in FAULT_EDITS:
        edited = FaultSet([name]).edit(base)
        assert isinstance(edited, Semantics)
    assert FaultSet(["no-probe-authorization"]).edit(base).probe_authorization is False
    assert FaultSet().edit(base) is base


# ---- (b) adding a version is one record ----------------------------------------------------

NEW_TEXT = "client: server: unauthorized request on route {server}"  # a fictional 2.21


def _workshop_denial(mesh: ReferenceMesh) -> tuple[str | None, str | None]:
    """The workshop's lockdown; then (grpc-message of the bad vote-bot's refused call to emoji,
    the allow counter's labels for web's call), having checked that web still gets in."""
    mesh.apply(*workshop.emojivoto(), *workshop.bad(), *workshop.emojivoto_policy())
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    for rollout in mesh.rollout_restart("emojivoto"):
        assert rollout.settled, rollout.reason
    assert all(r.settled for r in mesh.wait_rollout("bad"))
    # the workshop's checks: web is admitted, the bad vote-bot refused with PERMISSION_DENIED
    expect(mesh, workshop.web, workshop.emoji_grpc, "grpc",
           **workshop.LIST_ALL).becomes(GRPC_OK)
    denied = expect(mesh, workshop.bad_votebot, workshop.emoji_grpc, "grpc",
                    **workshop.LIST_ALL).becomes(GRPC_PERMISSION_DENIED)
    return denied.grpc_message, denied.proxy_error


def test_a_fictional_version_is_one_record_and_shows_its_one_difference() -> None:
    v221 = dataclasses.replace(SEMANTICS["2.20"], version="2.21", denial_text=NEW_TEXT)
    differs = [f.name for f in dataclasses.fields(Semantics)
               if getattr(v221, f.name) != getattr(SEMANTICS["2.20"], f.name)]
    assert differs == ["version", "denial_text"]
    with ReferenceMesh(Profile("2.20")) as mesh:
        assert mesh.semantics is SEMANTICS["2.20"]
        old = _workshop_denial(mesh)
    with ReferenceMesh(Profile("2.20"), semantics=v221) as mesh:
        assert mesh.semantics is v221
        new = _workshop_denial(mesh)
    # from 2.13 the text ends the error chain `client ...: server: ...: <text>` (F10.8)
    assert all(t and t.startswith("client ") for t in (*old, *new)), (old, new)
    assert all(t and t.endswith(": unauthorized request on route") for t in old), old
    assert all(t and t.endswith(": " + NEW_TEXT.format(server="emoji-grpc")) for t in new), new


# ---- (c) the record and expectations.py agree where both speak -----------------------------

CLUSTER = ("10.0.0.0/8",)
V4_NODE, V6_NODE = "10.0.0.1", "fd00::1"
POD = expectations.PodSpec("app", {"app": "web"}, "deny", (("http", 8080),),
                           http_probes=((8080, "/ready"),))
PLAIN = expectations.ClientSpec(V4_NODE, None)
POLICY_KINDS = ("Server", "ServerAuthorization", "AuthorizationPolicy", "MeshTLSAuthentication",
                "NetworkAuthentication", "HTTPRoute")
API_VERSIONS = ("v1alpha1", "v1beta1", "v1beta2", "v1beta3")


def ask(version: str, objects: Sequence[Mapping[str, Any]] = (),
        pod: expectations.PodSpec = POD, client: expectations.ClientSpec = PLAIN,
        port: int = 8080, path: str = "/") -> expectations.Expectation:
    return expectations.expect_request(version, list(objects), pod, client, port, "http",
                                       path=path, cluster_networks=CLUSTER)


def server(api: str = "v1beta1", port: int | str = 8080, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"policy.linkerd.io/{api}", "kind": "Server",
            "metadata": {"name": "srv", "namespace": "app"},
            "spec": {"podSelector": {"matchLabels": {}}, "port": port, **spec}}


def served_by_expectations(version: str, kind: str, api: str) -> bool:
    other = {"apiVersion": f"policy.linkerd.io/{api}", "kind": kind,
             "metadata": {"name": "x", "namespace": "elsewhere"}, "spec": {}}
    try:
        ask(version, [other])
    except ValueError as e:
        assert "is not served" in str(e), e
        return False
    return True


#: The rows compared, (what, record field(s), how expectations.py is asked).
ROWS = (
    ("valid default policies", "default_policies", "default_policies(version)"),
    ("default server name", "default_names", "expect_request(...).server with no Server"),
    ("served apiVersions", "served_versions",
     "expect_request refuses objects of an unserved apiVersion"),
    ("probes authorized", "probe_authorization",
     "GET of an httpGet probe path under deny, from the node"),
    ("probe networks", "probe_networks", "the same from an IPv4 and an IPv6 node address"),
    ("Servers on undeclared ports", "servers_on_undeclared_ports",
     "a Server on an undeclared numeric port under all-unauthenticated"),
    ("undeclared port refused at accept", "undeclared_ports_discovered",
     "HTTP to an undeclared port under deny: closed, or 403"),
    ("accessPolicy", "access_policy", "a v1beta3 Server with accessPolicy all-unauthenticated"),
    ("Gateway API HTTPRoutes read", "gateway_routes",
     "a request matching no route of a Gateway API HTTPRoute on the Server: 404, or 403"),
    ("Gateway API HTTPRoute targets", "policy_targets",
     "an open AuthorizationPolicy targeting that route: refused, or it admits"),
    ("TLS versions", "tls_versions", "tls_versions(version)"),
    ("refusal text is the error chain", "denial_error_chain",
     "denial_message(version, ...) starts with `client `"),
    ("route labels on HTTP authz counters", "authz_route_labels",
     "authz_route_labels(version)"),
    ("a running pod's changed default served", "pod_metadata_reindexed",
     "running_pod_default_followed(version)"),
    ("serviceAccounts name `linkerd`", "service_accounts_assume_linkerd_namespace",
     "service_account_identity(version, ...) with the control plane in linkerd-cp"),
    ("bare addresses as networks", "bare_address_networks", "bare_address_networks(version)"),
)


def gateway_route(kind: str = "HTTPRoute") -> dict[str, Any]:
    return {"apiVersion": f"{expectations.GATEWAY_GROUP}/v1beta1", "kind": kind,
            "metadata": {"name": "r", "namespace": "app"},
            "spec": {"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server",
                                     "name": "srv"}],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}]}]}}


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_record_agrees_with_expectations(version: str) -> None:
    s = SEMANTICS[version]
    # valid default-policy values (F1.1, F1.2)
    assert expectations.default_policies(version) == s.default_policies
    # default names (F1.8, F1.9)
    name = ask(version).server
    assert name == ("default/deny" if s.default_names == "kind-default" else "default:deny")
    # served versions (F2.1, F3.1, F4.1)
    for kind in POLICY_KINDS:
        for api in API_VERSIONS:
            assert served_by_expectations(version, kind, api) == (
                api in s.served_versions.get(kind, ())), (kind, api)
    # probe authorization and probe networks (F6.1, F6.2, F6.4)
    for ip in (V4_NODE, V6_NODE):
        e = ask(version, client=expectations.ClientSpec(ip, None), path="/ready")
        in_nets = any(ipaddress.ip_address(ip) in ipaddress.ip_network(n)
                      for n in s.probe_networks)
        assert (e.authorization is not None) == (s.probe_authorization and in_nets), (ip, e)
    # a Server on an undeclared numeric port (F2.9, F2.11)
    allowing = dataclasses.replace(POD, default_policy="all-unauthenticated")
    e = ask(version, [server(port=9999)], pod=allowing, port=9999)
    assert (e.authorization is None) == s.servers_on_undeclared_ports, e
    # an undeclared port under deny (F2.9, F2.10, F2.11)
    e = ask(version, port=9999)
    assert (e.expected == CONNECTION_CLOSED) == (not s.undeclared_ports_discovered), e
    # accessPolicy (F2.6), where v1beta3 Servers exist
    if "v1beta3" in s.served_versions["Server"]:
        e = ask(version, [server("v1beta3", accessPolicy="all-unauthenticated")])
        assert (e.authorization is not None) == s.access_policy, e
    # Gateway API HTTPRoutes with a Server parent (F4.12), and as policy targets (F4.3)
    if version != "2.11":
        e = ask(version, [server(), gateway_route()], path="/other")
        assert (e.expected == NOT_FOUND) == ("HTTPRoute" in s.gateway_routes), e
    if "HTTPRoute" in s.gateway_routes:
        target = {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
                  "metadata": {"name": "p", "namespace": "app"},
                  "spec": {"targetRef": {"group": expectations.GATEWAY_GROUP,
                                         "kind": "HTTPRoute", "name": "r"},
                           "requiredAuthenticationRefs": []}}
        try:
            admitted = ask(version, [server(), gateway_route(), target],
                           path="/api/x").authorization is not None
        except ValueError:  # expectations: admission refuses the policy
            admitted = False
        assert admitted == (s.policy_targets == "index"), version
    # the inbound proxy's front door (F10.1, F10.8, F10.10)
    assert expectations.tls_versions(version) == s.tls_versions
    chain = expectations.denial_message(version, "srv", "10.0.0.1:40000", "10.0.0.2:8080")
    assert chain == s.denial("srv", "10.0.0.1:40000", "10.0.0.2:8080")
    assert chain.startswith("client ") == s.denial_error_chain
    assert expectations.authz_route_labels(version) == s.authz_route_labels
    # a running pod's changed annotations, re-read by the controller (F1.13)
    assert expectations.running_pod_default_followed(version) == s.pod_metadata_reindexed
    # service accounts with the control plane in another namespace (F3.8)
    named = expectations.service_account_identity(version, "sa", "app", "linkerd-cp")
    assert (named == expectations.proxy_identity("sa", "app", "linkerd")) == \
        s.service_accounts_assume_linkerd_namespace, named
    # a network written as a bare address (F3.12)
    assert expectations.bare_address_networks(version) == s.bare_address_networks


def test_rows_compared_name_record_fields() -> None:
    fields = {f.name for f in dataclasses.fields(Semantics)}
    assert {row[1] for row in ROWS} <= fields


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_cli_fields_agree_with_expectations(version: str) -> None:
    """The CLI fields (section 9, F1.15-F1.17) against expectations.cli_facts."""
    s, e = SEMANTICS[version], expectations.cli_facts(version)
    assert s.authz_columns == e.authz_columns  # F9.1
    assert s.diagnostics_policy == e.diagnostics_policy  # F9.3
    assert s.default_policy_value == e.default_policy_value  # F1.15, F1.16
    assert s.crds_with_control_plane == e.crds_with_control_plane  # F9.8, F9.9
    assert s.gateway_api_bundled == e.gateway_api_bundled  # F9.10
    assert (",".join(s.probe_networks) or None) == e.probe_networks  # F1.17
    assert s.serves("AuthorizationPolicy") == e.allow_scrapes  # F9.6
    assert s.check_crds_flag == e.check_crds  # F9.7
    assert s.cluster_networks_default == e.cluster_networks  # F1.21, F1.22
    assert dict(s.control_plane_proxy_defaults) == dict(e.control_plane_proxies)  # F1.25
    assert ("link-gen" if s.multicluster_link_gen else "link") == e.link_command  # F8.6, F8.7
    assert {c: sorted(n for _, _, n in ports) for c, ports in s.control_plane_ports.items()} \
        == {c: sorted(n) for c, n in e.control_plane_port_names}  # F2.16
    assert s.authz_server_version == e.authz_server_version  # F9.2


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_deprecation_warnings_agree_with_expectations(version: str) -> None:
    """F2.1, F3.1: the record's CRD warnings are the independent table's, version by version."""
    s = SEMANTICS[version]
    for kind in ("Server", "ServerAuthorization"):
        for api in API_VERSIONS:
            assert s.deprecation_warnings.get(kind, {}).get(api) == \
                expectations.deprecation_warning(version, kind, api), (kind, api)
            assert expectations.served(version, kind, api) == (
                api in s.served_versions.get(kind, ())), (kind, api)


# ---- probes, opaque ports, native sidecars (F5.12, F6.4, F6.9, F6.10) ----------------------

NATIVE = ("config.linkerd.io/proxy-enable-native-sidecar",
          "config.beta.linkerd.io/proxy-enable-native-sidecar",
          "config.alpha.linkerd.io/proxy-enable-native-sidecar")


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_opaque_ports_and_native_sidecars_agree_with_expectations(version: str) -> None:
    s = SEMANTICS[version]
    # F5.12: the injector's default opaque ports, for a pod declaring each port alone
    for port in (*s.default_opaque_ports, 80, 8080, 3307):
        want = str(port) if port in s.default_opaque_ports else None
        assert expectations.injected_opaque_ports(version, [port]) == want, port
    # F6.9, F6.10: which annotation opts in or out, and the default
    assert expectations.proxy_is_native_sidecar(version, {}) == s.native_sidecar_default
    for name in NATIVE:
        for value in ("true", "false"):
            record = (value == "true") if name in s.native_sidecar_annotations \
                else s.native_sidecar_default
            assert expectations.proxy_is_native_sidecar(version, {name: value}) == record, \
                (name, value)


def test_an_empty_probe_networks_list_turns_probe_routes_off() -> None:
    """F6.4: installed with `probeNetworks: []`, the reference serves no probe route, so under
    deny the kubelet's GET /ready is refused and the probed pod never becomes Ready."""
    from linkerd_conformance import HTTP_FORBIDDEN, OK, lab
    deny = {"config.linkerd.io/default-inbound-policy": "deny"}
    objs = lab.with_pod_annotations([*lab.objects(), *lab.probed()], deny)
    with ReferenceMesh(Profile("2.20")) as mesh:
        mesh.apply(*objs)
        assert all(r.settled for r in mesh.wait_rollout("lab"))
        expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(OK)
    with ReferenceMesh(Profile("2.20"), probe_networks=()) as mesh:
        mesh.apply(*objs)
        stalled = [r for r in mesh.wait_rollout("lab", "probed") if not r.settled]
        assert stalled and "Readiness probe failed" in stalled[0].reason, stalled
        expect(mesh, lab.NODE, lab.PROBED, "http", path="/ready").becomes(HTTP_FORBIDDEN)
