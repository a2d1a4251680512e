"""What any client meets at the inbound proxy's door (docs/semantics.md section 10).

Linkerd's own outbound proxy is not the only client an inbound proxy sees: a TLS client of
its own, a silent client, a client forging `l5d-client-id`, an HTTP/2 client on an HTTP/1
port. These checks ask what linkerd2-proxy's source says such clients get: TLS versions
(F10.1), SNI-gated termination (F10.2), no ALPN (F10.3), client certificates from the trust
anchor only (F10.4), opaque ports without detection (F10.5), h2 on HTTP/1 ports (F10.6), the
identity header (F10.7), the refusal text (F10.8), the detect timeout (F10.9), metric labels
(F10.10), synthesized responses (F10.11) and close_notify (F10.12).

The checks that need a client speaking TLS itself (a chosen SNI, version, ALPN or certificate),
raw bytes, a silent connection past the proxy's detect timeout, or a response's headers use
the target's front door (`mesh.front_door()`): in this process on the reference mesh, the
prober's `frontdoor` mode in the lab's unmeshed client pod on a cluster. A mesh certificate
needs the cluster's issuer, which only the kind target has (elsewhere such a check is not
applicable); curl and openssl run on this machine, so their checks run on the reference only.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from linkerd_conformance import (
    ALLOWED,
    CONNECTION_CLOSED,
    GRPC_PERMISSION_DENIED,
    HTTP_FORBIDDEN,
    OK,
    Client,
    ConformanceFailure,
    Dest,
    Mesh,
    Metrics,
    Outcome,
    Pod,
    Unsupported,
    expect,
    expectations,
    lab,
    manifests,
    wait_for,
)
from linkerd_conformance import realclients as rc

pytestmark = [pytest.mark.conformance, pytest.mark.feature("front-door")]

HTTP = lab.REQUESTS["http"]
TCP_PORT, HTTP_PORT, GRPC_PORT = 7000, 8080, 9090  # the lab server's ports (manifests/lab.yml)
FOREIGN_SNI = "foreign.example.com"
ADMIN = Dest(lab.NAMESPACE, "server", 4191)
SILENT = {"payload": b""}  # a TCP probe that sends nothing
OPEN = {"unauthenticated": True, "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}


def open_server(name: str, port: str, protocol: str) -> list[dict[str, Any]]:
    """A Server with `proxyProtocol: <protocol>` that admits every client."""
    return [lab.server(name, port, proxy_protocol=protocol),
            lab.server_authorization(f"{name}-everyone", OPEN, server_name=name)]


def server_pod(mesh: Mesh) -> Pod:
    pods = [p for p in mesh.pods(lab.NAMESPACE, {"app": "server"}) if p.ready]
    if not pods:
        raise ConformanceFailure("expected a Ready lab/server pod")
    return pods[-1]


def identity_of_server() -> str:
    return expectations.sa_identity("server", lab.NAMESPACE)


def metrics(mesh: Mesh) -> Metrics:
    return mesh.proxy_metrics(server_pod(mesh))


def front_door(mesh: Mesh, needs: str) -> Any:
    """The target's client of its own (`front_door()`): in the test process on the reference
    mesh, the prober in an unmeshed client pod on a cluster; else skip."""
    try:
        return mesh.front_door(lab.UNMESHED)
    except Unsupported as e:
        pytest.skip(f"on the {mesh.name} target this needs {needs}, which the prober in a "
                    f"client pod cannot do ({e})")


class Door:
    """A client of this project's own at the lab server's address, from inside the cluster
    networks, unmeshed: the target's front door, its operations aimed at the lab server."""

    def __init__(self, mesh: Mesh, needs: str, *, local_tools: bool = False) -> None:
        self.mesh = mesh
        self.door = front_door(mesh, needs)
        if local_tools and not self.door.local_tools:
            pytest.skip(f"on the {mesh.name} target this needs {needs} run from this machine, "
                        "which reaches no pod (the prober image has no curl or openssl)")
        self.pod = server_pod(mesh)
        self.ip = self.pod.ip

    @property
    def source(self) -> str:
        return str(self.door.source_ip)

    @property
    def anchor(self) -> str:
        """The trust anchor, PEM."""
        return str(self.door.anchor)

    @property
    def detect_timeout(self) -> float:
        """The lab server's proxy's detect timeout."""
        return float(self.door.detect_timeout_of(self.pod))

    def meshed_certificate(self) -> tuple[str, str]:
        """The lab client's own chain and key (PEM), issued by the mesh's CA."""
        try:
            cert: tuple[str, str] = self.door.certificate(lab.identity(lab.MESHED))
        except Unsupported as e:
            pytest.skip(f"not applicable to the {self.mesh.name} target: {e}")
        return cert

    def tls(self, port: int, **kwargs: Any) -> rc.TlsResult:
        kwargs.setdefault("sni", identity_of_server())
        result: rc.TlsResult = self.door.tls(self.ip, port, **kwargs)
        return result

    def raw_exchange(self, port: int, data: bytes, want: int, timeout: float = rc.TIMEOUT
                     ) -> bytes:
        return bytes(self.door.raw_exchange(self.ip, port, data, want, timeout))

    def hold(self, port: int) -> Outcome:
        """A connection on which nothing is sent, until the proxy closes it (or long after
        its detect timeout)."""
        out: Outcome = self.door.hold(self.ip, port, self.detect_timeout + 5)
        return out

    def http_get(self, port: int, path: str) -> tuple[int, bytes, dict[str, str]]:
        got: tuple[int, bytes, dict[str, str]] = self.door.http_get(self.ip, port, path)
        return got


