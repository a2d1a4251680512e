"""The cluster double's API server, driven only through the real kubernetes client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from kubernetes.stream import stream
from leaks import assert_nothing_left, open_sockets

from linkerd_conformance import Outcome, Verdict, manifests

from .cluster import ClusterDouble, policy_crds

PROBER_IMAGE = "ghcr.io/linkerd-conformance/prober:dev"
WEBHOOK = 'admission webhook "linkerd-policy-validator.linkerd.io" denied the request: '


class Kube:
    """The clients a cluster target holds."""

    def __init__(self, cluster: ClusterDouble, tmp: Path) -> None:
        config = cluster.write_kubeconfig(tmp / "kubeconfig")
        self.api = kubernetes.config.new_client_from_config(config_file=str(config),
                                                            context="kind-kind")
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.dyn = DynamicClient(self.api, cache_file=str(tmp / "discovery.json"))

    def apply(self, obj: dict[str, Any], **kw: Any) -> Any:
        res = self.dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        return res.server_side_apply(body=obj, name=meta["name"],
                                     namespace=meta.get("namespace") if res.namespaced else None,
                                     field_manager="linkerd-conformance", force_conflicts=True,
                                     **kw)

    def exec(self, ns: str, pod: str, command: list[str]) -> tuple[int, str, str]:
        resp = stream(self.core.connect_get_namespaced_pod_exec, pod, ns, command=command,
                      container="prober", stderr=True, stdin=False, stdout=True, tty=False,
                      _preload_content=False)
        try:
            resp.run_forever(timeout=10)
            return resp.returncode, resp.read_stdout(), resp.read_stderr()
        finally:
            resp.close()

    def close(self) -> None:
        self.api.close()


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def prober_pod(ns: str, name: str, meshed: bool = True, sa: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"app.kubernetes.io/name": "linkerd-conformance-prober"},
                         "annotations": {"linkerd.io/inject":
                                         "enabled" if meshed else "disabled"}},
            "spec": {"serviceAccountName": sa, "containers": [{
                "name": "prober", "image": PROBER_IMAGE,
                "command": ["python", "-m", "linkerd_conformance.prober", "idle"]}]}}


def test_close_leaves_no_thread_or_socket_behind(tmp_path: Path) -> None:
    """First in the module: the module's own cluster does not exist yet."""
    threads, sockets = set(threading.enumerate()), open_sockets()
    cluster = ClusterDouble("2.11", kubernetes_version="v1.23.17")
    kube = Kube(cluster, tmp_path)
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    watch = kubernetes.watch.Watch()
    assert [e["type"] for e in watch.stream(kube.core.list_namespace,
                                            field_selector="metadata.name=x",
                                            timeout_seconds=1)] == ["ADDED"]
    kube.close()
    cluster.close()
    assert_nothing_left(threads, sockets)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterDouble]:
    """Linkerd 2.16 already installed, on Kubernetes 1.23 (batch/v1beta1 still served)."""
    with ClusterDouble("2.16", kubernetes_version="v1.23.17", linkerd_installed=True) as c:
        yield c


