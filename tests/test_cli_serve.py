"""`linkerd-conformance serve` runs the reference mesh for your own tools: the curl commands it
prints get the outcome it says (200 for the meshed client, 403 for a plaintext one), and it
stops cleanly on SIGINT or SIGTERM, leaving no private key behind.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0  # seconds: a mesh, four rollouts and a Python start on a busy machine


class Served:
    """A `linkerd-conformance serve` subprocess and the lines it has printed."""

    def __init__(self, *args: str, tmpdir: Path | None = None) -> None:
        env = dict(os.environ)
        if tmpdir is not None:
            env["TMPDIR"] = str(tmpdir)  # where tempfile puts the mesh's identity folder
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "fixtures"), *filter(None, [env.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT prints every thread's stack (see `stop`)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "linkerd_conformance.cli", "serve", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, prefix: str, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"serve exited ({self.proc.wait()}) before {prefix!r}:\n"
                                     + "\n".join(self.lines))
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line within {timeout:g}s:\n" + "\n".join(self.lines))

    def stop(self, signum: int, timeout: float = 30.0) -> int:
        """Send `signum` and wait for the exit status; on a timeout the assertion carries
        every thread's stack (faulthandler on SIGABRT), which says where the exit hangs."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=30)
            tail: list[str] = []
            with contextlib.suppress(queue.Empty):
                while (line := self._queue.get(timeout=5)) is not None:
                    tail.append(line)
            raise AssertionError(f"serve did not exit within {timeout:g}s of "
                                 f"{signal.Signals(signum).name}; its stacks:\n"
                                 + "\n".join(tail)) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def serve() -> Iterator[type[Served]]:
    started: list[Served] = []

    class Tracked(Served):
        def __init__(self, *args: str, tmpdir: Path | None = None) -> None:
            super().__init__(*args, tmpdir=tmpdir)
            started.append(self)
    yield Tracked
    for s in started:
        s.kill()


def curl_commands(lines: list[str]) -> list[tuple[str, str, str]]:
    """(expected HTTP status, comment, command) for each printed curl command."""
    out = []
    for comment, command in zip(lines, lines[1:], strict=False):
        if command.startswith("$ curl ") and comment.startswith("#"):
            status = re.search(r"expect [a-z-]+ \(status (\d+)\)", comment)
            assert status, f"a curl command without an expected status: {comment}"
            out.append((status.group(1), comment, command[2:]))
    return out


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_printed_curl_commands_get_the_printed_outcomes(serve: type[Served],
                                                            tmp_path: Path) -> None:
    """The workshop's end state: the client certificate serve writes (web's identity) gets
    200 from web over mesh TLS, a plaintext curl gets 403; SIGINT ends it with status 0 and
    the key file removed."""
    out = tmp_path / "out"
    served = serve("--out", str(out), "--linkerd-version", "2.20")
    served.wait_for("ready")
    assert (out / "client.key").is_file() and (out / "ca.crt").is_file()
    assert (out / "addresses.json").is_file() and (out / "issuer.crt").is_file()
    commands = curl_commands(served.lines)
    assert {status for status, _, _ in commands} == {"200", "403"}, served.lines
    for status, comment, command in commands:
        run = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=20)
        assert run.stdout.strip() == status, (
            f"{comment}\n$ {command}\nstdout: {run.stdout!r}\nstderr: {run.stderr!r}")
    assert served.stop(signal.SIGINT) == 0
    assert not list(out.glob("*.key")), "a private key survived the shutdown"
    assert (out / "client.crt").is_file()  # the public files stay for a later look


def test_sigterm_stops_it_and_removes_its_own_temporary_folder(serve: type[Served]) -> None:
    """Without --out it writes to a fresh temporary folder, removed on SIGTERM."""
    served = serve("--linkerd-version", "2.11")
    ready = served.wait_for("ready")
    folder = Path(ready.rsplit("files in ", 1)[1])
    assert (folder / "client.key").is_file()
    assert served.stop(signal.SIGTERM) == 0
    assert not folder.exists()


def test_sigint_while_starting_leaves_nothing_in_the_temp_folder(serve: type[Served],
                                                                 tmp_path: Path) -> None:
    """Ctrl-C while the mesh starts (its identity folder holds every proxy's key by then):
    exit 0, and the temporary folder is as empty as before."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    served = serve("--linkerd-version", "2.20", tmpdir=tmpdir)
    served.wait_for("starting")
    assert served.stop(signal.SIGINT) == 0, served.lines
    assert not list(tmpdir.iterdir())
