"""The reference mesh implements every member of the `Mesh` protocol a check may use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from linkerd_conformance import Mesh, Profile, lab
from linkerd_conformance.reference.mesh import ReferenceMesh

REPO = Path(__file__).resolve().parents[1]


def test_the_reference_declares_every_capability() -> None:
    with ReferenceMesh(Profile("2.20")) as mesh:
        assert isinstance(mesh, Mesh)
        assert mesh.release is None and dict(mesh.operations) == {}
        assert mesh.client_networks == ("pod", "node", "outside", "linked") and mesh.anonymous_tls
        assert mesh.diagnostics(["lab"])  # files, even for a namespace with nothing in it


def test_a_clients_address_is_the_one_its_probes_come_from() -> None:
    with ReferenceMesh(Profile("2.11")) as mesh:
        mesh.apply(*lab.objects())
        address = mesh.client_address(lab.MESHED)
        assert address == mesh.client_address(lab.MESHED)
        assert mesh.client_address(lab.NODE) == mesh.addresses.node_ip
        assert mesh.client_address(lab.MESHED_OUTSIDE) != address


def test_get_reads_back_what_the_api_keeps_pruned_by_the_written_version() -> None:
    """An accessPolicy written through v1beta1 is pruned on write (F2.7); through v1beta3 it is
    kept; a fault that keeps it is seen on read."""
    for faults, kept in (((), False), (("access-policy-kept-on-older-versions",), True)):
        with ReferenceMesh(Profile("2.20"), faults) as mesh:
            mesh.apply(*lab.objects(), lab.server("old", "http", accessPolicy="deny"),
                       lab.server("new", "grpc", api_version="policy.linkerd.io/v1beta3",
                                  accessPolicy="deny"))
            old = mesh.get("Server", "lab", "old")
            assert old is not None and ("accessPolicy" in old["spec"]) is kept
            new = mesh.get("Server", "lab", "new", api_version="policy.linkerd.io/v1beta3")
            assert new is not None and new["spec"]["accessPolicy"] == "deny"
            assert mesh.get("Server", "lab", "missing") is None
            assert mesh.get("Namespace", "", "lab") is not None


def test_a_check_can_ask_for_the_cluster_default_it_needs() -> None:
    """What `@pytest.mark.cluster_default("deny")` builds on the reference."""
    with ReferenceMesh(Profile("2.11"), cluster_default="deny") as mesh:
        assert mesh.cluster_default == "deny"


CHECK = """
import pytest

pytestmark = [pytest.mark.conformance]


@pytest.mark.cluster_default({policy!r})
def test_sees_its_default(mesh):
    assert mesh.cluster_default == {policy!r}
"""


def _run_check(tmp_path: Path, policy: str, version: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_default_marker.py").write_text(CHECK.format(policy=policy))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "conformance", "-p", "no:cacheprovider", "-q",
         "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO), "--linkerd-version",
         version, str(tmp_path / "test_default_marker.py")],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ))


def test_the_cluster_default_marker_builds_the_reference_with_it(tmp_path: Path) -> None:
    done = _run_check(tmp_path, "cluster-authenticated", "2.11")
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr


def test_a_cluster_default_the_version_lacks_is_a_usage_error(tmp_path: Path) -> None:
    done = _run_check(tmp_path, "audit", "2.11")
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in out, out
    assert "asks for the cluster default 'audit', which Linkerd 2.11 does not have" in out, out
