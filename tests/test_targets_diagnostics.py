"""`ClusterMesh.diagnostics`: the bundle gathered for a failed check, over fake tools.

What matters is exactly which commands run per Linkerd version, that a failing command is text
in the bundle rather than an exception (which would hide the check's own failure), and that a
namespace the run does not own is never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_targets_fakes import Fakes, make_fakes

from linkerd_conformance.api import Profile
from linkerd_conformance.targets import tools
from linkerd_conformance.targets.cluster import ClusterMesh
from linkerd_conformance.targets.kube import Kube

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "emojivoto"}}
POLICY_2_11 = "servers.policy.linkerd.io,serverauthorizations.policy.linkerd.io"
POLICY_2_12 = (POLICY_2_11 + ",authorizationpolicies.policy.linkerd.io"
               ",meshtlsauthentications.policy.linkerd.io"
               ",networkauthentications.policy.linkerd.io,httproutes.policy.linkerd.io")


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    return make_fakes(tmp_path, monkeypatch)


def owned_mesh(fakes: Fakes, version: str) -> ClusterMesh:
    """A mesh that has created `emojivoto`, with the fake's call log emptied."""
    found = tools.find_tools(("kubectl", "linkerd"), path=fakes.path)
    m = ClusterMesh(Profile(version), "kubeconfig", Kube(found, context="ctx"), run_id="r1")
    m.apply(NS)
    fakes.log.unlink()
    return m


def pod(name: str, *, meshed: bool = True, ports: tuple[int, ...] = (8080,)) -> dict[str, Any]:
    containers: list[dict[str, Any]] = [
        {"name": "web-svc", "ports": [{"name": f"p{p}", "containerPort": p} for p in ports]}]
    if meshed:
        containers.append({"name": "linkerd-proxy", "ports": [
            {"name": "linkerd-proxy", "containerPort": 4143},
            {"name": "linkerd-admin", "containerPort": 4191}]})
    return {"metadata": {"name": name, "namespace": "emojivoto"},
            "spec": {"containers": containers}}


def with_pods(fakes: Fakes, *pods: dict[str, Any]) -> None:
    fakes.respond("kubectl", ["pods", "json"], {"items": list(pods)})


def commands(fakes: Fakes) -> list[str]:
    return [c.replace(" --context ctx", "", 1) for c in fakes.commands()]


def per_namespace(policy: str) -> list[str]:
    return [f"kubectl get {policy} -n emojivoto -o yaml",
            "kubectl get pods -n emojivoto -o wide",
            "kubectl get events -n emojivoto --sort-by=.lastTimestamp",
            "kubectl get pods -n emojivoto -o json"]


def test_2_11_bundle_has_no_policy_diagnostics_nor_2_12_kinds(fakes: Fakes) -> None:
    m = owned_mesh(fakes, "2.11")
    with_pods(fakes, pod("web-1"), pod("plain", meshed=False))
    fakes.respond("kubectl", ["logs"], "proxy says hi\n")
    bundle = m.diagnostics(["emojivoto"])
    assert commands(fakes) == [
        *per_namespace(POLICY_2_11),
        "kubectl logs -n emojivoto web-1 -c linkerd-proxy --tail=200",
        "linkerd diagnostics proxy-metrics -n emojivoto po/web-1"]
    assert sorted(bundle) == ["emojivoto/events.txt", "emojivoto/pods.txt",
                              "emojivoto/policy.yaml", "emojivoto/web-1/metrics.txt",
                              "emojivoto/web-1/proxy.log"]
    assert bundle["emojivoto/web-1/proxy.log"] == "proxy says hi\n"
    assert "inbound_http_authz_allow_total" in bundle["emojivoto/web-1/metrics.txt"]


@pytest.mark.parametrize("version", ["2.12", "2.18"])
def test_2_12_bundle_adds_policy_kinds_and_diagnostics_policy_per_port(
        fakes: Fakes, version: str) -> None:
    m = owned_mesh(fakes, version)
    with_pods(fakes, pod("web-1", ports=(9990, 8080)))
    fakes.respond("linkerd", ["diagnostics", "policy", "8080"], "protocol: http1\n")
    bundle = m.diagnostics(["emojivoto"])
    assert commands(fakes) == [
        *per_namespace(POLICY_2_12),
        "kubectl logs -n emojivoto web-1 -c linkerd-proxy --tail=200",
        "linkerd diagnostics proxy-metrics -n emojivoto po/web-1",
        "linkerd diagnostics policy -n emojivoto po/web-1 8080 -o yaml",
        "linkerd diagnostics policy -n emojivoto po/web-1 9990 -o yaml"]
    assert bundle["emojivoto/web-1/policy-8080.yaml"] == "protocol: http1\n"
    assert "emojivoto/web-1/policy-9990.yaml" in bundle
    assert not any("4143" in k or "4191" in k for k in bundle)  # the proxy's own ports


def test_a_failing_command_is_text_in_the_bundle(fakes: Fakes) -> None:
    m = owned_mesh(fakes, "2.12")
    with_pods(fakes, pod("web-1"))
    fakes.respond("kubectl", ["get", "events"], rc=1,
                  stderr="Error from server (Forbidden): events is forbidden\n")
    fakes.respond("linkerd", ["diagnostics", "policy"], rc=1,
                  stderr="Error: failed to connect to the policy controller\n")
    bundle = m.diagnostics(["emojivoto"])
    assert bundle["emojivoto/events.txt"] == (
        "kubectl get events -n emojivoto --sort-by=.lastTimestamp failed (exit 1): "
        "Error from server (Forbidden): events is forbidden\n")
    assert bundle["emojivoto/web-1/policy-8080.yaml"].startswith(
        "linkerd diagnostics policy -n emojivoto po/web-1 8080 -o yaml failed (exit 1): "
        "Error: failed to connect")
    assert "emojivoto/web-1/proxy.log" in bundle  # the rest is still gathered


def test_unlistable_pods_skip_per_pod_diagnostics_without_raising(fakes: Fakes) -> None:
    m = owned_mesh(fakes, "2.11")
    fakes.respond("kubectl", ["pods", "json"], rc=1, stderr="Unable to connect to the server\n")
    bundle = m.diagnostics(["emojivoto"])
    assert "Unable to connect to the server" in bundle["emojivoto/proxies.txt"]
    assert sorted(bundle) == ["emojivoto/events.txt", "emojivoto/pods.txt",
                              "emojivoto/policy.yaml", "emojivoto/proxies.txt"]


def test_namespaces_the_run_does_not_own_are_not_touched(fakes: Fakes) -> None:
    m = owned_mesh(fakes, "2.12")
    bundle = m.diagnostics(["kube-system", "linkerd", "emojivoto", "emojivoto"])
    assert {k.split("/")[0] for k in bundle} == {"emojivoto"}
    namespaces = [c["argv"][c["argv"].index("-n") + 1] for c in fakes.calls()]
    assert namespaces == ["emojivoto"] * 4  # each owned namespace once, despite the repeat


def test_a_fresh_mesh_owns_nothing_and_runs_nothing(fakes: Fakes) -> None:
    found = tools.find_tools(("kubectl", "linkerd"), path=fakes.path)
    m = ClusterMesh(Profile("2.12"), "kubeconfig", Kube(found, context="ctx"), run_id="r1")
    assert m.diagnostics(["emojivoto"]) == {}
    assert fakes.calls() == []
