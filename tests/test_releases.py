"""The release facts: complete for every known version, consistent, parsed as users write them."""

from __future__ import annotations

import re

import pytest

from linkerd_conformance.api import KNOWN_VERSIONS, Profile, TargetError
from linkerd_conformance.targets import releases

P = {v: Profile(v) for v in KNOWN_VERSIONS}


# --- the tables are complete and every fact has a source ---------------------------------------

@pytest.mark.parametrize("table", [releases.COMPAT, releases.CHART, releases.VERSION_TAGS])
def test_every_known_version_has_a_record(table):
    assert sorted(table, key=lambda v: int(v.split(".")[1])) == list(KNOWN_VERSIONS)
    assert all(record.version == version for version, record in table.items())


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_every_record_names_its_source(version):
    c = releases.COMPAT[version]
    for source in (c.source, c.check_source, releases.CHART[version].source,
                   releases.VERSION_TAGS[version].source, c.node_image.source):
        assert re.search(r"L2@|L2 |WEB:|KIND@|https://", source), source


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_node_images_lie_in_the_range(version):
    c = releases.compat(P[version])
    for image in filter(None, (c.node_image, c.kind_default)):
        major, minor, _ = image.kubernetes
        assert c.contains((major, minor)), (version, image.image)
        assert re.fullmatch(r"v0\.\d+\.\d+", image.kind_release)
    # the default is the newest image known for the range
    if c.kind_default:
        assert c.node_image.kubernetes >= c.kind_default.kubernetes


def test_ranges_as_documented_and_checked():
    c = releases.COMPAT
    assert (c["2.11"].minimum, c["2.11"].maximum) == ((1, 17), (1, 23))
    assert (c["2.12"].minimum, c["2.12"].maximum) == ((1, 21), (1, 24))
    # the page says 1.22 but `linkerd check` wants 1.23
    assert c["2.18"].documented_min == (1, 22) and c["2.18"].minimum == (1, 23)
    assert c["2.20"].check_min == (1, 31, 0) and c["2.20"].range_text() == "1.31–1.35"
    assert all(record.minimum_enforced for record in c.values())
    assert all(record.minimum <= record.maximum for record in c.values())


# --- the cluster's Kubernetes version --------------------------------------------------------

@pytest.mark.parametrize("git_version, expected", [
    ("v1.23.17", (1, 23, 17)), ("v1.30.0+k3s1", (1, 30, 0)), ("v1.27.3-gke.100", (1, 27, 3)),
    ("v1.29.10-eks-7f9249a", (1, 29, 10)), ("1.31", (1, 31, 0)),
])
def test_parse_kubernetes_version(git_version, expected):
    assert releases.parse_kubernetes_version(git_version) == expected


def test_unreadable_kubernetes_version_is_refused():
    with pytest.raises(TargetError, match="not of the form"):
        releases.kubernetes_version_ok(P["2.11"], "unknown")


@pytest.mark.parametrize("version, git_version, ok", [
    ("2.11", "v1.23.17", True), ("2.11", "v1.24.0", False), ("2.11", "v1.16.15", False),
    ("2.18", "v1.22.17", False), ("2.18", "v1.23.0+k3s1", True), ("2.18", "v1.32.11", True),
    ("2.20", "v1.30.0", False), ("2.20", "v1.35.0-gke.1", True), ("2.20", "v1.36.1", False),
])
def test_kubernetes_version_ok(version, git_version, ok):
    assert releases.kubernetes_version_ok(P[version], git_version) is ok


def test_refusal_is_one_sentence_with_both_versions_and_the_image():
    with pytest.raises(TargetError) as info:
        releases.check_kubernetes_version(P["2.11"], "v1.36.1", image_hint=True)
    message = str(info.value)
    assert message == ("Linkerd 2.11 supports Kubernetes 1.17–1.23 but the cluster runs v1.36.1: "
                       "create it with --kind-image kindest/node:v1.23.17@sha256:"
                       "14d0a9a892b943866d7e6be119a06871291c517d279aedb816a4b4bc0ec0a5b3")
    assert message.count(". ") == 0 and "\n" not in message


