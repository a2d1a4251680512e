"""One test per finding of the cluster review (research/cluster-review.md) that was fixed.

Each test is named after its finding and drives the cluster targets against the cluster
double (tests/double) with the fake tools, whose behaviour is the real tools' (cited in
tests/double/behaviours.py). The comment on each test says which line of the fix it depends
on: reverting that line makes the test fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_targets_double import (
    CLI,
    GATEWAY_API_CRDS,
    NEW_KUBECTL,
    OLD_KUBECTL,
    ROOT,
    LabFactory,
    lab_factory,
)

from linkerd_conformance import manifests
from linkerd_conformance.api import Client, Profile, TargetError
from linkerd_conformance.targets import releases
from linkerd_conformance.targets.images import PROBER_DOCKERFILE, PROBER_IMAGE


@pytest.fixture
def make_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabFactory]:
    yield from lab_factory(tmp_path, monkeypatch)


WEBHOOK = 'admission webhook "linkerd-policy-validator.linkerd.io" denied the request: '


def one_sentence(exc: pytest.ExceptionInfo[TargetError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


def pytest_run(cwd: Path, env: dict[str, str] | None, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "--rootdir", str(ROOT), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


# --- A1 ------------------------------------------------------------------------------------

def test_a1_the_prober_image_builds_and_an_eager_package_init_is_refused_with_its_error(
        make_lab: LabFactory, tmp_path: Path) -> None:
    """The fake docker copies only the Dockerfile's COPY set and runs its `python -c import`
    with only what it pip-installs.

    Depends on `fixtures/linkerd_conformance/__init__.py` importing `lab`, `manifests` and
    `workshop` lazily (`__getattr__`, `_LAZY`), and on `KindTarget._build_prober` reporting
    `failure_reason('', err, code)` (BuildKit's `ERROR:` line) rather than `first_line(err)`.
    """
    lab = make_lab("2.11")
    with lab.kind().open():
        assert PROBER_IMAGE in lab.state()["images"]
        assert lab.state()["loaded"] == {"conformance": [PROBER_IMAGE]}

    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "fixtures", copy / "fixtures",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / ".dockerignore", copy / ".dockerignore")
    init = copy / "fixtures" / "linkerd_conformance" / "__init__.py"
    future = "from __future__ import annotations\n"
    assert future in init.read_text()
    init.write_text(init.read_text().replace(
        future, future + "import pytest  # noqa: F401  (eager, as before the fix)\n", 1))
    assert (copy / PROBER_DOCKERFILE).is_file()
    with pytest.raises(TargetError) as exc, lab.kind(rootdir=str(copy),
                                                     cluster_name="eager").open():
        pytest.fail("the target opened although the prober image cannot build")
    first = str(exc.value).splitlines()[0]
    assert first.startswith("building the prober image failed: ERROR: failed to solve: process "
                            '"/bin/sh -c python -c \\"import linkerd_conformance.prober'), first
    assert first.endswith("did not complete successfully: exit code: 1")
    assert "#0 building with" not in first
    assert "ModuleNotFoundError: No module named 'pytest'" in str(exc.value)  # the tail
    assert "eager" not in lab.clusters()  # created, then deleted by the cleanup


# --- A2 ------------------------------------------------------------------------------------

def test_a2_without_kind_image_the_node_is_the_one_chosen_for_the_linkerd_version(
        make_lab: LabFactory) -> None:
    """Depends on `KindTarget.node_image` (`compat(self.profile).node_image.image`) and its
    `--image=` in `_create_cluster`: without it kind v0.32 creates kindest/node:v1.36.1, the
    2.11 install's batch/v1beta1 CronJob has no mapping and `linkerd check` fails."""
    lab = make_lab("2.11", kubernetes_version="v1.36.1")
    expected = releases.compat(Profile("2.11")).node_image.image
    assert expected.startswith("kindest/node:v1.23.17@sha256:")
    with lab.kind(prober_image="p:1").open() as mesh:
        assert lab.state()["clusters"]["conformance"] == {"node_image": expected,
                                                          "kubernetes_version": "v1.23.17"}
        assert mesh.api.version() == "v1.23.17"
        assert mesh.api.config_map("linkerd", "linkerd-config") is not None


def test_a2_a_kind_image_outside_the_range_is_refused_before_anything_is_created(
        make_lab: LabFactory) -> None:
    """Depends on `KindTarget.check`'s `check_kubernetes_version(..., node_image_version(
    s.kind_image))`, before `kind get clusters` and any create."""
    lab = make_lab("2.11")
    target = lab.kind(kind_image="kindest/node:v1.36.1", prober_image="p:1")
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert one_sentence(exc) == (
        "Linkerd 2.11 supports Kubernetes 1.17–1.23 but the cluster runs v1.36.1: create it "
        f"with --kind-image {releases.compat(Profile('2.11')).node_image.image}")
    assert lab.clusters() == []
    assert not lab.kubeconfig.exists()


def test_a2_a_cluster_whose_server_is_outside_the_range_is_refused_and_deleted(
        make_lab: LabFactory) -> None:
    """The tag says no version the target can read, the node runs 1.36: refused after the
    cluster exists, from the API server's own /version. Depends on the `_check_server_version`
    action (`check_kubernetes_version(self.profile, self.api.version(), ...)`)."""
    lab = make_lab("2.11", kubernetes_version="v1.36.1")
    target = lab.kind(kind_image="registry.example/kind-node:v1.36.1-custom", prober_image="p:1")
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    msg = one_sentence(exc)
    assert msg.startswith("Linkerd 2.11 supports Kubernetes 1.17–1.23 but the cluster runs "
                          "v1.36.1: create it with --kind-image kindest/node:v1.23.17@sha256:")
    assert lab.double.kubernetes_version == "v1.36.1"  # it was created ...
    assert lab.clusters() == []  # ... and deleted
    assert lab.state()["loaded"] == {}  # nothing was loaded nor installed
    assert lab.double.apiserver.apply  # the double is still up
    assert target.api is not None and target.api.config_map("linkerd", "linkerd-config") is None


# --- A3 ------------------------------------------------------------------------------------

def test_a3_a_kubectl_without_version_short_is_refused_for_2_11(make_lab: LabFactory) -> None:
    """Depends on `check_kubectl_for(self.profile, self.tools.path("kubectl"))` in
    `KindTarget.check` (KUBECTL_WITHOUT_SHORT = 1.28)."""
    lab = make_lab("2.11", kubectl_version=NEW_KUBECTL)
    with pytest.raises(TargetError) as exc, lab.kind(prober_image="p:1").open():
        pytest.fail("opened")
    msg = one_sentence(exc)
    assert msg.startswith("Linkerd 2.11's `linkerd check` runs `kubectl version --client "
                          "--short`, which kubectl 1.32 (")
    assert msg.endswith("no longer has (removed in 1.28): pass --kubectl-bin with a kubectl "
                        "1.27 or older")
    assert lab.clusters() == []


def test_a3_the_kubectl_bin_is_first_on_path_for_2_11s_linkerd_check(
        make_lab: LabFactory) -> None:
    """PATH's kubectl is 1.32; `--kubectl-bin` is a 1.27. 2.11's `linkerd check` runs `kubectl
    version --client --short` from PATH, so it passes only because `Kube.env()` puts
    `os.path.dirname(self.tools.kubectl)` first on PATH (the A3 fix in kube.py)."""
    lab = make_lab("2.11", kubectl_version=NEW_KUBECTL)
    old_state = lab.tmp / "kubectl-1.27.json"
    old_state.write_text(json.dumps({"kubectl_version": OLD_KUBECTL}))
    kubectl = lab.recorder("kubectl", state=old_state)
    with lab.kind(kubectl_bin=kubectl, prober_image="p:1").open() as mesh:
        assert mesh.api.config_map("linkerd", "linkerd-config") is not None
    # the check's own call (`-o json`) and `linkerd check`'s (`--short`, 3 checks) both ran it
    calls = lab.calls(kubectl)
    assert ["version", "--client", "-o", "json"] in calls
    assert calls.count(["version", "--client", "--short"]) == 2  # check --pre, check --wait


# --- A4 ------------------------------------------------------------------------------------

def test_a4_a_kept_cluster_is_reused_without_reinstalling(make_lab: LabFactory) -> None:
    """Depends on `_install_or_verify`: `if self._linkerd_installed(): ... linkerd version
    --short ... linkerd check; return`, and on writing the identity files only when
    `ca.crt` is missing. The fake `linkerd check --pre` and `install` refuse on an installed
    cluster (behaviours linkerd-check-pre-existing-ns, linkerd-install-config-exists)."""
    lab = make_lab("2.16")
    linkerd = lab.recorder("linkerd")
    first = lab.kind(keep_cluster=True, prober_image="p:1", linkerd_bin=linkerd)
    with first.open():
        pass
    assert lab.clusters() == ["conformance"]
    anchor = Path(first.identity_dir, "ca.crt").read_text()
    before = len(lab.calls(linkerd))

    second = lab.kind(keep_cluster=True, prober_image="p:1", linkerd_bin=linkerd)
    with second.open() as mesh:
        assert second.preexisting
        mesh.apply(*manifests.load("emojivoto.yml")[:1])  # the mesh works on the kept cluster
    again = [c for c in lab.calls(linkerd)[before:] if c[:1] != ["version"] or "--client"
             not in c]
    assert again == [["version", "--short"], ["check"]]
    assert not any(c[:1] == ["install"] for c in lab.calls(linkerd)[before:])
    assert Path(second.identity_dir, "ca.crt").read_text() == anchor
    assert lab.clusters() == ["conformance"]


# --- A5 ------------------------------------------------------------------------------------

def test_a5_an_admission_refusal_is_the_webhooks_words_despite_a_deprecation_warning(
        make_lab: LabFactory) -> None:
    """On 2.16 `policy.linkerd.io/v1beta1` Server is deprecated: the API server sends a
    `Warning: 299` header with the refusal. Depends on `KubeApi.apply` raising
    `TargetError(status_message(exc))` (the Status message) instead of the first stderr
    line of kubectl, where the warning comes first."""
    lab = make_lab("2.16", linkerd_installed=True)
    with lab.kubeconfig_target().open() as mesh:
        mesh.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "emojivoto"}})
        server = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Server",
                  "metadata": {"name": "web-http", "namespace": "emojivoto"},
                  "spec": {"podSelector": {"matchLabels": {"app": "web-svc"}}, "port": "http",
                           "proxyProtocol": "invalid"}}
        with pytest.raises(TargetError) as exc:
            mesh.apply(server)
    msg = str(exc.value)
    assert msg.startswith(WEBHOOK), msg
    assert "unknown variant" in msg
    assert "deprecated" not in msg


