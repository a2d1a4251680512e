"""Unmeshed clients outside the cluster networks on kind: a prober container on kind's Docker
network (`targets/outside.py`), run by the double's fake docker.

The probe from the container reaches a pod address only through the route added via the node,
and the server sees the container's address, outside the double's clusterNetworks: what a pod
on kind sees of a container on the `kind` network. Removing the capability (no `outside` on the
mesh, or a network inside the installed clusterNetworks) makes the client not placeable.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from double.cluster import ClusterDouble
from double.fakes import fake_tools_env
from double.run import CLI_FOR, KUBECTL_FOR, ROOT

from linkerd_conformance import lab
from linkerd_conformance.api import Profile
from linkerd_conformance.targets.cluster import ClusterMesh
from linkerd_conformance.targets.images import PROBER_DOCKERFILE, PROBER_IMAGE
from linkerd_conformance.targets.outside import DockerOutside, overlaps

NODE_IMAGE = "kindest/node:v1.33.1"
DOUBLE_NETWORKS = ("127.10.0.0/16", "127.18.0.0/16")


@pytest.fixture
def docker_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[tuple[ClusterDouble, str]]:
    import subprocess

    with ClusterDouble(Profile("2.20")) as double:
        env = fake_tools_env(double, tmp_path, linkerd_version=CLI_FOR["2.20"],
                             kubectl_version=KUBECTL_FOR["2.20"])
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        for argv in (["docker", "build", "-t", PROBER_IMAGE, "-f", PROBER_DOCKERFILE, "."],
                     ["kind", "create", "cluster", "--name", "out", "--kubeconfig",
                      str(tmp_path / "kc"), f"--image={NODE_IMAGE}"]):
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-2000:]
        yield double, str(Path(env["PATH"]) / "docker")


def outside_for(double: ClusterDouble, docker: str, *, routed: bool = True) -> DockerOutside:
    pod_net = double.reference.addresses.POD_NET
    nodes = [{"metadata": {"name": "out-control-plane"}, "spec": {"podCIDR": pod_net}}]
    return DockerOutside(docker, cluster_name="out", node_image=NODE_IMAGE,
                         prober_image=PROBER_IMAGE, run_id="t1",
                         nodes=lambda: nodes if routed else [])


def test_a_probe_from_the_kind_network_arrives_from_outside_the_cluster_networks(
        docker_env: tuple[ClusterDouble, str]) -> None:
    double, docker = docker_env
    outside = outside_for(double, docker)
    assert outside.cannot_place(DOUBLE_NETWORKS) is None
    pod_ip = double.reference.addresses.pod_ip()
    seen: list[str] = []
    with socket.create_server((pod_ip, 0)) as server:
        port = server.getsockname()[1]

        def accept() -> None:
            conn, peer = server.accept()
            seen.append(peer[0])
            conn.sendall(conn.recv(64))
            conn.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            address = outside.address(lab.UNMESHED_OUTSIDE)
            code, out, err = outside.exec(lab.UNMESHED_OUTSIDE, [
                "--protocol", "tcp", "--host", pod_ip, "--port", str(port)], timeout=30)
        finally:
            assert outside.cleanup() == []
        thread.join(5)
    assert code == 0, err
    assert '"verdict": "allowed"' in out, out
    assert seen == [address]
    assert not overlaps([address + "/32"], DOUBLE_NETWORKS)
    assert outside_for(double, docker).cleanup() == []  # nothing left to remove


def test_without_the_route_through_the_node_no_pod_is_reached(
        docker_env: tuple[ClusterDouble, str]) -> None:
    double, docker = docker_env
    outside = outside_for(double, docker, routed=False)
    try:
        code, out, _ = outside.exec(lab.UNMESHED_OUTSIDE, [
            "--protocol", "tcp", "--host", double.reference.addresses.pod_ip(), "--port", "80"],
            timeout=30)
    finally:
        outside.cleanup()
    assert code == 0 and "Network is unreachable" in out, out


def test_a_kind_network_inside_the_cluster_networks_places_no_outside_client(
        docker_env: tuple[ClusterDouble, str]) -> None:
    double, docker = docker_env
    why = outside_for(double, docker).cannot_place(("127.0.0.0/8",))
    assert why is not None and "lies inside the installed clusterNetworks" in why


def test_a_node_address_installed_as_a_host_network_leaves_the_kind_network_outside(
        docker_env: tuple[ClusterDouble, str]) -> None:
    """The kind target installs each node's address as a /32 (the kubelet's probes come from
    it): the node is inside the cluster networks, a container beside it on the network is not."""
    double, docker = docker_env
    outside = outside_for(double, docker)
    [node] = outside.node_addresses()
    assert outside.cannot_place((*DOUBLE_NETWORKS, f"{node}/32")) is None
    [subnet] = outside.subnets()
    assert outside.cannot_place((*DOUBLE_NETWORKS, subnet)) is not None


def test_only_a_mesh_with_a_docker_network_places_unmeshed_outside_clients(
        docker_env: tuple[ClusterDouble, str]) -> None:
    """The capability itself: with `outside` the kind target places the unmeshed client (the
    cells that need it run); without it (the kubeconfig target) they are not applicable."""
    double, docker = docker_env
    mesh = ClusterMesh.__new__(ClusterMesh)  # only cannot_place is exercised: no API needed
    mesh.name, mesh._networks = "kind", DOUBLE_NETWORKS
    assert "knows no network outside" in (mesh.cannot_place(lab.UNMESHED_OUTSIDE) or "")
    mesh.outside = outside_for(double, docker)
    assert mesh.cannot_place(lab.UNMESHED_OUTSIDE) is None
    assert "mesh expansion" in (mesh.cannot_place(lab.MESHED_OUTSIDE) or "")
