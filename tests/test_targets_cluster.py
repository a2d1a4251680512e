"""`ClusterMesh` against the cluster double: what each Mesh operation leaves in the cluster.

Objects are read back from the double's API server through the kubernetes client; the probes
run the real prober inside the double's prober pods. Pure functions (`pod_from_json`,
`stall_reason`, `request_flags`) stay unit tests at the end.
"""

from __future__ import annotations

import copy
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_targets_double import Lab, LabFactory, lab_factory

from linkerd_conformance import manifests
from linkerd_conformance.api import (
    Client,
    Dest,
    Mesh,
    ObjectRef,
    Probe,
    Profile,
    TargetError,
    Unsupported,
)
from linkerd_conformance.outcome import Verdict
from linkerd_conformance.prober.__main__ import parse_probe_args
from linkerd_conformance.targets.cluster import (
    OWNED_LABEL,
    PROBER_CONTAINER,
    RUN_LABEL,
    ClusterMesh,
    meshed,
    pod_from_json,
    request_flags,
    stall_reason,
)
from linkerd_conformance.targets.kube import Kube
from linkerd_conformance.targets.kubeapi import KubeApi
from linkerd_conformance.targets.tools import find_tools

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "emojivoto"}}
SERVER = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Server",
          "metadata": {"name": "web-http", "namespace": "emojivoto"},
          "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": "http"}}
AUTHZ = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "ServerAuthorization",
         "metadata": {"name": "web-public", "namespace": "emojivoto"},
         "spec": {"server": {"name": "web-http"}, "client": {"unauthenticated": True}}}
WEB = Dest("emojivoto", "web", "http")


@pytest.fixture
def make_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabFactory]:
    yield from lab_factory(tmp_path, monkeypatch)


def new_mesh(lab: Lab, run_id: str = "r1", **kw: Any) -> ClusterMesh:
    kubeconfig = lab.double.write_kubeconfig(lab.tmp / "kubeconfig", context="double")
    kube = Kube(find_tools(("kubectl", "linkerd")), context="double", kubeconfig=str(kubeconfig))
    kw.setdefault("rollout_timeout", 20.0)
    kw.setdefault("stalled_after", 2.0)
    return ClusterMesh(lab.profile, "kubeconfig", kube, KubeApi(str(kubeconfig), "double"),
                       run_id=run_id, **kw)


@pytest.fixture
def lab(make_lab: LabFactory) -> Lab:
    return make_lab("2.11", linkerd_installed=True)


@pytest.fixture
def emojivoto(lab: Lab) -> ClusterMesh:
    m = new_mesh(lab)
    m.apply(*manifests.load("emojivoto.yml"))
    assert all(m.wait_rollout("emojivoto"))
    return m


def namespaces(m: ClusterMesh) -> dict[str, dict[str, str]]:
    return {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in m.api.namespaces()}


def in_namespace(objs: list[dict[str, Any]], ns: str) -> list[dict[str, Any]]:
    out = []
    for obj in copy.deepcopy(objs):
        if obj["kind"] == "Namespace":
            obj["metadata"]["name"] = ns
        else:
            obj["metadata"]["namespace"] = ns
        out.append(obj)
    return out


# --- objects --------------------------------------------------------------------------------

def test_cluster_mesh_is_a_mesh(lab: Lab) -> None:
    assert isinstance(new_mesh(lab), Mesh)


def test_apply_orders_namespaces_then_policy_then_services_then_workloads(lab: Lab) -> None:
    """Given in the wrong order, every object still lands: the namespace first, the Server
    (its CRD served) before its ServerAuthorization needs nothing, the workload last."""
    m = new_mesh(lab)
    web = [o for o in manifests.load("emojivoto.yml") if o["metadata"]["name"] == "web"
           and o["kind"] in ("Deployment", "Service", "ServiceAccount")]
    m.apply(*web, AUTHZ, SERVER, NS)
    assert namespaces(m)["emojivoto"][OWNED_LABEL] == "true"
    assert namespaces(m)["emojivoto"][RUN_LABEL] == "r1"
    assert [o["metadata"]["name"] for o in m.api.list_kind(
        "policy.linkerd.io/v1beta1", "ServerAuthorization", "emojivoto")] == ["web-public"]
    assert all(m.wait_rollout("emojivoto", "web"))
    # policy was in place before the workload's pods: the reference admitted the Server first
    assert [p.name.split("-")[0] for p in m.pods("emojivoto")] == ["web"]


