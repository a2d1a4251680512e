"""The reference proxy's HTTP framing: detection, keep-alive, trailers-only, relaying gRPC."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from linkerd_conformance import Verdict
from linkerd_conformance.prober import H2Client, Http1Connection, ProbeSession, probe
from linkerd_conformance.prober.serve import serve
from linkerd_conformance.prober.testing import RawServer
from linkerd_conformance.reference.wire import (
    BufferedSocket,
    Http1Upstream,
    Http2Upstream,
    Request,
    Response,
    detect,
    detect_protocol,
    read_prefix,
    serve_http1,
    serve_http2,
)
from linkerd_conformance.reference.wire.detect import H2_PREFACE

LOCAL = "127.0.0.1"
Handler = Callable[[Request], Response]


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test joins its threads and closes its sockets."""
    threads = set(threading.enumerate())
    fds = set(os.listdir("/proc/self/fd"))
    yield
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        if not extra:
            break
        time.sleep(0.01)
    assert not extra, f"threads left behind: {extra}"
    leaked = [fd for fd in set(os.listdir("/proc/self/fd")) - fds
              if os.path.exists(f"/proc/self/fd/{fd}")
              and os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")]
    assert not leaked, f"sockets left open: {leaked}"


def front(handler: Handler, **kw: object) -> RawServer:
    """A server that detects the protocol and serves it with `handler`, like the proxy."""
    def conn(sock: socket.socket) -> None:
        bs = BufferedSocket(sock)
        kind = detect_protocol(bs, 1.0)
        if kind == "http1":
            serve_http1(bs, handler)
        elif kind == "http2":
            serve_http2(bs, handler)
        else:
            bs.close()
    return RawServer(conn, **kw)  # type: ignore[arg-type]


def echo_handler(req: Request) -> Response:
    body = f"{req.http_version} {req.method} {req.path} {req.authority} ".encode() + req.body
    return Response(200, [("x-seen-headers", ",".join(k for k, _ in req.headers))], body)


# -- detection -----------------------------------------------------------------------------

@pytest.mark.parametrize(("prefix", "kind"), [
    (H2_PREFACE, "http2"),
    (H2_PREFACE + b"\x00\x00", "http2"),
    (b"GET / HTTP/1.1\r\n", "http1"),
    (b"OPTIONS * HTTP/1.1", "http1"),
    (b"DELETE ", "http1"),
    (b"GET", None),
    (b"get / HTTP/1.1", None),
    (b"PRI * HTTP/2.0\r\n", None),
    (b"\x16\x03\x01\x02\x00", None),  # a TLS ClientHello
    (b"", None),
])
def test_detect(prefix: bytes, kind: str | None) -> None:
    assert detect(prefix) == kind


@pytest.mark.parametrize(("sent", "close", "kind"), [
    (b"GET / HTTP/1.1\r\n\r\n", False, "http1"),  # shorter than the preface: no stall
    (H2_PREFACE, False, "http2"),
    (b"\x16\x03\x01", False, None),  # decided at once: cannot become HTTP
    (b"PRI * HTTP", True, None),
    (b"", True, None),
])
def test_detect_protocol_decides_early(sent: bytes, close: bool, kind: str | None) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(sent)
        if close:
            a.shutdown(socket.SHUT_WR)
        bs = BufferedSocket(b)
        start = time.monotonic()
        assert detect_protocol(bs, 0.5) == kind
        assert time.monotonic() - start < 0.2
        assert bs.recv(100) == sent  # nothing consumed


def test_detect_protocol_times_out_on_silence() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"PO")
        assert detect_protocol(BufferedSocket(b), 0.1) is None


def test_read_prefix_peeks_on_plain_sockets_and_refuses_tls() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"GET / HTTP/1.1\r\n")
        assert read_prefix(b, 3, 0.2) == b"GET"
        assert read_prefix(b, 100, 0.05) == b"GET / HTTP/1.1\r\n"
        assert b.recv(100) == b"GET / HTTP/1.1\r\n"
        bs = BufferedSocket(b)
        a.sendall(b"xyz")
        assert read_prefix(bs, 2, 0.2) == b"xy" and bs.recv(10) == b"xyz"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with socket.socket() as raw, ctx.wrap_socket(raw, do_handshake_on_connect=False,
                                            server_hostname="x") as tls, \
            pytest.raises(TypeError, match="BufferedSocket"):
        read_prefix(tls, 1, 0.1)


