"""`ClusterMesh` at its boundary: the kubectl and linkerd calls it makes, over fake tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_targets_fakes import Fakes, make_fakes

from linkerd_conformance.api import Client, Dest, Mesh, ObjectRef, Pod, Profile, TargetError
from linkerd_conformance.outcome import Verdict
from linkerd_conformance.targets import tools
from linkerd_conformance.targets.cluster import OWNED_LABEL, RUN_LABEL, ClusterMesh
from linkerd_conformance.targets.kube import Kube
from linkerd_conformance.targets.kubeconfig import KubeconfigTarget


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    return make_fakes(tmp_path, monkeypatch)

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "emojivoto"}}
SERVER = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Server",
          "metadata": {"name": "web-http", "namespace": "emojivoto"},
          "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": "http"}}
AUTHZ = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "ServerAuthorization",
         "metadata": {"name": "web-public", "namespace": "emojivoto"},
         "spec": {"server": {"name": "web-http"}, "client": {"unauthenticated": True}}}
SERVICE = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web-svc", "namespace": "emojivoto"}}
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "web", "namespace": "emojivoto"},
          "spec": {"template": {"spec": {"containers": [
              {"name": "web-svc", "image": "ghcr.io/buoyantio/emojivoto-web:v11"}]}}}}


def mesh(fakes: Fakes, **kw: Any) -> ClusterMesh:
    found = tools.find_tools(("kubectl", "linkerd"), path=fakes.path)
    kw.setdefault("run_id", "r1")
    return ClusterMesh(Profile("2.11"), "kubeconfig", Kube(found, context="ctx"), **kw)


def applied(fakes: Fakes) -> list[list[str]]:
    """Each `kubectl apply` call's objects as kind/name, in order."""
    return [[f"{o['kind']}/{o['metadata']['name']}" for o in json.loads(c["stdin"])["items"]]
            for c in fakes.calls("kubectl") if c["argv"][2] == "apply"]


def pod_json(name: str, *, ip: str = "10.244.0.7", ready: bool = True, created: str =
             "2024-01-01T00:00:00Z", hash_: str = "new", waiting: str | None = None,
             ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "back-off 10s"}} if waiting else \
        {"running": {}}
    return {"metadata": {"name": name, "namespace": "emojivoto", "creationTimestamp": created,
                         "labels": {"app": "web", "pod-template-hash": hash_}},
            "spec": {"containers": [{"name": "web-svc", "ports": ports or [
                {"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": str(ready)}],
                       "containerStatuses": [{"name": "web-svc", "ready": ready,
                                              "restartCount": 0, "state": state}]}}


def deployment(name: str = "web", *, settled: bool = True) -> dict[str, Any]:
    ready = 1 if settled else 0
    return {"metadata": {"name": name, "namespace": "emojivoto", "generation": 2},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}},
            "status": {"observedGeneration": 2, "replicas": 1 if settled else 2,
                       "updatedReplicas": 1, "readyReplicas": ready,
                       "availableReplicas": ready}}


# --- objects --------------------------------------------------------------------------------

def test_cluster_mesh_is_a_mesh(fakes: Fakes) -> None:
    assert isinstance(mesh(fakes), Mesh)


def test_apply_orders_namespaces_then_policy_then_services_then_workloads(fakes: Fakes) -> None:
    mesh(fakes).apply(DEPLOY, SERVER, SERVICE, NS, AUTHZ)
    assert applied(fakes) == [["Namespace/emojivoto"],
                              ["Server/web-http", "ServerAuthorization/web-public"],
                              ["Service/web-svc"], ["Deployment/web"]]
    first = fakes.calls("kubectl")[1]
    assert first["argv"] == ["--context", "ctx", "apply", "--server-side",
                             "--field-manager=linkerd-conformance", "--force-conflicts",
                             "-f", "-"]
    assert fakes.state()["namespaces"]["emojivoto"] == {OWNED_LABEL: "true", RUN_LABEL: "r1"}


def test_apply_moves_images_to_the_registry(fakes: Fakes) -> None:
    mesh(fakes, registry="mirror.local").apply(NS, DEPLOY)
    dep = json.loads(fakes.calls("kubectl")[-1]["stdin"])["items"][0]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "mirror.local/buoyantio/emojivoto-web:v11"


def test_apply_refuses_a_namespace_the_run_did_not_create(fakes: Fakes) -> None:
    fakes.set_state(namespaces={"emojivoto": {}})
    with pytest.raises(TargetError, match="namespace emojivoto already exists"):
        mesh(fakes).apply(SERVER)
    assert applied(fakes) == []


