"""Clients nobody in this project wrote (requests, grpcio, curl, openssl) see on the reference
mesh what Linkerd's proxy shows them: allowed traffic reaches Emojivoto, and a refusal is an empty
403 for HTTP and PERMISSION_DENIED with empty details for gRPC, with no informational header for
these unmeshed clients (F5.1, F5.3, F5.4, F5.5); and at the proxy's front door (section 10)
TLS versions, SNI, ALPN, client CAs and l5d-client-id as linkerd2-proxy's source says."""

from __future__ import annotations

import ipaddress
import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest

from linkerd_conformance import Profile, expectations, lab, workshop
from linkerd_conformance import realclients as rc
from linkerd_conformance.reference.identity import IdentityAuthority
from linkerd_conformance.reference.mesh import ReferenceMesh

VERSIONS = ["2.11", "2.20"]
ROOT = pathlib.Path(__file__).resolve().parent.parent
needs_curl = pytest.mark.skipif(not rc.curl_available(), reason="curl is not installed")


class Emojivoto:
    def __init__(self, mesh: ReferenceMesh) -> None:
        self.mesh = mesh
        self.web = mesh.pods("emojivoto", {"app": "web-svc"})[0].ip
        self.emoji = mesh.pods("emojivoto", {"app": "emoji-svc"})[0].ip
        self.source = mesh.addresses.pod_ip()  # an unmeshed client inside the cluster networks

    def lock(self) -> None:
        """Servers on web's and emoji's ports with no authorization; wait until they apply."""
        self.mesh.apply(*rc.servers_without_authorization())
        assert rc.wait_denied(self.mesh, self.source, timeout=10), "the Servers had no effect"


@pytest.fixture(params=VERSIONS)
def emojivoto(request: pytest.FixtureRequest) -> Iterator[Emojivoto]:
    with ReferenceMesh(Profile(request.param)) as mesh:
        mesh.apply(*workshop.emojivoto())
        assert all(r.settled for r in mesh.wait_rollout("emojivoto"))
        yield Emojivoto(mesh)


def _in(ip: str, networks: tuple[str, ...]) -> bool:
    return any(ipaddress.ip_address(ip) in ipaddress.ip_network(n) for n in networks)


def _emoji_list(body: bytes) -> list[dict[str, str]]:
    data = json.loads(body)
    assert isinstance(data, list) and data, body[:200]
    assert all({"shortcode", "unicode"} <= set(e) for e in data), body[:200]
    return data


def _assert_empty_403(status: int, body: bytes, headers: dict[str, str]) -> None:
    assert status == 403, (status, body[:200], headers)
    assert body == b""
    assert headers.get("content-length") == "0", headers
    # a plaintext client gets no informational header (F5.5)
    assert "l5d-proxy-error" not in headers and "grpc-message" not in headers, headers


def test_sources_inside_and_outside_the_cluster_networks(emojivoto: Emojivoto) -> None:
    """requests and curl come from a pod address; grpcio, which cannot choose, from
    127.0.0.1, outside the cluster networks: the scenarios admit or refuse regardless."""
    assert _in(emojivoto.source, emojivoto.mesh.cluster_networks)
    assert not _in(rc.GRPCIO_SOURCE, emojivoto.mesh.cluster_networks)
    with pytest.raises(ValueError, match="grpcio cannot connect from"):
        rc.grpcio_call(emojivoto.emoji, rc.EMOJI_PORT, rc.LIST_ALL, source_ip=emojivoto.source)


# ---- no policy: the default all-unauthenticated admits everyone (F1.3) ----

def test_requests_without_policy_gets_the_emoji_list(emojivoto: Emojivoto) -> None:
    status, body, headers = rc.requests_get(emojivoto.web, rc.WEB_PORT, rc.API_LIST,
                                            emojivoto.source)
    assert status == 200, (status, body[:200])
    _emoji_list(body)
    assert "l5d-proxy-error" not in headers


