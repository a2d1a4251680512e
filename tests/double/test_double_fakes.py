"""The cluster double's fake kind, docker, kubectl and linkerd behave like the real tools.

Each test names the `behaviours.BEHAVIOURS` ids it exercises with `covers(...)`; the last test
checks every row has a source and is exercised. A tiny stand-in API server answers what the
fakes read, so these tests do not depend on `apiserver.py`.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
FAKEBIN = HERE / "fakebin"
REPO = HERE.parent.parent

_spec = importlib.util.spec_from_file_location("double_behaviours", HERE / "behaviours.py")
behaviours = importlib.util.module_from_spec(_spec)
sys.modules["double_behaviours"] = behaviours
_spec.loader.exec_module(behaviours)

COVERED: set[str] = set()


def covers(*ids: str):
    known = {b.id for b in behaviours.BEHAVIOURS}
    unknown = set(ids) - known
    assert not unknown, f"not in BEHAVIOURS: {unknown}"
    COVERED.update(ids)
    return lambda fn: fn


# --------------------------------------------------------------------------- stand-in API


class Api:
    """Objects by URL path; POSTs recorded."""

    def __init__(self):
        self.objects: dict[str, object] = {}
        self.posts: list[tuple[str, dict]] = []
        self.kubernetes_version = "v1.23.17"
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body):
                raw = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/version":
                    return self.reply(200, {"gitVersion": api.kubernetes_version})
                if path in api.objects:
                    return self.reply(200, api.objects[path])
                self.reply(404, {"kind": "Status", "reason": "NotFound", "code": 404})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.posts.append((self.path, body))
                if self.path == "/_double/v1/cluster":
                    api.kubernetes_version = body["kubernetes_version"]
                self.reply(201, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_namespace(self, name="linkerd"):
        self.objects[f"/api/v1/namespaces/{name}"] = {"kind": "Namespace",
                                                      "metadata": {"name": name}}

    def add_config(self, version="stable-2.11.5"):
        self.add_namespace()
        self.objects["/api/v1/namespaces/linkerd/configmaps/linkerd-config"] = {
            "kind": "ConfigMap", "data": {"values": f"linkerdVersion: {version}\n"}}

    def add_crds(self, names):
        for n in names:
            self.objects[f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}"] = {
                "kind": "CustomResourceDefinition", "metadata": {"name": n}}


@pytest.fixture(scope="module")
def _server():
    api = Api()
    yield api
    api.server.shutdown()


class Env:
    def __init__(self, tmp: Path, api: Api):
        self.tmp = tmp
        self.api = api
        self.state_file = tmp / "state.json"
        self.kubeconfig = tmp / "kubeconfig"
        self.state({"apiserver": api.url, "clusters": {}, "images": [], "loaded": {},
                    "linkerd_version": "stable-2.11.5", "kubectl_version": "v1.27.16"})
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "kind-lab",
               "clusters": [{"name": "kind-lab", "cluster": {"server": api.url}}],
               "contexts": [{"name": "kind-lab",
                             "context": {"cluster": "kind-lab", "user": "kind-lab"}}],
               "users": [{"name": "kind-lab", "user": {}}]}
        self.kubeconfig.write_text(yaml.safe_dump(doc))

    def state(self, update: dict | None = None) -> dict:
        data = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        if update:
            data.update(update)
            self.state_file.write_text(json.dumps(data))
        return data

    def run(self, *argv: str, path: str | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(CLUSTER_DOUBLE_STATE=str(self.state_file), KUBECONFIG=str(self.kubeconfig),
                   PATH=path or f"{FAKEBIN}{os.pathsep}{os.environ.get('PATH', '')}",
                   HOME=str(self.tmp))
        return subprocess.run([str(FAKEBIN / argv[0]), *argv[1:]], capture_output=True,
                              text=True, env=env, timeout=60)


@pytest.fixture
def env(tmp_path, _server):
    _server.objects.clear()
    _server.posts.clear()
    _server.kubernetes_version = "v1.23.17"
    return Env(tmp_path, _server)


# --------------------------------------------------------------------------- kind


@covers("kind-get-clusters-none", "kind-create-default-image", "kind-create-kubeconfig",
        "kind-create-progress", "kind-create-exists", "kind-delete-cluster")
def test_kind_cluster_lifecycle(env):
    done = env.run("kind", "get", "clusters")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "No kind clusters found.\n")
    kc = env.tmp / "kc.yaml"
    done = env.run("kind", "create", "cluster", "--name=lab", f"--kubeconfig={kc}")
    assert done.returncode == 0, done.stderr
    assert "✓ Ensuring node image (kindest/node:v1.36.1) 🖼" in done.stderr
    assert done.stderr.startswith('Creating cluster "lab" ...\n')
    assert env.api.posts[-1][0] == "/_double/v1/cluster"
    assert env.api.posts[-1][1]["kubernetes_version"] == "v1.36.1"
    assert env.state()["clusters"]["lab"]["node_image"] == "kindest/node:v1.36.1"
    cfg = yaml.safe_load(kc.read_text())
    assert cfg["current-context"] == "kind-lab"
    assert cfg["clusters"][0]["cluster"]["server"] == env.api.url
    assert env.run("kind", "get", "clusters").stdout == "lab\n"
    again = env.run("kind", "create", "cluster", "--name", "lab", "--kubeconfig", str(kc))
    assert again.returncode == 1
    assert again.stderr == ('ERROR: failed to create cluster: node(s) already exist for a '
                            'cluster with the name "lab"\n')
    gone = env.run("kind", "delete", "cluster", "--name", "lab", "--kubeconfig", str(kc))
    assert gone.returncode == 0 and 'Deleting cluster "lab" ...' in gone.stderr
    assert yaml.safe_load(kc.read_text())["contexts"] == []
    assert env.run("kind", "delete", "cluster", "--name", "lab").returncode == 0


@covers("kind-create-default-image")
def test_kind_image_sets_the_kubernetes_version(env):
    env.state({"kind_version": "v0.20.0"})
    assert env.run("kind", "create", "cluster", "--name=a").returncode == 0
    assert env.api.kubernetes_version == "v1.27.3"
    done = env.run("kind", "create", "cluster", "--name=b", "--image=kindest/node:v1.23.17")
    assert done.returncode == 0
    assert env.state()["clusters"]["b"]["kubernetes_version"] == "v1.23.17"
    assert env.api.kubernetes_version == "v1.23.17"


@covers("kind-load-absent", "docker-build-layout")
def test_kind_load_needs_a_built_image(env):
    env.run("kind", "create", "cluster", "--name=lab")
    done = env.run("kind", "load", "docker-image", "--name", "lab", "prober:dev")
    assert (done.returncode, done.stderr) == (1, 'ERROR: image: "prober:dev" not present locally\n')
    ctx = env.tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM python:3.11-slim\nRUN python -c \"import json\"\n")
    assert env.run("docker", "build", "-t", "prober:dev", str(ctx)).returncode == 0
    assert env.run("kind", "load", "docker-image", "--name", "lab", "prober:dev").returncode == 0
    assert env.state()["loaded"] == {"lab": ["prober:dev"]}
    done = env.run("kind", "load", "docker-image", "--name", "nope", "prober:dev")
    assert done.stderr == 'ERROR: no nodes found for cluster "nope"\n'


@covers("kind-get-kubeconfig-internal", "kind-version")
def test_kind_kubeconfig_and_version(env):
    env.run("kind", "create", "cluster", "--name=lab")
    internal = yaml.safe_load(env.run("kind", "get", "kubeconfig", "--name", "lab",
                                      "--internal").stdout)
    assert internal["clusters"][0]["cluster"]["server"] == "https://lab-control-plane:6443"
    external = yaml.safe_load(env.run("kind", "get", "kubeconfig", "--name", "lab").stdout)
    assert external["clusters"][0]["cluster"]["server"] == env.api.url
    missing = env.run("kind", "get", "kubeconfig", "--name", "x")
    assert missing.returncode == 1 and "could not locate any control plane nodes" in missing.stderr
    assert env.run("kind", "version").stdout.startswith("kind v0.32.0 go")


# --------------------------------------------------------------------------- docker


@covers("docker-daemon-down")
def test_docker_info(env):
    assert env.run("docker", "info").returncode == 0
    env.state({"docker_down": True})
    done = env.run("docker", "info")
    assert done.returncode == 1
    assert done.stderr == ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                           "Is the docker daemon running?\n")


@covers("docker-build-layout", "docker-build-failure-output", "docker-image-inspect-absent")
def test_docker_build_of_the_prober_image_evaluates_its_layout(env):
    dockerfile = REPO / "fixtures/linkerd_conformance/prober/Dockerfile"
    if not dockerfile.exists():
        pytest.skip("no prober Dockerfile")
    done = env.run("docker", "build", "-t", "prober:dev", "-f", str(dockerfile), str(REPO))
    absent = env.run("docker", "image", "inspect", "prober:dev")
    if done.returncode == 0:  # the image's layout imports: recorded
        assert "prober:dev" in env.state()["images"]
        assert env.run("docker", "image", "inspect", "prober:dev").returncode == 0
        return
    lines = done.stderr.splitlines()
    assert lines[0] == '#0 building with "default" instance using docker driver'
    assert any("RUN python -c" in ln and "/" in ln for ln in lines)
    assert "Traceback" in done.stderr
    assert lines[-1].startswith('ERROR: failed to solve: process "/bin/sh -c python -c '
                                '\\"import linkerd_conformance.prober')
    assert lines[-1].endswith("did not complete successfully: exit code: 1")
    assert (absent.returncode, absent.stderr) == (1, "Error: No such image: prober:dev\n")


@covers("docker-build-layout", "docker-build-failure-output")
def test_docker_build_sees_only_the_copied_files_and_installed_packages(env):
    ctx = env.tmp / "ctx"
    (ctx / "pkg").mkdir(parents=True)
    (ctx / "pkg" / "__init__.py").write_text("from . import extra\n")
    (ctx / "pkg" / "extra.py").write_text("import yaml\n")
    (ctx / "pkg" / "secret.txt").write_text("x")
    (ctx / ".dockerignore").write_text("pkg/extra.py\n")
    (ctx / "Dockerfile").write_text(
        "FROM python:3.11-slim\nENV PYTHONPATH=/app\n"
        "RUN pip install \"h2>=4\"\nCOPY pkg/ /app/pkg/\n"
        "RUN python -c \"import pkg\"\n")
    done = env.run("docker", "build", "-t", "t1", str(ctx))
    assert done.returncode == 1
    assert "ImportError" in done.stderr and "extra" in done.stderr  # .dockerignore honoured
    lines = done.stderr.splitlines()
    assert lines[0] == '#0 building with "default" instance using docker driver'
    assert '#8 [4/4] RUN python -c "import pkg"' in lines
    assert lines[-1] == ('ERROR: failed to solve: process "/bin/sh -c python -c \\"import pkg'
                         '\\"" did not complete successfully: exit code: 1')
    (ctx / ".dockerignore").write_text("")
    done = env.run("docker", "build", "-t", "t2", str(ctx))
    assert done.returncode == 1  # yaml is on the host but not pip-installed in the image
    assert "No module named 'yaml'" in done.stderr
    (ctx / "pkg" / "extra.py").write_text("import h2, hpack, json\n")
    done = env.run("docker", "build", "-t", "t3", str(ctx))
    assert done.returncode == 0, done.stderr
    assert env.state()["images"] == ["t3"]


# --------------------------------------------------------------------------- kubectl


@covers("kubectl-version-short", "kubectl-version-short-removed", "kubectl-version-json")
def test_kubectl_version(env):
    done = env.run("kubectl", "version", "--client", "--short")
    assert done.returncode == 0 and done.stdout.startswith("Client Version: v1.27.16\n")
    assert "Flag --short has been deprecated" in done.stderr
    env.state({"kubectl_version": "v1.23.17"})
    done = env.run("kubectl", "version", "--client", "--short")
    assert (done.stdout, done.stderr) == ("Client Version: v1.23.17\n", "")
    env.state({"kubectl_version": "v1.28.0"})
    done = env.run("kubectl", "version", "--client", "--short")
    assert done.returncode == 1 and done.stderr.startswith("error: unknown flag: --short\n")
    info = json.loads(env.run("kubectl", "version", "--client", "-o", "json").stdout)
    assert info["clientVersion"]["gitVersion"] == "v1.28.0"
    assert info["clientVersion"]["minor"] == "28"
    done = env.run("kubectl", "get", "pods")
    assert done.returncode == 1 and "`get pods` is not modelled" in done.stderr


# --------------------------------------------------------------------------- linkerd


@covers("client-go-context-missing", "linkerd-version-client", "linkerd-version-server")
def test_linkerd_version(env):
    done = env.run("linkerd", "version", "--client", "--short")
    assert done.stdout == "stable-2.11.5\n"
    assert env.run("linkerd", "version", "--short").stdout == "stable-2.11.5\nunavailable\n"
    env.api.add_config("stable-2.11.4")
    assert env.run("linkerd", "version", "--short").stdout == "stable-2.11.5\nstable-2.11.4\n"
    bad = env.run("linkerd", "--context", "foo", "version", "--short")
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr.startswith('Error: context "foo" does not exist\n')
    env.state({"linkerd_version": "edge-24.8.2"})
    assert env.run("linkerd", "version", "--client", "--short").stdout == "edge-24.8.2\n"


@covers("linkerd-install-flags", "linkerd-cobra-unknown", "linkerd-install-output",
        "linkerd-install-crds", "linkerd-211-heartbeat-v1beta1")
def test_linkerd_211_install(env):
    done = env.run("linkerd", "install", "--crds")
    assert done.returncode == 1 and done.stderr.startswith("Error: unknown flag: --crds\n")
    done = env.run("linkerd", "install", "--default-inbound-policy", "deny")
    assert done.stderr.startswith("Error: unknown flag: --default-inbound-policy\n")
    done = env.run("linkerd", "frobnicate")
    assert done.stderr == ('Error: unknown command "frobnicate" for "linkerd"\n'
                           "Run 'linkerd --help' for usage.\n")
    done = env.run("linkerd", "install", "--set", "policyController.defaultAllowPolicy=deny",
                   "--registry", "mirror:5000/l5d")
    assert done.returncode == 0, done.stderr
    docs = list(yaml.safe_load_all(done.stdout))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Namespace", "linkerd") in kinds
    assert ("CustomResourceDefinition", "servers.policy.linkerd.io") in kinds
    cron = next(d for d in docs if d["kind"] == "CronJob")
    assert cron["apiVersion"] == "batch/v1beta1"
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    values = yaml.safe_load(cm["data"]["values"])
    assert values["policyController"]["defaultAllowPolicy"] == "deny"
    assert values["linkerdVersion"] == "stable-2.11.5"
    images = {c["image"] for d in docs if d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]
              + d["spec"]["template"]["spec"]["initContainers"]}
    assert images == {"mirror:5000/l5d/proxy:stable-2.11.5",
                      "mirror:5000/l5d/controller:stable-2.11.5",
                      "mirror:5000/l5d/policy-controller:stable-2.11.5",
                      "mirror:5000/l5d/proxy-init:v1.5.3"}


@covers("linkerd-install-identity-objects")
def test_linkerd_install_renders_the_identity_it_is_given(env):
    env.state({"linkerd_version": "stable-2.11.5"})
    files = []
    for name, text in (("ca.crt", "ANCHOR\n"), ("issuer.crt", "ISSUER\n"),
                       ("issuer.key", "KEY\n")):
        (env.tmp / name).write_text(text)
        files.append(str(env.tmp / name))
    done = env.run("linkerd", "install", "--ignore-cluster",
                   "--identity-trust-anchors-file", files[0],
                   "--identity-issuer-certificate-file", files[1],
                   "--identity-issuer-key-file", files[2])
    assert done.returncode == 0, done.stderr
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(done.stdout) if d}
    secret = docs["linkerd-identity-issuer"]
    assert (secret["kind"], secret["metadata"]["namespace"]) == ("Secret", "linkerd")
    assert {k: base64.b64decode(v) for k, v in secret["data"].items()} == {
        "crt.pem": b"ISSUER", "key.pem": b"KEY"}
    roots = docs["linkerd-identity-trust-roots"]
    assert roots["kind"] == "ConfigMap" and roots["data"] == {"ca-bundle.crt": "ANCHOR\n"}
    bare = env.run("linkerd", "install", "--ignore-cluster")
    assert "linkerd-identity-issuer" not in bare.stdout


@covers("linkerd-install-flags", "linkerd-install-crds-first", "linkerd-install-crds",
        "linkerd-install-default-inbound-policy", "linkerd-install-identity-files",
        "linkerd-install-config-exists", "linkerd-install-output")
def test_linkerd_212_install_flow(env):
    env.state({"linkerd_version": "stable-2.12.6"})
    done = env.run("linkerd", "install")
    assert (done.returncode, done.stderr) == (1, "Linkerd CRDs must be installed first. Run "
                                                 "linkerd install with the --crds flag.\n")
    crds = env.run("linkerd", "install", "--crds")
    assert crds.returncode == 0
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(crds.stdout)}
    assert "authorizationpolicies.policy.linkerd.io" in names
    assert not any("gateway" in n for n in names)
    env.api.add_crds(names)
    done = env.run("linkerd", "install", "--default-inbound-policy", "audit")
    assert done.returncode == 1 and done.stderr.startswith(
        "Error: --default-inbound-policy must be one of: all-authenticated, all-unauthenticated,"
        " cluster-authenticated, cluster-unauthenticated, deny (got audit)\n")
    missing = env.tmp / "ca.crt"
    done = env.run("linkerd", "install", "--identity-trust-anchors-file", str(missing))
    assert done.stderr.startswith(f"Error: open {missing}: no such file or directory\n")
    done = env.run("linkerd", "install", "--default-inbound-policy", "deny")
    assert done.returncode == 0, done.stderr
    docs = list(yaml.safe_load_all(done.stdout))
    values = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["values"])
    assert values["proxy"]["defaultInboundPolicy"] == "deny"
    assert not any(d["kind"] == "CronJob" for d in docs)
    env.api.add_config("stable-2.12.6")
    for argv in (["install"], ["install", "--crds"]):
        done = env.run("linkerd", *argv)
        assert done.returncode == 1
        assert ("Reason: ConfigMap/linkerd-config already exists." in done.stderr), argv


@covers("linkerd-install-crds", "linkerd-install-gateway-api-required", "linkerd-install-output")
def test_linkerd_gateway_api_and_images_by_version(env):
    env.state({"linkerd_version": "edge-24.8.2"})  # 2.16: bundles gateway API CRDs
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(
        env.run("linkerd", "install", "--crds").stdout)}
    assert "httproutes.gateway.networking.k8s.io" in names
    env.state({"linkerd_version": "edge-25.10.7"})  # 2.19
    done = env.run("linkerd", "install", "--crds")
    assert done.returncode == 1
    assert "The Gateway API CRDs must be installed prior to installing Linkerd" in done.stderr
    env.api.add_crds(["httproutes.gateway.networking.k8s.io"])
    done = env.run("linkerd", "install", "--crds")
    assert done.returncode == 0
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(done.stdout)}
    assert not any("gateway" in n for n in names)
    env.api.add_crds(names)
    env.state({"linkerd_version": "edge-26.7.1"})  # 2.20: only proxy and controller
    docs = list(yaml.safe_load_all(env.run("linkerd", "install", "--ignore-cluster").stdout))
    images = {c["image"].rsplit(":", 1)[0] for d in docs if d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]
              + d["spec"]["template"]["spec"]["initContainers"]}
    assert images == {"cr.l5d.io/linkerd/proxy", "cr.l5d.io/linkerd/controller"}


@covers("linkerd-check-output", "linkerd-check-pre-existing-ns", "linkerd-211-kubectl-check",
        "kubectl-version-short")
def test_linkerd_211_check_pre(env):
    done = env.run("linkerd", "check", "--pre")
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("kubernetes-api\n--------------\n√ can initialize the client\n")
    assert "√ is running the minimum kubectl version\n" in done.stdout
    assert done.stdout.endswith("\nStatus check results are √\n")
    env.api.add_namespace()
    done = env.run("linkerd", "check", "--pre")
    assert done.returncode == 1
    assert ("× control plane namespace does not already exist\n"
            '    The "linkerd" namespace already exists\n'
            "    see https://linkerd.io/2.11/checks/#pre-ns for hints\n") in done.stdout
    assert done.stdout.endswith("Status check results are ×\n")
    short = env.run("linkerd", "check", "--pre", "-o", "short")
    assert short.stdout.startswith("Linkerd core checks\n===================\n\n")
    assert "√" not in short.stdout.replace("results are √", "")


@covers("linkerd-211-kubectl-check", "kubectl-version-short-removed")
def test_linkerd_211_check_runs_the_kubectl_on_path(env):
    env.state({"kubectl_version": "v1.28.0"})
    done = env.run("linkerd", "check", "--pre")
    assert done.returncode == 1
    assert "× is running the minimum kubectl version\n    exit status 1\n" in done.stdout
    # a kubectl earlier on PATH is the one exec'd
    other = env.tmp / "bin"
    other.mkdir()
    script = other / "kubectl"
    script.write_text("#!/bin/sh\necho 'Client Version: v1.16.0'\n")
    script.chmod(0o755)
    path = f"{other}{os.pathsep}{FAKEBIN}{os.pathsep}{os.path.dirname(shutil.which('sh'))}"
    done = env.run("linkerd", "check", "--pre", path=path)
    assert ("kubectl is on version [1.16.0], but version [1.17.0] or more recent is required"
            in done.stdout)


@covers("linkerd-check-k8s-version", "linkerd-check-gateway-api", "linkerd-check-post-install")
def test_linkerd_check_versions_and_post_install(env):
    env.state({"linkerd_version": "edge-26.7.1"})
    env.api.kubernetes_version = "v1.30.0"
    done = env.run("linkerd", "check", "--pre")
    assert ("Kubernetes is on version [1.30.0], but version [1.31.0] or more recent is required"
            in done.stdout)
    assert "× Gateway API CRDs are installed" in done.stdout
    assert "pre-kubernetes-setup" not in done.stdout  # fatal: stops there
    assert "see https://linkerd.io/2/checks/#gateway-api-crd for hints" in done.stdout
    env.state({"linkerd_version": "edge-25.10.7"})  # 2.19: no gateway check yet
    env.api.kubernetes_version = "v1.29.0"
    done = env.run("linkerd", "check", "--pre")
    assert done.returncode == 0 and "Gateway" not in done.stdout
    done = env.run("linkerd", "check")
    assert done.returncode == 1
    assert "× control plane CustomResourceDefinitions exist" in done.stdout
    env.state({"linkerd_version": "stable-2.11.5"})
    env.api.kubernetes_version = "v1.23.17"
    done = env.run("linkerd", "check")
    assert "× 'linkerd-config' config map exists" in done.stdout
    env.api.add_config()
    assert env.run("linkerd", "check").returncode == 0


@covers("linkerd-diagnostics-proxy-metrics", "linkerd-diagnostics-policy-syntax",
        "linkerd-211-no-diagnostics-policy")
def test_linkerd_diagnostics(env):
    env.api.objects["/_double/v1/namespaces/app/pods/web-1/metrics"] = "inbound_total 1\n"
    env.api.objects["/_double/v1/namespaces/app/pods/web-1/policy/8080"] = {
        "protocol": {"kind": "detect"}}
    done = env.run("linkerd", "diagnostics", "proxy-metrics", "-n", "app", "po/web-1")
    assert done.stdout == "inbound_total 1\n"
    done = env.run("linkerd", "diagnostics", "policy", "-n", "app", "po/web-1", "8080",
                   "-o", "yaml")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: unknown shorthand flag: 'n' in -n\n")
    env.state({"linkerd_version": "stable-2.12.6"})
    done = env.run("linkerd", "diagnostics", "policy", "-n", "app", "po/web-1", "8080",
                   "-o", "yaml")
    assert done.stderr.startswith("Error: unknown shorthand flag: 'o' in -o\n")
    done = env.run("linkerd", "diagnostics", "policy", "-n", "app", "web-1", "8080")
    assert done.returncode == 0 and yaml.safe_load(done.stdout) == {"protocol": {"kind":
                                                                                 "detect"}}
    env.state({"linkerd_version": "stable-2.13.0"})
    done = env.run("linkerd", "diagnostics", "policy", "-n", "app", "po/web-1", "8080",
                   "-o", "json")
    assert json.loads(done.stdout) == {"protocol": {"kind": "detect"}}
    done = env.run("linkerd", "diagnostics", "policy", "-n", "app", "web-1", "8080")
    assert done.stderr.startswith("Error: invalid resource string: web-1\n")


@covers("kind-docker-network", "docker-network-inspect", "docker-run-flags",
        "docker-run-image-absent", "docker-run-container-network", "ip-route-add",
        "docker-exec-absent", "docker-exec-not-found", "docker-rm-absent")
def test_docker_containers_on_the_kind_network(env):
    """The fake docker's containers on kind's network, as the real CLI answers (the probes
    they run are tests/test_outside_clients.py's)."""
    assert env.run("docker", "network", "inspect", "kind").returncode == 1
    assert env.run("kind", "create", "cluster", "--name", "n").returncode == 0
    net = json.loads(env.run("docker", "network", "inspect", "kind").stdout)[0]
    subnet = net["IPAM"]["Config"][0]["Subnet"]
    node = next(c for c in net["Containers"].values() if c["Name"] == "n-control-plane")
    assert node["IPv4Address"].endswith("/" + subnet.split("/")[1])
    done = env.run("docker", "run", "--bogus", "img")
    assert (done.returncode, done.stderr.splitlines()[0]) == (125, "docker: unknown flag: --bogus")
    done = env.run("docker", "run", "-d", "--network", "kind", "absent:1", "idle")
    assert done.returncode == 125 and "Unable to find image 'absent:1' locally" in done.stderr
    image = "kindest/node:v1.36.1"  # the node image kind pulled
    done = env.run("docker", "run", "-d", "--name", "c", "--network", "kind", image, "x")
    assert done.returncode == 0 and len(done.stdout.strip()) == 64
    again = env.run("docker", "run", "-d", "--name", "c", "--network", "kind", image, "x")
    assert again.returncode == 125 and "Conflict" in again.stderr
    via = node["IPv4Address"].split("/")[0]
    helper = ["docker", "run", "--rm", "--network", "container:c", "--entrypoint", "ip", image,
              "route", "add", "10.244.0.0/16", "via"]
    done = env.run(*helper, via)
    assert (done.returncode, done.stderr) == (2, "RTNETLINK answers: Operation not permitted\n")
    with_cap = [*helper[:3], "--cap-add", "NET_ADMIN", *helper[3:]]
    assert env.run(*with_cap, "192.0.2.1").stderr == "Error: Nexthop has invalid gateway.\n"
    assert env.run(*with_cap, via).returncode == 0
    assert "File exists" in env.run(*with_cap, via).stderr
    done = env.run("docker", "exec", "c", "ip", "route")
    assert done.returncode == 126 and "executable file not found" in done.stderr
    done = env.run("docker", "exec", "gone", "python")
    assert (done.returncode, done.stderr) == (1, "Error response from daemon: No such "
                                                 "container: gone\n")
    assert "container is running" in env.run("docker", "rm", "c").stderr
    done = env.run("docker", "rm", "-f", "c", "gone")
    assert (done.returncode, done.stdout) == (1, "c\n") and "No such container: gone" in done.stderr


# --------------------------------------------------------------------------- the table


def test_every_behaviour_has_a_source_and_a_test():
    ids = [b.id for b in behaviours.BEHAVIOURS]
    assert len(ids) == len(set(ids))
    for b in behaviours.BEHAVIOURS:
        assert b.source.strip() and b.behaviour.strip() and b.tool and b.versions, b.id
    assert set(ids) - COVERED == set()


def test_fakes_are_executable_scripts():
    for name in ("kind", "docker", "kubectl", "linkerd"):
        path = FAKEBIN / name
        assert os.access(path, os.X_OK)
        assert path.read_text().startswith("#!/usr/bin/env python3\n")


# --------------------------------------------------------------------------- the CLI checks


def _lab_objects(api: Api) -> None:
    pod = {"metadata": {"name": "web-1", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "ports": [
               {"name": "http", "containerPort": 8080}]}]}}
    api.objects["/api/v1/namespaces/app/pods"] = {"items": [pod]}
    api.objects["/apis/apps/v1/namespaces/app/deployments/web"] = {
        "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}}
    server = {"metadata": {"name": "web-http"},
              "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http"}}
    saz = {"metadata": {"name": "everyone"}, "spec": {"server": {"name": "web-http"}}}
    for v in ("v1alpha1", "v1beta1", "v1beta3"):
        api.objects[f"/apis/policy.linkerd.io/{v}/namespaces/app/servers/web-http"] = server
    for v in ("v1alpha1", "v1beta1"):
        api.objects[f"/apis/policy.linkerd.io/{v}/namespaces/app/serverauthorizations"] = {
            "items": [saz]}
    api.objects["/apis/policy.linkerd.io/v1alpha1/namespaces/app/authorizationpolicies"] = {
        "items": []}


