"""`linkerd-conformance explain` answers what the reference mesh shows, with the steps that lead
there: the workshop's two questions (the `bad` vote-bot to web after the wildcard edit; web to
emoji under deny with no policy) and truth tables of lab scenarios, each cell's expected outcome
taken from explain and observed through the reference.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from linkerd_conformance import Client, Profile, lab, workshop
from linkerd_conformance.cli import main
from linkerd_conformance.cli.explain import Answer, Question, explain
from linkerd_conformance.expectations import sa_identity
from linkerd_conformance.outcome import GRPC_PERMISSION_DENIED, HTTP_FORBIDDEN
from linkerd_conformance.reference.mesh import ReferenceMesh
from linkerd_conformance.waiting import Cell, Timeouts, expect, expect_matrix

OUTSIDE_IP = "203.0.113.10"  # TEST-NET-3: outside every cluster network
POLICY = "config.linkerd.io/default-inbound-policy"


@pytest.fixture
def open_mesh() -> Iterator[Any]:
    meshes: list[ReferenceMesh] = []

    def start(version: str) -> ReferenceMesh:
        t = Timeouts()
        mesh = ReferenceMesh(Profile(version), probe_timeout=t.probe,
                             rollout_timeout=t.rollout, stalled_after=t.stalled)
        meshes.append(mesh)
        return mesh
    yield start
    for mesh in meshes:
        mesh.close()


def settle(mesh: ReferenceMesh, *namespaces: str, restart: bool = False) -> None:
    for ns in namespaces:
        rollouts = mesh.rollout_restart(ns) if restart else mesh.wait_rollout(ns)
        for r in rollouts:
            assert r.settled, f"{ns}/{r.deployment}: {r.reason}"


def write(path: Path, objects: Sequence[dict[str, Any]]) -> str:
    path.write_text(yaml.safe_dump_all(list(objects)))
    return str(path)


def with_namespace_default(objects: Sequence[dict[str, Any]], namespace: str,
                           policy: str) -> list[dict[str, Any]]:
    """The objects with `kubectl annotate ns <namespace> <POLICY>=<policy>` applied."""
    out = []
    for obj in objects:
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] == namespace:
            meta = {**obj["metadata"], "annotations": {
                **(obj["metadata"].get("annotations") or {}), POLICY: policy}}
            obj = {**obj, "metadata": meta}
        out.append(obj)
    return out


def address(mesh: ReferenceMesh, client: Client) -> str:
    """An address on the client's side of the cluster networks, as explain is told it."""
    if client.network == "outside":
        return OUTSIDE_IP
    return str(next(iter(ipaddress.ip_network(mesh.cluster_networks[0]).hosts())))


def source(client: Client) -> str:
    return f"{client.namespace}/{client.service_account}" if client.meshed else "unmeshed"


def ask(mesh: ReferenceMesh, objects: Sequence[dict[str, Any]], client: Client, to: str,
        port: str, protocol: str, path: str = "/") -> Answer:
    return explain(objects, str(mesh.profile), Question(
        source(client), to, port, protocol, address=address(mesh, client), path=path,
        cluster_default=mesh.cluster_default, cluster_networks=mesh.cluster_networks))


def step(answer: Answer, subject: str) -> str:
    """`result: why` of the step about `subject`."""
    for s in answer.explanation.steps:
        if s.subject == subject:
            return f"{s.result}: {s.why}"
    raise AssertionError(f"no step about {subject}: {answer.explanation.steps}")


# ---- the workshop's two questions ----