def test_refusal_without_kind_still_names_an_image():
    with pytest.raises(TargetError, match=r"2\.20 supports Kubernetes 1\.31–1\.35 .* v1\.30\.0: "
                                          r"use a cluster in that range .*kindest/node:v1\.35\.0@"):
        releases.check_kubernetes_version(P["2.20"], "v1.30.0", image_hint=False)


def test_no_refusal_inside_the_range():
    releases.check_kubernetes_version(P["2.16"], "v1.29.14", image_hint=True)


# --- release names ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, semantics", [
    ("stable-2.11.5", "2.11"), ("stable-2.14.10", "2.14"),
    ("enterprise-2.15.3", "2.15"), ("enterprise-2.19.4", "2.19"),
    ("2.16", "2.16"),
    ("edge-23.11.1", "2.12-2.14"), ("edge-24.2.3", "2.12-2.14"),
    ("edge-24.2.4", "2.15"), ("edge-24.8.1", "2.15"), ("edge-24.8.2", "2.16"),
    ("edge-24.11.8", "2.17"), ("edge-25.4.4", "2.18"), ("edge-25.9.4", "2.18"),
    ("edge-25.10.6", "2.18"), ("edge-25.10.7", "2.19"), ("edge-26.6.2", "2.19"),
    ("edge-26.6.3", "2.20"), ("edge-26.7.1", "2.20"), ("edge-26.8.3", "2.20"),
    ("version-2.16", None), ("v2.161.0", None), ("", None), ("stable-2.11", None),
])
def test_semantics_of(name, semantics):
    assert releases.semantics_of(name) == semantics


def test_parse_release_and_cli_output():
    assert releases.parse_release("enterprise-2.15.3") == releases.Release(
        "enterprise", (2, 15, 3), "enterprise-2.15.3")
    assert releases.parse_release("edge-24.8.2").minor is None
    assert releases.parse_releases("Client version: enterprise-2.16.1\nServer version: "
                                   "unavailable") == ["enterprise-2.16.1"]
    assert releases.parse_releases("edge-24.8.2") == ["edge-24.8.2"]


@pytest.mark.parametrize("release, version, required", [
    (None, "2.18", False), (None, "2.19", True), (None, "2.20", True),
    ("edge-25.4.4", "2.18", False), ("edge-25.9.3", "2.18", False),
    ("edge-25.9.4", "2.18", True), ("edge-25.10.6", "2.18", True),
    ("edge-25.10.7", "2.19", True), ("stable-2.14.10", "2.14", False),
    ("enterprise-2.18.2", "2.18", False), ("enterprise-2.19.4", "2.19", True),
    ("2.19", "2.19", True),
])
def test_gateway_api_required(release, version, required):
    assert releases.gateway_api_required(release, P[version]) is required


def test_expected_release_names_the_edges():
    assert releases.expected_release(P["2.18"]) == (
        "edge-25.4.4 up to, not including, edge-25.10.7 or enterprise-2.18.x")
    assert releases.expected_release(P["2.20"]) == "edge-26.6.3 or later or enterprise-2.20.x"


# --- images ----------------------------------------------------------------------------------

L5D = "cr.l5d.io/linkerd"


def test_default_images():
    assert releases.linkerd_images(P["2.11"]) == [
        f"{L5D}/proxy:stable-2.11.5", f"{L5D}/controller:stable-2.11.5",
        f"{L5D}/policy-controller:stable-2.11.5", f"{L5D}/proxy-init:v1.5.3"]
    assert releases.linkerd_images(P["2.16"])[-1] == f"{L5D}/proxy-init:v2.4.1"
    assert releases.linkerd_images(P["2.18"])[-1] == f"{L5D}/proxy-init:v2.4.2"
    assert releases.linkerd_images(P["2.19"]) == [
        f"{L5D}/proxy:edge-25.10.7", f"{L5D}/controller:edge-25.10.7",
        f"{L5D}/proxy-init:v2.4.3"]
    assert releases.linkerd_images(P["2.20"]) == [
        f"{L5D}/proxy:edge-26.7.1", f"{L5D}/controller:edge-26.7.1"]


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_default_images_match_the_chart_table(version):
    chart = releases.CHART[version]
    expected = [f"{L5D}/{name}:{chart.release}" for name in chart.names]
    if chart.proxy_init:
        expected.append(f"{L5D}/proxy-init:{chart.proxy_init}")
    assert releases.linkerd_images(P[version]) == expected
    assert chart.release == releases.default_release(P[version])
    assert all(":debug" not in image and "/debug:" not in image for image in expected)


