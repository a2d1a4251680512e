"""Generated scenarios: seeded policy cases over the lab, every cell against the specification.

The hand-written checks each test the promise they were written for; a bug next to it goes
unseen. Here a seed generates a scenario (a default policy, Servers with label or expression
selectors on numeric or named ports, ServerAuthorizations, AuthorizationPolicies, HTTPRoutes,
decoys in another namespace: `linkerd_conformance.generated`), the scenario is applied, and every
client kind is probed on every port and protocol, each cell compared with the independent
reading (`linkerd_conformance.expectations`), then again with several requests on one
connection. A disagreement is shrunk to a minimal scenario and printed as manifests, with the
failing cells and the command that replays the seed.

`--generated-seeds N` runs seeds 1..N instead of the fixed few; `--generated-seed S` runs one.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from linkerd_conformance import (
    Cell,
    ConformanceFailure,
    Mesh,
    Probe,
    TargetError,
    Unsupported,
    Verdict,
    current_timeouts,
    expect_matrix,
    generated,
    lab,
    wait_for,
)

PORTS, GenCell, Scenario = generated.PORTS, generated.GenCell, generated.Scenario
cells, fixed_seeds, generate, size = (generated.cells, generated.fixed_seeds, generated.generate,
                                      generated.size)
manifests_yaml, object_rows = generated.manifests_yaml, generated.object_rows
replay_command, shrink = generated.replay_command, generated.shrink

pytestmark = [pytest.mark.conformance, pytest.mark.feature("generated")]

#: Seeds run by default: a bounded few (about 1 s each on the reference).
FIXED_SEEDS = 12
#: How long a shrinking candidate may take to show the disagreement (at most `consistency`).
SHRINK_SETTLE = 3.0
#: Set (to anything) to report a failing seed without shrinking it (mutation testing).
NO_SHRINK = "LINKERD_CONFORMANCE_GENERATED_NO_SHRINK"
#: Clients whose HTTP and gRPC requests are also sent several to one connection.
SESSION_CLIENTS = ("meshed", "plain", "other-ns", "meshed-outside", "tls-no-identity")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" not in metafunc.fixturenames:
        return
    config = metafunc.config
    seeds = list(config.getoption("generated_seed", []) or [])
    if not seeds:
        count = config.getoption("generated_seeds", None)
        seeds = fixed_seeds(FIXED_SEEDS if count is None else count)
    metafunc.parametrize("seed", seeds, ids=[f"seed-{s}" for s in seeds])


# ---- applying and observing a scenario ----

def _apply(mesh: Mesh, scenario: Scenario, previous: Sequence[Any] = ()) -> None:
    """The lab with the scenario's annotation and objects, after removing `previous`."""
    if previous:
        mesh.delete(*previous)
    lab.deploy(mesh, [*scenario.workloads(), *scenario.objects])


def addresses(mesh: Mesh) -> tuple[dict[str, str], dict[str, str]]:
    """Where the server sees each client the target can place (`Mesh.client_address`, the
    reference's as a cluster's), and why not for a placeable client whose address the target
    cannot tell (a cluster's host-network client: the network plugin picks its source).

    The generated `networks` are whole cluster networks and everything with `except` of
    whole cluster networks, so a client's membership is that of the cluster network its real
    address lies in (a kind pod at 10.244.x.y is inside 10.0.0.0/8, the node at 172.18.0.x
    inside 172.16.0.0/12); a client outside every cluster network has no address on a
    cluster at all, and `cannot_place` makes its cells not applicable there."""
    known: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for row, client in generated.CLIENTS.items():
        if mesh.cannot_place(client) is not None:
            continue
        try:
            known[row] = mesh.client_address(client)
        except Unsupported as e:
            unknown[row] = str(e)
    return known, unknown


def _answer(cell: GenCell) -> tuple[Any, ...]:
    """What a cell is judged on: the outcome and the Server and authorization deciding it."""
    return (cell.expected, cell.expectation.server, cell.expectation.authorization)