@pytest.mark.parametrize("version", ["2.11", "2.20"])
def test_the_bad_votebot_after_the_wildcard_edit_is_forbidden_by_web_public(
        open_mesh: Any, tmp_path: Path, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Question (a): after the wildcard edit, web-public admits only `*.emojivoto` identities,
    so the vote-bot copied into `bad` gets an empty 403, as the reference shows."""
    mesh = open_mesh(version)
    mesh.apply(*workshop.emojivoto(), *workshop.bad())
    settle(mesh, "emojivoto", "bad")
    mesh.apply(*workshop.emojivoto_policy())
    mesh.apply(*workshop.web_public_emojivoto_only())
    objects = [*workshop.emojivoto(), *workshop.bad(), *workshop.emojivoto_policy(),
               *workshop.web_public_emojivoto_only()]

    answer = ask(mesh, objects, workshop.bad_votebot, "emojivoto/web", "http", "http",
                 workshop.API_LIST["path"])
    assert answer.outcome == HTTP_FORBIDDEN
    assert step(answer, "server/web-http").startswith("chosen")
    why = step(answer, "serverauthorization/web-public")
    assert why.startswith("does not admit") and sa_identity("default", "bad") in why
    assert "*.emojivoto" in why
    expect(mesh, workshop.bad_votebot, workshop.web_http, "http",
           **workshop.API_LIST).becomes(answer.outcome)
    # ... and the emojivoto vote-bot still gets in, through the same authorization
    ok = ask(mesh, objects, workshop.emojivoto_votebot, "emojivoto/web", "http", "http",
             workshop.API_LIST["path"])
    assert ok.explanation.expectation.authorization == "serverauthorization/web-public"
    expect(mesh, workshop.emojivoto_votebot, workshop.web_http, "http",
           **workshop.API_LIST).becomes(ok.outcome)

    files = [write(tmp_path / "app.yml", [*workshop.emojivoto(), *workshop.bad()]),
             write(tmp_path / "policy.yml", workshop.emojivoto_policy()),
             write(tmp_path / "edit.yml", workshop.web_public_emojivoto_only())]
    argv = ["explain", *[a for f in files for a in ("-f", f)], "--from", "bad/default",
            "--to", "emojivoto/web", "--port", "http", "--path", "/api/list",
            "--linkerd-version", version]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "server/web-http: chosen" in text
    assert "serverauthorization/web-public: does not admit" in text
    assert "outcome: http-forbidden (status 403)" in text


@pytest.mark.parametrize("version", ["2.11", "2.12", "2.20"])
def test_web_to_emoji_under_deny_with_no_policy_is_permission_denied(
        open_mesh: Any, tmp_path: Path, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Question (b): the namespace annotated deny and restarted, no Server on emoji's port:
    the default policy deny, copied from the namespace onto the pod, refuses web's ListAll
    with PERMISSION_DENIED. (2.11 needs the admin Server for the kubelet's probes, F6.1.)"""
    mesh = open_mesh(version)
    policy = workshop.admin_only_policy() if version == "2.11" else []
    mesh.apply(*workshop.emojivoto(), *policy)
    settle(mesh, "emojivoto")
    mesh.annotate(workshop.EMOJIVOTO_NS, workshop.DENY)
    settle(mesh, "emojivoto", restart=True)
    objects = [*with_namespace_default(workshop.emojivoto(), "emojivoto", "deny"), *policy]

    answer = ask(mesh, objects, workshop.web, "emojivoto/emoji", "grpc", "grpc",
                 "/" + workshop.LIST_ALL["method"])
    assert answer.outcome == GRPC_PERMISSION_DENIED
    assert answer.pod.default_policy == "deny"
    assert "namespace emojivoto's annotation" in answer.policy_origin
    assert "injector" in answer.policy_origin
    default = "default:deny" if version == "2.11" else "default/deny"
    assert step(answer, default).startswith("applies")
    expect(mesh, workshop.web, workshop.emoji_grpc, "grpc",
           **workshop.LIST_ALL).becomes(answer.outcome)

    argv = ["explain", "-f", write(tmp_path / "all.yml", objects), "--from", "emojivoto/web",
            "--to", "emojivoto", "-l", "app=emoji-svc", "--port", "8080", "--protocol", "grpc",
            "--path", "/emojivoto.v1.EmojiService/ListAll", "--linkerd-version", version]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "default policy: deny, from namespace emojivoto's annotation" in text
    assert "outcome: grpc-permission-denied (grpc-status 7)" in text


# ---- lab scenarios: explain's answer for every cell, observed through the reference ----

LAB_SOURCES = {"meshed": lab.MESHED, "plain": lab.UNMESHED, "other-ns": lab.OTHER_NS,
               "xlab": lab.XLAB, "meshed-outside": lab.MESHED_OUTSIDE,
               "plain-outside": lab.UNMESHED_OUTSIDE}
LAB_DESTS = {"http": ("http", "/hello"), "grpc": ("grpc", "/lab.Echo/Ping"), "tcp": ("tcp", "/")}


SCENARIOS: dict[str, tuple[str, Any, Any]] = {
    # name: (version, workloads, policy)
    "serverauthorizations-2.11": ("2.11", lab.objects, lab.server_per_port),
    "serverauthorizations-2.20": ("2.20", lab.objects, lab.server_per_port),
    "authorizationpolicies-2.12": ("2.12", lab.objects, lab.authorization_policies),
    "cluster-authenticated-pod-default-2.20": (
        "2.20", lambda: lab.with_default("cluster-authenticated"), lambda: []),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_explain_answers_every_lab_cell_as_the_reference_shows(open_mesh: Any,
                                                               scenario: str) -> None:
    """Six clients against the lab's HTTP, gRPC and TCP ports: every cell's expected outcome
    is explain's answer, and the reference must show it (the whole table on a mismatch)."""
    version, workloads, policy = SCENARIOS[scenario]
    mesh = open_mesh(version)
    objects = [*workloads(), *policy()]
    lab.deploy(mesh, workloads())
    mesh.apply(*policy())
    cells = []
    for row, client in LAB_SOURCES.items():
        for col, (protocol, path) in LAB_DESTS.items():
            answer = ask(mesh, objects, client, "lab/server", col, protocol, path)
            cells.append(Cell(row, col, client, lab.PORTS[col], protocol, lab.REQUESTS[col],
                              answer.outcome, answer.explanation.expectation.reason))
    expect_matrix(mesh, cells)


# ---- the command itself ----

def test_the_console_script_is_the_cli_and_no_subcommand_imports_pytest() -> None:
    """`linkerd-conformance` (pyproject [project.scripts]) is `linkerd_conformance.cli:main`,
    and its modules run without pytest (a person's terminal, not a test run)."""
    import subprocess
    import sys
    import tomllib

    repo = Path(__file__).resolve().parent.parent
    scripts = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["linkerd-conformance"] == "linkerd_conformance.cli:main"
    code = ("import sys, linkerd_conformance.cli as c\n"
            "for m in c.COMMANDS.values(): __import__(f'linkerd_conformance.cli.{m[0]}')\n"
            "print(sorted(m for m in sys.modules if m == 'pytest' or m.startswith('_pytest')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True,
                          env={"PYTHONPATH": str(repo / "fixtures"), "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize(("argv", "says"), [
    (["--from", "bad"], "expected namespace/serviceaccount or unmeshed"),
    (["--from", "bad/default", "--port", "nope"], "no container port named 'nope'"),
    (["--from", "bad/default", "--to", "emojivoto/nothing"], "no Deployment"),
    (["--from", "bad/default", "-f", "manifests", "--protocol", "grpc"],
     "is not specified by the spec (F2.3)"),
])
def test_explain_refuses_bad_input_in_one_sentence(argv: list[str], says: str,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    base = {"-f": "manifests/emojivoto.yml", "--to": "emojivoto/web", "--port": "http"}
    for key, value in zip(argv[::2], argv[1::2], strict=True):
        base[key] = value
    status = main(["explain", *[x for kv in base.items() for x in kv]])
    err = capsys.readouterr().err
    assert status == 2 and says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("version", ["2.11", "2.16", "2.20"])
def test_the_steps_name_the_authorization_that_decides(version: str) -> None:
    """For every lab cell of every scenario: exactly the authorization the decision names is
    the step that `admits`; a refusal has no admitting step (explain and the decision agree)."""
    from linkerd_conformance.cli.inputs import default_cluster_networks

    nets = default_cluster_networks(version)
    inside = str(next(iter(ipaddress.ip_network(nets[0]).hosts())))
    for name, (_, workloads, policy) in SCENARIOS.items():
        if version == "2.11" and "authorizationpolicies" in name:
            continue
        objects = [*workloads(), *policy()]
        for client in LAB_SOURCES.values():
            for col, (protocol, path) in LAB_DESTS.items():
                answer = explain(objects, version, Question(
                    source(client), "lab/server", col, protocol, path=path,
                    address=OUTSIDE_IP if client.network == "outside" else inside,
                    cluster_networks=nets))
                admits = [s.subject for s in answer.explanation.steps if s.result == "admits"]
                decided = answer.explanation.expectation.authorization
                assert admits == ([decided] if decided else []), (name, client, col, answer)
