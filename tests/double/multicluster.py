"""Two cluster doubles linked in gateway mode: the target (the run's cluster) and a source.

Each cluster is a `ClusterDouble` of its own (its own API server over its own ReferenceMesh);
the fake tools share the target's state file, in which `cluster_apiservers` names the API
server each kind cluster gets (`kind create cluster --name <source>` lands on the source's).
One trust anchor is not the double's doing: the kind target installs both clusters with the
same identity files, and each double's identity controller adopts them
(double-installed-identity), so leaves of either cluster verify in the other.

`Peering` is what the two real clusters would do between them:

- the source's service mirror (behaviour double-service-mirror): for each Link applied to the
  source whose controller Deployment exists there, it reads the target through the Link's
  credentials (reachable only when their server is `https://<target>-control-plane:6443`, the
  kind node's address on the shared Docker network), and for each target Service matching the
  Link's selector keeps a Service `<name>-<link>` and Endpoints of the same name in the source:
  the gateway address and port, the gateway identity and the remote Service's name in the
  annotations (L2@stable-2.11.0:multicluster/service-mirror/cluster_watcher.go
  `handleRemoteServiceCreated`, `createGatewayEndpoints`, `getMirroredServiceLabels`,
  `getMirroredServiceAnnotations`, `remapRemoteServicePorts`, `mirrorNamespaceIfNecessary`;
  deletions: `handleRemoteServiceDeleted`);
- the source pods' connections (behaviour double-linked-dial): a prober in a source pod that
  dials a Service name gets cluster DNS, `<svc>.<ns>.svc.cluster.local`; for a mirrored Service
  the connection goes to its Endpoints' address and port. There a real meshed pod's outbound
  proxy would resolve the mirror through its destination controller (the endpoint carries
  the gateway identity) and open mTLS to the gateway as the pod; the double stands for that
  proxy by doing the TLS handshake itself with the pod's leaf (issued by the source's
  authority from the shared anchor) and the gateway identity as SNI, as the reference's
  outside clients reach its gateway. An unmeshed pod connects in plaintext. The address and
  port are the target node's and the gateway Service's nodePort; the target's kube-proxy
  forwards them to a Ready gateway pod's target port, which the double does by looking the
  Service up (the client address stays the pod's: real kube-proxy may SNAT it to the node's,
  which the gateway's policy, any network, does not tell apart).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from linkerd_conformance.api import Client, Profile
from linkerd_conformance.prober.probe import tls_handshake

from .cluster import ClusterDouble

MC = "mirror.linkerd.io"
LINK_GROUP = "multicluster.linkerd.io"
MC_NS = "linkerd-multicluster"
Connect = Callable[[tuple[str, int], float], socket.socket]


def source_name(target: str) -> str:
    """The kind target's source cluster name (`KindTarget.source_target`)."""
    return f"{target}-source"