def counted(mesh: Mesh, name: str, **labels: str) -> float:
    return metrics(mesh).value(name, **labels)


def wait_counted(mesh: Mesh, name: str, at_least: float, **labels: str) -> float:
    return wait_for(f"{name}{labels} to reach {at_least:g}",
                    lambda: counted(mesh, name, **labels), lambda v: v >= at_least)


# ---- F10.1 TLS versions ----

@pytest.mark.facts("F10.1")
def test_the_proxy_accepts_each_versions_tls_versions_only(mesh: Mesh) -> None:
    """2.11's proxy accepts TLS 1.2 and 1.3; from 2.12 only 1.3: a TLS 1.2-only client's
    handshake is refused."""
    lab.deploy(mesh, lab.objects())
    door = Door(mesh, "a TLS client offering only TLS 1.2")
    accepted = expectations.tls_versions(mesh.profile.version)
    for version in ("1.2", "1.3"):
        got = door.tls(HTTP_PORT, versions=(version,), ca=door.anchor, read=False)
        assert got.established == (version in accepted), (
            f"TLS {version} only: expected {'a handshake' if version in accepted else 'a refusal'}"
            f" (accepted: {', '.join(accepted)}), observed {got}")
        if got.established:
            assert got.version == f"TLSv{version}", got


# ---- F10.2 SNI ----

@pytest.mark.facts("F10.2", "F10.10")
def test_tls_with_another_sni_is_passed_through_to_the_app_unterminated(mesh: Mesh) -> None:
    """The proxy terminates TLS only for a ClientHello naming its own identity. A ClientHello
    naming another host reaches the app as it was sent (the lab's TCP echo sends it back), and
    is counted `tls="opaque"` with its `sni`; one with no SNI is handled as not TLS."""
    lab.deploy(mesh, lab.objects())
    door = Door(mesh, "a ClientHello with a chosen SNI")
    for sni in (FOREIGN_SNI, None):
        hello = rc.client_hello(sni)
        back = door.raw_exchange(TCP_PORT, hello, len(hello))
        assert back == hello, (f"a ClientHello with SNI {sni!r}: expected the app to echo it "
                               f"unterminated, observed {back[:16].hex()}… ({len(back)} bytes)")
    wait_counted(mesh, "inbound_tcp_authz_allow_total", 1, tls="opaque", sni=FOREIGN_SNI)
    wait_counted(mesh, "inbound_tcp_authz_allow_total", 1, tls="no_identity",
                 no_tls_reason="no_tls_from_remote")
    own = rc.client_hello(identity_of_server())
    back = door.raw_exchange(TCP_PORT, own, len(own), timeout=2)
    assert back and back != own and back[0] == 0x16 and back[5] == 0x02, (
        f"a ClientHello naming the proxy: expected its ServerHello, observed {back[:16].hex()}")


# ---- F10.3 ALPN ----