@covers("linkerd-authz", "linkerd-diagnostics-policy-output")
def test_linkerd_authz_and_the_policy_output(env):
    _lab_objects(env.api)
    done = env.run("linkerd", "authz", "-n", "app", "deploy/web")
    assert done.stdout == "  SERVER  AUTHORIZATION  \nweb-http       everyone  \n", done.stdout
    env.state({"linkerd_version": "edge-24.8.2"})
    done = env.run("linkerd", "authz", "-n", "app", "deploy/web")
    assert done.stdout.splitlines() == [
        "ROUTE   SERVER    AUTHORIZATION_POLICY   SERVER_AUTHORIZATION   ",
        "*       web-http                         everyone               "], done.stdout
    served = {"labels": {"group": "", "kind": "default", "name": "deny"}}
    env.api.objects["/_double/v1/namespaces/app/pods/web-1/policy/8080"] = yaml.safe_dump(
        served)
    done = env.run("linkerd", "diagnostics", "policy", "-n", "app", "po/web-1", "8080")
    assert yaml.safe_load(done.stdout) == served and not done.stdout.startswith("{")
    env.state({"linkerd_version": "stable-2.12.6"})
    done = env.run("linkerd", "diagnostics", "policy", "-n", "app", "web-1", "8080")
    assert json.loads(done.stdout) == served and not done.stdout.endswith("\n")


