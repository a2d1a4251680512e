"""`ClusterMesh.diagnostics` against the cluster double: the bundle of a failed check.

What matters: each version's bundle has what that version's CLI can give (2.11 has no
`linkerd diagnostics policy`; 2.12 takes `policy -n NS POD PORT`; 2.13+ `po/POD PORT -o yaml`,
and the fake linkerd refuses the other syntax), a failing command is text in the bundle rather
than an exception, and a namespace the run does not own is never read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_targets_cluster import new_mesh
from test_targets_double import LabFactory, lab_factory

from linkerd_conformance import manifests
from linkerd_conformance.api import Profile
from linkerd_conformance.targets.cluster import ClusterMesh, policy_diagnostics_args
from linkerd_conformance.targets.kube import Kube
from linkerd_conformance.targets.tools import find_tools


@pytest.fixture
def make_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabFactory]:
    yield from lab_factory(tmp_path, monkeypatch)


def web_only() -> list[dict]:
    return [o for o in manifests.load("emojivoto.yml")
            if o["kind"] == "Namespace" or o["metadata"]["name"] in ("web", "web-svc")]


def owned_mesh(make_lab: LabFactory, version: str) -> ClusterMesh:
    m = new_mesh(make_lab(version, linkerd_installed=True))
    m.apply(*web_only())
    assert all(m.wait_rollout("emojivoto", "web"))
    return m


def test_2_11_bundle_has_no_policy_diagnostics(make_lab: LabFactory) -> None:
    m = owned_mesh(make_lab, "2.11")
    bundle = m.diagnostics(["emojivoto"])
    [web] = m.pods("emojivoto")
    assert sorted(bundle) == ["emojivoto/events.txt", "emojivoto/pods.txt",
                              "emojivoto/policy.yaml", f"emojivoto/{web.name}/metrics.txt",
                              f"emojivoto/{web.name}/proxy.log"]
    assert "inbound_http_authz_allow_total" in bundle[f"emojivoto/{web.name}/metrics.txt"] \
        or "# TYPE" in bundle[f"emojivoto/{web.name}/metrics.txt"]
    assert web.name in bundle["emojivoto/pods.txt"]
    assert yaml.safe_load(bundle["emojivoto/policy.yaml"]) == []


@pytest.mark.parametrize("version", ["2.12", "2.13"])
def test_2_12_and_later_bundles_have_what_the_policy_controller_serves(
        make_lab: LabFactory, version: str) -> None:
    m = owned_mesh(make_lab, version)
    m.apply({"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Server",
             "metadata": {"name": "web-http", "namespace": "emojivoto"},
             "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": "http"}})
    bundle = m.diagnostics(["emojivoto"])
    [web] = m.pods("emojivoto")
    served = bundle[f"emojivoto/{web.name}/policy-8080.yaml"]
    assert "failed" not in served, served  # the CLI of that version took the syntax
    assert yaml.safe_load(served)
    assert [o["metadata"]["name"] for o in yaml.safe_load(bundle["emojivoto/policy.yaml"])] \
        == ["web-http"]
    assert not any("4143" in k or "4191" in k for k in bundle)  # the proxy's own ports


def test_the_policy_command_is_each_versions_syntax() -> None:
    assert policy_diagnostics_args(Profile("2.12"), "ns", "web-1", 8080) == [
        "diagnostics", "policy", "-n", "ns", "web-1", "8080"]
    assert policy_diagnostics_args(Profile("2.13"), "ns", "web-1", 8080) == [
        "diagnostics", "policy", "-n", "ns", "po/web-1", "8080", "-o", "yaml"]


def test_a_failing_command_is_text_in_the_bundle(make_lab: LabFactory) -> None:
    m = owned_mesh(make_lab, "2.12")
    m.kube = Kube(find_tools(("kubectl", "linkerd")), context="gone",
                  kubeconfig=m.kube.kubeconfig)  # the CLI cannot reach the cluster
    bundle = m.diagnostics(["emojivoto"])
    [web] = m.pods("emojivoto")
    metrics = bundle[f"emojivoto/{web.name}/metrics.txt"]
    assert metrics.startswith(f"linkerd diagnostics proxy-metrics -n emojivoto po/{web.name} "
                              'failed (exit 1): Error: context "gone" does not exist')
    assert bundle[f"emojivoto/{web.name}/policy-8080.yaml"].startswith(
        f"linkerd diagnostics policy -n emojivoto {web.name} 8080 failed (exit 1)")
    assert f"emojivoto/{web.name}/proxy.log" in bundle  # the rest is still gathered


def test_namespaces_the_run_does_not_own_are_not_touched(make_lab: LabFactory) -> None:
    m = owned_mesh(make_lab, "2.12")
    bundle = m.diagnostics(["kube-system", "linkerd", "emojivoto", "emojivoto"])
    assert {k.split("/")[0] for k in bundle} == {"emojivoto"}
    fresh = new_mesh(make_lab("2.12", linkerd_installed=True), run_id="r2")
    assert fresh.diagnostics(["emojivoto"]) == {}


def test_mesh_linkerd_runs_the_clusters_cli_and_returns_refusals(make_lab: LabFactory) -> None:
    """`ClusterMesh.linkerd` is the run's `linkerd` against the cluster: its output and exit
    code, a refusal included (the CLI checks judge it); it never raises for a non-zero exit."""
    m = owned_mesh(make_lab, "2.12")
    m.apply({"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Server",
             "metadata": {"name": "web-http", "namespace": "emojivoto"},
             "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": "http"}})
    listed = m.linkerd("authz", "-n", "emojivoto", "deploy/web")
    assert listed.rc == 0 and listed.stdout.split() == [
        "ROUTE", "SERVER", "AUTHORIZATION_POLICY", "SERVER_AUTHORIZATION"], listed
    [web] = m.pods("emojivoto")
    served = m.linkerd("diagnostics", "policy", "-n", "emojivoto", web.name, "8080")
    assert yaml.safe_load(served.stdout)["labels"] == {
        "group": "policy.linkerd.io", "kind": "server", "name": "web-http"}, served
    refused = m.linkerd("install", "--ignore-cluster", "--default-inbound-policy", "open")
    assert refused.rc == 1 and refused.argv[-1] == "open"
    assert "--default-inbound-policy must be one of" in refused.stderr