# -- HTTP/1 --------------------------------------------------------------------------------

def test_http1_keepalive_chunked_and_head() -> None:
    with front(echo_handler) as srv, socket.create_connection((LOCAL, srv.port), 1) as sock:
        conn = Http1Connection(sock)
        r1 = conn.request("GET", "/a", {"x-one": "1"}, authority="web:80", timeout=1)
        r3 = conn.request("HEAD", "/c", timeout=1)
        r4 = conn.request("PUT", "/d", body=b"xyz", timeout=1)
        assert conn.reusable and conn.requests == 3
    with front(echo_handler) as other, \
            socket.create_connection((LOCAL, other.port), 1) as sock:
        sock.sendall(b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        chunked = b"".join(iter(lambda: sock.recv(4096), b""))
    assert (r1.status, r1.body) == (200, b"HTTP/1.1 GET /a web:80 ")
    assert r1.header("x-seen-headers") == "host,x-one"
    assert chunked.startswith(b"HTTP/1.1 200 OK\r\n")
    assert chunked.endswith(b"\r\n\r\nHTTP/1.1 POST /b h abcde")
    head_len = len(f"HTTP/1.1 HEAD /c {LOCAL}:{srv.port} ")
    assert (r3.status, r3.body, r3.header("content-length")) == (200, b"", str(head_len))
    assert r4.body.endswith(b"PUT /d 127.0.0.1:%d xyz" % srv.port)


def test_http1_denial_keeps_the_connection() -> None:
    def deny_b(req: Request) -> Response:
        if req.path == "/b":
            return Response(403, [("l5d-proxy-error", "unauthorized request on route")])
        return echo_handler(req)
    with front(deny_b) as srv, ProbeSession("http", LOCAL, srv.port) as s:
        outs = [s.probe(path=p) for p in ("/a", "/b", "/a")]
        assert s.connections == 1
    assert [o.verdict for o in outs] == [Verdict.ALLOWED, Verdict.HTTP_FORBIDDEN,
                                          Verdict.ALLOWED]
    assert outs[1].proxy_error == "unauthorized request on route"


def test_http1_handler_exception_closes_the_connection(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    def boom(req: Request) -> Response:
        raise RuntimeError("handler bug")
    with front(boom) as srv:
        out = probe("http", LOCAL, srv.port)
    assert out.verdict is Verdict.CONNECTION_CLOSED
    assert "handler failed" in caplog.text


def test_http1_bad_request_gets_400() -> None:
    with front(echo_handler) as srv, socket.create_connection((LOCAL, srv.port), 1) as sock:
        sock.sendall(b"GET /\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")


def test_http1_expect_100_continue_gets_the_interim_answer_first() -> None:
    with front(echo_handler) as srv, socket.create_connection((LOCAL, srv.port), 1) as sock:
        sock.sendall(b"PUT /e HTTP/1.1\r\nhost: h\r\nexpect: 100-continue\r\n"
                     b"content-length: 2\r\n\r\n")
        interim = sock.recv(100)
        sock.sendall(b"hi")
        reply = sock.recv(1000)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"PUT /e h hi")


def test_http1_pipelined_requests_are_all_answered_in_order() -> None:
    with front(echo_handler) as srv, socket.create_connection((LOCAL, srv.port), 1) as sock:
        sock.sendall(b"GET /1 HTTP/1.1\r\nhost: h\r\n\r\n"
                     b"GET /2 HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n")
        replies = b"".join(iter(lambda: sock.recv(4096), b""))
    assert replies.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert replies.index(b"GET /1 h") < replies.index(b"GET /2 h")


def test_http1_request_cut_short_by_the_clients_close_gets_no_answer() -> None:
    with front(echo_handler) as srv, socket.create_connection((LOCAL, srv.port), 1) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nhost: h\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""


def test_serve_http1_stops_when_asked() -> None:
    a, b = socket.socketpair()
    stop = threading.Event()
    t = threading.Thread(target=serve_http1, args=(BufferedSocket(b), echo_handler),
                         kwargs={"should_stop": stop.is_set, "poll": 0.02})
    t.start()
    stop.set()
    t.join(1)
    with a:
        assert not t.is_alive() and a.recv(1) == b""


def test_http1_upstream_relays_to_the_app() -> None:
    with serve(http=0, host=LOCAL) as app, \
            socket.create_connection((LOCAL, app.ports["http"]), 1) as sock:
        up = Http1Upstream(sock)
        req = Request("POST", "/x", "app", [("host", "app"), ("connection", "keep-alive")],
                      b"b", "HTTP/1.1")
        responses = [up.send(req), up.send(req)]
        up.close()
    assert [(r.status, r.body) for r in responses] == [(200, b"POST /x")] * 2
    assert responses[0].header("content-length") is None  # hop-by-hop, re-set by the server


# -- HTTP/2 and gRPC -----------------------------------------------------------------------

def test_http2_server_responses() -> None:
    big = bytes(range(256)) * 1000  # beyond the initial 65535-byte window, both ways

    def handler(req: Request) -> Response:
        if req.path == "/deny":
            return Response(403, [("content-length", "0")])
        if req.path == "/grpc-deny":
            return Response(200, [("content-type", "application/grpc"), ("grpc-status", "7")],
                            trailers_only=True)
        if req.path == "/big":
            return Response(200, [], req.body + big)
        return Response(200, [("x-a", "1")], b"ok", trailers=[("x-trailer", "t")])
    with front(handler) as srv, socket.create_connection((LOCAL, srv.port), 1) as sock:
        client = H2Client(sock)
        auth = f"{LOCAL}:{srv.port}"
        deny = client.request("GET", "/deny", auth, timeout=1)
        gdeny = client.request("POST", "/grpc-deny", auth, timeout=1)
        ok = client.request("GET", "/ok", auth, timeout=1)
        large = client.request("POST", "/big", auth, body=big, timeout=2)
        client.close()
    assert (deny.status, deny.body, deny.trailers_only) == (403, b"", True)
    assert gdeny.trailers_only and gdeny.header("grpc-status") == "7"
    assert (ok.body, ok.header("x-a"), ok.trailer("x-trailer"), ok.trailers_only) == \
        (b"ok", "1", "t", False)
    assert large.body == big + big


def test_http2_request_fields() -> None:
    seen: list[Request] = []

    def handler(req: Request) -> Response:
        seen.append(req)
        return Response(200, [], b"x")
    with front(handler) as srv:
        out = probe("http2", LOCAL, srv.port, method="PUT", path="/p?q", body=b"data",
                    headers={"x-h": "v"}, authority="web.emojivoto:80")
    assert out.verdict is Verdict.ALLOWED
    (req,) = seen
    assert (req.method, req.path, req.authority, req.body, req.http_version) == \
        ("PUT", "/p?q", "web.emojivoto:80", b"data", "HTTP/2")
    assert ("x-h", "v") in req.headers and not any(k.startswith(":") for k, _ in req.headers)
    assert not req.is_grpc


class _Echo(grpc.GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: details.method.encode() + b"|" + request)


@pytest.fixture()
def grpc_app() -> Iterator[int]:
    executor = futures.ThreadPoolExecutor(max_workers=2)
    server = grpc.server(executor, handlers=(_Echo(),))
    port = server.add_insecure_port(f"{LOCAL}:0")
    server.start()
    yield port
    server.stop(None).wait()
    executor.shutdown(wait=True)


def relay_to(port: int, deny: str = "") -> Handler:
    """A proxy handler: deny one gRPC method trailers-only, relay the rest on one upstream."""
    lock = threading.Lock()
    upstreams: list[Http2Upstream] = []

    def handler(req: Request) -> Response:
        if deny and req.path.endswith(deny) and req.is_grpc:
            return Response(200, [("content-type", "application/grpc"), ("grpc-status", "7"),
                                  ("content-length", "0")], trailers_only=True)
        with lock:
            if not upstreams or upstreams[0].closed:
                upstreams[:] = [Http2Upstream(socket.create_connection((LOCAL, port), 1),
                                              timeout=1)]
            return upstreams[0].send(req)
    handler.upstreams = upstreams  # type: ignore[attr-defined]
    return handler


def test_grpc_round_trip_through_serve_http2_and_http2_upstream(grpc_app: int) -> None:
    handler = relay_to(grpc_app, deny="/Deny")
    with front(handler) as srv, ProbeSession("grpc", LOCAL, srv.port) as s:
        ok = s.probe(method="emojivoto.v1.EmojiService/ListAll", message=b"\x08\x01")
        denied = s.probe(method="emojivoto.v1.EmojiService/Deny")
        again = s.probe(method="emojivoto.v1.EmojiService/FindByShortcode", message=b"z")
        assert s.connections == 1
        s.close()
        for up in handler.upstreams:  # type: ignore[attr-defined]
            up.close()
    assert (ok.verdict, ok.grpc_status) == (Verdict.ALLOWED, 0)
    assert ok.body == b"/emojivoto.v1.EmojiService/ListAll|\x08\x01"
    assert (denied.verdict, denied.grpc_status) == (Verdict.GRPC_PERMISSION_DENIED, 7)
    assert again.body.endswith(b"FindByShortcode|z")


def test_grpcio_client_through_serve_http2(grpc_app: int) -> None:
    """A real gRPC client accepts the relayed answers and sees the denial as PermissionDenied."""
    handler = relay_to(grpc_app, deny="/Deny")
    with front(handler) as srv:
        channel = grpc.insecure_channel(f"{LOCAL}:{srv.port}")
        try:
            echo = channel.unary_unary("/pkg.Svc/Echo")(b"hi", timeout=2)
            with pytest.raises(grpc.RpcError) as exc:
                channel.unary_unary("/pkg.Svc/Deny")(b"", timeout=2)
        finally:
            channel.close()
            for up in handler.upstreams:  # type: ignore[attr-defined]
                up.close()
    assert echo == b"/pkg.Svc/Echo|hi"
    assert exc.value.code() is grpc.StatusCode.PERMISSION_DENIED


# -- TLS -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("web")]), critical=False)
            .sign(key, hashes.SHA256()))
    d: Path = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(d / "cert.pem", d / "key.pem")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(d / "cert.pem")
    return server, client


