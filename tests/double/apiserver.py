"""`ApiServer`: the Kubernetes REST API subset the cluster targets use, over one ReferenceMesh.

Plain HTTP/1.1 on 127.0.0.1 (threaded, stdlib `http.server`), good enough for the real
`kubernetes` Python client: discovery, server-side apply, merge and strategic-merge patches,
lists with selectors, `watch=true` streams, `pods/log`, and `pods/exec` over a WebSocket
(`v4.channel.k8s.io`). Every refusal is a `Status` object with Kubernetes' code, reason and
message. What it mirrors, and from where, is in README.md (the contract) and the comments here.

Objects of kinds the reference mesh models (Namespace, Service, ServiceAccount, Deployment and
the policy.linkerd.io kinds) live in the mesh's own store, so the mesh runs them; the rest
(ConfigMaps, Secrets, RBAC, CRDs, webhooks, Linkerd's control plane in namespace `linkerd`,
prober Pods, ...) live in a side store here and are only reported, never run.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime as dt
import enum
import hashlib
import ipaddress
import itertools
import json
import queue
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

from linkerd_conformance.api import Client, ObjectRef, TargetError
from linkerd_conformance.prober import ProbeSession
from linkerd_conformance.prober import probe as run_probe
from linkerd_conformance.prober.__main__ import (
    ProbeArgsError,
    parse_batch_args,
    parse_probe_args,
    parse_session_args,
)
from linkerd_conformance.prober.frontdoor import run_request as run_front_door
from linkerd_conformance.prober.held import serve_batch, serve_session
from linkerd_conformance.reference.admission import WEBHOOK, AdmissionError, admit
from linkerd_conformance.reference.cli import inbound_server
from linkerd_conformance.reference.mesh import ReferenceMesh
from linkerd_conformance.reference.store import stored_kind
from linkerd_conformance.reference.workloads import PROXY, PodRuntime, template_hash

POLICY = "policy.linkerd.io"
#: How long a `prober frontdoor` exec waits for its request line
FRONT_DOOR_STDIN_WAIT = 30.0
#: linkerd2-proxy's detect timeout setting (linkerd/app/src/env.rs ENV_INBOUND_DETECT_TIMEOUT)
DETECT_TIMEOUT_ENV = "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT"
#: The objects `linkerd install` renders for the identity it is given (namespace linkerd)
IDENTITY_ISSUER, TRUST_ROOTS = "linkerd-identity-issuer", "linkerd-identity-trust-roots"
GATEWAY = "gateway.networking.k8s.io"
PROBER_REPOSITORY_SUFFIX = "linkerd-conformance/prober"
PROBER_LABEL = ("app.kubernetes.io/name", "linkerd-conformance-prober")
CONTROL_PLANE_NS = "linkerd"
#: Kinds the reference mesh models; their objects go to its store (a Deployment in `linkerd`
#: excepted: the control plane is reported, not run).
REFERENCE_KINDS = {("", "Namespace"), ("", "Service"), ("", "ServiceAccount"),
                   ("apps", "Deployment")} | {
    (POLICY, k) for k in ("Server", "ServerAuthorization", "AuthorizationPolicy",
                          "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute")} | {
    (GATEWAY, k) for k in ("HTTPRoute", "GRPCRoute")}  # inbound routes (F4.12, F4.13)
#: kube-apiserver's default --service-node-port-range (kubernetes.io/docs/concepts/services-
#: networking/service/#type-nodeport: "default: 30000-32767")
NODE_PORT_RANGE = (30000, 32767)
#: Namespaces every cluster has.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WATCH_TICK = 0.05  # how often a watch looks for changes, in seconds
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
V4_CHANNEL = "v4.channel.k8s.io"


def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kube_minor(version: str) -> int:
    m = re.match(r"v?(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"not a Kubernetes version: {version!r} (expected like v1.23.17)")
    return int(m.group(2))


# --- resource types ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RType:
    """One served resource: `deployments` in apps/v1."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (name, kind, verbs)
    warning: str | None = None  # the deprecation warning of this version, if deprecated

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How error messages name it: `deployments.apps`, `namespaces`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def _removed_in_125(gv: str, kind: str, replacement: str | None) -> str:
    # k8s.io/apiserver pkg/endpoints/deprecation: "%s %s is deprecated in v%d.%d+,
    # unavailable in v%d.%d+; use %s %s"
    use = f"; use {replacement} {kind}" if replacement else ""
    return f"{gv} {kind} is deprecated in v1.21+, unavailable in v1.25+{use}"


def builtin_types(minor: int) -> list[RType]:
    """The built-in resources a cluster of Kubernetes 1.`minor` serves (the subset used)."""
    core = [
        RType("", "v1", "Namespace", "namespaces", False, ("ns",),
              (("status", "Namespace", ("get", "patch", "update")),)),
        RType("", "v1", "Pod", "pods", True, ("po",),
              (("log", "Pod", ("get",)), ("exec", "PodExecOptions", ("create", "get")),
               ("status", "Pod", ("get", "patch", "update")))),
        RType("", "v1", "Service", "services", True, ("svc",)),
        RType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
        RType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
        RType("", "v1", "Secret", "secrets", True),
        RType("", "v1", "Event", "events", True, ("ev",)),
        RType("", "v1", "Endpoints", "endpoints", True, ("ep",)),
        RType("", "v1", "Node", "nodes", False, ("no",)),
    ]
    apps = [RType("apps", "v1", "Deployment", "deployments", True, ("deploy",),
                  (("status", "Deployment", ("get", "patch", "update")),
                   ("scale", "Scale", ("get", "patch", "update")))),
            RType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",)),
            RType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",)),
            RType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",))]
    batch = [RType("batch", "v1", "Job", "jobs", True),
             RType("batch", "v1", "CronJob", "cronjobs", True, ("cj",))]
    if minor < 25:  # batch/v1beta1 CronJob: deprecated 1.21, removed 1.25
        batch.append(RType("batch", "v1beta1", "CronJob", "cronjobs", True, ("cj",),
                           warning=_removed_in_125("batch/v1beta1", "CronJob", "batch/v1")))
    rbac = [RType("rbac.authorization.k8s.io", "v1", k, p, ns) for k, p, ns in (
        ("ClusterRole", "clusterroles", False), ("ClusterRoleBinding", "clusterrolebindings",
                                                 False),
        ("Role", "roles", True), ("RoleBinding", "rolebindings", True))]
    admission = [RType("admissionregistration.k8s.io", "v1", k, p, False) for k, p in (
        ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
        ("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"))]
    policy = [RType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True,
                    ("pdb",))]
    if minor < 25:
        policy += [
            RType("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets", True,
                  ("pdb",), warning=_removed_in_125("policy/v1beta1", "PodDisruptionBudget",
                                                    "policy/v1")),
            RType("policy", "v1beta1", "PodSecurityPolicy", "podsecuritypolicies", False,
                  ("psp",), warning=_removed_in_125("policy/v1beta1", "PodSecurityPolicy",
                                                    None))]
    other = [
        RType("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
              "customresourcedefinitions", False, ("crd", "crds")),
        RType("apiregistration.k8s.io", "v1", "APIService", "apiservices", False),
        RType("coordination.k8s.io", "v1", "Lease", "leases", True),
        RType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    ]
    return core + apps + batch + rbac + admission + policy + other


def _version_priority(v: str) -> tuple[int, int, int]:
    """Kubernetes' version order (v1 > v1beta2 > v1beta1 > v1alpha1), highest first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (0, 0, 0)
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (stage, int(m.group(1)), int(m.group(3) or 0))


def crd_types(crd: Mapping[str, Any]) -> list[RType]:
    """The resources a CustomResourceDefinition serves (its served versions)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        warning = None
        if v.get("deprecated"):
            # apiextensions-apiserver: the default is "<group>/<version> <Kind> is deprecated"
            warning = v.get("deprecationWarning") or (
                f"{spec.get('group')}/{v['name']} {names.get('kind')} is deprecated")
        out.append(RType(spec.get("group", ""), v["name"], names.get("kind", ""),
                         names.get("plural", ""), spec.get("scope", "Namespaced") ==
                         "Namespaced", tuple(names.get("shortNames") or ()),
                         (("status", names.get("kind", ""), ("get", "patch", "update")),)
                         if "status" in (v.get("subresources") or {}) else (),
                         warning))
    return out


# --- errors -------------------------------------------------------------------------------


class ApiError(Exception):
    """A refusal, sent as a `Status` object."""

    def __init__(self, code: int, reason: str, message: str,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = dict(details or {})

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Failure", "message": self.message, "code": self.code}
        if self.reason:
            out["reason"] = self.reason
        if self.details:
            out["details"] = self.details
        return out


def not_found(rt: RType, name: str) -> ApiError:
    details = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', details)


def namespace_not_found(ns: str) -> ApiError:
    return ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                    {"name": ns, "kind": "namespaces"})


