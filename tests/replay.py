"""Replaying faults: run conformance checks, each against a reference mesh with its own fault.

Shared by tests/test_self_check.py (the fault table) and tests/test_faults_catch_story.py (the
story's table). A replay used to be one pytest run per fault; each run paid a Python and pytest
start and a collection (about 2 s of CPU) for a handful of checks. Here the pairs (check, fault)
go into `--reference-fault-plan` files instead: a check whose own mesh has the fault, many
faults in one run. A check to be shown failing under several faults is in several rounds (one
fault per check per run); a round's checks are split into chunks run side by side, because a
check caught by a fault is mostly waiting for its deadline.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def rounds(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """(check, fault) pairs as few plans (check -> fault) as the most faults one check has."""
    out: list[dict[str, str]] = []
    for check, fault in pairs:
        for plan in out:
            if check not in plan:
                plan[check] = fault
                break
        else:
            out.append({check: fault})
    return out


def chunks(plan: dict[str, str], size: int) -> list[dict[str, str]]:
    """A plan in runs of at most `size` checks, in node id order (a module's checks together)."""
    checks = sorted(plan)
    return [{c: plan[c] for c in checks[i:i + size]} for i in range(0, len(checks), size)]


def run_plan(version: str, plan: dict[str, str], options: Sequence[str],
             select: Sequence[str] = ()) -> dict[str, str]:
    """{node id: result} of one pytest run of `plan`'s checks, each with its fault, and of the
    checks in `select` (run with no fault of their own)."""
    with tempfile.TemporaryDirectory(prefix="fault-replay-") as tmp:
        plan_path, report = Path(tmp) / "plan.yaml", Path(tmp) / "report.yaml"
        plan_path.write_text(yaml.safe_dump({c: [f] for c, f in plan.items()}))
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-p", "no:randomly", "--linkerd-version", version,
                "--reference-fault-plan", str(plan_path), *options,
                "--conformance-report", str(report), *sorted({*plan, *select})]
        done = subprocess.run(
            argv, cwd=REPO, capture_output=True, text=True, timeout=900,
            # a replay needs the failure only: the generated family skips shrinking it
            env={**os.environ, "LINKERD_CONFORMANCE_GENERATED_NO_SHRINK": "1"})
        assert report.exists(), done.stdout[-3000:] + done.stderr[-2000:]
        checks = yaml.safe_load(report.read_text())["checks"]
    for c in checks:  # the report names the faults each check ran with
        assert c.get("faults", []) == ([plan[c["nodeid"]]] if c["nodeid"] in plan else []), c
    return {c["nodeid"]: c["result"] for c in checks if c["nodeid"] in {*plan, *select}}


def replay(version: str, pairs: Iterable[tuple[str, str]], options: Sequence[str], *,
           chunk: int, parallel: int) -> dict[tuple[str, str], str]:
    """{(check, fault): result} for every pair ("not run" when the check did not report)."""
    runs = [part for plan in rounds(pairs) for part in chunks(plan, chunk)]
    results: dict[tuple[str, str], str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        for plan, found in zip(runs, pool.map(lambda p: run_plan(version, p, options), runs),
                               strict=True):
            for check, fault in plan.items():
                results[(check, fault)] = found.get(check, "not run")
    return results


def survivors(results: dict[tuple[str, str], str]) -> dict[str, dict[str, str]]:
    """fault -> {check: result} for the pairs whose check did not fail."""
    out: dict[str, dict[str, str]] = {}
    for (check, fault), result in sorted(results.items()):
        if result != "failed":
            out.setdefault(fault, {})[check] = result
    return out
