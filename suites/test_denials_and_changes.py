"""How a denial looks on the wire, and how policy changes reach running pods.

Denials: an empty 403, informational headers only for meshed clients, no application byte, and
the application never sees a denied request. Changes: annotations need a restart, policy
resources do not; open TCP connections are cut when revoked, HTTP is re-authorized per request.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from linkerd_conformance import (
    ALLOWED,
    CONNECTION_CLOSED,
    GRPC_PERMISSION_DENIED,
    HTTP_FORBIDDEN,
    OK,
    ConformanceFailure,
    Mesh,
    ObjectRef,
    Outcome,
    Unsupported,
    expect,
    lab,
    wait_for,
)

pytestmark = [pytest.mark.conformance]

HTTP = lab.REQUESTS["http"]
GRPC = lab.REQUESTS["grpc"]
POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
OPEN_TO_ALL = {"unauthenticated": True, "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}


def server_pod(mesh: Mesh, app: str = "server") -> Any:
    pods = [p for p in mesh.pods("lab", {"app": app}) if p.ready]
    if not pods:
        raise ConformanceFailure(f"expected a Ready lab/{app} pod")
    return pods[-1]


def observe_tcp(s: Any) -> tuple[Outcome, bool, int]:
    """One echo on a held TCP connection: (outcome, still open after it, connections used).

    The proxy may cut the connection between the echo and the next write; an echo followed
    by the peer's close shows the cut as well as a closed connection does."""
    out = s.probe(**lab.REQUESTS["tcp"])
    return out, s.connected, s.connections


def session(mesh: Mesh, protocol: str, dest: Any = lab.HTTP, client: Any = lab.MESHED) -> Any:
    try:
        return mesh.session(client, dest, protocol)
    except Unsupported as e:
        pytest.skip(str(e))


# ---- denial semantics ----

@pytest.mark.feature("denial")
@pytest.mark.facts("F5.3")
def test_a_denied_http_request_gets_an_empty_403(mesh: Mesh) -> None:
    """The 403 is the proxy's: `content-length: 0` and no body at all."""
    lab.deploy(mesh, lab.with_default("deny"))
    out = expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    assert out.body == b"", f"the 403 carried {out.body[:80]!r}"


@pytest.mark.feature("denial")
@pytest.mark.facts("F5.3", "F7.7")
def test_the_application_never_sees_a_denied_request(mesh: Mesh) -> None:
    """A request denied by policy is answered by the proxy and never forwarded: the lab server,
    which logs every request it receives, has no line for it."""
    lab.deploy(mesh, lab.with_default("deny"))
    marker = f"/leak-check-{uuid.uuid4().hex[:12]}"
    expect(mesh, lab.MESHED, lab.HTTP, "http", path=marker).becomes(HTTP_FORBIDDEN)
    log = mesh.logs(server_pod(mesh), "server")
    assert marker not in log, f"the application saw the denied request {marker}"


@pytest.mark.feature("denial")
@pytest.mark.facts("F5.5")
def test_plaintext_clients_get_no_informational_headers(mesh: Mesh) -> None:
    """`l5d-proxy-error` and `grpc-message` are only emitted to meshed clients."""
    lab.deploy(mesh, lab.with_default("deny"))
    http = expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    grpc = expect(mesh, lab.UNMESHED, lab.GRPC, "grpc", **GRPC).becomes(GRPC_PERMISSION_DENIED)
    assert http.proxy_error is None, f"plaintext client saw l5d-proxy-error={http.proxy_error!r}"
    assert grpc.grpc_message is None and grpc.proxy_error is None, grpc.short()


@pytest.mark.versions("2.11-2.12")
@pytest.mark.feature("denial")
@pytest.mark.facts("F5.5", "F5.6", "F5.7")
def test_meshed_clients_are_told_why_they_were_denied(mesh: Mesh) -> None:
    """Up to 2.12 a meshed client sees `l5d-proxy-error` with the proxy's reason (from 2.13 the
    client's own proxy strips it, F5.7)."""
    lab.deploy(mesh, lab.with_default("deny"))
    out = expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    want = ("unauthorized request on route" if mesh.profile.at_least("2.12")
            else "unauthorized connection on server")
    assert out.proxy_error and want in out.proxy_error, f"l5d-proxy-error={out.proxy_error!r}"


@pytest.mark.feature("denial")
@pytest.mark.facts("F5.9", "F5.1")
def test_a_tcp_denial_closes_the_connection_before_any_byte(mesh: Mesh) -> None:
    """Raw TCP is denied by accepting and then closing: connect succeeds, no byte comes back."""
    lab.deploy(mesh, lab.with_default("deny"))
    out = expect(mesh, lab.MESHED, lab.TCP, "tcp", **lab.REQUESTS["tcp"]).becomes(
        CONNECTION_CLOSED)
    assert out.bytes_seen == 0, f"{out.bytes_seen} bytes came back before the close"


# ---- restart requirements ----

@pytest.mark.feature("restart")
@pytest.mark.facts("F1.11", "F1.12")
def test_a_namespace_annotation_reaches_only_pods_created_after_it(mesh: Mesh) -> None:
    """Annotating the namespace deny leaves the running server open; a workload created
    afterwards starts with deny."""
    lab.deploy(mesh, lab.objects())
    mesh.annotate(ObjectRef("Namespace", "lab"), {POLICY_ANNOTATION: "deny"})
    lab.deploy(mesh, lab.undeclared())
    expect(mesh, lab.MESHED, lab.UNDECLARED, "http", **HTTP).becomes(
        HTTP_FORBIDDEN if mesh.profile.at_least("2.12") else CONNECTION_CLOSED)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).stays(OK)