# --- B1 ------------------------------------------------------------------------------------

def test_b1_the_image_registry_reaches_linkerd_install_and_the_control_plane(
        make_lab: LabFactory) -> None:
    """Depends on `registry_flags` (`--registry <registry>/linkerd`) in `install_steps`
    and `registry=s.image_registry` in `KindTarget.install_steps`."""
    lab = make_lab("2.16")
    target = lab.kind(image_registry="mirror.example:5000", prober_image="p:1")
    lab.update_state(images=["mirror.example:5000/p:1"])
    install = [s for s in target.install_steps() if s.argv[:2] == ("linkerd", "install")
               and "--crds" not in s.argv][0]
    assert " --registry mirror.example:5000/linkerd" in str(install)
    with target.open() as mesh:
        images = sorted({c["image"] for d in mesh.api.deployments("linkerd")
                         for c in pod_containers(d["spec"]["template"]["spec"])})
        assert lab.state()["loaded"] == {"conformance": ["mirror.example:5000/p:1"]}
    assert images == ["mirror.example:5000/linkerd/controller:edge-24.8.2",
                      "mirror.example:5000/linkerd/policy-controller:edge-24.8.2",
                      "mirror.example:5000/linkerd/proxy-init:v2.4.1",
                      "mirror.example:5000/linkerd/proxy:edge-24.8.2"]