@pytest.mark.facts("F10.3")
def test_an_application_port_negotiates_no_alpn(mesh: Mesh) -> None:
    """A TLS client offering ALPN h2 to an app port gets a handshake with no protocol
    selected (only the proxy's port 4143 negotiates one)."""
    lab.deploy(mesh, lab.objects())
    door = Door(mesh, "a TLS client offering ALPN")
    got = door.tls(GRPC_PORT, alpn=("h2", "http/1.1"), ca=door.anchor,
                   cert=door.meshed_certificate(), read=False)
    assert got.established, got
    assert got.alpn is None, f"expected no ALPN protocol, the proxy selected {got.alpn!r}"


# ---- F10.4 client certificates ----

@pytest.mark.facts("F10.4")
def test_a_client_certificate_from_another_ca_gets_unknown_ca(mesh: Mesh) -> None:
    """A client chain is verified against the trust anchor alone: the same identity issued
    by another CA (with the same names) is refused with the `unknown_ca` alert."""
    lab.deploy(mesh, lab.objects())
    door = Door(mesh, "a TLS client presenting a certificate of another CA")
    mine = door.meshed_certificate()
    with door.door.foreign_ca() as issue:
        # nothing sent after the handshake: in TLS 1.3 the alert follows the client's
        # Finished, and data still unread at the server's close would turn it into a reset
        got = door.tls(HTTP_PORT, ca=door.anchor, cert=issue(lab.identity(lab.MESHED)))
    assert "UNKNOWN_CA" in got.error.upper() and not got.reply, (
        f"expected the unknown_ca alert and no answer, observed {got}")
    ok = door.tls(HTTP_PORT, ca=door.anchor, cert=mine,
                  send=b"GET /hello HTTP/1.1\r\nhost: lab\r\nconnection: close\r\n\r\n")
    assert ok.reply.startswith(b"HTTP/1.1 200"), f"the mesh's own certificate: {ok}"


@pytest.mark.facts("F10.4")
def test_the_certificate_request_names_the_trust_anchor(mesh: Mesh) -> None:
    """The proxy's CertificateRequest lists the trust anchor as the CA hint, as
    `openssl s_client` prints it."""
    lab.deploy(mesh, lab.objects())
    door = Door(mesh, "openssl s_client", local_tools=True)
    if not rc.openssl_available():
        pytest.skip("openssl is not installed")
    out = rc.openssl_s_client(door.ip, HTTP_PORT, "-servername", identity_of_server())
    assert out is not None
    hints = out.split("Acceptable client certificate CA names", 1)
    assert len(hints) == 2 and "root.linkerd.cluster.local" in hints[1].split("Requested", 1)[0], (
        f"expected the anchor as CA hint, openssl printed: {out[-600:]}")


# ---- F10.5 opaque ports ----

@pytest.mark.facts("F10.5", "F10.10")
def test_an_opaque_port_does_not_terminate_tls_sent_straight_to_it(mesh: Mesh) -> None:
    """An opaque port skips TLS detection: even the mesh's own certificate and SNI sent
    straight to it reach the app as bytes (`no_tls_reason="port_skipped"`, no identity), while
    the meshed client's traffic, which its proxy sends to 4143 with a transport header, keeps
    its identity."""
    lab.deploy(mesh, [*lab.objects(), *open_server("raw", "tcp", "opaque")])
    expect(mesh, lab.MESHED, lab.TCP, "tcp", **lab.REQUESTS["tcp"]).becomes(ALLOWED)
    wait_counted(mesh, "inbound_tcp_authz_allow_total", 1, tls="true",
                 client_id=lab.identity(lab.MESHED), target_port=str(TCP_PORT))
    door = Door(mesh, "TLS sent straight to an opaque port")
    hello = rc.client_hello(identity_of_server())
    back = door.raw_exchange(TCP_PORT, hello, len(hello))
    assert back == hello, (f"expected the ClientHello echoed by the app (no termination), "
                           f"observed {back[:16].hex()}… ({len(back)} bytes)")
    wait_counted(mesh, "inbound_tcp_authz_allow_total", 1, tls="no_identity",
                 no_tls_reason="port_skipped", target_port=str(TCP_PORT))


# ---- F10.6 h2 on an HTTP/1 port ----

@pytest.mark.facts("F10.6")
def test_a_meshed_h2_connection_to_an_http1_port_is_served(mesh: Mesh) -> None:
    """Meshed HTTP/1 may travel as h2 between proxies: on a port hinted HTTP/1 the proxy
    detects h2 on a meshed connection and serves it (the app still speaks HTTP/1)."""
    lab.deploy(mesh, [*lab.objects(), *open_server("web", "http", "HTTP/1")])
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    out = expect(mesh, lab.MESHED, lab.HTTP, "http2", **HTTP).becomes(OK)
    assert out.body == b"GET /hello", f"expected the app's answer, observed {out.body[:80]!r}"