def test_apply_moves_images_to_the_registry(lab: Lab) -> None:
    m = new_mesh(lab, registry="mirror.local")
    m.apply(*manifests.load("emojivoto.yml"))
    images = {c["image"] for d in m.api.deployments("emojivoto")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images and all(i.startswith("mirror.local/buoyantio/") for i in images), images


def test_apply_refuses_a_namespace_the_run_did_not_create(lab: Lab) -> None:
    lab.double.apiserver.apply({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": "emojivoto", "labels": {"team": "x"}}})
    m = new_mesh(lab)
    with pytest.raises(TargetError, match="namespace emojivoto already exists and was not "
                                          "created by a conformance run"):
        m.apply(SERVER)
    assert m.api.list_kind("policy.linkerd.io/v1beta1", "Server", "emojivoto") == []
    assert namespaces(m)["emojivoto"] == {"team": "x", "kubernetes.io/metadata.name": "emojivoto"}


def test_a_rejection_is_one_sentence_with_the_webhooks_words(lab: Lab) -> None:
    m = new_mesh(lab)
    m.apply(NS)
    bad = copy.deepcopy(SERVER)
    bad["spec"]["proxyProtocol"] = "invalid"
    with pytest.raises(TargetError) as exc:
        m.apply(bad)
    # the API server's own sentence (the webhook's, despite a Warning, is finding A5's test)
    assert str(exc.value).startswith('Server.policy.linkerd.io "web-http" is invalid: '
                                     'spec.proxyProtocol: Unsupported value: "invalid"')
    assert "\n" not in str(exc.value)


def test_delete_ignores_missing_objects(lab: Lab) -> None:
    m = new_mesh(lab)
    m.apply(NS, SERVER)
    m.delete(SERVER, AUTHZ)  # the authorization never existed
    m.delete(SERVER)
    assert m.api.list_kind("policy.linkerd.io/v1beta1", "Server", "emojivoto") == []


def test_annotate_sets_and_removes(lab: Lab) -> None:
    m = new_mesh(lab)
    m.apply({**NS, "metadata": {"name": "emojivoto", "annotations": {"old": "1"}}})
    ref = ObjectRef("Namespace", "emojivoto")
    m.annotate(ref, {"config.linkerd.io/default-inbound-policy": "deny", "old": None})
    [ns] = [n for n in m.api.namespaces() if n["metadata"]["name"] == "emojivoto"]
    assert ns["metadata"]["annotations"] == {"config.linkerd.io/default-inbound-policy": "deny"}


# --- probes ---------------------------------------------------------------------------------

def test_probe_execs_the_prober_inside_the_clients_pod_against_the_pod_ip(
        emojivoto: ClusterMesh) -> None:
    client = Client("bad", "default", meshed=True)
    outcome = emojivoto.probe(client, WEB, "http", path="/api/list", headers={"x": "1"})
    assert outcome.verdict is Verdict.ALLOWED and outcome.status == 200
    pod = emojivoto.api.pod("bad", client.pod_name)
    assert pod["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    assert pod["spec"]["serviceAccountName"] == "default"
    assert meshed(pod)
    assert namespaces(emojivoto)["bad"][RUN_LABEL] == "r1"
    # the request reached web's pod, as the client's identity (the reference counted it)
    [web] = emojivoto.pods("emojivoto", {"app": "web-svc"})
    metrics = emojivoto.proxy_metrics(web)
    assert metrics.value("inbound_http_authz_allow_total") >= 1


def test_the_prober_pod_is_made_once_with_the_clients_service_account(
        emojivoto: ClusterMesh) -> None:
    vote_bot = Client("emojivoto", "vote-bot", meshed=False)
    for _ in range(2):
        assert emojivoto.probe(vote_bot, Dest("emojivoto", "web", 8080), "http").verdict \
            is Verdict.ALLOWED
    [pod] = emojivoto.api.pods("emojivoto", "app.kubernetes.io/name=linkerd-conformance-prober")
    assert pod["spec"]["serviceAccountName"] == "vote-bot"
    assert pod["metadata"]["annotations"]["linkerd.io/inject"] == "disabled"
    assert [c["name"] for c in pod["spec"]["containers"]] == [PROBER_CONTAINER]
    assert pod["metadata"]["uid"] == emojivoto.api.pod("emojivoto", vote_bot.pod_name)[
        "metadata"]["uid"]


def test_a_probe_that_does_not_run_is_an_error_never_a_denial(emojivoto: ClusterMesh) -> None:
    client = Client("emojivoto")
    emojivoto.ensure_prober(client)
    emojivoto.api.core.delete_namespaced_pod(client.pod_name, "emojivoto",  # evicted
                                             _preload_content=False)
    outcome = emojivoto.probe(client, WEB, "grpc")
    assert outcome.verdict is Verdict.ERROR and not outcome.verdict.is_denial
    assert f"exec in pod emojivoto/{client.pod_name} failed" in outcome.detail


def test_a_denial_is_read_from_the_probers_json_line(emojivoto: ClusterMesh) -> None:
    emojivoto.apply(SERVER)  # a Server with no authorization: 2.11 denies every request
    outcome = emojivoto.probe(Client("bad", meshed=True), WEB, "http", path="/api/list")
    assert outcome.verdict is Verdict.HTTP_FORBIDDEN and outcome.status == 403


def test_probe_many_sends_a_clients_probes_from_one_exec_each_answered_on_its_own(
        emojivoto: ClusterMesh) -> None:
    """A truth table's round: one exec of the prober's batch mode per client, each probe on
    its own connection; a probe that fails (a closed port) is not a denial of the others."""
    emojivoto.apply(SERVER)  # a Server with no authorization: 2.11 denies every request
    bad, other = Client("bad", meshed=True), Client("emojivoto", "vote-bot", meshed=False)
    closed = Dest("emojivoto", "web", 9999)
    out = emojivoto.probe_many([
        Probe(bad, WEB, "http", {"path": "/api/list"}), Probe(bad, closed, "http"),
        Probe(other, WEB, "http"), Probe(bad, WEB, "http", {"path": "/"})])
    assert [o.verdict for o in out[:1] + out[2:]] == [Verdict.HTTP_FORBIDDEN] * 3
    assert not out[1].verdict.is_denial and out[1].verdict is not Verdict.ALLOWED
    assert emojivoto.operations["probe batches"] == 1  # bad's three probes
    assert emojivoto.operations["batched probes"] == 3
    assert emojivoto.operations["probes"] == 1  # the other client's single probe


def test_a_batch_that_does_not_run_is_errors_never_denials(emojivoto: ClusterMesh) -> None:
    client = Client("emojivoto")
    emojivoto.ensure_prober(client)
    emojivoto.api.core.delete_namespaced_pod(client.pod_name, "emojivoto",  # evicted
                                             _preload_content=False)
    out = emojivoto.probe_many([Probe(client, WEB, "http")] * 2)
    assert all(o.verdict is Verdict.ERROR and not o.verdict.is_denial for o in out)
    assert all("gave no answer for this probe" in o.detail for o in out)


def test_a_clients_address_is_its_prober_pods_ip(emojivoto: ClusterMesh) -> None:
    """`client_address` places the prober pod (once) and gives the IP the API server reports,
    the address a server sees."""
    one = Client("bad", meshed=True, name="one")
    address = emojivoto.client_address(one)
    assert address == emojivoto.api.pod("bad", "one")["status"]["podIP"]
    assert emojivoto.client_address(one) == address
    assert emojivoto.operations["prober pods"] == 1
    with pytest.raises(Unsupported, match="outside the cluster networks"):
        emojivoto.client_address(Client("bad", network="outside"))
    # a host-network pod's connections come from where the network plugin says, not its IP
    with pytest.raises(Unsupported, match="network plugin's choice"):
        emojivoto.client_address(Client("bad", "kubelet", meshed=False, network="node"))


def test_get_reads_an_object_back_as_the_api_keeps_it(emojivoto: ClusterMesh) -> None:
    """At the kind's preferred version by default, at the one asked for otherwise; None for an
    object that does not exist."""
    emojivoto.apply(SERVER)
    served = emojivoto.get("Server", "emojivoto", "web-http")
    assert served is not None and served["spec"]["port"] == "http"
    assert served["apiVersion"].startswith("policy.linkerd.io/")
    assert served["metadata"]["uid"]
    as_v1beta1 = emojivoto.get("Server", "emojivoto", "web-http",
                               api_version="policy.linkerd.io/v1beta1")
    assert as_v1beta1 is not None and as_v1beta1["apiVersion"] == "policy.linkerd.io/v1beta1"
    assert emojivoto.get("Server", "emojivoto", "nothing") is None
    assert emojivoto.get("Deployment", "emojivoto", "web")["spec"]["replicas"] == 1
    assert emojivoto.get("Namespace", "", "emojivoto") is not None


def test_a_cluster_mesh_declares_its_capabilities(lab: Lab) -> None:
    """What the plugin and the helpers read, declared rather than probed with getattr."""
    m = new_mesh(lab)
    assert m.release is None and dict(m.operations) == {}
    assert m.client_networks == ("pod", "node") and m.anonymous_tls is True


def test_outside_clients_cannot_be_placed_on_a_cluster(lab: Lab) -> None:
    """Without a Docker network outside the cluster networks (only kind has one), an outside
    client is Unsupported (the check is not applicable), never a probe error."""
    m = new_mesh(lab)
    with pytest.raises(Unsupported, match="knows no network outside the cluster networks"):
        m.probe(Client("bad", meshed=False, network="outside"), Dest("emojivoto", "web", 80),
                "tcp")
    with pytest.raises(Unsupported, match="mesh expansion"):
        m.probe(Client("bad", network="outside"), Dest("emojivoto", "web", 80), "tcp")
    assert "bad" not in namespaces(m)
    assert m.cannot_place(Client("bad", network="outside"))


def test_no_running_destination_pod_is_a_target_error(lab: Lab) -> None:
    m = new_mesh(lab)
    web = [o for o in manifests.load("emojivoto.yml") if o["kind"] == "Deployment"
           and o["metadata"]["name"] == "web"][0]
    m.apply(NS, {**web, "spec": {**web["spec"], "replicas": 0}})
    with pytest.raises(TargetError, match="no running pod of emojivoto/web to probe"):
        m.probe(Client("emojivoto"), Dest("emojivoto", "web", 8080), "http")


# --- rollouts and pods ----------------------------------------------------------------------

def test_a_stalled_rollout_says_why_and_pods_are_oldest_first(lab: Lab) -> None:
    """2.11's probe trap: `deny` and a restart, and the kubelet's probes get 403."""
    m = new_mesh(lab, stalled_after=1.5)
    m.apply(*manifests.load("emojivoto.yml"))
    assert all(m.wait_rollout("emojivoto", "web"))
    time.sleep(1.05)  # creation times have a resolution of one second
    m.annotate(ObjectRef("Namespace", "emojivoto"),
               {"config.linkerd.io/default-inbound-policy": "deny"})
    [rollout] = m.rollout_restart("emojivoto", "web")
    assert not rollout and rollout.deployment == "web"
    assert "Unhealthy" in rollout.reason
    assert "probe failed: HTTP probe failed with statuscode: 403" in rollout.reason
    assert rollout.old_pods_serving == 1
    assert 1.5 <= rollout.waited < 10
    pods = m.pods("emojivoto", {"app": "web-svc"})
    assert [p.ready for p in pods] == [True, False]  # the old one first, still serving
    assert pods[0].created < pods[1].created


def test_restart_then_settle(emojivoto: ClusterMesh) -> None:
    [before] = emojivoto.pods("emojivoto", {"app": "web-svc"})
    rollouts = emojivoto.rollout_restart("emojivoto")
    assert sorted(r.deployment for r in rollouts if r) == ["emoji", "vote-bot", "voting", "web"]
    [after] = [p for p in emojivoto.pods("emojivoto", {"app": "web-svc"})
               if p.phase != "Terminating"]
    assert after.name != before.name and after.ready
    dep = emojivoto.api.deployment("emojivoto", "web")
    assert "kubectl.kubernetes.io/restartedAt" in dep["spec"]["template"]["metadata"][
        "annotations"]


def test_proxy_env_metrics_and_logs(emojivoto: ClusterMesh) -> None:
    [web] = emojivoto.pods("emojivoto", {"app": "web-svc"})
    env = emojivoto.proxy_env(web)
    assert env["LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"] == "all-unauthenticated"
    assert env["LINKERD2_PROXY_IDENTITY_LOCAL_NAME"] == \
        "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    emojivoto.probe(Client("emojivoto", "default", meshed=True), WEB, "http", path="/api/list")
    assert emojivoto.proxy_metrics(web).value("inbound_http_authz_allow_total") >= 1
    assert isinstance(emojivoto.logs(web, "linkerd-proxy"), str)


# --- cleanup --------------------------------------------------------------------------------

def test_cleanup_deletes_only_this_runs_namespaces(lab: Lab) -> None:
    for name, labels in (("team", {"x": "y"}),
                         ("other-run", {OWNED_LABEL: "true", RUN_LABEL: "r0"})):
        lab.double.apiserver.apply({"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": name, "labels": labels}})
    m = new_mesh(lab)
    m.apply(NS, {**NS, "metadata": {"name": "bad"}})
    m.cleanup()
    m.cleanup()  # idempotent
    left = set(namespaces(m))
    assert {"team", "other-run", "linkerd", "kube-system"} <= left
    assert not {"emojivoto", "bad"} & left


def pods_by_uid(m: ClusterMesh, ns: str) -> dict[str, dict[str, str]]:
    """The namespace's pods that are not terminating (a settled rollout may leave old pods
    Terminating for a while, as on a real cluster), by uid, with their annotations."""
    return {p["metadata"]["uid"]: dict(p["metadata"].get("annotations") or {})
            for p in m.api.pods(ns) if not p["metadata"].get("deletionTimestamp")}


def policy_left(m: ClusterMesh, ns: str) -> list[str]:
    kinds = [("policy.linkerd.io/v1beta1", "Server"),
             ("policy.linkerd.io/v1beta1", "ServerAuthorization")]
    return [f"{o['kind']}/{o['metadata']['name']}" for v, k in kinds
            for o in m.api.list_kind(v, k, ns)]


def test_a_reset_deletes_the_policy_and_keeps_the_pods_as_they_started(
        emojivoto: ClusterMesh) -> None:
    """After a reset the API server lists no policy object in the namespace, and the pods
    are the ones that started before the check applied policy, with the same annotations:
    what a fresh namespace with the same manifests would hold."""
    before = pods_by_uid(emojivoto, "emojivoto")
    deployments = emojivoto.operations["rollouts"]
    emojivoto.apply(SERVER, AUTHZ)
    assert policy_left(emojivoto, "emojivoto")
    emojivoto.reset()
    assert policy_left(emojivoto, "emojivoto") == []
    assert pods_by_uid(emojivoto, "emojivoto") == before
    assert emojivoto.operations["namespace deletions"] == 0
    emojivoto.apply(*manifests.load("emojivoto.yml"))  # the next check: the same workloads
    assert all(emojivoto.wait_rollout("emojivoto"))
    assert pods_by_uid(emojivoto, "emojivoto") == before
    assert emojivoto.operations["rollouts"] == deployments  # nothing started anew
    assert emojivoto.probe(Client("emojivoto", "web", meshed=True), WEB, "http").verdict \
        is Verdict.ALLOWED


def test_the_next_checks_first_apply_prunes_what_it_does_not_name(
        emojivoto: ClusterMesh) -> None:
    """A Deployment an earlier check left is deleted when the next check applies the
    namespace without it, so the next check sees only its own workloads."""
    objs = manifests.load("emojivoto.yml")
    emojivoto.reset()
    kept = [o for o in objs if not (o["kind"] == "Deployment"
                                    and o["metadata"]["name"] == "vote-bot")]
    emojivoto.apply(*kept)
    names = {d["metadata"]["name"] for d in emojivoto.api.deployments("emojivoto")}
    assert "vote-bot" not in names and "web" in names
    assert emojivoto.operations["objects deleted"] >= 1


def test_an_annotated_and_restarted_namespace_is_restored_and_its_pods_replaced(
        emojivoto: ClusterMesh) -> None:
    """Pods read `config.linkerd.io/default-inbound-policy` when they start (F1.12): after
    a check annotated the namespace and restarted its pods, a reset patches the annotation
    back, and the next check applying Emojivoto gets new pods started without it and without
    the restart stamp, as in a fresh namespace."""
    # a default the 2.11 kubelet's plaintext probes pass (F6.1), so the restart settles
    emojivoto.annotate(ObjectRef("Namespace", "emojivoto"),
                       {"config.linkerd.io/default-inbound-policy": "all-unauthenticated"})
    assert all(emojivoto.rollout_restart("emojivoto"))
    restarted = pods_by_uid(emojivoto, "emojivoto")
    assert all("kubectl.kubernetes.io/restartedAt" in a for a in restarted.values())
    emojivoto.reset()
    assert "config.linkerd.io/default-inbound-policy" not in (
        namespaces_meta(emojivoto)["emojivoto"].get("annotations") or {})
    emojivoto.apply(*manifests.load("emojivoto.yml"))
    assert all(emojivoto.wait_rollout("emojivoto"))
    emojivoto.pods("emojivoto")  # what a check looks at: the replacement is made by then
    fresh = pods_by_uid(emojivoto, "emojivoto")
    assert not set(fresh) & set(restarted)
    assert not any("kubectl.kubernetes.io/restartedAt" in a for a in fresh.values())
    assert emojivoto.operations["namespace deletions"] == 0
    assert emojivoto.operations["workload replacements"] == 1


def _annotate_and_restart(m: ClusterMesh, policy: str) -> dict[str, dict[str, str]]:
    m.annotate(ObjectRef("Namespace", "emojivoto"),
               {"config.linkerd.io/default-inbound-policy": policy})
    assert all(m.rollout_restart("emojivoto"))
    return pods_by_uid(m, "emojivoto")


def test_a_wait_leaves_stale_pods_to_the_restart_that_follows(
        emojivoto: ClusterMesh) -> None:
    """A check that applies Emojivoto unchanged and waits for it (the workshop's fixture), then
    annotates the namespace and restarts it: the wait does not replace the stale pods of the
    check before, since nothing looked at them; the restart rolls each Deployment once, under
    the annotation, and its pods are what the check sees."""
    restarted = _annotate_and_restart(emojivoto, "all-unauthenticated")
    emojivoto.reset()
    rollouts = emojivoto.operations["rollouts"]
    emojivoto.apply(*manifests.load("emojivoto.yml"))
    assert all(emojivoto.wait_rollout("emojivoto"))
    again = _annotate_and_restart(emojivoto, "cluster-unauthenticated")
    assert emojivoto.operations["rollouts"] == rollouts + 4  # the restart's 4 only
    assert emojivoto.operations["workload replacements"] == 0
    assert not set(again) & set(restarted)
    assert all(a.get("config.linkerd.io/default-inbound-policy") == "cluster-unauthenticated"
               for a in again.values())
    [web] = [p for p in emojivoto.pods("emojivoto", {"app": "web-svc"}) if p.ready]
    assert emojivoto.proxy_env(web)["LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"] == \
        "cluster-unauthenticated"


def test_a_held_namespace_annotation_reaches_only_pods_started_after_it(
        emojivoto: ClusterMesh) -> None:
    """Looked at after the namespace is annotated (no restart), stale pods are replaced under
    the annotations as they were before it (F1.12), and the annotation is then sent."""
    _annotate_and_restart(emojivoto, "all-unauthenticated")
    emojivoto.reset()
    emojivoto.apply(*manifests.load("emojivoto.yml"))
    emojivoto.annotate(ObjectRef("Namespace", "emojivoto"),
                       {"config.linkerd.io/default-inbound-policy": "deny"})
    [web] = [p for p in emojivoto.pods("emojivoto", {"app": "web-svc"}) if p.ready]
    assert "config.linkerd.io/default-inbound-policy" not in web.annotations
    assert "kubectl.kubernetes.io/restartedAt" not in web.annotations
    assert emojivoto.operations["workload replacements"] == 1
    assert namespaces_meta(emojivoto)["emojivoto"]["annotations"][
        "config.linkerd.io/default-inbound-policy"] == "deny"


def test_a_namespace_whose_pod_was_annotated_is_deleted_and_its_probers_forgotten(
        emojivoto: ClusterMesh) -> None:
    """An annotation on another object is not patched back: its namespace is deleted."""
    client = Client("bad", meshed=True)
    emojivoto.probe(client, WEB, "http")
    first = emojivoto.api.pod("bad", client.pod_name)["metadata"]["uid"]
    emojivoto.annotate(ObjectRef("Pod", client.pod_name, "bad"), {"example.com/x": "y"})
    emojivoto.reset()
    left = set(namespaces(emojivoto))
    assert "bad" not in left and "emojivoto" in left
    assert emojivoto.operations["namespace deletions"] == 1
    assert emojivoto.probe(client, WEB, "http").verdict is Verdict.ALLOWED
    assert emojivoto.api.pod("bad", client.pod_name)["metadata"]["uid"] != first


def namespaces_meta(m: ClusterMesh) -> dict[str, dict[str, Any]]:
    return {n["metadata"]["name"]: n["metadata"] for n in m.api.namespaces()}


def test_a_namespace_applied_with_other_annotations_starts_anew(
        emojivoto: ClusterMesh) -> None:
    """The next check applying the Namespace with other annotations gets new pods, as in a
    fresh namespace (the old ones started under the old annotations)."""
    before = pods_by_uid(emojivoto, "emojivoto")
    emojivoto.reset()
    objs = copy.deepcopy(manifests.load("emojivoto.yml"))
    for o in objs:
        if o["kind"] == "Namespace":
            o["metadata"].setdefault("annotations", {})[
                "config.linkerd.io/default-inbound-policy"] = "all-unauthenticated"
    emojivoto.apply(*objs)
    assert all(emojivoto.wait_rollout("emojivoto"))
    assert not set(pods_by_uid(emojivoto, "emojivoto")) & set(before)


def test_a_deployment_applied_with_another_spec_replaces_its_pods_before_the_check(
        lab: Lab) -> None:
    """The next check's lab with other pod annotations gets exactly one new server pod, no
    old one still terminating beside it, without deleting the namespace."""
    m = new_mesh(lab)
    m.apply(*manifests.load("lab.yml"))
    assert all(m.wait_rollout("lab"))
    [old] = m.pods("lab", {"app": "server"})
    m.reset()
    variant = copy.deepcopy(manifests.load("lab.yml"))
    for o in variant:
        if o["kind"] == "Deployment":
            o["spec"]["template"]["metadata"].setdefault("annotations", {})[
                "config.linkerd.io/default-inbound-policy"] = "all-unauthenticated"
    m.apply(*variant)
    assert all(m.wait_rollout("lab"))
    [new] = m.pods("lab", {"app": "server"})
    assert new.name != old.name
    assert new.annotations.get("config.linkerd.io/default-inbound-policy") == \
        "all-unauthenticated"
    assert m.operations["namespace deletions"] == 0
    assert m.operations["workload replacements"] == 1


def test_a_kept_pods_counters_start_from_zero_for_the_next_check(lab: Lab) -> None:
    """A fresh pod's proxy counts from zero: a pod kept across a reset reports only what was
    counted since the next check began with it."""
    m = new_mesh(lab)
    objs = manifests.load("lab.yml")
    m.apply(*objs)
    assert all(m.wait_rollout("lab"))
    client, server = Client("lab", "client", meshed=True), Dest("lab", "server", "http")
    for _ in range(3):
        assert m.probe(client, server, "http", path="/hello").verdict is Verdict.ALLOWED
    [pod] = m.pods("lab", {"app": "server"})

    def allowed() -> float:
        return m.proxy_metrics(pod).value("inbound_http_authz_allow_total", target_port="8080")

    assert allowed() >= 3
    m.reset()
    m.apply(*objs)  # the next check, with the same lab
    assert m.pods("lab", {"app": "server"})[0].name == pod.name  # kept, not restarted
    assert allowed() == 0
    assert m.probe(client, server, "http", path="/hello").verdict is Verdict.ALLOWED
    assert allowed() == 1


def test_a_namespace_left_by_an_interrupted_run_is_adopted_and_cleaned(lab: Lab) -> None:
    lab.double.apiserver.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "emojivoto", "labels": {OWNED_LABEL: "true", RUN_LABEL: "r0"}}})
    m = new_mesh(lab)
    m.apply(NS)
    assert namespaces(m)["emojivoto"][RUN_LABEL] == "r1"
    m.cleanup()
    assert "emojivoto" not in namespaces(m)