@pytest.mark.parametrize("version, release, expected_tail", [
    ("2.14", "stable-2.14.0", [f"{L5D}/policy-controller:stable-2.14.0",
                               f"{L5D}/proxy-init:v2.2.1"]),
    ("2.11", "stable-2.11.1", [f"{L5D}/policy-controller:stable-2.11.1",
                               f"{L5D}/proxy-init:v1.4.0"]),
    ("2.18", "edge-25.8.2", [f"{L5D}/policy-controller:edge-25.8.2", f"{L5D}/proxy-init:v2.4.3"]),
    ("2.18", "edge-25.8.3", [f"{L5D}/controller:edge-25.8.3", f"{L5D}/proxy-init:v2.4.3"]),
    ("2.19", "edge-25.11.2", [f"{L5D}/controller:edge-25.11.2", f"{L5D}/proxy-init:v2.4.3"]),
    ("2.19", "edge-25.11.3", [f"{L5D}/proxy:edge-25.11.3", f"{L5D}/controller:edge-25.11.3"]),
    ("2.13", "edge-23.4.1", [f"{L5D}/policy-controller:edge-23.4.1",
                             f"{L5D}/proxy-init:v2.2.1"]),
    ("2.16", "2.16", [f"{L5D}/policy-controller:edge-24.8.2", f"{L5D}/proxy-init:v2.4.1"]),
])
def test_images_follow_the_release(version, release, expected_tail):
    assert releases.linkerd_images(P[version], release)[-2:] == expected_tail


@pytest.mark.parametrize("version, release, match", [
    ("2.16", "stable-2.14.10", "does not carry Linkerd 2.16"),
    ("2.15", "enterprise-2.15.3", "Buoyant Enterprise"),
    ("2.14", "stable-2.14.11", "not a Linkerd release this suite knows"),
    ("2.12", "nonsense", "not a Linkerd release name"),
])
def test_images_refused(version, release, match):
    with pytest.raises(TargetError, match=match):
        releases.linkerd_images(P[version], release)


INSTALL_OUTPUT = """\
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: linkerd-config
data:
  values: |
    proxy:
      image:
        name: cr.l5d.io/linkerd/proxy
    debugContainer:
      image: cr.l5d.io/linkerd/debug:ignored-inside-a-block
    controllerImage: cr.l5d.io/linkerd/controller
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: linkerd-destination
spec:
  template:
    spec:
      initContainers:
      - name: linkerd-init
        image: cr.l5d.io/linkerd/proxy-init:v2.4.1
      containers:
      - image: cr.l5d.io/linkerd/proxy:edge-24.8.2  # the sidecar
        name: linkerd-proxy
      - name: destination
        image: "cr.l5d.io/linkerd/controller:edge-24.8.2"
      - name: policy
        image: 'cr.l5d.io/linkerd/policy-controller:edge-24.8.2'
---
kind: Deployment
spec:
  template:
    spec:
      containers:
      - name: linkerd-proxy
        image: cr.l5d.io/linkerd/proxy:edge-24.8.2
"""


def test_images_from_install_output():
    assert releases.images_from_install_output(INSTALL_OUTPUT) == [
        f"{L5D}/proxy-init:v2.4.1", f"{L5D}/proxy:edge-24.8.2",
        f"{L5D}/controller:edge-24.8.2", f"{L5D}/policy-controller:edge-24.8.2"]
    assert releases.images_from_install_output("") == []
