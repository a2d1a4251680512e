"""The reference mesh's identity: real TLS handshakes decide who the client is."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from linkerd_conformance.reference.identity import (
    IdentityAuthority,
    Leaf,
    anonymous_client_context,
    peer_identity,
)

WEB = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
BOT = "default.emojivoto.serviceaccount.identity.linkerd.cluster.local"


@pytest.fixture(scope="module")
def authority() -> Iterator[IdentityAuthority]:
    with IdentityAuthority() as ca:
        yield ca


def handshake(server: Leaf, client_ctx: ssl.SSLContext, server_hostname: str
              ) -> tuple[str | None, Exception | None, Exception | None]:
    """One TLS exchange on 127.0.0.1: (identity the server saw, server error, client error)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, Exception | str | None] = {"identity": None, "error": None}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.server_context().wrap_socket(conn, server_side=True) as tls:
                seen["identity"] = peer_identity(tls)
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_error: Exception | None = None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            if tls.recv(2) != b"ok":
                raise ConnectionError("connection closed by the server")
    except (ssl.SSLError, OSError) as exc:
        client_error = exc
    thread.join(5)
    identity, error = seen["identity"], seen["error"]
    assert identity is None or isinstance(identity, str)
    assert error is None or isinstance(error, Exception)
    return identity, error, client_error


def test_certificates_are_shaped_like_linkerds(authority: IdentityAuthority) -> None:
    leaf = authority.issue(WEB)
    pems = leaf.cert_path.read_bytes()
    chain = x509.load_pem_x509_certificates(pems)
    assert len(chain) == 2
    assert chain[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [WEB]
    assert chain[1].subject.rfc4514_string() == "CN=identity.linkerd.cluster.local"
    assert authority.anchor.subject.rfc4514_string() == "CN=root.linkerd.cluster.local"
    lifetime = chain[0].not_valid_after_utc - chain[0].not_valid_before_utc
    assert lifetime.total_seconds() <= 24 * 3600 + 60


def test_handshake_reports_the_client_identity(authority: IdentityAuthority) -> None:
    server, client = authority.issue(WEB), authority.issue(BOT)
    assert handshake(server, client.client_context(), WEB) == (BOT, None, None)


def test_client_without_certificate_has_no_identity(authority: IdentityAuthority) -> None:
    server = authority.issue(WEB)
    anonymous = anonymous_client_context(authority.anchor_path)
    assert handshake(server, anonymous, WEB) == (None, None, None)


def test_client_must_reach_the_identity_it_asked_for(authority: IdentityAuthority) -> None:
    server, client = authority.issue(WEB), authority.issue(BOT)
    emoji = "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    _, _, client_error = handshake(server, client.client_context(), emoji)
    assert isinstance(client_error, ssl.SSLCertVerificationError)


def test_client_certificate_from_another_anchor_is_rejected(
        authority: IdentityAuthority) -> None:
    server = authority.issue(WEB)
    with IdentityAuthority() as other:
        stranger = other.issue(BOT)
        # the stranger trusts our anchor, so only its own certificate can fail the handshake
        ctx = anonymous_client_context(authority.anchor_path)
        ctx.load_cert_chain(stranger.cert_path, stranger.key_path)
        identity, server_error, client_error = handshake(server, ctx, WEB)
    assert identity is None
    assert isinstance(server_error, ssl.SSLCertVerificationError)
    assert client_error is not None  # the server's alert, or the connection it dropped


def test_server_certificate_from_another_anchor_is_rejected(
        authority: IdentityAuthority) -> None:
    with IdentityAuthority() as other:
        _, _, client_error = handshake(
            other.issue(WEB), authority.issue(BOT).client_context(), WEB)
    assert isinstance(client_error, ssl.SSLCertVerificationError)


def test_leaves_are_cached_and_cheap(authority: IdentityAuthority) -> None:
    start = time.perf_counter()
    fresh = [authority.issue(f"sa{i}.ns.serviceaccount.identity.linkerd.cluster.local")
             for i in range(10)]
    per_leaf = (time.perf_counter() - start) / 10
    assert per_leaf < 0.05
    assert authority.issue(fresh[0].identity) is fresh[0]


def test_install_files(authority: IdentityAuthority, tmp_path: Path) -> None:
    files = authority.write_install_files(tmp_path)
    assert sorted(files) == ["ca.crt", "issuer.crt", "issuer.key"]
    assert b"BEGIN CERTIFICATE" in files["ca.crt"].read_bytes()
    assert b"BEGIN EC PRIVATE KEY" in files["issuer.key"].read_bytes()
    issuer = x509.load_pem_x509_certificate(files["issuer.crt"].read_bytes())
    issuer.verify_directly_issued_by(authority.anchor)


def test_close_removes_the_files() -> None:
    ca = IdentityAuthority()
    leaf = ca.issue(WEB)
    assert leaf.key_path.exists() and ca.directory.exists()
    ca.close()
    assert not leaf.key_path.exists()
    assert not ca.directory.exists()
    with pytest.raises(RuntimeError):
        ca.issue(WEB)


def test_an_authority_never_closed_leaves_no_folder_at_exit(tmp_path: Path) -> None:
    """An owner that forgets close() (or dies in its own) still leaves no key behind once the
    interpreter exits."""
    code = ("from linkerd_conformance.reference.identity import IdentityAuthority\n"
            "ca = IdentityAuthority()\nca.issue('web.emojivoto.serviceaccount.identity.linkerd."
            "cluster.local')\nprint(ca.directory)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(tmp_path)), done.stdout
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())
