"""The harness the cluster-target tests stand on: a cluster double and its fake tools.

The other test_targets_* modules (and test_cluster_findings) drive `KindTarget`,
`KubeconfigTarget` and `ClusterMesh` in this process against a `ClusterDouble`
(`tests/double`): an API server over a reference mesh, reached through the kubernetes client,
and fake `kind`, `docker`, `kubectl` and `linkerd` that behave as the real tools do
(`tests/double/behaviours.py`). They assert what ends up in the cluster (objects in the API
server, the double's state file), not which argv a target ran. Where a flag is the promise
itself (`--linkerd-install-flag` reaching `linkerd install`), `recorder` wraps a fake and
logs its argv.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from double.cluster import ClusterDouble
from double.fakes import FAKEBIN, fake_tools_env

from linkerd_conformance.api import Profile
from linkerd_conformance.targets.kind import KindTarget
from linkerd_conformance.targets.kubeconfig import KubeconfigTarget
from linkerd_conformance.targets.session import ClusterSettings

ROOT = Path(__file__).resolve().parents[1]
GATEWAY_API_CRDS = Path(__file__).parent / "double" / "gateway-api-crds.yaml"

#: The CLI release of each version the tests use (`linkerd version --client --short`).
CLI = {"2.11": "stable-2.11.5", "2.12": "stable-2.12.6", "2.13": "stable-2.13.7",
       "2.14": "stable-2.14.10", "2.16": "edge-24.8.2", "2.18": "edge-25.4.4",
       "2.19": "edge-25.10.7", "2.20": "edge-26.7.1"}
#: A kubectl 2.11's `linkerd check` can use (< 1.28), and a current one.
OLD_KUBECTL, NEW_KUBECTL = "v1.27.16", "v1.32.0"
#: A prebuilt prober image in the fake docker's local store (`--prober-image p:1`).
PREBUILT = "p:1"
#: Timeouts small enough for the double (the plugin's Timeouts has these fields).
TIMEOUTS = SimpleNamespace(probe=2.0, rollout=20.0, stalled=2.0)


class Lab:
    """One cluster double, the fake tools first on this process's PATH, and a cwd in tmp."""

    def __init__(self, double: ClusterDouble, tmp: Path, monkeypatch: pytest.MonkeyPatch, *,
                 linkerd_version: str, kubectl_version: str, **state: Any) -> None:
        self.double = double
        self.tmp = tmp
        self.profile = double.profile
        env = fake_tools_env(double, tmp, linkerd_version=linkerd_version,
                             kubectl_version=kubectl_version, **state)
        for key in ("PATH", "HOME", *double.env()):
            monkeypatch.setenv(key, env[key])
        monkeypatch.delenv("KUBECONFIG", raising=False)
        self.path = env["PATH"]
        self.cwd = tmp / "cwd"
        self.cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(self.cwd)  # anything written relative to the cwd shows up here
        self.kubeconfig = tmp / "kind" / "kubeconfig"

    # --- the double's state --------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return self.double.read_state()

    def update_state(self, **values: Any) -> None:
        state = self.double.read_state()
        state.update(values)
        self.double.write_state(state)

    def clusters(self) -> list[str]:
        return sorted(self.state().get("clusters", {}))

    # --- targets -------------------------------------------------------------------------

    def settings(self, **kw: Any) -> ClusterSettings:
        kw.setdefault("kubeconfig", str(self.kubeconfig))
        kw.setdefault("rootdir", str(ROOT))
        kw.setdefault("cluster_name", "conformance")
        if self.profile.at_least("2.19"):
            kw.setdefault("gateway_api_crds", str(GATEWAY_API_CRDS))
        return ClusterSettings(**kw)

    def kind(self, **kw: Any) -> KindTarget:
        return KindTarget(self.settings(**kw), self.profile, timeouts=TIMEOUTS)

    def kubeconfig_target(self, context: str = "double", run_id: str | None = None,
                          **kw: Any) -> KubeconfigTarget:
        """The kubeconfig target on this double, through a kubeconfig naming it `context`."""
        path = self.tmp / "kubeconfig"
        self.double.write_kubeconfig(path, context=context)
        kw.setdefault("kube_context", context)
        kw.setdefault("prober_image", "ghcr.io/linkerd-conformance/prober:dev")
        kw.setdefault("kubeconfig", str(path))
        return KubeconfigTarget(ClusterSettings(**kw), self.profile, run_id=run_id,
                                timeouts=TIMEOUTS)

    # --- recording a fake's argv ---------------------------------------------------------

    def recorder(self, tool: str, *, state: Path | None = None) -> str:
        """A `tool` that logs its argv and runs the fake (with another state file if given),
        in a directory of its own; returns its path."""
        d = self.tmp / f"rec-{tool}-{len(list(self.tmp.glob(f'rec-{tool}-*')))}"
        d.mkdir()
        script = d / tool
        env = f"os.environ['CLUSTER_DOUBLE_STATE'] = {str(state)!r}\n" if state else ""
        script.write_text(
            f"#!{sys.executable}\nimport json, os, sys\n"
            f"with open({str(d / 'argv.log')!r}, 'a') as f:\n"
            "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
            f"{env}fake = {str(FAKEBIN / tool)!r}\n"
            "os.execv(sys.executable, [sys.executable, fake, *sys.argv[1:]])\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return str(script)

    @staticmethod
    def calls(recorder: str) -> list[list[str]]:
        log = Path(recorder).parent / "argv.log"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def files_left(self) -> list[str]:
        """What the run left in its working directory."""
        return sorted(str(p.relative_to(self.cwd)) for p in self.cwd.rglob("*"))


LabFactory = Callable[..., Lab]


def lab_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabFactory]:
    """`make_lab(version, *, linkerd_version=CLI[version], kubectl_version=..., state=None,
    linkerd_installed=False, kubernetes_version="v1.23.17", ...)`: a Lab, closed after the test.

    A module's `make_lab` fixture is `yield from lab_factory(tmp_path, monkeypatch)`. Docker's
    local store already holds `PREBUILT` (a `--prober-image` that `kind load` can load).
    """
    doubles: list[ClusterDouble] = []

    def make(version: str, *, linkerd_version: str | None = None,
             kubectl_version: str | None = None, state: dict[str, Any] | None = None,
             **double_kw: Any) -> Lab:
        double_kw.setdefault("linkerd_version", linkerd_version)
        double = ClusterDouble(Profile(version), **double_kw)
        doubles.append(double)
        tmp = tmp_path / f"lab{len(doubles)}"
        tmp.mkdir()
        return Lab(double, tmp, monkeypatch, linkerd_version=linkerd_version or CLI[version],
                   kubectl_version=kubectl_version or (OLD_KUBECTL if version == "2.11"
                                                       else NEW_KUBECTL),
                   **{"images": [PREBUILT], **(state or {})})

    yield make
    for double in doubles:
        double.close()


@pytest.fixture
def make_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabFactory]:
    yield from lab_factory(tmp_path, monkeypatch)


# --- the harness itself ------------------------------------------------------------------

def test_the_lab_puts_only_the_fakes_on_path(make_lab: LabFactory) -> None:
    import shutil

    lab = make_lab("2.11")
    for tool in ("kind", "kubectl", "linkerd", "docker"):
        found = shutil.which(tool)
        assert found and os.path.realpath(found) == str(FAKEBIN / tool)
    assert lab.clusters() == []
    assert lab.state()["linkerd_version"] == "stable-2.11.5"


def test_a_recorder_logs_argv_and_runs_the_fake(make_lab: LabFactory) -> None:
    import subprocess

    lab = make_lab("2.16")
    linkerd = lab.recorder("linkerd")
    done = subprocess.run([linkerd, "version", "--client", "--short"], capture_output=True,
                          text=True, check=True)
    assert done.stdout == "edge-24.8.2\n"
    assert lab.calls(linkerd) == [["version", "--client", "--short"]]
