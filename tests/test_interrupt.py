"""Ctrl-C twice in the middle of a conformance run leaves nothing in the temp folder: the
reference mesh's identity folder (with its private keys) and every other temporary file are
removed however the run ends (issue: an interrupted run once left keys behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason=(
    "known bug, not yet fixed: on a loaded machine a SIGINT can be lost (stop 15's CI saw the "
    "interrupted run go on to '194 passed'), likely one that lands while the reference mesh "
    "holds signals during start or close; alone the test passes in ~14 s"))
def test_sigint_twice_after_10_s_leaves_no_file_in_the_temp_folder(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-m", "conformance", "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", "--linkerd-version", "2.20", "--diagnostics-dir", "", "suites"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(10)  # the scenario: a user presses Ctrl-C 10 s into the run
        assert run.poll() is None, "the run ended before it could be interrupted"
        run.send_signal(signal.SIGINT)
        time.sleep(0.5)  # and again, while the first interrupt is being handled
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=150)  # a loaded CI machine exits slowly
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0 and "KeyboardInterrupt" in out, out[-2000:]
    left = sorted(str(p.relative_to(temp)) for p in temp.rglob("*"))
    assert not left, f"left in the temp folder: {left}\n{out[-2000:]}"
