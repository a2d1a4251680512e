"""The prober's batch mode: many independent probes in one exec, each answered on its own."""

from __future__ import annotations

import io
import json
from typing import Any

from linkerd_conformance import Outcome, Verdict
from linkerd_conformance.prober.held import (
    decode_batch_line,
    encode_batch_line,
    parse_batch_answer,
    serve_batch,
)


def test_a_batch_line_carries_its_destination_and_request_bytes() -> None:
    line = encode_batch_line(7, "tcp", "10.0.0.1", 7000, {"payload": b"\x00ping\n"})
    assert decode_batch_line(line) == (7, "tcp", "10.0.0.1", 7000, {"payload": b"\x00ping\n"})


def test_every_probe_is_answered_under_its_own_id_and_a_failure_is_only_its_own() -> None:
    """A probe that raises is an error of its own; a line that cannot be read gets no answer
    (the target reports it as the prober failing); the probes after both still run."""
    calls: list[tuple[str, str, int, float, dict[str, Any]]] = []

    def probe(protocol: str, host: str, port: int, *, timeout: float,
              **request: Any) -> Outcome:
        calls.append((protocol, host, port, timeout, request))
        if port == 1:
            raise TypeError("unexpected http request arguments: colour")
        return Outcome(Verdict.HTTP_FORBIDDEN if port == 403 else Verdict.ALLOWED, protocol)

    lines = [encode_batch_line(0, "http", "h", 403, {"path": "/a"}), "not json",
             encode_batch_line(1, "http", "h", 1, {}), "",
             encode_batch_line(2, "http", "h", 80, {"path": "/b"})]
    out = io.StringIO()
    assert serve_batch(probe, 1.5, [line + "\n" for line in lines], out) == 0
    answers = dict(parse_batch_answer(line) for line in out.getvalue().splitlines())
    assert sorted(answers) == [0, 1, 2]
    verdicts = {i: json.loads(a)["verdict"] for i, a in answers.items()}
    assert verdicts == {0: "http-forbidden", 1: "error", 2: "allowed"}
    assert [c[2] for c in calls] == [403, 1, 80] and {c[3] for c in calls} == {1.5}
    assert calls[0][4] == {"path": "/a"}
