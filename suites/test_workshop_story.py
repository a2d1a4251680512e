"""The workshop's story, step by step, as conformance checks (Linkerd 2.11 semantics).

"Locking down your Kubernetes cluster with Linkerd": deploy Emojivoto, copy the vote-bot into
namespace `bad`, lock `emojivoto` down with a default-deny annotation and a restart, apply the
published policy, then edit `web-public` so that only `emojivoto` identities reach web.
Each check brings the mesh to its step from scratch, so each can run alone.
"""

from __future__ import annotations

import pytest

from linkerd_conformance import (
    GRPC_OK,
    GRPC_PERMISSION_DENIED,
    HTTP_FORBIDDEN,
    OK,
    Client,
    ConformanceFailure,
    Emojivoto,
    Mesh,
    Pod,
    expect,
    wait_for,
    workshop,
)

pytestmark = [pytest.mark.conformance, pytest.mark.feature("workshop")]

DEFAULT_POLICY_ENV = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"


def _pod(mesh: Mesh, namespace: str, app: str) -> Pod:
    """The newest Ready pod of an app."""
    pods = [p for p in mesh.pods(namespace, {"app": app}) if p.ready]
    if not pods:
        raise ConformanceFailure(f"expected a Ready pod with app={app} in {namespace}; "
                                 f"found {mesh.pods(namespace, {'app': app})}")
    return pods[-1]


def _lock_down(mesh: Mesh, *policy: dict) -> None:
    """Annotate emojivoto with default deny and restart it, as the workshop does."""
    if policy:
        mesh.apply(*policy)
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    for rollout in mesh.rollout_restart("emojivoto"):
        assert rollout.settled, f"restart of emojivoto/{rollout.deployment}: {rollout.reason}"


# ---- before lockdown ----

@pytest.mark.facts("F1.3")
def test_before_lockdown_every_client_reaches_web(mesh: Mesh, emojivoto: Emojivoto,
                                                  bad_votebot: Client) -> None:
    """With the cluster default all-unauthenticated, both vote-bots list emojis."""
    expect(mesh, emojivoto.votebot, emojivoto.web_http, "http", **workshop.API_LIST).becomes(OK)
    expect(mesh, bad_votebot, emojivoto.web_http, "http", **workshop.API_LIST).becomes(OK)


@pytest.mark.facts("F1.3")
def test_before_lockdown_any_pod_calls_emoji_and_voting(mesh: Mesh, emojivoto: Emojivoto,
                                                        bad_votebot: Client) -> None:
    """Without policy, even a `bad` pod calls emoji's and voting's gRPC APIs directly."""
    expect(mesh, emojivoto.web, emojivoto.emoji_grpc, "grpc",
           **workshop.LIST_ALL).becomes(GRPC_OK)
    expect(mesh, bad_votebot, emojivoto.emoji_grpc, "grpc", **workshop.LIST_ALL).becomes(GRPC_OK)
    expect(mesh, bad_votebot, emojivoto.voting_grpc, "grpc",
           **workshop.RESULTS).becomes(GRPC_OK)


# ---- the annotation and the restart ----

@pytest.mark.facts("F1.11", "F1.12")
def test_deny_annotation_changes_nothing_until_restart(mesh: Mesh, emojivoto: Emojivoto,
                                                       bad_votebot: Client) -> None:
    """The default policy is fixed when the pod starts: annotating the namespace alone leaves
    running proxies on all-unauthenticated."""
    web_pod = _pod(mesh, "emojivoto", "web-svc")
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    expect(mesh, bad_votebot, emojivoto.web_http, "http", **workshop.API_LIST).stays(OK)
    expect(mesh, emojivoto.web, emojivoto.emoji_grpc, "grpc",
           **workshop.LIST_ALL).stays(GRPC_OK)
    assert mesh.proxy_env(web_pod)[DEFAULT_POLICY_ENV] == "all-unauthenticated"


@pytest.mark.facts("F1.11", "F1.12", "F1.18")
def test_restart_gives_new_pods_the_deny_default(mesh: Mesh, emojivoto: Emojivoto) -> None:
    """After `rollout restart`, the injector copies the namespace annotation onto the new pods
    and their proxies start with default deny."""
    _lock_down(mesh, *workshop.admin_only_policy())
    web_pod = _pod(mesh, "emojivoto", "web-svc")
    assert web_pod.annotations.get("config.linkerd.io/default-inbound-policy") == "deny"
    assert mesh.proxy_env(web_pod)[DEFAULT_POLICY_ENV] == "deny"


