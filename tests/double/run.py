"""A conformance run through a cluster target against a cluster double, as a user runs it.

`pytest -m conformance --target kind|kubeconfig` in a subprocess, the fake tools first on PATH,
a conformance report read back. Shared by `tests/test_cluster_double.py` and
`scripts/cluster-budget`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from linkerd_conformance.api import Profile

from .cluster import RELEASES, ClusterDouble
from .fakes import fake_tools_env
from .multicluster import linked_doubles

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_API_CRDS = Path(__file__).parent / "gateway-api-crds.yaml"

#: The reference's timeouts (plugin.REFERENCE_TIMEOUTS): the double's mesh is the reference's.
TIMEOUTS = ("consistency=10", "hold=0.5", "poll=0.02", "rollout=30", "probe=2", "stalled=4")

#: The fake tools' versions: a kubectl that 2.11's `linkerd check` can use, the CLI of the version.
KUBECTL_FOR = {"2.11": "v1.27.16", "2.16": "v1.29.14", "2.18": "v1.32.3", "2.20": "v1.33.2"}
CLI_FOR = {"2.11": "stable-2.11.5", "2.16": "edge-24.8.2", "2.18": RELEASES["2.18"],
           "2.20": "edge-26.7.1"}


def run_conformance(tmp: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run the suite with `args`; the conformance report, with `_output` (the run's tail)."""
    report = tmp / "report.yaml"
    argv = [sys.executable, "-m", "pytest", "-m", "conformance", str(ROOT / "suites"),
            "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--rootdir", str(ROOT),
            "--conformance-report", str(report), "--diagnostics-dir", str(tmp / "diag"),
            *[a for t in TIMEOUTS for a in ("--timeout", t)], *args]
    done = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    if not report.exists():
        raise AssertionError(f"no report; exit {done.returncode}\n{done.stdout[-4000:]}\n"
                             f"{done.stderr[-2000:]}")
    data = yaml.safe_load(report.read_text())
    data["_output"] = done.stdout[-6000:]
    return data


#: Doubles for the kind target's reinstalled clusters (`targets/reinstall.py`): one per set of
#: install values the suite's checks ask for (clusterNetworks empty, probeNetworks empty).
REINSTALL_SPARES = 2


def cluster_name(version: str) -> str:
    return f"double-{version.replace('.', '-')}"


def kind_args(version: str, tmp: Path) -> list[str]:
    extra = ["--gateway-api-crds", str(GATEWAY_API_CRDS)] if Profile(version).at_least(
        "2.19") else []
    return ["--target", "kind", "--linkerd-version", version, "--cluster-name",
            cluster_name(version), "--kubeconfig", str(tmp / "kubeconfig"), *extra]


@contextlib.contextmanager
def kind_run_env(version: str, tmp: Path | None = None, *, faults: tuple[str, ...] = ()
                 ) -> Iterator[tuple[ClusterDouble, dict[str, str], Path]]:
    """The doubles for `--target kind` (the run's cluster, with `faults`, the source
    cluster the multicluster checks link to it: `multicluster.py`, and the spares a check
    asking Linkerd installed with other values takes: `REINSTALL_SPARES`), the fake tools'
    env, and a work directory."""
    with contextlib.ExitStack() as stack:
        work = tmp or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        double, _, _ = stack.enter_context(linked_doubles(Profile(version),
                                                          cluster_name(version),
                                                          faults=faults,
                                                          spares=REINSTALL_SPARES))
        env = fake_tools_env(double, work, linkerd_version=CLI_FOR[version],
                             kubectl_version=KUBECTL_FOR[version])
        yield double, env, work


PROBER_IMAGE = "ghcr.io/linkerd-conformance/prober:dev"


def run_on_kubeconfig(version: str, tmp: Path, *args: str) -> dict[str, Any]:
    """`--target kubeconfig` against a double with Linkerd already installed, named by its
    context in a kubeconfig of its own: an existing cluster as a user brings one."""
    with ClusterDouble(Profile(version), linkerd_installed=True,
                       linkerd_version=CLI_FOR[version]) as double:
        env = fake_tools_env(double, tmp, linkerd_version=CLI_FOR[version],
                             kubectl_version=KUBECTL_FOR[version])
        kubeconfig = tmp / "kubeconfig"
        double.write_kubeconfig(str(kubeconfig), context="double")
        return run_conformance(tmp, env, "--target", "kubeconfig", "--linkerd-version",
                               version, "--kube-context", "double", "--kubeconfig",
                               str(kubeconfig), "--prober-image", PROBER_IMAGE, *args)


def skipped_share(report: dict[str, Any]) -> tuple[int, int, list[dict[str, Any]]]:
    """(applicable checks, applicable checks skipped, the skipped ones)."""
    applicable = [c for c in report["checks"]
                  if "not applicable to" not in c.get("reason", "")]
    skipped = [c for c in applicable if c["result"] == "skipped"]
    return len(applicable), len(skipped), skipped