@covers("linkerd-install-policy-controller-args", "linkerd-viz-allow-scrapes")
def test_linkerd_install_policy_args_and_allow_scrapes(env):
    def policy_args(*flags: str) -> list[str]:
        done = env.run("linkerd", "install", "--ignore-cluster", *flags)
        for d in yaml.safe_load_all(done.stdout):
            if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "linkerd-destination":
                return next(c["args"] for c in d["spec"]["template"]["spec"]["containers"]
                            if c["name"] == "policy")
        raise AssertionError(done.stdout + done.stderr)

    args = policy_args("--set", "policyController.defaultAllowPolicy=deny")
    assert "--default-policy=deny" in args and not any("probe-networks" in a for a in args)
    assert env.run("linkerd", "viz", "allow-scrapes", "-n", "app").returncode == 1
    env.state({"linkerd_version": "edge-26.7.1"})
    args = policy_args("--default-inbound-policy", "deny")
    assert "--default-policy=deny" in args and "--probe-networks=0.0.0.0/0,::/0" in args
    docs = [d for d in yaml.safe_load_all(env.run("linkerd", "viz", "allow-scrapes", "-n",
                                                  "app").stdout) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Server", "proxy-admin"), ("HTTPRoute", "proxy-metrics"), ("HTTPRoute", "proxy-probes"),
        ("AuthorizationPolicy", "prometheus-scrape"), ("AuthorizationPolicy", "proxy-probes")]
    assert docs[0]["apiVersion"] == "policy.linkerd.io/v1beta3"


