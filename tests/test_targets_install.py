"""The Linkerd install flow per version, a kind run around it (against the cluster double),
the plan, the image list, the options shared with pytest-kind, and the identity files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_targets_double import GATEWAY_API_CRDS, PREBUILT, ROOT, LabFactory, lab_factory

from linkerd_conformance.api import Profile, TargetError
from linkerd_conformance.targets import images, options, session
from linkerd_conformance.targets.install import GATEWAY_API_URL, install_steps, render
from linkerd_conformance.targets.kind import KindTarget
from linkerd_conformance.targets.kube import Kube
from linkerd_conformance.targets.plan import build_plan
from linkerd_conformance.targets.session import ClusterSettings

IDENTITY = ("--identity-trust-anchors-file /c/ca.crt --identity-issuer-certificate-file "
            "/c/issuer.crt --identity-issuer-key-file /c/issuer.key")
APPLY = " | kubectl apply --server-side -f -"


@pytest.fixture
def make_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabFactory]:
    yield from lab_factory(tmp_path, monkeypatch)


# --- the flow per version, as data ----------------------------------------------------------

def test_2_11_installs_crds_with_the_control_plane_and_sets_the_default_by_helm_value() -> None:
    assert render(install_steps(Profile("2.11"), "/c")) == [
        "linkerd check --pre",
        f"linkerd install {IDENTITY} --set policyController.defaultAllowPolicy="
        f"all-unauthenticated{APPLY}",
        "linkerd check --wait 300s",
    ]


def test_2_12_installs_crds_first_and_uses_the_default_inbound_policy_flag() -> None:
    assert render(install_steps(Profile("2.12"), "/c", default_policy="deny",
                                check_wait=90)) == [
        "linkerd check --pre",
        f"linkerd install --crds{APPLY}",
        f"linkerd install {IDENTITY} --default-inbound-policy deny{APPLY}",
        "linkerd check --wait 90s",
    ]


@pytest.mark.parametrize("version", ["2.19", "2.20"])
def test_2_19_and_later_apply_the_gateway_api_crds_before_check_pre(version: str) -> None:
    crds = str(GATEWAY_API_CRDS)
    assert render(install_steps(Profile(version), "/c", gateway_api_crds=crds)) == [
        f"kubectl apply --server-side -f {crds}",
        "linkerd check --pre",
        f"linkerd install --crds{APPLY}",
        f"linkerd install {IDENTITY} --default-inbound-policy all-unauthenticated{APPLY}",
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


# --- a kind run against the double ----------------------------------------------------------

def crds(target: KindTarget) -> set[str]:
    assert target.api is not None
    return {o["metadata"]["name"] for o in target.api.list_kind(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "")}


def values(target: KindTarget) -> dict:
    assert target.api is not None
    cm = target.api.config_map("linkerd", "linkerd-config")
    assert cm is not None
    return yaml.safe_load(cm["data"]["values"])


@pytest.mark.parametrize("version", ["2.11", "2.12", "2.20"])
def test_a_kind_run_creates_installs_the_versions_way_then_deletes(
        make_lab: LabFactory, version: str) -> None:
    """The fakes refuse a flow out of order: 2.12+ `install` without the CRDs, 2.20 `check
    --pre` without the Gateway API CRDs, 2.11 `install --default-inbound-policy`."""
    lab = make_lab(version, kubernetes_version="v1.36.1")
    target = lab.kind(prober_image=PREBUILT)
    with target.open() as mesh:
        assert mesh.name == "kind" and mesh.profile == Profile(version)
        assert lab.clusters() == ["conformance"]
        assert lab.state()["loaded"] == {"conformance": [PREBUILT]}
        assert "servers.policy.linkerd.io" in crds(target)
        assert ("httproutes.gateway.networking.k8s.io" in crds(target)) == (version == "2.20")
        v = values(target)
        assert v["linkerdVersion"] == lab.state()["linkerd_version"]
        if version == "2.11":
            assert v["policyController"] == {"defaultAllowPolicy": "all-unauthenticated"}
            assert target.api.list_kind("batch/v1beta1", "CronJob", "linkerd")  # heartbeat
        else:
            assert v["proxy"] == {"defaultInboundPolicy": "all-unauthenticated"}
        identity = Path(target.identity_dir)
        assert sorted(p.name for p in identity.iterdir()) == ["ca.crt", "issuer.crt",
                                                              "issuer.key"]
    assert lab.clusters() == []
    assert not identity.exists()  # the issuer key goes with the cluster
    # nothing in the working directory but pytest-kind's empty `.pytest-kind/<name>/`
    assert [f for f in lab.files_left() if (lab.cwd / f).is_file()] == []


def test_kind_builds_the_prober_image_unless_one_is_given(make_lab: LabFactory) -> None:
    lab = make_lab("2.16")
    with lab.kind(cluster_name="n", image_registry="mirror.example:5000").open():
        built = "mirror.example:5000/linkerd-conformance/prober:dev"
        assert built in lab.state()["images"]
        assert lab.state()["loaded"] == {"n": [built]}


def test_keep_cluster_keeps_it_and_its_namespaces(make_lab: LabFactory) -> None:
    lab = make_lab("2.16")
    with lab.kind(keep_cluster=True, prober_image=PREBUILT).open() as mesh:
        mesh.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kept"}})
    assert lab.clusters() == ["conformance"]
    assert "kept" in {n["metadata"]["name"] for n in mesh.api.namespaces()}


def test_a_cluster_that_existed_before_is_reused_and_never_deleted(make_lab: LabFactory) -> None:
    lab = make_lab("2.16")
    with lab.kind(keep_cluster=True, prober_image=PREBUILT).open():
        pass
    target = lab.kind(prober_image=PREBUILT)
    with target.open() as mesh:
        assert target.preexisting
        mesh.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mine"}})
    assert lab.clusters() == ["conformance"]
    left = {n["metadata"]["name"] for n in mesh.api.namespaces()}
    assert "mine" not in left and "linkerd" in left
    assert target.cleanup_lines()[0].startswith("delete namespaces -l linkerd-conformance/owned")


def test_a_cluster_that_existed_before_without_its_kubeconfig_is_refused(
        make_lab: LabFactory) -> None:
    lab = make_lab("2.16")
    with lab.kind(keep_cluster=True, prober_image=PREBUILT).open():
        pass
    lab.kubeconfig.unlink()
    with pytest.raises(TargetError, match="already exists but its kubeconfig"), \
            lab.kind(prober_image=PREBUILT).open():
        pytest.fail("opened")
    assert lab.clusters() == ["conformance"]


def test_an_interrupt_during_install_still_deletes_the_cluster(
        make_lab: LabFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab("2.11")
    steps: list[str] = []

    def interrupted(self: Kube, step: object, timeout: float | None = None) -> str:
        steps.append(str(step))
        raise KeyboardInterrupt

    monkeypatch.setattr(Kube, "run_step", interrupted)
    with pytest.raises(KeyboardInterrupt), lab.kind(prober_image=PREBUILT).open():
        pytest.fail("opened")
    assert steps == ["linkerd check --pre"]
    assert lab.clusters() == []


def test_a_failing_install_step_is_one_sentence_and_the_cluster_is_deleted(
        make_lab: LabFactory) -> None:
    lab = make_lab("2.12")
    target = lab.kind(prober_image=PREBUILT, install_flags=("--no-such-flag",))
    with pytest.raises(TargetError) as exc, target.open():
        pytest.fail("opened")
    assert str(exc.value).endswith("--no-such-flag` failed: Error: unknown flag: --no-such-flag")
    assert str(exc.value).startswith("`linkerd install --identity-trust-anchors-file ")
    assert lab.clusters() == []


# --- plan and images ------------------------------------------------------------------------

def test_the_plan_lists_the_run_in_order_and_runs_nothing(make_lab: LabFactory) -> None:
    lab = make_lab("2.11")
    before = lab.state()
    target = lab.kind(cluster_name="c")
    lines = build_plan(target.settings, "kind", Profile("2.11"))
    assert lab.state() == before and lab.files_left() == []
    setup = [line[len("setup: "):] for line in lines if line.startswith("setup: ")]
    assert setup[0].startswith(f"kind create cluster --name=c --kubeconfig={lab.kubeconfig} "
                               "--image=kindest/node:v1.23.17@sha256:")
    assert setup[1].startswith("read the API server's version; refuse outside Kubernetes "
                               "1.17–1.23")
    assert setup[2] == (f"docker build -t {images.PROBER_IMAGE} -f {images.PROBER_DOCKERFILE} "
                        f".  # in {ROOT}")
    assert setup[3] == f"kind load docker-image --name c {images.PROBER_IMAGE}"
    assert [s.split(" ", 3)[3] for s in setup[6:]] == render(target.install_steps())
    cleanup = [line for line in lines if line.startswith("cleanup: ")]
    assert cleanup == [f"cleanup: kind delete cluster --name=c --kubeconfig={lab.kubeconfig}"]
    assert lines[-1].startswith("#"), "the cost estimate closes the plan"
    assert any("estimate" in line and "min" in line for line in lines), lines[-12:]
    assert any("exec in <prober pod> -c prober: python -m linkerd_conformance.prober"
               in line for line in lines)


def test_the_2_19_plan_shows_the_missing_gateway_api_file() -> None:
    lines = build_plan(ClusterSettings(), "kind", Profile("2.19"))
    assert any(line.endswith("kubectl apply --server-side -f '<--gateway-api-crds>'")
               for line in lines)


def test_the_kubeconfig_plan_says_it_would_refuse_without_a_context() -> None:
    lines = build_plan(ClusterSettings(prober_image="p"), "kubeconfig", Profile("2.16"))
    assert lines[1].startswith("# the run would refuse: the kubeconfig target needs "
                               "--kube-context")
    assert not any(line.startswith("setup:") for line in lines)


def test_images_for_2_11_list_the_workloads_and_the_prober() -> None:
    listed = images.image_list(Profile("2.11"), manifests_dir=str(ROOT / "manifests"))
    assert [i for i in listed if not i.startswith("#")] == [
        "cr.l5d.io/linkerd/proxy:stable-2.11.5",
        "cr.l5d.io/linkerd/controller:stable-2.11.5",
        "cr.l5d.io/linkerd/policy-controller:stable-2.11.5",
        "cr.l5d.io/linkerd/proxy-init:v1.5.3",
        "ghcr.io/buoyantio/emojivoto-web:v11",
        "ghcr.io/buoyantio/emojivoto-emoji-svc:v11",
        "ghcr.io/buoyantio/emojivoto-voting-svc:v11",
        images.PROBER_IMAGE,
    ]


def test_a_registry_rewrites_every_image_and_the_manifests(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - {name: web, image: docker.l5d.io/buoyantio/"
        "emojivoto-web:v11}\n")
    listed = images.image_list(Profile("2.12"), "mirror.local:5000",
                               manifests_dir=str(tmp_path))
    assert [i for i in listed if not i.startswith("#")] == [
        "mirror.local:5000/linkerd/proxy:stable-2.12.6",
        "mirror.local:5000/linkerd/controller:stable-2.12.6",
        "mirror.local:5000/linkerd/policy-controller:stable-2.12.6",
        "mirror.local:5000/linkerd/proxy-init:v2.0.0",
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
            "--prober-image", "--image-registry", "--list-images", "--gateway-api-crds",
            "--cluster-name", "--kind-bin", "--linkerd-install-flag",
            "--prober-build-arg"} <= names(parser)


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
    ns = parser.parse(["--cluster-name", "x", "--keep-cluster", "--plan",
                       "--linkerd-install-flag", "--set a=b --ha"])
    assert (ns.cluster_name, ns.keep_cluster, ns.plan, ns.kube_context) == ("x", True, True, None)
    assert session.split_flags(ns.linkerd_install_flag) == ["--set", "a=b", "--ha"]


class Config:
    """Just enough of pytest.Config for the entry points the plugin calls."""

    def __init__(self, rootpath: Path, **options: object) -> None:
        self.rootpath = rootpath
        self.options = options

    def getoption(self, name: str, default: object = None) -> object:
        return self.options.get(name, default)


def test_open_cluster_target_refuses_before_creating_anything(make_lab: LabFactory) -> None:
    lab = make_lab("2.11", linkerd_installed=True)
    config = Config(lab.tmp, prober_image="p:1")
    with pytest.raises(TargetError, match="--kube-context"), \
            options.open_cluster_target(config, "kubeconfig", Profile("2.11")):
        pytest.fail("opened")
    assert lab.files_left() == []


def test_plan_lines_reads_the_options_and_maps_pytest_kinds_default_name(tmp_path: Path) -> None:
    config = Config(tmp_path, cluster_name="pytest-kind", keep_cluster=True,
                    gateway_api_crds=str(GATEWAY_API_CRDS))
    lines = options.plan_lines(config, "kind", Profile("2.12"))
    assert any("kind create cluster --name=linkerd-conformance " in line for line in lines)
    assert [line for line in lines if line.startswith("cleanup: ")] == [
        "cleanup: # --keep-cluster: the cluster and every namespace are kept"]
    assert options.default_manifests_dir(config) == str(tmp_path / "manifests")


def test_identity_files_come_from_the_reference_authority(tmp_path: Path) -> None:
    from cryptography import x509

    session.write_identity_files(str(tmp_path / "identity"))
    assert sorted(p.name for p in (tmp_path / "identity").iterdir()) == [
        "ca.crt", "issuer.crt", "issuer.key"]
    anchor = x509.load_pem_x509_certificate((tmp_path / "identity" / "ca.crt").read_bytes())
    issuer = x509.load_pem_x509_certificate((tmp_path / "identity" / "issuer.crt").read_bytes())
    assert issuer.issuer == anchor.subject
    assert anchor.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