@pytest.fixture(scope="module")
def kube(cluster: ClusterDouble, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    k = Kube(cluster, tmp_path_factory.mktemp("kube"))
    yield k
    k.close()


@pytest.fixture(scope="module")
def emojivoto(kube: Kube) -> Kube:
    for obj in manifests.load("emojivoto.yml"):
        kube.apply(obj)
    watch = kubernetes.watch.Watch()
    available: dict[str, int] = {}
    for event in watch.stream(kube.apps.list_namespaced_deployment, "emojivoto",
                              timeout_seconds=15):
        dep = event["object"]
        available[dep.metadata.name] = dep.status.available_replicas or 0
        if len(available) == 4 and all(available.values()):
            watch.stop()
    assert len(available) == 4 and all(available.values()), available
    return kube


@pytest.fixture(scope="module")
def prober(emojivoto: Kube) -> str:
    emojivoto.apply(prober_pod("emojivoto", "prober-default-meshed-pod"))
    return "prober-default-meshed-pod"


def web_ip(kube: Kube) -> str:
    pods = kube.core.list_namespaced_pod("emojivoto", label_selector="app=web-svc").items
    ready = [p for p in pods if any(c.type == "Ready" and c.status == "True"
                                    for c in p.status.conditions)]
    return ready[-1].status.pod_ip


def probe(kube: Kube, pod: str, *args: str) -> Outcome:
    code, out, err = kube.exec("emojivoto", pod, [
        "python", "-m", "linkerd_conformance.prober", "--protocol", "http", "--host",
        web_ip(kube), "--port", "8080", *args])
    assert code == 0, err
    return Outcome.from_json(out)


def test_version_and_node(cluster: ClusterDouble, kube: Kube) -> None:
    assert kubernetes.client.VersionApi(kube.api).get_code().git_version == "v1.23.17"
    (node,) = kube.core.list_node().items
    assert node.metadata.name == "kind-control-plane"
    assert node.status.node_info.kubelet_version == "v1.23.17"
    assert node.spec.pod_cidr == cluster.reference.addresses.POD_NET
    config = kube.core.read_namespaced_config_map("linkerd-config", "linkerd")
    import yaml

    values = yaml.safe_load(config.data["values"])
    assert values["proxy"]["defaultInboundPolicy"] == "all-unauthenticated"
    assert values["clusterNetworks"] == ",".join(cluster.reference.cluster_networks)


def test_emojivoto_pods_are_listed_with_a_selector(emojivoto: Kube) -> None:
    pods = emojivoto.core.list_namespaced_pod("emojivoto", label_selector="app=web-svc").items
    assert len(pods) == 1
    pod = pods[0]
    assert pod.metadata.labels["pod-template-hash"]
    assert pod.status.phase == "Running" and pod.status.pod_ip
    names = [c.name for c in pod.spec.containers]
    assert names == ["linkerd-proxy", "web-svc"]  # 2.16: the proxy is an ordinary container
    proxy = pod.spec.containers[0]
    env = {e.name: e.value for e in proxy.env}
    assert env["LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"] == "all-unauthenticated"
    assert all(c.ready for c in pod.status.container_statuses)
    selected = emojivoto.core.list_namespaced_pod("emojivoto", label_selector="app!=web-svc,"
                                                  "app in (emoji-svc,voting-svc)").items
    assert sorted(p.metadata.labels["app"] for p in selected) == ["emoji-svc", "voting-svc"]
    dep = emojivoto.apps.read_namespaced_deployment("web", "emojivoto")
    assert (dep.status.observed_generation, dep.status.updated_replicas) == (
        dep.metadata.generation, 1)


def test_a_prober_pod_exec_reaches_web(emojivoto: Kube, prober: str) -> None:
    pod = emojivoto.core.read_namespaced_pod(prober, "emojivoto")
    assert [c.name for c in pod.spec.containers] == ["linkerd-proxy", "prober"]
    assert pod.status.pod_ip
    out = probe(emojivoto, prober, "--path", "/api/list")
    assert out.verdict is Verdict.ALLOWED and out.status == 200, out.short()


def test_bad_prober_arguments_exit_2_with_the_probers_sentence(emojivoto: Kube,
                                                               prober: str) -> None:
    code, out, err = emojivoto.exec("emojivoto", prober, [
        "python", "-m", "linkerd_conformance.prober", "--protocol", "udp", "--host", "h",
        "--port", "1"])
    assert code == 2 and out == ""
    assert err.startswith("prober: bad arguments:"), err


def test_a_server_without_authorizations_denies_with_403(emojivoto: Kube, prober: str) -> None:
    server = {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
              "metadata": {"name": "web-http", "namespace": "emojivoto"},
              "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": "http"}}
    emojivoto.apply(server)
    try:
        deadline = time.monotonic() + 5
        while True:
            out = probe(emojivoto, prober, "--path", "/api/list")
            if out.verdict is Verdict.HTTP_FORBIDDEN or time.monotonic() > deadline:
                break
        assert out.verdict is Verdict.HTTP_FORBIDDEN and out.status == 403, out.short()
    finally:
        res = emojivoto.dyn.resources.get(api_version="policy.linkerd.io/v1beta3",
                                          kind="Server")
        res.delete(name="web-http", namespace="emojivoto")


