"""Bad input gets one clear sentence and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "conformance", "-p", "no:cacheprovider",
         "--collect-only", "-q", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})})


def _one_sentence(result: subprocess.CompletedProcess[str], needle: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert needle in out, out
    assert "Traceback" not in out, out


@pytest.mark.parametrize(("args", "needle"), [
    (("--target", "minikube"), "--target 'minikube' is not a target: choose one of reference"),
    (("--linkerd-version", "2.99"), "--linkerd-version '2.99' is not modelled"),
    (("--timeout", "hold=soon"), "timeout hold='soon' is not a number of seconds"),
    (("--timeout", "patience=3"), "unknown timeout 'patience'"),
    (("--timeout", "hold"), "must look like NAME=SECONDS"),
    (("--reference-fault", "gremlins"), "--reference-fault 'gremlins' is not a fault"),
    (("--reference-propagation-delay", "fast"), "must be a number of seconds"),
], ids=["target", "version", "timeout-nan", "timeout-unknown", "timeout-shape", "fault",
        "delay"])
def test_bad_option_is_one_sentence(args: tuple[str, ...], needle: str) -> None:
    _one_sentence(_run(*args), needle)


@pytest.mark.parametrize(("release", "semantics"), [
    ("stable-2.14.10", "2.14"), ("edge-24.8.2", "2.16"), ("enterprise-2.16.1", "2.16"),
    ("edge-26.7.1", "2.20")])
def test_a_release_name_chooses_its_semantics_and_says_so(release: str, semantics: str) -> None:
    """`--linkerd-version` takes what `linkerd version` prints."""
    done = _run("--linkerd-version", release, "-k", "before_lockdown_every_client")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (f"--linkerd-version {release} carries the semantics of Linkerd {semantics}"
            in done.stderr)


def test_an_early_edge_release_cannot_be_told_apart_and_is_refused() -> None:
    _one_sentence(_run("--linkerd-version", "edge-23.1.1"), "cannot be told apart")


def test_malformed_timeouts_file_is_one_sentence(tmp_path: Path) -> None:
    f = tmp_path / "timeouts.yaml"
    f.write_text("hold: [1, 2\n")
    _one_sentence(_run("--timeouts-file", str(f)), "is not valid YAML")


def test_malformed_manifest_is_one_sentence(tmp_path: Path) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    (tmp_path / "manifests" / "emojivoto.yml").write_text("kind: Namespace\n  name: [oops\n")
    result = _run(env={"LINKERD_CONFORMANCE_MANIFESTS": str(tmp_path / "manifests")})
    _one_sentence(result, "emojivoto.yml")


# --- the cluster targets: refused before anything is created ---------------------------------

def _cluster_run(tmp_path: Path, *args: str, version: str = "2.11",
                 linkerd: str = "stable-2.11.5", kubectl: str = "v1.27.16",
                 installed: bool = False) -> tuple[subprocess.CompletedProcess[str], dict]:
    """`pytest -m conformance --target ...` as a user runs it, with the fake tools of a
    cluster double first on PATH; returns the run and the double's state afterwards."""
    from double.cluster import ClusterDouble
    from double.fakes import fake_tools_env

    from linkerd_conformance.api import Profile

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with ClusterDouble(Profile(version), linkerd_installed=installed) as double:
        env = fake_tools_env(double, tmp_path, linkerd_version=linkerd, kubectl_version=kubectl)
        double.write_kubeconfig(tmp_path / "kubeconfig", context="double")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "conformance", "-p", "no:cacheprovider",
             "--rootdir", str(REPO), str(REPO / "suites"), "--linkerd-version", version,
             *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        state = double.read_state()
    state["_left_behind"] = sorted(p.name for p in cwd.iterdir())
    return done, state


def _refused(done: subprocess.CompletedProcess[str], state: dict, needle: str) -> None:
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    [line] = [ln for ln in out.splitlines() if ln.startswith("ERROR: ")]
    assert needle in line, out
    assert "Traceback" not in out, out
    assert state["clusters"] == {} and state["loaded"] == {} and state["images"] == [], state
    assert state["_left_behind"] == [], "the run left files behind"


def test_kind_with_an_unsupported_node_image_is_one_sentence(tmp_path: Path) -> None:
    done, state = _cluster_run(tmp_path, "--target", "kind", "--kind-image",
                               "kindest/node:v1.36.1")
    _refused(done, state, "Linkerd 2.11 supports Kubernetes 1.17–1.23 but the cluster runs "
                          "v1.36.1: create it with --kind-image kindest/node:v1.23.17@sha256:")


def test_kind_with_a_kubectl_too_new_for_2_11_is_one_sentence(tmp_path: Path) -> None:
    done, state = _cluster_run(tmp_path, "--target", "kind", kubectl="v1.32.0")
    _refused(done, state, "which kubectl 1.32 (")


def test_kind_with_a_cli_of_another_version_is_one_sentence(tmp_path: Path) -> None:
    done, state = _cluster_run(tmp_path, "--target", "kind", linkerd="stable-2.12.6")
    _refused(done, state, "The linkerd CLI is stable-2.12.6 but --linkerd-version 2.11 needs "
                          "stable-2.11.x")


def test_kubeconfig_with_a_wrong_context_is_one_sentence(tmp_path: Path) -> None:
    done, state = _cluster_run(tmp_path, "--target", "kubeconfig", "--kube-context", "nope",
                               "--kubeconfig", str(tmp_path / "kubeconfig"), "--prober-image",
                               "p:1", installed=True)
    _refused(done, state, "--kube-context nope is not a context of kubeconfig")
    assert "(it has: double)" in done.stdout + done.stderr


@pytest.mark.parametrize("where", ["proc", "read-only"])
def test_kind_with_an_unwritable_kubeconfig_is_one_sentence(tmp_path: Path, where: str) -> None:
    if where == "proc":
        kubeconfig = "/proc/nope/kubeconfig"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: a read-only directory is writable")
        kubeconfig = str(ro / "kubeconfig")
    done, state = _cluster_run(tmp_path, "--target", "kind", "--kubeconfig", kubeconfig)
    _refused(done, state, f"--kubeconfig {kubeconfig}")


@pytest.mark.parametrize(("text", "args", "needle"), [
    ("x: [gremlins]\n", (), "'gremlins' is not a fault"),
    ("x: named-port-unresolved\n", (), "must map check node ids to lists of fault names"),
    ("x: [named-port-unresolved]\n", ("--target", "kubeconfig"),
     "--reference-fault-plan only applies to --target reference")],
    ids=["unknown-fault", "not-a-list", "cluster-target"])
def test_a_bad_fault_plan_is_one_sentence(tmp_path: Path, text: str, args: tuple[str, ...],
                                          needle: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    _one_sentence(_run("--reference-fault-plan", str(plan), *args), needle)
