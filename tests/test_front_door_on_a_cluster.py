"""The front-door checks run on a cluster target: their client operations in a client pod.

`ClusterMesh.front_door()` execs the prober's `frontdoor` mode in the lab's unmeshed prober
pod (targets/frontdoor.py); the kind target issues certificates from the identity it installed
Linkerd with. Against the cluster double (whose `pods/exec` runs the real prober from the
pod's address), one check per kind of operation must pass, not skip: a TLS client with a
mesh certificate (close_notify), raw bytes (a ClientHello with another SNI), a silent hold
past the detect timeout, and a GET's headers. The kubeconfig target has no issuer key: the
check needing a mesh certificate is not applicable there, the others pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from double.cluster import ClusterDouble
from double.fakes import fake_tools_env
from double.run import CLI_FOR, KUBECTL_FOR, kind_args, run_conformance, run_on_kubeconfig

from linkerd_conformance.api import Profile

VERSION = "2.20"
CHECKS = ("test_the_proxy_closes_tls_with_close_notify",
          "test_tls_with_another_sni_is_passed_through_to_the_app_unterminated",
          "test_a_silent_client_is_closed_after_the_detect_timeout_and_not_counted_as_denied",
          "test_a_synthesized_403_carries_a_date_header")
NEEDS_A_MESH_CERTIFICATE = {"test_the_proxy_closes_tls_with_close_notify"}


def results(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["nodeid"].rsplit("::", 1)[-1]: (c["result"], c.get("reason", ""))
            for c in report["checks"] if "test_front_door.py" in c["nodeid"]}


def test_front_door_checks_pass_through_the_kind_target(tmp_path: Path) -> None:
    """...and the run leaves nothing in its temp folder: the issuer the front door made from
    the install's identity files (a folder of leaves and keys) is removed when the kind
    cluster is deleted (it once was only when the run's namespaces were cleaned instead)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    with ClusterDouble(Profile(VERSION)) as double:
        env = fake_tools_env(double, tmp_path, linkerd_version=CLI_FOR[VERSION],
                             kubectl_version=KUBECTL_FOR[VERSION])
        env["TMPDIR"] = str(temp)
        report = run_conformance(tmp_path, env, *kind_args(VERSION, tmp_path),
                                 "-k", " or ".join(CHECKS))
    got = results(report)
    assert set(got) == set(CHECKS), report["_output"]
    assert {name: r for name, r in got.items() if r[0] != "passed"} == {}, report["_output"]
    left = sorted(str(p.relative_to(temp)) for p in temp.iterdir())
    assert not left, f"left in the run's temp folder: {left}"


def test_front_door_checks_through_the_kubeconfig_target(tmp_path: Path) -> None:
    report = run_on_kubeconfig(VERSION, tmp_path, "-k", " or ".join(CHECKS))
    got = results(report)
    assert set(got) == set(CHECKS), report["_output"]
    for name, (result, reason) in got.items():
        if name in NEEDS_A_MESH_CERTIFICATE:
            assert result == "skipped" and "not applicable to the kubeconfig target" in reason \
                and "no issuer key" in reason, (name, result, reason)
        else:
            assert result == "passed", (name, result, reason, report["_output"])
