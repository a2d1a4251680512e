"""Every conformance check a cluster can run, through the cluster targets, against the double.

`pytest -m conformance --target kind` and `--target kubeconfig` run as a user runs them (a
subprocess, the fake tools first on PATH), against a cluster double backed by a reference mesh
(`tests/double`): the same `ClusterMesh`, kubernetes client, prober and install flow. The
verdicts must be the reference's: every applicable check passes, except the ones listed in
`CANNOT_RUN_ON_A_CLUSTER`, which are reported as skipped with their reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from double.budget_check import assert_operations_recorded
from double.cluster import ClusterDouble
from double.fakes import fake_tools_env
from double.run import (
    CLI_FOR,
    KUBECTL_FOR,
    kind_args,
    kind_run_env,
    run_conformance,
    run_on_kubeconfig,
)

from linkerd_conformance.api import Profile

#: Checks that still cannot run on a cluster, each with why (matched against the skip reason).
CANNOT_RUN_ON_A_CLUSTER: dict[str, str] = {
    "Linkerd's mesh expansion": "a meshed client outside clusterNetworks is a proxy outside "
    "the cluster (ExternalWorkload), which the suite does not set up; unmeshed ones run on kind "
    "from a container on kind's Docker network",
    "knows no network outside the cluster networks": "the kubeconfig target has no network "
    "outside the cluster's to place an unmeshed client on",
    "has no second cluster": "the gateway identity needs a second cluster linked to the "
    "first, which only the kind target makes (the kubeconfig target is one cluster)",
    "needs a cluster installed with the cluster-wide default": "a cluster is installed once "
    "per run, with one cluster-wide default (a check asking for another is not applicable)",
    "F1.20 needs an install without any": "the proxy's refusal of cluster-* defaults needs a "
    "cluster installed with empty clusterNetworks, which only the kind target makes (the "
    "kubeconfig target is one cluster)",
    "F6.4 needs an install with an empty probeNetworks": "probe authorization off needs a "
    "cluster installed with `probeNetworks: []`, which only the kind target makes (the "
    "kubeconfig target is one cluster)",
    "run from this machine, which reaches no pod": "front-door checks that run curl or "
    "openssl (F5.11 `curl -f` exits 22, F10.4 the CertificateRequest's CA names): these run on "
    "the test machine, and the prober image has neither",
    "F3.8 needs a control": "serviceAccounts with the control plane outside namespace "
    "`linkerd` need a cluster installed with another --linkerd-namespace (F3.8); a cluster is "
    "installed once per run, in `linkerd`",
}


def verdicts(report: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]],
                                              list[dict[str, Any]]]:
    checks = report["checks"]
    passed = [c["nodeid"] for c in checks if c["result"] == "passed"]
    failed = [c for c in checks if c["result"] == "failed"]
    skipped = [c for c in checks if c["result"] == "skipped"
               and "not applicable to" not in c.get("reason", "")]
    return passed, failed, skipped


def assert_reference_verdicts(report: dict[str, Any]) -> None:
    passed, failed, skipped = verdicts(report)
    assert not failed, "checks failed through the cluster target:\n" + "\n".join(
        f"- {c['nodeid']}" for c in failed) + "\n" + report["_output"]
    unexplained = [c for c in skipped
                   if not any(why in c.get("reason", "") for why in CANNOT_RUN_ON_A_CLUSTER)]
    assert not unexplained, "skipped without a listed reason:\n" + "\n".join(
        f"- {c['nodeid']}: {c.get('reason')}" for c in unexplained)
    assert passed, report["_output"]


@pytest.fixture(params=["2.11", "2.20"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def double_env(tmp_path: Path, version: str) -> Iterator[tuple[ClusterDouble, dict[str, str]]]:
    with ClusterDouble(Profile(version)) as double:
        env = fake_tools_env(double, tmp_path, linkerd_version=CLI_FOR[version],
                             kubectl_version=KUBECTL_FOR[version])
        yield double, env


@pytest.mark.slow
def test_every_check_runs_through_the_kind_target(tmp_path: Path, version: str) -> None:
    """Create, build, load, install and run the whole suite on a `kind` cluster (the double);
    what the run did to the cluster is what `suites/cluster-operations.yaml` records."""
    with kind_run_env(version, tmp_path) as (_, env, _):  # with a source cluster to link
        report = run_conformance(tmp_path, env, *kind_args(version, tmp_path))
    assert_reference_verdicts(report)
    # kind places unmeshed clients outside the cluster networks (a container on its Docker
    # network): only a meshed one (mesh expansion) may be skipped for being outside
    _, _, skipped = verdicts(report)
    outside = [c["nodeid"] for c in skipped
               if "[outside]" in c.get("reason", "") and "mesh expansion" not in c["reason"]]
    assert not outside, f"skipped on kind for an unmeshed client outside: {outside}"
    assert report["operations"].get("outside containers"), report["operations"]
    assert_operations_recorded(version, report["operations"])


@pytest.mark.slow
def test_every_check_runs_through_the_kubeconfig_target(tmp_path: Path, version: str) -> None:
    """An existing cluster with Linkerd installed, named by its context."""
    report = run_on_kubeconfig(version, tmp_path)
    assert_reference_verdicts(report)


def test_the_environment_leaves_the_real_tools_out(tmp_path: Path) -> None:
    """The fake tools are first on PATH, so nothing real is ever run by these tests."""
    with ClusterDouble(Profile("2.11")) as double:
        env = fake_tools_env(double, tmp_path, linkerd_version="stable-2.11.5",
                             kubectl_version="v1.27.16")
    first = env["PATH"].split(os.pathsep)[0]
    for tool in ("kind", "kubectl", "linkerd", "docker"):
        assert (Path(first) / tool).exists()
