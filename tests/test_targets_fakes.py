"""The fake tools (tests/fakebin) the cluster-target tests stand on, and checks of the fakes.

The other test_targets_* modules build their `fakes` fixture with `make_fakes`. The fakes
record every call, so a test can say exactly what a target ran and what it did not run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from linkerd_conformance.targets import session
from linkerd_conformance.targets.session import ClusterSettings

FAKEBIN = Path(__file__).parent / "fakebin"
TOOLS = ("kind", "kubectl", "linkerd", "docker")


class Fakes:
    """The fake tools' environment for one test: log, cluster state, canned responses."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        self.log = tmp_path / "fakebin.log"
        self.state_file = tmp_path / "state.json"
        self.responses_file = tmp_path / "responses.json"
        self.responses: list[dict[str, Any]] = []
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("FAKEBIN_LOG", str(self.log))
        monkeypatch.setenv("FAKE_KUBE_STATE", str(self.state_file))
        monkeypatch.setenv("FAKE_RESPONSES", str(self.responses_file))
        for var in ("FAKE_DOCKER_DOWN", "FAKE_LINKERD_VERSION", "FAKE_LINKERD_SERVER_VERSION",
                    "FAKE_PROBER_OUTCOME", "FAKE_PROXY_METRICS", "KUBECONFIG"):
            monkeypatch.delenv(var, raising=False)
        # The fakes' shebang needs python3; nothing else is found on this PATH.
        self.path = self.bin_dir(TOOLS)
        self.set_state()
        self._save_responses()

    def bin_dir(self, tools: tuple[str, ...]) -> str:
        """A PATH holding only the named fakes (and python3, which runs them)."""
        d = self.tmp / ("bin-" + "-".join(tools) if tools else "bin-none")
        d.mkdir(exist_ok=True)
        for tool in tools:
            link = d / tool
            if not link.exists():
                link.symlink_to(FAKEBIN / tool)
        py = d / "python3"
        if not py.exists():
            py.symlink_to(sys.executable)
        return str(d)

    def use_path(self, path: str) -> None:
        self.monkeypatch.setenv("PATH", path)

    def set_state(self, namespaces: dict[str, dict[str, str]] | None = None,
                  clusters: list[str] | None = None) -> None:
        self.state_file.write_text(json.dumps({"namespaces": namespaces or {},
                                               "clusters": clusters or []}))

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def respond(self, prog: str, match: list[str], stdout: Any = "", *, rc: int = 0,
                stderr: str = "", once: bool = False) -> None:
        """Canned output for the first call of `prog` whose argv holds every `match` token."""
        text = stdout if isinstance(stdout, str) else json.dumps(stdout)
        self.responses.insert(0, {"prog": prog, "match": match, "stdout": text, "rc": rc,
                                  "stderr": stderr, "once": once})
        self._save_responses()

    def _save_responses(self) -> None:
        self.responses_file.write_text(json.dumps(self.responses))

    def calls(self, prog: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r for r in rows if prog is None or r["prog"] == prog]

    def commands(self) -> list[str]:
        """Every call as `prog arg ...`, in order."""
        return [" ".join([c["prog"], *c["argv"]]) for c in self.calls()]

    def settings(self, **kw: Any) -> ClusterSettings:
        kw.setdefault("path", self.path)
        return ClusterSettings(**kw)


def fake_identity(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stand-in for reference.identity (written in parallel): records where files went."""
    written: list[str] = []

    def write(directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        for name in ("ca.crt", "issuer.crt", "issuer.key"):
            Path(directory, name).write_text("fake\n")
        written.append(directory)

    monkeypatch.setattr(session, "write_identity_files", write)
    monkeypatch.setattr(session, "identity_available", lambda: True)
    return written


def fake_kubeconfig(cluster: str) -> str:
    """The kubeconfig the fake `kind create cluster` writes (pykube can read it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_fake", FAKEBIN / "_fake.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.KUBECONFIG.format(n=cluster)


def make_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    """The fakes, run from tmp_path (pytest-kind writes .pytest-kind/ in the working dir)."""
    monkeypatch.chdir(tmp_path)
    return Fakes(tmp_path, monkeypatch)


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    return make_fakes(tmp_path, monkeypatch)


def test_fakes_log_argv_and_answer_versions(fakes: Fakes) -> None:
    import subprocess

    fakes.monkeypatch.setenv("FAKE_LINKERD_VERSION", "edge-24.8.2")
    out = subprocess.run([os.path.join(fakes.path, "linkerd"), "version", "--client",
                          "--short"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "edge-24.8.2"
    assert fakes.commands() == ["linkerd version --client --short"]


def test_fake_docker_fails_when_down(fakes: Fakes) -> None:
    import subprocess

    fakes.monkeypatch.setenv("FAKE_DOCKER_DOWN", "1")
    done = subprocess.run([os.path.join(fakes.path, "docker"), "info"], capture_output=True,
                          text=True)
    assert done.returncode == 1
    assert "Cannot connect to the Docker daemon" in done.stderr
