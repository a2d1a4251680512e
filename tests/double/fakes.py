"""The environment in which the cluster targets meet the double: fake tools first on PATH.

A PATH holding only the fake `kind`, `kubectl`, `linkerd`, `docker` (and the `python3` that
runs them), so no real tool is ever found, and the state file they share with the double.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

FAKEBIN = Path(__file__).parent / "fakebin"
TOOLS = ("kind", "kubectl", "linkerd", "docker")


def bin_dir(tmp: Path, tools: tuple[str, ...] = TOOLS) -> str:
    """A directory of the named fakes and python3, to be the whole PATH."""
    d = tmp / ("bin-" + "-".join(tools) if tools else "bin-none")
    d.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        link = d / tool
        if not link.exists():
            link.symlink_to(FAKEBIN / tool)
    py = d / "python3"
    if not py.exists():
        py.symlink_to(sys.executable)
    return str(d)


def fake_tools_env(double: Any, tmp: Path, *, linkerd_version: str, kubectl_version: str,
                   tools: tuple[str, ...] = TOOLS, **state: Any) -> dict[str, str]:
    """The environment of a run against `double`: PATH, state, and nothing of the user's."""
    merged = double.read_state()
    merged.update(linkerd_version=linkerd_version, kubectl_version=kubectl_version, **state)
    double.write_state(merged)
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBECONFIG", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER",
                        "PYTEST_XDIST_TESTRUNUID", "PYTEST_CURRENT_TEST")}
    env["PATH"] = bin_dir(tmp, tools)
    env.update(double.env())
    env["HOME"] = str(tmp)  # no ~/.kube/config of the user's is read
    return env
