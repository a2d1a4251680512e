"""The recorded operations of a full cluster run must be what a fresh run counts."""

from __future__ import annotations

from collections.abc import Mapping

from linkerd_conformance.targets import budget


def assert_operations_recorded(version: str, counted: Mapping[str, int]) -> None:
    """The counts that do not depend on polling equal `suites/cluster-operations.yaml`'s, so
    the `--plan` estimate stands on what a run really does (`scripts/cluster-budget --write`
    records them after a change)."""
    recorded = budget.recorded(version)
    assert recorded is not None, (f"no operations recorded for {version}: run "
                                  f"scripts/cluster-budget --linkerd-version {version} --write")
    differ = {k: (recorded.get(k, 0), counted.get(k, 0)) for k in budget.DETERMINISTIC
              if recorded.get(k, 0) != counted.get(k, 0)}
    assert not differ, (f"operations of a full {version} run (recorded, counted) differ: "
                        f"{differ}; run scripts/cluster-budget --linkerd-version {version} "
                        "--write if the change is meant")
