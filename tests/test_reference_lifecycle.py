"""The reference mesh leaves nothing behind when it closes (its speed is scripts/bench's)."""

from __future__ import annotations

import threading

from leaks import assert_nothing_left, open_sockets

from linkerd_conformance import OK, Profile, workshop
from linkerd_conformance.reference.mesh import ReferenceMesh


def test_close_leaves_no_thread_socket_or_file_behind() -> None:
    threads, sockets = set(threading.enumerate()), open_sockets()
    mesh = ReferenceMesh(Profile("2.11"))
    directory = mesh.authority.directory
    mesh.apply(*workshop.emojivoto(), *workshop.bad())
    assert all(r.settled for r in mesh.wait_rollout("emojivoto") + mesh.wait_rollout("bad"))
    out = mesh.probe(workshop.emojivoto_votebot, workshop.web_http, "http", **workshop.API_LIST)
    assert OK.matches(out), out.short()
    mesh.close()
    assert_nothing_left(threads, sockets)
    assert not directory.exists(), f"{directory} was not removed"
