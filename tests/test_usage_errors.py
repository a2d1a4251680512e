"""Bad input gets one clear sentence and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "conformance", "-p", "no:cacheprovider",
         "--collect-only", "-q", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})})


def _one_sentence(result: subprocess.CompletedProcess[str], needle: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert needle in out, out
    assert "Traceback" not in out, out


@pytest.mark.parametrize(("args", "needle"), [
    (("--target", "minikube"), "--target 'minikube' is not a target: choose one of reference"),
    (("--linkerd-version", "2.99"), "--linkerd-version '2.99' is not modelled"),
    (("--timeout", "hold=soon"), "timeout hold='soon' is not a number of seconds"),
    (("--timeout", "patience=3"), "unknown timeout 'patience'"),
    (("--timeout", "hold"), "must look like NAME=SECONDS"),
    (("--reference-fault", "gremlins"), "--reference-fault 'gremlins' is not a fault"),
    (("--reference-propagation-delay", "fast"), "must be a number of seconds"),
], ids=["target", "version", "timeout-nan", "timeout-unknown", "timeout-shape", "fault",
        "delay"])
def test_bad_option_is_one_sentence(args: tuple[str, ...], needle: str) -> None:
    _one_sentence(_run(*args), needle)


def test_malformed_timeouts_file_is_one_sentence(tmp_path: Path) -> None:
    f = tmp_path / "timeouts.yaml"
    f.write_text("hold: [1, 2\n")
    _one_sentence(_run("--timeouts-file", str(f)), "is not valid YAML")


def test_malformed_manifest_is_one_sentence(tmp_path: Path) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    (tmp_path / "manifests" / "emojivoto.yml").write_text("kind: Namespace\n  name: [oops\n")
    result = _run(env={"LINKERD_CONFORMANCE_MANIFESTS": str(tmp_path / "manifests")})
    _one_sentence(result, "emojivoto.yml")
