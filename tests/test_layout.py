"""The arrows of DESIGN.md run one way, so that agreement between readings means something.

suites -> the package's public API only (never the reference mesh); the reference mesh and the
expectations module never import each other (two independent readings of the specification);
the prober never imports the reference (the reference is judged by it); targets never import
suites.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "fixtures" / "linkerd_conformance"


def imports(path: Path) -> set[str]:
    """Every module a file imports, with relative imports resolved inside the package."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(REPO / "fixtures").with_suffix("").parts[:-1]) \
        if path.is_relative_to(REPO / "fixtures") else ""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def files(*parts: str) -> list[Path]:
    root = REPO.joinpath(*parts)
    return sorted(root.rglob("*.py")) if root.is_dir() else [root]


@pytest.mark.parametrize(("sources", "forbidden"), [
    (("suites",), "linkerd_conformance.reference"),
    (("fixtures", "linkerd_conformance", "expectations.py"), "linkerd_conformance.reference"),
    (("fixtures", "linkerd_conformance", "prober"), "linkerd_conformance.reference"),
    (("fixtures", "linkerd_conformance", "reference"), "linkerd_conformance.expectations"),
    (("fixtures", "linkerd_conformance", "targets"), "suites"),
], ids=["suites-not-reference", "expectations-not-reference", "prober-not-reference",
        "reference-not-expectations", "targets-not-suites"])
def test_imports_run_one_way(sources: tuple[str, ...], forbidden: str) -> None:
    offenders = [f"{p.relative_to(REPO)} imports {m}" for p in files(*sources)
                 for m in sorted(imports(p))
                 if m == forbidden or m.startswith(forbidden + ".")]
    assert not offenders, offenders


def test_checks_import_only_the_public_package() -> None:
    """A check names what it uses from `linkerd_conformance` itself (its `__all__`), never from
    a submodule such as `linkerd_conformance.plugin` or `.waiting`: the public API is one
    place, and a module may move without breaking a check."""
    offenders = []
    for path in files("suites"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "linkerd_conformance.") or isinstance(node, ast.Import) and any(
                    a.name.startswith("linkerd_conformance.") for a in node.names):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, offenders


def test_every_public_name_resolves_and_the_package_imports_lazily() -> None:
    """Every name in `__all__` can be imported, and importing the package alone loads neither
    pytest-only modules nor tenacity (the prober image has neither)."""
    import subprocess
    import sys

    code = ("import sys, linkerd_conformance as l; "
            "assert not any(m in sys.modules for m in ('tenacity', 'yaml', "
            "'linkerd_conformance.waiting', 'linkerd_conformance.lab')), sorted(sys.modules); "
            "[getattr(l, n) for n in l.__all__]; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO / "fixtures"),
                                         "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