def test_a_rejection_is_one_sentence_with_the_webhooks_words(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["apply"], rc=1, stderr=(
        'Error from server: admission webhook "linkerd-policy-validator.linkerd.io" denied the '
        "request: unknown variant `invalid`\n"))
    m = mesh(fakes)
    with pytest.raises(TargetError) as exc:
        m.apply(NS)
    assert "denied the request: unknown variant `invalid`" in str(exc.value)


def test_delete_goes_workloads_first_and_ignores_missing(fakes: Fakes) -> None:
    m = mesh(fakes)
    m.apply(NS)
    m.delete(SERVER, DEPLOY)
    deletes = [c for c in fakes.calls("kubectl") if c["argv"][2] == "delete"]
    assert [json.loads(c["stdin"])["items"][0]["kind"] for c in deletes] == \
        ["Deployment", "Server"]
    assert "--ignore-not-found" in deletes[0]["argv"]


def test_annotate_sets_and_removes(fakes: Fakes) -> None:
    m = mesh(fakes)
    m.apply(NS)
    m.annotate(ObjectRef("Namespace", "emojivoto"),
               {"config.linkerd.io/default-inbound-policy": "deny", "old": None})
    assert fakes.commands()[-1] == ("kubectl --context ctx annotate --overwrite "
                                    "namespace/emojivoto "
                                    "config.linkerd.io/default-inbound-policy=deny old-")


# --- probes ---------------------------------------------------------------------------------

def test_probe_execs_the_prober_inside_the_clients_pod_against_the_pod_ip(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "pods", "app=web"], {"items": [pod_json("web-1")]})
    m = mesh(fakes)
    m.apply(NS, {**NS, "metadata": {"name": "bad"}})
    client = Client("bad", "default", meshed=True)
    outcome = m.probe(client, Dest("emojivoto", "web", "http"), "http", path="/api/list",
                      headers={"x": "1"})
    assert outcome.verdict is Verdict.ALLOWED and outcome.status == 200
    exec_call = fakes.commands()[-1]
    assert exec_call == (
        "kubectl --context ctx exec -n bad prober-default-meshed-pod -c prober -- "
        "python -m linkerd_conformance.prober --protocol http --host 10.244.0.7 --port 8080 "
        "--timeout 2 --path /api/list --header x:1")
    pod = json.loads([c for c in fakes.calls("kubectl") if c["argv"][2] == "apply"][-1]
                     ["stdin"])["items"][0]
    assert pod["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}
    assert pod["spec"]["serviceAccountName"] == "default"
    assert "kubectl --context ctx wait --for=condition=Ready pod/prober-default-meshed-pod " \
           "-n bad --timeout=180s" in fakes.commands()
    assert not any("port-forward" in c for c in fakes.commands())


def test_the_prober_pod_is_made_once_with_the_clients_service_account(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "pods"], {"items": [pod_json("web-1")]})
    m = mesh(fakes)
    m.apply(NS)
    vote_bot = Client("emojivoto", "vote-bot", meshed=False)
    for _ in range(2):
        m.probe(vote_bot, Dest("emojivoto", "web", 8080), "http")
    applies = applied(fakes)
    assert applies[1:] == [["ServiceAccount/vote-bot"], ["Pod/prober-vote-bot-plain-pod"]]
    assert sum(c.startswith("kubectl --context ctx exec") for c in fakes.commands()) == 2


def test_a_probe_that_does_not_run_is_an_error_never_a_denial(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "pods"], {"items": [pod_json("web-1")]})
    fakes.respond("kubectl", ["exec"], "", rc=137, stderr="command terminated with exit code 137")
    m = mesh(fakes)
    m.apply(NS)
    outcome = m.probe(Client("emojivoto"), Dest("emojivoto", "web", 8080), "grpc")
    assert outcome.verdict is Verdict.ERROR and not outcome.verdict.is_denial
    assert "command terminated with exit code 137" in outcome.detail


def test_a_canned_denial_is_parsed_from_the_probers_json_line(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "pods"], {"items": [pod_json("web-1")]})
    fakes.monkeypatch.setenv("FAKE_PROBER_OUTCOME", json.dumps(
        {"verdict": "http-forbidden", "protocol": "http", "status": 403,
         "proxy_error": "unauthorized request on route"}))
    m = mesh(fakes)
    m.apply(NS)
    outcome = m.probe(Client("emojivoto"), Dest("emojivoto", "web", "http"), "http")
    assert outcome.verdict is Verdict.HTTP_FORBIDDEN and outcome.status == 403


