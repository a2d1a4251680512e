"""The prober image's file layout imports, with only what the image installs (cluster-review A1).

No Docker here: the layout is rebuilt from the Dockerfile's own `COPY` lines (honouring the
repository's `.dockerignore`, the build context's), and imported by `python -I` behind an import
guard that refuses every top-level module that is neither stdlib nor installed by the
Dockerfile's `pip install` (with its dependencies), as the image would.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "fixtures" / "linkerd_conformance" / "prober" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


# --- reading the Dockerfile ----------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comment lines dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            word, _, rest = whole.partition(" ")
            found.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def _words(args: str) -> list[str]:
    """An instruction's arguments, exec (JSON) form or shell form, without `--flag`s."""
    words = json.loads(args) if args.startswith("[") else shlex.split(args)
    return [w for w in words if not w.startswith("--")]


def copies(text: str) -> list[tuple[list[str], str]]:
    """Each `COPY`'s (sources, destination); a `COPY --from` of another stage would not count."""
    found = []
    for word, args in instructions(text):
        if word in ("COPY", "ADD"):
            assert word == "COPY" and "--from" not in args, f"unsupported: {word} {args}"
            *sources, dest = _words(args)
            found.append((sources, dest))
    return found


def pip_requirements(text: str) -> list[Requirement]:
    """The requirements of every `pip install` in a `RUN`."""
    found = []
    for word, args in instructions(text):
        if word != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            parts = shlex.split(command)
            if parts[:2] == ["pip", "install"] or parts[1:4] == ["-m", "pip", "install"]:
                after = parts[parts.index("install") + 1:]
                found += [Requirement(p) for p in after if not p.startswith("-")]
    return found


def env_value(text: str, name: str) -> str:
    """An `ENV name=value` of the Dockerfile (key=value form)."""
    for word, args in instructions(text):
        if word == "ENV":
            for pair in shlex.split(args):
                key, sep, value = pair.partition("=")
                if sep and key == name:
                    return value
    raise AssertionError(f"the Dockerfile sets no ENV {name}")


# --- .dockerignore (moby's patternmatcher, without `!` exceptions) ------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.index("]", i)
            out += pattern[i:end + 1]
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(f"^{out}$")


class DockerIgnore:
    """A `.dockerignore`: a path is excluded if it, or a directory above it, matches a pattern
    (the context walk skips an excluded directory whole). Patterns are relative to the context
    root, a leading `/` and a trailing `/` mean nothing, and a bare name matches only at the
    root."""

    def __init__(self, text: str) -> None:
        self.patterns: list[str] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            assert not line.startswith("!"), f"exceptions are not modelled here: {line}"
            cleaned = str(PurePosixPath("/", line)).lstrip("/")
            self.patterns.append(cleaned or ".")
        self._regexes = [_pattern_regex(p) for p in self.patterns]

    def excluded(self, path: str) -> bool:
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        return any(r.match(p) for p in prefixes for r in self._regexes)


# --- the image's layout and installed modules ---------------------------------------------------


def build_layout(root: Path) -> Path:
    """Copy what the Dockerfile COPYs into `root` as the image would have it; returns the
    directory that is the image's PYTHONPATH."""
    text = DOCKERFILE.read_text()
    ignore = DockerIgnore(DOCKERIGNORE.read_text())
    entries = copies(text)
    assert entries, "the Dockerfile COPYs nothing"
    for sources, dest in entries:
        assert dest.startswith("/"), f"relative COPY destination {dest}"
        target = root / dest.lstrip("/")
        into_dir = dest.endswith("/") or len(sources) > 1
        for source in sources:
            matches = sorted(REPO.glob(source.rstrip("/"))) if any(c in source for c in "*?[") \
                else [REPO / source.rstrip("/")]
            for src in matches:
                assert src.exists(), f"COPY source {source} is missing from the repository"
                if src.is_dir():
                    for f in sorted(p for p in src.rglob("*") if p.is_file()):
                        rel = f.relative_to(REPO).as_posix()
                        if not ignore.excluded(rel):
                            out = target / f.relative_to(src)
                            out.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copyfile(f, out)
                elif not ignore.excluded(src.relative_to(REPO).as_posix()):
                    out = target / src.name if into_dir else target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, out)
    return root / env_value(text, "PYTHONPATH").lstrip("/")


def image_modules() -> set[str]:
    """Top-level modules of the distributions the Dockerfile pip-installs, with their
    dependencies (as installed here, which is what pip would resolve them to)."""
    todo = [r.name for r in pip_requirements(DOCKERFILE.read_text())]
    assert todo, "the Dockerfile pip-installs nothing"
    dists: set[str] = set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in dists:
            continue
        dists.add(name)
        for line in importlib.metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return {module for module, owners in importlib.metadata.packages_distributions().items()
            if any(canonicalize_name(d) in dists for d in owners)}