@covers("linkerd-install-control-plane-defaults")
def test_linkerd_install_gives_the_control_plane_its_own_default(env):
    def defaults() -> dict[str, tuple[str, str]]:
        done = env.run("linkerd", "install", "--ignore-cluster", *flags)
        out = {}
        for d in yaml.safe_load_all(done.stdout):
            if d and d["kind"] == "Deployment":
                t = d["spec"]["template"]
                proxy = next(c for c in t["spec"]["containers"] if c["name"] == "linkerd-proxy")
                env_var = next(e["value"] for e in proxy["env"]
                               if e["name"] == "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY")
                out[d["metadata"]["name"]] = (
                    t["metadata"]["annotations"]["config.linkerd.io/default-inbound-policy"],
                    env_var)
        return out

    flags = ("--set", "policyController.defaultAllowPolicy=deny")
    all_u = ("all-unauthenticated", "all-unauthenticated")
    assert defaults() == {"linkerd-identity": ("all-unauthenticated", "cluster-unauthenticated"),
                          "linkerd-destination": all_u, "linkerd-proxy-injector": all_u}
    env.state({"linkerd_version": "edge-26.7.1"})
    flags = ("--default-inbound-policy", "deny")
    assert defaults() == {"linkerd-identity": all_u, "linkerd-destination": all_u,
                          "linkerd-proxy-injector": all_u}


