"""The conformance report: its schema, its features, --enforce, and paths refused at start."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from linkerd_conformance import features, report

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "schemas" / "conformance-report.schema.json").read_text())
FAST = "workshop and before_lockdown"


def _validate(data: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def _pytest(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    # option values are given as --name=value: a bare path would count in pytest's rootdir
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "conformance", "-p", "no:cacheprovider",
         "-p", "no:randomly", "-q", "--rootdir", str(REPO), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300)


# ---- the registry ----

def test_every_feature_a_check_names_is_registered_once_with_one_sentence() -> None:
    used = set()
    for path in (REPO / "suites").glob("*.py"):
        for args in re.findall(r"feature\(([^)]*)\)", path.read_text()):
            used |= set(re.findall(r'"([^"]+)"', args))
    assert used, "no feature marker found in suites/"
    assert not features.unknown(sorted(used)), features.unknown(sorted(used))
    for name, sentence in features.FEATURES.items():
        assert re.fullmatch(r"[a-z][a-z-]*", name), name
        assert sentence.endswith(".") and sentence.count(". ") == 0, (name, sentence)


def test_the_schema_knows_exactly_the_registered_features() -> None:
    assert SCHEMA["$defs"]["featureName"]["enum"] == list(features.FEATURES)


def test_feature_options_are_parsed_as_comma_lists() -> None:
    assert features.parse(["a,b", " c ", "a", ""]) == ["a", "b", "c"]


# ---- building: every result kind ----

def _result(name: str, result: str, feats: list[str], **extra: object) -> dict:
    return {"check": name, "nodeid": f"suites/test_x.py::{name}", "result": result,
            "facts": ["F1.1"], "features": feats, "seconds": 0.25, "waits": [], **extra}


def _synthetic() -> list[dict]:
    becomes = {"what": "http from a to b", "expected": "allowed (status 200)", "met": True,
               "attempts": 4, "converged_after": 0.5, "waited": 0.6}
    stays = {"what": "http from a to b", "expected": "http-forbidden", "met": True,
             "attempts": 9, "held": 1.0}
    broken = {"what": "http from a to b", "expected": "allowed (status 200)", "met": False,
              "attempts": 30, "waited": 10.0}
    na = {"what": "matrix of 4 cells", "cells_not_applicable": [
        {"row": "outside", "col": "web", "reason": "no pod has an address outside"}]}
    matrix = {"what": "matrix of 3 cells", "met": True, "rounds": 5, "waited": 1.25}
    return [
        # success: every check ran and passed
        _result("test_ok", "passed", ["server"], waits=[becomes, stays]),
        # failure: one failed (with diagnostics), one passed
        _result("test_broken", "failed", ["denial"], waits=[broken],
                diagnostics="conformance-diagnostics/test_broken"),
        _result("test_denial_ok", "passed", ["denial"]),
        # partial: one passed, one skipped
        _result("test_matrix", "passed", ["matrix"], waits=[na, matrix]),
        _result("test_matrix_elsewhere", "skipped", ["matrix"], waits=[na],
                reason="no cell of this truth table can be placed on the kind target"),
        # skipped: none ran
        _result("test_old", "skipped", ["undeclared-ports"], reason="not applicable to 2.20"),
    ]


def _build(results: list[dict], **kw: object) -> dict:
    impl = report.implementation({"organization": "Org", "contact": ["@file"]},
                                 {"project": "Proj", "contact": ["@a", "@b"], "url": None})
    return report.build(results, implementation=impl, linkerd_version="stable-2.11.5",
                        profile="2.11", target="kind", faults=["wildcard-as-exact"], **kw)


def test_a_synthetic_report_of_every_result_kind_is_valid() -> None:
    data = _build(_synthetic(), supported=["server", "denial", "metrics"], exempt=["workshop"])
    _validate(data)
    _validate(json.loads(json.dumps(data)))
    _validate(yaml.safe_load(yaml.safe_dump(data, sort_keys=False)))
    by = {f["name"]: f for f in data["features"]}
    assert {n: f["result"] for n, f in by.items()} == {
        "server": "success", "denial": "failure", "matrix": "partial",
        "undeclared-ports": "skipped", "metrics": "skipped"}
    assert by["metrics"]["checks"] == []
    assert data["statistics"] == {"passed": 3, "failed": 1, "skipped": 2}
    ok = by["server"]["checks"][0]
    assert (ok["attempts"], ok["secondsToConverge"]) == (13, 0.5)
    assert by["denial"]["checks"][0]["diagnostics"] == "conformance-diagnostics/test_broken"
    assert by["denial"]["checks"][1]["secondsToConverge"] is None
    assert by["undeclared-ports"]["checks"][0]["reason"] == "not applicable to 2.20"
    tables = data["truthTables"]
    assert [(t["check"], t["result"], t.get("rounds")) for t in tables] == [
        ("test_matrix", "passed", 5), ("test_matrix_elsewhere", "skipped", None)]
    assert tables[0]["cellsNotApplicable"][0]["reason"] == "no pod has an address outside"
    assert data["implementation"] == {"organization": "Org", "project": "Proj", "url": "",
                                      "version": "", "contact": ["@a", "@b"]}
    assert data["supportedFeatures"] == ["server", "denial", "metrics"]
    assert data["exemptFeatures"] == ["workshop"]
    assert report.enforcement_failures(data) == [
        "supported feature 'denial' failed: 1 of 2 checks failed (suites/test_x.py::test_broken)",
        "supported feature 'metrics' was not checked: none of its checks was selected"]


@pytest.mark.parametrize(("results", "expected"), [
    (["passed", "passed"], "success"), (["passed", "failed"], "failure"),
    (["skipped", "failed"], "failure"), (["passed", "skipped"], "partial"),
    (["skipped", "skipped"], "skipped"), ([], "skipped")])
def test_a_feature_result(results: list[str], expected: str) -> None:
    assert report.feature_result(results) == expected


def test_a_report_that_breaks_the_schema_is_refused() -> None:
    data = _build(_synthetic())
    data["features"][0]["result"] = "flaky"
    with pytest.raises(AssertionError, match="flaky"):
        _validate(data)


# ---- real runs ----

def test_a_real_run_writes_a_valid_yaml_report(tmp_path: Path) -> None:
    impl = tmp_path / "impl.yaml"
    impl.write_text("organization: Buoyant\nproject: from-file\ncontact: ['@file']\n")
    out = tmp_path / "r.yaml"
    done = _pytest("-k", FAST, f"--conformance-report={out}", f"--implementation-file={impl}",
                   "--implementation-project=Linkerd", "--implementation-contact=@a",
                   "--implementation-contact=@b", "--conformance-mode=nightly",
                   "--supported-features=workshop", f"--diagnostics-dir={tmp_path / 'd'}")
    assert done.returncode == 0, done.stdout + done.stderr
    data = yaml.safe_load(out.read_text())
    _validate(data)
    assert data["implementation"]["organization"] == "Buoyant"
    assert data["implementation"]["project"] == "Linkerd"
    assert data["implementation"]["contact"] == ["@a", "@b"]
    assert (data["mode"], data["target"], data["profile"]) == ("nightly", "reference", "2.20")
    assert [f["name"] for f in data["features"]] == ["workshop"]
    assert data["features"][0]["result"] == "success"
    assert data["statistics"] == {"passed": 2, "failed": 0, "skipped": 0}
    assert all(c["attempts"] > 0 for c in data["features"][0]["checks"])
    assert {c["result"] for c in data["checks"]} == {"passed"}  # the flat list stays


def test_a_json_path_gets_json(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = _pytest("-k", FAST, f"--conformance-report={out}", "--linkerd-version=2.11")
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    _validate(data)
    assert data["profile"] == "2.11"


def test_enforce_fails_a_run_whose_supported_feature_fails(tmp_path: Path) -> None:
    out = tmp_path / "r.yaml"
    done = _pytest("-k", "workshop and wildcard_edit_keeps", "--supported-features=workshop",
                   "--enforce", "--reference-fault=wildcard-as-exact",
                   f"--conformance-report={out}", f"--diagnostics-dir={tmp_path / 'd'}")
    assert done.returncode != 0, done.stdout
    data = yaml.safe_load(out.read_text())
    _validate(data)
    assert [(f["name"], f["result"]) for f in data["features"]] == [("workshop", "failure")]
    assert "--enforce: supported feature 'workshop' failed: 1 of 1 checks failed" in done.stdout


def test_enforce_fails_a_run_in_which_no_check_of_a_supported_feature_ran() -> None:
    done = _pytest("-k", FAST, "--supported-features=workshop,metrics", "--enforce")
    assert done.returncode == 1, done.stdout
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("--enforce:")]
    assert lines == ["--enforce: supported feature 'metrics' was not checked: "
                     "none of its checks was selected"], done.stdout
    assert "2 passed" in done.stdout


def test_enforce_passes_when_every_supported_feature_passed() -> None:
    done = _pytest("-k", FAST, "--supported-features=workshop", "--enforce")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--enforce:" not in done.stdout


def test_an_exempt_feature_s_checks_are_skipped(tmp_path: Path) -> None:
    out = tmp_path / "r.yaml"
    done = _pytest("-k", FAST, "--exempt-features=workshop", f"--conformance-report={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    data = yaml.safe_load(out.read_text())
    assert data["features"][0]["result"] == "skipped"
    assert data["exemptFeatures"] == ["workshop"]
    assert "exempt" in data["features"][0]["checks"][0]["reason"]


# ---- usage errors: one sentence, before anything runs ----

def _refused(done: subprocess.CompletedProcess[str], needle: str) -> None:
    out = done.stdout + done.stderr
    assert done.returncode not in (0, 1), out
    errors = [ln for ln in out.splitlines() if ln.startswith("ERROR:")]
    assert len(errors) == 1, out
    assert needle in errors[0], out
    assert "Traceback" not in out, out


@pytest.mark.parametrize(("args", "needle"), [
    (("--reference-propagation-delay=-1",),
     "--reference-propagation-delay -1 must not be negative"),
    (("--conformance-report=/proc/x/r.yaml",),
     "--conformance-report /proc/x/r.yaml cannot be written: the directory /proc/x does not"),
    (("--conformance-report=/proc/r.yaml",), "--conformance-report /proc/r.yaml cannot be written"),
    (("--conformance-report=/nonexistent-dir/r.yaml",), "/nonexistent-dir does not exist"),
    (("--diagnostics-dir=/proc/diag",), "--diagnostics-dir /proc/diag cannot be written"),
    (("--supported-features=workshop,teleport",), "--supported-features 'teleport' is not a"),
    (("--exempt-features=warp",), "--exempt-features 'warp' is not a feature"),
    (("--supported-features=workshop", "--exempt-features=workshop"),
     "'workshop' cannot be both supported and exempt"),
    (("--enforce",), "--enforce needs the features to enforce"),
], ids=["negative-delay", "report-in-proc-subdir", "report-in-proc", "report-missing-dir",
        "diagnostics-in-proc", "unknown-supported", "unknown-exempt", "both", "enforce-alone"])
def test_refused_at_start_with_one_sentence(args: tuple[str, ...], needle: str) -> None:
    _refused(_pytest("--collect-only", *args), needle)


def test_an_unwritable_report_is_refused_before_any_check_runs() -> None:
    done = _pytest("-k", FAST, "--conformance-report=/proc/x/r.yaml")
    _refused(done, "cannot be written")
    assert "passed" not in done.stdout


def test_an_implementation_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    impl = tmp_path / "impl.yaml"
    impl.write_text("- Buoyant\n")
    _refused(_pytest("--collect-only", f"--implementation-file={impl}"), "must be a mapping")
    impl.write_text("organisation: Buoyant\n")
    _refused(_pytest("--collect-only", f"--implementation-file={impl}"),
             "unknown field 'organisation'")


def test_a_check_naming_an_unregistered_feature_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_unregistered.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.conformance\n"
        "@pytest.mark.feature('teleportation')\n"
        "def test_beam_me_up():\n"
        "    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q",
         "-m", "conformance", str(tmp_path / "test_unregistered.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    _refused(done, "test_unregistered.py::test_beam_me_up names the feature 'teleportation'")


def test_one_check_can_still_be_selected_by_node_id(tmp_path: Path) -> None:
    out = tmp_path / "r.yaml"
    node = "suites/test_workshop_story.py::test_before_lockdown_every_client_reaches_web"
    done = _pytest(node, f"--conformance-report={out}", "--supported-features=workshop",
                   "--enforce")
    assert done.returncode == 0, done.stdout + done.stderr
    data = yaml.safe_load(out.read_text())
    assert [c["nodeid"] for c in data["checks"]] == [node]
    assert data["features"][0]["result"] == "success"