#: Run by `python -I -c`, argv: the image's PYTHONPATH, the allowed non-stdlib modules.
GUARD = """\
import importlib.abc, sys
ALLOWED = {*sys.stdlib_module_names, *sys.argv[2].split(","), "linkerd_conformance"}
class NotInImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in ALLOWED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the prober image)",
                                      name=name)
        return None
sys.meta_path.insert(0, NotInImage())
sys.path.insert(0, sys.argv[1])
"""

IMPORT = GUARD + """\
import linkerd_conformance.prober, linkerd_conformance.prober.serve
import linkerd_conformance.prober.frontdoor  # a cluster's front door runs it in the pod
outside = sorted(m.__file__ for n, m in sys.modules.items()
                 if n.partition(".")[0] == "linkerd_conformance"
                 and not m.__file__.startswith(sys.argv[1]))
assert not outside, outside
print("imported", linkerd_conformance.prober.__file__)
"""

SERVE = GUARD + """\
import runpy
sys.argv = ["prober", "serve", "--host", "127.0.0.1", "--http", "0", "--grpc", "0", "--tcp", "0"]
runpy.run_module("linkerd_conformance.prober", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def allowed() -> str:
    modules = image_modules()
    assert {"h2", "hpack", "hyperframe", "grpc", "google"} <= modules, modules
    assert not {"pytest", "yaml", "kubernetes", "cryptography"} & modules, modules
    return ",".join(sorted(modules))


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_layout(tmp_path_factory.mktemp("prober-image"))


def run_in_image(code: str, pythonpath: Path, allowed: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", "-c", code, str(pythonpath), allowed],
                          capture_output=True, text=True, timeout=60, cwd=pythonpath)


def test_the_layout_has_the_package_top_and_the_prober_only(layout: Path) -> None:
    package = layout / "linkerd_conformance"
    assert (package / "__init__.py").is_file() and (package / "prober" / "serve.py").is_file()
    assert not (package / "lab.py").exists() and not (package / "reference").exists()
    assert not list(layout.rglob("__pycache__"))


def test_the_prober_imports_in_the_image_layout(layout: Path, allowed: str) -> None:
    done = run_in_image(IMPORT, layout, allowed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported " + str(layout)), done.stdout


@pytest.mark.parametrize("module", ["pytest", "yaml", "kubernetes", "cryptography"])
def test_the_guard_refuses_what_the_image_lacks(tmp_path: Path, layout: Path, allowed: str,
                                                 module: str) -> None:
    copy = tmp_path / "app"
    shutil.copytree(layout, copy)
    init = copy / "linkerd_conformance" / "__init__.py"
    init.write_text(init.read_text() + f"\nimport {module}\n")
    done = run_in_image(IMPORT, copy, allowed)
    assert done.returncode != 0
    assert f"No module named '{module}' (not in the prober image)" in done.stderr, done.stderr


def test_dockerignore_keeps_secrets_out_and_copy_sources_in() -> None:
    ignore = DockerIgnore(DOCKERIGNORE.read_text())
    for secret in (".pytest-kind/kind/identity/issuer.key", ".pytest-kind/kind/kubeconfig",
                   "issuer.key", "fixtures/x/issuer.key", "kubeconfig", "kubeconfig-kind",
                   ".git/config", ".venv/bin/python", "venv/bin/python",
                   "fixtures/linkerd_conformance/prober/__pycache__/probe.cpython-311.pyc",
                   "fixtures/linkerd_conformance.egg-info/PKG-INFO",
                   "conformance-diagnostics/check/pods.yaml",
                   "tests/test_prober.py", "suites/test_metrics.py", "scripts/self-check"):
        assert ignore.excluded(secret), secret
    for sources, _ in copies(DOCKERFILE.read_text()):
        for source in sources:
            src = REPO / source.rstrip("/")
            assert not ignore.excluded(src.relative_to(REPO).as_posix()), source
            if src.is_dir():
                kept = [p for p in src.rglob("*.py") if "__pycache__" not in p.parts]
                assert kept
                for f in kept:
                    assert not ignore.excluded(f.relative_to(REPO).as_posix()), f


def test_prober_serve_starts_in_the_image_layout(layout: Path, allowed: str) -> None:
    proc = subprocess.Popen([sys.executable, "-I", "-c", SERVE, str(layout), allowed],
                            stderr=subprocess.PIPE, text=True, cwd=layout)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("prober: serving "), line + proc.stderr.read()
        ports = ast.literal_eval(line.removeprefix("prober: serving "))
        assert set(ports) == {"http", "grpc", "tcp"}, ports
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(f"http://127.0.0.1:{ports['http']}/ready", timeout=5) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