@pytest.mark.facts("F1.7", "F5.4")
def test_after_restart_without_policy_web_calls_to_emoji_are_permission_denied(
        mesh: Mesh, emojivoto: Emojivoto) -> None:
    """Under deny with no Server for grpc/8080, web's gRPC calls to emoji get PERMISSION_DENIED.

    Only the admin port is authorized (2.11 needs it for probes, F6.1), so pods become Ready."""
    _lock_down(mesh, *workshop.admin_only_policy())
    expect(mesh, emojivoto.web, emojivoto.emoji_grpc, "grpc",
           **workshop.LIST_ALL).becomes(GRPC_PERMISSION_DENIED)


@pytest.mark.facts("F1.7", "F5.4")
def test_after_restart_without_policy_web_calls_to_voting_are_permission_denied(
        mesh: Mesh, emojivoto: Emojivoto) -> None:
    """Same for voting's gRPC API."""
    _lock_down(mesh, *workshop.admin_only_policy())
    expect(mesh, emojivoto.web, emojivoto.voting_grpc, "grpc",
           **workshop.RESULTS).becomes(GRPC_PERMISSION_DENIED)


@pytest.mark.facts("F1.7", "F5.3")
def test_after_restart_without_policy_votebot_calls_to_web_get_403(
        mesh: Mesh, emojivoto: Emojivoto) -> None:
    """The vote-bot's HTTP calls to web are answered 403 with an empty body by web's proxy."""
    _lock_down(mesh, *workshop.admin_only_policy())
    out = expect(mesh, emojivoto.votebot, emojivoto.web_http, "http",
                 **workshop.API_LIST).becomes(HTTP_FORBIDDEN)
    assert out.body == b"", f"a denial carries no body, saw {out.body[:80]!r}"


# ---- the published policy ----

@pytest.mark.facts("F2.8", "F3.5", "F3.7")
def test_with_the_policy_emojivoto_works(mesh: Mesh, emojivoto: Emojivoto) -> None:
    """With emojivoto-policy.yml, web (SA web) may call emoji and voting, and the vote-bot's
    /api/list goes all the way through: 200 from web, which got its answer from emoji."""
    _lock_down(mesh, *workshop.emojivoto_policy())
    expect(mesh, emojivoto.votebot, emojivoto.web_http, "http", **workshop.API_LIST).becomes(OK)
    expect(mesh, emojivoto.web, emojivoto.emoji_grpc, "grpc",
           **workshop.LIST_ALL).becomes(GRPC_OK)
    expect(mesh, emojivoto.web, emojivoto.voting_grpc, "grpc",
           **workshop.RESULTS).becomes(GRPC_OK)


@pytest.mark.facts("F2.8", "F3.5", "F5.4")
def test_with_the_policy_a_bad_pod_calling_emoji_directly_is_denied(
        mesh: Mesh, emojivoto: Emojivoto, bad_votebot: Client) -> None:
    """internal-grpc admits only SA web of emojivoto: the `bad` vote-bot's identity is refused
    with PERMISSION_DENIED."""
    _lock_down(mesh, *workshop.emojivoto_policy())
    expect(mesh, bad_votebot, emojivoto.emoji_grpc, "grpc",
           **workshop.LIST_ALL).becomes(GRPC_PERMISSION_DENIED)


@pytest.mark.facts("F3.5", "F3.7")
def test_with_the_policy_a_bad_pod_named_web_is_still_denied(
        mesh: Mesh, emojivoto: Emojivoto, bad_votebot: Client) -> None:
    """`serviceAccounts: [{name: web}]` means web in the authorization's own namespace: a pod in
    `bad` whose service account is also called web does not pass."""
    _lock_down(mesh, *workshop.emojivoto_policy())
    expect(mesh, workshop.bad_impostor, emojivoto.emoji_grpc, "grpc",
           **workshop.LIST_ALL).becomes(GRPC_PERMISSION_DENIED)


@pytest.mark.facts("F3.4", "F3.11")
def test_with_the_policy_the_bad_votebot_still_reaches_web(
        mesh: Mesh, emojivoto: Emojivoto, bad_votebot: Client) -> None:
    """web-public is `unauthenticated: true` from 0.0.0.0/0: any client, meshed or not."""
    _lock_down(mesh, *workshop.emojivoto_policy())
    expect(mesh, bad_votebot, emojivoto.web_http, "http", **workshop.API_LIST).becomes(OK)
    expect(mesh, workshop.unmeshed_bad, emojivoto.web_http, "http",
           **workshop.API_LIST).becomes(OK)


