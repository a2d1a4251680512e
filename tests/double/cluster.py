"""`ClusterDouble`: a reference mesh behind an `ApiServer`, with kubeconfigs and a state file.

    with ClusterDouble(Profile("2.11"), kubernetes_version="v1.23.17") as cluster:
        cluster.write_kubeconfig(tmp_path / "kubeconfig")           # context kind-kind
        api = kubernetes.config.new_client_from_config(str(tmp_path / "kubeconfig"))
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from linkerd_conformance.api import Profile
from linkerd_conformance.reference.admission import POLICY, served_versions
from linkerd_conformance.reference.mesh import ReferenceMesh

from .apiserver import CONTROL_PLANE_NS, ApiServer

STATE_ENV = "CLUSTER_DOUBLE_STATE"
KUBECTL_VERSION = "v1.27.16"

#: (kind, plural, short names) of Linkerd's policy CRDs (charts/linkerd-crds/templates/policy).
POLICY_CRDS = (("Server", "servers", ("srv",)),
               ("ServerAuthorization", "serverauthorizations", ("saz", "serverauthz")),
               ("AuthorizationPolicy", "authorizationpolicies", ("authzpolicy",)),
               ("MeshTLSAuthentication", "meshtlsauthentications", ("meshtlsauthn",)),
               ("NetworkAuthentication", "networkauthentications", ("netauthn", "networkauthn")),
               ("HTTPRoute", "httproutes", ()))

#: The release a version's semantics come from (targets/tools.py's version map).
RELEASES = {"2.11": "stable-2.11.5", "2.12": "stable-2.12.6", "2.13": "stable-2.13.7",
            "2.14": "stable-2.14.10", "2.15": "edge-24.2.4", "2.16": "edge-24.8.2",
            "2.17": "edge-24.11.8", "2.18": "edge-25.4.4", "2.19": "edge-25.10.7",
            "2.20": "edge-26.7.1"}


def storage_version(kind: str, profile: Profile) -> str:
    versions = served_versions(kind, profile)
    if kind == "ServerAuthorization":
        return "v1beta1"  # F3.1
    return versions[-1]


def policy_deprecation(kind: str, version: str, profile: Profile) -> str | None:
    """The CRD's deprecation warning for one served version, or None (F2.1, F3.1).

    As the CRDs word them (linkerd/linkerd2 charts/linkerd-crds/templates/policy/server.yaml
    l.20-24, l.73-77 and server-authorization.yaml l.20-24, at each tag): Server and
    ServerAuthorization v1alpha1 from 2.12, "use policy.linkerd.io/v1beta1 <Kind>"; Server
    v1beta1 from 2.15, pointing at v1beta2 (2.15) or v1beta3 (2.16+), and naming "v1alpha1"
    until 2.17 fixed the text. Other kinds' deprecations are not recorded in
    research/linkerd-semantics.md, so none is given.
    """
    if kind not in ("Server", "ServerAuthorization") or not profile.at_least("2.12"):
        return None
    if version == "v1alpha1":
        said, use = "v1alpha1", "v1beta1"
    elif kind == "Server" and version == "v1beta1" and profile.at_least("2.15"):
        said = "v1beta1" if profile.at_least("2.17") else "v1alpha1"
        use = "v1beta3" if profile.at_least("2.16") else "v1beta2"
    else:
        return None
    return f"{POLICY}/{said} {kind} is deprecated; use {POLICY}/{use} {kind}"


def policy_crds(profile: Profile) -> list[dict[str, Any]]:
    """The profile's policy.linkerd.io CRDs, as `linkerd install --crds` would apply them
    (the schemas are left open: the reference's admission judges the objects)."""
    out = []
    for kind, plural, short in POLICY_CRDS:
        versions = served_versions(kind, profile)
        if not versions:
            continue
        storage = storage_version(kind, profile)
        entries = []
        for v in versions:
            entry: dict[str, Any] = {
                "name": v, "served": True, "storage": v == storage,
                "schema": {"openAPIV3Schema": {"type": "object",
                                               "x-kubernetes-preserve-unknown-fields": True}}}
            warning = policy_deprecation(kind, v, profile)
            if warning:
                entry["deprecated"] = True
                entry["deprecationWarning"] = warning
            entries.append(entry)
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{POLICY}",
                         "labels": {"linkerd.io/control-plane-ns": CONTROL_PLANE_NS}},
            "spec": {"group": POLICY, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                               "listKind": f"{kind}List", "shortNames": list(short)},
                     "versions": entries}})
    return out


