"""What a test holds open in this process, to show that something it closed left nothing."""

from __future__ import annotations

import os
import threading
import time


def open_sockets() -> set[str]:
    """The file descriptors of this process that are sockets."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                out.add(fd)
        except OSError:
            pass
    return out


def assert_nothing_left(threads: set[threading.Thread], sockets: set[str],
                        within: float = 5.0) -> None:
    """No thread beyond `threads` alive and no socket beyond `sockets` open, within `within`
    seconds (a closed server's threads and sockets go away shortly after `close()`)."""
    deadline = time.monotonic() + within
    while True:
        extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        leaked = open_sockets() - sockets
        if (not extra and not leaked) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    assert not extra, f"threads left running: {extra}"
    assert not leaked, f"sockets left open: {leaked}"
