"""Clients nobody in this project wrote (requests, grpcio, curl) see on the reference mesh what
Linkerd's proxy shows them: allowed traffic reaches Emojivoto, and a refusal is an empty 403 for
HTTP and PERMISSION_DENIED with empty details for gRPC, with no informational header for these
unmeshed clients (F5.1, F5.3, F5.4, F5.5)."""

from __future__ import annotations

import ipaddress
import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest

from linkerd_conformance import Profile, workshop
from linkerd_conformance import realclients as rc
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
            if line.startswith(("requests ", "curl ", "grpcio "))]
    assert not [row for row in rows if not row.endswith(" ok")], done.stdout
    lines = rows
    # per step: requests and curl, grpcio; after the Servers also requests kept alive
    assert len(lines) == 7, done.stdout
    assert sum("PERMISSION_DENIED" in line for line in lines) == 1, done.stdout


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