def _cells(mesh: Mesh, scenario: Scenario) -> list[GenCell]:
    """The scenario's cells with the specification's answers, at the clients' addresses.

    A client whose address the target cannot tell is judged at an address in each cluster
    network of the pods' IP family in turn: a cell whose answer is the same at all of them
    is judged, one whose answer hinges on where the address lies is not applicable."""
    nets = tuple(mesh.cluster_networks)
    known, unknown = addresses(mesh)
    if not unknown:
        return cells(scenario, nets, mesh.cluster_default, addresses=known)[0]
    families = {ipaddress.ip_address(ip).version for ip in known.values()}
    candidates = [str(next(iter(n.hosts()))) for n in map(ipaddress.ip_network, nets)
                  if not families or n.version in families] or [generated.OUTSIDE_IP]
    variants = [{c.key: c for c in cells(scenario, nets, mesh.cluster_default,
                                         addresses={**known, **dict.fromkeys(unknown, at)})[0]}
                for at in candidates]
    first = variants[0]
    wrong_family = candidates == [generated.OUTSIDE_IP]  # no cluster network to be in

    def hinges(key: tuple[str, str]) -> bool:
        return wrong_family or len({_answer(v[key]) if key in v else None
                                    for v in variants}) > 1

    return [dataclasses.replace(c, not_applicable=(
        f"{unknown[c.row]}, and this cell's answer depends on which cluster network it is in"))
        if c.row in unknown and hinges(key) else c for key, c in first.items()]


def placed(mesh: Mesh, gen: Sequence[GenCell]) -> list[GenCell]:
    """The cells whose client the target can place (a cluster cannot place a client outside
    its networks); `expect_matrix` lists the others as not applicable, with the reason."""
    return [c for c in gen if not c.not_applicable and mesh.cannot_place(c.client) is None]


def _matrix(mesh: Mesh, gen: Sequence[GenCell], within: float) -> str | None:
    """None when every cell converges to its expectation within `within`, else the table.

    `within` is the bar for the policy to reach the proxy; probing a scenario's fifty cells
    takes time of its own (seconds on a loaded machine), so the wait is extended by the time
    `consecutive` rounds of probes take, measured by one round first."""
    start = time.monotonic()
    mesh.probe_many([_probe(c) for c in placed(mesh, gen)])
    rounds = (time.monotonic() - start) * current_timeouts().consecutive * 1.5
    try:
        expect_matrix(mesh, [Cell(c.row, c.col, c.client, c.dest, c.protocol, c.request,
                                  c.expected, _why(c), c.not_applicable) for c in gen],
                      within + rounds)
    except ConformanceFailure as e:
        return str(e)
    return None


def _probe(cell: GenCell) -> Probe:
    return Probe(cell.client, cell.dest, cell.protocol, cell.request)


def _why(cell: GenCell) -> str:
    """The specification's reason for a cell, with the rows it rests on."""
    return f"{cell.expectation.reason} [rows: {', '.join(cell.expectation.facts)}]"


def _sessions(mesh: Mesh, gen: Sequence[GenCell]) -> str | None:
    """Several requests on one connection each get their own cell's answer (F5.2, F5.10)."""
    by_client: dict[tuple[str, str, str], list[GenCell]] = {}
    for c in gen:
        if c.row in SESSION_CLIENTS and c.per_request:
            by_client.setdefault((c.row, str(c.dest.port), c.protocol), []).append(c)
    wrong = []
    for (row, port, protocol), group in by_client.items():
        if mesh.cannot_place(group[0].client) is not None:
            continue
        try:
            s = mesh.session(group[0].client, group[0].dest, protocol)
        except Unsupported:
            return None
        try:
            for c in [*group, *reversed(group)]:
                out = s.probe(**c.request)
                if not c.agrees(out):
                    wrong.append(f"  {row} -> {c.col} (request {s.connections} on one "
                                 f"{protocol} connection to {port}): expected {c.expected}, "
                                 f"observed {out.short()}; {_why(c)}")
        finally:
            s.close()
    return ("several requests on one connection:\n" + "\n".join(wrong)) if wrong else None


