"""The project's manifests are valid objects, and consistent with each other.

The kind target applies these files to a real cluster, so a mistake here would show up as a
confusing failure far from its cause.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from crd_schemas import BY_KIND, IDENTITY_PATTERN

from linkerd_conformance import manifests
from linkerd_conformance.api import ObjectRef, Profile
from linkerd_conformance.reference.admission import admit

KUBERNETES = "1.31"
POLICY_KINDS = ("Server", "ServerAuthorization")
#: Ports a Server may name without any pod declaring them in this repo's YAML.
KNOWN_UNDECLARED = {
    "linkerd-admin",  # the proxy container's admin port, added by the injector (F6.1)
    "linkerd-proxy",  # the proxy container's inbound port 4143, the gateway's (F8.1, F8.3)
}

ALL = [(name, obj) for name in manifests.names() for obj in manifests.load(name)]


def _id(item: tuple[str, dict[str, Any]]) -> str:
    name, obj = item
    return f"{name}:{manifests.ref(obj)}"


def test_every_expected_file_is_there() -> None:
    assert set(manifests.names()) >= {
        "emojivoto.yml", "bad.yml", "emojivoto-policy.yml", "web-public-emojivoto-only.yml",
        "admin-only-policy.yml", "probe-demo.yml", "probe-demo-policy.yml"}


@pytest.mark.parametrize("item", [i for i in ALL if i[1]["kind"] not in POLICY_KINDS], ids=_id)
def test_core_objects_match_kubernetes_schemas(item: tuple[str, dict[str, Any]]) -> None:
    kubernetes_validate.validate(item[1], KUBERNETES, strict=True)


@pytest.mark.parametrize("item", [i for i in ALL if i[1]["kind"] in POLICY_KINDS], ids=_id)
def test_policy_objects_match_the_2_11_crds(item: tuple[str, dict[str, Any]]) -> None:
    jsonschema.Draft202012Validator(BY_KIND[item[1]["kind"]]).validate(item[1])


@pytest.mark.parametrize("version", ["2.11", "2.20"])
def test_every_file_is_admitted(version: str) -> None:
    existing: list[dict[str, Any]] = []
    for _, obj in ALL:
        admit(obj, Profile(version), existing)
        existing.append(obj)


def _pods(namespace: str) -> list[dict[str, Any]]:
    return [obj["spec"]["template"] for _, obj in ALL
            if obj["kind"] == "Deployment" and obj["metadata"]["namespace"] == namespace]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value, op = labels.get(expr["key"]), expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


SERVERS = [i for i in ALL if i[1]["kind"] == "Server"]


@pytest.mark.parametrize("item", SERVERS, ids=_id)
def test_named_server_ports_exist_on_selected_pods(item: tuple[str, dict[str, Any]]) -> None:
    """F2.9/F2.11: a named port must resolve through a containerPort name on the pod."""
    server = item[1]
    port = server["spec"]["port"]
    if isinstance(port, int) or port in KNOWN_UNDECLARED:
        return
    selected = [pod for pod in _pods(server["metadata"]["namespace"])
                if _selects(server["spec"]["podSelector"], pod["metadata"]["labels"])]
    assert selected, f"{manifests.ref(server)} selects no pod"
    declaring = [pod for pod in selected
                 if any(p.get("name") == port for c in pod["spec"]["containers"]
                        for p in c.get("ports", []))]
    assert declaring, f"no pod selected by {manifests.ref(server)} has a port named {port}"
    if server["metadata"]["name"] != "prom":  # prom also selects web, which has no prom port
        assert len(declaring) == len(selected)


def test_every_authorization_names_an_existing_server() -> None:
    servers = {(o["metadata"]["namespace"], o["metadata"]["name"]) for _, o in SERVERS}
    for _, obj in ALL:
        if obj["kind"] == "ServerAuthorization" and "name" in obj["spec"]["server"]:
            assert (obj["metadata"]["namespace"], obj["spec"]["server"]["name"]) in servers


def test_wildcard_edit_has_no_unauthenticated() -> None:
    [web_public] = manifests.load("web-public-emojivoto-only.yml")
    client = web_public["spec"]["client"]
    assert "unauthenticated" not in client
    assert client["meshTLS"]["identities"] == [
        "*.emojivoto.serviceaccount.identity.linkerd.cluster.local"]
    assert jsonschema.Draft202012Validator({"pattern": IDENTITY_PATTERN}).is_valid(
        client["meshTLS"]["identities"][0])


def test_bad_vote_bot_is_the_emojivoto_one_moved() -> None:
    [bot] = [o for o in manifests.load("emojivoto") if o["metadata"]["name"] == "vote-bot"]
    [copy] = [o for o in manifests.load("bad") if o["kind"] == "Deployment"]
    assert copy["metadata"]["namespace"] == "bad"
    assert copy["spec"] == bot["spec"]


def test_every_deployment_is_injected_and_namespaces_are_not() -> None:
    for _, obj in ALL:
        if obj["kind"] == "Deployment":
            annotations = obj["spec"]["template"]["metadata"]["annotations"]
            assert annotations["linkerd.io/inject"] == "enabled"
        if obj["kind"] == "Namespace":
            assert "annotations" not in obj["metadata"]


def test_ref() -> None:
    [ns, *_] = manifests.load("emojivoto")
    assert manifests.ref(ns) == ObjectRef("Namespace", "emojivoto")
    [srv, *_] = manifests.load("emojivoto-policy")
    assert manifests.ref(srv) == ObjectRef("Server", "emoji-grpc", "emojivoto")


def test_malformed_file_is_reported_with_its_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken.yml").write_text("---\nkind: Namespace\nmetadata:\n  name: [x\n")
    (tmp_path / "empty-docs.yml").write_text("---\n---\napiVersion: v1\nkind: Namespace\n"
                                             "metadata: {name: x}\n---\n")
    monkeypatch.setenv(manifests.ENV_VAR, str(tmp_path))
    assert manifests.manifests_dir() == tmp_path
    assert len(manifests.load("empty-docs")) == 1
    with pytest.raises(manifests.ManifestError, match=r"broken\.yml, line \d+"):
        manifests.load("broken.yml")
    with pytest.raises(manifests.ManifestError, match="not found"):
        manifests.load("missing")


def test_the_lab_builders_build_for_any_namespace() -> None:
    """`lab.server`, `lab.server_authorization` and `lab.resource` default to namespace `lab`
    and take `namespace=`; what they build is a valid 2.11 object either way, and
    `lab.namespace` is a valid Namespace."""
    from linkerd_conformance import lab

    built = [lab.server("web", "http", namespace="other"),
             lab.server_authorization("all", {"unauthenticated": True}, server_name="web",
                                      namespace="other")]
    for obj in built:
        assert obj["metadata"]["namespace"] == "other"
        jsonschema.Draft202012Validator(BY_KIND[obj["kind"]]).validate(obj)
    policy = lab.resource("AuthorizationPolicy", "p", {"targetRef": {}}, namespace="other")
    assert manifests.ref(policy) == ObjectRef("AuthorizationPolicy", "p", "other")
    assert lab.server("web", 8080)["metadata"]["namespace"] == lab.NAMESPACE == "lab"
    namespace = lab.namespace("other")
    kubernetes_validate.validate(namespace, KUBERNETES, strict=True)
    assert manifests.ref(namespace) == ObjectRef("Namespace", "other")