def pod_containers(spec: dict) -> list[dict]:
    return [*(spec.get("initContainers") or []), *spec["containers"]]


#: What `--list-images` prints for Linkerd's own images from the chart table: the release's
#: real tags (no `debug`, no edge-26.6.0, proxy-init tagged, no policy-controller from 2.19).
CHART_IMAGES = {
    "2.11": ["cr.l5d.io/linkerd/proxy:stable-2.11.5", "cr.l5d.io/linkerd/controller:stable-2.11.5",
             "cr.l5d.io/linkerd/policy-controller:stable-2.11.5",
             "cr.l5d.io/linkerd/proxy-init:v1.5.3"],
    "2.16": ["cr.l5d.io/linkerd/proxy:edge-24.8.2", "cr.l5d.io/linkerd/controller:edge-24.8.2",
             "cr.l5d.io/linkerd/policy-controller:edge-24.8.2",
             "cr.l5d.io/linkerd/proxy-init:v2.4.1"],
    "2.20": ["cr.l5d.io/linkerd/proxy:edge-26.7.1", "cr.l5d.io/linkerd/controller:edge-26.7.1"],
}


def _linkerd_lines(out: str) -> list[str]:
    lines = out.splitlines()
    return lines[1:lines.index("# the workloads (manifests/)")]