# ---- F10.7 l5d-client-id ----

def _client_ids(body: bytes) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in body.decode("latin-1").splitlines()
            if line.lower().startswith("l5d-client-id:")]


@pytest.mark.facts("F10.7")
def test_the_app_sees_the_meshed_identity_and_never_a_forged_l5d_client_id(mesh: Mesh) -> None:
    """The proxy sets `l5d-client-id` to a meshed client's identity and strips the header
    from every request: the app (which shows the headers it received) sees the meshed client's
    identity once and no header at all from a plaintext client that forged one."""
    lab.deploy(mesh, lab.objects())
    forged = {"path": "/headers", "headers": [("l5d-client-id", "forged.identity")]}
    meshed = expect(mesh, lab.MESHED, lab.HTTP, "http", **forged).becomes(OK)
    assert _client_ids(meshed.body) == [lab.identity(lab.MESHED)], meshed.body
    plain = expect(mesh, lab.UNMESHED, lab.HTTP, "http", **forged).becomes(OK)
    assert _client_ids(plain.body) == [], f"a forged l5d-client-id reached the app: {plain.body!r}"


GATEWAY = Dest("linkerd-multicluster", "linkerd-gateway", 4143)
REMOTE = Client("remote", "vote-bot", meshed=True, network="outside", name="remote-vote-bot")
LAB_SERVICE = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "server", "namespace": lab.NAMESPACE},
               "spec": {"selector": {"app": "server"}, "ports": [
                   {"name": "http", "port": 80, "targetPort": HTTP_PORT}]}}


@pytest.mark.facts("F10.7", "F8.1")
def test_through_the_gateway_the_app_sees_the_gateway_identity(mesh: Mesh) -> None:
    """A request through the multicluster gateway reaches the app with `l5d-client-id` naming
    the gateway, not the remote client, and not a header the remote client forged."""
    why = mesh.cannot_place(REMOTE)
    if why is not None:
        pytest.skip(f"the {mesh.name} target has no second cluster to send traffic from ({why})")
    lab.deploy(mesh, [*lab.objects(), LAB_SERVICE])
    mesh.apply(*manifests.load("multicluster-gateway.yml"))
    for rollout in mesh.wait_rollout("linkerd-multicluster"):
        assert rollout.settled, rollout.reason
    out = expect(mesh, REMOTE, GATEWAY, "http", path="/headers",
                 authority=f"server.{lab.NAMESPACE}.svc.cluster.local:80",
                 headers=[("l5d-client-id", "forged.identity")]).becomes(OK)
    gateway = expectations.sa_identity("linkerd-gateway", "linkerd-multicluster")
    assert _client_ids(out.body) == [gateway], out.body


# ---- F10.8 the refusal text ----

@pytest.mark.facts("F10.8", "F5.6")
def test_the_refusal_text_is_each_versions_whole_message(mesh: Mesh) -> None:
    """The grpc-message a meshed client gets names the server (2.11), says `unauthorized
    request on route` (2.12) and, from 2.13, is the whole error chain `client <ip:port>:
    server: <ip:port>: unauthorized request on route`, matched whole."""
    lab.deploy(mesh, [*lab.objects(), lab.server("grpc-locked", "grpc", proxy_protocol="gRPC")])
    out = expect(mesh, lab.MESHED, lab.GRPC, "grpc", **lab.REQUESTS["grpc"]).becomes(
        GRPC_PERMISSION_DENIED)
    server_addr = f"{server_pod(mesh).ip}:{GRPC_PORT}"
    want = expectations.denial_message(mesh.profile.version, "grpc-locked", "CLIENT", server_addr)
    pattern = re.escape(want).replace("CLIENT", r"[0-9a-fA-F.:\[\]]+:\d+")
    assert out.grpc_message is not None and re.fullmatch(pattern, out.grpc_message), (
        f"expected grpc-message {want!r} (CLIENT = the client's ip:port), "
        f"observed {out.grpc_message!r}")


# ---- F10.9 detection timeout, opaque denial at accept ----

