"""The live progress line: shown on long steps only, erased when the step ends, off under -q,
in CI and off a terminal."""

from __future__ import annotations

import io
import time

from linkerd_conformance import progress
from linkerd_conformance.progress import Progress


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_a_long_step_shows_its_label_and_seconds_then_erases_the_line() -> None:
    out = io.StringIO()
    line = Progress(out, after=0.0, interval=0.01)
    with line.step("kind create cluster --name=c"):
        assert wait_for(lambda: "kind create cluster --name=c" in out.getvalue())
        assert wait_for(lambda: out.getvalue().count("\r  kind create") >= 2)  # rewritten
    text = out.getvalue()
    assert text.rstrip(" ").endswith("\r") and text.endswith("\r")  # the erase comes last
    assert "s" in text.split("--name=c")[1]


def test_a_quick_step_writes_nothing() -> None:
    out = io.StringIO()
    with Progress(out, after=5.0).step("kubectl apply"):
        pass
    assert out.getvalue() == ""


def test_a_long_label_is_cut_to_the_width() -> None:
    out = io.StringIO()
    with Progress(out, after=0.0, interval=0.01, width=40).step("x" * 200):
        assert wait_for(lambda: "..." in out.getvalue())
    assert all(len(part) <= 40 for part in out.getvalue().split("\r"))


def test_the_terminal_is_opened_only_when_a_line_is_shown() -> None:
    opened: list[int] = []

    def tty() -> io.StringIO:
        opened.append(1)
        return io.StringIO()

    with Progress(tty, after=5.0).step("quick"):
        pass
    with Progress(None, after=0.0).step("off"):
        pass
    assert opened == []


def test_the_line_is_wanted_only_on_a_terminal_without_q_and_outside_ci() -> None:
    assert progress.wanted(0, True, {})
    assert progress.wanted(1, True, {})
    assert not progress.wanted(-1, True, {})  # -q
    assert not progress.wanted(0, True, {"CI": "true"})
    assert not progress.wanted(0, False, {})  # a pipe, a file, an xdist worker


def test_configure_switches_the_runs_line() -> None:
    before = progress.current
    try:
        progress.configure(False)
        assert progress.current._stream is None
        progress.configure(True)
        assert callable(progress.current._stream)  # /dev/tty, opened at first use only
    finally:
        progress.current = before