GATEWAY = "gateway.networking.k8s.io"


def gateway_crds(profile: Profile) -> list[dict[str, Any]]:
    """The Gateway API route CRDs an installed Linkerd finds (bundled 2.14-2.18, required from
    2.19), with the versions the reference serves (F4.12, F4.13)."""
    out = []
    for kind in ("HTTPRoute", "GRPCRoute"):
        versions = served_versions(f"{kind}.{GATEWAY}", profile)
        if not versions:
            continue
        plural = f"{kind.lower()}s"
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GATEWAY}"},
            "spec": {"group": GATEWAY, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                               "listKind": f"{kind}List"},
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}}}
                                  for i, v in enumerate(versions)]}})
    return out


def linkerd_config(profile: Profile, cluster_networks: Iterable[str], cluster_default: str,
                   release: str) -> dict[str, Any]:
    """The `linkerd-config` ConfigMap: its `values` key holds the chart's values (YAML)."""
    values: dict[str, Any] = {"linkerdVersion": release,
                              "clusterNetworks": ",".join(cluster_networks),
                              "identityTrustDomain": "cluster.local"}
    if profile.at_least("2.12"):
        values["proxy"] = {"defaultInboundPolicy": cluster_default}
    else:
        values["policyController"] = {"defaultAllowPolicy": cluster_default}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "linkerd-config", "namespace": CONTROL_PLANE_NS,
                         "labels": {"linkerd.io/control-plane-component": "controller",
                                    "linkerd.io/control-plane-ns": CONTROL_PLANE_NS}},
            "data": {"values": yaml.safe_dump(values, sort_keys=False)}}


def trust_roots(anchor_pem: str) -> dict[str, Any]:
    """The `linkerd-identity-trust-roots` ConfigMap an install leaves: the trust anchor
    (linkerd-install-identity-objects); the issuer Secret is left out, as a kubeconfig run
    never reads it."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "linkerd-identity-trust-roots", "namespace": CONTROL_PLANE_NS,
                         "labels": {"linkerd.io/control-plane-component": "identity",
                                    "linkerd.io/control-plane-ns": CONTROL_PLANE_NS}},
            "data": {"ca-bundle.crt": anchor_pem}}


def control_plane(release: str) -> list[dict[str, Any]]:
    """Namespace `linkerd` and the control plane's Deployments (reported, never run)."""
    objs: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": CONTROL_PLANE_NS,
                     "labels": {"linkerd.io/is-control-plane": "true",
                                "config.linkerd.io/admission-webhooks": "disabled",
                                "linkerd.io/control-plane-ns": CONTROL_PLANE_NS},
                     "annotations": {"linkerd.io/inject": "disabled"}}}]
    for component in ("destination", "identity", "proxy-injector"):
        labels = {"linkerd.io/control-plane-component": component,
                  "linkerd.io/control-plane-ns": CONTROL_PLANE_NS}
        objs.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"linkerd-{component}", "namespace": CONTROL_PLANE_NS,
                         "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{
                                      "name": component,
                                      "image": f"cr.l5d.io/linkerd/controller:{release}"}]}}}})
    return objs


def discovery_cache_file(url: str) -> Path:
    """Where `kubernetes.dynamic.DynamicClient` caches discovery for a host by default."""
    return Path(tempfile.gettempdir()) / (
        f"osrcp-{hashlib.md5(url.encode(), usedforsecurity=False).hexdigest()}.json")