@needs_curl
def test_curl_without_policy_gets_the_emoji_list(emojivoto: Emojivoto) -> None:
    got = rc.curl_get(emojivoto.web, rc.WEB_PORT, rc.API_LIST, emojivoto.source)
    assert got is not None
    status, body, _headers = got
    assert status == 200, (status, body[:200])
    _emoji_list(body)


def test_grpcio_without_policy_lists_the_emoji(emojivoto: Emojivoto) -> None:
    result = rc.grpcio_call(emojivoto.emoji, rc.EMOJI_PORT, rc.LIST_ALL, b"")
    assert result.code == grpc.StatusCode.OK, rc.describe_grpc(result)
    assert result.response  # a ListAllEmojiResponse with every emoji, as raw bytes
    assert b":joy:" in result.response


# ---- a Server with no authorization refuses everyone (F2.8), as the wire facts say ----

def test_requests_refused_gets_an_empty_403_and_keeps_the_connection(
        emojivoto: Emojivoto) -> None:
    emojivoto.lock()
    _assert_empty_403(*rc.requests_get(emojivoto.web, rc.WEB_PORT, rc.API_LIST,
                                       emojivoto.source))
    kept = rc.requests_get_kept_alive(emojivoto.web, rc.WEB_PORT, rc.API_LIST,
                                      emojivoto.source, count=3)
    assert kept.statuses == (403, 403, 403) and kept.bodies == (b"", b"", b"")
    assert kept.connections == 1, kept.local_ends  # the 403 leaves it open (F5.3)
    assert all(host == emojivoto.source for host, _ in kept.local_ends)


@needs_curl
def test_curl_refused_gets_an_empty_403(emojivoto: Emojivoto) -> None:
    emojivoto.lock()
    got = rc.curl_get(emojivoto.web, rc.WEB_PORT, rc.API_LIST, emojivoto.source)
    assert got is not None
    _assert_empty_403(*got)


def test_grpcio_refused_gets_permission_denied_with_empty_details(
        emojivoto: Emojivoto) -> None:
    emojivoto.lock()
    result = rc.grpcio_call(emojivoto.emoji, rc.EMOJI_PORT, rc.LIST_ALL, b"")
    assert result.code == grpc.StatusCode.PERMISSION_DENIED, rc.describe_grpc(result)
    assert result.details == ""  # no grpc-message for a plaintext client (F5.5)
    assert result.response is None
    assert "l5d-proxy-error" not in dict(result.trailing_metadata)


def test_curl_get_is_none_without_curl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rc.shutil, "which", lambda _name: None)
    assert not rc.curl_available()
    assert rc.curl_get("127.0.0.1", 1, "/", "127.0.0.1") is None


@pytest.mark.parametrize("version", VERSIONS)
def test_the_script_prints_no_wrong_line(version: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "real-clients"),
                           "--linkerd-version", version],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.rstrip() for line in done.stdout.splitlines()
            if line.startswith(("requests ", "curl ", "grpcio ", "openssl "))]
    assert not [row for row in rows if not row.endswith(" ok")], done.stdout
    lines = rows[:7]
    # per step: requests and curl, grpcio; after the Servers also requests kept alive
    assert sum(line.startswith(("requests ", "curl ", "grpcio ")) for line in lines) == 7
    assert sum("PERMISSION_DENIED" in line for line in lines) == 1, done.stdout
    # then the front door: curl twice, openssl four times, grpcio once (F10.x)
    assert len(rows) == 7 + (2 if rc.curl_available() else 1) + (
        4 if rc.openssl_available() else 1) + 1, done.stdout


# ---- the inbound proxy's front door, as curl, openssl and grpcio see it (F10.x) ----

