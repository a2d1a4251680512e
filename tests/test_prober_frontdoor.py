"""`python -m linkerd_conformance.prober frontdoor`: one front-door operation, JSON in and out.

What a cluster's front door execs in a client pod (targets/frontdoor.py): each operation is
asked of a local server here, through the module as a subprocess (the pod's view), and its
JSON result decoded as the checks read it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkerd_conformance import Verdict
from linkerd_conformance.prober import frontdoor
from linkerd_conformance.prober.serve import serve
from linkerd_conformance.prober.testing import RawServer
from linkerd_conformance.reference.identity import IdentityAuthority

LOCAL = "127.0.0.1"
SERVER = "server.lab.serviceaccount.identity.linkerd.cluster.local"
CLIENT = "client.lab.serviceaccount.identity.linkerd.cluster.local"


def run(op: str, port: int, **kwargs: object) -> object:
    """The operation through the module in a subprocess; its decoded result."""
    line = frontdoor.encode_request(op, LOCAL, port, **kwargs)
    done = subprocess.run([sys.executable, "-m", "linkerd_conformance.prober", "frontdoor"],
                          input=line + "\n", capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    return frontdoor.decode_result(op, json.loads(done.stdout))


@pytest.fixture(scope="module")
def authority() -> Iterator[IdentityAuthority]:
    with IdentityAuthority() as a:
        yield a


def pem(authority: IdentityAuthority, identity: str) -> tuple[str, str]:
    leaf = authority.issue(identity)
    return Path(leaf.cert_path).read_text(), Path(leaf.key_path).read_text()


@pytest.fixture
def tls_echo(authority: IdentityAuthority) -> Iterator[tuple[int, list[str | None]]]:
    """A TLS 1.3 server requiring a client certificate from the anchor; it answers the
    client's first bytes with `seen <client identity>` and closes with close_notify."""
    ctx = authority.issue(SERVER).server_context(("1.3",))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(authority.anchor_path))
    seen: list[str | None] = []

    def handler(conn: socket.socket) -> None:
        with contextlib.suppress(ssl.SSLError, OSError):
            tls = ctx.wrap_socket(conn, server_side=True)
            data = tls.recv(1024)
            cert = tls.getpeercert() or {}
            ident = next((v for k, v in cert.get("subjectAltName", ()) if k == "DNS"), None)
            seen.append(ident)
            tls.sendall(b"seen " + str(ident).encode() + b" " + data)
            tls.unwrap()

    with RawServer(handler) as srv:
        yield srv.port, seen


def test_tls_with_a_certificate_in_the_request(authority: IdentityAuthority,
                                               tls_echo: tuple[int, list[str | None]]) -> None:
    port, seen = tls_echo
    got = run("tls", port, sni=SERVER, ca=authority.anchor_path.read_text(),
              cert=pem(authority, CLIENT), send=b"hello", alpn=("h2",))
    assert isinstance(got, frontdoor.TlsResult)
    assert got.established and got.version == "TLSv1.3" and got.alpn is None, got
    assert got.reply == f"seen {CLIENT} hello".encode() and got.close_notify is True, got
    assert seen == [CLIENT]


def test_tls_offering_only_1_2_to_a_1_3_server_is_refused(
        authority: IdentityAuthority, tls_echo: tuple[int, list[str | None]]) -> None:
    port, _ = tls_echo
    got = run("tls", port, sni=SERVER, versions=("1.2",), ca=authority.anchor_path.read_text())
    assert isinstance(got, frontdoor.TlsResult) and not got.established and got.error, got


def test_raw_hold_and_get() -> None:
    with serve(http=0, tcp=0, host=LOCAL) as servers:
        echoed = run("raw", servers.ports["tcp"], data=b"\x16\x03\x01ping\n", want=9)
        assert echoed == b"\x16\x03\x01ping\n"
        status, body, headers = run("http_get", servers.ports["http"], path="/hello")  # type: ignore[misc]
        assert status == 200 and body and "content-length" in headers
    with RawServer(lambda conn: time.sleep(0.3)) as closing:  # closes after 0.3 s, silent
        out = run("hold", closing.port, timeout=5)
    assert getattr(out, "verdict", None) is Verdict.CONNECTION_CLOSED, out
    assert getattr(out, "bytes_seen", None) == 0, out


def test_a_bad_request_exits_2_with_one_sentence() -> None:
    done = subprocess.run([sys.executable, "-m", "linkerd_conformance.prober", "frontdoor"],
                          input='{"op": "teleport", "host": "x", "port": 1}\n',
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("prober frontdoor: bad request: no front-door operation")


def test_a_connection_that_fails_is_a_result_not_a_crash() -> None:
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(frontdoor.FrontDoorError, match="ConnectionRefusedError"):
            run("raw", port, data=b"x", want=1)


def test_a_probe_over_tls_without_a_certificate(authority: IdentityAuthority) -> None:
    """`probe` with `sni` and `ca`: the prober's own TCP probe over TLS it speaks itself,
    presenting no certificate (a client with TLS but no identity, F3.5, F10.10)."""
    ctx = authority.issue(SERVER).server_context(("1.3",))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=str(authority.anchor_path))
    seen: list[object] = []

    def handler(conn: socket.socket) -> None:
        with contextlib.suppress(ssl.SSLError, OSError):
            tls = ctx.wrap_socket(conn, server_side=True)
            seen.append(tls.getpeercert())
            tls.sendall(tls.recv(1024))

    with RawServer(handler) as srv:
        out = run("probe", srv.port, protocol="tcp", timeout=2, request={"payload": b"hi"},
                  sni=SERVER, ca=authority.anchor_path.read_text())
        plain = run("probe", srv.port, protocol="tcp", timeout=2, request={"payload": b"hi"})
    assert getattr(out, "verdict", None) is Verdict.ALLOWED and out.body == b"hi", out  # type: ignore[attr-defined]
    assert seen[0] is None, "the prober presented a certificate"
    assert getattr(plain, "verdict", None) is not Verdict.ALLOWED, plain