@covers("linkerd-install-control-plane-port-names")
def test_linkerd_install_names_control_plane_ports_per_generation(env):
    def names() -> list[str]:
        done = env.run("linkerd", "install", "--ignore-cluster")
        return sorted(p["name"] for d in yaml.safe_load_all(done.stdout)
                      if d and d["kind"] == "Deployment"
                      for c in d["spec"]["template"]["spec"]["containers"]
                      for p in c.get("ports") or [])

    old = names()
    assert old.count("admin-http") == 5 and "dest-admin" not in old
    env.state({"linkerd_version": "edge-26.7.1"})
    new = names()
    assert "admin-http" not in new and {"dest-admin", "policy-admin", "ident-admin",
                                        "injector-admin", "spval-admin"} <= set(new)


@covers("linkerd-multicluster-link-commands")
def test_linkerd_multicluster_links_with_link_then_link_gen(env):
    def listed() -> list[str]:
        text = env.run("linkerd", "multicluster", "--help").stdout
        block = text.split("Available Commands:\n", 1)[1].split("\n\n", 1)[0]
        return [line.split()[0] for line in block.splitlines()]

    assert listed() == ["allow", "check", "gateways", "install", "link", "uninstall", "unlink"]
    link = env.run("linkerd", "multicluster", "link", "--help")
    assert link.returncode == 0 and "--api-server-address" in link.stdout and not link.stderr
    assert env.run("linkerd", "mc", "link-gen").stdout.startswith("Manages the multicluster")
    env.state({"linkerd_version": "edge-26.7.1"})
    assert listed() == ["allow", "check", "gateways", "install", "link-gen", "uninstall"]
    link = env.run("linkerd", "multicluster", "link", "--help")
    assert link.stderr == ('Command "link" is deprecated, please use `multicluster link-gen` '
                           "instead.\n") and "--cluster-name" in link.stdout
    gen = env.run("linkerd", "multicluster", "link-gen", "--help")
    assert gen.returncode == 0 and "--cluster-name" in gen.stdout and not gen.stderr