def test_an_interrupt_in_the_middle_of_a_kubeconfig_run_still_cleans_up(lab: Lab) -> None:
    target = lab.kubeconfig_target(run_id="r1")
    with pytest.raises(KeyboardInterrupt), target.open() as m:
        m.apply(NS, {**NS, "metadata": {"name": "bad"}})
        assert {"emojivoto", "bad"} <= set(namespaces(m))
        raise KeyboardInterrupt
    assert not {"emojivoto", "bad"} & set(namespaces(m))
    assert "linkerd" in namespaces(m)


def test_sigterm_becomes_an_interrupt_and_cleans_up(lab: Lab) -> None:
    target = lab.kubeconfig_target(run_id="r1")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), target.open() as m:
        m.apply(NS)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        pytest.fail("SIGTERM did not interrupt the run")
    assert "emojivoto" not in namespaces(m)
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_run_namespaces_of_another_profile_version(make_lab: LabFactory) -> None:
    """2.20: the proxy is a native sidecar, and proxy_env still finds it."""
    lab = make_lab("2.20", linkerd_installed=True)
    m = new_mesh(lab)
    m.apply(*in_namespace([o for o in manifests.load("emojivoto.yml")
                           if o["kind"] == "Namespace" or o["metadata"]["name"] == "web"], "v20"))
    assert all(m.wait_rollout("v20"))
    [web] = m.pods("v20")
    assert m.proxy_env(web)["LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"] == "all-unauthenticated"
    assert Profile("2.20").at_least("2.20")


