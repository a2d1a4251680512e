"""Prerequisites of the cluster targets, against the fake tools: found, verified, refused in
one sentence, with nothing created in the double (no cluster, no image, no namespace)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from double.fakes import bin_dir
from test_targets_double import PREBUILT, Lab, LabFactory, lab_factory

from linkerd_conformance.api import Profile, TargetError
from linkerd_conformance.targets import tools
from linkerd_conformance.targets.kube import failure_reason


@pytest.fixture
def make_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabFactory]:
    yield from lab_factory(tmp_path, monkeypatch)


def one_sentence(exc: pytest.ExceptionInfo[TargetError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert msg.count(". ") == 0, msg  # one sentence: no second one after a full stop
    return msg


def created_nothing(lab: Lab) -> None:
    state = lab.state()
    assert state["clusters"] == {} and state["loaded"] == {}
    assert state["images"] == [PREBUILT]
    assert not lab.kubeconfig.exists()
    assert lab.files_left() == []


# --- finding tools --------------------------------------------------------------------------

def test_tools_are_found_on_path_as_absolute_paths(make_lab: LabFactory) -> None:
    lab = make_lab("2.11")
    found = tools.find_tools(tools.TOOL_NAMES)
    assert found.kubectl == os.path.join(lab.path, "kubectl")


def test_an_explicit_path_wins_and_must_be_executable(make_lab: LabFactory,
                                                      tmp_path: Path) -> None:
    lab = make_lab("2.11")
    assert tools.find_tool("kind", f"{lab.path}/kind", path="/nonexistent") == f"{lab.path}/kind"
    with pytest.raises(TargetError) as exc:
        tools.find_tool("kind", str(tmp_path / "no-kind"))
    assert one_sentence(exc).startswith("--kind-bin ")


@pytest.mark.parametrize("missing", ["kind", "kubectl", "linkerd", "docker"])
def test_a_missing_tool_refuses_the_kind_target_before_anything_is_created(
        make_lab: LabFactory, monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    lab = make_lab("2.11")
    monkeypatch.setenv("PATH", bin_dir(lab.tmp, tuple(
        t for t in ("kind", "kubectl", "linkerd", "docker") if t != missing)))
    with pytest.raises(TargetError) as exc, lab.kind(prober_image=PREBUILT).open():
        pytest.fail("the target opened without " + missing)
    msg = one_sentence(exc)
    assert msg.startswith(f"{missing} was not found on PATH")
    assert f"--{missing}-bin" in msg
    created_nothing(lab)


def test_docker_down_refuses_with_the_documented_sentence_and_creates_nothing(
        make_lab: LabFactory) -> None:
    lab = make_lab("2.11", state={"docker_down": True})
    with pytest.raises(TargetError) as exc, lab.kind().open():
        pytest.fail("opened")
    assert str(exc.value) == tools.DOCKER_DOWN
    created_nothing(lab)


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
    ("edge-25.9.4", "2.18", True),
    ("edge-25.10.7", "2.19", True),
    ("edge-25.10.7", "2.18", False),
    ("edge-26.6.3", "2.20", True),
    ("edge-26.8.3", "2.20", True),
    ("enterprise-2.15.3", "2.15", True),
    ("enterprise-2.15.3", "2.16", False),
])
def test_release_names_map_to_versions_per_the_version_map(release: str, version: str,
                                                           ok: bool) -> None:
    assert tools.release_matches(release, Profile(version)) is ok


def test_a_cli_of_another_version_is_refused_naming_both(make_lab: LabFactory) -> None:
    lab = make_lab("2.11", linkerd_version="stable-2.12.1")
    with pytest.raises(TargetError) as exc, lab.kind().open():
        pytest.fail("opened")
    assert one_sentence(exc) == ("The linkerd CLI is stable-2.12.1 but --linkerd-version 2.11 "
                                 "needs stable-2.11.x")
    created_nothing(lab)


def test_an_edge_cli_for_2_16_names_the_edge_range() -> None:
    with pytest.raises(TargetError) as exc:
        tools.check_release("edge-25.4.4", Profile("2.16"))
    assert one_sentence(exc) == ("The linkerd CLI is edge-25.4.4 but --linkerd-version 2.16 "
                                 "needs edge-24.8.2 up to, not including, edge-24.11.8 or "
                                 "enterprise-2.16.x")


def test_a_cli_that_reports_no_release_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "linkerd"
    broken.write_text("#!/bin/sh\necho 'boom: no config' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(TargetError) as exc:
        tools.linkerd_client_release(str(broken))
    assert one_sentence(exc).endswith("boom: no config")


def test_2_19_without_gateway_api_crds_is_refused_before_anything_is_created(
        make_lab: LabFactory) -> None:
    lab = make_lab("2.19")
    with pytest.raises(TargetError) as exc, lab.kind(gateway_api_crds=None).open():
        pytest.fail("opened")
    msg = one_sentence(exc)
    assert "--gateway-api-crds" in msg
    assert "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/" \
           "standard-install.yaml" in msg
    created_nothing(lab)


# --- failures in the tools' own words -------------------------------------------------------

def test_failure_reason_skips_warnings_and_progress_for_the_error() -> None:
    assert failure_reason("", "Warning: policy.linkerd.io/v1beta1 Server is deprecated\n"
                          "Error from server: denied\n", 1) == "Error from server: denied"
    assert failure_reason("", '#0 building with "default" instance\n#5 [2/3] RUN x\n'
                          "ERROR: failed to solve: boom\n", 1) == "ERROR: failed to solve: boom"
    table = ("kubernetes-api\n--------------\n√ can initialize the client\n\n"
             "pre-kubernetes-setup\n--------------------\n"
             "× control plane namespace does not already exist\n"
             '    The "linkerd" namespace already exists\n'
             "    see https://linkerd.io/2.11/checks/#pre-ns for hints\n\n"
             "Status check results are ×\n")
    assert failure_reason(table, "", 1) == ('× control plane namespace does not already exist '
                                            'The "linkerd" namespace already exists')
    assert failure_reason("", "", 3) == "exit 3"


# --- kubeconfig target ----------------------------------------------------------------------

def test_kubeconfig_without_a_context_refuses_and_runs_nothing(make_lab: LabFactory) -> None:
    lab = make_lab("2.11", linkerd_installed=True)
    target = lab.kubeconfig_target(kube_context=None)
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert one_sentence(exc) == ("the kubeconfig target needs --kube-context naming the "
                                 "cluster to test, so that no cluster is used by accident")


def test_kubeconfig_without_a_prober_image_refuses(make_lab: LabFactory) -> None:
    lab = make_lab("2.11", linkerd_installed=True)
    with pytest.raises(TargetError) as exc, lab.kubeconfig_target(prober_image=None).open():
        pytest.fail("opened")
    assert "--prober-image" in one_sentence(exc)


def test_kubeconfig_refuses_a_cluster_running_another_linkerd(make_lab: LabFactory) -> None:
    lab = make_lab("2.11", linkerd_installed=True, linkerd_version="stable-2.14.10")
    lab.update_state(linkerd_version="stable-2.11.5")  # the CLI is 2.11, the cluster 2.14
    with pytest.raises(TargetError) as exc, lab.kubeconfig_target().open():
        pytest.fail("opened")
    assert one_sentence(exc) == ("Linkerd installed in context double is stable-2.14.10 but "
                                 "--linkerd-version 2.11 needs stable-2.11.x")


def test_kubeconfig_refuses_a_cluster_without_linkerd(make_lab: LabFactory) -> None:
    lab = make_lab("2.11")
    with pytest.raises(TargetError) as exc, lab.kubeconfig_target().open():
        pytest.fail("opened")
    assert one_sentence(exc).endswith("it reported no server version: is Linkerd installed in "
                                      "that cluster?")


@pytest.mark.parametrize("namespace", ["emojivoto", "bad"])
def test_kubeconfig_refuses_namespaces_it_did_not_create(make_lab: LabFactory,
                                                         namespace: str) -> None:
    lab = make_lab("2.11", linkerd_installed=True)
    lab.double.apiserver.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": namespace, "labels": {"team": "payments"}}})
    target = lab.kubeconfig_target()
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert one_sentence(exc).startswith(f"namespace {namespace} already exists and was not "
                                        "created by a conformance run")
    assert target.api is not None
    [ns] = [n for n in target.api.namespaces() if n["metadata"]["name"] == namespace]
    assert ns["metadata"]["labels"]["team"] == "payments"  # untouched, not deleted