@pytest.mark.parametrize("version", ["2.11", "2.16", "2.20"])
def test_b1_list_images_has_the_releases_tags_or_the_clis_own_install(
        tmp_path: Path, version: str) -> None:
    """Depends on `image_list` using `releases.linkerd_images(profile, release)` (the chart
    table per release) and, with a CLI of that version, `linkerd install --ignore-cluster`
    (`images_from_install_output`)."""
    import os

    from double.fakes import bin_dir

    assert releases.linkerd_images(Profile(version)) == CHART_IMAGES[version]
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    env["PATH"] = bin_dir(tmp_path, ())  # no linkerd: the chart table
    done = pytest_run(tmp_path, env, "--list-images", "--linkerd-version", version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == (
        f"# Linkerd {version}: the chart of {releases.default_release(Profile(version))} (no "
        "linkerd CLI of that version found to render `linkerd install --ignore-cluster`)")
    assert _linkerd_lines(done.stdout) == CHART_IMAGES[version]

    state = tmp_path / "state.json"
    cli = {"2.16": "edge-24.8.5"}.get(version, CLI[version])  # 2.16: a later 2.16 edge
    state.write_text(json.dumps({"linkerd_version": cli}))
    env.update(PATH=bin_dir(tmp_path, ("linkerd",)), CLUSTER_DOUBLE_STATE=str(state))
    done = pytest_run(tmp_path, env, "--list-images", "--linkerd-version", version,
                      "--image-registry", "mirror.example:5000")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == (f"# Linkerd {version}: `linkerd install "
                                           f"--ignore-cluster` of {cli}")
    chart = [i.replace("cr.l5d.io", "mirror.example:5000")
             .replace(releases.default_release(Profile(version)), cli)
             for i in CHART_IMAGES[version]]
    assert sorted(_linkerd_lines(done.stdout)) == sorted(chart)


# --- B2 ------------------------------------------------------------------------------------

def test_b2_a_prober_image_and_a_registry_give_probers_and_lab_servers_one_image(
        make_lab: LabFactory) -> None:
    """Depends on `_own_namespaces` replacing the prober (`use_prober_image`) before the
    registry move, with `keep=(self.prober_image,)`."""
    lab = make_lab("2.11", linkerd_installed=True)
    target = lab.kubeconfig_target(prober_image="team/prober:abc",
                                   image_registry="mirror.example:5000")
    with target.open() as mesh:
        mesh.apply(*manifests.load("lab.yml"))
        pod = mesh.ensure_prober(Client("lab", "default", meshed=True))
        [prober] = [c["image"] for c in mesh.api.pod("lab", pod)["spec"]["containers"]
                    if c["name"] == "prober"]
        servers = {c["image"] for d in mesh.api.deployments("lab")
                   for c in d["spec"]["template"]["spec"]["containers"]}
    assert prober == "mirror.example:5000/team/prober:abc"
    assert servers == {"mirror.example:5000/team/prober:abc"}


# --- B3 ------------------------------------------------------------------------------------

def test_b3_an_enterprise_cli_is_accepted_for_its_version(make_lab: LabFactory) -> None:
    """Depends on `enterprise-2\\.\\d+\\.\\d+` in `releases.RELEASE_PATTERN` and
    `parse_release`."""
    lab = make_lab("2.16", linkerd_version="enterprise-2.16.1")
    target = lab.kind(prober_image="p:1")
    target.check()
    assert target.release == "enterprise-2.16.1"
    assert lab.clusters() == []


def test_b3_an_edge_that_stopped_bundling_gateway_api_needs_the_crds_file(
        make_lab: LabFactory) -> None:
    """edge-25.9.4 carries 2.18 semantics but no longer installs the Gateway API. Depends on
    `releases.gateway_api_required` deciding by the edge (GATEWAY_API_NOT_BUNDLED_FROM) and on
    `check_gateway_api_file(self.profile, s.gateway_api_crds, self.release)` in `check`."""
    lab = make_lab("2.18", linkerd_version="edge-25.9.4", kubernetes_version="v1.32.11")
    with pytest.raises(TargetError) as exc, lab.kind(prober_image="p:1").open():
        pytest.fail("opened")
    assert one_sentence(exc).startswith("Linkerd edge-25.9.4 needs the Gateway API CRDs "
                                        "installed first")
    assert "--gateway-api-crds" in str(exc.value)
    assert lab.clusters() == []
    with lab.kind(prober_image="p:1", gateway_api_crds=str(GATEWAY_API_CRDS)).open() as mesh:
        assert mesh.api.config_map("linkerd", "linkerd-config") is not None
        assert mesh.api.list_kind("gateway.networking.k8s.io/v1", "HTTPRoute", "default") == []


# --- B4 ------------------------------------------------------------------------------------

def test_b4_a_failing_linkerd_check_reports_its_cross_line(make_lab: LabFactory) -> None:
    """A `linkerd` namespace left over: `check --pre` fails. Depends on `Kube.run` using
    `failure_reason(stdout, stderr, code)` (`_failed_checks`: the `×` line and its detail)."""
    lab = make_lab("2.16")
    lab.double.apiserver.apply({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": "linkerd"}})
    with pytest.raises(TargetError) as exc, lab.kind(prober_image="p:1").open():
        pytest.fail("opened")
    assert one_sentence(exc) == ('`linkerd check --pre` failed: × control plane namespace does '
                                 'not already exist The "linkerd" namespace already exists')
    assert lab.clusters() == []


def test_b4_a_failing_kind_create_reports_kinds_error_line(make_lab: LabFactory) -> None:
    """Depends on `_create_cluster` running `kind create cluster` itself with its output kept
    (`run_quiet` and `_tail(err or out)`), where pytest-kind would only say `exit 1`."""
    lab = make_lab("2.16")
    with pytest.raises(TargetError) as exc, lab.kind(kind_image="kindest/node:latest",
                                                     prober_image="p:1").open():
        pytest.fail("opened")
    lines = str(exc.value).splitlines()
    assert lines[0] == "`kind create cluster --name=conformance` failed:"
    assert lines[-1].strip() == ("ERROR: failed to create cluster: could not read the "
                                 "Kubernetes version of kindest/node:latest")
    assert lab.clusters() == []


def test_b4_a_failing_docker_build_reports_buildkits_error_line(
        make_lab: LabFactory, tmp_path: Path) -> None:
    """A COPY source missing from the context. Depends on `_build_prober` reporting
    `failure_reason('', err, code)`: BuildKit's last `ERROR:` line, not its first line."""
    lab = make_lab("2.16")
    root = tmp_path / "root"
    dockerfile = root / PROBER_DOCKERFILE
    dockerfile.parent.mkdir(parents=True)
    dockerfile.write_text("FROM python:3.11-slim\nCOPY missing.py /app/\n")
    with pytest.raises(TargetError) as exc, lab.kind(rootdir=str(root)).open():
        pytest.fail("opened")
    first = str(exc.value).splitlines()[0]
    assert first == ('building the prober image failed: ERROR: failed to solve: failed to '
                     'compute cache key: "/missing.py": not found')
    assert lab.clusters() == []


# --- C -------------------------------------------------------------------------------------

def test_c_xdist_workers_are_refused_for_a_cluster_target(tmp_path: Path) -> None:
    """Depends on the `numprocesses` check in the plugin's `pytest_configure`."""
    done = pytest_run(tmp_path, None, "-m", "conformance", "-n", "2", "--target", "kind",
                      str(ROOT / "suites"))
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert ("ERROR: --target kind runs every check against one cluster, so it cannot be split "
            "across pytest-xdist workers: drop -n 2") in out
    assert "Traceback" not in out


def test_c_a_kube_context_not_in_the_kubeconfig_is_named_with_the_contexts(
        make_lab: LabFactory) -> None:
    """Depends on `KubeconfigTarget.check` comparing `--kube-context` with
    `kubeconfig_contexts(s.kubeconfig)` before running `linkerd --context`."""
    lab = make_lab("2.16", linkerd_installed=True)
    target = lab.kubeconfig_target(context="double", kube_context="nope")
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert one_sentence(exc) == (f"--kube-context nope is not a context of kubeconfig "
                                 f"{lab.tmp / 'kubeconfig'} (it has: double)")


def test_c_linkerd_install_flags_reach_linkerd_install(make_lab: LabFactory) -> None:
    """Depends on `extra_flags=s.install_flags` in `KindTarget.install_steps` and
    `*extra_flags` in `install.install_steps`, with `split_flags` splitting each value."""
    from linkerd_conformance.targets.session import split_flags

    lab = make_lab("2.16")
    linkerd = lab.recorder("linkerd")
    # shell words: Helm's escaped comma survives inside double quotes
    flags = tuple(split_flags(["--set proxyInit.iptablesMode=nft",
                               '--set "clusterNetworks=10.244.0.0/16\\,10.96.0.0/12"']))
    with lab.kind(prober_image="p:1", linkerd_bin=linkerd, install_flags=flags).open() as mesh:
        assert mesh.cluster_networks == ("10.244.0.0/16", "10.96.0.0/12")
    [install] = [c for c in lab.calls(linkerd) if c[:1] == ["install"] and "--crds" not in c]
    assert install[-4:] == ["--set", "proxyInit.iptablesMode=nft",
                            "--set", "clusterNetworks=10.244.0.0/16\\,10.96.0.0/12"]
