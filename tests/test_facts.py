"""docs/semantics.md, the fact ids the checks name, and scripts/facts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linkerd_conformance import facts

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "semantics.md"
SCRIPT = REPO / "scripts" / "facts"
#: The research fact sheet the doc restates; beside the repository on the project's machine,
#: absent on CI.
RESEARCH = REPO.parent / "shared" / "research" / "linkerd-semantics.md"

_FACTS_MARK = re.compile(r"mark\.facts\(([^)]*)\)")
_STRING = re.compile(r"""["']([^"']*)["']""")
_RESEARCH_ROW = re.compile(r"^\| \*\*(F(\d+)\.\d+)\*\*", re.MULTILINE)


def _named_in_suites() -> dict[str, set[str]]:
    """{fact id: suite files} for every id written in a `mark.facts(...)` in suites/."""
    named: dict[str, set[str]] = {}
    for path in sorted((REPO / "suites").glob("*.py")):
        for args in _FACTS_MARK.findall(path.read_text()):
            for fact_id in _STRING.findall(args):
                named.setdefault(fact_id, set()).add(path.name)
    return named


def test_every_id_a_suite_names_is_a_row() -> None:
    named = _named_in_suites()
    assert named, "no @pytest.mark.facts(...) found in suites/"
    rows = facts.load()
    unknown = {i: sorted(files) for i, files in named.items() if i not in rows}
    assert not unknown, f"fact ids named in suites/ that docs/semantics.md does not have: {unknown}"


class _Item:
    """Enough of a pytest item for check_items: a node id and its `facts` markers."""

    def __init__(self, nodeid: str, *marks: tuple[str, ...]) -> None:
        self.nodeid = nodeid
        self._marks = [pytest.mark.facts(*ids).mark for ids in marks]

    def iter_markers(self, name: str | None = None):
        return iter(m for m in self._marks if name is None or m.name == name)

    def get_closest_marker(self, name: str):
        return next(self.iter_markers(name), None)


def test_check_items_stops_at_an_unknown_id_with_one_sentence() -> None:
    items = [_Item("suites/test_x.py::test_ok", ("F3.6",)),
             _Item("suites/test_x.py::test_y", ("F3.6",), ("F1.1", "F3.99", "F4.77"))]
    with pytest.raises(pytest.UsageError) as caught:
        facts.check_items(items)
    message = str(caught.value)
    assert message == ("check suites/test_x.py::test_y names fact F3.99, which "
                       "docs/semantics.md does not have")
    assert "\n" not in message


def test_check_items_accepts_known_ids_on_every_marker() -> None:
    facts.check_items([_Item("suites/test_x.py::test_z", ("F1.1",), ("F10.12", "F3.6"))])
    assert facts.item_facts(_Item("n", ("F1.1",), ("F3.6", "F1.1"))) == ["F1.1", "F3.6"]


def test_unknown_ids_keeps_order_and_reports_each_once() -> None:
    assert facts.unknown_ids(["F1.1", "F9.99", "F3.6", "F9.99", "F0.1"]) == ["F9.99", "F0.1"]


@pytest.mark.skipif(not RESEARCH.is_file(),
                    reason=f"the research fact sheet is not beside the repository ({RESEARCH})")
def test_doc_has_the_research_rows_of_sections_1_to_10_and_marks_its_own() -> None:
    research = [m.group(1) for m in _RESEARCH_ROW.finditer(RESEARCH.read_text())
                if 1 <= int(m.group(2)) <= 10]
    assert research, f"no fact rows found in {RESEARCH}"
    rows = facts.load()
    # the research rows, in order; a row this project added (read from the sources it cites)
    # says so with `*project row*`
    assert [i for i in rows if i in research] == research
    for fact_id, fact in rows.items():
        if fact_id not in research:
            assert "*project row*" in fact.text, f"{fact_id} is not a research row"


def test_no_row_is_empty_and_markings_are_regular() -> None:
    rows = facts.load()
    for fact_id, fact in rows.items():
        assert fact.id == fact_id
        for name in ("section", "text", "versions", "source"):
            assert getattr(fact, name).strip(), f"{fact_id} has an empty {name}"
        assert fact.section.split(".")[0] == fact_id[1:].split(".")[0], fact_id
        if fact.not_checkable is not None:
            assert len(fact.not_checkable) > 10, f"{fact_id}: say why it is not checkable"
    # the CI-setup rows can never be observed by an end-to-end check
    assert {"F8.8", "F8.9", "F8.10"} <= {i for i, f in rows.items() if f.not_checkable}
    # markings of the research sheet are kept
    assert "*(code)*" in rows["F2.7"].text and "UNCONFIRMED" in rows["F5.7"].text
    assert not rows["F3.6"].versioned and rows["F2.14"].versioned


@pytest.mark.parametrize("line, error", [
    ("| **F1.1** | text | all versions | src |", "five cells"),
    ("| **F1.1** | text |  | src | |", "empty versions"),
    ("| **F1.1** | text | all versions | src | checked later |", "not yet checked"),
    ("| **F2.1** | text | all versions | src | |", "not the section"),
])
def test_a_malformed_row_is_refused_naming_its_line(line: str, error: str) -> None:
    with pytest.raises(facts.FactsError, match=error) as caught:
        facts.parse(f"# t\n\n## 1. One\n\n| id | b | v | s | n |\n|---|---|---|---|---|\n{line}\n")
    assert "line 7" in str(caught.value)


def test_escaped_pipes_and_not_checkable_notes_parse() -> None:
    rows = facts.parse("## 4. Four\n| **F4.1** | a `x\\|y` b | 2.12+ | s | not checkable: why |\n")
    assert rows["F4.1"].text == "a `x|y` b"
    assert rows["F4.1"].not_checkable == "why" and rows["F4.1"].versioned


def test_a_not_yet_checked_note_parses_and_is_not_a_not_checkable_one() -> None:
    rows = facts.parse("## 4. Four\n| **F4.1** | a | 2.12+ | s | not yet checked: needs X |\n")
    assert rows["F4.1"].not_yet == "needs X" and rows["F4.1"].not_checkable is None


def test_every_row_no_check_names_says_why_and_no_checked_row_says_not_yet() -> None:
    """The rows waiting for a check carry `not yet checked: <reason>`; a row that a check
    names drops it (the note would be stale)."""
    named = _named_in_suites()
    rows = facts.load()
    silent = sorted(i for i, f in rows.items()
                    if i not in named and not f.not_checkable and not f.not_yet)
    assert not silent, f"rows no check names, without `not yet checked: <reason>`: {silent}"
    stale = sorted(i for i, f in rows.items() if i in named and f.not_yet)
    assert not stale, f"rows a check names that still say `not yet checked`: {stale}"


def test_env_var_names_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "semantics.md"
    other.write_text("## 1. One\n| **F1.1** | text | all versions | src | |\n")
    monkeypatch.setenv(facts.ENV_VAR, str(other))
    assert list(facts.load()) == ["F1.1"]
    monkeypatch.setenv(facts.ENV_VAR, str(tmp_path / "missing.md"))
    with pytest.raises(facts.FactsError, match="is not a file"):
        facts.load()


def test_coverage_joins_checks_and_the_faults_that_catch_them() -> None:
    items = [("suites/a.py::t1", ["F3.6"]), ("suites/a.py::t2", ["F3.6", "F1.1"])]
    table = {"2.11": {"suites/a.py::t1": ["wildcard-as-exact"]},
             "2.20": {"suites/a.py::t2": ["deny-default-ignored", "wildcard-as-exact"]}}
    cover = facts.coverage(items, table)
    assert cover["F3.6"].checks == ["suites/a.py::t1", "suites/a.py::t2"]
    assert cover["F3.6"].faults == ["deny-default-ignored", "wildcard-as-exact"]
    assert cover["F1.1"].faults == ["deny-default-ignored", "wildcard-as-exact"]
    assert not cover["F1.2"].checked and cover["F1.2"].faults == []
    assert list(cover) == list(facts.load())


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))


def test_script_help() -> None:
    assert os.access(SCRIPT, os.X_OK), "scripts/facts is not executable"
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    assert "--linkerd-version" in done.stdout


def test_script_ends_with_the_two_shares() -> None:
    start = time.monotonic()
    done = _run()
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-2:]
    assert re.fullmatch(r"\d{1,3}% of fact rows checked", last[0]), last
    assert re.fullmatch(r"\d{1,3}% of versioned fact rows checked", last[1]), last
    assert "Rows not checkable" in done.stdout and "F8.9" in done.stdout
    assert "NO REASON GIVEN" not in done.stdout  # every unchecked row says why
    assert elapsed < 60, f"scripts/facts took {elapsed:.0f} s"