@pytest.mark.facts("F10.9")
def test_a_silent_client_is_closed_after_the_detect_timeout_and_not_counted_as_denied(
        mesh: Mesh) -> None:
    """A client that sends nothing on a port that is not opaque is closed once the detect
    timeout passes and counted in `inbound_tcp_errors_total{error="tls detection timeout"}`,
    not as an authorization refusal."""
    lab.deploy(mesh, lab.objects())
    door = Door(mesh, "a probe that waits past the proxy's 10 s detect timeout")
    expect(mesh, lab.UNMESHED, lab.TCP, "tcp", **lab.REQUESTS["tcp"]).becomes(ALLOWED)
    before = metrics(mesh)
    start = time.monotonic()
    out = door.hold(TCP_PORT)
    waited = time.monotonic() - start
    assert out.verdict is CONNECTION_CLOSED.verdict and out.bytes_seen == 0, out.short()
    assert waited >= door.detect_timeout * 0.9, (
        f"closed after {waited:.2f}s, before the {door.detect_timeout:g}s detect timeout")
    wait_counted(mesh, "inbound_tcp_errors_total",
                 before.value("inbound_tcp_errors_total", error="tls detection timeout") + 1,
                 error="tls detection timeout")
    for name in ("inbound_tcp_authz_deny_total", "inbound_tcp_authz_allow_total"):
        assert counted(mesh, name) == before.value(name), f"{name} moved for a silent client"


@pytest.mark.facts("F10.9", "F10.5")
def test_an_opaque_port_under_deny_closes_a_silent_client_at_accept(mesh: Mesh) -> None:
    """On an opaque port nothing is detected, so a refused client is closed at accept,
    without waiting for a byte: well before any detect timeout."""
    lab.deploy(mesh, [*lab.objects(), lab.server("raw", "tcp", proxy_protocol="opaque")])
    expect(mesh, lab.UNMESHED, lab.TCP, "tcp", **lab.REQUESTS["tcp"]).becomes(CONNECTION_CLOSED)
    limit = getattr(mesh, "detect_timeout", 10.0) / 2
    out = mesh.probe(lab.UNMESHED, lab.TCP, "tcp", **SILENT)
    assert out.verdict is CONNECTION_CLOSED.verdict and out.bytes_seen == 0, out.short()
    assert out.elapsed < limit, f"closed after {out.elapsed:.2f}s: it waited for the client"


# ---- F10.10 metric labels ----

@pytest.mark.facts("F10.10")
def test_plaintext_http_is_labelled_no_identity_with_each_versions_route_labels(
        mesh: Mesh) -> None:
    """A plaintext request is counted `tls="no_identity",no_tls_reason="no_tls_from_remote"`;
    from 2.12 the HTTP authorization counters also name the route (`route_kind="default"`,
    `route_name="default"` with no route attached)."""
    lab.deploy(mesh, lab.objects())
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    plain = {"tls": "no_identity", "no_tls_reason": "no_tls_from_remote",
             "target_port": str(HTTP_PORT)}
    wait_counted(mesh, "inbound_http_authz_allow_total", 1, **plain)
    routed = counted(mesh, "inbound_http_authz_allow_total", route_kind="default",
                     route_name="default", **plain)
    if expectations.authz_route_labels(mesh.profile.version):
        assert routed >= 1, "expected route_kind/route_name labels on the allow counter"
    else:
        assert routed == 0, "2.11's counters have no route labels"


@pytest.mark.facts("F10.10")
def test_tls_without_a_client_certificate_is_labelled_true_with_an_empty_client_id(
        mesh: Mesh) -> None:
    """TLS without a client certificate is counted `tls="true",client_id=""`."""
    lab.placeable(mesh, lab.ANONYMOUS_TLS)
    lab.deploy(mesh, lab.objects())
    expect(mesh, lab.ANONYMOUS_TLS, lab.HTTP, "http", **HTTP).becomes(OK)
    wait_counted(mesh, "inbound_http_authz_allow_total", 1, tls="true", client_id="",
                 target_port=str(HTTP_PORT))


