"""Every conformance check is shown to fail, for 2.11 and 2.20, under a reference fault.

suites/fault-catches.yaml is written by `scripts/self-check --write`, which runs every check
under every fault. This test (1) requires every conformance check applicable to a version to be
in that table with at least one fault, and (2) replays the table: it picks, per version, a small
set of faults that together cover every check, runs each check against a reference mesh with
the fault chosen for it (many faults a run, tests/replay.py), and requires all of them to fail.
A check that cannot fail is a defect.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import replay
import yaml

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "suites" / "fault-catches.yaml"
VERSIONS = ("2.11", "2.20")
FAST = ["--timeout", "consistency=1.5", "--timeout", "hold=0.3", "--timeout", "stalled=2",
        "--diagnostics-dir", ""]


def _table() -> dict[str, dict[str, list[str]]]:
    return yaml.safe_load(TABLE.read_text()) if TABLE.exists() else {}


_LIST = """
import sys, pytest
class Lister:
    def pytest_collection_finish(self, session):
        for item in session.items:
            na = any(m.name == "skip" for m in item.iter_markers())
            print(("NA " if na else "OK ") + item.nodeid)
pytest.main(["-m", "conformance", "--co", "-q", "-p", "no:cacheprovider",
             "--linkerd-version", sys.argv[1], "suites"], plugins=[Lister()])
"""


def _applicable(version: str) -> set[str]:
    """Node ids of the conformance checks that apply to `version` (not marked not applicable)."""
    out = subprocess.run([sys.executable, "-c", _LIST, version], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ)).stdout
    return {line[3:].strip() for line in out.splitlines() if line.startswith("OK ")}


_LIST_ALL = """
import sys, pytest
from linkerd_conformance.api import KNOWN_VERSIONS, Profile
from linkerd_conformance.plugin import applies
class Lister:
    def pytest_collection_finish(self, session):
        for item in session.items:
            spec = next((m.args[0] for m in item.iter_markers("versions")), None)
            vs = [v for v in KNOWN_VERSIONS if spec is None or applies(spec, Profile(v))]
            print("AT " + " ".join(vs) + " :: " + item.nodeid)
pytest.main(["-m", "conformance", "--co", "-q", "-p", "no:cacheprovider", "suites"],
            plugins=[Lister()])
"""


def _applicable_anywhere() -> dict[str, list[str]]:
    """Node id -> the versions its `versions` marker admits, for every conformance check."""
    out = subprocess.run([sys.executable, "-c", _LIST_ALL], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ)).stdout
    found = {}
    for line in out.splitlines():
        if line.startswith("AT "):
            versions, _, nodeid = line[3:].partition(" :: ")
            found[nodeid.strip()] = versions.split()
    return found


def _cover(catches: dict[str, list[str]]) -> dict[str, list[str]]:
    """Greedy set cover: a few faults that together catch every check."""
    remaining = set(catches)
    by_fault: dict[str, set[str]] = {}
    for check, faults in catches.items():
        for fault in faults:
            by_fault.setdefault(fault, set()).add(check)
    plan: dict[str, list[str]] = {}
    while remaining:
        fault = max(sorted(by_fault), key=lambda f: len(by_fault[f] & remaining))
        chosen = by_fault[fault] & remaining
        if not chosen:
            break
        plan[fault] = sorted(chosen)
        remaining -= chosen
    return plan


@pytest.mark.parametrize("version", VERSIONS)
def test_every_applicable_check_is_caught_by_a_fault(version: str) -> None:
    table = _table().get(version, {})
    applicable = _applicable(version)
    assert applicable, "no conformance check was collected"
    missing = sorted(applicable - set(table))
    assert not missing, (f"conformance checks for {version} not in {TABLE.name} (run "
                         f"scripts/self-check --write): {missing}")
    uncaught = sorted(k for k in applicable if not table.get(k))
    assert not uncaught, f"checks that no fault makes fail on {version}: {uncaught}"


def test_a_check_of_middle_versions_only_is_caught_on_one_of_them() -> None:
    """A check that applies to neither 2.11 nor 2.20 (a row true of 2.12-2.18 only) is in the
    table of a version it applies to, with a fault (`scripts/self-check --linkerd-version V
    --write -k CHECK`)."""
    table = _table()
    anywhere = _applicable_anywhere()
    assert anywhere, "no conformance check was collected"
    middle = {c: vs for c, vs in anywhere.items() if vs and not set(vs) & set(VERSIONS)}
    uncaught = sorted(f"{c} (applies to {', '.join(vs)})" for c, vs in middle.items()
                      if not any(table.get(v, {}).get(c) for v in vs))
    assert not uncaught, f"checks of middle versions that no fault makes fail: {uncaught}"


def _replay_params() -> list[object]:
    versions = sorted(_table(), key=lambda v: tuple(int(x) for x in v.split(".")))
    return [pytest.param(v, id=v) for v in versions if _table().get(v)]


#: A check caught by a fault fails only when its wait runs out, so a replay is mostly waiting:
#: its checks run in chunks, several pytest runs (one reference mesh per check) at once.
CHUNK, PARALLEL = 16, 5


@pytest.mark.slow
@pytest.mark.parametrize("version", _replay_params())
def test_each_fault_of_the_cover_makes_its_checks_fail(version: str) -> None:
    """Every check of the version's table, against a mesh with the fault the cover chose for
    it (one fault a check, many faults a run: `--reference-fault-plan`), must fail."""
    plan = _cover(_table().get(version, {}))
    pairs = [(check, fault) for fault, checks in plan.items() for check in checks]
    assert pairs, f"no fault covers a check of {version}"
    survived = replay.survivors(replay.replay(version, pairs, FAST, chunk=CHUNK,
                                              parallel=PARALLEL))
    assert not survived, "\n".join(
        f"Linkerd {version} with fault {fault!r}: these checks did not fail: {checks}"
        for fault, checks in survived.items())


def test_a_fault_plan_gives_each_check_its_own_fault_only(tmp_path: Path) -> None:
    """The replay's soundness: under `--reference-fault-plan` a check's mesh has its own fault
    and no other check's. Both checks are caught by the fault (suites/fault-catches.yaml); only
    the one the plan gives it to fails, and the report says which faults each ran with."""
    caught = "suites/test_denials_and_changes.py::test_a_denied_http_request_gets_an_empty_403"
    spared = "suites/test_denials_and_changes.py::test_a_new_server_applies_without_a_restart"
    fault = "named-port-unresolved"
    table = _table()["2.11"]
    assert fault in table[caught] and fault in table[spared]
    found = replay.run_plan("2.11", {caught: fault}, FAST, select=[caught, spared])
    assert found == {caught: "failed", spared: "passed"}, found