@covers("linkerd-inject-default-inbound-policy")
def test_linkerd_inject_default_inbound_policy(env, tmp_path):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}}}
    manifest = tmp_path / "in.yaml"
    manifest.write_text(yaml.safe_dump(dep))

    def inject(*flags: str) -> subprocess.CompletedProcess:
        env_ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env_.update(CLUSTER_DOUBLE_STATE=str(env.state_file), KUBECONFIG=str(env.kubeconfig))
        with manifest.open() as stdin:
            return subprocess.run([str(FAKEBIN / "linkerd"), "inject", *flags, "-"],
                                  stdin=stdin, capture_output=True, text=True, env=env_,
                                  timeout=60)

    done = inject("--ignore-cluster", "--default-inbound-policy", "deny")
    assert done.returncode == 1 and "unknown flag: --default-inbound-policy" in done.stderr
    env.state({"linkerd_version": "stable-2.12.6"})
    done = inject("--ignore-cluster", "--default-inbound-policy", "deny")
    [out] = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert out["spec"]["template"]["metadata"]["annotations"] == {
        "config.linkerd.io/default-inbound-policy": "deny", "linkerd.io/inject": "enabled"}
    assert 'deployment "web" injected' in done.stderr


@covers("linkerd-check-flags")
def test_linkerd_check_flags(env):
    env.api.add_crds(["servers.policy.linkerd.io"])
    done = env.run("linkerd", "check", "-o", "basic")
    assert done.returncode == 1 and "Invalid output type 'basic'" in done.stderr
    done = env.run("linkerd", "check", "--crds")
    assert done.returncode == 1 and "unknown flag: --crds" in done.stderr
    env.state({"linkerd_version": "stable-2.12.6"})
    env.api.add_crds([f"{k}.policy.linkerd.io" for k in (
        "servers", "serverauthorizations", "authorizationpolicies", "meshtlsauthentications",
        "networkauthentications", "httproutes")] + ["serviceprofiles.linkerd.io"])
    done = env.run("linkerd", "check", "--crds", "-o", "json")
    names = [c["categoryName"] for c in json.loads(done.stdout)["categories"]]
    assert names[-1] == "linkerd-crd" and "linkerd-existence" not in names, done.stdout


@covers("proxy-inbound-detect-timeout-env")
def test_the_doubles_proxies_declare_the_references_detect_timeout():
    from double.cluster import ClusterDouble
    from linkerd_conformance.api import Profile
    from linkerd_conformance.targets.frontdoor import parse_duration

    with ClusterDouble(Profile("2.20")) as double:
        proxy = double.apiserver._proxy_container({}, False)
        timeout = double.reference.detect_timeout
    env = {e["name"]: e["value"] for e in proxy["env"]}
    assert parse_duration(env["LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT"]) == timeout
    assert (parse_duration("10s"), parse_duration("500ms"), parse_duration("3"),
            parse_duration("1.5s")) == (10.0, 0.5, 3.0, None)


# --------------------------------------------------------------------------- multicluster