class Peering:
    """The service mirror of `source` reading `target`, and `source`'s pods' dialer."""

    def __init__(self, target: ClusterDouble, source: ClusterDouble, target_name: str,
                 period: float = 0.1) -> None:
        self.target, self.source, self.target_name = target, source, target_name
        self.period = period
        self.log: list[str] = []  # what the mirror did or could not do
        self._stop = threading.Event()
        source.apiserver.dialer = self.dialer
        self._thread = threading.Thread(target=self._run, name="double-service-mirror",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    # --- the service mirror ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.mirror_once()
            except Exception as exc:  # a half-applied object: the next round sees it whole
                self._note(f"mirror round failed: {exc!r}")

    def _note(self, line: str) -> None:
        if not self.log or self.log[-1] != line:
            self.log.append(line)

    def _side(self, group: str, kind: str, ns: str | None = None) -> list[dict[str, Any]]:
        api = self.source.apiserver
        with api._lock:
            return [o for (g, k, n, _), o in api._side.items()
                    if g == group and k == kind and (ns is None or n == ns)]

    def _links(self) -> list[dict[str, Any]]:
        """Links whose controller runs: a Deployment labelled with the link's name (2.11-2.17
        `linkerd-service-mirror-<name>` from `link`, 2.18+ `controller-<name>` from the
        install's `controllers` values)."""
        store = self.source.reference.store
        running = {(d.get("metadata", {}).get("labels") or {}).get(f"{MC}/cluster-name")
                   for d in store.list("Deployment") if d["metadata"].get("namespace") == MC_NS}
        return [link for link in self._side(LINK_GROUP, "Link", MC_NS)
                if link["metadata"]["name"] in running]

    def _reachable(self, link: dict[str, Any]) -> bool:
        """The Link's credentials name the target's API server as the other cluster reaches
        it: the kind node container on the shared network."""
        secret = (link.get("spec") or {}).get("clusterCredentialsSecret")
        found = [s for s in self._side("", "Secret", MC_NS) if s["metadata"]["name"] == secret]
        if not found:
            self._note(f"link {link['metadata']['name']}: no secret {secret}")
            return False
        kubeconfig = yaml.safe_load(base64.b64decode((found[0].get("data") or {})
                                                     .get("kubeconfig", "")) or b"{}") or {}
        servers = [c.get("cluster", {}).get("server") for c in kubeconfig.get("clusters") or []]
        wanted = f"https://{self.target_name}-control-plane:6443"
        if wanted not in servers:
            self._note(f"link {link['metadata']['name']}: the API server {servers} is not "
                       f"reachable from the source cluster (expected {wanted})")
            return False
        return True

    def mirror_once(self) -> None:
        api, store = self.source.apiserver, self.target.reference.store
        for link in self._links():
            if not self._reachable(link):
                continue
            spec, name = link.get("spec") or {}, link["metadata"]["name"]
            selector = ((spec.get("selector") or {}).get("matchLabels")) or {}
            exported = {}
            for svc in store.list("Service"):
                labels = svc["metadata"].get("labels") or {}
                if selector and all(labels.get(k) == v for k, v in selector.items()):
                    exported[(svc["metadata"]["namespace"], svc["metadata"]["name"])] = svc
            for (ns, svc_name), svc in exported.items():
                self._mirror(api, link, ns, svc_name, svc)
            for mirrored in self.source.reference.store.list("Service"):
                labels = mirrored["metadata"].get("labels") or {}
                if labels.get(f"{MC}/mirrored-service") != "true" or \
                        labels.get(f"{MC}/cluster-name") != name:
                    continue
                ns, local = mirrored["metadata"]["namespace"], mirrored["metadata"]["name"]
                if (ns, local.removesuffix(f"-{name}")) not in exported:
                    api.delete_object("v1", "Service", ns, local)
                    api.delete_object("v1", "Endpoints", ns, local)

    def _mirror(self, api: Any, link: dict[str, Any], ns: str, name: str,
                svc: dict[str, Any]) -> None:
        spec, link_name = link.get("spec") or {}, link["metadata"]["name"]
        local = f"{name}-{link_name}"
        fq = f"{name}.{ns}.svc.{spec.get('targetClusterDomain') or 'cluster.local'}"
        labels = {f"{MC}/mirrored-service": "true", f"{MC}/cluster-name": link_name,
                  **{k: v for k, v in (svc["metadata"].get("labels") or {}).items()
                     if not k.startswith(MC)}}
        ports = [{k: p[k] for k in ("name", "protocol", "port", "targetPort") if k in p}
                 for p in (svc.get("spec") or {}).get("ports") or []]
        want_svc = {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": local, "namespace": ns, "labels": labels,
                                 "annotations": {
                                     **(svc["metadata"].get("annotations") or {}),
                                     f"{MC}/remote-svc-fq-name": fq}},
                    "spec": {"ports": ports}}
        addresses = [{"ip": a} for a in str(spec.get("gatewayAddress") or "").split(",") if a]
        gateway_port = int(spec.get("gatewayPort") or 0)
        want_eps = {"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": local, "namespace": ns,
                                 "labels": {f"{MC}/mirrored-service": "true",
                                            f"{MC}/cluster-name": link_name},
                                 "annotations": {f"{MC}/remote-svc-fq-name": fq,
                                                 f"{MC}/remote-gateway-identity":
                                                     spec.get("gatewayIdentity", "")}},
                    "subsets": [{"addresses": addresses, "ports": [
                        {"name": p.get("name"), "protocol": p.get("protocol", "TCP"),
                         "port": gateway_port} for p in ports]}] if addresses else []}
        if self.source.reference.store.get("Namespace", "", ns) is None:
            api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        current = self.source.reference.store.get("Service", ns, local)
        if current is None or (current.get("spec") or {}).get("ports") != ports:
            api.apply(want_svc)
        if self._endpoints(ns, local) != want_eps["subsets"]:
            api.apply(want_eps)

    def _endpoints(self, ns: str, name: str) -> list[dict[str, Any]] | None:
        found = [e for e in self._side("", "Endpoints", ns) if e["metadata"]["name"] == name]
        return found[0].get("subsets") if found else None

    # --- the source pods' connections -----------------------------------------------------

    def dialer(self, client: Client) -> Connect:
        """A source pod's dialer: pod addresses as the reference dials them, Service names
        through cluster DNS (a mirrored one to the target's gateway, see the module)."""
        mesh = self.source.reference
        local = mesh.connector(client)
        ip, leaf = mesh._client(client)
        ctx = leaf.client_context() if leaf is not None else None

        def connect(addr: tuple[str, int], timeout: float) -> socket.socket:
            host, port = addr
            with contextlib.suppress(ValueError):
                ipaddress.ip_address(host)
                return local(addr, timeout)
            svc, ns = self._service_name(host)
            eps = [e for e in self._side("", "Endpoints", ns) if e["metadata"]["name"] == svc]
            if not eps:  # a Service of the source's own
                target = mesh._resolve_service(f"{svc}.{ns}:{port}", ns)
                return local(target, timeout)
            identity = (eps[0]["metadata"].get("annotations") or {}).get(
                f"{MC}/remote-gateway-identity")
            gw_ip, gw_port = self._endpoint(eps[0], host, port)
            pod_ip, pod_port = self._node_port(gw_ip, gw_port)
            sock = socket.create_connection((pod_ip, pod_port), timeout=timeout,
                                            source_address=(ip, 0))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ctx is None or not identity:
                return sock
            return tls_handshake(ctx, sock, identity)
        return connect

    @staticmethod
    def _service_name(host: str) -> tuple[str, str]:
        parts = host.removesuffix(".svc.cluster.local").removesuffix(".svc").split(".")
        if len(parts) != 2:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: Name or service not known")
        return parts[0], parts[1]

    def _endpoint(self, eps: dict[str, Any], host: str, port: int) -> tuple[str, int]:
        svc, ns = self._service_name(host)
        service = self.source.reference.store.get("Service", ns, svc) or {}
        by_port = {p.get("port"): p.get("name") for p in
                   (service.get("spec") or {}).get("ports") or []}
        for subset in eps.get("subsets") or []:
            for p in subset.get("ports") or []:
                if p.get("name") == by_port.get(port) and subset.get("addresses"):
                    return str(subset["addresses"][0]["ip"]), int(p["port"])
        raise ConnectionRefusedError(f"{host}:{port} has no endpoint")

    def _node_port(self, ip: str, port: int) -> tuple[str, int]:
        """The target's kube-proxy: its node address and a nodePort -> a Ready pod of that
        Service at the port's target port."""
        mesh = self.target.reference
        if ip != mesh.addresses.node_ip:
            raise ConnectionRefusedError(f"{ip}:{port}: no node of the target cluster")
        for svc in mesh.store.list("Service"):
            for p in (svc.get("spec") or {}).get("ports") or []:
                if p.get("nodePort") == port:
                    meta = svc["metadata"]
                    return mesh._resolve_service(f"{meta['name']}.{meta['namespace']}:"
                                                 f"{p['port']}", meta["namespace"])
        raise ConnectionRefusedError(f"{ip}:{port}: no Service has nodePort {port}")


