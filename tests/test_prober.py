"""The prober classifies only exact wire signals as denials, against misbehaving servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

from linkerd_conformance import Outcome, Verdict
from linkerd_conformance.prober import Http1Connection, ProbeSession, grpc_call, probe
from linkerd_conformance.prober.__main__ import main
from linkerd_conformance.prober.serve import serve
from linkerd_conformance.prober.testing import (
    RawServer,
    closed_port,
    read_request_head,
    reset,
)

LOCAL = "127.0.0.1"


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test joins its threads and closes its sockets."""
    threads = set(threading.enumerate())
    fds = set(os.listdir("/proc/self/fd"))
    yield
    def leftovers() -> tuple[list[threading.Thread], list[str]]:
        extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()
                 and not t.name.startswith("prober-grpc")]  # the module's echo server pool
        leaked = [fd for fd in set(os.listdir("/proc/self/fd")) - fds
                  if os.path.exists(f"/proc/self/fd/{fd}")
                  and os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")]
        return extra, leaked

    # grpcio closes a finished connection's server side on its own threads, a moment later
    # (longer on a loaded machine): wait for that, boundedly, before calling it a leak
    deadline = time.monotonic() + 3.0
    extra, leaked = leftovers()
    while (extra or leaked) and time.monotonic() < deadline:
        time.sleep(0.01)
        extra, leaked = leftovers()
    assert not extra, f"threads left behind: {extra}"
    assert not leaked, f"sockets left open: {leaked}"


@pytest.fixture(scope="module")
def echo() -> Iterator[dict[str, int]]:
    """The probe image's own echo servers, in process."""
    with serve(http=0, tcp=0, grpc_port=0, host=LOCAL) as servers:
        yield servers.ports


def http_answer(raw: bytes) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(raw)
    return handler


def h2_server(respond: Callable[[h2.connection.H2Connection, int, dict[str, str]], None],
              ) -> Callable[[socket.socket], None]:
    """A raw h2 server: `respond(conn, stream_id, request_headers)` for every request."""
    def handler(sock: socket.socket) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        requests: dict[int, dict[str, str]] = {}
        while data := sock.recv(65536):
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    requests[ev.stream_id] = dict(ev.headers or [])
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    respond(conn, ev.stream_id, requests.pop(ev.stream_id))
            sock.sendall(conn.data_to_send())
    return handler


# -- HTTP/1 --------------------------------------------------------------------------------

def test_http_allowed_by_echo_server(echo: dict[str, int]) -> None:
    out = probe("http", LOCAL, echo["http"], path="/x?y=1", method="POST", body=b"hi")
    assert out.verdict is Verdict.ALLOWED
    assert (out.status, out.body) == (200, b"POST /x?y=1")
    assert out.bytes_seen > 0 and out.elapsed > 0


@pytest.mark.parametrize(("raw", "verdict", "status"), [
    (b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n", Verdict.HTTP_FORBIDDEN, 403),
    (b"HTTP/1.1 403 Forbidden\r\ncontent-length: 4\r\n\r\nnope", Verdict.ALLOWED, 403),
    (b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", Verdict.NOT_FOUND, 404),
    (b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno", Verdict.ALLOWED, 404),
    (b"HTTP/1.1 503 Unavailable\r\ncontent-length: 0\r\n\r\n", Verdict.ALLOWED, 503),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
     Verdict.ALLOWED, 200),
    (b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto-eof", Verdict.ALLOWED, 200),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n",
     Verdict.HTTP_FORBIDDEN, 403),  # an interim answer is skipped, the final one counts
])
def test_http_classification(raw: bytes, verdict: Verdict, status: int) -> None:
    with RawServer(http_answer(raw)) as srv:
        out = probe("http", LOCAL, srv.port)
    assert (out.verdict, out.status) == (verdict, status), out.short()
    assert out.bytes_seen == len(raw)


def test_http_proxy_error_header_is_kept() -> None:
    raw = (b"HTTP/1.1 403 Forbidden\r\nl5d-proxy-error: unauthorized request on route\r\n"
           b"content-length: 0\r\n\r\n")
    with RawServer(http_answer(raw)) as srv:
        out = probe("http", LOCAL, srv.port)
    assert out.verdict is Verdict.HTTP_FORBIDDEN
    assert out.proxy_error == "unauthorized request on route"


@pytest.mark.parametrize("protocol", ["http", "http2", "grpc", "tcp"])
def test_accept_then_close_is_connection_closed(protocol: str) -> None:
    with RawServer(lambda conn: conn.close()) as srv:
        out = probe(protocol, LOCAL, srv.port, **({"method": "a.B/C"} if protocol == "grpc"
                                                  else {}))
    assert out.verdict is Verdict.CONNECTION_CLOSED, out.short()
    assert out.bytes_seen == 0


@pytest.mark.parametrize("protocol", ["http", "tcp"])
def test_accept_then_reset_is_connection_closed(protocol: str) -> None:
    def handler(conn: socket.socket) -> None:
        conn.recv(1)
        reset(conn)
    with RawServer(handler) as srv:
        out = probe(protocol, LOCAL, srv.port)
    assert out.verdict is Verdict.CONNECTION_CLOSED, out.short()


def test_http_closed_mid_response_is_error() -> None:
    with RawServer(http_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")) as srv:
        out = probe("http", LOCAL, srv.port)
    assert out.verdict is Verdict.ERROR and not out.verdict.is_denial
    assert out.bytes_seen > 0


def test_http_not_http_is_error() -> None:
    with RawServer(http_answer(b"SSH-2.0-OpenSSH\r\n")) as srv:
        out = probe("http", LOCAL, srv.port)
    assert out.verdict is Verdict.ERROR


@pytest.mark.parametrize("protocol", ["http", "http2", "tcp"])
def test_silent_server_is_timeout(protocol: str) -> None:
    def silent(conn: socket.socket) -> None:
        while conn.recv(65536):
            pass
    with RawServer(silent) as srv:
        out = probe(protocol, LOCAL, srv.port, timeout=0.2)
    assert out.verdict is Verdict.TIMEOUT, out.short()
    assert 0.15 < out.elapsed < 0.6


@pytest.mark.parametrize("protocol", ["http", "http2", "grpc", "tcp"])
def test_closed_port_is_refused(protocol: str) -> None:
    kwargs = {"method": "a.B/C"} if protocol == "grpc" else {}
    out = probe(protocol, LOCAL, closed_port(), **kwargs)
    assert out.verdict is Verdict.REFUSED and not out.verdict.is_denial


def test_connect_hook_errors_are_never_denials() -> None:
    def boom(addr: tuple[str, int], timeout: float) -> socket.socket:
        raise OSError(113, "No route to host")
    out = probe("tcp", LOCAL, 1, connect=boom)
    assert out.verdict is Verdict.ERROR and "No route to host" in out.detail


def test_keepalive_session_sees_a_per_request_denial() -> None:
    """F5.10: the next request on a kept-alive connection is denied, the connection stays."""
    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
        read_request_head(conn)  # then the client closes
    with RawServer(handler) as srv, ProbeSession("http", LOCAL, srv.port) as session:
        first, second = session.probe(path="/a"), session.probe(path="/b")
        assert session.connections == 1
        session.close()
    assert first.verdict is Verdict.ALLOWED and first.body == b"ok"
    assert second.verdict is Verdict.HTTP_FORBIDDEN


def test_a_close_after_a_kept_alive_answer_is_connection_closed_on_the_reused_connection(
        ) -> None:
    """A server that answers, then closes the kept-alive connection: the next request on it
    sees the close before any byte, a CONNECTION_CLOSED that says it was a reused one."""
    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        read_request_head(conn)
    with RawServer(handler) as srv, ProbeSession("http", LOCAL, srv.port) as session:
        first, second = session.probe(path="/a"), session.probe(path="/b")
    assert first.verdict is Verdict.ALLOWED
    assert (second.verdict, second.bytes_seen) == (Verdict.CONNECTION_CLOSED, 0), second.short()
    assert "reused" in second.detail


def test_http1_connection_reuse_against_echo(echo: dict[str, int]) -> None:
    with socket.create_connection((LOCAL, echo["http"]), timeout=1) as sock:
        conn = Http1Connection(sock)
        statuses = [conn.request("GET", f"/{i}", timeout=1) for i in range(3)]
    assert [(r.status, r.body) for r in statuses] == [(200, f"GET /{i}".encode())
                                                       for i in range(3)]
    assert conn.reusable and conn.requests == 3


# -- HTTP/2 and gRPC -----------------------------------------------------------------------

def test_http2_forbidden_and_allowed() -> None:
    def respond(conn: h2.connection.H2Connection, sid: int, req: dict[str, str]) -> None:
        if req[":path"] == "/deny":
            conn.send_headers(sid, [(":status", "403"), ("content-length", "0")],
                              end_stream=True)
        else:
            conn.send_headers(sid, [(":status", "200")])
            conn.send_data(sid, req[":path"].encode(), end_stream=True)
    with RawServer(h2_server(respond)) as srv, ProbeSession("http2", LOCAL, srv.port) as s:
        denied, allowed = s.probe(path="/deny"), s.probe(path="/ok")
        assert s.connections == 1
        s.close()
    assert denied.verdict is Verdict.HTTP_FORBIDDEN and denied.status == 403
    assert (allowed.verdict, allowed.body) == (Verdict.ALLOWED, b"/ok")


def _trailers_only(conn: h2.connection.H2Connection, sid: int, req: dict[str, str]) -> None:
    assert req["content-type"] == "application/grpc" and req["te"] == "trailers"
    conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"),
                            ("content-length", "0"), ("grpc-status", "7"),
                            ("grpc-message", "unauthorized%20request"),
                            ("l5d-proxy-error", "unauthorized request on route")],
                      end_stream=True)


def test_grpc_trailers_only_status_7_is_permission_denied() -> None:
    with RawServer(h2_server(_trailers_only)) as srv:
        out = probe("grpc", LOCAL, srv.port, method="emojivoto.v1.EmojiService/ListAll")
    assert out.verdict is Verdict.GRPC_PERMISSION_DENIED
    assert (out.status, out.grpc_status, out.grpc_message) == (200, 7, "unauthorized request")
    assert out.proxy_error == "unauthorized request on route"


def test_grpc_403_is_http_forbidden() -> None:
    def respond(conn: h2.connection.H2Connection, sid: int, req: dict[str, str]) -> None:
        conn.send_headers(sid, [(":status", "403"), ("content-length", "0")], end_stream=True)
    with RawServer(h2_server(respond)) as srv:
        out = probe("grpc", LOCAL, srv.port, method="a.B/C")
    assert out.verdict is Verdict.HTTP_FORBIDDEN and out.status == 403


def test_grpc_settings_then_close_is_not_a_denial() -> None:
    def handler(sock: socket.socket) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        sock.recv(65536)
    with RawServer(handler) as srv:
        out = probe("grpc", LOCAL, srv.port, method="a.B/C")
    assert out.verdict is Verdict.ERROR and out.bytes_seen > 0, out.short()


class _Service(grpc.GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        def call(request: bytes, context: grpc.ServicerContext) -> bytes:
            if details.method.endswith("/Deny"):
                context.abort(grpc.StatusCode.PERMISSION_DENIED, "app says no")
            if details.method.endswith("/DenyAfterHeaders"):
                context.send_initial_metadata((("x-app", "1"),))
                context.abort(grpc.StatusCode.PERMISSION_DENIED, "app says no")
            return request[::-1]
        return grpc.unary_unary_rpc_method_handler(call)


@pytest.fixture()
def grpc_app() -> Iterator[int]:
    executor = futures.ThreadPoolExecutor(max_workers=2)
    server = grpc.server(executor, handlers=(_Service(),))
    port = server.add_insecure_port(f"{LOCAL}:0")
    server.start()
    yield port
    server.stop(None).wait()
    executor.shutdown(wait=True)


def test_grpc_allowed_returns_the_message(grpc_app: int) -> None:
    out = probe("grpc", LOCAL, grpc_app, method="/x.Y/Echo", message=b"\x0a\x03abc",
                metadata={"x-meta": "1"})
    assert out.verdict is Verdict.ALLOWED
    assert (out.grpc_status, out.body) == (0, b"cba\x03\x0a")


def test_grpc_app_permission_denied_after_headers_is_allowed(grpc_app: int) -> None:
    out = probe("grpc", LOCAL, grpc_app, method="x.Y/DenyAfterHeaders")
    assert out.verdict is Verdict.ALLOWED and out.grpc_status == 7
    assert out.grpc_message == "app says no"


def test_grpcio_abort_is_trailers_only_on_the_wire(grpc_app: int) -> None:
    """grpcio answers an abort before any message trailers-only, just as the proxy does: the
    wire cannot tell them apart, so a check must use an app that does not deny by itself."""
    with socket.create_connection((LOCAL, grpc_app), timeout=1) as sock:
        reply = grpc_call(sock, f"{LOCAL}:{grpc_app}", "x.Y/Deny", b"", timeout=1)
    assert reply.trailers_only and reply.grpc_status == 7
    assert reply.grpc_message == "app says no" and reply.data is None


def test_grpc_call_eof_before_response_raises_connection_reset() -> None:
    with RawServer(lambda conn: conn.close()) as srv, \
            socket.create_connection((LOCAL, srv.port), timeout=1) as sock, \
            pytest.raises(ConnectionResetError):
        grpc_call(sock, "x", "a.B/C", b"", timeout=1)


def test_grpc_session_reuses_one_connection(grpc_app: int) -> None:
    with ProbeSession("grpc", LOCAL, grpc_app) as s:
        outs = [s.probe(method="x.Y/Echo", message=bytes([i])) for i in range(3)]
        assert s.connections == 1
    assert [o.body for o in outs] == [b"\x00", b"\x01", b"\x02"]


# -- TCP -----------------------------------------------------------------------------------

def test_tcp_echo_allowed(echo: dict[str, int]) -> None:
    out = probe("tcp", LOCAL, echo["tcp"], payload=b"hello\n")
    assert (out.verdict, out.body, out.bytes_seen) == (Verdict.ALLOWED, b"hello\n", 6)


def test_tcp_half_close_sends_fin_after_the_payload_and_reads_the_reply() -> None:
    """F10.13: the server reads to end of stream (the client's FIN) before it answers."""
    def handler(conn: socket.socket) -> None:
        got = b""
        while chunk := conn.recv(100):
            got += chunk
        conn.sendall(got.upper())
    with RawServer(handler) as srv:
        out = probe("tcp", LOCAL, srv.port, payload=b"abc", half_close=True)
    assert (out.verdict, out.body) == (Verdict.ALLOWED, b"ABC")


def test_tcp_session_sees_termination() -> None:
    """F5.10: an open TCP connection terminated by the server shows as closed on next use."""
    done = threading.Event()

    def handler(conn: socket.socket) -> None:
        conn.sendall(conn.recv(100))
        done.wait(1)
    with RawServer(handler) as srv, ProbeSession("tcp", LOCAL, srv.port) as s:
        first = s.probe(payload=b"a")
        done.set()
        time.sleep(0.02)
        second = s.probe(payload=b"b")
        assert s.connections == 1
    assert first.verdict is Verdict.ALLOWED
    assert second.verdict is Verdict.CONNECTION_CLOSED


# -- API and CLI ---------------------------------------------------------------------------

def test_bad_protocol_and_arguments() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        probe("udp", LOCAL, 1)
    with pytest.raises(TypeError, match="payload"):
        probe("http", LOCAL, 1, payload=b"x")
    with pytest.raises(TypeError, match="grpc probe needs"):
        probe("grpc", LOCAL, 1)


def test_cli_prints_one_json_line(echo: dict[str, int], capsys: pytest.CaptureFixture[str]
                                  ) -> None:
    assert main(["--protocol", "http", "--host", LOCAL, "--port", str(echo["http"]),
                 "--path", "/cli", "--header", "x-a: b"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    out = Outcome.from_json(lines[0])
    assert (out.verdict, out.body) == (Verdict.ALLOWED, b"GET /cli")
    assert main(["--protocol", "grpc", "--host", LOCAL, "--port", str(echo["grpc"]),
                 "--grpc-method", "a.B/C", "--message-hex", "0a01"]) == 0
    grpc_out = Outcome.from_json(capsys.readouterr().out)
    assert (grpc_out.grpc_status, grpc_out.body) == (0, b"\n\x01")


def test_cli_denial_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--protocol", "tcp", "--host", LOCAL, "--port", str(closed_port())]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "refused"


@pytest.mark.parametrize("argv", [
    ["--protocol", "udp", "--host", "h", "--port", "1"],
    ["--protocol", "grpc", "--host", "h", "--port", "1"],
    ["--protocol", "http", "--host", "h"],
    ["--protocol", "grpc", "--host", "h", "--port", "1", "--grpc-method", "a/b",
     "--message-hex", "zz"],
    ["serve"],
])
def test_cli_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prober: bad arguments:") and "\n" not in err


def test_cli_as_a_module(echo: dict[str, int]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "linkerd_conformance.prober", "--protocol", "tcp", "--host",
         LOCAL, "--port", str(echo["tcp"]), "--payload", "x\\n"],
        capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 0, proc.stderr
    assert Outcome.from_json(proc.stdout).body == b"x\n"