def test_a_webhook_refusal_is_the_webhooks_status(emojivoto: Kube) -> None:
    server = {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
              "metadata": {"name": "bogus", "namespace": "emojivoto"},
              "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": 8080,
                       "proxyProtocol": "bogus"}}
    with pytest.raises(ApiException) as exc:
        emojivoto.apply(server)
    status = status_of(exc.value)
    assert exc.value.status == 400 and status["kind"] == "Status"
    assert status["message"].startswith(WEBHOOK + "unknown variant `bogus`"), status


def test_a_schema_refusal_is_422_invalid(emojivoto: Kube) -> None:
    server = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Server",
              "metadata": {"name": "no-port", "namespace": "emojivoto"},
              "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}}}
    with pytest.raises(ApiException) as exc:
        emojivoto.apply(server)
    status = status_of(exc.value)
    assert (exc.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"] == ('Server.policy.linkerd.io "no-port" is invalid: spec.port: '
                                 "Required value")


def test_missing_objects_are_404_statuses(emojivoto: Kube) -> None:
    with pytest.raises(ApiException) as exc:
        emojivoto.core.read_namespace("nope")
    assert (exc.value.status, status_of(exc.value)["message"]) == (
        404, 'namespaces "nope" not found')
    with pytest.raises(ApiException) as exc:
        emojivoto.apps.read_namespaced_deployment("nope", "emojivoto")
    assert status_of(exc.value)["message"] == 'deployments.apps "nope" not found'
    with pytest.raises(ApiException) as exc:
        emojivoto.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "x", "namespace": "nowhere"}})
    assert status_of(exc.value)["message"] == 'namespaces "nowhere" not found'


def test_a_create_of_an_existing_object_is_409(emojivoto: Kube) -> None:
    with pytest.raises(ApiException) as exc:
        emojivoto.core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "emojivoto"}})
    assert (exc.value.status, status_of(exc.value)["reason"]) == (409, "AlreadyExists")


def test_a_deprecated_version_warns(emojivoto: Kube) -> None:
    server = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Server",
              "metadata": {"name": "old-style", "namespace": "emojivoto"},
              "spec": {"podSelector": {"matchLabels": {"app": "nothing"}}, "port": 9999}}
    resp = emojivoto.apply(server, serialize=False)
    # 2.16's CRD really names v1alpha1 on its v1beta1 entry (fixed in 2.17, F2.1)
    assert resp.headers.get("Warning") == ('299 - "policy.linkerd.io/v1alpha1 Server is '
                                           'deprecated; use policy.linkerd.io/v1beta3 Server"')
    fresh = {**server, "apiVersion": "policy.linkerd.io/v1beta3"}
    assert "Warning" not in emojivoto.apply(fresh, serialize=False).headers


CRONJOB = {"apiVersion": "batch/v1beta1", "kind": "CronJob",
           "metadata": {"name": "heartbeat", "namespace": "linkerd"},
           "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {
               "spec": {"restartPolicy": "Never",
                        "containers": [{"name": "x", "image": "busybox"}]}}}}}}


def test_batch_v1beta1_cronjob_is_served_on_1_23(kube: Kube) -> None:
    resp = kube.apply(CRONJOB, serialize=False)
    assert "batch/v1beta1 CronJob is deprecated in v1.21+" in resp.headers["Warning"]
    got = kube.dyn.resources.get(api_version="batch/v1beta1", kind="CronJob").get(
        name="heartbeat", namespace="linkerd")
    assert got.spec.schedule == "0 * * * *"


@pytest.fixture()
def bare(tmp_path: Path) -> Iterator[tuple[ClusterDouble, Kube]]:
    """Kubernetes 1.29, no Linkerd."""
    with ClusterDouble("2.11", kubernetes_version="v1.29.4") as c:
        k = Kube(c, tmp_path)
        yield c, k
        k.close()