NO_RESOURCE = ApiError(404, "NotFound", "the server could not find the requested resource")

_INVALID = re.compile(r'^(?P<kind>\S+) "(?P<name>[^"]*)" is invalid: (?P<detail>.*)$', re.S)
_CAUSE_REASONS = (("Required value", "FieldValueRequired"),
                  ("Unsupported value", "FieldValueNotSupported"),
                  ("Invalid value", "FieldValueInvalid"))


def refusal(message: str, rt: RType, name: str) -> ApiError:
    """A reference store refusal (`TargetError`) as the API server's Status."""
    if message.startswith(WEBHOOK):
        # k8s.io/apiserver admission/plugin/webhook/errors ToStatusErr: a webhook refusal
        # without a code is 400, "admission webhook %q denied the request: %s", no reason
        return ApiError(400, "", message)
    m = _INVALID.match(message)
    if m:
        detail = m.group("detail")
        field, _, what = detail.partition(": ")
        reason = next((r for text, r in _CAUSE_REASONS if what.startswith(text)),
                      "FieldValueInvalid")
        details: dict[str, Any] = {"name": name, "kind": rt.kind,
                                   "causes": [{"reason": reason, "message": what,
                                               "field": field}]}
        if rt.group:
            details["group"] = rt.group
        return ApiError(422, "Invalid", message, details)
    ns = re.fullmatch(r'namespaces "([^"]*)" not found', message)
    if ns:
        return namespace_not_found(ns.group(1))
    if message.startswith("no matches for kind"):
        return ApiError(404, "NotFound", message)
    return ApiError(400, "BadRequest", message)


# --- selectors and patches ------------------------------------------------------------------


def label_selector(text: str | None) -> Callable[[Mapping[str, str]], bool]:
    """A `labelSelector` query (`a=b,c!=d,e in (x,y),!f,g`) as a predicate on labels."""
    if not text:
        return lambda labels: True
    terms: list[Callable[[Mapping[str, str]], bool]] = []
    for raw in re.findall(r"(?:[^,(]|\([^)]*\))+", text):
        term = raw.strip()
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            key, op = m.group(1), m.group(2)
            values = {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                terms.append(lambda lb, k=key, vs=values: lb.get(k) in vs)
            else:
                terms.append(lambda lb, k=key, vs=values: lb.get(k) not in vs)
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            terms.append(lambda lb, k=key, v=value: lb.get(k) != v)
        elif "=" in term:
            key, value = (s.strip() for s in term.split("==" if "==" in term else "=", 1))
            terms.append(lambda lb, k=key, v=value: lb.get(k) == v)
        elif term.startswith("!"):
            absent = term[1:].strip()
            terms.append(lambda lb, k=absent: k not in lb)
        elif term:
            terms.append(lambda lb, k=term: k in lb)
    return lambda labels: all(t(labels) for t in terms)


FIELDS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name"),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace"),
    "status.phase": lambda o: (o.get("status") or {}).get("phase"),
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName"),
    "involvedObject.name": lambda o: (o.get("involvedObject") or {}).get("name"),
    "involvedObject.kind": lambda o: (o.get("involvedObject") or {}).get("kind"),
    "involvedObject.namespace": lambda o: (o.get("involvedObject") or {}).get("namespace"),
    "type": lambda o: o.get("type"),
    "reason": lambda o: o.get("reason"),
}


def field_selector(text: str | None) -> Callable[[Mapping[str, Any]], bool]:
    if not text:
        return lambda obj: True
    terms = []
    for term in text.split(","):
        neg = "!=" in term
        key, value = (s.strip() for s in re.split(r"!=|==|=", term, maxsplit=1))
        if key not in FIELDS:
            raise ApiError(400, "BadRequest", f'"{key}" is not a known field selector: only '
                           f'"{", ".join(sorted(FIELDS))}"')
        terms.append((FIELDS[key], value, neg))
    return lambda obj: all((str(get(obj)) != v) if neg else (str(get(obj)) == v)
                           for get, v, neg in terms)


def merge_patch(target: Any, patch: Any, strategic: bool = False) -> Any:
    """RFC 7386 JSON merge patch; `strategic` merges lists of named objects by name (the
    strategic-merge-patch rule for containers, env, ports, volumes)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        elif (strategic and isinstance(value, list) and isinstance(out.get(key), list)
              and all(isinstance(v, Mapping) and "name" in v for v in value + out[key])):
            merged = {v["name"]: v for v in out[key]}
            for v in value:
                merged[v["name"]] = merge_patch(merged.get(v["name"], {}), v, True)
            out[key] = list(merged.values())
        else:
            out[key] = merge_patch(out.get(key), value, strategic)
    return out


def _plain(value: Any) -> Any:
    """Dataclasses, enums, networks and tuples as YAML-safe values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --- exec -----------------------------------------------------------------------------------


