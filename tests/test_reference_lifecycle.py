"""The reference mesh leaves nothing behind when it closes (its speed is scripts/bench's)."""

from __future__ import annotations

import threading
import time

from leaks import open_sockets

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
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()
                 ]
        leaked = open_sockets() - sockets
        if not extra and not leaked:
            break
        time.sleep(0.05)
    assert not extra, f"threads left running: {extra}"
    assert not leaked, f"sockets left open: {leaked}"
    assert not directory.exists(), f"{directory} was not removed"
