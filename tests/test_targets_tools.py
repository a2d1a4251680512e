"""Prerequisites of the cluster targets: found, verified, refused in one sentence, nothing made."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_targets_fakes import Fakes, fake_identity, make_fakes

from linkerd_conformance.api import Profile, TargetError
from linkerd_conformance.targets import tools
from linkerd_conformance.targets.kind import KindTarget
from linkerd_conformance.targets.kubeconfig import KubeconfigTarget


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    return make_fakes(tmp_path, monkeypatch)

CREATING = ("create", "apply", "install", "build", "load")


def one_sentence(exc: pytest.ExceptionInfo[TargetError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert msg.count(". ") == 0, msg  # one sentence: no second one after a full stop
    return msg


def created_nothing(fakes: Fakes) -> None:
    for command in fakes.commands():
        assert not any(f" {verb}" in f" {command}" for verb in CREATING), command


# --- finding tools --------------------------------------------------------------------------

def test_tools_are_found_on_path_as_absolute_paths(fakes: Fakes) -> None:
    found = tools.find_tools(tools.TOOL_NAMES, path=fakes.path)
    assert found.kubectl == f"{fakes.path}/kubectl"


def test_an_explicit_path_wins_and_must_be_executable(fakes: Fakes, tmp_path) -> None:
    assert tools.find_tool("kind", f"{fakes.path}/kind", path="/nonexistent") == \
        f"{fakes.path}/kind"
    with pytest.raises(TargetError) as exc:
        tools.find_tool("kind", str(tmp_path / "no-kind"))
    assert one_sentence(exc).startswith("--kind-bin ")


@pytest.mark.parametrize("missing", ["kind", "kubectl", "linkerd", "docker"])
def test_a_missing_tool_refuses_the_kind_target_before_anything_is_created(
        fakes: Fakes, missing: str) -> None:
    fake_identity(fakes.monkeypatch)
    path = fakes.bin_dir(tuple(t for t in ("kind", "kubectl", "linkerd", "docker")
                               if t != missing))
    target = KindTarget(fakes.settings(path=path), Profile("2.11"))
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("the target opened without " + missing)
    msg = one_sentence(exc)
    assert msg.startswith(f"{missing} was not found on PATH")
    assert f"--{missing}-bin" in msg
    assert fakes.calls() == []  # refused before running anything at all


def test_docker_down_refuses_with_the_documented_sentence_and_creates_nothing(
        fakes: Fakes) -> None:
    fake_identity(fakes.monkeypatch)
    fakes.monkeypatch.setenv("FAKE_DOCKER_DOWN", "1")
    with pytest.raises(TargetError) as exc, KindTarget(fakes.settings(), Profile("2.11")).open():
        pytest.fail("opened")
    assert str(exc.value) == (
        "Docker is not running or not installed: the kind target needs a container engine; "
        "use --target reference (the default) or --target kubeconfig")
    assert fakes.commands() == ["docker info"]
    assert fakes.state()["clusters"] == []


# --- versions -------------------------------------------------------------------------------

@pytest.mark.parametrize("release,version,ok", [
    ("stable-2.11.5", "2.11", True),
    ("stable-2.11.5", "2.12", False),
    ("stable-2.12.3", "2.12", True),
    ("stable-2.14.10", "2.14", True),
    ("edge-23.5.1", "2.13", True),   # pre-2.15 edges cannot be told apart: 2.12-2.14
    ("edge-23.5.1", "2.11", False),
    ("edge-24.2.4", "2.15", True),   # version-2.15
    ("edge-24.8.1", "2.15", True),
    ("edge-24.8.1", "2.16", False),
    ("edge-24.8.2", "2.16", True),   # version-2.16
    ("edge-24.11.8", "2.17", True),
    ("edge-25.4.4", "2.18", True),
    ("edge-25.10.7", "2.19", True),
    ("edge-25.10.7", "2.18", False),
    ("edge-26.8.3", "2.20", True),
])
def test_release_names_map_to_versions_per_the_version_map(release: str, version: str,
                                                           ok: bool) -> None:
    assert tools.release_matches(release, Profile(version)) is ok


def test_a_cli_of_another_version_is_refused_naming_both(fakes: Fakes) -> None:
    fake_identity(fakes.monkeypatch)
    fakes.monkeypatch.setenv("FAKE_LINKERD_VERSION", "stable-2.12.1")
    with pytest.raises(TargetError) as exc, KindTarget(fakes.settings(), Profile("2.11")).open():
        pytest.fail("opened")
    assert one_sentence(exc) == ("The linkerd CLI is stable-2.12.1 but --linkerd-version 2.11 "
                                 "needs stable-2.11.x")
    assert fakes.commands() == ["docker info", "linkerd version --client --short"]
    created_nothing(fakes)


def test_an_edge_cli_for_2_16_names_the_edge_range(fakes: Fakes) -> None:
    with pytest.raises(TargetError) as exc:
        tools.check_release("edge-25.4.4", Profile("2.16"))
    assert one_sentence(exc) == ("The linkerd CLI is edge-25.4.4 but --linkerd-version 2.16 "
                                 "needs edge-24.8.2 up to, not including, edge-24.11.8")


def test_a_cli_that_reports_no_release_is_refused(fakes: Fakes) -> None:
    fakes.respond("linkerd", ["version"], "", rc=1, stderr="boom: no config\n")
    with pytest.raises(TargetError) as exc:
        tools.linkerd_client_release(f"{fakes.path}/linkerd")
    assert one_sentence(exc).endswith("boom: no config")


def test_2_19_without_gateway_api_crds_is_refused_before_anything_is_created(
        fakes: Fakes) -> None:
    fake_identity(fakes.monkeypatch)
    fakes.monkeypatch.setenv("FAKE_LINKERD_VERSION", "edge-25.10.7")
    with pytest.raises(TargetError) as exc, KindTarget(fakes.settings(), Profile("2.19")).open():
        pytest.fail("opened")
    msg = one_sentence(exc)
    assert "--gateway-api-crds" in msg
    assert "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/" \
           "standard-install.yaml" in msg
    created_nothing(fakes)


# --- kubeconfig target ----------------------------------------------------------------------

def test_kubeconfig_without_a_context_refuses_and_runs_nothing(fakes: Fakes) -> None:
    target = KubeconfigTarget(fakes.settings(prober_image="r.example/prober:1"), Profile("2.11"))
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert one_sentence(exc) == ("the kubeconfig target needs --kube-context naming the "
                                 "cluster to test, so that no cluster is used by accident")
    assert fakes.calls() == []


def test_kubeconfig_without_a_prober_image_refuses(fakes: Fakes) -> None:
    target = KubeconfigTarget(fakes.settings(kube_context="prod"), Profile("2.11"))
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert "--prober-image" in one_sentence(exc)
    assert fakes.calls() == []


def test_kubeconfig_refuses_a_cluster_running_another_linkerd(fakes: Fakes) -> None:
    fakes.monkeypatch.setenv("FAKE_LINKERD_VERSION", "stable-2.11.5")
    fakes.monkeypatch.setenv("FAKE_LINKERD_SERVER_VERSION", "stable-2.14.10")
    target = KubeconfigTarget(fakes.settings(kube_context="dev", prober_image="p:1"),
                              Profile("2.11"))
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert one_sentence(exc) == ("Linkerd installed in context dev is stable-2.14.10 but "
                                 "--linkerd-version 2.11 needs stable-2.11.x")
    assert "linkerd --context dev version --short" in fakes.commands()
    created_nothing(fakes)


def test_kubeconfig_refuses_a_cluster_without_linkerd(fakes: Fakes) -> None:
    fakes.monkeypatch.setenv("FAKE_LINKERD_SERVER_VERSION", "")
    target = KubeconfigTarget(fakes.settings(kube_context="dev", prober_image="p:1"),
                              Profile("2.11"))
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert "is Linkerd installed in that cluster?" in one_sentence(exc)


@pytest.mark.parametrize("namespace", ["emojivoto", "bad"])
def test_kubeconfig_refuses_namespaces_it_did_not_create(fakes: Fakes, namespace: str) -> None:
    fakes.set_state(namespaces={namespace: {"team": "payments"}})
    target = KubeconfigTarget(fakes.settings(kube_context="dev", prober_image="p:1"),
                              Profile("2.11"))
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert one_sentence(exc).startswith(f"namespace {namespace} already exists and was not "
                                        "created by a conformance run")
    created_nothing(fakes)
    assert not any(c.startswith("kubectl --context dev delete") for c in fakes.commands())
    assert fakes.state()["namespaces"] == {namespace: {"team": "payments"}}