def test_request_arguments_map_to_the_probers_flags() -> None:
    import codecs

    from linkerd_conformance.targets.cluster import request_flags

    assert request_flags("grpc", {"method": "emojivoto.v1.EmojiService/ListAll",
                                  "message": b"\x08\x01", "metadata": {"k": "v"}}) == [
        "--grpc-method", "emojivoto.v1.EmojiService/ListAll", "--message-hex", "0801",
        "--metadata", "k:v"]
    assert request_flags("http", {"method": "POST", "body": b"{}", "authority": "web-svc"}) == [
        "--method", "POST", "--body", "{}", "--authority", "web-svc"]
    payload = b"ping\n\x00\\x"
    [flag, text] = request_flags("tcp", {"payload": payload})
    assert flag == "--payload" and codecs.escape_decode(text.encode())[0] == payload
    with pytest.raises(TargetError, match="no flag for the http request argument 'retries'"):
        request_flags("http", {"retries": 3})


def test_outside_clients_cannot_be_placed_on_a_cluster(fakes: Fakes) -> None:
    with pytest.raises(TargetError, match="outside every cluster network"):
        mesh(fakes).probe(Client("bad", network="outside"), Dest("emojivoto", "web", 80), "tcp")
    assert fakes.calls() == []


def test_no_ready_destination_pod_is_a_target_error(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "pods"], {"items": [pod_json("web-1", ready=False)]})
    m = mesh(fakes)
    m.apply(NS)
    with pytest.raises(TargetError, match="no Ready pod of emojivoto/web"):
        m.probe(Client("emojivoto"), Dest("emojivoto", "web", 8080), "http")


# --- rollouts -------------------------------------------------------------------------------

def test_a_stalled_rollout_says_why_from_events(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "deployment", "web"], deployment(settled=False))
    fakes.respond("kubectl", ["get", "pods"], {"items": [
        pod_json("web-old", created="2024-01-01T00:00:00Z", hash_="old"),
        pod_json("web-new", created="2024-01-01T00:05:00Z", ready=False)]})
    fakes.respond("kubectl", ["get", "events"], {"items": [
        {"type": "Warning", "reason": "Unhealthy", "lastTimestamp": "2024-01-01T00:05:30Z",
         "involvedObject": {"name": "web-new"},
         "message": "Readiness probe failed: HTTP probe failed with statuscode: 403"},
        {"type": "Warning", "reason": "Unhealthy", "involvedObject": {"name": "other-pod"},
         "message": "unrelated"}]})
    now = [0.0]
    m = mesh(fakes, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    [rollout] = m.wait_rollout("emojivoto", "web", timeout=10)
    assert not rollout and rollout.deployment == "web"
    assert rollout.reason == ("web-new: Unhealthy: Readiness probe failed: HTTP probe failed "
                              "with statuscode: 403")
    assert rollout.old_pods_serving == 1
    assert rollout.waited == pytest.approx(10)


def test_a_crash_looping_container_is_the_reason(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "deployment"], deployment(settled=False))
    fakes.respond("kubectl", ["get", "pods"], {"items": [
        pod_json("web-new", ready=False, waiting="CrashLoopBackOff")]})
    m = mesh(fakes, sleep=lambda s: None, clock=iter(range(100)).__next__)
    [rollout] = m.wait_rollout("emojivoto", "web", timeout=1)
    assert rollout.reason == "web-new/web-svc: CrashLoopBackOff (back-off 10s)"


def test_restart_then_settle(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "deployments"], {"items": [deployment()]})
    fakes.respond("kubectl", ["get", "deployments"], {"items": [deployment(settled=False)]},
                  once=True)
    m = mesh(fakes, sleep=lambda s: None)
    m.apply(NS)
    rollouts = m.rollout_restart("emojivoto")
    assert [bool(r) for r in rollouts] == [True]
    cmds = fakes.commands()
    assert "kubectl --context ctx rollout restart deployment -n emojivoto" in cmds
    assert sum("get deployments" in c for c in cmds) == 2


# --- pods, proxy, logs ----------------------------------------------------------------------

def test_pods_oldest_first_with_terminating_phase(fakes: Fakes) -> None:
    young = pod_json("b", created="2024-01-02T00:00:00Z")
    old = pod_json("a", created="2024-01-01T00:00:00Z")
    old["metadata"]["deletionTimestamp"] = "2024-01-03T00:00:00Z"
    fakes.respond("kubectl", ["get", "pods"], {"items": [young, old]})
    pods = mesh(fakes).pods("emojivoto", {"app": "web"})
    assert [(p.name, p.phase, p.ready) for p in pods] == [("a", "Terminating", True),
                                                          ("b", "Running", True)]
    assert fakes.commands()[-1].endswith("get pods -n emojivoto -o json -l app=web")