def _target_objects(api: Api, service_type: str = "NodePort") -> None:
    api.add_config()
    ns = "/api/v1/namespaces/linkerd-multicluster"
    api.objects[f"{ns}/serviceaccounts/linkerd-service-mirror-remote-access-default"] = {
        "kind": "ServiceAccount", "metadata": {"name": "linkerd-service-mirror-remote-access-"
                                                       "default"}}
    api.objects[f"{ns}/services/linkerd-gateway"] = {
        "kind": "Service", "metadata": {"name": "linkerd-gateway", "annotations": {
            "mirror.linkerd.io/gateway-identity": "linkerd-gateway.linkerd-multicluster."
                                                  "serviceaccount.identity.linkerd.cluster.local"}},
        "spec": {"type": service_type, "ports": [
            {"name": "mc-gateway", "port": 4143, "nodePort": 30001},
            {"name": "mc-probe", "port": 4191, "nodePort": 30002}]}}


@covers("linkerd-mc-install-flags", "linkerd-mc-install-output")
def test_linkerd_multicluster_install_renders_the_extension(env):
    refused = env.run("linkerd", "multicluster", "install")
    assert refused.returncode == 1 and "you need Linkerd to be installed in order to install " \
        "multicluster addons" in refused.stderr
    env.api.add_config()
    docs = list(yaml.safe_load_all(env.run("linkerd", "multicluster", "install",
                                           "--gateway-service-type", "NodePort").stdout))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Namespace", "linkerd-multicluster"), ("Deployment", "linkerd-gateway"),
            ("Service", "linkerd-gateway"), ("ServerAuthorization", "linkerd-gateway"),
            ("CustomResourceDefinition", "links.multicluster.linkerd.io")} <= kinds
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["type"] == "NodePort"
    assert svc["metadata"]["annotations"]["mirror.linkerd.io/gateway-identity"] == (
        "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local")
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["metadata"]
    assert pod["annotations"]["config.linkerd.io/enable-gateway"] == "true"
    assert "unknown flag: --ha" in env.run("linkerd", "multicluster", "install", "--ha").stderr
    # 2.11 has no controllers in its values: the Link's controller comes from `link`
    none = env.run("linkerd", "multicluster", "install", "--gateway=false", "--set",
                   "controllers[0].link.ref.name=target")
    assert none.returncode == 1
    env.state({"linkerd_version": "edge-26.7.1"})
    docs = list(yaml.safe_load_all(env.run(
        "linkerd", "multicluster", "install", "--gateway=false", "--ha", "--set",
        "controllers[0].link.ref.name=target").stdout))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "controller-target") in kinds
    assert ("Deployment", "linkerd-gateway") not in kinds
    crd = next(d for d in docs if d["kind"] == "CustomResourceDefinition")
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1", "v1alpha2", "v1alpha3"]


@covers("linkerd-mc-link-output", "linkerd-mc-link-refusals")
def test_linkerd_multicluster_link_and_link_gen(env):
    _target_objects(env.api)
    args = ("--api-server-address", "https://t-control-plane:6443")
    assert "You need to specify cluster name" in env.run(
        "linkerd", "multicluster", "link", *args).stderr
    no_address = env.run("linkerd", "multicluster", "link", "--cluster-name", "target", *args)
    assert "Gateway linkerd-gateway.linkerd-multicluster has no ingress addresses" in \
        no_address.stderr
    out = env.run("linkerd", "multicluster", "link", "--cluster-name", "target", *args,
                  "--gateway-addresses", "172.18.0.2", "--gateway-port", "30001")
    docs = {d["kind"]: d for d in yaml.safe_load_all(out.stdout)}
    assert docs["Link"]["apiVersion"] == "multicluster.linkerd.io/v1alpha1"
    spec = docs["Link"]["spec"]
    assert (spec["gatewayAddress"], spec["gatewayPort"]) == ("172.18.0.2", "30001")
    assert spec["gatewayIdentity"].startswith("linkerd-gateway.linkerd-multicluster.")
    assert docs["Deployment"]["metadata"]["name"] == "linkerd-service-mirror-target"
    creds = yaml.safe_load(base64.b64decode(docs["Secret"]["data"]["kubeconfig"]))
    assert creds["clusters"][0]["cluster"]["server"] == "https://t-control-plane:6443"
    # 2.11 has no link-gen: `multicluster` prints its help
    assert env.run("linkerd", "multicluster", "link-gen", "--cluster-name",
                   "x").stdout.startswith("Manages the multicluster")
    env.state({"linkerd_version": "edge-26.7.1"})
    out = env.run("linkerd", "multicluster", "link-gen", "--cluster-name", "target", *args,
                  "--gateway-addresses", "172.18.0.2", "--gateway-port", "30001")
    docs = {d["kind"]: d for d in yaml.safe_load_all(out.stdout)}
    assert set(docs) == {"Secret", "Link"} and not out.stderr
    assert docs["Link"]["apiVersion"] == "multicluster.linkerd.io/v1alpha3"
    old = env.run("linkerd", "multicluster", "link", "--cluster-name", "target", *args,
                  "--gateway-addresses", "172.18.0.2")
    assert old.stderr.startswith('Command "link" is deprecated')
    assert "gateway linkerd-gateway.linkerd-multicluster has no ingress addresses" in env.run(
        "linkerd", "multicluster", "link-gen", "--cluster-name", "target").stderr


@covers("kind-create-second-cluster")
def test_kind_second_cluster_gets_its_own_api_server(env):
    other = Api()
    try:
        env.state({"cluster_apiservers": {"src": other.url}})
        a, b = env.tmp / "a.yaml", env.tmp / "b.yaml"
        assert env.run("kind", "create", "cluster", "--name=lab", f"--kubeconfig={a}"
                       ).returncode == 0
        assert env.run("kind", "create", "cluster", "--name=src", f"--kubeconfig={b}"
                       ).returncode == 0
        assert yaml.safe_load(a.read_text())["clusters"][0]["cluster"]["server"] == env.api.url
        assert yaml.safe_load(b.read_text())["clusters"][0]["cluster"]["server"] == other.url
        assert other.posts[-1][0] == "/_double/v1/cluster"
        assert env.run("kind", "get", "clusters").stdout == "lab\nsrc\n"
        internal = yaml.safe_load(env.run("kind", "get", "kubeconfig", "--name", "src",
                                          "--internal").stdout)
        assert internal["clusters"][0]["cluster"]["server"] == "https://src-control-plane:6443"
        net = env.state()["docker_networks"]["kind"]["containers"]
        assert {"lab-control-plane", "src-control-plane"} <= set(net)
    finally:
        other.server.shutdown()