def _counter_key(mesh: Mesh, cell: GenCell) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The counter one probe of `cell` moves, and the labels that name who decided (F7.1,
    F7.2, F7.4 for 2.11, F7.5 for 2.12+)."""
    e = cell.expectation
    port = str(lab_port(cell))
    family = "http" if cell.per_request or e.expected.verdict is Verdict.NOT_FOUND else "tcp"
    if e.expected.verdict is Verdict.NOT_FOUND:
        name = "inbound_http_route_not_found_total"
    elif e.authorization is None:
        name = f"inbound_{family}_authz_deny_total"
    else:
        name = f"inbound_{family}_authz_allow_total"
    labels = [("target_port", port)]
    if mesh.profile.at_least("2.12"):
        kind, _, server = e.server.partition("/")
        labels += [("srv_kind", kind), ("srv_name", server)]
        if e.authorization is not None:
            akind, _, aname = e.authorization.partition("/")
            labels += [("authz_kind", akind), ("authz_name", aname)]
    else:
        labels.append(("srv_name", e.server.partition("/")[2] if e.server.startswith(
            "server/") else e.server))
        if e.authorization is not None:
            aname = e.authorization
            labels.append(("saz_name", aname.partition("/")[2] if aname.startswith(
                "serverauthorization/") else aname))
    return name, tuple(labels)


def lab_port(cell: GenCell) -> int:
    return next(number for name, number, _ in PORTS if name == cell.dest.port)


def _metrics(mesh: Mesh, gen: Sequence[GenCell], attempts: int = 3) -> str | None:
    """Each cell probed once more moves exactly its counter, labelled with the Server and the
    authorization that decided, and no other authorization counter of the lab ports. A pass
    in which a probe did not get its (converged) answer, e.g. one that timed out on a loaded
    machine, says nothing about the counters: it is tried again, `attempts` times in all."""
    found = None
    for _ in range(attempts):
        found = _metrics_once(mesh, gen)
        if found is None or not found.startswith("metrics pass:"):
            return found
    return found


def _metrics_once(mesh: Mesh, gen: Sequence[GenCell]) -> str | None:
    pods = [p for p in mesh.pods(lab.NAMESPACE, {"app": "server"}) if p.ready]
    if not pods:
        return "no Ready lab/server pod to read metrics from"
    pod = pods[-1]
    try:
        before = mesh.proxy_metrics(pod)
    except Unsupported:
        return None
    want: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    # an HTTP or gRPC client whose connection the proxy closes (opaque, denied) may see the
    # close mid-handshake as an error: such cells are left out here, the matrix has them
    gen = [c for c in gen if c.per_request or c.protocol == "tcp"
           or c.expectation.expected.verdict is Verdict.NOT_FOUND]
    for c, out in zip(gen, mesh.probe_many([_probe(c) for c in gen]), strict=True):
        if not c.agrees(out):
            return (f"metrics pass: {c.row} -> {c.col} no longer gets {c.expected}: "
                    f"{out.short()}")
        want[_counter_key(mesh, c)] += 1
    names = sorted({n for n, _ in want} | {
        f"inbound_{f}_authz_{d}_total" for f in ("http", "tcp") for d in ("allow", "deny")})
    ports = sorted({str(lab_port(c)) for c in gen})

    def seen() -> dict[Any, float]:
        now = mesh.proxy_metrics(pod)
        got: dict[Any, float] = {}
        for (name, labels) in want:
            got[(name, labels)] = (now.value(name, **dict(labels))
                                   - before.value(name, **dict(labels)))
        for name in names:
            for port in ports:
                got[(name, port)] = (now.value(name, target_port=port)
                                     - before.value(name, target_port=port))
        return got

    expected: dict[Any, float] = {k: float(v) for k, v in want.items()}
    for name in names:
        for port in ports:
            expected[(name, port)] = float(sum(v for (n, labels), v in want.items()
                                               if n == name and ("target_port", port) in labels))
    try:
        wait_for("every counter to move by exactly the traffic", seen,
                 lambda got: got == expected)
    except ConformanceFailure:
        got = seen()
        lines = [f"  {k}: expected +{expected[k]:g}, observed +{got.get(k, 0):g}"
                 for k in expected if got.get(k) != expected[k]]
        return "authorization counters after one probe of each cell:\n" + "\n".join(lines)
    return None


@dataclasses.dataclass
class Disagreement:
    """What a scenario got wrong: the table (or session lines) and the keys of the cells."""

    text: str
    keys: set[tuple[str, str]]
    part: str = "matrix"  # matrix, sessions or metrics


def _disagreement(mesh: Mesh, scenario: Scenario, within: float,
                  only: set[tuple[str, str]] | None = None) -> Disagreement | None:
    """None when every cell (or every cell of `only`) converges within `within` and, when all
    cells are observed, several requests on one connection agree too."""
    gen = _cells(mesh, scenario)
    if only is not None:
        gen = [c for c in gen if c.key in only]
        if not gen:
            return None
    text = _matrix(mesh, gen, within)  # a cell the target cannot place is reported as such
    gen = placed(mesh, gen)
    if text is not None:
        t = current_timeouts()
        keys = {c.key for c in gen if not all(
            c.agrees(mesh.probe(c.client, c.dest, c.protocol, **c.request))
            for _ in range(t.consecutive))}
        return Disagreement(text, keys or {c.key for c in gen})
    if only is not None:
        return None
    session = _sessions(mesh, gen)
    if session is not None:
        return Disagreement(session, set(), part="sessions")
    counters = _metrics(mesh, gen)
    return None if counters is None else Disagreement(counters, set(), part="metrics")


def _shrunk_report(mesh: Mesh, scenario: Scenario, first: Disagreement) -> str:
    """Shrink a failing scenario on the same mesh and say what is left, and how to replay.

    A candidate fails when the cells that failed first still disagree after a settle time
    (for a session failure: when the sessions still disagree once the matrix converged); the
    result is confirmed with the full consistency bar, else the whole scenario is reported."""
    t = current_timeouts()
    settle = min(t.consistency, SHRINK_SETTLE)
    applied: list[Any] = list(scenario.objects)

    def fails(candidate: Scenario) -> bool:
        try:
            _apply(mesh, candidate, applied)
        except TargetError:
            return False  # not a scenario Linkerd would accept: not a smaller failure
        finally:
            applied[:] = list(candidate.objects)
        if first.part != "matrix":
            found = _disagreement(mesh, candidate, t.consistency)
            return found is not None and found.part == first.part
        return _disagreement(mesh, candidate, settle, only=first.keys) is not None

    small, tried = shrink(scenario, fails)
    _apply(mesh, small, applied)
    confirmed = _disagreement(mesh, small, t.consistency)
    if confirmed is None:  # the settle time misled the shrinker: report the whole scenario
        small, confirmed = scenario, first
    faults = sorted(getattr(getattr(mesh, "faults", None), "names", ()) or ())
    gen = _cells(mesh, small)
    rows = sorted({f for c in gen for f in c.expectation.facts} | set(object_rows(small)),
                  key=lambda f: tuple(int(p) for p in f[1:].split(".")))
    return (f"generated scenario seed {scenario.seed} (Linkerd {scenario.version}) disagrees "
            f"with the specification; shrunk from size {size(scenario)} to {size(small)} "
            f"({len(small.objects)} objects) in {tried} tries.\n"
            f"replay: {replay_command(scenario.seed, scenario.version, faults)}\n"
            f"rows the minimal scenario rests on: {', '.join(rows)}\n"
            f"--- minimal scenario (applied over manifests/lab.yml) ---\n"
            f"{manifests_yaml(small)}\n--- failing cells ---\n{confirmed.text}")


@pytest.mark.facts("F1.3", "F1.4", "F1.5", "F1.6", "F1.7", "F2.2", "F2.3", "F2.6", "F2.8",
                   "F3.3", "F3.4", "F3.5", "F3.6", "F3.9", "F3.11", "F4.2", "F4.3", "F4.5",
                   "F4.6", "F4.7", "F4.9", "F4.10", "F4.11", "F4.14", "F4.15", "F5.1", "F5.2",
                   "F5.3", "F5.4", "F5.10", "F7.1", "F7.2", "F7.4", "F7.5")
def test_a_generated_scenario_gets_the_specified_answer_in_every_cell(mesh: Mesh,
                                                                      seed: int) -> None:
    """Apply the seed's scenario over the lab; every client kind on every port and protocol,
    several requests on one connection, and the authorization counters after one more probe
    of each cell, are what the specification says."""
    scenario = generate(seed, str(mesh.profile), tuple(mesh.cluster_networks))
    try:
        _apply(mesh, scenario)
    except TargetError as e:
        pytest.fail(f"seed {seed}: the target refused a generated scenario ({e}); the "
                    f"generator must only write objects Linkerd accepts:\n"
                    f"{manifests_yaml(scenario)}", pytrace=False)
    first = _disagreement(mesh, scenario, current_timeouts().consistency)
    if first is not None:
        if os.environ.get(NO_SHRINK):  # scripts/mutation-check: a failure is all it needs
            raise ConformanceFailure(f"seed {seed} disagrees (not shrunk: {NO_SHRINK} is set; "
                                     f"replay: {replay_command(seed, scenario.version)})\n"
                                     f"{first.text}")
        raise ConformanceFailure(_shrunk_report(mesh, scenario, first))