class ExecProcess:
    """What an exec runs "in the container". `run` returns the exit code; stdin lines (when
    the client asked for stdin) arrive through `feed_stdin`."""

    def __init__(self, stdout: Callable[[bytes], None], stderr: Callable[[bytes], None]) -> None:
        self.stdout, self.stderr = stdout, stderr
        self._buffer = b""
        self.lines: list[bytes] = []
        self.stdin_closed = threading.Event()

    def feed_stdin(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            self.on_line(line)

    def on_line(self, line: bytes) -> None:
        self.lines.append(line)

    def run(self) -> int:
        raise NotImplementedError


class Refuse(ExecProcess):
    """A command the double cannot run: a sentence on stderr and an exit code."""

    def __init__(self, stdout: Callable[[bytes], None], stderr: Callable[[bytes], None],
                 message: str, code: int = 126) -> None:
        super().__init__(stdout, stderr)
        self.message, self.code = message, code

    def run(self) -> int:
        self.stderr((self.message + "\n").encode())
        return self.code


class ProbeOnce(ExecProcess):
    """`python -m linkerd_conformance.prober --protocol ...`: one probe from the pod."""

    def __init__(self, stdout: Callable[[bytes], None], stderr: Callable[[bytes], None],
                 argv: list[str], connect: Callable[[], Any]) -> None:
        super().__init__(stdout, stderr)
        self.argv, self.connect = argv, connect

    def run(self) -> int:
        try:
            protocol, host, port, timeout, request = parse_probe_args(self.argv)
        except ProbeArgsError as e:
            self.stderr(f"{e}\n".encode())
            return 2
        except SystemExit as e:  # --help
            return int(e.code or 0)
        outcome = run_probe(protocol, host, port, timeout=timeout, connect=self.connect(),
                            **request)
        self.stdout((outcome.to_json() + "\n").encode())
        return 0


class ProbeHeld(ExecProcess):
    """`python -m linkerd_conformance.prober session ...`: the prober's own session loop
    (`prober.held.serve_session`), its stdin the exec's channel 0, held until it closes."""

    def __init__(self, stdout: Callable[[bytes], None], stderr: Callable[[bytes], None],
                 argv: list[str], connect: Callable[[], Any]) -> None:
        super().__init__(stdout, stderr)
        self.argv, self.connect = argv, connect
        self.queue: queue.Queue[str] = queue.Queue()

    def on_line(self, line: bytes) -> None:
        self.queue.put(line.decode("utf-8", "replace") + "\n")

    def _lines(self) -> Iterator[str]:
        while True:
            try:
                yield self.queue.get(timeout=0.05)
            except queue.Empty:
                if self.stdin_closed.is_set():
                    return

    def run(self) -> int:
        try:
            protocol, host, port, timeout = parse_session_args(self.argv)
        except ProbeArgsError as e:
            self.stderr(f"{e}\n".encode())
            return 2
        session = ProbeSession(protocol, host, port, timeout=timeout, connect=self.connect())
        return serve_session(session, self._lines(), self._out())  # type: ignore[arg-type]

    def _out(self) -> Any:
        """A text stream onto the exec's stdout channel, as the prober's loops write to."""
        write = self.stdout

        class _Out:
            def write(self, text: str) -> None:
                write(text.encode())

            def flush(self) -> None:
                pass

        return _Out()


class FrontDoorOnce(ExecProcess):
    """`python -m linkerd_conformance.prober frontdoor`: the prober's own front-door
    operation (`prober.frontdoor.run_request`) on the first stdin line, from the pod."""

    def __init__(self, stdout: Callable[[bytes], None], stderr: Callable[[bytes], None],
                 connect: Callable[[], Any]) -> None:
        super().__init__(stdout, stderr)
        self.connect = connect
        self.queue: queue.Queue[str] = queue.Queue()

    def on_line(self, line: bytes) -> None:
        self.queue.put(line.decode("utf-8", "replace"))

    def run(self) -> int:
        deadline = time.monotonic() + FRONT_DOOR_STDIN_WAIT
        while True:
            try:
                line = self.queue.get(timeout=0.05)
                break
            except queue.Empty:
                if self.stdin_closed.is_set() or time.monotonic() > deadline:
                    self.stderr(b"prober frontdoor: bad request: no request line on stdin.\n")
                    return 2
        try:
            result = run_front_door(line, self.connect())
        except (ValueError, TypeError, KeyError) as e:
            self.stderr(f"prober frontdoor: bad request: {e}.\n".encode())
            return 2
        self.stdout((json.dumps(result, sort_keys=True) + "\n").encode())
        return 0


class ProbeBatch(ProbeHeld):
    """`python -m linkerd_conformance.prober batch --timeout T`: the prober's own batch loop
    (`prober.held.serve_batch`), each stdin line a probe on a new connection of the pod's."""

    def run(self) -> int:
        try:
            timeout = parse_batch_args(self.argv)
        except ProbeArgsError as e:
            self.stderr(f"{e}\n".encode())
            return 2

        def probe(protocol: str, host: str, port: int, **request: Any) -> Any:
            return run_probe(protocol, host, port, connect=self.connect(), **request)

        return serve_batch(probe, timeout, self._lines(), self._out())  # type: ignore[arg-type]


class _WebSocket:
    """The server end of RFC 6455 framing over a connected socket (text and binary frames)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = False

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("websocket closed")
            data += chunk
        return data

    def recv(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; client frames are masked."""
        b0, b1 = self._recv_exact(2)
        opcode, length = b0 & 0x0F, b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._recv_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._recv_exact(8))
        mask = self._recv_exact(4) if b1 & 0x80 else b"\0\0\0\0"
        data = self._recv_exact(length)
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with self.lock:
            if not self.closed:
                self.sock.sendall(head + payload)

    def channel(self, channel: int, data: bytes) -> None:
        if data:
            self.send(0x2, bytes([channel]) + data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send(0x8, struct.pack("!H", 1000))
        self.closed = True


# --- the server ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK, 40 ms on every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.api._track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.api._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _dispatch(self) -> None:
        self.server.api.serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


@dataclasses.dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return (self.param(name) or "").lower() in ("true", "1")


def split_networks(text: str) -> tuple[str, ...]:
    """A comma-separated list of networks, empty entries skipped (as linkerd2-proxy's
    `parse_networks` reads its env, linkerd/app/src/env/types.rs)."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


class ApiServer:
    """A Kubernetes API server on 127.0.0.1 for one running `ReferenceMesh`.

    `ApiServer(mesh, kubernetes_version="v1.23.17", cluster_name="kind")`; `.url`, `.port`,
    `.kubernetes_version` (settable), `.close()` (stops serving, closes every connection and
    joins every thread; the mesh is the caller's to close).
    """

    def __init__(self, mesh: ReferenceMesh, *, kubernetes_version: str = "v1.23.17",
                 cluster_name: str = "kind") -> None:
        kube_minor(kubernetes_version)
        self.mesh = mesh
        self.kubernetes_version = kubernetes_version
        self.cluster_name = cluster_name
        self.created = time.time()
        self._side: dict[tuple[str, str, str, str], dict[str, Any]] = {}  # group, kind, ns, name
        self._lock = threading.RLock()
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._versions: dict[tuple[Any, ...], tuple[str, int, int]] = {}
        self._transitions: dict[tuple[Any, ...], float] = {}
        self._ips: dict[tuple[str, str], str] = {}
        self._conns: set[socket.socket] = set()
        self._stop = threading.Event()
        #: how a prober pod's connections are made (`ReferenceMesh.connector` unless a
        #: second double is linked to this one: `multicluster.Peering`)
        self.dialer: Callable[[Client], Any] = mesh.connector
        self._node_ports = itertools.count(NODE_PORT_RANGE[0])
        for ns in SYSTEM_NAMESPACES:
            mesh.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self._httpd = _Server(self)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"double-apiserver-{self.port}", daemon=True)
        self._thread.start()

    # ---- lifecycle ----

    def _track(self, sock: socket.socket, alive: bool) -> None:
        with self._lock:
            (self._conns.add if alive else self._conns.discard)(sock)

    def close(self) -> None:
        """Stop serving; end watches and execs; close every connection; join every thread."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._httpd.shutdown()
        self._thread.join(timeout=5)
        with self._lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()  # joins the request threads (block_on_close)

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- what is served ----

    @property
    def minor(self) -> int:
        return kube_minor(self.kubernetes_version)

    def types(self) -> list[RType]:
        out = builtin_types(self.minor)
        with self._lock:
            crds = [o for (g, k, _, _), o in self._side.items()
                    if k == "CustomResourceDefinition"]
        for crd in crds:
            out += crd_types(crd)
        return out

    def type_of(self, api_version: str, kind: str) -> RType:
        """The served type of an apiVersion and kind (ApiError 404 when not served)."""
        group, _, version = api_version.rpartition("/")
        for rt in self.types():
            if (rt.group, rt.version, rt.kind) == (group, version, kind):
                return rt
        raise ApiError(404, "NotFound", f'no matches for kind "{kind}" in version '
                       f'"{api_version}"')

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of one object, as a client's PATCH would (for set-up code)."""
        rt = self.type_of(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        meta = obj.get("metadata") or {}
        ns = (meta.get("namespace") or "default") if rt.namespaced else None
        return self._write(rt, ns, self._meta_name(obj), copy.deepcopy(dict(obj)))[1]

    def delete_object(self, api_version: str, kind: str, ns: str | None, name: str) -> None:
        """Delete one object if it exists (for set-up code, as a client's DELETE would)."""
        rt = self.type_of(api_version, kind)
        if self._exists(rt, ns, name):
            self._delete(rt, ns, name)

    def _find(self, group: str, version: str, plural: str) -> RType:
        for rt in self.types():
            if (rt.group, rt.version, rt.plural) == (group, version, plural):
                return rt
        raise NO_RESOURCE

    # ---- HTTP ----

    def serve(self, h: _Handler) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = _Request(h.command, parsed.path, urllib.parse.parse_qs(parsed.query,
                                                                    keep_blank_values=True),
                       h.headers, body)
        warnings: list[str] = []
        try:
            result = self._route(h, req, warnings)
        except ApiError as e:
            self._send(h, e.code, e.status(), warnings)
            return
        except Exception as e:  # a bug in the double: say so, as the API server would
            self._send(h, 500, ApiError(500, "InternalError",
                                        f"the cluster double failed: {e!r}").status(), warnings)
            return
        if result is None:  # streamed or upgraded already
            return
        code, payload = result
        self._send(h, code, payload, warnings)

    def _send(self, h: _Handler, code: int, payload: Any, warnings: list[str],
              content_type: str = "application/json") -> None:
        if isinstance(payload, bytes | str):
            data = payload.encode() if isinstance(payload, str) else payload
            if content_type == "application/json":
                content_type = "text/plain; charset=utf-8"
        else:
            data = json.dumps(payload).encode()
        try:
            h.send_response(code)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(data)))
            for w in warnings:
                h.send_header("Warning", f'299 - "{w}"')
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    def _route(self, h: _Handler, req: _Request, warnings: list[str]
               ) -> tuple[int, Any] | None:
        parts = [urllib.parse.unquote(p) for p in req.path.strip("/").split("/") if p]
        if parts == ["version"]:
            return 200, self._version()
        if parts[:2] == ["_double", "v1"]:
            return self._internal(req, parts[2:])
        if parts == ["api"]:
            address = {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [address]}
        if parts == ["api", "v1"]:
            return 200, self._resource_list("", "v1")
        if parts == ["apis"]:
            return 200, self._group_list()
        if len(parts) == 2 and parts[0] == "apis":
            for g in self._group_list()["groups"]:
                if g["name"] == parts[1]:
                    return 200, {"kind": "APIGroup", "apiVersion": "v1", **g}
            raise NO_RESOURCE
        if len(parts) == 3 and parts[0] == "apis":
            listing = self._resource_list(parts[1], parts[2])
            if not listing["resources"]:
                raise NO_RESOURCE
            return 200, listing
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise NO_RESOURCE
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        rt = self._find(group, version, rest[0])
        if rt.namespaced != (ns is not None) and not (ns is None and len(rest) == 1
                                                      and req.method == "GET"):
            raise NO_RESOURCE
        if rt.warning:
            warnings.append(rt.warning)
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise NO_RESOURCE
        return self._operate(h, req, rt, ns, name, sub)

    def _operate(self, h: _Handler, req: _Request, rt: RType, ns: str | None,
                 name: str | None, sub: str | None) -> tuple[int, Any] | None:
        m = req.method
        if sub == "exec" and rt.kind == "Pod" and m in ("GET", "POST"):
            assert ns is not None and name is not None
            self._exec(h, req, ns, name)
            return None
        if sub == "log" and rt.kind == "Pod" and m == "GET":
            assert ns is not None and name is not None
            return 200, self._logs(req, ns, name)
        if sub not in (None, "status"):
            raise NO_RESOURCE
        if name is None:
            if m == "GET":
                if req.flag("watch"):
                    self._watch(h, req, rt, ns)
                    return None
                return 200, self._list_response(rt, ns, req)
            if m == "POST":
                obj = self._decode(req)
                return self._write(rt, ns, self._meta_name(obj), obj, create=True)
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        if m == "GET":
            return 200, self._get(rt, ns, name)
        if m == "PUT":
            obj = self._decode(req)
            self._get(rt, ns, name)
            return self._write(rt, ns, name, obj)
        if m == "PATCH":
            return self._patch(req, rt, ns, name)
        if m == "DELETE":
            return 200, self._delete(rt, ns, name)
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource")

    # ---- discovery ----

    def _version(self) -> dict[str, Any]:
        v = self.kubernetes_version
        major, minor = re.match(r"v?(\d+)\.(\d+)", v).groups()  # type: ignore[union-attr]
        return {"major": major, "minor": minor, "gitVersion": v,
                "gitCommit": hashlib.sha1(v.encode()).hexdigest(), "gitTreeState": "clean",
                "buildDate": "2023-01-01T00:00:00Z", "goVersion": "go1.20", "compiler": "gc",
                "platform": "linux/amd64"}

    def _group_list(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for rt in self.types():
            if rt.group and rt.version not in groups.setdefault(rt.group, []):
                groups[rt.group].append(rt.version)
        out = []
        for g, versions in groups.items():
            versions.sort(key=_version_priority, reverse=True)
            entries = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
            out.append({"name": g, "versions": entries, "preferredVersion": entries[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for rt in self.types():
            if (rt.group, rt.version) != (group, version):
                continue
            entry: dict[str, Any] = {"name": rt.plural, "singularName": rt.kind.lower(),
                                     "namespaced": rt.namespaced, "kind": rt.kind,
                                     "verbs": list(VERBS)}
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            resources.append(entry)
            for sub, kind, verbs in rt.subresources:
                resources.append({"name": f"{rt.plural}/{sub}", "singularName": "",
                                  "namespaced": rt.namespaced, "kind": kind,
                                  "verbs": list(verbs)})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": resources}

    # ---- internal endpoints ----

    def _internal(self, req: _Request, parts: list[str]) -> tuple[int, Any]:
        if parts == ["cluster"]:
            if req.method == "POST":
                data = json.loads(req.body or b"{}")
                if "kubernetes_version" in data:
                    try:
                        kube_minor(str(data["kubernetes_version"]))
                    except ValueError as e:
                        raise ApiError(400, "BadRequest", str(e)) from None
                    self.kubernetes_version = str(data["kubernetes_version"])
                if "name" in data:
                    self.cluster_name = str(data["name"])
            return 200, {"kubernetes_version": self.kubernetes_version,
                         "name": self.cluster_name, "node": self.node_name}
        if len(parts) >= 5 and parts[0] == "namespaces" and parts[2] == "pods":
            ns, name, what = parts[1], parts[3], parts[4:]
            rt = self._runtime(ns, name)
            if rt is None or rt.proxy is None:
                raise ApiError(404, "NotFound", f'pod "{name}" in namespace "{ns}" has no '
                               "linkerd-proxy (not found, or not meshed)")
            if what == ["metrics"]:
                return 200, rt.proxy.metrics.render()
            if len(what) == 2 and what[0] == "policy" and what[1].isdigit():
                # what the policy controller's gRPC API serves for the port, as the
                # InboundServer message (the fake `linkerd diagnostics policy` prints it)
                policy = self.mesh.controller.policy_for(rt, int(what[1]))
                served = inbound_server(policy, self.mesh.controller.cluster_networks)
                return 200, yaml.safe_dump(served, sort_keys=False)
        raise NO_RESOURCE

    # ---- objects: where they live ----

    def _in_reference(self, rt: RType, ns: str | None) -> bool:
        if (rt.group, rt.kind) not in REFERENCE_KINDS:
            return False
        return not (rt.kind == "Deployment" and ns == CONTROL_PLANE_NS)

    def _meta_name(self, obj: Mapping[str, Any]) -> str:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ApiError(422, "Invalid", "name or generateName is required")
        return str(name)

    def _decode(self, req: _Request) -> dict[str, Any]:
        try:
            obj = json.loads(req.body)
        except ValueError:
            try:
                obj = yaml.safe_load(req.body)
            except yaml.YAMLError as e:
                raise ApiError(400, "BadRequest", f"the body is not JSON or YAML: {e}") from None
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body is not an object")
        return obj

    def _namespace_exists(self, ns: str) -> bool:
        return self.mesh.store.get("Namespace", "", ns) is not None

    def _stamp(self, rt: RType, obj: dict[str, Any]) -> dict[str, Any]:
        """Our own resourceVersion: bumped whenever what a client would see changes."""
        meta = obj.setdefault("metadata", {})
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
        key = (rt.group, rt.kind, meta.get("namespace"), meta.get("name"), meta.get("uid"))
        fingerprint = hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()
                                   ).hexdigest()
        with self._lock:
            known = self._versions.get(key)
            if known is None or known[0] != fingerprint:
                rv = next(self._rv)
                self._last_rv = rv
                known = (fingerprint, rv, known[2] if known else rv)
                self._versions[key] = known
        meta["resourceVersion"] = str(known[1])
        return obj

    def _first_rv(self, rt: RType, obj: Mapping[str, Any]) -> int:
        meta = obj.get("metadata") or {}
        key = (rt.group, rt.kind, meta.get("namespace"), meta.get("name"), meta.get("uid"))
        with self._lock:
            known = self._versions.get(key)
        return known[2] if known else 0

    def _since(self, key: tuple[Any, ...]) -> str:
        with self._lock:
            return rfc3339(self._transitions.setdefault(key, time.time()))

    # ---- reads ----

    def _objects(self, rt: RType, ns: str | None) -> list[dict[str, Any]]:
        """Every object of a type (in `ns`, or everywhere), rendered and stamped."""
        if rt.kind == "Pod" and rt.group == "":
            raw = self._pods(ns)
        elif rt.kind == "Node" and rt.group == "":
            raw = [self._node()]
        elif rt.kind == "Event" and rt.group == "":
            raw = self._events(ns) + self._side_list(rt, ns)
        elif (rt.group, rt.kind) in REFERENCE_KINDS:
            raw = []
            if rt.kind == "Deployment" and ns in (None, CONTROL_PLANE_NS):
                raw = [self._render_side_deployment(o) for o in self._side_list(rt, ns)]
            if ns != CONTROL_PLANE_NS or rt.kind != "Deployment":
                store_ns = None if ns is None else ("" if not rt.namespaced else ns)
                raw += [self._render_reference(rt, o)
                        for o in self.mesh.store.list(stored_kind(rt.group, rt.kind), store_ns)]
        else:
            raw = self._side_list(rt, ns)
        out = []
        for obj in raw:
            obj["apiVersion"] = rt.group_version
            obj["kind"] = rt.kind
            out.append(self._stamp(rt, obj))
        return out

    def _get(self, rt: RType, ns: str | None, name: str) -> dict[str, Any]:
        if rt.namespaced and ns is not None and not self._namespace_exists(ns):
            raise not_found(rt, name)
        for obj in self._objects(rt, ns):
            if obj["metadata"].get("name") == name:
                return obj
        raise not_found(rt, name)

    def _list_response(self, rt: RType, ns: str | None, req: _Request) -> dict[str, Any]:
        items = self._select(rt, ns, req)
        with self._lock:
            rv = self._last_rv
        return {"kind": f"{rt.kind}List", "apiVersion": rt.group_version,
                "metadata": {"resourceVersion": str(rv)}, "items": items}

    def _select(self, rt: RType, ns: str | None, req: _Request) -> list[dict[str, Any]]:
        labels = label_selector(req.param("labelSelector"))
        fields = field_selector(req.param("fieldSelector"))
        return [o for o in self._objects(rt, ns)
                if labels(o["metadata"].get("labels") or {}) and fields(o)]

    def _side_list(self, rt: RType, ns: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(o) for (g, k, n, _), o in sorted(
                self._side.items(), key=lambda kv: (kv[1]["metadata"]["creationTimestamp"],
                                                    kv[0][3]))
                    if g == rt.group and k == rt.kind and (ns is None or n == ns)]

    def _render_reference(self, rt: RType, stored: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(stored)
        meta = obj["metadata"]
        created = meta.get("creationTimestamp")
        if isinstance(created, int | float):
            meta["creationTimestamp"] = rfc3339(created)
        if rt.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif rt.kind == "Deployment":
            obj["status"] = self._deployment_status(stored)
        return obj

    def _deployment_status(self, dep: Mapping[str, Any]) -> dict[str, Any]:
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        want = int(dep["spec"].get("replicas", 1))
        h = template_hash(dep["spec"]["template"])
        pods = [p for p in self.mesh.workloads.pods_of(ns, name) if not p.terminating]
        updated = sum(1 for p in pods if p.template_hash == h)
        ready = sum(1 for p in pods if p.ready)
        settled = updated >= want and len(pods) == updated and ready >= want
        return self._status_fields(dep, want, len(pods), updated, ready, settled)

    def _status_fields(self, dep: Mapping[str, Any], want: int, replicas: int, updated: int,
                       ready: int, settled: bool) -> dict[str, Any]:
        # DeploymentStatus: every count is `omitempty`, as the real JSON shows
        status: dict[str, Any] = {"observedGeneration": dep["metadata"].get("generation", 1)}
        for field, value in (("replicas", replicas), ("updatedReplicas", updated),
                             ("readyReplicas", ready), ("availableReplicas", ready),
                             ("unavailableReplicas", max(0, replicas - ready))):
            if value:
                status[field] = value
        key = (dep["metadata"].get("uid"),)
        available = ready >= want
        status["conditions"] = [
            {"type": "Available", "status": "True" if available else "False",
             "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
             "message": "Deployment has minimum availability." if available else
             "Deployment does not have minimum availability.",
             "lastUpdateTime": self._since((*key, "Available", available)),
             "lastTransitionTime": self._since((*key, "Available", available))},
            {"type": "Progressing", "status": "True",
             "reason": "NewReplicaSetAvailable" if settled else "ReplicaSetUpdated",
             "message": (f'ReplicaSet "{dep["metadata"]["name"]}-'
                         f'{template_hash(dep["spec"]["template"])}" '
                         + ("has successfully progressed." if settled else "is progressing.")),
             "lastUpdateTime": self._since((*key, "Progressing", settled)),
             "lastTransitionTime": self._since((*key, "Progressing"))},
        ]
        return status

    def _render_side_deployment(self, dep: dict[str, Any]) -> dict[str, Any]:
        """A control-plane Deployment: reported available, not run."""
        want = int((dep.get("spec") or {}).get("replicas", 1))
        dep["status"] = self._status_fields(dep, want, want, want, want, True)
        return dep

    # ---- pods ----

    def _runtime(self, ns: str, name: str) -> PodRuntime | None:
        for p in self.mesh.workloads.pods_of_namespace(ns):
            if p.name == name and not p.terminating:
                return p
        return None

    def _pods(self, ns: str | None) -> list[dict[str, Any]]:
        namespaces = ([ns] if ns is not None else
                      [o["metadata"]["name"] for o in self.mesh.store.list("Namespace")])
        out: list[dict[str, Any]] = []
        for n in namespaces:
            for p in sorted(self.mesh.workloads.pods_of_namespace(n), key=lambda p: p.created):
                out.append(self._render_runtime_pod(p))
            rt = RType("apps", "v1", "Deployment", "deployments", True)
            if n == CONTROL_PLANE_NS:
                for dep in self._side_list(rt, n):
                    out += self._control_plane_pods(dep)
            out += [self._render_bare_pod(o)
                    for o in self._side_list(RType("", "v1", "Pod", "pods", True), n)]
        return out

    @property
    def node_name(self) -> str:
        return f"{self.cluster_name}-control-plane"

    def _proxy_container(self, env: Mapping[str, str], native: bool) -> dict[str, Any]:
        # the reference's proxies detect for less than linkerd2-proxy's 10 s default: said in
        # the env var the proxy reads it from (double-proxy-detect-timeout)
        env = {**env, DETECT_TIMEOUT_ENV: f"{round(self.mesh.detect_timeout * 1000)}ms"}
        c: dict[str, Any] = {
            "name": PROXY, "image": "cr.l5d.io/linkerd/proxy",
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "ports": [{"name": "linkerd-proxy", "containerPort": 4143, "protocol": "TCP"},
                      {"name": "linkerd-admin", "containerPort": 4191, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 4191},
                               "initialDelaySeconds": 2},
            "livenessProbe": {"httpGet": {"path": "/live", "port": 4191},
                              "initialDelaySeconds": 10}}
        if native:  # a native sidecar (F6.9, F6.10): _proxy.tpl l.269-276, 333-334 (2.20)
            c["startupProbe"] = {"httpGet": {"path": "/ready", "port": 4191},
                                 "periodSeconds": 1, "failureThreshold": 120}
            c["restartPolicy"] = "Always"
        return c

    def _pod_json(self, meta: dict[str, Any], spec: dict[str, Any],
                  app: list[dict[str, Any]], proxy: dict[str, Any] | None,
                  statuses: Mapping[str, tuple[bool, int, str]], ip: str, phase: str,
                  created: float, host_network: bool = False) -> dict[str, Any]:
        """A v1 Pod from its parts; `statuses` is container name -> (ready, restarts, why)."""
        spec = dict(spec)
        spec["containers"] = app
        spec.setdefault("nodeName", self.node_name)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("restartPolicy", "Always")
        init: list[dict[str, Any]] = list(spec.get("initContainers") or [])
        if proxy is not None:
            if proxy.get("restartPolicy") == "Always":  # a native sidecar (F6.9)
                init = [proxy, *init]  # before the pod's own (patch.json l.1-11, 135-136)
            else:
                spec["containers"] = [proxy, *app]
        if init:
            spec["initContainers"] = init
        started = rfc3339(created)

        def status_of(c: Mapping[str, Any]) -> dict[str, Any]:
            ready, restarts, _ = statuses.get(c["name"], (phase == "Running", 0, ""))
            return {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                    "ready": ready, "restartCount": restarts, "started": phase == "Running",
                    "state": ({"running": {"startedAt": started}} if phase == "Running"
                              else {"waiting": {"reason": "ContainerCreating"}})}

        all_ready = phase == "Running" and all(
            statuses.get(c["name"], (True, 0, ""))[0]
            for c in [*spec["containers"], *[i for i in init if i.get("restartPolicy")]])
        key = (meta.get("uid"),)

        def cond(kind: str, ok: bool) -> dict[str, Any]:
            c: dict[str, Any] = {"type": kind, "status": "True" if ok else "False",
                                 "lastProbeTime": None,
                                 "lastTransitionTime": self._since((*key, kind, ok))}
            if not ok and kind in ("Ready", "ContainersReady"):
                c["reason"] = "ContainersNotReady"
                c["message"] = "containers with unready status: [" + " ".join(
                    n for n, s in statuses.items() if not s[0]) + "]"
            return c

        status: dict[str, Any] = {
            "phase": "Running" if phase in ("Running", "Terminating") else phase,
            "hostIP": self.mesh.addresses.node_ip, "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": started, "qosClass": "BestEffort",
            "conditions": [cond("Initialized", True), cond("Ready", all_ready),
                           cond("ContainersReady", all_ready), cond("PodScheduled", True)],
            "containerStatuses": [status_of(c) for c in spec["containers"]]}
        if init:
            status["initContainerStatuses"] = [status_of(c) for c in init]
        if host_network:
            spec["hostNetwork"] = True
        meta["creationTimestamp"] = started
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
                "status": status}

    def _render_runtime_pod(self, p: PodRuntime) -> dict[str, Any]:
        dep = self.mesh.store.get("Deployment", p.namespace, p.deployment)
        template = dep["spec"]["template"] if dep else None
        if template is not None and template_hash(template) != p.template_hash:
            template = None
        tspec = dict((template or {}).get("spec") or {})
        by_name = {c["name"]: c for c in tspec.get("containers") or []}
        app = []
        for c in p.containers:
            if c.name == PROXY or c.sidecar:  # the template's own sidecars stay init
                continue
            app.append(copy.deepcopy(by_name.get(c.name)) or {
                "name": c.name, "image": c.image,
                "ports": [{"name": n, "containerPort": num} if n else {"containerPort": num}
                          for n, num in c.ports],
                "env": [{"name": k, "value": v} for k, v in c.env.items()]})
        proxy = self._proxy_container(p.proxy_env, p.native_sidecar) if p.meshed else None
        labels = {**p.labels, "pod-template-hash": p.template_hash}
        annotations = dict(p.annotations)
        if p.meshed:
            labels.update({"linkerd.io/control-plane-ns": CONTROL_PLANE_NS,
                           "linkerd.io/proxy-deployment": p.deployment,
                           "linkerd.io/workload-ns": p.namespace})
            annotations.setdefault("linkerd.io/inject", "enabled")
        uid = str(hashlib.sha1(f"{p.namespace}/{p.name}/{p.created}".encode()).hexdigest())
        meta: dict[str, Any] = {
            "name": p.name, "namespace": p.namespace, "uid": uid, "labels": labels,
            "annotations": annotations, "generateName": f"{p.deployment}-{p.template_hash}-",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": f"{p.deployment}-{p.template_hash}",
                                 "uid": "", "controller": True, "blockOwnerDeletion": True}]}
        if p.terminating:
            meta["deletionTimestamp"] = rfc3339(time.time())
            meta["deletionGracePeriodSeconds"] = 30
        tspec.pop("containers", None)
        tspec["serviceAccountName"] = p.service_account
        statuses = {c.name: (c.ready, c.restarts, c.last_failure) for c in p.containers}
        phase = "Running" if p.phase in ("Running", "Terminating") else p.phase
        return self._pod_json(meta, tspec, app, proxy, statuses, p.ip, phase, p.created)

    def _control_plane_pods(self, dep: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Linkerd's control plane: one Running, Ready pod per replica, never run."""
        template = (dep.get("spec") or {}).get("template") or {}
        h = template_hash(template)
        out = []
        created = dt.datetime.fromisoformat(
            dep["metadata"]["creationTimestamp"].replace("Z", "+00:00")).timestamp()
        for i in range(int((dep.get("spec") or {}).get("replicas", 1))):
            suffix = hashlib.sha1(f"{h}{i}".encode()).hexdigest()[:5]
            name = f"{dep['metadata']['name']}-{h[:10]}-{suffix}"
            ns = dep["metadata"]["namespace"]
            meta = {"name": name, "namespace": ns,
                    "uid": hashlib.sha1(f"{ns}/{name}".encode()).hexdigest(),
                    "labels": {**((template.get("metadata") or {}).get("labels") or {}),
                               "pod-template-hash": h},
                    "annotations": dict((template.get("metadata") or {}).get("annotations")
                                        or {})}
            spec = copy.deepcopy(template.get("spec") or {})
            app = spec.pop("containers", [])
            out.append(self._pod_json(meta, spec, app, None, {}, self._ip_for(ns, name),
                                      "Running", created))
        return out

    def _ip_for(self, ns: str, name: str) -> str:
        with self._lock:
            if (ns, name) not in self._ips:
                self._ips[(ns, name)] = self.mesh.addresses.pod_ip()
            return self._ips[(ns, name)]

    @staticmethod
    def is_prober(pod: Mapping[str, Any]) -> bool:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get(PROBER_LABEL[0]) == PROBER_LABEL[1]:
            return True
        for c in (pod.get("spec") or {}).get("containers") or []:
            image = str(c.get("image", "")).split("@", 1)[0]
            repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
            if repo.endswith(PROBER_REPOSITORY_SUFFIX):
                return True
        return False

    def prober_client(self, pod: Mapping[str, Any]) -> Client:
        """The reference client a prober pod stands for."""
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        host = bool(spec.get("hostNetwork"))
        inject = ((meta.get("annotations") or {}).get("linkerd.io/inject"))
        if inject is None:
            ns = self.mesh.store.get("Namespace", "", meta.get("namespace", "")) or {}
            inject = (ns.get("metadata", {}).get("annotations") or {}).get("linkerd.io/inject")
        meshed = inject in ("enabled", "ingress") and not host  # host-network pods: no proxy
        return Client(meta.get("namespace", "default"),
                      spec.get("serviceAccountName") or spec.get("serviceAccount") or "default",
                      meshed=meshed, network="node" if host else "pod", name=meta.get("name"))

    def _render_bare_pod(self, stored: dict[str, Any]) -> dict[str, Any]:
        meta = copy.deepcopy(stored["metadata"])
        spec = copy.deepcopy(stored.get("spec") or {})
        app = spec.pop("containers", [])
        created = dt.datetime.fromisoformat(
            meta["creationTimestamp"].replace("Z", "+00:00")).timestamp()
        if not self.is_prober(stored):
            # the double runs Deployments (through the reference) and prober pods only
            pod = self._pod_json(meta, spec, app, None,
                                 {c["name"]: (False, 0, "") for c in app}, "", "Pending",
                                 created)
            pod["status"]["conditions"] = [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "the cluster double runs only Deployments and prober pods",
                "lastProbeTime": None, "lastTransitionTime": rfc3339(created)}]
            pod["status"].pop("podIP", None)
            pod["status"].pop("podIPs", None)
            return pod
        client = self.prober_client(stored)
        ip, _ = self.mesh._client(client)
        proxy = None
        if client.meshed:
            ns = self.mesh.store.get("Namespace", "", client.namespace) or {}
            ns_ann = ns.get("metadata", {}).get("annotations") or {}
            ann = meta.get("annotations") or {}
            policy = ann.get("config.linkerd.io/default-inbound-policy",
                             ns_ann.get("config.linkerd.io/default-inbound-policy",
                                        self.mesh.workloads.cluster_default))
            proxy = self._proxy_container({
                "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY": policy,
                "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS": ",".join(self.mesh.cluster_networks),
                "LINKERD2_PROXY_INBOUND_PORTS": "",
                "LINKERD2_PROXY_IDENTITY_LOCAL_NAME": client.identity or ""},
                self.mesh.workloads._native_sidecar({**ns_ann, **ann}))
            meta.setdefault("labels", {})["linkerd.io/control-plane-ns"] = CONTROL_PLANE_NS
        return self._pod_json(meta, spec, app, proxy, {}, ip, "Running", created,
                              host_network=client.network == "node")

    # ---- nodes, events ----

    def _node(self) -> dict[str, Any]:
        net = self.mesh.addresses.POD_NET
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node_name, "uid": hashlib.sha1(
                self.node_name.encode()).hexdigest(), "creationTimestamp": rfc3339(self.created),
                "labels": {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64",
                           "node-role.kubernetes.io/control-plane": ""}},
            "spec": {"podCIDR": net, "podCIDRs": [net],
                     "providerID": f"kind://docker/{self.cluster_name}/{self.node_name}"},
            "status": {
                "addresses": [{"type": "InternalIP", "address": self.mesh.addresses.node_ip},
                              {"type": "Hostname", "address": self.node_name}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status",
                                "lastHeartbeatTime": rfc3339(self.created),
                                "lastTransitionTime": rfc3339(self.created)}],
                "nodeInfo": {"kubeletVersion": self.kubernetes_version,
                             "kubeProxyVersion": self.kubernetes_version,
                             "containerRuntimeVersion": "containerd://1.7.1",
                             "operatingSystem": "linux", "architecture": "amd64",
                             "osImage": "Ubuntu 22.04.2 LTS", "kernelVersion": "6.1.0",
                             "machineID": hashlib.md5(self.node_name.encode()).hexdigest(),
                             "systemUUID": hashlib.md5(self.url.encode()).hexdigest(),
                             "bootID": hashlib.md5(str(self.created).encode()).hexdigest()},
                "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"}}}

    def _events(self, ns: str | None) -> list[dict[str, Any]]:
        """The kubelet's Warning events for probes that failed (`Unhealthy`)."""
        out = []
        namespaces = ([ns] if ns is not None else
                      [o["metadata"]["name"] for o in self.mesh.store.list("Namespace")])
        for n in namespaces:
            for p in self.mesh.workloads.pods_of_namespace(n):
                for c in p.containers:
                    if not c.last_failure:
                        continue
                    name = f"{p.name}.{hashlib.sha1(c.name.encode()).hexdigest()[:16]}"
                    first = self._since(("event", n, name))
                    out.append({
                        "apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": name, "namespace": n,
                                     "uid": hashlib.sha1(f"{n}/{name}".encode()).hexdigest(),
                                     "creationTimestamp": first},
                        "involvedObject": {"kind": "Pod", "namespace": n, "name": p.name,
                                           "apiVersion": "v1",
                                           "fieldPath": f"spec.containers{{{c.name}}}"},
                        "reason": "Unhealthy", "message": c.last_failure, "type": "Warning",
                        "source": {"component": "kubelet", "host": self.node_name},
                        "firstTimestamp": first, "lastTimestamp": first, "count": 1,
                        "reportingComponent": "kubelet", "reportingInstance": self.node_name})
        return out

    # ---- writes ----

    def _write(self, rt: RType, ns: str | None, name: str, obj: dict[str, Any],
               create: bool = False) -> tuple[int, Any]:
        """Create (POST, refused when it exists) or create-or-replace (apply, PUT)."""
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({meta['name']}) does "
                           f"not match the name on the URL ({name})")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does "
                               "not match the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        meta["name"] = name
        obj["apiVersion"], obj["kind"] = rt.group_version, rt.kind
        if rt.namespaced and ns is not None and not self._namespace_exists(ns):
            raise namespace_not_found(ns)
        exists = self._exists(rt, ns, name)
        if create and exists:
            raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists',
                           {"name": name, "kind": rt.plural, **(
                               {"group": rt.group} if rt.group else {})})
        if rt.kind == "Service" and rt.group == "":
            self._allocate_node_ports(ns or "", name, obj)
        if self._in_reference(rt, ns):
            try:
                self.mesh.apply(obj)
            except TargetError as e:
                raise refusal(str(e), rt, name) from None
        elif rt.kind == "Node" and rt.group == "":
            raise ApiError(405, "MethodNotAllowed", "the cluster double has one node")
        else:
            self._side_apply(rt, ns, name, obj)
        return (200 if exists else 201), self._get(rt, ns, name)

    def _allocate_node_ports(self, ns: str, name: str, obj: dict[str, Any]) -> None:
        """A NodePort or LoadBalancer Service's ports get a nodePort from the node-port range,
        kept across updates (double-service-node-port)."""
        spec = obj.get("spec") or {}
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            return
        old = self.mesh.store.get("Service", ns, name) or {}
        kept = {p.get("name"): p.get("nodePort")
                for p in (old.get("spec") or {}).get("ports") or [] if p.get("nodePort")}
        for port in spec.get("ports") or []:
            if not port.get("nodePort"):
                port["nodePort"] = kept.get(port.get("name")) or next(self._node_ports)

    def _exists(self, rt: RType, ns: str | None, name: str) -> bool:
        if self._in_reference(rt, ns):
            return self.mesh.store.get(stored_kind(rt.group, rt.kind), ns or "", name) is not None
        with self._lock:
            return (rt.group, rt.kind, ns or "", name) in self._side

    def _side_apply(self, rt: RType, ns: str | None, name: str, obj: dict[str, Any]) -> None:
        if rt.kind != "CustomResourceDefinition" and rt.group in ("", "apps", "batch",
                                                                    "rbac.authorization.k8s.io"):
            try:  # the built-in kinds' schemas, as the reference store judges them
                admit(obj, self.mesh.profile)
            except AdmissionError as e:
                if not str(e).startswith("no matches for kind"):
                    raise refusal(str(e), rt, name) from None
        if rt.kind == "Pod" and self.is_prober(obj):
            try:
                self.mesh._client(self.prober_client(obj))
            except TargetError as e:
                raise refusal(str(e), rt, name) from None
        key = (rt.group, rt.kind, ns or "", name)
        with self._lock:
            old = self._side.get(key)
            new = copy.deepcopy(obj)
            meta = new["metadata"]
            if old is not None:
                om = old["metadata"]
                meta["uid"], meta["creationTimestamp"] = om["uid"], om["creationTimestamp"]
                meta["generation"] = om.get("generation", 1) + (
                    1 if old.get("spec") != new.get("spec") else 0)
                for field in ("labels", "annotations"):
                    merged = {**(om.get(field) or {}), **(meta.get(field) or {})}
                    if merged:
                        meta[field] = merged
                if "status" in old and "status" not in new:
                    new["status"] = old["status"]
            else:
                meta["uid"] = hashlib.sha1(f"{key}{time.time()}".encode()).hexdigest()
                meta["creationTimestamp"] = rfc3339(time.time())
                meta["generation"] = 1
            if rt.kind == "CustomResourceDefinition":
                names = (new.get("spec") or {}).get("names") or {}
                new["status"] = {"acceptedNames": names, "storedVersions": [
                    v["name"] for v in (new.get("spec") or {}).get("versions") or []
                    if v.get("storage")], "conditions": [
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted"},
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found"}]}
            self._side[key] = new
        if ns == CONTROL_PLANE_NS and name in (IDENTITY_ISSUER, TRUST_ROOTS):
            self._adopt_identity()
        self._adopt_networks(rt, ns, name)

    def _adopt_networks(self, rt: RType, ns: str | None, name: str) -> None:
        """A control-plane Deployment written by an install (or restarted): the reference
        takes its networks as the real components would when their pods start
        (double-installed-networks). The proxy injector renders each proxy's
        LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS from linkerd-config's values as it reads them
        then; the policy controller runs with its container's --cluster-networks and
        --probe-networks (none without the flag, from 2.12). The double's own control plane
        (`ClusterDouble.install_linkerd`) has no policy container and changes nothing."""
        if (rt.group, rt.kind, ns) != ("apps", "Deployment", CONTROL_PLANE_NS):
            return
        with self._lock:
            dep = copy.deepcopy(self._side.get((rt.group, rt.kind, ns, name)) or {})
            config = copy.deepcopy(self._side.get(("", "ConfigMap", ns, "linkerd-config")))
        if name == "linkerd-proxy-injector" and config is not None:
            values = yaml.safe_load((config.get("data") or {}).get("values") or "") or {}
            if isinstance(values, dict) and "clusterNetworks" in values:
                self.mesh.install_networks(cluster_networks=split_networks(
                    str(values.get("clusterNetworks") or "")))
        if name == "linkerd-destination":
            containers = (((dep.get("spec") or {}).get("template") or {}).get("spec")
                          or {}).get("containers") or []
            policy = [c for c in containers if c.get("name") == "policy"]
            if not policy:
                return
            args = {a.partition("=")[0]: a.partition("=")[2] for a in policy[0].get("args")
                    or [] if a.startswith("--")}
            self.mesh.install_networks(
                controller_networks=split_networks(args["--cluster-networks"])
                if "--cluster-networks" in args else None,
                probe_networks=split_networks(args.get("--probe-networks", ""))
                if self.mesh.profile.at_least("2.12") else None)

    def _adopt_identity(self) -> None:
        """Once the installed issuer Secret and trust roots are both applied, the reference's
        identity controller issues from them (double-installed-identity)."""
        with self._lock:
            secret = self._side.get(("", "Secret", CONTROL_PLANE_NS, IDENTITY_ISSUER))
            roots = self._side.get(("", "ConfigMap", CONTROL_PLANE_NS, TRUST_ROOTS))
        if secret is None or roots is None:
            return
        data, anchor = secret.get("data") or {}, (roots.get("data") or {}).get("ca-bundle.crt")
        if not anchor or "crt.pem" not in data or "key.pem" not in data:
            return
        crt, key = (base64.b64decode(data[k]) for k in ("crt.pem", "key.pem"))
        if anchor.encode().strip() == self.mesh.authority.anchor_path.read_bytes().strip():
            return  # already the reference's own (a double installed with its anchor)
        self.mesh.adopt_identity(anchor, crt, key)

    def _patch(self, req: _Request, rt: RType, ns: str | None, name: str) -> tuple[int, Any]:
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        patch = self._decode(req)
        if ctype == "application/apply-patch+yaml":
            if (patch.get("metadata") or {}).get("name") in (None, name):
                return self._write(rt, ns, name, patch)
            raise ApiError(400, "BadRequest", f"the name of the object "
                           f"({patch['metadata']['name']}) does not match the name on the "
                           f"URL ({name})")
        if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted "
                           f"media types include: application/merge-patch+json, "
                           f"application/strategic-merge-patch+json, "
                           f"application/apply-patch+yaml (not {ctype})")
        strategic = ctype == "application/strategic-merge-patch+json"
        if rt.kind == "Pod" and rt.group == "" and self._runtime(ns or "", name) is not None:
            # a running pod's metadata may change (`kubectl annotate pod`); its spec may not
            # (the reference's pods are runtimes: only annotations and labels are patched)
            pmeta = dict(patch.get("metadata") or {})
            try:
                if pmeta.get("annotations"):
                    self.mesh.annotate(ObjectRef("Pod", name, ns), pmeta["annotations"])
            except TargetError as e:
                raise refusal(str(e), rt, name) from None
            return 200, self._get(rt, ns, name)
        if not self._exists(rt, ns, name):
            raise not_found(rt, name)
        if self._in_reference(rt, ns):
            current = self.mesh.store.get(stored_kind(rt.group, rt.kind), ns or "", name)
            assert current is not None
            pmeta = dict(patch.get("metadata") or {})
            annotations, labels = pmeta.pop("annotations", None), pmeta.pop("labels", None)
            rest = {**patch, "metadata": pmeta}
            merged = merge_patch(current, rest, strategic)
            try:
                if merged != current:
                    merged.pop("status", None)
                    for field in ("creationTimestamp", "resourceVersion", "uid", "generation",
                                  "managedFields"):  # the store's own, kept from before
                        merged["metadata"].pop(field, None)
                    self.mesh.apply(merged)
                if annotations:
                    self.mesh.annotate(ObjectRef(stored_kind(rt.group, rt.kind), name, ns),
                                       annotations)
                if labels:
                    self.mesh.store.patch_metadata(stored_kind(rt.group, rt.kind), ns or "", name,
                                                  labels=labels)
            except TargetError as e:
                raise refusal(str(e), rt, name) from None
        else:
            with self._lock:
                current = copy.deepcopy(self._side[(rt.group, rt.kind, ns or "", name)])
            merged = merge_patch(current, patch, strategic)
            with self._lock:
                key = (rt.group, rt.kind, ns or "", name)
                if merged.get("spec") != current.get("spec"):
                    merged["metadata"]["generation"] = current["metadata"].get(
                        "generation", 1) + 1
                self._side[key] = merged
            if merged.get("spec") != current.get("spec"):
                self._adopt_networks(rt, ns, name)  # a restart: its pods start anew
        return 200, self._get(rt, ns, name)

    def _delete(self, rt: RType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self._get(rt, ns, name)
        if rt.kind == "Pod" and rt.group == "":
            runtime = self._runtime(ns or "", name)
            if runtime is not None:  # its ReplicaSet makes another one
                self.mesh.workloads._terminate(runtime)
                self.mesh.workloads.reconcile(runtime.namespace, runtime.deployment)
        if self._in_reference(rt, ns):
            self.mesh.delete(obj)
            if rt.kind == "Namespace":
                with self._lock:
                    for key in [k for k in self._side if k[2] == name]:
                        del self._side[key]
                obj["status"] = {"phase": "Terminating"}
                obj["metadata"]["deletionTimestamp"] = rfc3339(time.time())
                return obj
        else:
            with self._lock:
                removed = self._side.pop((rt.group, rt.kind, ns or "", name), None)
            if rt.kind == "CustomResourceDefinition" and removed is not None:
                spec = removed.get("spec") or {}
                kind = (spec.get("names") or {}).get("kind", "")
                if (spec.get("group"), kind) in REFERENCE_KINDS:  # its objects go with it
                    for o in self.mesh.store.list(stored_kind(str(spec.get("group")), kind)):
                        self.mesh.delete(o)
        details: dict[str, Any] = {"name": name, "kind": rt.plural,
                                   "uid": obj["metadata"].get("uid", "")}
        if rt.group:
            details["group"] = rt.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details}

    # ---- logs ----

    def _logs(self, req: _Request, ns: str, name: str) -> str:
        pods = RType("", "v1", "Pod", "pods", True)
        pod = self._get(pods, ns, name)
        names = [c["name"] for c in [*(pod["spec"].get("initContainers") or []),
                                     *pod["spec"]["containers"]]]
        container = req.param("container")
        if container is None:
            if len(pod["spec"]["containers"]) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod "
                               f"{name}, choose one of: [{' '.join(names)}]")
            container = pod["spec"]["containers"][0]["name"]
        if container not in names:
            raise ApiError(400, "BadRequest",
                           f"container {container} is not valid for pod {name}")
        runtime = self._runtime(ns, name)
        lines = list(runtime.logs.get(container, [])) if runtime else []
        tail = req.param("tailLines")
        if tail is not None and tail.isdigit():
            lines = lines[-int(tail):] if int(tail) else []
        return "".join(line + "\n" for line in lines)

    # ---- watches ----

    def _watch(self, h: _Handler, req: _Request, rt: RType, ns: str | None) -> None:
        """`watch=true`: one JSON event per chunk until `timeoutSeconds` (or close)."""
        timeout = float(req.param("timeoutSeconds") or 1800)
        since = req.param("resourceVersion")
        deadline = time.monotonic() + timeout
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def send(kind: str, obj: Mapping[str, Any]) -> None:
            line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            h.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            h.wfile.flush()

        try:
            seen: dict[str, dict[str, Any]] = {}
            first = True
            while True:
                current = {f"{o['metadata'].get('namespace')}/{o['metadata']['name']}": o
                           for o in self._select(rt, ns, req)}
                for key, obj in current.items():
                    old = seen.get(key)
                    if first:
                        if since in (None, "", "0"):
                            send("ADDED", obj)
                        elif int(obj["metadata"]["resourceVersion"]) > int(since):
                            send("ADDED" if self._first_rv(rt, obj) > int(since)
                                 else "MODIFIED", obj)
                    elif old is None:
                        send("ADDED", obj)
                    elif old["metadata"]["resourceVersion"] != obj["metadata"][
                            "resourceVersion"]:
                        send("MODIFIED", obj)
                for key, obj in seen.items():
                    if key not in current:
                        send("DELETED", obj)
                seen, first = current, False
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.wait(min(WATCH_TICK, left)):
                    break
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:
            pass
        h.close_connection = True

    # ---- exec ----

    def _exec(self, h: _Handler, req: _Request, ns: str, name: str) -> None:
        pods = RType("", "v1", "Pod", "pods", True)
        pod = self._get(pods, ns, name)
        containers = [c["name"] for c in [*(pod["spec"].get("initContainers") or []),
                                          *pod["spec"]["containers"]]]
        container = req.param("container") or pod["spec"]["containers"][0]["name"]
        if container not in containers:
            raise ApiError(400, "BadRequest",
                           f"container {container} is not valid for pod {name}")
        if pod["status"].get("phase") != "Running":
            raise ApiError(400, "BadRequest", f"unable to upgrade connection: pod {name} is "
                           "not running")
        key = req.headers.get("Sec-WebSocket-Key")
        if (req.headers.get("Upgrade") or "").lower() != "websocket" or not key:
            raise ApiError(400, "BadRequest", "Upgrade request required")
        offered = [p.strip() for p in (req.headers.get("Sec-WebSocket-Protocol") or ""
                                       ).split(",")]
        if V4_CHANNEL not in offered:
            raise ApiError(400, "BadRequest", f"the double speaks only {V4_CHANNEL}")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        h.send_response(101, "Switching Protocols")
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        h.send_header("Sec-WebSocket-Protocol", V4_CHANNEL)
        h.end_headers()
        h.wfile.flush()
        h.close_connection = True
        ws = _WebSocket(h.connection)
        process = self._process(pod, container, req.query.get("command") or [],
                                lambda data: ws.channel(1, data),
                                lambda data: ws.channel(2, data))
        reader: threading.Thread | None = None
        if req.flag("stdin"):
            reader = threading.Thread(target=self._read_stdin, args=(ws, process),
                                      name=f"double-exec-stdin-{name}", daemon=True)
            reader.start()
        try:
            code = process.run()
        except Exception as e:  # the double's own failure, reported like a runtime error
            ws.channel(2, f"the cluster double failed to run the command: {e!r}\n".encode())
            code = 1
        if code == 0:
            status: dict[str, Any] = {"metadata": {}, "status": "Success"}
        else:  # what the kubelet reports for a non-zero exit (kubectl reads the ExitCode cause)
            status = {"metadata": {}, "status": "Failure",
                      "message": f"command terminated with non-zero exit code: error executing "
                                 f"command {req.query.get('command')}, exit code {code}",
                      "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        with contextlib.suppress(OSError):
            ws.channel(3, json.dumps(status).encode())
            ws.close()
        with contextlib.suppress(OSError):
            h.connection.shutdown(socket.SHUT_WR)
        if reader is not None:
            process.stdin_closed.set()
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RD)
            reader.join(timeout=2)

    @staticmethod
    def _read_stdin(ws: _WebSocket, process: ExecProcess) -> None:
        """Channel 0 frames from the client go to the process, line by line."""
        try:
            while not process.stdin_closed.is_set():
                opcode, data = ws.recv()
                if opcode == 0x8:
                    break
                if opcode in (0x1, 0x2) and data and data[0] == 0:
                    process.feed_stdin(data[1:])
        except (OSError, ConnectionError):
            pass
        process.stdin_closed.set()

    def _process(self, pod: Mapping[str, Any], container: str, command: list[str],
                 stdout: Callable[[bytes], None], stderr: Callable[[bytes], None]
                 ) -> ExecProcess:
        """What an exec runs: the prober, in a prober pod; nothing else."""
        module = ["-m", "linkerd_conformance.prober"]
        is_prober_cmd = (len(command) >= 3 and command[0].rsplit("/", 1)[-1] in (
            "python", "python3") and command[1:3] == module)
        if not (self.is_prober(pod) and is_prober_cmd):
            return Refuse(stdout, stderr, "the cluster double runs only `python -m "
                          f"linkerd_conformance.prober ...` in a prober pod, not {command}")
        argv = command[3:]
        if argv[:1] == ["frontdoor"] and self.is_prober(pod):
            client = self.prober_client(pod)
            return FrontDoorOnce(stdout, stderr, lambda: self.dialer(client))
        if argv[:1] in (["serve"], ["idle"]):
            return Refuse(stdout, stderr, f"the cluster double does not run `prober "
                          f"{argv[0]}` in an exec (not implemented)")
        client = self.prober_client(pod)
        if argv[:1] == ["session"]:
            return ProbeHeld(stdout, stderr, argv[1:], lambda: self.dialer(client))
        if argv[:1] == ["batch"]:
            return ProbeBatch(stdout, stderr, argv[1:], lambda: self.dialer(client))
        return ProbeOnce(stdout, stderr, argv, lambda: self.dialer(client))