@pytest.mark.feature("restart")
@pytest.mark.facts("F1.14")
def test_a_new_server_applies_without_a_restart(mesh: Mesh) -> None:
    """Policy resources are watched: a Server applied to a running pod locks its port."""
    lab.deploy(mesh, lab.objects())
    pod = server_pod(mesh)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    mesh.apply(lab.server("web", "http"))
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    assert server_pod(mesh).name == pod.name, "the server pod was replaced"


@pytest.mark.feature("restart")
@pytest.mark.facts("F1.14", "F1.26")
def test_deleting_a_server_restores_the_default_policy(mesh: Mesh) -> None:
    """Without its Server the port falls back to the pod's default (all-unauthenticated)."""
    web = lab.server("web", "http")
    lab.deploy(mesh, [*lab.objects(), web])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    mesh.delete(web)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)


# ---- dynamic behaviour on open connections ----

@pytest.mark.feature("dynamic")
@pytest.mark.facts("F5.10", "F1.14")
def test_revoking_an_authorization_terminates_open_tcp_connections(mesh: Mesh) -> None:
    """An opaque connection authorized at its start is cut when its authorization is deleted,
    without a new connection being made (the session still counts one)."""
    grant = lab.server_authorization("open", OPEN_TO_ALL, server_name="raw")
    lab.deploy(mesh, [*lab.objects(), lab.server("raw", "tcp", proxy_protocol="opaque"), grant])
    with session(mesh, "tcp", lab.TCP) as s:
        first = wait_for("the TCP echo through an authorized opaque Server",
                         lambda: s.probe(**lab.REQUESTS["tcp"]), ALLOWED.matches)
        assert first.bytes_seen > 0
        opened = s.connections
        mesh.delete(grant)
        cut, still_open, used = wait_for(
            "the open connection to be closed by the proxy", lambda: observe_tcp(s),
            lambda seen: not ALLOWED.matches(seen[0]) or not seen[1])
        assert used == opened, "a new connection was made before the cut was seen"
        assert CONNECTION_CLOSED.matches(cut) or not still_open, \
            f"expected the open connection closed: {cut.short()}"


@pytest.mark.feature("dynamic")
@pytest.mark.facts("F5.10")
def test_a_policy_change_that_still_authorizes_an_open_tcp_connection_leaves_it_open(
        mesh: Mesh) -> None:
    """Only a connection no longer authorized is cut: an opaque connection authorized for the
    lab client stays open, on the same connection, after a second authorization (for another
    namespace's client) takes effect, which that client's own new connection shows."""
    mine = {"meshTLS": {"identities": [lab.identity(lab.MESHED)]}}
    theirs = {"meshTLS": {"identities": [lab.identity(lab.OTHER_NS)]}}
    lab.deploy(mesh, [*lab.objects(), lab.server("raw", "tcp", proxy_protocol="opaque"),
                      lab.server_authorization("mine", mine, server_name="raw")])
    expect(mesh, lab.OTHER_NS, lab.TCP, "tcp", **lab.REQUESTS["tcp"]).becomes(CONNECTION_CLOSED)
    with session(mesh, "tcp", lab.TCP) as s:
        first = wait_for("the TCP echo through the lab client's authorization",
                         lambda: s.probe(**lab.REQUESTS["tcp"]), ALLOWED.matches)
        assert first.bytes_seen > 0
        opened = s.connections
        mesh.apply(lab.server_authorization("theirs", theirs, server_name="raw"))
        expect(mesh, lab.OTHER_NS, lab.TCP, "tcp", **lab.REQUESTS["tcp"]).becomes(ALLOWED)
        echo, still_open, used = observe_tcp(s)
        assert ALLOWED.matches(echo) and still_open and used == opened, (
            f"expected the lab client's connection kept after a change that still authorizes "
            f"it: {echo.short()}, open={still_open}, connections {opened} -> {used}")


@pytest.mark.feature("dynamic")
@pytest.mark.facts("F5.10", "F5.2")
def test_a_kept_alive_http_connection_is_denied_on_its_next_request(mesh: Mesh) -> None:
    """HTTP is authorized per request: after the policy changes, the next request on the same
    kept-alive connection gets 403 and the connection stays up."""
    lab.deploy(mesh, lab.objects())
    with session(mesh, "http") as s:
        assert OK.matches(s.probe(**HTTP))
        mesh.apply(lab.server("web", "http"))
        wait_for("403 on the kept-alive connection", lambda: s.probe(**HTTP),
                 HTTP_FORBIDDEN.matches)
        assert s.connections == 1, f"{s.connections} connections were used"


@pytest.mark.feature("dynamic")
@pytest.mark.facts("F5.10", "F1.14")
def test_a_grant_takes_effect_without_reconnecting(mesh: Mesh) -> None:
    """Denied on a kept-alive connection, then authorized: the same connection is let through."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http")])
    with session(mesh, "http") as s:
        assert HTTP_FORBIDDEN.matches(s.probe(**HTTP))
        mesh.apply(lab.server_authorization("open", OPEN_TO_ALL, server_name="web"))
        wait_for("200 on the same connection", lambda: s.probe(**HTTP), OK.matches)
        assert s.connections == 1, f"{s.connections} connections were used"
