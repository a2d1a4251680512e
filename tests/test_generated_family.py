"""The generated family: its generator is seeded and stays within what a version serves, its
shrinker finds small scenarios, and against the reference with a planted fault it finds the
disagreement and shrinks it to a scenario that names the fault's row."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from linkerd_conformance import generated
from linkerd_conformance.api import KNOWN_VERSIONS
from linkerd_conformance.reference.faults import FAULTS

REPO = Path(__file__).resolve().parents[1]
NETS = ("127.10.0.0/16", "127.18.0.0/16")


def test_a_seed_always_generates_the_same_scenario() -> None:
    a = generated.generate(7, "2.16", NETS)
    b = generated.generate(7, "2.16", NETS)
    assert a == b
    assert generated.generate(8, "2.16", NETS) != a


def test_scenarios_use_only_kinds_and_versions_the_linkerd_version_serves() -> None:
    for version in KNOWN_VERSIONS:
        for seed in range(1, 40):
            scenario = generated.generate(seed, version, NETS)
            for obj in scenario.objects:
                api = obj["apiVersion"]
                if version == "2.11":
                    assert obj["kind"] in ("Server", "ServerAuthorization"), (seed, obj)
                if api.endswith("v1beta3") and obj["kind"] == "Server":
                    assert version >= "2.16", (seed, version, obj)
                if "accessPolicy" in obj.get("spec", {}):
                    assert api.endswith("v1beta3"), (seed, obj)
            # every cell the specification answers, or a line saying why not
            cells, unspecified = generated.cells(scenario, NETS, "all-unauthenticated")
            assert cells and all(isinstance(u, str) for u in unspecified)


def test_the_fixed_seeds_reach_every_kind_client_and_protocol() -> None:
    """The family loses reach silently if a kind or a protocol stops being generated."""
    for version in ("2.11", "2.12", "2.16", "2.20"):
        kinds: set[str] = set()
        seen: set[tuple[str, str]] = set()
        excepts = routes_with_method = 0
        for seed in generated.fixed_seeds(12):
            scenario = generated.generate(seed, version, NETS)
            kinds |= {str(o["kind"]) for o in scenario.objects}
            text = generated.manifests_yaml(scenario)
            excepts += "except" in text
            routes_with_method += "method:" in text
            cells, _ = generated.cells(scenario, NETS, "all-unauthenticated")
            seen |= {(c.row, c.protocol) for c in cells}
        want = {"Server", "ServerAuthorization"}
        if version != "2.11":
            want |= {"AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication",
                     "HTTPRoute"}
            assert routes_with_method, version
        assert want <= kinds, (version, want - kinds)
        assert excepts, version
        missing = {(r, p) for r in generated.CLIENTS for p in ("http", "http2", "grpc", "tcp")}
        assert not missing - seen, (version, sorted(missing - seen))


def test_shrinking_keeps_only_what_the_failure_needs() -> None:
    """A predicate standing in for a mesh: fails while some ServerAuthorization has `except`."""
    scenario = next(s for s in (generated.generate(n, "2.12", NETS) for n in range(1, 200))
                    if "except" in generated.manifests_yaml(s) and len(s.objects) > 5)

    def fails(candidate: generated.Scenario) -> bool:
        return any(o["kind"] == "ServerAuthorization" and "except" in str(o)
                   for o in candidate.objects)

    small, tried = generated.shrink(scenario, fails)
    assert fails(small) and len(small.objects) == 1, generated.manifests_yaml(small)
    assert small.default is None
    assert generated.size(small) < generated.size(scenario) and tried < 400
    client = small.objects[0]["spec"]["client"]
    assert len(client["networks"]) == 1 and "except" in client["networks"][0]
    docs = list(yaml.safe_load_all(generated.manifests_yaml(small)))
    assert docs == [generated._plain(small.objects[0])]


def test_the_replay_command_names_seed_version_and_faults() -> None:
    assert generated.replay_command(12, "2.16", ["networks-except-ignored"]) == (
        "pytest -m conformance suites/test_generated.py --generated-seed 12 "
        "--linkerd-version 2.16 --reference-fault networks-except-ignored")


def _seeds_with_an_except(version: str, count: int) -> list[int]:
    out = []
    for seed in range(1, 400):
        s = generated.generate(seed, version, NETS)
        if any(o["kind"] == "ServerAuthorization" and "except" in str(o) for o in s.objects):
            out.append(seed)
        if len(out) == count:
            break
    return out


def test_the_family_finds_and_shrinks_a_planted_fault() -> None:
    """Run against the reference with `networks-except-ignored` (no check was written for it
    here): some seed disagrees, and the shrunk scenario is a Server and the ServerAuthorization
    with the `except`, printed with its replay command and the fault's row (F3.4)."""
    fault = "networks-except-ignored"
    seeds = _seeds_with_an_except("2.11", 6)
    cmd = [sys.executable, "-m", "pytest", "-m", "conformance", "-q", "-x", "-p",
           "no:cacheprovider", "-p", "no:randomly", "suites/test_generated.py",
           "--linkerd-version", "2.11", "--reference-fault", fault, "--diagnostics-dir", "",
           "--timeout", "consistency=5", *[a for s in seeds for a in ("--generated-seed", str(s))]]
    env = dict(os.environ, PYTHONPATH=str(REPO / "fixtures"))
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-2000:]
    found = re.search(r"seed (\d+) \(Linkerd 2.11\) disagrees .* shrunk from size (\d+) to "
                      r"(\d+) \((\d+) objects\)", out)
    assert found, out[-3000:]
    seed, before, after, objects = (int(g) for g in found.groups())
    assert after < before and objects <= 2, out[-3000:]
    assert (f"--generated-seed {seed} --linkerd-version 2.11 --reference-fault {fault}"
            in out)
    rows = re.search(r"rows the minimal scenario rests on: (.*)", out)
    assert rows and set(FAULTS[fault].facts) <= set(rows.group(1).split(", ")), out[-3000:]
    minimal = out.split("--- minimal scenario")[1].split("--- failing cells ---")[0]
    assert "except" in minimal and "kind: ServerAuthorization" in minimal, minimal
    assert "expected" in out.split("--- failing cells ---")[1]


def test_the_generator_is_pure_and_probes_the_labs_own_clients() -> None:
    """generated.py imports no pytest (lab.py does), so it writes the lab's clients, requests
    and annotated workloads out again: they must stay the lab's."""
    from linkerd_conformance import lab

    code = (REPO / "fixtures" / "linkerd_conformance" / "generated.py").read_text()
    assert "import pytest" not in code and "from . import lab" not in code
    assert set(generated.CLIENTS.values()) == {
        lab.MESHED, lab.UNMESHED, lab.MESHED_OUTSIDE, lab.UNMESHED_OUTSIDE, lab.OTHER_NS,
        lab.XLAB, lab.ANONYMOUS_TLS, lab.NODE}
    assert {k: lab.REQUESTS[k] for k in generated.REQUESTS} == generated.REQUESTS
    scenario = generated.generate(1, "2.20", NETS)
    for default in ("deny", None):
        s = dataclasses.replace(scenario, default=default)
        assert s.workloads() == (lab.with_default(default) if default else lab.objects())