# ---- the wildcard edit ----

@pytest.mark.facts("F1.14", "F3.6", "F5.3")
def test_wildcard_edit_locks_out_the_bad_votebot_without_restart(
        mesh: Mesh, emojivoto: Emojivoto, bad_votebot: Client) -> None:
    """Editing web-public to `*.emojivoto...` takes effect live: the `bad` vote-bot now gets 403."""
    _lock_down(mesh, *workshop.emojivoto_policy())
    expect(mesh, bad_votebot, emojivoto.web_http, "http", **workshop.API_LIST).becomes(OK)
    web_pod = _pod(mesh, "emojivoto", "web-svc")
    mesh.apply(*workshop.web_public_emojivoto_only())
    expect(mesh, bad_votebot, emojivoto.web_http, "http",
           **workshop.API_LIST).becomes(HTTP_FORBIDDEN)
    assert _pod(mesh, "emojivoto", "web-svc").name == web_pod.name, "web was restarted"


@pytest.mark.facts("F3.6")
def test_wildcard_edit_keeps_the_emojivoto_votebot_allowed(
        mesh: Mesh, emojivoto: Emojivoto, bad_votebot: Client) -> None:
    """default.emojivoto... matches `*.emojivoto...` on a label boundary: still allowed."""
    _lock_down(mesh, *workshop.emojivoto_policy())
    mesh.apply(*workshop.web_public_emojivoto_only())
    expect(mesh, bad_votebot, emojivoto.web_http, "http",
           **workshop.API_LIST).becomes(HTTP_FORBIDDEN)
    expect(mesh, emojivoto.votebot, emojivoto.web_http, "http", **workshop.API_LIST).stays(OK)


@pytest.mark.facts("F3.6", "F5.5")
def test_wildcard_edit_denies_unmeshed_clients(mesh: Mesh, emojivoto: Emojivoto,
                                               bad_votebot: Client) -> None:
    """Without an identity nothing matches meshTLS: a plaintext client gets a bare 403."""
    _lock_down(mesh, *workshop.emojivoto_policy())
    mesh.apply(*workshop.web_public_emojivoto_only())
    out = expect(mesh, workshop.unmeshed_bad, emojivoto.web_http, "http",
                 **workshop.API_LIST).becomes(HTTP_FORBIDDEN)
    assert out.proxy_error is None, "l5d-proxy-error is only sent to meshed clients (F5.5)"


# ---- probes in 2.11 ----

@pytest.mark.versions("2.11")
@pytest.mark.facts("F6.1")
def test_under_deny_unauthorized_probes_keep_pods_from_becoming_ready(
        mesh: Mesh, emojivoto: Emojivoto) -> None:
    """2.11 authorizes no kubelet probe by itself: under deny with no admin or app authorization,
    the restarted pod never becomes Ready, and the rollout stalls with the old pod serving."""
    mesh.apply(*workshop.probe_demo())
    for rollout in mesh.wait_rollout("emojivoto", "probe-demo"):
        assert rollout.settled, rollout.reason
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    [rollout] = mesh.rollout_restart("emojivoto", "probe-demo")
    assert not rollout.settled, "expected the restart to stall: probes are not authorized"
    assert rollout.old_pods_serving == 1, f"old pod should keep serving: {rollout}"
    assert "403" in rollout.reason, f"expected probes answered 403, got: {rollout.reason}"


@pytest.mark.versions("2.11")
@pytest.mark.facts("F6.1")
def test_authorizing_admin_and_app_probe_ports_lets_pods_become_ready(
        mesh: Mesh, emojivoto: Emojivoto) -> None:
    """With the `admin` Server + `admin-everyone` (port 4191) and an authorization on the
    app's probe port, the same restart under deny settles."""
    mesh.apply(*workshop.probe_demo(), *workshop.admin_only_policy(),
               *workshop.probe_demo_policy())
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    [rollout] = mesh.rollout_restart("emojivoto", "probe-demo")
    assert rollout.settled, f"expected the restart to settle: {rollout.reason}"
    pod = wait_for("a Ready probe-demo pod running with default deny",
                   lambda: [p for p in mesh.pods("emojivoto", {"app": "probe-demo"}) if p.ready],
                   lambda pods: bool(pods))[-1]
    assert mesh.proxy_env(pod)[DEFAULT_POLICY_ENV] == "deny"
