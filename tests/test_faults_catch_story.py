"""Every workshop story check fails when the reference mesh has the matching fault.

A check that cannot fail is a defect: this runs each check against a reference mesh with a
realistic bug switched on and expects the check to report it. The table names, per fault,
the checks that must catch it; every story check must be in it at least once.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import replay

REPO = Path(__file__).resolve().parents[1]
STORY = REPO / "suites" / "test_workshop_story.py"

CATCHES: dict[str, list[str]] = {
    "default-misread-as-deny": [
        "test_before_lockdown_every_client_reaches_web",
        "test_before_lockdown_any_pod_calls_emoji_and_voting",
    ],
    "annotation-read-live": ["test_deny_annotation_changes_nothing_until_restart"],
    "injector-skips-namespace-config": ["test_restart_gives_new_pods_the_deny_default"],
    "deny-default-ignored": [
        "test_after_restart_without_policy_web_calls_to_emoji_are_permission_denied",
        "test_after_restart_without_policy_web_calls_to_voting_are_permission_denied",
        "test_after_restart_without_policy_votebot_calls_to_web_get_403",
        "test_under_deny_unauthorized_probes_keep_pods_from_becoming_ready",
    ],
    "grpc-denial-as-403": [
        "test_after_restart_without_policy_web_calls_to_emoji_are_permission_denied",
        "test_after_restart_without_policy_web_calls_to_voting_are_permission_denied",
        "test_with_the_policy_a_bad_pod_calling_emoji_directly_is_denied",
    ],
    "denied-http-reaches-app": [
        "test_after_restart_without_policy_votebot_calls_to_web_get_403",
        "test_wildcard_edit_locks_out_the_bad_votebot_without_restart",
    ],
    "named-port-unresolved": [
        "test_with_the_policy_emojivoto_works",
        "test_authorizing_admin_and_app_probe_ports_lets_pods_become_ready",
    ],
    "meshtls-ignores-identity": [
        "test_with_the_policy_a_bad_pod_calling_emoji_directly_is_denied",
    ],
    "service-account-namespace-ignored": [
        "test_with_the_policy_a_bad_pod_named_web_is_still_denied",
    ],
    "unauthenticated-excludes-meshed": [
        "test_with_the_policy_the_bad_votebot_still_reaches_web",
    ],
    "policy-updates-ignored": [
        "test_wildcard_edit_locks_out_the_bad_votebot_without_restart",
    ],
    "wildcard-matches-any": [
        "test_wildcard_edit_locks_out_the_bad_votebot_without_restart",
    ],
    "wildcard-as-exact": ["test_wildcard_edit_keeps_the_emojivoto_votebot_allowed"],
    "informational-headers-to-all": ["test_wildcard_edit_denies_unmeshed_clients"],
    "probes-authorized-in-2.11": [
        "test_under_deny_unauthorized_probes_keep_pods_from_becoming_ready",
    ],
}


def _story_checks() -> list[str]:
    tree = ast.parse(STORY.read_text())
    return [n.name for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


def test_every_story_check_is_caught_by_some_fault() -> None:
    caught = {c for checks in CATCHES.values() for c in checks}
    missing = [c for c in _story_checks() if c not in caught]
    assert not missing, f"story checks that no fault is shown to catch: {missing}"
    unknown = caught - set(_story_checks())
    assert not unknown, f"the table names checks that do not exist: {sorted(unknown)}"


#: the story's waits, shortened: a check caught by a fault fails when its deadline runs out
FAST = ["--timeout", "consistency=3", "--timeout", "hold=0.3", "--diagnostics-dir", ""]


@pytest.mark.slow
def test_each_fault_makes_its_checks_fail() -> None:
    """Every (fault, check) pair of the table: the check, against a reference mesh with the
    fault, fails (a check under several faults runs once per fault, in as many runs)."""
    story = STORY.relative_to(REPO).as_posix()
    pairs = [(f"{story}::{check}", fault) for fault, checks in CATCHES.items()
             for check in checks]
    survived = replay.survivors(replay.replay("2.11", pairs, FAST, chunk=6,
                                              parallel=4))
    assert not survived, "\n".join(
        f"with fault {fault!r} these checks did not fail: {checks}"
        for fault, checks in survived.items())
