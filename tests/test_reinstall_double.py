"""Checks of an install value on `--target kind`: another kind cluster, through the double.

F1.20 (clusterNetworks empty) and F6.4 (probeNetworks empty) need Linkerd installed so; the kind
target makes one more kind cluster per set of values the first time a check asks
(`targets/reinstall.py`), and the cluster double gives it an API server of its own. Removing
that capability (a `ClusterMesh.reinstalled` that refuses, as before) turns these checks into
skips, which the first test rejects.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
from double.run import cluster_name, kind_args, kind_run_env, run_conformance

from linkerd_conformance.api import Profile, Unsupported
from linkerd_conformance.targets.cluster import ClusterMesh
from linkerd_conformance.targets.plan import build_plan
from linkerd_conformance.targets.session import ClusterSettings

CHECKS = "without_cluster_networks or empty_probe_networks"


def results(report: dict[str, Any]) -> dict[str, str]:
    """The applicable checks' results (a check of another version is left out)."""
    return {c["nodeid"].rsplit("::", 1)[-1]: c["result"] for c in report["checks"]
            if "not applicable to" not in c.get("reason", "")}


@pytest.mark.slow
@pytest.mark.parametrize(("version", "count", "clusters"), [("2.11", 5, 1), ("2.20", 7, 2)])
def test_the_install_value_checks_pass_on_kind_through_other_clusters(
        tmp_path: Path, version: str, count: int, clusters: int) -> None:
    """F1.20's checks (and from 2.12 F6.4's) pass on kind, none skipped; one cluster per set
    of values was made, counted, and deleted at the end."""
    with kind_run_env(version, tmp_path) as (double, env, _):
        report = run_conformance(tmp_path, env, *kind_args(version, tmp_path), "-k", CHECKS)
        state = double.read_state()
    seen = results(report)
    assert len(seen) == count and set(seen.values()) == {"passed"}, (seen, report["_output"])
    assert report["operations"].get("reinstalled clusters") == clusters, report["operations"]
    assert not state.get("clusters"), f"clusters left behind: {state.get('clusters')}"


@pytest.mark.slow
def test_a_proxy_that_starts_without_cluster_networks_is_caught_on_kind(tmp_path: Path) -> None:
    """With the reinstalled cluster's proxies starting under every default (the fault, in its
    double), F1.20's refusal checks fail on kind too, rather than being skipped."""
    with kind_run_env("2.11", tmp_path, faults=("cluster-defaults-without-cluster-networks",)
                      ) as (_, env, _):
        report = run_conformance(tmp_path, env, *kind_args("2.11", tmp_path), "-k",
                                 "without_cluster_networks_the_proxy_refuses")
    seen = results(report)
    assert seen and set(seen.values()) == {"failed"}, (seen, report["_output"])


@pytest.mark.parametrize("version", ["2.11", "2.20"])
def test_the_kind_plan_shows_the_reinstalled_clusters_steps(tmp_path: Path,
                                                            version: str) -> None:
    name = cluster_name(version)
    settings = ClusterSettings(cluster_name=name, kubeconfig=str(tmp_path / "kubeconfig"))
    text = "\n".join(build_plan(settings, "kind", Profile(version)))
    wanted = [f"kind create cluster --name={name}-nets-none",
              f"kind load docker-image --name {name}-nets-none",
              "merge-patch ConfigMap linkerd/linkerd-config: its values' clusterNetworks \"\"",
              "restart linkerd/linkerd-proxy-injector",
              f"kind delete cluster --name={name}-nets-none", "reinstalled clusters: "]
    if version == "2.20":
        wanted += [f"kind create cluster --name={name}-probes-none",
                   f"--values {tmp_path}/{name}-probes-none-values.yaml",
                   f"kind delete cluster --name={name}-probes-none"]
    for line in wanted:
        assert line in text, f"{line!r} not in the plan:\n{text}"
    if version == "2.11":
        assert "probes-none" not in text  # F6.4 is 2.12+


def test_a_single_cluster_target_refuses_another_install_with_its_reason() -> None:
    """The kubeconfig target is one cluster: a check asking for other install values is
    skipped with the installed values and why."""
    config = {"data": {"values": "clusterNetworks: 10.0.0.0/8\n"}}
    api = types.SimpleNamespace(config_map=lambda ns, name: config)
    mesh = ClusterMesh(Profile("2.20"), "kubeconfig", kube=None, api=api)  # type: ignore[arg-type]
    with mesh.reinstalled(cluster_networks=("10.0.0.0/8",)) as same:
        assert same is mesh  # installed so already
    for ask in ({"cluster_networks": ()}, {"probe_networks": ()}):
        with pytest.raises(Unsupported, match="is one cluster, installed with clusterNetworks "
                                              "10.0.0.0/8.*only the kind target makes"):
            mesh.reinstalled(**ask)