@pytest.mark.facts("F10.10")
def test_the_authorization_counters_have_help_lines(mesh: Mesh) -> None:
    """The metrics page, scraped like a user does, has one `# HELP` and one `# TYPE ...
    counter` line per counter, however many series it has (`Metric::fmt_help`, written once
    before the series in the proxy's `metrics/authz.rs`): here two, a plaintext client's and
    a meshed one's."""
    lab.deploy(mesh, lab.objects())
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    name = "inbound_http_authz_allow_total"
    scrape = wait_for(f"the metrics page (200) with two {name} series",
                      lambda: mesh.probe(lab.UNMESHED, ADMIN, "http", path="/metrics"),
                      lambda out: OK.matches(out) and sum(
                          line.startswith(name + "{")
                          for line in out.body.decode().splitlines()) >= 2)
    lines = scrape.body.decode().splitlines()
    want = f"# HELP {name} The total number of inbound HTTP requests that were authorized"
    assert lines.count(want) == 1, f"expected {want!r} once, it is there {lines.count(want)} times"
    typed = f"# TYPE {name} counter"
    assert lines.count(typed) == 1, (
        f"expected {typed!r} once, it is there {lines.count(typed)} times")


# ---- F10.11 synthesized responses ----

@pytest.mark.versions(">=2.12")
@pytest.mark.facts("F5.11")
def test_curl_fail_exits_22_on_a_refused_plaintext_request(mesh: Mesh) -> None:
    """What Linkerd's own e2e tests assert of a refusal (`curl -f` exits 22 on the 403);
    curl runs beside the pods, unmeshed, from inside the cluster networks."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http", proxy_protocol="HTTP/1")])
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    door = Door(mesh, "curl beside the pods", local_tools=True)
    code = rc.curl_fail_exit(door.ip, HTTP_PORT, "/hello", door.source)
    if code is None:
        pytest.skip("curl is not installed on this machine")
    assert code == 22, f"expected curl -f to exit 22 on the refused request, it exited {code}"


@pytest.mark.facts("F10.11")
def test_a_synthesized_403_carries_a_date_header(mesh: Mesh) -> None:
    """The proxy's own 403 has a `date` header, as every response hyper writes."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http", proxy_protocol="HTTP/1")])
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    door = Door(mesh, "a response's headers")
    status, body, headers = door.http_get(HTTP_PORT, "/hello")
    assert status == 403 and body == b"", (status, body[:80])
    assert "date" in headers, f"no date header on the 403: {headers}"


@pytest.mark.facts("F10.11")
def test_an_h2_preface_on_a_plaintext_http1_port_gets_no_byte(mesh: Mesh) -> None:
    """A plaintext HTTP/2 client on a port hinted HTTP/1 is closed with nothing sent back
    (hyper's `VersionH2` error), not answered 400."""
    lab.deploy(mesh, [*lab.objects(), lab.server("web", "http", proxy_protocol="HTTP/1")])
    expect(mesh, lab.UNMESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)
    out = mesh.probe(lab.UNMESHED, lab.HTTP, "http2", **HTTP)
    assert out.verdict is CONNECTION_CLOSED.verdict and out.bytes_seen == 0, out.short()


# ---- F10.12 close_notify ----

@pytest.mark.facts("F10.12")
def test_the_proxy_closes_tls_with_close_notify(mesh: Mesh) -> None:
    """When the proxy ends a TLS connection (here after `connection: close`) it sends
    `close_notify` first: the client's read ends cleanly, not with an unexpected EOF."""
    lab.deploy(mesh, lab.objects())
    door = Door(mesh, "a TLS client that tells close_notify from a bare close")
    got = door.tls(HTTP_PORT, ca=door.anchor, cert=door.meshed_certificate(),
                   send=b"GET /hello HTTP/1.1\r\nhost: lab\r\nconnection: close\r\n\r\n")
    assert got.reply.startswith(b"HTTP/1.1 200"), got
    assert got.close_notify is True, f"the proxy closed without close_notify: {got}"





# ---- F10.13 half-close ----

@pytest.mark.facts("F10.13")
def test_a_tcp_client_that_half_closes_still_reads_the_whole_reply(mesh: Mesh) -> None:
    """The proxy copies each direction until that direction ends (linkerd/duplex): a client
    that shuts down its sending side right after 4 KiB still reads the app's whole echo, not
    a connection cut at the client's FIN."""
    lab.deploy(mesh, lab.objects())
    payload = b"half-closed echo" * 256
    request = {"payload": payload, "half_close": True}
    expect(mesh, lab.UNMESHED, lab.TCP, "tcp", **request).becomes(ALLOWED)
    for _ in range(3):
        out = mesh.probe(lab.UNMESHED, lab.TCP, "tcp", **request)
        assert out.verdict is ALLOWED.verdict and out.body == payload, (
            f"expected the {len(payload)}-byte echo back after the client's FIN, got "
            f"{out.short()} with {len(out.body or b'')} bytes")
