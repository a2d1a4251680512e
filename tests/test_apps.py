"""The reference mesh's applications, run without a mesh: plain sockets, real gRPC.

These pin the application behaviour that policy checks observe through the mesh (web's
status codes and logs, the vote-bot's stdout/stderr), so a mesh failure can't hide behind an
app bug.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import pytest

from linkerd_conformance.reference.apps import AppContext, UnknownImage, start_app
from linkerd_conformance.reference.apps.base import QuietHandler, QuietHTTPServer, ServerThread

IMAGE = "ghcr.io/buoyantio/emojivoto-{}:v11"


@dataclass
class Logs:
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)


def plain_dial(host: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def context(env: dict[str, str], resolve: Callable[[str], tuple[str, int]], logs: Logs,
            args: list[str] | None = None) -> AppContext:
    return AppContext(env=env, args=args or [], listen_host="127.0.0.1", dial=plain_dial,
                      resolve=resolve, log=logs.out.append, log_err=logs.err.append)


def wait_for(pred: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def get(addr: tuple[str, int], path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*addr, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class Emojivoto:
    services: dict[str, tuple[str, int]]
    web: tuple[str, int]
    logs: dict[str, Logs]

    def resolve(self, name: str) -> tuple[str, int]:
        return self.services[name]


@pytest.fixture(scope="module")
def emojivoto() -> Iterator[Emojivoto]:
    services: dict[str, tuple[str, int]] = {}
    logs = {n: Logs() for n in ("emoji", "voting", "web")}
    grpc_env = {"GRPC_PORT": "8080", "PROM_PORT": "8801"}
    emoji = start_app(IMAGE.format("emoji-svc"), context(grpc_env, services.__getitem__,
                                                          logs["emoji"]))
    voting = start_app("docker.l5d.io/buoyantio/emojivoto-voting-svc:v11",
                       context(grpc_env, services.__getitem__, logs["voting"]))
    services["emoji-svc.emojivoto:8080"] = emoji.ports[8080]
    services["voting-svc.emojivoto:8080"] = voting.ports[8080]
    web = start_app(IMAGE.format("web"), context({
        "WEB_PORT": "8080", "EMOJISVC_HOST": "emoji-svc.emojivoto:8080",
        "VOTINGSVC_HOST": "voting-svc.emojivoto:8080", "INDEX_BUNDLE": "dist/index_bundle.js",
    }, services.__getitem__, logs["web"]))
    services["web-svc.emojivoto:80"] = web.ports[8080]
    yield Emojivoto(services, web.ports[8080], logs)
    for app in (web, voting, emoji):
        app.stop()


def test_list_returns_the_emoji_list(emojivoto: Emojivoto) -> None:
    status, body = get(emojivoto.web, "/api/list")
    assert status == 200
    emojis = json.loads(body)
    assert len(emojis) == 99
    assert {"shortcode": ":joy:", "unicode": "😂"} in emojis
    assert {e["shortcode"] for e in emojis} >= {":poop:", ":doughnut:", ":dog:", ":taco:"}


def test_votes_are_counted_and_ranked(emojivoto: Emojivoto) -> None:
    for choice in (":joy:", ":joy:", ":dog:"):
        assert get(emojivoto.web, f"/api/vote?choice={choice}") == (200, b"")
    status, body = get(emojivoto.web, "/api/leaderboard")
    assert status == 200
    board = json.loads(body)
    assert board[0] == {"shortcode": ":joy:", "unicode": "😂", "votes": "2"}
    assert {"shortcode": ":dog:", "unicode": "🐶", "votes": "1"} in board


def test_doughnut_vote_is_a_500_and_logged(emojivoto: Emojivoto) -> None:
    status, body = get(emojivoto.web, "/api/vote?choice=:doughnut:")
    assert status == 500
    assert json.loads(body) == {"error": "rpc error: code = Unknown desc = ERROR"}
    assert any("Error serving request [" in line and " /api/vote?choice=:doughnut: " in line
               for line in emojivoto.logs["web"].err)


@pytest.mark.parametrize("query", ["", "?choice=", "?choice=:nope:"])
def test_missing_or_unknown_choice_is_a_400(emojivoto: Emojivoto, query: str) -> None:
    status, body = get(emojivoto.web, f"/api/vote{query}")
    assert status == 400
    assert "error" in json.loads(body)


def test_backend_down_is_a_500(emojivoto: Emojivoto) -> None:
    logs = Logs()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()
    web = start_app(IMAGE.format("web"), context({
        "WEB_PORT": "8080", "EMOJISVC_HOST": "emoji-svc.emojivoto:8080",
        "VOTINGSVC_HOST": "voting-svc.emojivoto:8080"}, lambda _name: dead, logs))
    try:
        status, body = get(web.ports[8080], "/api/list")
        assert status == 500
        assert json.loads(body)["error"].startswith("rpc error: code = Unavailable")
    finally:
        web.stop()


def test_grpc_has_no_reflection(emojivoto: Emojivoto) -> None:
    target = "{}:{}".format(*emojivoto.services["emoji-svc.emojivoto:8080"])
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_unary("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", timeout=2)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_vote_bot_votes(emojivoto: Emojivoto) -> None:
    logs = Logs()
    bot = start_app(IMAGE.format("web"), context(
        {"WEB_HOST": "web-svc.emojivoto:80", "VOTEBOT_PERIOD_SECONDS": "0.02"},
        emojivoto.resolve, logs, args=["emojivoto-vote-bot"]))
    try:
        assert wait_for(lambda: len(logs.out) >= 3)
        assert all(line.startswith("✔ Voting for :") for line in logs.out)
        assert bot.exit_code is None
    finally:
        bot.stop()


def test_vote_bot_on_a_403_logs_the_json_error() -> None:
    class Forbidden(QuietHandler):
        def do_GET(self) -> None:
            self.reply(403, b"", headers={"l5d-proxy-error": "unauthorized request on route"})

    stub = ServerThread(QuietHTTPServer("127.0.0.1", Forbidden), "stub")
    logs = Logs()
    bot = start_app(IMAGE.format("web"), context(
        {"WEB_HOST": "web-svc.emojivoto:80", "VOTEBOT_PERIOD_SECONDS": "0.02"},
        lambda _name: stub.address, logs, args=["emojivoto-vote-bot"]))
    try:
        assert wait_for(lambda: len(logs.err) >= 2)
        assert set(logs.err) == {"unexpected end of JSON input"}
        assert logs.out == []
    finally:
        bot.stop()
        stub.stop()


def test_vote_bot_without_web_host_exits() -> None:
    logs = Logs()
    bot = start_app(IMAGE.format("web"), context({}, lambda _n: ("127.0.0.1", 1), logs,
                                                 args=["emojivoto-vote-bot"]))
    assert bot.exit_code == 1
    assert logs.err[0].endswith("WEB_HOST environment variable must me set")
    bot.stop()


def test_prober_serve_echoes_http_grpc_and_tcp() -> None:
    logs = Logs()
    app = start_app("ghcr.io/linkerd-conformance/prober:dev", context(
        {}, lambda _n: ("127.0.0.1", 1), logs,
        args=["serve", "--http", "8080", "--grpc", "9090", "--tcp", "7000", "--ready-path",
              "/ready"]))
    try:
        assert get(app.ports[8080], "/ready") == (200, b"ready")
        assert get(app.ports[8080], "/a/b?c=d") == (200, b"GET /a/b?c=d")
        with socket.create_connection(app.ports[7000], timeout=2) as s:
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
        with grpc.insecure_channel("{}:{}".format(*app.ports[9090])) as ch:
            assert ch.unary_unary("/any.Service/Echo")(b"\x0a\x01x", timeout=2) == b"\x0a\x01x"
    finally:
        app.stop()


def test_unknown_images_are_refused() -> None:
    ctx = context({}, lambda _n: ("127.0.0.1", 1), Logs())
    for image in ("nginx:1.25", "ghcr.io/buoyantio/emojivoto-db:v11"):
        with pytest.raises(UnknownImage):
            start_app(image, ctx)


def test_stop_closes_listeners_and_leaves_no_threads() -> None:
    before = {t.ident for t in threading.enumerate()}
    services: dict[str, tuple[str, int]] = {}
    env = {"GRPC_PORT": "8080", "PROM_PORT": "8801"}
    emoji = start_app(IMAGE.format("emoji-svc"), context(env, services.__getitem__, Logs()))
    services["emoji-svc.emojivoto:8080"] = emoji.ports[8080]
    web = start_app("buoyantio/emojivoto-web:v11", context(
        {"WEB_PORT": "8080", "EMOJISVC_HOST": "emoji-svc.emojivoto:8080",
         "VOTINGSVC_HOST": "voting-svc.emojivoto:8080"}, services.__getitem__, Logs()))
    assert get(web.ports[8080], "/api/list")[0] == 200
    assert get(emoji.ports[8801], "/metrics")[1].count(b'grpc_method="ListAll"') == 1
    # a keep-alive client connection must not survive stop()
    idle = socket.create_connection(web.ports[8080], timeout=2)
    addresses = [*web.ports.values(), *emoji.ports.values()]
    started = time.monotonic()
    for app in (web, emoji):
        app.stop()
        app.stop()  # idempotent
    assert time.monotonic() - started < 2.0
    with contextlib.suppress(ConnectionResetError):  # closed by a reset: just as closed
        assert idle.recv(1) == b""
    idle.close()
    for addr in addresses:
        with pytest.raises(OSError):
            socket.create_connection(addr, timeout=1).close()
    assert wait_for(lambda: not [t for t in threading.enumerate()
                                 if t.ident not in before and not t.daemon])
