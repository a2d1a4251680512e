"""The reference keeps a client's gRPC connection as Linkerd's outbound proxy does (issue 12).

A client's gRPC probes to one pod ride one mTLS connection, and the inbound proxy keeps one
connection to its app; two clients never share a connection; a kept connection the server
dropped is never a denial; a policy change still applies to the very next probe.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from linkerd_conformance import Client, Profile, lab
from linkerd_conformance.outcome import Verdict
from linkerd_conformance.prober import ProbeSession
from linkerd_conformance.reference.mesh import ReferenceMesh
from linkerd_conformance.reference.proxy import Proxy
from linkerd_conformance.waiting import expect

GRPC = lab.REQUESTS["grpc"]
GRPC_PORT = 9090
N = 8
#: another meshed client pod: its own address and identity
OTHER = Client(lab.NAMESPACE, "other", meshed=True, name="other-sa")


@pytest.fixture
def accepted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    """(proxy's pod, client ip, port) of every connection an inbound proxy accepts."""
    seen: list[tuple[str, str, int]] = []
    serve = Proxy._serve

    def counting(self: Proxy, conn: socket.socket, client_ip: str, port: int) -> None:
        seen.append((self.pod.name, client_ip, port))
        serve(self, conn, client_ip, port)

    monkeypatch.setattr(Proxy, "_serve", counting)
    return seen


@pytest.fixture
def mesh() -> Iterator[ReferenceMesh]:
    with ReferenceMesh(Profile("2.20")) as m:
        lab.deploy(m, lab.objects())
        yield m


def _server_proxy(mesh: ReferenceMesh) -> Proxy:
    found = mesh.destination(lab.GRPC)
    assert found is not None and found[0].proxy is not None
    return found[0].proxy


def _to_grpc(accepted: list[tuple[str, str, int]], ip: str) -> int:
    return sum(1 for _, client, port in accepted if client == ip and port == GRPC_PORT)


def test_a_clients_grpc_probes_ride_one_connection_to_the_pod_and_to_the_app(
        mesh: ReferenceMesh, accepted: list[tuple[str, str, int]]) -> None:
    """N gRPC probes from one meshed client: one TLS connection accepted by the inbound
    proxy, one connection from that proxy to the app; every probe answered."""
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(lab.ALLOWED_AS["grpc"])
    accepted.clear()
    proxy = _server_proxy(mesh)
    app_before = proxy._upstreams.opened
    outs = [mesh.probe(lab.MESHED, lab.GRPC, "grpc", **GRPC) for _ in range(N)]
    assert all(o.verdict is Verdict.ALLOWED and o.grpc_status == 0 for o in outs), outs
    assert _to_grpc(accepted, mesh.client_address(lab.MESHED)) == 0, (
        f"expected the {N} probes on the connection kept since the first, observed "
        f"{accepted}")
    assert proxy._upstreams.opened == app_before >= 1, "new connections to the app"
    assert mesh.outbound.opened == 1


def test_two_clients_never_share_a_connection(
        mesh: ReferenceMesh, accepted: list[tuple[str, str, int]]) -> None:
    """Interleaved probes from two clients: each client's own connection (its own address),
    and the server's policy sees each one's own identity on every request."""
    mesh.apply(lab.server("grpc", "grpc"), lab.server_authorization(
        "only-client", {"meshTLS": {"serviceAccounts": [{"name": "client"}]}},
        server_name="grpc"))
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(lab.ALLOWED_AS["grpc"])
    expect(mesh, OTHER, lab.GRPC, "grpc", **GRPC).becomes(lab.DENIED["grpc"])
    accepted.clear()
    before = mesh.outbound.opened  # the converging waits above may have reconnected
    for _ in range(N):
        assert mesh.probe(lab.MESHED, lab.GRPC, "grpc", **GRPC).verdict is Verdict.ALLOWED
        other = mesh.probe(OTHER, lab.GRPC, "grpc", **GRPC)
        assert other.verdict is Verdict.GRPC_PERMISSION_DENIED, other.short()
    mine, theirs = mesh.client_address(lab.MESHED), mesh.client_address(OTHER)
    assert mine != theirs
    assert _to_grpc(accepted, mine) == 0 and _to_grpc(accepted, theirs) == 0, accepted
    assert mesh.outbound.opened == before, (
        f"expected each client's kept connection reused, observed "
        f"{mesh.outbound.opened - before} new connections over {2 * N} interleaved probes")


def test_a_kept_connection_the_server_dropped_is_never_a_denial(
        mesh: ReferenceMesh, accepted: list[tuple[str, str, int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy closes every connection it holds; the next probe is still answered, on a
    new connection: dropped before use, or (when the drop is not seen in time) retried."""
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(lab.ALLOWED_AS["grpc"])
    proxy = _server_proxy(mesh)
    ip = mesh.client_address(lab.MESHED)
    for blind in (False, True):
        if blind:  # the pool does not see the close: the request fails, then is sent again
            monkeypatch.setattr(ProbeSession, "idle_alive", lambda self: True)
        accepted.clear()
        with proxy._lock:
            held = [proxy._tls_of.get(c, c) for c in proxy._conns]
        for conn in held:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        out = mesh.probe(lab.MESHED, lab.GRPC, "grpc", **GRPC)
        assert out.verdict is Verdict.ALLOWED, out.short()
        assert _to_grpc(accepted, ip) == 1, accepted


def test_a_policy_change_applies_to_the_next_probe(mesh: ReferenceMesh) -> None:
    """Kept connections do not outlive what they were accepted under: deny, then allow
    again, each seen on the very next probe."""
    expect(mesh, lab.MESHED, lab.GRPC, "grpc", **GRPC).becomes(lab.ALLOWED_AS["grpc"])
    deny = lab.server("grpc", "grpc")
    mesh.apply(deny)
    assert mesh.controller.pushed(), "the policy controller did not push the change in 5 s"
    out = mesh.probe(lab.MESHED, lab.GRPC, "grpc", **GRPC)
    assert out.verdict is Verdict.GRPC_PERMISSION_DENIED, out.short()
    mesh.apply(lab.server_authorization("everyone", {"unauthenticated": True},
                                        server_name="grpc"))
    assert mesh.controller.pushed(), "the policy controller did not push the change in 5 s"
    out = mesh.probe(lab.MESHED, lab.GRPC, "grpc", **GRPC)
    assert out.verdict is Verdict.ALLOWED, out.short()