def test_proxy_env_metrics_and_logs(fakes: Fakes) -> None:
    pod = Pod("emojivoto", "web-1", "10.244.0.7", {}, {}, "Running", True)
    fakes.respond("kubectl", ["get", "pod", "web-1"], {"spec": {"containers": [
        {"name": "linkerd-proxy", "env": [
            {"name": "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "value": "deny"},
            {"name": "_pod_ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]},
    ]}})
    fakes.respond("kubectl", ["logs"], "line one\n")
    m = mesh(fakes)
    assert m.proxy_env(pod) == {"LINKERD2_PROXY_INBOUND_DEFAULT_POLICY": "deny"}
    metrics = m.proxy_metrics(pod)
    assert metrics.value("inbound_http_authz_allow_total") == 3
    assert "linkerd --context ctx diagnostics proxy-metrics -n emojivoto po/web-1" in \
        fakes.commands()
    assert m.logs(pod, "linkerd-proxy") == "line one\n"


# --- cleanup --------------------------------------------------------------------------------

def test_cleanup_deletes_only_this_runs_namespaces(fakes: Fakes) -> None:
    fakes.set_state(namespaces={"kube-system": {}, "team": {"x": "y"},
                                "other-run": {OWNED_LABEL: "true", RUN_LABEL: "r0"}})
    m = mesh(fakes)
    m.apply(NS, {**NS, "metadata": {"name": "bad"}})
    m.cleanup()
    m.cleanup()  # idempotent
    assert sorted(fakes.state()["namespaces"]) == ["kube-system", "other-run", "team"]
    assert sum(" delete namespace " in c for c in fakes.commands()) == 1


def test_reset_deletes_this_runs_namespaces_and_forgets_its_probers(fakes: Fakes) -> None:
    fakes.respond("kubectl", ["get", "pods"], {"items": [pod_json("web-1")]})
    fakes.set_state(namespaces={"linkerd": {}})
    m = mesh(fakes, sleep=lambda s: None)
    m.apply(NS)
    m.probe(Client("emojivoto"), Dest("emojivoto", "web", 8080), "http")
    m.reset()
    assert fakes.state()["namespaces"] == {"linkerd": {}}
    m.apply(NS)  # the next check starts again: namespace and prober are made anew
    m.probe(Client("emojivoto"), Dest("emojivoto", "web", 8080), "http")
    assert sum(" wait --for=condition=Ready " in c for c in fakes.commands()) == 2


def test_a_namespace_left_by_an_interrupted_run_is_adopted_and_cleaned(fakes: Fakes) -> None:
    fakes.set_state(namespaces={"emojivoto": {OWNED_LABEL: "true", RUN_LABEL: "r0"}})
    m = mesh(fakes)
    m.apply(NS)
    assert fakes.state()["namespaces"]["emojivoto"][RUN_LABEL] == "r1"
    m.cleanup()
    assert fakes.state()["namespaces"] == {}


def test_an_interrupt_in_the_middle_of_a_kubeconfig_run_still_cleans_up(fakes: Fakes) -> None:
    fakes.set_state(namespaces={"linkerd": {}})
    target = KubeconfigTarget(fakes.settings(kube_context="ctx", prober_image="p:1"),
                              Profile("2.11"), run_id="r1")
    with pytest.raises(KeyboardInterrupt), target.open() as m:
        m.apply(NS, {**NS, "metadata": {"name": "bad"}})
        assert sorted(fakes.state()["namespaces"]) == ["bad", "emojivoto", "linkerd"]
        raise KeyboardInterrupt
    assert fakes.state()["namespaces"] == {"linkerd": {}}
    assert fakes.commands()[-1] == ("kubectl --context ctx delete namespace -l "
                                    f"{OWNED_LABEL}=true,{RUN_LABEL}=r1 --ignore-not-found "
                                    "--wait=false")


def test_sigterm_becomes_an_interrupt_and_cleans_up(fakes: Fakes) -> None:
    import os
    import signal

    target = KubeconfigTarget(fakes.settings(kube_context="ctx", prober_image="p:1"),
                              Profile("2.11"), run_id="r1")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), target.open() as m:
        m.apply(NS)
        os.kill(os.getpid(), signal.SIGTERM)
    assert fakes.state()["namespaces"] == {}
    assert signal.getsignal(signal.SIGTERM) is before