class ClusterDouble:
    """A cluster with (or without) Linkerd for the cluster targets, backed by a reference mesh.

    `ClusterDouble(profile, *, kubernetes_version="v1.23.17", faults=(),
    linkerd_installed=False, name="kind", linkerd_version=None, **reference_kwargs)`;
    `.url`, `.reference` (the ReferenceMesh), `.apiserver`, `.state_path`, `.env()`,
    `.write_kubeconfig(path, context=None)`, `.close()` (nothing left behind).
    """

    def __init__(self, profile: Profile | str, *, kubernetes_version: str = "v1.23.17",
                 faults: Iterable[str] = (), linkerd_installed: bool = False,
                 name: str = "kind", linkerd_version: str | None = None,
                 **reference_kwargs: Any) -> None:
        self.profile = profile if isinstance(profile, Profile) else Profile(profile)
        self.name = name
        self.release = linkerd_version or RELEASES[self.profile.version]
        self.reference = ReferenceMesh(self.profile, faults, **reference_kwargs)
        self._dir: str | None = None
        try:
            self.apiserver = ApiServer(self.reference, kubernetes_version=kubernetes_version,
                                       cluster_name=name)
            self.url = self.apiserver.url
            # a cache left by an earlier server on this port would describe another cluster
            discovery_cache_file(self.url).unlink(missing_ok=True)
            if linkerd_installed:
                self.install_linkerd()
            self._dir = tempfile.mkdtemp(prefix="cluster-double-")
            self.state_path = Path(self._dir) / "state.json"
            self.write_state({"apiserver": self.url, "clusters": {}, "images": [],
                              "loaded": {}, "linkerd_version": self.release,
                              "kubectl_version": KUBECTL_VERSION,
                              "docker_pool": self.docker_pool})
        except BaseException:
            self.close()
            raise

    @property
    def docker_pool(self) -> str:
        """The subnet of the double's Docker network `kind` (made by the fake `kind create
        cluster`): a loopback /24 of this mesh's own block, outside the double's clusterNetworks
        (127.10.0.0/16, 127.18.0.0/16) as kind's 172.18.0.0/16 is outside kind's pod and
        service subnets, so a container there is a client outside the cluster networks."""
        block = self.reference.addresses.node_ip.split(".")[2]
        return f"127.20.{block}.0/24"

    @property
    def kubernetes_version(self) -> str:
        return self.apiserver.kubernetes_version

    @kubernetes_version.setter
    def kubernetes_version(self, value: str) -> None:
        self.apiserver.kubernetes_version = value

    def install_linkerd(self) -> None:
        """What an installed Linkerd leaves in the API: its CRDs, namespace and config."""
        for obj in [*policy_crds(self.profile), *gateway_crds(self.profile),
                    *control_plane(self.release),
                    linkerd_config(self.profile, self.reference.cluster_networks,
                                   self.reference.workloads.cluster_default, self.release),
                    trust_roots(self.reference.authority.anchor_path.read_text())]:
            self.apiserver.apply(obj)

    # ---- files the tools read ----

    def write_kubeconfig(self, path: str | os.PathLike[str], context: str | None = None
                         ) -> Path:
        """A kubeconfig whose one context (default `kind-<name>`) points at the double."""
        context = context or f"kind-{self.name}"
        config = {"apiVersion": "v1", "kind": "Config", "current-context": context,
                  "clusters": [{"name": context, "cluster": {"server": self.url}}],
                  "users": [{"name": context, "user": {"token": "cluster-double"}}],
                  "contexts": [{"name": context, "context": {"cluster": context,
                                                             "user": context}}],
                  "preferences": {}}
        out = Path(path)
        out.write_text(yaml.safe_dump(config, sort_keys=False))
        return out

    def read_state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text())

    def write_state(self, state: Mapping[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_path)

    def env(self) -> dict[str, str]:
        """What a fake tool needs in its environment to find this double."""
        return {STATE_ENV: str(self.state_path)}

    # ---- lifecycle ----

    def close(self) -> None:
        api = getattr(self, "apiserver", None)
        if api is not None:
            api.close()
            discovery_cache_file(api.url).unlink(missing_ok=True)
        self.reference.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> ClusterDouble:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