# --- pure functions -------------------------------------------------------------------------

def pod_json(name: str, *, ready: bool = True, created: str = "2024-01-01T00:00:00Z",
             waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "back-off 10s"}} if waiting else \
        {"running": {}}
    return {"metadata": {"name": name, "namespace": "emojivoto", "creationTimestamp": created},
            "status": {"phase": "Running", "podIP": "10.244.0.7",
                       "conditions": [{"type": "Ready", "status": str(ready)}],
                       "containerStatuses": [{"name": "web-svc", "ready": ready,
                                              "restartCount": 2, "state": state}]}}


def test_pod_from_json_reads_phase_readiness_and_terminating() -> None:
    obj = pod_json("a")
    obj["metadata"]["deletionTimestamp"] = "2024-01-03T00:00:00Z"
    pod = pod_from_json(obj)
    # being deleted: not Ready, whatever its condition still says
    assert (pod.name, pod.phase, pod.ready, pod.ip) == ("a", "Terminating", False, "10.244.0.7")
    assert pod_from_json(pod_json("b")).ready
    assert pod.containers[0].restarts == 2
    assert pod.created == 1704067200.0


def test_stall_reason_prefers_containers_then_newest_warning_events() -> None:
    pods = [pod_json("web-new", ready=False, waiting="CrashLoopBackOff")]
    events = [{"type": "Warning", "reason": "Unhealthy", "lastTimestamp": "2024-01-01T00:05:30Z",
               "involvedObject": {"name": "web-new"},
               "message": "Readiness probe failed: HTTP probe failed with statuscode: 403"},
              {"type": "Normal", "reason": "Pulled", "involvedObject": {"name": "web-new"},
               "message": "pulled"}]
    assert stall_reason(pods, events) == (
        "web-new/web-svc: CrashLoopBackOff (back-off 10s); web-new: Unhealthy: Readiness probe "
        "failed: HTTP probe failed with statuscode: 403")
    assert stall_reason([pod_json("web-x", ready=False)], []) == "pods not Ready: web-x"
    assert stall_reason([], []) == "pods did not become Ready in time"


def test_request_arguments_map_to_the_probers_flags() -> None:
    import codecs

    assert request_flags("grpc", {"method": "emojivoto.v1.EmojiService/ListAll",
                                  "message": b"\x08\x01", "metadata": {"k": "v"}}) == [
        "--grpc-method", "emojivoto.v1.EmojiService/ListAll", "--message-hex", "0801",
        "--metadata", "k:v"]
    assert request_flags("http", {"method": "POST", "body": b"{}", "authority": "web-svc"}) == [
        "--method", "POST", "--body", "{}", "--authority", "web-svc"]
    payload = b"ping\n\x00\\x"
    [flag, text] = request_flags("tcp", {"payload": payload})
    assert flag == "--payload" and codecs.escape_decode(text.encode())[0] == payload
    assert request_flags("tcp", {"payload": b"x", "half_close": True}) == [
        "--payload", "x", "--half-close"]
    assert parse_probe_args(["--protocol", "tcp", "--host", "h", "--port", "1", "--payload",
                             "x", "--half-close"])[4] == {"payload": b"x", "half_close": True}
    with pytest.raises(TargetError, match="no flag for the http request argument 'retries'"):
        request_flags("http", {"retries": 3})
