"""The Linkerd install flow per version, the kind run around it, the plan and the image list."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_targets_fakes import Fakes, fake_identity, fake_kubeconfig, make_fakes

from linkerd_conformance.api import Profile, TargetError
from linkerd_conformance.targets import images, options
from linkerd_conformance.targets.install import GATEWAY_API_URL, install_steps, render
from linkerd_conformance.targets.kind import KindTarget
from linkerd_conformance.targets.plan import build_plan


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    return make_fakes(tmp_path, monkeypatch)

IDENTITY = ("--identity-trust-anchors-file /c/ca.crt --identity-issuer-certificate-file "
            "/c/issuer.crt --identity-issuer-key-file /c/issuer.key")


# --- the flow per version -------------------------------------------------------------------

def test_2_11_installs_crds_with_the_control_plane_and_sets_the_default_by_helm_value() -> None:
    assert render(install_steps(Profile("2.11"), "/c")) == [
        "linkerd check --pre",
        f"linkerd install {IDENTITY} --set policyController.defaultAllowPolicy="
        "all-unauthenticated | kubectl apply -f -",
        "linkerd check --wait 300s",
    ]


def test_2_12_installs_crds_first_and_uses_the_default_inbound_policy_flag() -> None:
    assert render(install_steps(Profile("2.12"), "/c", default_policy="deny")) == [
        "linkerd check --pre",
        "linkerd install --crds | kubectl apply -f -",
        f"linkerd install {IDENTITY} --default-inbound-policy deny | kubectl apply -f -",
        "linkerd check --wait 300s",
    ]


def test_2_16_is_the_2_12_flow() -> None:
    assert render(install_steps(Profile("2.16"), "/c", check_wait=90)) == [
        "linkerd check --pre",
        "linkerd install --crds | kubectl apply -f -",
        f"linkerd install {IDENTITY} --default-inbound-policy all-unauthenticated | "
        "kubectl apply -f -",
        "linkerd check --wait 90s",
    ]


@pytest.mark.parametrize("version", ["2.19", "2.20"])
def test_2_19_and_later_install_gateway_api_crds_from_a_local_file_first(
        tmp_path: Path, version: str) -> None:
    crds = tmp_path / "standard-install.yaml"
    crds.write_text("kind: CustomResourceDefinition\n")
    assert render(install_steps(Profile(version), "/c", gateway_api_crds=str(crds))) == [
        "linkerd check --pre",
        f"kubectl apply --server-side -f {crds}",
        "linkerd install --crds | kubectl apply -f -",
        f"linkerd install {IDENTITY} --default-inbound-policy all-unauthenticated | "
        "kubectl apply -f -",
        "linkerd check --wait 300s",
    ]


def test_2_19_names_the_upstream_manifest_when_no_file_is_given(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="pass its path with --gateway-api-crds") as exc:
        install_steps(Profile("2.19"), "/c")
    assert GATEWAY_API_URL in str(exc.value)
    with pytest.raises(TargetError, match="is not a file"):
        install_steps(Profile("2.19"), "/c", gateway_api_crds=str(tmp_path / "nope.yaml"))


def test_2_18_still_gets_gateway_api_from_linkerd_crds() -> None:
    assert not any("gateway" in line for line in render(install_steps(Profile("2.18"), "/c")))


# --- a kind run over the fakes ----------------------------------------------------------------

def kind_run_commands(fakes: Fakes, version: str, release: str, **settings) -> list[str]:
    fake_identity(fakes.monkeypatch)
    fakes.monkeypatch.setenv("FAKE_LINKERD_VERSION", release)
    target = KindTarget(fakes.settings(prober_image="prober:test", **settings), Profile(version))
    with target.open() as mesh:
        assert mesh.name == "kind" and mesh.profile == Profile(version)
        assert fakes.state()["clusters"] == ["linkerd-conformance"]
    return fakes.commands()


def test_a_kind_run_creates_loads_installs_then_deletes_the_cluster(fakes: Fakes) -> None:
    commands = kind_run_commands(fakes, "2.12", "stable-2.12.6")
    kubeconfig = str(Path(".pytest-kind/linkerd-conformance/kubeconfig").absolute())
    ident = str(Path(".pytest-kind/linkerd-conformance/identity").absolute())
    assert commands == [
        "docker info",
        "linkerd version --client --short",
        "kind get clusters",
        "kind get clusters",  # pytest-kind's own reuse check
        f"kind create cluster --name=linkerd-conformance --kubeconfig={kubeconfig}",
        "kind load docker-image --name linkerd-conformance prober:test",
        "linkerd check --pre",
        "linkerd install --crds",
        "kubectl apply -f -",
        f"linkerd install --identity-trust-anchors-file {ident}/ca.crt "
        f"--identity-issuer-certificate-file {ident}/issuer.crt "
        f"--identity-issuer-key-file {ident}/issuer.key --default-inbound-policy "
        "all-unauthenticated",
        "kubectl apply -f -",
        "linkerd check --wait 300s",
        f"kind delete cluster --name=linkerd-conformance --kubeconfig={kubeconfig}",
    ]
    # linkerd and kubectl talk to the new cluster only, through its kubeconfig
    assert all(c["kubeconfig"] == kubeconfig for c in fakes.calls()
               if c["prog"] in ("linkerd", "kubectl") and c["argv"][0] != "version")
    assert fakes.calls("kubectl")[0]["stdin"].startswith("apiVersion: v1")  # the piped install
    assert fakes.state()["clusters"] == []


def test_kind_builds_the_prober_image_unless_one_is_given(fakes: Fakes, tmp_path: Path) -> None:
    dockerfile = tmp_path / images.PROBER_DOCKERFILE
    dockerfile.parent.mkdir(parents=True)
    dockerfile.write_text("FROM python:3.11-slim\n")
    fake_identity(fakes.monkeypatch)
    target = KindTarget(fakes.settings(rootdir=str(tmp_path), cluster_name="n"), Profile("2.11"))
    with target.open():
        pass
    assert f"docker build -t {images.PROBER_IMAGE} -f {dockerfile} {tmp_path}" in fakes.commands()
    assert f"kind load docker-image --name n {images.PROBER_IMAGE}" in fakes.commands()


def test_keep_cluster_keeps_it(fakes: Fakes) -> None:
    commands = kind_run_commands(fakes, "2.11", "stable-2.11.5", keep_cluster=True)
    assert not any("delete" in c for c in commands)
    assert fakes.state()["clusters"] == ["linkerd-conformance"]


def test_a_cluster_that_existed_before_is_reused_and_never_deleted(fakes: Fakes) -> None:
    fakes.set_state(clusters=["linkerd-conformance"])
    kubeconfig = Path(".pytest-kind/linkerd-conformance/kubeconfig")
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text(fake_kubeconfig("linkerd-conformance"))
    commands = kind_run_commands(fakes, "2.11", "stable-2.11.5")
    assert not any(c.startswith(("kind create", "kind delete")) for c in commands)
    assert commands[-1].startswith("kubectl delete namespace -l linkerd-conformance/owned=true,"
                                   "linkerd-conformance/run=")
    assert fakes.state()["clusters"] == ["linkerd-conformance"]


def test_a_cluster_that_existed_before_without_its_kubeconfig_is_refused(fakes: Fakes) -> None:
    fakes.set_state(clusters=["linkerd-conformance"])
    fake_identity(fakes.monkeypatch)
    with pytest.raises(TargetError, match="already exists but its kubeconfig"), \
            KindTarget(fakes.settings(prober_image="p"), Profile("2.11")).open():
        pytest.fail("opened")
    assert fakes.state()["clusters"] == ["linkerd-conformance"]


def test_an_interrupt_during_install_still_deletes_the_cluster(fakes: Fakes) -> None:
    fake_identity(fakes.monkeypatch)
    calls = []

    def interrupted(self, step) -> None:
        calls.append(str(step))
        raise KeyboardInterrupt

    fakes.monkeypatch.setattr(KindTarget, "_run_step", interrupted)
    target = KindTarget(fakes.settings(prober_image="p"), Profile("2.11"))
    with pytest.raises(KeyboardInterrupt), target.open():
        pytest.fail("opened")
    assert calls == ["linkerd check --pre"]
    assert fakes.commands()[-1].startswith("kind delete cluster --name=linkerd-conformance")
    assert fakes.state()["clusters"] == []


def test_a_failing_install_step_is_one_sentence_and_the_cluster_is_deleted(
        fakes: Fakes) -> None:
    fakes.respond("kubectl", ["apply"], rc=1,
                  stderr='error: unable to recognize "STDIN": no matches for kind "Server"\n')
    fake_identity(fakes.monkeypatch)
    target = KindTarget(fakes.settings(prober_image="p"), Profile("2.11"))
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert str(exc.value) == ('`kubectl apply -f -` failed: error: unable to recognize "STDIN": '
                              'no matches for kind "Server"')
    assert fakes.commands()[-1].startswith("kind delete cluster")


# --- plan and images ------------------------------------------------------------------------

def test_the_plan_lists_the_run_in_order_and_runs_nothing(fakes: Fakes) -> None:
    lines = build_plan(fakes.settings(cluster_name="c", kind_image="kindest/node:v1.31.0"),
                       "kind", Profile("2.11"))
    assert fakes.calls() == []
    setup = [line for line in lines if line.startswith("setup: ")]
    assert setup[0].startswith("setup: kind create cluster --name=c --kubeconfig=")
    assert "--image=kindest/node:v1.31.0" in setup[0]
    assert setup[1] == (f"setup: docker build -t {images.PROBER_IMAGE} -f "
                        f"{images.PROBER_DOCKERFILE} .  # in .")
    assert setup[2] == f"setup: kind load docker-image --name c {images.PROBER_IMAGE}"
    assert [s.split(" ", 2)[2] for s in setup[4:]] == render(install_steps(
        Profile("2.11"), str(Path(".pytest-kind/c/identity").absolute())))
    assert lines[-1].startswith("cleanup: kind delete cluster --name=c")
    assert any("exec -n <ns> <prober pod> -c prober -- python -m linkerd_conformance.prober"
               in line for line in lines)


def test_the_2_19_plan_shows_the_missing_gateway_api_file(fakes: Fakes) -> None:
    lines = build_plan(fakes.settings(), "kind", Profile("2.19"))
    assert any(line.endswith("kubectl apply --server-side -f '<--gateway-api-crds>'")
               for line in lines)


def test_the_kubeconfig_plan_says_it_would_refuse_without_a_context(fakes: Fakes) -> None:
    lines = build_plan(fakes.settings(prober_image="p"), "kubeconfig", Profile("2.16"))
    assert lines[1].startswith("# the run would refuse: the kubeconfig target needs "
                               "--kube-context")
    assert not any(line.startswith("setup:") for line in lines)
    assert fakes.calls() == []


def test_images_for_2_11_and_2_16() -> None:
    assert images.image_list(Profile("2.11")) == [
        "cr.l5d.io/linkerd/proxy:stable-2.11.0",
        "cr.l5d.io/linkerd/controller:stable-2.11.0",
        "cr.l5d.io/linkerd/policy-controller:stable-2.11.0",
        "cr.l5d.io/linkerd/proxy-init",
        "ghcr.io/buoyantio/emojivoto-emoji-svc:v11",
        "ghcr.io/buoyantio/emojivoto-voting-svc:v11",
        "ghcr.io/buoyantio/emojivoto-web:v11",
        images.PROBER_IMAGE,
    ]
    assert options.image_list(Profile("2.16"))[:3] == [
        "cr.l5d.io/linkerd/proxy:edge-24.8.2",
        "cr.l5d.io/linkerd/controller:edge-24.8.2",
        "cr.l5d.io/linkerd/debug:edge-24.8.2",
    ]


def test_a_registry_rewrites_every_image_and_the_manifests(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - {name: web, image: docker.l5d.io/buoyantio/"
        "emojivoto-web:v11}\n")
    listed = options.image_list(Profile("2.12"), "mirror.local:5000",
                                manifests_dir=str(tmp_path))
    assert listed == [
        "mirror.local:5000/linkerd/proxy:stable-2.12.0",
        "mirror.local:5000/linkerd/controller:stable-2.12.0",
        "mirror.local:5000/linkerd/policy-controller:stable-2.12.0",
        "mirror.local:5000/linkerd/proxy-init",
        "mirror.local:5000/buoyantio/emojivoto-web:v11",
        "mirror.local:5000/linkerd-conformance/prober:dev",
    ]
    pod = {"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "busybox:1"}]}}
    assert images.rewrite_manifest(pod, "m.io")["spec"]["containers"][0]["image"] == \
        "m.io/busybox:1"
    assert pod["spec"]["containers"][0]["image"] == "busybox:1"  # the original is untouched


# --- options --------------------------------------------------------------------------------

def _parser():
    from _pytest.config.argparsing import Parser

    return Parser(_ispytest=True)


def names(parser) -> set[str]:
    return {n for g in parser._groups for o in g.options for n in o.names()}


def test_options_share_pytest_kinds_names_when_it_loaded_first() -> None:
    import pytest_kind.plugin

    parser = _parser()
    pytest_kind.plugin.pytest_addoption(parser)
    options.add_cluster_options(parser.getgroup("linkerd-conformance"))
    assert {"--kubectl-bin", "--linkerd-bin", "--docker-bin", "--kube-context", "--plan",
            "--prober-image", "--image-registry", "--list-images",
            "--gateway-api-crds", "--cluster-name", "--kind-bin"} <= names(parser)


def test_options_register_pytest_kind_first_when_it_has_not_loaded_yet() -> None:
    parser = _parser()

    class Plugins:
        def __init__(self) -> None:
            self.registered: dict[str, object] = {}

        def get_plugin(self, name: str) -> object:
            return self.registered.get(name)

        def is_blocked(self, name: str) -> bool:
            return False

        def is_registered(self, plugin: object) -> bool:
            return plugin in self.registered.values()

        def register(self, plugin, name: str) -> None:
            self.registered[name] = plugin
            plugin.pytest_addoption(parser)  # what pluggy's historic hook call does

    plugins = Plugins()
    options.add_cluster_options(parser.getgroup("linkerd-conformance"), plugins)
    assert "pytest-kind" in plugins.registered
    assert "--kind-kubectl-bin" in names(parser) and "--kubectl-bin" in names(parser)


def test_options_stand_alone_when_pytest_kind_is_blocked() -> None:
    parser = _parser()
    options.add_cluster_options(parser.getgroup("linkerd-conformance"))
    ns = parser.parse(["--cluster-name", "x", "--keep-cluster", "--plan"])
    assert (ns.cluster_name, ns.keep_cluster, ns.plan, ns.kube_context) == ("x", True, True, None)


class Config:
    """Just enough of pytest.Config for the entry points the plugin calls."""

    def __init__(self, rootpath: Path, **options: object) -> None:
        self.rootpath = rootpath
        self.options = options

    def getoption(self, name: str, default: object = None) -> object:
        return self.options.get(name, default)


def test_open_cluster_target_refuses_before_creating_anything(fakes: Fakes) -> None:
    config = Config(fakes.tmp, prober_image="p:1")
    with pytest.raises(TargetError, match="--kube-context"), \
            options.open_cluster_target(config, "kubeconfig", Profile("2.11")):
        pytest.fail("opened")
    assert fakes.calls() == []


def test_plan_lines_reads_the_options_and_maps_pytest_kinds_default_name(fakes: Fakes) -> None:
    config = Config(fakes.tmp, cluster_name="pytest-kind", keep_cluster=True)
    lines = options.plan_lines(config, "kind", Profile("2.12"))
    assert any("kind create cluster --name=linkerd-conformance " in line for line in lines)
    assert lines[-1] == "cleanup: # --keep-cluster: the cluster and every namespace are kept"
    assert options.default_manifests_dir(config) == str(fakes.tmp / "manifests")


def test_identity_files_come_from_the_reference_authority(tmp_path: Path) -> None:
    from linkerd_conformance.targets import session

    if not session.identity_available():
        pytest.skip("linkerd_conformance.reference.identity is not there yet")
    session.write_identity_files(str(tmp_path / "identity"))
    assert sorted(p.name for p in (tmp_path / "identity").iterdir()) == [
        "ca.crt", "issuer.crt", "issuer.key"]
    assert "BEGIN CERTIFICATE" in (tmp_path / "identity" / "ca.crt").read_text()
