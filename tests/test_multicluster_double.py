"""The multicluster gateway checks on `--target kind` through two cluster doubles (F8.1-F8.7).

The kind target makes a source cluster, installs Linkerd there with the run's trust anchor,
installs the multicluster extension on both, links them (`multicluster link` up to 2.17,
`link-gen` from 2.18) and probes the mirror of `web-svc` from the source cluster's prober pods:
the checks of `suites/test_multicluster_gateway.py` pass as on the reference, and a gateway
that forwards the client's identity is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from double.run import cluster_name, kind_args, kind_run_env, run_conformance

from linkerd_conformance.targets.plan import build_plan
from linkerd_conformance.targets.session import ClusterSettings

CHECKS = "multicluster_gateway"
IDENTITY_CHECKS = {"test_traffic_through_the_gateway_arrives_with_the_gateway_identity",
                   "test_the_remote_clients_identity_is_lost_at_the_gateway"}


def results(report: dict[str, Any]) -> dict[str, str]:
    return {c["nodeid"].rsplit("::", 1)[-1]: c["result"] for c in report["checks"]
            if "test_multicluster_gateway" in c["nodeid"]}


@pytest.mark.slow
@pytest.mark.parametrize("version", ["2.11", "2.18", "2.20"])
def test_the_gateway_checks_pass_through_two_kind_clusters(tmp_path: Path,
                                                            version: str) -> None:
    """3 passed, none skipped; both clusters were made, and the source is gone at the end."""
    with kind_run_env(version, tmp_path) as (double, env, _):
        report = run_conformance(tmp_path, env, *kind_args(version, tmp_path), "-k", CHECKS)
        state = double.read_state()
    seen = results(report)
    assert len(seen) == 3 and set(seen.values()) == {"passed"}, (seen, report["_output"])
    assert not state.get("clusters"), f"clusters left behind: {state.get('clusters')}"


@pytest.mark.slow
@pytest.mark.parametrize(("version", "fault", "caught"), [
    ("2.20", "gateway-forwards-client-identity", IDENTITY_CHECKS),
    ("2.11", "gateway-accepts-plaintext", {"test_the_gateway_admits_only_meshed_clients"})])
def test_a_faulty_gateway_is_caught_through_two_kind_clusters(
        tmp_path: Path, version: str, fault: str, caught: set[str]) -> None:
    """With the target's gateway connecting as the remote client, or admitting a client
    without identity (the faults, in the target double), the checks of that promise fail on
    kind too; nothing is skipped, and no cluster is left behind."""
    with kind_run_env(version, tmp_path, faults=(fault,)) as (double, env, _):
        report = run_conformance(tmp_path, env, *kind_args(version, tmp_path), "-k", CHECKS)
        state = double.read_state()
    seen = results(report)
    assert not state.get("clusters"), f"clusters left behind: {state.get('clusters')}"
    assert {n for n, r in seen.items() if r == "failed"} >= caught, (seen, report["_output"])
    assert "skipped" not in seen.values(), seen


@pytest.mark.parametrize("version", ["2.11", "2.20"])
def test_the_kind_plan_shows_the_source_clusters_steps(tmp_path: Path, version: str) -> None:
    name = cluster_name(version)
    settings = ClusterSettings(cluster_name=name, kubeconfig=str(tmp_path / "kubeconfig"))
    from linkerd_conformance.api import Profile

    text = "\n".join(build_plan(settings, "kind", Profile(version)))
    command = "link-gen" if version == "2.20" else "link"
    for wanted in (f"kind create cluster --name={name}-source",
                   f"kind load docker-image --name {name}-source",
                   "linkerd multicluster install --gateway-service-type NodePort",
                   "linkerd multicluster install --gateway=false",
                   f"linkerd multicluster {command} --cluster-name target --api-server-address "
                   f"https://{name}-control-plane:6443",
                   "--gateway-addresses", "--gateway-port",
                   f"kind delete cluster --name={name}-source"):
        assert wanted in text, f"{wanted!r} not in the plan:\n{text}"
    if version == "2.20":
        assert "--set 'controllers[0].link.ref.name=target'" in text, text
    else:
        assert "controllers[0]" not in text, text


def test_the_source_cluster_is_cleaned_up_first_and_the_runs_cluster_still_after_a_failure(
        tmp_path: Path) -> None:
    """However the run ends, the kind target's cleanup (under `cleanup_guard`) deletes the
    source cluster a multicluster check made, and a failure there does not keep the run's own
    cluster from being deleted."""
    from linkerd_conformance.api import Profile, TargetError
    from linkerd_conformance.targets.kind import KindTarget

    done: list[str] = []

    class Cluster:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def delete(self) -> None:
            done.append(self.name)
            if self.fail:
                raise OSError(f"{self.name} could not be deleted")

    settings = ClusterSettings(cluster_name="t", kubeconfig=str(tmp_path / "kubeconfig"))
    for fail in (False, True):
        done.clear()
        target = KindTarget(settings, Profile("2.20"))
        target.cluster = Cluster("t")
        linked = target.linked_source()
        assert linked.source.settings.cluster_name == "t-source"
        assert linked.source.identity_dir == target.identity_dir  # one trust anchor (F8.5)
        linked.source.cluster = Cluster("t-source", fail=fail)
        if fail:
            with pytest.raises(TargetError, match="t-source could not be deleted"):
                target.cleanup()
        else:
            target.cleanup()
        assert done == ["t-source", "t"]
    untouched = KindTarget(settings, Profile("2.20"))
    untouched.cluster = Cluster("t")
    untouched.linked_source()  # no multicluster check ran: no source cluster to delete
    done.clear()
    untouched.cleanup()
    assert done == ["t"]