@pytest.mark.parametrize("protocol", ["http", "http2"])
def test_detection_and_serving_over_tls(protocol: str,
                                        tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]
                                        ) -> None:
    server_ctx, client_ctx = tls_pair

    def connect(addr: tuple[str, int], timeout: float) -> socket.socket:
        raw = socket.create_connection(addr, timeout)
        try:
            return client_ctx.wrap_socket(raw, server_hostname="web")
        except BaseException:
            raw.close()
            raise

    def wrap(sock: socket.socket) -> socket.socket:
        sock.settimeout(1)
        return server_ctx.wrap_socket(sock, server_side=True)
    with front(echo_handler, wrap=wrap) as srv, \
            ProbeSession(protocol, LOCAL, srv.port, connect=connect) as s:
        outs = [s.probe(path="/tls"), s.probe(path="/again")]
        s.close()
    version = "HTTP/1.1" if protocol == "http" else "HTTP/2"
    assert [o.verdict for o in outs] == [Verdict.ALLOWED, Verdict.ALLOWED]
    assert outs[0].body.startswith(f"{version} GET /tls".encode())


def test_tls_connection_closed_after_handshake_is_connection_closed(
        tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """A TCP-level denial behind mTLS: the handshake succeeds, then the proxy closes."""
    server_ctx, client_ctx = tls_pair

    def connect(addr: tuple[str, int], timeout: float) -> socket.socket:
        raw = socket.create_connection(addr, timeout)
        return client_ctx.wrap_socket(raw, server_hostname="web")

    def wrap(sock: socket.socket) -> socket.socket:
        return server_ctx.wrap_socket(sock, server_side=True)
    with RawServer(lambda conn: conn.close(), wrap=wrap) as srv:
        out = probe("tcp", LOCAL, srv.port, connect=connect)
    assert out.verdict is Verdict.CONNECTION_CLOSED, out.short()