@contextlib.contextmanager
def linked_doubles(profile: Profile, target_name: str, *, faults: tuple[str, ...] = (),
                   spares: int = 0, **kwargs: Any
                   ) -> Iterator[tuple[ClusterDouble, ClusterDouble, Peering]]:
    """The target double (with the faults), a source double, and their peering; the fake
    tools read the target's state file, which maps each kind cluster to its API server.
    `spares` more doubles (same version and faults: the same build of Linkerd) are the API
    servers of clusters of other names, taken by `kind create cluster` in order (the kind
    target's reinstalled clusters, `targets/reinstall.py`)."""
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(ClusterDouble(profile, faults=faults, name=target_name,
                                                   **kwargs))
        source = stack.enter_context(ClusterDouble(profile, name=source_name(target_name),
                                                   **kwargs))
        extra = [stack.enter_context(ClusterDouble(profile, faults=faults,
                                                   name=f"{target_name}-spare-{i}", **kwargs))
                 for i in range(spares)]
        state = target.read_state()
        state["cluster_apiservers"] = {target_name: target.url,
                                       source_name(target_name): source.url}
        state["spare_apiservers"] = [d.url for d in extra]
        target.write_state(state)
        peering = Peering(target, source, target_name)
        try:
            yield target, source, peering
        finally:
            peering.close()


def kubeconfig_of_source(work: Path, target_name: str) -> Path:
    """Where the kind target keeps the source cluster's kubeconfig, given --kubeconfig."""
    return work / f"{source_name(target_name)}-kubeconfig"