def test_a_fresh_cluster_serves_no_cronjob_v1beta1_nor_policy_kinds(
        bare: tuple[ClusterDouble, Kube]) -> None:
    cluster, kube = bare
    with pytest.raises(ResourceNotFoundError):
        kube.dyn.resources.get(api_version="batch/v1beta1", kind="CronJob")
    with pytest.raises(ResourceNotFoundError):
        kube.dyn.resources.get(api_version="policy.linkerd.io/v1beta1", kind="Server")
    for crd in policy_crds(cluster.profile):
        kube.apply(crd)
    servers = kube.dyn.resources.get(api_version="policy.linkerd.io/v1beta1", kind="Server")
    assert servers.namespaced
    with pytest.raises(ResourceNotFoundError):  # 2.11 has no AuthorizationPolicy
        kube.dyn.resources.get(api_version="policy.linkerd.io/v1alpha1",
                               kind="AuthorizationPolicy")


def test_rollout_restart_by_patch_makes_a_new_pod(emojivoto: Kube) -> None:
    before = {p.metadata.name for p in emojivoto.core.list_namespaced_pod(
        "emojivoto", label_selector="app=emoji-svc").items}
    emojivoto.apps.patch_namespaced_deployment("emoji", "emojivoto", {
        "spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})
    watch = kubernetes.watch.Watch()
    for _event in watch.stream(emojivoto.core.list_namespaced_pod, "emojivoto",
                               label_selector="app=emoji-svc", timeout_seconds=10):
        pods = emojivoto.core.list_namespaced_pod("emojivoto",
                                                  label_selector="app=emoji-svc").items
        names = {p.metadata.name for p in pods}
        if names and not names & before and all(
                all(c.ready for c in p.status.container_statuses) for p in pods):
            watch.stop()
    assert names and not names & before
    dep = emojivoto.apps.read_namespaced_deployment("emoji", "emojivoto")
    assert dep.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
    assert dep.metadata.generation == dep.status.observed_generation == 2


def test_annotating_a_running_pod_keeps_it_and_reaches_the_controller(
        cluster: ClusterDouble, emojivoto: Kube) -> None:
    """`kubectl annotate pod` is a merge patch of the pod's metadata: the pod stays, the API
    shows the annotation, and from 2.12 the controller serves its default (F1.13)."""
    (pod,) = emojivoto.core.list_namespaced_pod("emojivoto", label_selector="app=web-svc").items
    name = pod.metadata.name
    emojivoto.core.patch_namespaced_pod(name, "emojivoto", {"metadata": {"annotations": {
        "config.linkerd.io/default-inbound-policy": "deny"}}})
    (after,) = emojivoto.core.list_namespaced_pod("emojivoto", label_selector="app=web-svc").items
    assert after.metadata.name == name
    assert after.metadata.annotations["config.linkerd.io/default-inbound-policy"] == "deny"
    (runtime,) = [p for p in cluster.reference.workloads.pods_of_namespace("emojivoto")
                  if p.name == name]
    assert runtime.indexed_default_policy == "deny"
    emojivoto.core.patch_namespaced_pod(name, "emojivoto", {"metadata": {"annotations": {
        "config.linkerd.io/default-inbound-policy": None}}})
    assert runtime.indexed_default_policy == cluster.reference.workloads.cluster_default


def test_logs_and_internal_endpoints(cluster: ClusterDouble, emojivoto: Kube) -> None:
    (pod,) = emojivoto.core.list_namespaced_pod("emojivoto", label_selector="app=web-svc").items
    log = emojivoto.core.read_namespaced_pod_log(pod.metadata.name, "emojivoto",
                                                 container="web-svc")
    assert isinstance(log, str)
    with pytest.raises(ApiException) as exc:
        emojivoto.core.read_namespaced_pod_log(pod.metadata.name, "emojivoto", container="no")
    assert exc.value.status == 400
    import urllib.request

    base = f"{cluster.url}/_double/v1/namespaces/emojivoto/pods/{pod.metadata.name}"
    with urllib.request.urlopen(f"{base}/metrics") as r:
        assert "inbound_http_authz_allow_total" in r.read().decode()
    with urllib.request.urlopen(f"{base}/policy/8080") as r:
        assert "kind: default" in r.read().decode()  # the InboundServer's labels