needs_openssl = pytest.mark.skipif(not rc.openssl_available(), reason="openssl is not installed")
OPEN = {"unauthenticated": True, "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}
FORGED = "l5d-client-id: forged.identity"


class Lab:
    """The policy lab on a reference mesh, with an HTTP/1-hinted Server on a second lab
    server's `http` port; a meshed client's certificate and a foreign CA's, on disk."""

    def __init__(self, mesh: ReferenceMesh, foreign: IdentityAuthority) -> None:
        self.mesh, self.version = mesh, mesh.profile.version
        self.ip = mesh.pods("lab", {"app": "server"})[0].ip
        self.source = mesh.addresses.pod_ip()
        self.identity = expectations.sa_identity("server", "lab")
        self.anchor = str(mesh.authority.anchor_path)
        leaf = mesh.authority.issue(lab.identity(lab.MESHED))
        self.cert = (str(leaf.cert_path), str(leaf.key_path))
        other = foreign.issue(lab.identity(lab.MESHED))
        self.foreign_cert = (str(other.cert_path), str(other.key_path))

    def https(self, *args: str, path: str = "/headers") -> subprocess.CompletedProcess[bytes]:
        """curl over mTLS with the meshed client's certificate, SNI = the server's identity."""
        done = rc.curl("--cacert", self.anchor, "--cert", self.cert[0], "--key", self.cert[1],
                       "--resolve", f"{self.identity}:8080:{self.ip}", "--interface",
                       self.source, "-w", "\n%{http_code} %{http_version}", *args,
                       f"https://{self.identity}:8080{path}")
        assert done is not None
        return done

    def s_client(self, port: int, *args: str) -> str:
        out = rc.openssl_s_client(self.ip, port, *args)
        assert out is not None
        return out


@pytest.fixture(params=VERSIONS)
def front(request: pytest.FixtureRequest) -> Iterator[Lab]:
    with ReferenceMesh(Profile(request.param)) as mesh, IdentityAuthority() as foreign:
        mesh.apply(*lab.objects(), lab.server("web", "http", proxy_protocol="HTTP/1"),
                   lab.server_authorization("web-everyone", OPEN, server_name="web"))
        assert all(r.settled for r in mesh.wait_rollout("lab"))
        yield Lab(mesh, foreign)


def _ids(body: bytes) -> list[str]:
    return [line.split(b":", 1)[1].strip().decode() for line in body.splitlines()
            if line.lower().startswith(b"l5d-client-id:")]


@needs_curl
def test_curl_plaintext_cannot_forge_l5d_client_id(front: Lab) -> None:
    """F10.7: the app never sees a forged l5d-client-id from a plaintext client."""
    done = rc.curl("--interface", front.source, "-H", FORGED, "-w", "\n%{http_code}",
                   f"http://{front.ip}:8080/headers")
    assert done is not None and done.returncode == 0, done
    assert done.stdout.endswith(b"\n200") and b"GET /headers" in done.stdout, done.stdout
    assert _ids(done.stdout) == [], done.stdout


@needs_curl
def test_curl_h2_prior_knowledge_on_a_plaintext_http1_port_gets_no_byte(front: Lab) -> None:
    """F10.11: an h2 preface to a plaintext HTTP/1-hinted port gets nothing back (curl:
    empty reply / connection closed), not a 400."""
    done = rc.curl("--http2-prior-knowledge", "--interface", front.source, "-o", "-",
                   "-w", "%{http_code}", f"http://{front.ip}:8080/hello")
    assert done is not None
    assert done.returncode != 0 and done.stdout in (b"", b"000"), done


@needs_curl
def test_curl_with_a_pods_certificate_is_identified_over_http1(front: Lab) -> None:
    """F10.2, F10.3, F10.7: SNI = the server's identity, so the proxy terminates mTLS; no
    ALPN is negotiated, so curl speaks HTTP/1.1; the app sees the client's identity in
    l5d-client-id, once, and not the forged one."""
    done = front.https("-H", FORGED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"\n200 1.1"), done.stdout[-200:]
    assert _ids(done.stdout) == [lab.identity(lab.MESHED)], done.stdout


@needs_curl
def test_curl_tls12_is_accepted_by_2_11_only(front: Lab) -> None:
    """F10.1: TLS 1.2 works on 2.11; from 2.12 the handshake fails (curl exit 35)."""
    done = front.https("--tlsv1.2", "--tls-max", "1.2", path="/hello")
    if "1.2" in expectations.tls_versions(front.version):
        assert done.returncode == 0 and done.stdout.endswith(b"\n200 1.1"), done
    else:
        assert done.returncode == 35, done  # CURLE_SSL_CONNECT_ERROR


@needs_openssl
def test_openssl_tls12_handshake_per_version(front: Lab) -> None:
    """F10.1: `openssl s_client -tls1_2` gets a TLSv1.2 session on 2.11, an alert after."""
    out = front.s_client(8080, "-tls1_2", "-servername", front.identity)
    if "1.2" in expectations.tls_versions(front.version):
        assert "Protocol  : TLSv1.2" in out or "TLSv1.2, Cipher" in out, out[-800:]
    else:
        assert "alert protocol version" in out, out[-800:]


@needs_openssl
@pytest.mark.parametrize("sni", [None, "foreign.example.com"])
def test_openssl_without_the_proxys_sni_is_not_terminated(front: Lab, sni: str | None) -> None:
    """F10.2: no SNI (handled as not TLS) or another SNI (passed through): the proxy presents
    no certificate; on the TCP echo port the ClientHello comes back to openssl as sent."""
    args = ["-noservername"] if sni is None else ["-servername", sni]
    out = front.s_client(7000, *args)
    assert "BEGIN CERTIFICATE" not in out and "server.lab" not in out, out[-800:]


@needs_openssl
def test_openssl_with_another_cas_certificate_gets_unknown_ca(front: Lab) -> None:
    """F10.4: a chain from another CA is refused with the unknown_ca alert, and the
    CertificateRequest names the trust anchor."""
    out = front.s_client(8080, "-servername", front.identity, "-cert", front.foreign_cert[0],
                         "-key", front.foreign_cert[1], "-ign_eof")
    assert "alert unknown ca" in out, out[-800:]
    hints = out.split("Acceptable client certificate CA names", 1)
    assert len(hints) == 2 and "CN = root.linkerd.cluster.local" in hints[1], out[-800:]


def test_grpcio_mtls_straight_to_an_app_port_fails_for_want_of_alpn(front: Lab) -> None:
    """F10.3: grpcio's C core insists on ALPN h2, which app ports do not negotiate, so its
    mTLS call with a pod's certificate fails; the same call in plaintext succeeds."""
    failed = rc.grpcio_tls_call(front.ip, 9090, "/lab.Echo/Ping", front.identity,
                                front.anchor, front.cert)
    assert failed.code == grpc.StatusCode.UNAVAILABLE, rc.describe_grpc(failed)
    ok = rc.grpcio_call(front.ip, 9090, "/lab.Echo/Ping", b"\x0a\x04ping")
    assert ok.code == grpc.StatusCode.OK and ok.response == b"\x0a\x04ping", rc.describe_grpc(ok)


@needs_curl
@pytest.mark.parametrize(("faults", "exit_code"), [((), 22), (("denied-http-reaches-app",), 0)])
def test_curl_fail_exits_22_on_a_refused_plaintext_request(faults: tuple[str, ...],
                                                           exit_code: int) -> None:
    """F5.11: `curl -f` of a refused plaintext request exits 22 (the 403), what Linkerd's e2e
    tests assert (`L2@HEAD:policy-test/tests/e2e_server_authorization.rs`); with the refusal
    broken (a reference fault) the same request succeeds and curl exits 0."""
    with ReferenceMesh(Profile("2.20"), faults) as mesh:
        mesh.apply(*workshop.emojivoto())
        assert all(r.settled for r in mesh.wait_rollout("emojivoto"))
        emojivoto = Emojivoto(mesh)
        assert rc.curl_fail_exit(emojivoto.web, rc.WEB_PORT, rc.API_LIST, emojivoto.source) == 0
        mesh.apply(*rc.servers_without_authorization())
        assert rc.wait_denied(mesh, emojivoto.source, timeout=10) != bool(faults)
        assert rc.curl_fail_exit(emojivoto.web, rc.WEB_PORT, rc.API_LIST,
                                 emojivoto.source) == exit_code