@covers("linkerd-mc-link-output")
def test_linkerd_multicluster_link_flags_by_version(env):
    _target_objects(env.api)
    base = ("linkerd", "multicluster", "link", "--cluster-name", "t", "--gateway-addresses",
            "172.18.0.2")
    assert "unknown flag: --ha" in env.run(*base, "--ha").stderr  # 2.11
    env.state({"linkerd_version": "stable-2.14.10"})
    assert env.run(*base, "--ha").returncode == 0
    assert "unknown flag: --output" in env.run(*base, "--output", "yaml").stderr
    env.state({"linkerd_version": "edge-26.7.1"})
    gen = ("linkerd", "multicluster", "link-gen", "--cluster-name", "t",
           "--gateway-addresses", "172.18.0.2")
    assert env.run(*gen, "--excluded-labels", "a").returncode == 0
    assert "unknown flag: --ha" in env.run(*gen, "--ha").stderr


# --------------------------------------------------------------------------- install values


def _install_docs(env, *flags: str) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    done = env.run("linkerd", "install", "--ignore-cluster", *flags)
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(done.stdout) if d} \
        if done.returncode == 0 else {}
    return done, docs


def _policy_args(docs: dict[str, dict]) -> list[str]:
    spec = docs["linkerd-destination"]["spec"]["template"]["spec"]
    return next(c["args"] for c in spec["containers"] if c["name"] == "policy")


@covers("linkerd-install-cluster-networks-validated")
def test_linkerd_install_refuses_cluster_networks_it_cannot_parse(env):
    env.state({"linkerd_version": "stable-2.11.5"})
    for value, entry in (("", ""), ("10.0.0.0/8\\,nope", "nope"), ("10.0.0.0", "10.0.0.0")):
        done, _ = _install_docs(env, "--set", f"clusterNetworks={value}")
        assert done.returncode == 1, value
        assert done.stderr.startswith("Error: cannot parse destination get networks: invalid "
                                      f"CIDR address: {entry}\n"), done.stderr
    done, docs = _install_docs(env, "--set", "clusterNetworks=10.1.0.0/16\\,fd00::/8")
    values = yaml.safe_load(docs["linkerd-config"]["data"]["values"])
    assert done.returncode == 0 and values["clusterNetworks"] == "10.1.0.0/16,fd00::/8"


@covers("linkerd-install-values-files", "linkerd-install-probe-networks-arg")
def test_linkerd_install_takes_probe_networks_from_a_values_file(env):
    env.state({"linkerd_version": "edge-26.7.1"})
    _, docs = _install_docs(env)
    values = yaml.safe_load(docs["linkerd-config"]["data"]["values"])
    assert values["policyController"]["probeNetworks"] == ["0.0.0.0/0", "::/0"]
    assert "--probe-networks=0.0.0.0/0,::/0" in _policy_args(docs)
    empty, some = env.tmp / "empty.yaml", env.tmp / "some.yaml"
    empty.write_text("policyController:\n  probeNetworks: []\n")
    some.write_text("policyController:\n  probeNetworks: [10.0.0.0/8]\n")
    _, docs = _install_docs(env, "--values", str(empty))
    values = yaml.safe_load(docs["linkerd-config"]["data"]["values"])
    assert values["policyController"]["probeNetworks"] == []
    assert not any(a.startswith("--probe-networks") for a in _policy_args(docs))
    _, docs = _install_docs(env, "-f", str(empty), "-f", str(some))  # the later file wins
    assert "--probe-networks=10.0.0.0/8" in _policy_args(docs)
    done, _ = _install_docs(env, "--values", str(env.tmp / "missing.yaml"))
    assert done.returncode == 1 and "no such file or directory" in done.stderr


@covers("kind-create-second-cluster")
def test_kind_new_cluster_names_take_the_spare_api_servers(env):
    spare = Api()
    try:
        env.state({"cluster_apiservers": {}, "spare_apiservers": [spare.url]})
        a, b = env.tmp / "a.yaml", env.tmp / "b.yaml"
        assert env.run("kind", "create", "cluster", "--name=x-nets-none", f"--kubeconfig={a}"
                       ).returncode == 0
        assert env.run("kind", "create", "cluster", "--name=x-other", f"--kubeconfig={b}"
                       ).returncode == 0
        assert yaml.safe_load(a.read_text())["clusters"][0]["cluster"]["server"] == spare.url
        assert yaml.safe_load(b.read_text())["clusters"][0]["cluster"]["server"] == env.api.url
        assert env.state()["cluster_apiservers"] == {"x-nets-none": spare.url}
        assert spare.posts[-1] == ("/_double/v1/cluster", {"kubernetes_version": "v1.36.1",
                                                           "name": "x-nets-none"})
    finally:
        spare.server.shutdown()


@covers("double-installed-networks")
def test_the_double_takes_the_installed_networks_as_the_control_plane_starts(env):
    sys.path.insert(0, str(REPO / "tests"))
    from double.cluster import ClusterDouble

    env.state({"linkerd_version": "edge-26.7.1"})
    values = env.tmp / "v.yaml"
    values.write_text("policyController:\n  probeNetworks: []\n")
    _, docs = _install_docs(env, "--values", str(values), "--set",
                            "clusterNetworks=127.10.0.0/16")
    with ClusterDouble("2.20") as cluster:
        ref = cluster.reference
        for name in ("linkerd", "linkerd-config", "linkerd-destination",
                     "linkerd-proxy-injector"):
            cluster.apiserver.apply(docs[name])
        assert ref.workloads.cluster_networks == ("127.10.0.0/16",)
        assert ref.controller.cluster_networks == ("127.10.0.0/16",)
        assert ref.controller.probe_networks == ()
        config = docs["linkerd-config"]
        emptied = yaml.safe_load(config["data"]["values"]) | {"clusterNetworks": ""}
        cluster.apiserver.apply({**config, "data": {"values": yaml.safe_dump(emptied)}})
        assert ref.workloads.cluster_networks == ("127.10.0.0/16",)  # until the restart
        injector = docs["linkerd-proxy-injector"]
        template = injector["spec"]["template"]
        cluster.apiserver.apply({**injector, "spec": {**injector["spec"], "template": {
            **template, "metadata": {**template["metadata"], "annotations": {
                "kubectl.kubernetes.io/restartedAt": "now"}}}}})
        assert ref.workloads.cluster_networks == ()
        assert ref.controller.cluster_networks == ("127.10.0.0/16",)
