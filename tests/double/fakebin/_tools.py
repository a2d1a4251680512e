"""Shared code of the cluster double's fake `kind`, `docker`, `kubectl` and `linkerd`.

Every behaviour that mirrors a real tool is listed with its source in
`tests/double/behaviours.py`; the ids are named next to the code below. Stdlib + PyYAML only.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import yaml

# --------------------------------------------------------------------------- state


def state_path() -> str:
    path = os.environ.get("CLUSTER_DOUBLE_STATE")
    if not path:
        sys.stderr.write("fake tool: CLUSTER_DOUBLE_STATE is not set\n")
        sys.exit(2)
    return path


def load_state() -> dict:
    path = state_path()
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        text = fh.read()
    return json.loads(text) if text.strip() else {}


@contextlib.contextmanager
def edit_state():
    """Read-modify-write the state file under an exclusive lock."""
    path = state_path()
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load_state()
        yield state
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(state, fh, indent=1)
        os.replace(tmp, path)


def done(out: str = "", err: str = "", rc: int = 0):
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(rc)


def not_modelled(tool: str, args: list[str]):
    done(err=f"fake {tool}: `{' '.join(args)}` is not modelled\n", rc=1)


# --------------------------------------------------------------------------- versions


def semver(text: str) -> tuple[int, int, int]:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
    if not m:
        raise ValueError(f"not a version: {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def dotted(v: tuple[int, int, int]) -> str:
    return ".".join(str(x) for x in v)


# The edge release each open-source minor was cut from (cluster-review.md B3), and the first
# edge of 2.20 (the version-2.20 commit is first released in edge-26.7.1).
EDGE_OF_MINOR = {
    15: (24, 2, 4),
    16: (24, 8, 2),
    17: (24, 11, 8),
    18: (25, 4, 4),
    19: (25, 10, 7),
    20: (26, 7, 1),
}


def edge_tuple(release: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"edge-(\d+)\.(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def linkerd_minor(release: str) -> int:
    """2.x minor of a CLI release: stable-2.x.y, enterprise-2.x.y or edge-yy.m.n."""
    m = re.fullmatch(r"(?:stable|enterprise)-2\.(\d+)\.\d+", release)
    if m:
        return int(m.group(1))
    edge = edge_tuple(release)
    if edge is None:
        raise ValueError(f"unknown Linkerd release {release!r}")
    if edge <= (22, 8, 3):  # edges before 2.12 (stable-2.12.0 came from edge-22.8.x)
        return 12 if edge >= (22, 1, 1) else 11
    for minor in sorted(EDGE_OF_MINOR):
        if edge <= EDGE_OF_MINOR[minor]:
            return minor
    return 20


def has_gateway_check(release: str) -> bool:
    """`linkerd check` gained the fatal "Gateway API CRDs are installed" in edge-26.7.1."""
    edge = edge_tuple(release)
    if edge is not None:
        return edge >= (26, 7, 1)
    return linkerd_minor(release) >= 20


# --------------------------------------------------------------------------- kubeconfig


def kubeconfig_paths(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [os.path.expanduser("~/.kube/config")]


def load_kubeconfig(explicit: str | None) -> dict:
    merged: dict = {"clusters": [], "contexts": [], "users": [], "current-context": ""}
    for path in kubeconfig_paths(explicit):
        if not os.path.exists(path):
            if explicit:
                raise KubeconfigError(f"stat {path}: no such file or directory")
            continue
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
        for key in ("clusters", "contexts", "users"):
            names = {e["name"] for e in merged[key]}
            merged[key] += [e for e in data.get(key) or [] if e.get("name") not in names]
        if not merged["current-context"]:
            merged["current-context"] = data.get("current-context") or ""
    return merged


class KubeconfigError(Exception):
    pass


def server_url(explicit_kubeconfig: str | None, context: str | None) -> str:
    """The API server URL the way client-go resolves it (behaviour client-go-context-missing)."""
    cfg = load_kubeconfig(explicit_kubeconfig)
    name = context or cfg["current-context"]
    contexts = {c["name"]: c.get("context") or {} for c in cfg["contexts"]}
    if name not in contexts:
        if context:
            raise KubeconfigError(f'context "{name}" does not exist')
        raise KubeconfigError(
            "invalid configuration: no configuration has been provided, try setting "
            "KUBERNETES_MASTER environment variable")
    cluster = contexts[name].get("cluster")
    clusters = {c["name"]: c.get("cluster") or {} for c in cfg["clusters"]}
    if cluster not in clusters:
        raise KubeconfigError(f'cluster "{cluster}" does not exist')
    return clusters[cluster].get("server", "").rstrip("/")


def kubeconfig_for(name: str, server: str) -> dict:
    key = f"kind-{name}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": key,
        "clusters": [{"name": key, "cluster": {"server": server}}],
        "contexts": [{"name": key, "context": {"cluster": key, "user": key}}],
        "users": [{"name": key, "user": {}}],
    }


def merge_kubeconfig(path: str, name: str, server: str):
    """Like kind's WriteMerged: replace the kind-NAME entries, make it current."""
    data: dict = {}
    if os.path.exists(path):
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    new = kubeconfig_for(name, server)
    for key in ("clusters", "contexts", "users"):
        kept = [e for e in data.get(key) or [] if e.get("name") != f"kind-{name}"]
        data[key] = kept + new[key]
    data.setdefault("apiVersion", "v1")
    data.setdefault("kind", "Config")
    data["current-context"] = f"kind-{name}"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)


def remove_from_kubeconfig(path: str, name: str):
    if not os.path.exists(path):
        return
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    for key in ("clusters", "contexts", "users"):
        data[key] = [e for e in data.get(key) or [] if e.get("name") != f"kind-{name}"]
    if data.get("current-context") == f"kind-{name}":
        data["current-context"] = ""
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)


# --------------------------------------------------------------------------- HTTP


class ApiError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def http(method: str, url: str, body: dict | None = None, timeout: float = 10.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read().decode()
    except urllib.error.HTTPError as e:
        raise ApiError(e.code, e.read().decode(errors="replace")) from None
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(f"Get \"{url}\": {getattr(e, 'reason', e)}") from None
    ctype_json = raw.strip().startswith(("{", "["))
    return json.loads(raw) if ctype_json else raw


def get_or_none(url: str):
    try:
        return http("GET", url)
    except ApiError as e:
        if e.status == 404:
            return None
        raise


# --------------------------------------------------------------------------- cobra


def cobra_flag_error(cmd_path: str, message: str):
    """cobra v1.x: flag errors print `Error: <msg>` then the command's usage (stderr), exit 1."""
    done(err=f"Error: {message}\nUsage:\n  {cmd_path} [flags]\n\nFlags:\n"
             f"  -h, --help   help for {cmd_path.split()[-1]}\n\n", rc=1)


def cobra_unknown_command(cmd_path: str, name: str):
    done(err=f'Error: unknown command "{name}" for "{cmd_path}"\n'
             f"Run '{cmd_path} --help' for usage.\n", rc=1)


def parse_flags(cmd_path: str, args: list[str], spec: dict[str, str]):
    """Parse args against spec {flag: "bool"|"str"|"list"}, pflag-style (--f=v, --f v, -x v).

    Returns (values, positionals); an unknown flag is cobra's error.
    """
    values: dict = {}
    positionals: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            positionals += args[i + 1:]
            break
        if a.startswith("-") and a != "-":
            name, eq, val = a.partition("=")
            if name not in spec:
                if name.startswith("--"):
                    cobra_flag_error(cmd_path, f"unknown flag: {name}")
                cobra_flag_error(cmd_path, f"unknown shorthand flag: '{name[1:2]}' in {a}")
            kind = spec[name]
            if kind == "bool":
                values[name] = val.lower() != "false" if eq else True
            else:
                if not eq:
                    i += 1
                    if i >= len(args):
                        cobra_flag_error(cmd_path, f"flag needs an argument: {name}")
                    val = args[i]
                if kind == "list":
                    values.setdefault(name, []).append(val)
                else:
                    values[name] = val
        else:
            positionals.append(a)
        i += 1
    return values, positionals


# --------------------------------------------------------------------------- kind

KIND_VERSION = "0.32.0"

# behaviour kind-create-default-image: pkg/apis/config/defaults/image.go at each kind tag
KIND_DEFAULT_NODE_IMAGE = {
    "0.17.0": "kindest/node:v1.25.3",
    "0.18.0": "kindest/node:v1.26.3",
    "0.19.0": "kindest/node:v1.27.1",
    "0.20.0": "kindest/node:v1.27.3",
    "0.21.0": "kindest/node:v1.29.1",
    "0.22.0": "kindest/node:v1.29.2",
    "0.23.0": "kindest/node:v1.30.0",
    "0.24.0": "kindest/node:v1.31.0",
    "0.25.0": "kindest/node:v1.31.2",
    "0.26.0": "kindest/node:v1.32.0",
    "0.27.0": "kindest/node:v1.32.2",
    "0.28.0": "kindest/node:v1.33.1",
    "0.29.0": "kindest/node:v1.33.1",
    "0.30.0": "kindest/node:v1.34.0",
    "0.31.0": "kindest/node:v1.35.0",
    "0.32.0": "kindest/node:v1.36.1",
}


def kind_version(state: dict) -> str:
    return state.get("kind_version", KIND_VERSION).lstrip("v")


def kind_error(message: str):
    done(err=f"ERROR: {message}\n", rc=1)


def kind_main(argv: list[str]):
    args = [a for a in argv if a not in ("-q", "--quiet")]
    state = load_state()
    if args[:1] == ["version"]:
        # kind-version
        done(f"kind v{kind_version(state)} go1.24.0 linux/amd64\n")
    if args[:2] == ["get", "clusters"]:
        clusters = sorted(state.get("clusters", {}))
        if not clusters:
            done(err="No kind clusters found.\n")  # kind-get-clusters-none
        done("".join(c + "\n" for c in clusters))
    if args[:2] == ["create", "cluster"]:
        kind_create(args[2:], state)
    if args[:2] == ["delete", "cluster"]:
        flags, _ = parse_flags("kind delete cluster", args[2:],
                               {"--name": "str", "-n": "str", "--kubeconfig": "str"})
        name = flags.get("--name") or flags.get("-n") or "kind"
        sys.stderr.write(f'Deleting cluster "{name}" ...\n')  # kind-delete-cluster
        with edit_state() as st:
            if name in st.get("clusters", {}):
                del st["clusters"][name]
                sys.stderr.write(f'Deleted nodes: ["{name}-control-plane"]\n')
                net = docker_network(st)
                if net:
                    net["containers"].pop(f"{name}-control-plane", None)
            st.get("loaded", {}).pop(name, None)
        path = flags.get("--kubeconfig") or kubeconfig_paths(None)[0]
        remove_from_kubeconfig(path, name)
        done()
    if args[:2] == ["get", "kubeconfig"]:
        flags, _ = parse_flags("kind get kubeconfig", args[2:],
                               {"--name": "str", "-n": "str", "--internal": "bool"})
        name = flags.get("--name") or flags.get("-n") or "kind"
        if name not in state.get("clusters", {}):
            kind_error(f"could not locate any control plane nodes for cluster named '{name}'. "
                       "Use the --name option to select a different cluster")
        server = (f"https://{name}-control-plane:6443" if flags.get("--internal")
                  else apiserver_of(state, name))  # kind-get-kubeconfig-internal
        done(yaml.safe_dump(kubeconfig_for(name, server), sort_keys=False))
    if args[:2] == ["load", "docker-image"]:
        flags, images = parse_flags("kind load docker-image", args[2:],
                                    {"--name": "str", "-n": "str", "--nodes": "str"})
        name = flags.get("--name") or flags.get("-n") or "kind"
        if not images:
            kind_error("a list of image names is required")
        for image in images:
            if image not in state.get("images", []):
                kind_error(f'image: "{image}" not present locally')  # kind-load-absent
        if name not in state.get("clusters", {}):
            kind_error(f'no nodes found for cluster "{name}"')
        with edit_state() as st:
            loaded = st.setdefault("loaded", {}).setdefault(name, [])
            loaded += [i for i in images if i not in loaded]
        done(err="".join(f'Image: "{i}" with ID "sha256:0" not yet present on node '
                         f'"{name}-control-plane", loading...\n' for i in images))
    not_modelled("kind", argv)


def apiserver_of(state: dict, name: str) -> str:
    """The API server a cluster of this name gets: a double of two clusters names one per
    cluster (`cluster_apiservers`), else every cluster is the one double."""
    return (state.get("cluster_apiservers") or {}).get(name) or state["apiserver"]


def take_spare(name: str) -> None:
    """kind-create-second-cluster: a name the state gives no API server takes a spare one
    (`spare_apiservers`), when the double has spares: another cluster of its own."""
    with edit_state() as st:
        servers = st.setdefault("cluster_apiservers", {})
        if name not in servers and st.get("spare_apiservers"):
            servers[name] = st["spare_apiservers"].pop(0)


def kind_create(args: list[str], state: dict):
    flags, _ = parse_flags("kind create cluster", args, {
        "--name": "str", "-n": "str", "--kubeconfig": "str", "--image": "str",
        "--config": "str", "--wait": "str", "--retain": "bool"})
    name = flags.get("--name") or flags.get("-n") or os.environ.get("KIND_CLUSTER_NAME")
    config = {}
    if flags.get("--config"):
        with open(flags["--config"]) as fh:
            config = yaml.safe_load(fh) or {}
    name = name or config.get("name") or "kind"
    nodes = config.get("nodes") or [{}]
    image = flags.get("--image") or nodes[0].get("image") or KIND_DEFAULT_NODE_IMAGE.get(
        kind_version(state), KIND_DEFAULT_NODE_IMAGE[KIND_VERSION])
    if name in state.get("clusters", {}):
        # kind-create-exists
        kind_error("failed to create cluster: node(s) already exist for a cluster with the "
                   f'name "{name}"')
    try:
        k8s = "v" + dotted(semver(image.split("@")[0].rsplit(":", 1)[-1]))
    except ValueError:
        k8s = ""
    err = sys.stderr
    err.write(f'Creating cluster "{name}" ...\n')
    steps = [f"Ensuring node image ({image}) 🖼", "Preparing nodes 📦 ",
             "Writing configuration 📜", "Starting control-plane 🕹️", "Installing CNI 🔌",
             "Installing StorageClass 💾"]
    if flags.get("--wait"):
        steps.append(f"Waiting ≤ {flags['--wait']} for control-plane = Ready ⏳")
    # kind-create-progress: without a terminal kind logs " • step  ..." then " ✓ step"
    for step in steps[:2]:
        err.write(f" • {step}  ...\n ✓ {step}\n")
    if not k8s:
        err.write(f" ✗ {steps[2]}\n")
        kind_error(f"failed to create cluster: could not read the Kubernetes version of {image}")
    take_spare(name)
    state = load_state()
    try:
        http("POST", apiserver_of(state, name) + "/_double/v1/cluster",
             {"kubernetes_version": k8s, "name": name})  # its node: NAME-control-plane
    except (ApiError, ConnectionError) as e:
        err.write(f" • {steps[3]}  ...\n ✗ {steps[3]}\n")
        kind_error(f"failed to create cluster: failed to init node with kubeadm: {e}")
    for step in steps[2:]:
        err.write(f" • {step}  ...\n ✓ {step}\n")
    with edit_state() as st:
        st.setdefault("clusters", {})[name] = {"node_image": image, "kubernetes_version": k8s}
        # kind-docker-network: the node container joins the Docker network `kind`, created
        # once (on the double's loopback pool) and kept after the cluster is deleted
        net = docker_network(st, create=True)
        attach(net, f"{name}-control-plane", image)
    path = flags.get("--kubeconfig") or kubeconfig_paths(None)[0]
    merge_kubeconfig(path, name, apiserver_of(state, name))
    sample = f"kubectl cluster-info --context kind-{name}"
    if flags.get("--kubeconfig"):
        sample += " --kubeconfig " + shlex.quote(flags["--kubeconfig"])
    done(err=f'Set kubectl context to "kind-{name}"\nYou can now use your cluster with:\n\n'
             f"{sample}\n\nHave a nice day! 👋\n")


# --------------------------------------------------------------------------- docker

# Modules an image built FROM python:3.11-slim with `pip install h2 grpcio protobuf` can import
# on top of the stdlib (h2 pulls in hpack and hyperframe; grpcio is the `grpc` package,
# protobuf the `google` namespace).
PIP_MODULES = {
    "h2": ["h2", "hpack", "hyperframe"],
    "grpcio": ["grpc"],
    "protobuf": ["google"],
    "pyyaml": ["yaml"],
}

_GUARD = r"""
import os, sys
class _ImageOnly:
    allowed = set(ALLOWED)
    def in_image(self, top):
        return any(os.path.isdir(os.path.join(p, top)) or os.path.isfile(os.path.join(p, top
                   + '.py')) for p in PATHS)
    def find_spec(self, name, path=None, target=None):
        top = name.partition('.')[0]
        if (top in sys.stdlib_module_names or top in self.allowed
                or top in sys.builtin_module_names or self.in_image(top)):
            return None
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _ImageOnly())
sys.path[:0] = PATHS
"""


def docker_main(argv: list[str]):
    state = load_state()
    if state.get("docker_down"):
        # docker-daemon-down: every daemon command fails the same way
        done(err="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                 "Is the docker daemon running?\n", rc=1)
    if argv[:1] == ["info"]:
        done("Client:\n Context:    default\n\nServer:\n Server Version: 27.3.1\n"
             " Storage Driver: overlay2\n")
    if argv[:2] == ["image", "inspect"] or argv[:1] == ["inspect"]:
        names = [a for a in argv[2 if argv[0] == "image" else 1:] if not a.startswith("-")]
        missing = [n for n in names if n not in state.get("images", [])]
        if missing:
            # docker-image-inspect-absent
            done("[]\n", "".join(f"Error: No such image: {n}\n" for n in missing), rc=1)
        done(json.dumps([{"Id": "sha256:0", "RepoTags": [n]} for n in names], indent=4) + "\n")
    if argv[:1] == ["build"] or argv[:2] == ["buildx", "build"]:
        docker_build(argv[1:] if argv[0] == "build" else argv[2:])
    if argv[:2] == ["network", "inspect"]:
        docker_network_inspect(argv[2:])
    if argv[:1] == ["run"] or argv[:2] == ["container", "run"]:
        docker_run(argv[1:] if argv[0] == "run" else argv[2:])
    if argv[:1] == ["exec"] or argv[:2] == ["container", "exec"]:
        docker_exec(argv[1:] if argv[0] == "exec" else argv[2:])
    if argv[:1] == ["rm"] or argv[:2] == ["container", "rm"]:
        docker_rm(argv[1:] if argv[0] == "rm" else argv[2:])
    not_modelled("docker", argv)


# --- containers on the `kind` network -----------------------------------------------------
# The double's `kind` network is a loopback /24 outside the double's clusterNetworks (the state's
# `docker_pool`, set by ClusterDouble); a container's address is one of it, so a process the
# fake runs "in" the container binds that address and the reference mesh sees connections from
# it, as a pod sees a container on kind's network (no NAT on the route through the node).

def docker_cli_error(message: str, rc: int = 125):
    """The docker CLI's flag and daemon errors: `docker: <msg>` + the usage hint, exit 125
    (docs.docker.com/reference/cli/docker/container/run/#exit-status)."""
    done(err=f"docker: {message}\n\nRun 'docker run --help' for more information\n", rc=rc)


def docker_network(st: dict, create: bool = False) -> dict | None:
    nets = st.setdefault("docker_networks", {})
    if "kind" not in nets and create:
        import ipaddress as ipa

        pool = ipa.ip_network(st.get("docker_pool") or "127.20.0.0/24")
        nets["kind"] = {"id": os.urandom(32).hex(), "subnet": str(pool),
                        "gateway": str(pool.network_address + 1), "containers": {}}
    return nets.get("kind")


def attach(net: dict, name: str, image: str) -> str:
    import ipaddress as ipa

    used = {c["ip"] for c in net["containers"].values()} | {net["gateway"]}
    for host in ipa.ip_network(net["subnet"]).hosts():
        if str(host) not in used:
            net["containers"][name] = {"id": os.urandom(32).hex(), "ip": str(host),
                                       "image": image}
            return str(host)
    raise SystemExit("fake docker: the kind network is full")


def docker_network_inspect(args: list[str]):
    # docker-network-inspect: a JSON list, IPAM.Config[].Subnet/Gateway, Containers by id
    flags, names = parse_flags("docker network inspect", args, {"-f": "str", "--format": "str",
                                                                  "-v": "bool"})
    if not names:
        done(err='"docker network inspect" requires at least 1 argument.\n', rc=1)
    st = load_state()
    found, missing = [], []
    for n in names:
        net = (st.get("docker_networks") or {}).get(n)
        if net is None:
            missing.append(n)
            continue
        found.append({"Name": n, "Id": net["id"], "Scope": "local", "Driver": "bridge",
                      "EnableIPv6": False,
                      "IPAM": {"Driver": "default", "Options": {},
                               "Config": [{"Subnet": net["subnet"], "Gateway": net["gateway"]}]},
                      "Internal": False, "Attachable": False,
                      "Containers": {c["id"]: {"Name": cname, "EndpointID": c["id"][:32],
                                               "IPv4Address": c["ip"] + "/"
                                               + net["subnet"].split("/")[1], "IPv6Address": ""}
                                     for cname, c in net["containers"].items()},
                      "Options": {}, "Labels": {}})
    out = json.dumps(found, indent=4) + "\n"
    if missing:
        done(out, "".join(f"Error response from daemon: network {n} not found\n"
                          for n in missing), rc=1)
    done(out)


RUN_FLAGS = {"-d": "bool", "--detach": "bool", "--rm": "bool", "--name": "str",
             "--network": "str", "--net": "str", "--cap-add": "list", "--label": "list",
             "-l": "list", "--entrypoint": "str", "-u": "str", "--user": "str", "-e": "list",
             "--env": "list", "-i": "bool", "--interactive": "bool"}


def _run_args(args: list[str]) -> tuple[dict, list[str]]:
    """docker's flags end at the image: what follows is the container's command."""
    flags_part, rest = [], []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            rest = args[i:]
            break
        flags_part.append(a)
        name = a.partition("=")[0]
        if "=" not in a and RUN_FLAGS.get(name) in ("str", "list"):
            i += 1
            if i < len(args):
                flags_part.append(args[i])
        i += 1
    spec = RUN_FLAGS
    for a in flags_part:
        if a.startswith("-") and a.partition("=")[0] not in spec:
            docker_cli_error(f"unknown flag: {a.partition('=')[0]}")  # docker-run-flags
    flags, _ = parse_flags("docker run", flags_part, spec)
    return flags, rest


def _image_known(st: dict, image: str) -> bool:
    nodes = {c.get("node_image") for c in (st.get("clusters") or {}).values()}
    return image in (st.get("images") or []) or image in nodes


def docker_run(args: list[str]):
    flags, rest = _run_args(args)
    if not rest:
        done(err='docker: \'docker run\' requires at least 1 argument\n', rc=125)
    image, command = rest[0], rest[1:]
    detach = flags.get("-d") or flags.get("--detach")
    network = flags.get("--network") or flags.get("--net") or "bridge"
    caps = [c.upper().removeprefix("CAP_") for c in flags.get("--cap-add", [])]
    with edit_state() as st:
        if not _image_known(st, image):
            # docker-run-image-absent: no registry in the double to pull from
            done(err=f"Unable to find image '{image}' locally\ndocker: Error response from "
                     f"daemon: pull access denied for {image.split(':')[0]}, repository does "
                     "not exist or may require 'docker login'\n", rc=125)
        containers = st.setdefault("containers", {})
        if network.startswith("container:"):
            # docker-run-container-network: the helper shares that container's namespace
            target = containers.get(network.split(":", 1)[1])
            if target is None:
                done(err=f"docker: Error response from daemon: No such container: "
                         f"{network.split(':', 1)[1]}\n", rc=125)
            if detach:
                not_modelled("docker", ["run", *args])
            entry = flags.get("--entrypoint")
            result = ip_command(st, target, caps, [entry, *command] if entry else command)
        else:
            result = None
    if result is not None:  # outside the edit: done() exits, which would skip its write
        done(result[1], result[2], result[0])
    with edit_state() as st:
        containers = st.setdefault("containers", {})
        net = docker_network(st)
        if network != "kind" or net is None:
            done(err=f"docker: Error response from daemon: network {network} not found.\n",
                 rc=125)
        name = flags.get("--name") or f"fake_{os.urandom(3).hex()}"
        if name in containers:
            done(err=f'docker: Error response from daemon: Conflict. The container name "/{name}"'
                     " is already in use by container \"" + containers[name]["id"]
                     + '". You have to remove (or rename) that container to be able to reuse '
                     "that name.\n", rc=125)
        if not detach:
            not_modelled("docker", ["run", *args])  # only detached containers are kept running
        ip = attach(net, name, image)
        cid = net["containers"][name]["id"]
        labels = flags.get("--label", []) + flags.get("-l", [])
        containers[name] = {"id": cid, "image": image, "ip": ip, "subnet": net["subnet"],
                            "caps": caps, "routes": [], "command": command, "labels": labels,
                            "user": flags.get("-u") or flags.get("--user")}
    done(cid + "\n")


def ip_command(st: dict, container: dict, caps: list[str], argv: list[str]):
    """`ip route add CIDR via GW` in a container's network namespace (iproute2)."""
    import ipaddress as ipa

    if argv[:1] != ["ip"]:
        return 127, "", (f"docker: Error response from daemon: failed to create task for "
                         f'container: exec: "{argv[0] if argv else ""}": executable file not '
                         "found in $PATH: unknown\n")
    words = argv[1:]
    if len(words) != 5 or words[:2] != ["route", "add"] or words[3] != "via":
        return 255, "", f"fake ip: `{' '.join(argv)}` is not modelled\n"
    cidr, gw = words[2], words[4]
    if "NET_ADMIN" not in caps:
        return 2, "", "RTNETLINK answers: Operation not permitted\n"  # ip-route-add
    if ipa.ip_address(gw) not in ipa.ip_network(container["subnet"]):
        return 2, "", "Error: Nexthop has invalid gateway.\n"
    net = str(ipa.ip_network(cidr, strict=False))
    if any(r[0] == net for r in container["routes"]):
        return 2, "", "RTNETLINK answers: File exists\n"
    container["routes"].append([net, gw])
    return 0, "", ""


# Run "in" the container: the prober's imports limited to the image (_GUARD), every IPv4
# socket bound to the container's address before it connects, and a destination outside the
# container's subnet and its routes unreachable (ENETUNREACH), as the kernel would have it.
_NETNS = r"""
import errno, ipaddress, socket
_ADDR, _NETS = @ADDRESS@, [ipaddress.ip_network(n) for n in @SUBNETS@]
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
def _prepare(sock, address):
    if sock.family != socket.AF_INET:
        return
    if not any(ipaddress.ip_address(address[0]) in n for n in _NETS):
        raise OSError(errno.ENETUNREACH, "Network is unreachable")
    if sock.getsockname()[0] == "0.0.0.0":
        sock.bind((_ADDR, 0))
def connect(self, address):
    _prepare(self, address)
    return _connect(self, address)
def connect_ex(self, address):
    _prepare(self, address)
    return _connect_ex(self, address)
socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
"""


def docker_exec(args: list[str]):
    spec = {"-i": "bool", "--interactive": "bool", "-u": "str", "--user": "str", "-e": "list",
            "--env": "list", "-w": "str", "--workdir": "str", "-t": "bool", "--tty": "bool"}
    flags_part: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        flags_part.append(args[i])
        if "=" not in args[i] and spec.get(args[i]) in ("str", "list") and i + 1 < len(args):
            i += 1
            flags_part.append(args[i])
        i += 1
    for a in flags_part:
        if a.startswith("-") and a.partition("=")[0] not in spec:
            done(err=f"unknown flag: {a.partition('=')[0]}\nSee 'docker exec --help'.\n",
                 rc=125)
    flags, _ = parse_flags("docker exec", flags_part, spec)
    rest = args[i:]
    if len(rest) < 2:
        done(err='"docker exec" requires at least 2 arguments.\n', rc=1)
    name, command = rest[0], rest[1:]
    st = load_state()
    container = (st.get("containers") or {}).get(name)
    if container is None:  # docker-exec-absent
        done(err=f"Error response from daemon: No such container: {name}\n", rc=1)
    built = (st.get("image_roots") or {}).get(container["image"])
    module = ["-m", "linkerd_conformance.prober"]
    if not (built and command[:1] and command[0] in ("python", "python3")
            and command[1:3] == module):
        # docker-exec-not-found: what the prober image has no binary for
        done(err=f'OCI runtime exec failed: exec failed: unable to start container process: '
                 f'exec: "{command[0]}": executable file not found in $PATH: unknown\n',
             rc=126)
    root = built["root"]
    paths = [os.path.join(root, p.lstrip("/")) for p in
             built["env"].get("PYTHONPATH", "").split(":") if p]
    nets = [container["subnet"], *[r[0] for r in container["routes"]]]
    guard = _GUARD.replace("ALLOWED", repr(sorted(set(built["allowed"])))).replace(
        "PATHS", repr(paths))
    netns = _NETNS.replace("@ADDRESS@", repr(container["ip"])).replace("@SUBNETS@",
                                                                         repr(nets))
    code = (guard + netns + "import runpy, sys\nsys.argv = ['prober', *" + repr(command[3:])
            + "]\nrunpy.run_module('linkerd_conformance.prober', run_name='__main__')\n")
    interactive = flags.get("-i") or flags.get("--interactive")
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=root,
                          stdin=None if interactive else subprocess.DEVNULL)
    sys.exit(proc.returncode)


def docker_rm(args: list[str]):
    flags, names = parse_flags("docker rm", args, {"-f": "bool", "--force": "bool",
                                                   "-v": "bool", "--volumes": "bool"})
    if not names:
        done(err='"docker rm" requires at least 1 argument.\n', rc=1)
    out, err = [], []
    with edit_state() as st:
        containers = st.setdefault("containers", {})
        for n in names:
            if n not in containers:  # docker-rm-absent
                err.append(f"Error response from daemon: No such container: {n}\n")
                continue
            if not (flags.get("-f") or flags.get("--force")):
                err.append(f"Error response from daemon: cannot remove container \"/{n}\": "
                           "container is running: stop the container before removing or force "
                           "remove\n")
                continue
            del containers[n]
            net = docker_network(st)
            if net:
                net["containers"].pop(n, None)
            out.append(n + "\n")
    done("".join(out), "".join(err), 1 if err else 0)


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) with line continuations joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        if not buf and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1]
            continue
        buf += line
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def _dockerignore(context: str) -> list[str]:
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [ln.strip().rstrip("/") for ln in fh if ln.strip() and not ln.startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    rel = rel.strip("/")
    result = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.lstrip("/")
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(x, p) for x in prefixes) or (
                p.startswith("**/") and any(fnmatch.fnmatchcase(x, p[3:]) for x in parts)):
            result = not neg
    return result


def _copy(context: str, src: str, dst: str, root: str, patterns: list[str]) -> str | None:
    """COPY src dst into root; returns an error message when src is absent."""
    full = os.path.normpath(os.path.join(context, src))
    rel = os.path.relpath(full, context)
    if not os.path.exists(full) or _ignored(rel, patterns):
        return f'"/{rel}": not found'
    target = os.path.join(root, dst.lstrip("/"))
    if os.path.isdir(full):
        for dirpath, _dirs, files in os.walk(full):
            for f in files:
                path = os.path.join(dirpath, f)
                r = os.path.relpath(path, context)
                if _ignored(r, patterns) or "__pycache__" in r.split(os.sep):
                    continue
                out = os.path.join(target, os.path.relpath(path, full))
                os.makedirs(os.path.dirname(out), exist_ok=True)
                shutil.copy2(path, out)
    else:
        if dst.endswith("/"):
            target = os.path.join(target, os.path.basename(full))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(full, target)
    return None


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip_modules(run: str) -> list[str]:
    """Top-level modules of what `pip install` brings: the named distributions and, as pip
    resolves them, their (non-extra) requirements, read from this interpreter's metadata."""
    import importlib.metadata as md

    mods: list[str] = []
    if "pip install" not in run:
        return mods
    todo = []
    for tok in shlex.split(run.split("pip install", 1)[1].split("&&")[0]):
        if not tok.startswith("-"):
            todo.append(_norm(re.split(r"[<>=!~\[ ;]", tok, maxsplit=1)[0]))
    by_dist: dict[str, list[str]] = {}
    for module, dists in md.packages_distributions().items():
        for d in dists:
            by_dist.setdefault(_norm(d), []).append(module)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        mods += PIP_MODULES.get(name, []) + by_dist.get(name, [name.replace("-", "_")])
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" not in req:
                todo.append(_norm(re.split(r"[<>=!~\[ ;(]", req, maxsplit=1)[0]))
    return mods


def docker_build(args: list[str]):
    flags, pos = parse_flags("docker build", args, {
        "-t": "list", "--tag": "list", "-f": "str", "--file": "str", "--build-arg": "list",
        "-q": "bool", "--quiet": "bool", "--progress": "str", "--load": "bool",
        "--platform": "str", "--pull": "bool", "--no-cache": "bool"})
    if len(pos) != 1:
        done(err='ERROR: "docker buildx build" requires exactly 1 argument.\n', rc=1)
    context = pos[0]
    dockerfile = flags.get("-f") or flags.get("--file") or os.path.join(context, "Dockerfile")
    tags = flags.get("-t", []) + flags.get("--tag", [])
    with open(dockerfile) as fh:
        steps = _dockerfile_instructions(fh.read())
    patterns = _dockerignore(context)
    env: dict[str, str] = {}
    allowed: list[str] = []
    numbered = [s for s in steps if s[0] in ("FROM", "RUN", "COPY", "ADD", "WORKDIR")]
    total = len(numbered)
    log = ['#0 building with "default" instance using docker driver', "",
           "#1 [internal] load build definition from " + os.path.basename(dockerfile),
           "#1 DONE 0.0s", ""]
    keep = os.path.join(os.path.dirname(state_path()), "docker-images")
    os.makedirs(keep, exist_ok=True)
    # the image's files are kept (beside the state) for `docker exec` to run the prober from
    root = tempfile.mkdtemp(prefix="image-", dir=keep)
    if True:
        n = 0
        for word, rest in steps:
            if word == "ENV":
                for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                    env[k] = v.strip('"')
                continue
            if word not in ("FROM", "RUN", "COPY", "ADD", "WORKDIR"):
                continue
            n += 1
            step = f"#{n + 4} [{n}/{total}] {word} {rest}" if word != "FROM" else (
                f"#{n + 4} [1/{total}] FROM docker.io/library/{rest}")
            log.append(step)
            if word in ("COPY", "ADD"):
                parts = [p for p in shlex.split(rest) if not p.startswith("--")]
                *srcs, dst = parts
                for src in srcs:
                    err = _copy(context, src, dst, root, patterns)
                    if err:
                        log.append(f"#{n + 4} ERROR: failed to calculate checksum of ref: {err}")
                        _build_failed(log, f"failed to compute cache key: {err}")
            elif word == "RUN":
                allowed += _pip_modules(rest)
                rc, output = _run_step(rest, env, root, allowed)
                log += [f"#{n + 4} 0.{i:03d} {line}" for i, line in enumerate(output, 1)]
                if rc:
                    proc = json.dumps("/bin/sh -c " + rest)
                    msg = f"process {proc} did not complete successfully: exit code: {rc}"
                    log.append(f"#{n + 4} ERROR: {msg}")
                    log += ["------", f" > [{n}/{total}] RUN {rest}:", "------"]
                    _build_failed(log, msg)
            log += [f"#{n + 4} DONE 0.1s", ""]
    with edit_state() as st:
        images = st.setdefault("images", [])
        images += [t for t in tags if t not in images]
        for t in tags:
            st.setdefault("image_roots", {})[t] = {"root": root, "env": env,
                                                   "allowed": sorted(set(allowed))}
    log += [f"#{n + 5} exporting to image", f"#{n + 5} naming to docker.io/library/"
            + (tags[0] if tags else "<none>") + " done", f"#{n + 5} DONE 0.0s"]
    done(err="\n".join(log) + "\n")


def _build_failed(log: list[str], message: str):
    done(err="\n".join(log) + f"\nERROR: failed to solve: {message}\n", rc=1)


def _run_step(run: str, env: dict, root: str, allowed: list[str]) -> tuple[int, list[str]]:
    """Run the `python -c "..."` parts of a RUN line inside the image's layout."""
    rc = 0
    lines: list[str] = []
    for part in run.split("&&"):
        words = shlex.split(part)
        if len(words) >= 3 and words[0] in ("python", "python3") and words[1] == "-c":
            paths = [os.path.join(root, p.lstrip("/"))
                     for p in env.get("PYTHONPATH", "").split(":") if p]
            guard = _GUARD.replace("ALLOWED", repr(sorted(set(allowed)))).replace(
                "PATHS", repr(paths))
            proc = subprocess.run([sys.executable, "-I", "-c", guard + words[2]],
                                  capture_output=True, text=True, cwd=root)
            lines += (proc.stdout + proc.stderr).splitlines()
            if proc.returncode:
                return proc.returncode, lines
    return rc, lines


# --------------------------------------------------------------------------- kubectl


def kubectl_main(argv: list[str]):
    state = load_state()
    version = state.get("kubectl_version", "v1.27.16")
    major, minor, patch = semver(version)
    args = list(argv)
    if args[:1] == ["version"]:
        rest = args[1:]
        if "--short" in rest and minor >= 28:
            # kubectl-version-short-removed
            done(err="error: unknown flag: --short\nSee 'kubectl version --help' for usage.\n",
                 rc=1)
        kustomize = {24: "v4.5.4", 25: "v4.5.7", 26: "v4.5.7", 27: "v5.0.1"}.get(minor, "v5.0.4")
        if "--client" in rest and ("-o" in rest or "--output" in rest
                                   or "--output=json" in rest or "-ojson" in rest):
            # kubectl-version-json
            info = {"clientVersion": {
                "major": str(major), "minor": str(minor), "gitVersion": version,
                "gitCommit": "0" * 40, "gitTreeState": "clean",
                "buildDate": "2024-07-17T00:00:00Z", "goVersion": "go1.22.5",
                "compiler": "gc", "platform": "linux/amd64"}}
            if minor >= 24:
                info["kustomizeVersion"] = kustomize
            done(json.dumps(info, indent=2) + "\n")
        if "--client" in rest and ("--short" in rest or minor >= 28):
            # kubectl-version-short
            err = ""
            if "--short" in rest and minor >= 24:
                err = ("Flag --short has been deprecated, and will be removed in the future. "
                       "The --short output will become the default.\n")
            out = f"Client Version: {version}\n"
            if minor >= 24:
                out += f"Kustomize Version: {kustomize}\n"
            done(out, err)
    not_modelled("kubectl", argv)


# --------------------------------------------------------------------------- linkerd

CORE_POLICIES = ["all-authenticated", "all-unauthenticated", "cluster-authenticated",
                 "cluster-unauthenticated", "deny"]
GATEWAY_CRD = "httproutes.gateway.networking.k8s.io"

# Served versions of the CRDs each chart ships (charts/linkerd2/templates/policy-crd.yaml at
# stable-2.11.5; charts/linkerd-crds/templates at the later tags). "gw" rows are the bundled
# Gateway API CRDs, rendered only when the chart's switch (enableHttpRoutes / installGatewayAPI)
# is on: 2.14-2.18 by default, never by default from 2.19.
_POLICY_CRDS_212 = {
    "servers.policy.linkerd.io": ["v1alpha1", "v1beta1"],
    "serverauthorizations.policy.linkerd.io": ["v1alpha1", "v1beta1"],
    "authorizationpolicies.policy.linkerd.io": ["v1alpha1"],
    "meshtlsauthentications.policy.linkerd.io": ["v1alpha1"],
    "networkauthentications.policy.linkerd.io": ["v1alpha1"],
    "httproutes.policy.linkerd.io": ["v1alpha1", "v1beta1"],
    "serviceprofiles.linkerd.io": ["v1alpha1", "v1alpha2"],
}


def crd_deprecation(kind: str, version: str, minor: int) -> dict:
    """`deprecated` and `deprecationWarning` of one CRD version (F2.1, F3.1): Server and
    ServerAuthorization v1alpha1 from 2.12, Server v1beta1 from 2.15, whose text names
    "v1alpha1" until 2.17 fixed it (linkerd/linkerd2 charts/linkerd-crds/templates/policy/
    server.yaml l.20-24, l.73-77 and server-authorization.yaml l.20-24 at each tag)."""
    use = {"ServerAuthorization": "v1beta1"}.get(kind) or (
        "v1beta1" if version == "v1alpha1" else "v1beta2" if minor == 15 else "v1beta3")
    if kind not in ("Server", "ServerAuthorization") or minor < 12:
        return {}
    if version == "v1alpha1":
        said = "v1alpha1"
    elif kind == "Server" and version == "v1beta1" and minor >= 15:
        said = "v1alpha1" if minor < 17 else "v1beta1"
    else:
        return {}
    return {"deprecated": True, "deprecationWarning": f"policy.linkerd.io/{said} {kind} is "
            f"deprecated; use policy.linkerd.io/{use} {kind}"}


def crds_of(minor: int, gateway: bool | None = None) -> dict[str, list[str]]:
    if minor <= 11:
        return {"servers.policy.linkerd.io": ["v1alpha1", "v1beta1"],
                "serverauthorizations.policy.linkerd.io": ["v1alpha1", "v1beta1"],
                "serviceprofiles.linkerd.io": ["v1alpha1", "v1alpha2"]}
    crds = {k: list(v) for k, v in _POLICY_CRDS_212.items()}
    if minor >= 13:
        crds["httproutes.policy.linkerd.io"].append("v1beta2")
    if minor >= 14:
        crds["httproutes.policy.linkerd.io"].append("v1beta3")
    if minor >= 15:
        crds["servers.policy.linkerd.io"].append("v1beta2")
        crds["externalworkloads.workload.linkerd.io"] = ["v1alpha1", "v1beta1"]
    if minor >= 16:
        crds["servers.policy.linkerd.io"].append("v1beta3")
    if minor >= 17:
        crds["egressnetworks.policy.linkerd.io"] = ["v1alpha1"]
        crds["httplocalratelimitpolicies.policy.linkerd.io"] = ["v1alpha1"]
    if gateway is None:
        gateway = 14 <= minor <= 18
    if gateway and minor >= 14:
        v1 = minor >= 18
        crds[GATEWAY_CRD] = ["v1", "v1beta1"] if v1 else ["v1alpha2", "v1beta1"]
        if minor >= 16:
            crds["grpcroutes.gateway.networking.k8s.io"] = ["v1", "v1alpha2"] if v1 else [
                "v1alpha2"]
        if minor >= 17:
            crds["tcproutes.gateway.networking.k8s.io"] = ["v1alpha2"]
            crds["tlsroutes.gateway.networking.k8s.io"] = ["v1alpha2"]
    return crds


# proxy-init's own tag per chart (values.yaml proxyInit.image.version); None: no such image.
PROXY_INIT_VERSION = {11: "v1.5.3", 12: "v2.0.0", 13: "v2.2.1", 14: "v2.2.3", 15: "v2.2.4",
                      16: "v2.4.1", 17: "v2.4.1", 18: "v2.4.2", 19: "v2.4.3", 20: None}
DEFAULT_NETWORKS = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16"


def valid_cidr(text: str) -> bool:
    """What Go's net.ParseCIDR accepts: an address, a slash, a prefix length (no spaces)."""
    import ipaddress

    address, slash, bits = text.partition("/")
    if not slash or not bits.isdigit() or text != text.strip():
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return int(bits) <= ip.max_prefixlen


def merge_values(base: dict, more: dict) -> dict:
    """Helm's merge of values files: maps merged key by key, anything else replaced."""
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_values(base[key], value)
        else:
            base[key] = value
    return base


def selects(selector: dict | None, labels: dict) -> bool:
    """metav1.LabelSelectorAsSelector: matchLabels and matchExpressions; {} selects all."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if (op == "In" and labels.get(key) not in vals) or \
                (op == "NotIn" and key in labels and labels[key] in vals) or \
                (op == "Exists" and key not in labels) or \
                (op == "DoesNotExist" and key in labels):
            return False
    return True


def server_includes_pod(server: dict, pods: list[dict]) -> bool:
    """serverIncludesPod (pkg/k8s/policy.go): the podSelector matches a pod one of whose
    spec.containers (not initContainers) has the Server's port number or name."""
    spec = server.get("spec") or {}
    want = spec.get("port")
    if spec.get("podSelector") is None:
        return False
    for pod in pods:
        if not selects(spec["podSelector"], pod["metadata"].get("labels") or {}):
            continue
        for c in (pod.get("spec") or {}).get("containers") or []:
            for port in c.get("ports") or []:
                if want == port.get("containerPort") or (
                        isinstance(want, str) and want == port.get("name")):
                    return True
    return False


class Linkerd:
    def __init__(self, argv: list[str]):
        self.state = load_state()
        self.release = self.state.get("linkerd_version", "stable-2.11.5")
        self.minor = linkerd_minor(self.release)
        self.kubeconfig: str | None = None
        self.context: str | None = None
        self.namespace = "linkerd"
        self.args: list[str] = []
        it = iter(range(len(argv)))
        for i in it:
            a = argv[i]
            name, eq, val = a.partition("=")
            if name in ("--context", "--kubeconfig", "-L", "--linkerd-namespace"):
                if not eq:
                    val = argv[i + 1] if i + 1 < len(argv) else ""
                    next(it, None)
                if name == "--context":
                    self.context = val
                elif name == "--kubeconfig":
                    self.kubeconfig = val
                else:
                    self.namespace = val
            else:
                self.args.append(a)

    # -- cluster access
    def fail(self, cmd: str, message: str):
        """A RunE error: cobra prints `Error: ...` and the usage on stderr, exit 1."""
        done(err=f"Error: {message}\nUsage:\n  {cmd} [flags]\n\n", rc=1)

    def server(self, cmd: str) -> str:
        try:
            return server_url(self.kubeconfig, self.context)  # client-go-context-missing
        except KubeconfigError as e:
            self.fail(cmd, str(e))
        raise AssertionError  # unreachable

    def config_values(self, server: str) -> dict | None:
        cm = get_or_none(f"{server}/api/v1/namespaces/{self.namespace}/configmaps/linkerd-config")
        if not isinstance(cm, dict):
            return None
        return yaml.safe_load((cm.get("data") or {}).get("values") or "") or {}

    def installed_values(self, cmd: str, missing: str) -> dict:
        """The installed control plane's values (linkerd-config), or the command's failure:
        the API error, or `missing` when Linkerd is not installed."""
        try:
            values = self.config_values(self.server(cmd))
        except (ApiError, ConnectionError) as e:
            self.fail(cmd, str(e))
        if values is None:
            self.fail(cmd, missing)
        return values

    def crd_present(self, server: str, name: str) -> bool:
        return isinstance(get_or_none(
            f"{server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"), dict)

    # -- commands
    def main(self):
        if not self.args:
            done("linkerd manages the Linkerd service mesh.\n")
        cmd, rest = self.args[0], self.args[1:]
        if cmd == "version":
            self.version(rest)
        if cmd == "install":
            self.install(rest)
        if cmd == "check":
            self.check(rest)
        if cmd in ("diagnostics", "dg"):
            self.diagnostics(rest)
        if cmd == "authz":
            self.authz(rest)
        if cmd == "inject":
            self.inject(rest)
        if cmd == "viz" and rest[:1] == ["allow-scrapes"]:
            self.allow_scrapes(rest[1:])
        if cmd in ("multicluster", "mc"):
            self.multicluster(rest)
        if cmd.startswith("-"):
            cobra_flag_error("linkerd", f"unknown flag: {cmd.partition('=')[0]}")
        if cmd in ("upgrade", "uninstall", "viz",
                   "identity", "profile", "prune", "completion", "doc", "uninject"):
            not_modelled("linkerd", self.args)
        cobra_unknown_command("linkerd", cmd)

    def version(self, rest: list[str]):
        flags, pos = parse_flags("linkerd version", rest, {
            "--client": "bool", "--short": "bool", "--proxy": "bool", "-n": "str",
            "--namespace": "str"})
        if pos:
            self.fail("linkerd version", f'unknown command "{pos[0]}" for "linkerd version"')
        short = flags.get("--short")
        if flags.get("--client"):
            done(f"{self.release}\n" if short else f"Client version: {self.release}\n")
        server = self.server("linkerd version")
        try:
            values = self.config_values(server)  # linkerd-version-server
            server_version = (values or {}).get("linkerdVersion") or "unavailable"
        except (ApiError, ConnectionError):
            server_version = "unavailable"
        if short:
            done(f"{self.release}\n{server_version}\n")
        done(f"Client version: {self.release}\nServer version: {server_version}\n")

    # ---- install
    def install_spec(self) -> dict[str, str]:
        spec = {"--set": "list", "--set-string": "list", "--set-file": "list", "-f": "list",
                "--values": "list", "--ignore-cluster": "bool", "--registry": "str",
                "--identity-trust-anchors-file": "str", "--identity-issuer-certificate-file":
                "str", "--identity-issuer-key-file": "str", "--identity-trust-domain": "str",
                "--ha": "bool", "--cluster-domain": "str", "--controller-log-level": "str",
                "--proxy-log-level": "str", "--skip-inbound-ports": "str",
                "--skip-outbound-ports": "str", "-o": "str", "--output": "str"}
        if self.minor >= 12:  # linkerd-install-flags
            spec.update({"--crds": "bool", "--default-inbound-policy": "str"})
        return spec

    def install(self, rest: list[str]):
        flags, pos = parse_flags("linkerd install", rest, self.install_spec())
        if pos:
            self.fail("linkerd install", f'unknown command "{pos[0]}" for "linkerd install"')
        sets: dict[str, str] = {}
        for s in flags.get("--set", []) + flags.get("--set-string", []):
            k, _, v = s.partition("=")
            sets[k] = v
        # linkerd-install-values-files: -f/--values files, merged in order, under --set
        self.file_values = {}
        for path in flags.get("-f", []) + flags.get("--values", []):
            try:
                with open(path) as fh:
                    merge_values(self.file_values, yaml.safe_load(fh) or {})
            except OSError as e:
                self.fail("linkerd install", f"open {path}: {e.strerror.lower()}")
        for name in ("--identity-trust-anchors-file", "--identity-issuer-certificate-file",
                     "--identity-issuer-key-file"):
            path = flags.get(name)
            if path:
                try:  # linkerd-install-identity-files
                    with open(path):
                        pass
                except OSError as e:
                    self.fail("linkerd install", f"open {path}: {e.strerror.lower()}")
        policy = flags.get("--default-inbound-policy") or sets.get(
            "proxy.defaultInboundPolicy")
        if self.minor >= 12 and policy is not None:
            valid = CORE_POLICIES + (["audit"] if self.minor >= 16 else [])
            if policy not in valid:  # linkerd-install-default-inbound-policy
                self.fail("linkerd install", "--default-inbound-policy must be one of: "
                          f"{', '.join(valid)} (got {policy})")
        crds_only = bool(flags.get("--crds"))
        gateway = None
        for key in ("installGatewayAPI", "enableHttpRoutes"):
            if key in sets:
                gateway = sets[key] == "true"
        if not flags.get("--ignore-cluster"):
            server = self.server("linkerd install")
            try:
                http("GET", server + "/version")
            except (ApiError, ConnectionError) as e:
                done(err="Unable to install the Linkerd control plane. Cannot connect to the "
                         f"Kubernetes cluster:\n\n{e}\n\nYou can use the --ignore-cluster flag "
                         "if you just want to generate the installation config.", rc=1)
            if self.minor >= 12 and not crds_only:
                missing = [n for n in crds_of(self.minor, gateway)
                           if "gateway" not in n and not self.crd_present(server, n)]
                if missing:  # linkerd-install-crds-first
                    done(err="Linkerd CRDs must be installed first. Run linkerd install with "
                             "the --crds flag.\n", rc=1)
            if self.config_values(server) is not None:  # linkerd-install-config-exists
                done(err=f"Can't install the Linkerd control plane in the '{self.namespace}' "
                         "namespace. Reason: ConfigMap/linkerd-config already exists.\n"
                         "Run the command `linkerd upgrade`, if you are looking to upgrade "
                         "Linkerd.\n", rc=1)
            if self.minor >= 19 and crds_only and not gateway and not self.crd_present(
                    server, GATEWAY_CRD):
                # linkerd-install-gateway-api-required
                self.fail("linkerd install", "The Gateway API CRDs must be installed prior to "
                          "installing Linkerd. Run:\n\nkubectl apply --server-side -f https://"
                          "github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/"
                          "standard-install.yaml\n\nor see https://gateway-api.sigs.k8s.io/"
                          "guides/#installing-gateway-api for more options.")
        if not crds_only:  # linkerd-install-cluster-networks-validated (validateProxyValues)
            for network in self.cluster_networks(sets).split(","):
                if not valid_cidr(network):
                    self.fail("linkerd install", "cannot parse destination get networks: "
                              f"invalid CIDR address: {network}")
        docs: list[dict] = []
        if self.minor <= 11 or crds_only:
            docs += [self.crd_doc(n, v, self.minor)
                     for n, v in crds_of(self.minor, gateway).items()]
        if crds_only:
            out = "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs)
            done(out, "Rendering Linkerd CRDs...\nNext, run `linkerd install | kubectl apply "
                      "-f -` to install the control plane.\n\n")
        docs = [{"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": self.namespace,
                              "labels": {"linkerd.io/is-control-plane": "true"}}}] + docs
        docs += self.control_plane_docs(flags, sets, policy)
        done("".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs))

    @staticmethod
    def crd_doc(name: str, versions: list[str], minor: int = 11) -> dict:
        plural, _, group = name.partition(".")
        kind = {"servers": "Server", "serverauthorizations": "ServerAuthorization",
                "authorizationpolicies": "AuthorizationPolicy", "httproutes": "HTTPRoute",
                "meshtlsauthentications": "MeshTLSAuthentication", "grpcroutes": "GRPCRoute",
                "networkauthentications": "NetworkAuthentication", "tcproutes": "TCPRoute",
                "serviceprofiles": "ServiceProfile", "externalworkloads": "ExternalWorkload",
                "egressnetworks": "EgressNetwork", "tlsroutes": "TLSRoute",
                "httplocalratelimitpolicies": "HTTPLocalRateLimitPolicy"}[plural]
        return {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "labels": {"linkerd.io/control-plane-ns": "linkerd"}},
            "spec": {
                "group": group, "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                          "listKind": kind + "List"},
                "versions": [{"name": v, "served": True, "storage": v == versions[-1],
                              **crd_deprecation(kind, v, minor),
                              "schema": {"openAPIV3Schema": {
                                  "type": "object",
                                  "x-kubernetes-preserve-unknown-fields": True}}}
                             for v in versions]}}

    def identity_docs(self, flags: dict) -> list[dict]:
        """linkerd-install-identity-objects: the issuer Secret and the trust roots ConfigMap
        of the identity files given (none rendered here without them)."""
        paths = [flags.get(f"--identity-{n}-file") for n in (
            "trust-anchors", "issuer-certificate", "issuer-key")]
        if not all(paths):
            return []
        texts = []
        for path in paths:
            with open(path) as f:
                texts.append(f.read())
        anchor, crt, key = texts
        labels = {"linkerd.io/control-plane-component": "identity",
                  "linkerd.io/control-plane-ns": self.namespace}
        meta = {"namespace": self.namespace, "labels": labels}
        return [{"kind": "Secret", "apiVersion": "v1",
                 "metadata": {"name": "linkerd-identity-issuer", **meta},
                 "data": {"crt.pem": base64.b64encode(crt.strip().encode()).decode(),
                          "key.pem": base64.b64encode(key.strip().encode()).decode()}},
                {"kind": "ConfigMap", "apiVersion": "v1",
                 "metadata": {"name": "linkerd-identity-trust-roots", **meta},
                 "data": {"ca-bundle.crt": anchor.strip() + "\n"}}]

    def cluster_networks(self, sets: dict) -> str:
        """clusterNetworks as given (--set over a values file; an empty one stays empty), else
        the chart's default."""
        if "clusterNetworks" in sets:
            return sets["clusterNetworks"].replace("\\,", ",")
        if "clusterNetworks" in getattr(self, "file_values", {}):
            return str(self.file_values["clusterNetworks"] or "")
        return DEFAULT_NETWORKS + (",fd00::/8" if self.minor >= 16 else "")

    def probe_networks(self) -> list[str]:
        """policyController.probeNetworks (values.yaml: 0.0.0.0/0, and ::/0 from 2.16), as a
        values file may replace it (an empty list included)."""
        given = (getattr(self, "file_values", {}).get("policyController") or {})
        if "probeNetworks" in given:
            return [str(n) for n in given["probeNetworks"] or []]
        return ["0.0.0.0/0", "::/0"] if self.minor >= 16 else ["0.0.0.0/0"]

    def control_plane_docs(self, flags: dict, sets: dict, policy: str | None) -> list[dict]:
        registry = (flags.get("--registry") or "cr.l5d.io/linkerd").rstrip("/")
        tag = self.release
        networks = self.cluster_networks(sets)
        values: dict = {"linkerdVersion": tag, "clusterNetworks": networks,
                        "identityTrustDomain": flags.get("--identity-trust-domain")
                        or sets.get("identityTrustDomain") or "cluster.local"}
        if self.minor <= 11:
            values["policyController"] = {"defaultAllowPolicy": sets.get(
                "policyController.defaultAllowPolicy", "all-unauthenticated")}
        else:
            values["proxy"] = {"defaultInboundPolicy": policy or "all-unauthenticated"}
            values["policyController"] = {"probeNetworks": self.probe_networks()}
        images = {"proxy": f"{registry}/proxy:{tag}", "controller": f"{registry}/controller:{tag}"}
        if self.minor <= 18:
            images["policy-controller"] = f"{registry}/policy-controller:{tag}"
        if PROXY_INIT_VERSION[self.minor]:
            images["proxy-init"] = f"{registry}/proxy-init:{PROXY_INIT_VERSION[self.minor]}"
        docs: list[dict] = [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "linkerd-config", "namespace": self.namespace},
            "data": {"values": yaml.safe_dump(values, sort_keys=False)}}]
        docs += self.identity_docs(flags)
        for name in ("identity", "destination", "proxy-injector"):
            # linkerd-install-control-plane-defaults
            own = "cluster-unauthenticated" if name == "identity" and self.minor <= 11 \
                else "all-unauthenticated"
            containers = [{"name": "linkerd-proxy", "image": images["proxy"], "env": [
                {"name": "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "value": own},
                {"name": "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", "value": networks}]}]
            if name == "destination":  # linkerd-install-policy-controller-args
                containers.append({"name": "policy", "image": images.get(
                    "policy-controller", images["controller"]),
                    "args": self.policy_controller_args(values)})
                containers.append({"name": "sp-validator", "image": images["controller"]})
            containers.append({"name": name, "image": images["controller"]})
            for container, port, port_name in self.control_plane_ports(name):
                next(c for c in containers if c["name"] == container).setdefault(
                    "ports", []).append({"containerPort": port, "name": port_name})
            init = [{"name": "linkerd-init", "image": images["proxy-init"]}] if (
                "proxy-init" in images) else []
            labels = {"linkerd.io/control-plane-component": name,
                      "linkerd.io/control-plane-ns": self.namespace}
            docs.append({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": f"linkerd-{name}", "namespace": self.namespace,
                             "labels": labels},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels, "annotations": {
                             "config.linkerd.io/default-inbound-policy":
                             "all-unauthenticated"}},
                                      "spec": {"initContainers": init,
                                               "containers": containers}}}})
        if self.minor <= 11:  # linkerd-211-heartbeat-v1beta1
            docs.append({
                "apiVersion": "batch/v1beta1", "kind": "CronJob",
                "metadata": {"name": "linkerd-heartbeat", "namespace": self.namespace},
                "spec": {"schedule": "1 0 * * *", "jobTemplate": {"spec": {"template": {
                    "spec": {"restartPolicy": "Never", "containers": [
                        {"name": "heartbeat", "image": images["controller"]}]}}}}}})
        return docs

    def control_plane_ports(self, name: str) -> list[tuple[str, int, str]]:
        """linkerd-install-control-plane-port-names: (container, port, name) of a component."""
        new = self.minor >= 19
        return {
            "destination": [("destination", 8086, "dest-grpc" if new else "grpc"),
                            ("destination", 9996, "dest-admin" if new else "admin-http"),
                            ("sp-validator", 8443, "sp-validator"),
                            ("sp-validator", 9997, "spval-admin" if new else "admin-http"),
                            ("policy", 8090, "policy-grpc" if new else "grpc"),
                            ("policy", 9990, "policy-admin" if new else "admin-http"),
                            ("policy", 9443, "policy-https")],
            "identity": [("identity", 8080, "ident-grpc" if new else "grpc"),
                         ("identity", 9990, "ident-admin" if new else "admin-http")],
            "proxy-injector": [("proxy-injector", 8443, "proxy-injector"),
                               ("proxy-injector", 9995,
                                "injector-admin" if new else "admin-http")]}[name]

    def policy_controller_args(self, values: dict) -> list[str]:
        """The destination chart's policy container args (charts/linkerd2/templates/
        destination.yaml at stable-2.11.0 l.252-258; charts/linkerd-control-plane/templates/
        destination.yaml at stable-2.12.0 l.262-269, version-2.16 l.324-333)."""
        policy = (values.get("policyController") or {}).get("defaultAllowPolicy") \
            if self.minor <= 11 else (values.get("proxy") or {}).get("defaultInboundPolicy")
        args = ["--admin-addr=0.0.0.0:9990", "--grpc-addr=0.0.0.0:8090",
                "--admission-addr=0.0.0.0:9443",
                f"--cluster-networks={values['clusterNetworks']}",
                f"--identity-domain={values['identityTrustDomain']}"]
        if self.minor >= 16:
            args.append("--cluster-domain=cluster.local")
        args += [f"--default-policy={policy}", "--log-level=linkerd=info,warn",
                 "--log-format=plain"]
        probes = (values.get("policyController") or {}).get("probeNetworks")
        if self.minor >= 12 and probes:  # left out for an empty list (destination.yaml)
            args.append(f"--probe-networks={','.join(probes)}")
        return args

    # ---- multicluster (linkerd-multicluster-link-commands)
    MC_SHORT = {
        "allow": "Outputs credential resources that allow service-mirror controllers to "
                 "connect to this cluster",
        "check": "Check the multicluster extension for potential problems",
        "gateways": "Display stats information about the gateways in target clusters",
        "install": "Output Kubernetes configs to install the Linkerd multicluster add-on",
        "link": "Outputs resources that allow another cluster to mirror services from this one",
        "link-gen": "Outputs a Link manifest and credentials for another cluster to mirror "
                    "services from this one",
        "uninstall": "Output Kubernetes configs to uninstall the Linkerd multicluster add-on",
        "unlink": "Outputs link resources for deletion"}

    def multicluster(self, rest: list[str]):
        """Help only: the commands, and link/link-gen's help; running them is not modelled."""
        names = [n for n in self.MC_SHORT if n != "link-gen" or self.minor >= 18]
        deprecated = {"link": "please use `multicluster link-gen` instead.",
                      "unlink": "only use for removing service mirror resources created by "
                      "the (also deprecated) 'linkerd multicluster link' command (Linkerd "
                      "2.17 and earlier), using the flag --only-controller"
                      } if self.minor >= 18 else {}
        words = [a for a in rest if not a.startswith("-")]
        helping = "--help" in rest or "-h" in rest
        if not words or words[0] not in names:  # no Run: cobra prints the help, exit 0
            width = max(11, *(len(n) for n in names))
            listed = "".join(f"  {n.ljust(width)} {self.MC_SHORT[n]}\n" for n in sorted(names)
                             if n not in deprecated)
            done("Manages the multicluster setup for Linkerd.\n\nUsage:\n  linkerd "
                 "multicluster [command]\n\nAliases:\n  multicluster, mc\n\nAvailable "
                 f"Commands:\n{listed}\nUse \"linkerd multicluster [command] --help\" for "
                 "more information about a command.\n")
        name = words[0]
        err = f'Command "{name}" is deprecated, {deprecated[name]}\n' if name in deprecated \
            else ""
        if name in ("link", "link-gen") and helping:
            done(f"{self.MC_SHORT[name]}.\n\nUsage:\n  linkerd multicluster {name} [flags]"
                 "\n\nFlags:\n      --api-server-address string   The api server address of "
                 "the target cluster\n      --cluster-name string         Cluster name\n", err)
        sub = rest[rest.index(name) + 1:]
        if name == "install" and not helping:
            self.mc_install(sub)
        if name in ("link", "link-gen") and not helping:
            sys.stderr.write(err)
            self.mc_link(name, sub)
        not_modelled("linkerd", self.args)

    # ---- multicluster install / link / link-gen (behaviours linkerd-mc-*)
    MC_NS = "linkerd-multicluster"
    MC_REMOTE_SA = "linkerd-service-mirror-remote-access-default"

    def mc_install_spec(self) -> dict[str, str]:
        """multicluster/cmd/install.go's flags at the tags (linkerd-mc-install-flags)."""
        spec = {"--set": "list", "--set-string": "list", "--set-file": "list", "-f": "list",
                "--values": "list", "--gateway": "bool", "--gateway-port": "str",
                "--gateway-probe-seconds": "str", "--gateway-probe-port": "str",
                "--service-mirror-credentials": "bool", "--gateway-service-type": "str",
                "--wait": "str"}
        if self.minor == 11:
            spec["--namespace"] = "str"
        else:
            spec.update({"--ha": "bool", "--ignore-cluster": "bool"})
        if self.minor >= 16:
            spec.update({"-o": "str", "--output": "str"})
        if self.minor >= 20:
            spec["--gateway-healthcheck-nodeport"] = "str"
        return spec

    def mc_install(self, rest: list[str]):
        cmd = "linkerd multicluster install"
        flags, pos = parse_flags(cmd, rest, self.mc_install_spec())
        if pos:
            self.fail(cmd, f'unknown command "{pos[0]}" for "{cmd}"')
        values = None
        if not flags.get("--ignore-cluster"):
            values = self.installed_values(cmd, "you need Linkerd to be installed in order to "
                                                "install multicluster addons")
        trust_domain = (values or {}).get("identityTrustDomain") or "cluster.local"
        controllers = []
        for item in flags.get("--set", []):
            key, _, val = item.partition("=")
            m = re.fullmatch(r"controllers\[(\d+)\]\.link\.ref\.name", key)
            if m and self.minor >= 18:
                controllers.append(val)
            elif key.startswith("controllers"):
                self.fail(cmd, f"the cluster double models only controllers[N].link.ref.name "
                               f"(not {key})")
        ns = flags.get("--namespace") or self.MC_NS
        gateway = flags.get("--gateway", True)
        service_type = flags.get("--gateway-service-type") or "LoadBalancer"
        port = int(flags.get("--gateway-port") or 4143)
        probe_port = int(flags.get("--gateway-probe-port") or 4191)
        labels = {"linkerd.io/extension": "multicluster"}
        docs: list[dict] = [
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": ns, "labels": dict(labels)}},
            self.mc_link_crd(),
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": self.MC_REMOTE_SA, "namespace": ns, "labels": dict(labels)}}]
        if gateway:
            gw = "linkerd-gateway"
            docs += [
                {"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": gw, "namespace": ns, "labels": dict(labels)}},
                {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": gw, "namespace": ns,
                              "labels": {**labels, "app": gw,
                                         "linkerd.io/control-plane-component": "gateway"}},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": gw}},
                          "template": {
                              "metadata": {"labels": {"app": gw}, "annotations": {
                                  "linkerd.io/inject": "enabled",
                                  "config.linkerd.io/proxy-require-identity-inbound-ports":
                                      str(port),
                                  "config.linkerd.io/enable-gateway": "true"}},
                              "spec": {"serviceAccountName": gw, "containers": [{
                                  "name": "pause",
                                  "image": "gcr.io/google_containers/pause"}]}}}},
                {"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": gw, "namespace": ns, "labels": dict(labels),
                              "annotations": {
                                  "mirror.linkerd.io/gateway-identity":
                                      f"{gw}.{ns}.serviceaccount.identity.{self.namespace}."
                                      f"{trust_domain}",
                                  "mirror.linkerd.io/probe-period": "3",
                                  "mirror.linkerd.io/probe-path": "/ready",
                                  "mirror.linkerd.io/multicluster-gateway": "true"}},
                 "spec": {"type": service_type, "selector": {"app": gw}, "ports": [
                     {"name": "mc-gateway", "port": port, "protocol": "TCP"},
                     {"name": "mc-probe", "port": probe_port, "protocol": "TCP"}]}},
                *self.mc_gateway_policy(ns, gw)]
        for name in controllers:  # templates/controller/deployment.yaml (2.18+)
            docs.append(self.mc_mirror_deployment(f"controller-{name}", ns, name))
        done(yaml.safe_dump_all(docs, sort_keys=False))

    def mc_link_crd(self) -> dict:
        versions = ["v1alpha1"] + (["v1alpha2"] if self.minor >= 17 else []) + (
            ["v1alpha3"] if self.minor >= 18 else [])
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "links.multicluster.linkerd.io",
                             "labels": {"linkerd.io/extension": "multicluster"}},
                "spec": {"group": "multicluster.linkerd.io", "scope": "Namespaced",
                         "names": {"kind": "Link", "plural": "links", "singular": "link",
                                   "listKind": "LinkList"},
                         "versions": [{"name": v, "served": True, "storage": v == versions[-1],
                                       "schema": {"openAPIV3Schema": {
                                           "type": "object",
                                           "x-kubernetes-preserve-unknown-fields": True}}}
                                      for v in versions]}}

    def mc_gateway_policy(self, ns: str, gw: str) -> list[dict]:
        """templates/gateway-policy.yaml: 2.11-2.12 a Server (HTTP/1) and a ServerAuthorization
        of any mesh identity from anywhere; 2.13+ an AuthorizationPolicy requiring the
        MeshTLSAuthentication any-meshed and the NetworkAuthentication source-cluster."""
        meta = {"namespace": ns, "labels": {"linkerd.io/extension": "multicluster", "app": gw}}
        server = {"apiVersion": "policy.linkerd.io/" + (
            "v1beta3" if self.minor >= 16 else "v1beta2" if self.minor == 15 else "v1beta1"),
            "kind": "Server", "metadata": {"name": gw, **meta},
            "spec": {"podSelector": {"matchLabels": {"app": gw}}, "port": "linkerd-proxy"}}
        anywhere = [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]
        if self.minor <= 12:
            server["spec"]["proxyProtocol"] = "HTTP/1"
            return [server, {
                "apiVersion": "policy.linkerd.io/v1beta1", "kind": "ServerAuthorization",
                "metadata": {"name": gw, **meta},
                "spec": {"server": {"name": gw},
                         "client": {"meshTLS": {"identities": ["*"]}, "networks": anywhere}}}]
        auth = "policy.linkerd.io/v1alpha1"
        return [server, {
            "apiVersion": auth, "kind": "AuthorizationPolicy", "metadata": {"name": gw, **meta},
            "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": gw},
                     "requiredAuthenticationRefs": [
                         {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication",
                          "name": "any-meshed", "namespace": ns},
                         {"group": "policy.linkerd.io", "kind": "NetworkAuthentication",
                          "name": "source-cluster", "namespace": ns}]}},
            {"apiVersion": auth, "kind": "MeshTLSAuthentication",
             "metadata": {"name": "any-meshed", **meta}, "spec": {"identities": ["*"]}},
            {"apiVersion": auth, "kind": "NetworkAuthentication",
             "metadata": {"name": "source-cluster", **meta}, "spec": {"networks": anywhere}}]

    @staticmethod
    def mc_mirror_deployment(name: str, ns: str, cluster: str) -> dict:
        labels = {"linkerd.io/extension": "multicluster",
                  "linkerd.io/control-plane-component": "service-mirror",
                  "mirror.linkerd.io/cluster-name": cluster}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {"replicas": 1,
                         "selector": {"matchLabels": {"mirror.linkerd.io/cluster-name": cluster}},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{
                                          "name": "service-mirror",
                                          "image": "cr.l5d.io/linkerd/controller"}]}}}}

    def mc_link(self, name: str, rest: list[str]):
        cmd = f"linkerd multicluster {name}"
        spec = {"--namespace": "str", "--cluster-name": "str", "--api-server-address": "str",
                "--service-account-name": "str", "--gateway-name": "str",
                "--gateway-namespace": "str", "--selector": "str", "-l": "str",
                "--gateway-addresses": "str", "--gateway-port": "str"}
        # linkerd-mc-link-output (flags): link.go l.323-336 at stable-2.11.0 (also 2.12, 2.13);
        # 2.14 adds --log-format, --remote-discovery-selector, --ha, --gateway; 2.16 -o;
        # 2.17 --federated-service-selector; 2.18 --excluded-*; link-gen.go at 2.18, 2.20
        if name == "link":
            spec.update({"--control-plane-version": "str", "--service-mirror-retry-limit":
                         "str", "--log-level": "str", "--registry": "str"})
            if self.minor >= 14:
                spec.update({"--log-format": "str", "--ha": "bool"})
        if self.minor >= 14:
            spec.update({"--remote-discovery-selector": "str", "--gateway": "bool"})
        if self.minor >= 16:
            spec.update({"-o": "str", "--output": "str"})
        if self.minor >= 17:
            spec["--federated-service-selector"] = "str"
        if self.minor >= 18:
            spec.update({"--excluded-annotations": "list", "--excluded-labels": "list"})
        flags, pos = parse_flags(cmd, rest, spec)
        if pos:
            self.fail(cmd, f'unknown command "{pos[0]}" for "{cmd}"')
        cluster = flags.get("--cluster-name") or ""
        if not cluster:
            self.fail(cmd, "you need to specify cluster name" if name == "link-gen"
                      else "You need to specify cluster name")
        server = self.server(cmd)
        values = self.installed_values(cmd, "you need Linkerd to be installed on a cluster in "
                                            "order to get its credentials")
        ns = flags.get("--namespace") or self.MC_NS
        sa_name = flags.get("--service-account-name") or self.MC_REMOTE_SA
        if get_or_none(f"{server}/api/v1/namespaces/{ns}/serviceaccounts/{sa_name}") is None:
            self.fail(cmd, f'serviceaccounts "{sa_name}" not found')
        gw_ns = flags.get("--gateway-namespace") or self.MC_NS
        gw_name = flags.get("--gateway-name") or "linkerd-gateway"
        gateway = get_or_none(f"{server}/api/v1/namespaces/{gw_ns}/services/{gw_name}")
        if gateway is None:
            self.fail(cmd, f'services "{gw_name}" not found')
        ingress = [i.get("ip") or i.get("hostname") for i in
                   (((gateway.get("status") or {}).get("loadBalancer") or {}).get("ingress")
                    or []) if i.get("ip") or i.get("hostname")]
        addresses = flags.get("--gateway-addresses") or ",".join(ingress)
        if not addresses:
            self.fail(cmd, f"{'gateway' if name == 'link-gen' else 'Gateway'} {gw_name}.{gw_ns} "
                           "has no ingress addresses")
        identity = (gateway["metadata"].get("annotations") or {}).get(
            "mirror.linkerd.io/gateway-identity")
        if not identity:
            self.fail(cmd, f"gateway {gw_name}.{gw_ns} has no mirror.linkerd.io/gateway-identity "
                           "annotation")
        port = flags.get("--gateway-port") or next(
            (str(p["port"]) for p in gateway["spec"].get("ports") or []
             if p.get("name") == "mc-gateway"), "")
        if not port:
            self.fail(cmd, f"gateway service {gw_name} has no gateway port named mc-gateway")
        cfg = load_kubeconfig(self.kubeconfig)
        current = self.context or cfg["current-context"]
        kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": current,
                      "clusters": [{"name": current, "cluster": {
                          "server": flags.get("--api-server-address") or server}}],
                      "contexts": [{"name": current, "context": {"cluster": current,
                                                                 "user": sa_name}}],
                      # the service account's token is not modelled: the double's API
                      # server takes any token (linkerd-mc-link-refusals)
                      "users": [{"name": sa_name, "user": {"token": "cluster-double"}}]}
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "type": "mirror.linkerd.io/remote-kubeconfig",
                  "metadata": {"name": f"cluster-credentials-{cluster}", "namespace": ns},
                  "data": {"kubeconfig": base64.b64encode(
                      yaml.safe_dump(kubeconfig).encode()).decode()}}
        version = "v1alpha3" if self.minor >= 18 else "v1alpha2" if self.minor == 17 \
            else "v1alpha1"
        link = {"apiVersion": f"multicluster.linkerd.io/{version}", "kind": "Link",
                "metadata": {"name": cluster, "namespace": ns},
                "spec": {"targetClusterName": cluster,
                         "targetClusterDomain": values.get("clusterDomain") or "cluster.local",
                         "targetClusterLinkerdNamespace": self.namespace,
                         "clusterCredentialsSecret": f"cluster-credentials-{cluster}",
                         "gatewayAddress": addresses, "gatewayPort": str(port),
                         "gatewayIdentity": identity,
                         "probeSpec": {"path": "/ready", "port": "4191", "period": "3s"},
                         "selector": {"matchLabels": dict(
                             [(flags.get("--selector") or flags.get("-l")
                               or "mirror.linkerd.io/exported=true").split("=", 1)])}}}
        docs = [secret, link]
        if name == "link":  # the service mirror chart (linkerd-multicluster-link), 2.11-2.17
            docs.append(self.mc_mirror_deployment(f"linkerd-service-mirror-{cluster}", ns,
                                                  cluster))
        done(yaml.safe_dump_all(docs, sort_keys=False))

    # ---- authz
    def authz(self, rest: list[str]):
        """linkerd-authz: cli/cmd/authz.go and pkg/k8s/policy.go at the tags."""
        flags, pos = parse_flags("linkerd authz", rest, {"-n": "str", "--namespace": "str"})
        if not 1 <= len(pos) <= 2:
            self.fail("linkerd authz", f"accepts between 1 and 2 arg(s), received {len(pos)}")
        ns = flags.get("-n") or flags.get("--namespace") or "default"
        server = self.server("linkerd authz")
        pods = self.pods_for(server, ns, "/".join(pos))
        base = f"{server}/apis/policy.linkerd.io"
        # the Server version the CLI reads (F9.2): v1alpha1 at 2.11 (ServerGVR), then
        # ServerV1beta1 (2.12-2.14), ServerV1beta2 (2.15), ServerV1beta3 (2.16+)
        sv = ("v1alpha1" if self.minor <= 11 else "v1beta1" if self.minor <= 14
              else "v1beta2" if self.minor == 15 else "v1beta3")
        saz_version = "v1alpha1" if self.minor <= 11 else "v1beta1"

        def items(url: str, what: str) -> list[dict]:
            try:
                return (http("GET", url) or {}).get("items") or []
            except ApiError:
                done(err=f"Failed to get {what} resources: the server could not find the "
                         f"requested resource\n", rc=1)
            return []

        def get_server(name: str, why: str) -> dict | None:
            try:
                found = http("GET", f"{base}/{sv}/namespaces/{ns}/servers/{name}")
            except ApiError as e:
                if self.minor <= 11:
                    done(err=f"Failed to get server {name}: {e.body}\n", rc=1)
                sys.stderr.write(f"{why} but we failed to get it: {e.body}\n")
                return None
            return found if isinstance(found, dict) else None

        rows: list[tuple[str, str, str, str]] = []
        for saz in items(f"{base}/{saz_version}/namespaces/{ns}/serverauthorizations",
                         "serverauthorization"):
            ref = (saz.get("spec") or {}).get("server") or {}
            sname = saz["metadata"]["name"]
            if ref.get("name"):
                one = get_server(ref["name"],
                                 f"ServerAuthorization/{sname} targets Server/{ref['name']}")
                servers = [one] if one else []
            elif ref.get("selector") is not None:
                servers = [x for x in items(f"{base}/{sv}/namespaces/{ns}/servers", "server")
                           if selects(ref["selector"], x["metadata"].get("labels") or {})]
            else:
                servers = []
            rows += [("", x["metadata"]["name"], "", sname) for x in servers
                     if server_includes_pod(x, pods)]
        if self.minor >= 12:
            all_servers = None
            for ap in items(f"{base}/v1alpha1/namespaces/{ns}/authorizationpolicies",
                            "AuthorizationPolicy"):
                t = (ap.get("spec") or {}).get("targetRef") or {}
                kind, group, name = t.get("kind"), t.get("group") or "", t.get("name")
                pname = ap["metadata"]["name"]
                if kind == "Namespace" and group == "" and self.minor >= 13:
                    if all_servers is None:
                        all_servers = items(f"{base}/{sv}/namespaces/{ns}/servers", "server")
                    rows += [("", x["metadata"]["name"], pname, "") for x in all_servers
                             if server_includes_pod(x, pods)]
                elif kind == "Server" and group == "policy.linkerd.io":
                    one = get_server(name, f"AuthorizationPolicy/{pname} targets Server/{name}")
                    if one and server_includes_pod(one, pods):
                        rows.append(("", one["metadata"]["name"], pname, ""))
                elif kind == "HTTPRoute" and group == "policy.linkerd.io":
                    route = get_or_none(f"{base}/v1alpha1/namespaces/{ns}/httproutes/{name}")
                    if not isinstance(route, dict):
                        sys.stderr.write(f"AuthorizationPolicy/{pname} targets HTTPRoute/{name}"
                                         " but we failed to get it: not found\n")
                        continue
                    for parent in (route.get("spec") or {}).get("parentRefs") or []:
                        if parent.get("kind") != "Server" or \
                                parent.get("group") != "policy.linkerd.io":
                            continue
                        one = get_server(parent.get("name"), f"HTTPRoute/{name} belongs to "
                                         f"Server/{parent.get('name')}")
                        if one and server_includes_pod(one, pods):
                            rows.append((name, one["metadata"]["name"], pname, ""))
        if self.minor <= 11:  # SERVER AUTHORIZATION, right-aligned (cli/table Render)
            headers, data, widths, left = ["SERVER", "AUTHORIZATION"], [
                (r[1], r[3]) for r in rows], [6, 13], False
        else:  # ROUTE `*`: the whole Server
            headers, data, widths, left = (
                ["ROUTE", "SERVER", "AUTHORIZATION_POLICY", "SERVER_AUTHORIZATION"],
                [(r[0] or "*", r[1], r[2], r[3]) for r in rows], [6, 6, 21, 21], True)
        widths = [max([w, *(len(d[i]) for d in data)]) for i, w in enumerate(widths)]

        def line(values) -> str:
            return "".join((v.ljust(w) if left else v.rjust(w)) + "  "
                           for v, w in zip(values, widths, strict=True)) + "\n"

        done(line(headers) + "".join(line(d) for d in data))

    def pods_for(self, server: str, ns: str, resource: str) -> list[dict]:
        """getPodsForResourceOrKind (pkg/k8s/policy.go): po/NAME, deploy/NAME or the kind."""
        kind, _, name = resource.partition("/")
        pods = (get_or_none(f"{server}/api/v1/namespaces/{ns}/pods") or {}).get("items") or []
        if kind in ("po", "pod", "pods"):
            return [p for p in pods if not name or p["metadata"]["name"] == name]
        if kind in ("deploy", "deployment", "deployments"):
            deps = [get_or_none(f"{server}/apis/apps/v1/namespaces/{ns}/deployments/{name}")]\
                if name else (get_or_none(f"{server}/apis/apps/v1/namespaces/{ns}/deployments")
                              or {}).get("items") or []
            if name and deps[0] is None:
                done(err=f'failed to get pods: deployments.apps "{name}" not found', rc=1)
            sels = [(d.get("spec") or {}).get("selector") or {} for d in deps if d]
            return [p for p in pods if any(selects(s, p["metadata"].get("labels") or {})
                                           for s in sels)]
        done(err=f"Error: invalid resource: {resource}\n", rc=1)
        return []

    # ---- inject
    def inject(self, rest: list[str]):
        """linkerd-inject-default-inbound-policy: cli/cmd/inject.go at stable-2.12.0 (l.182-206,
        485-486): pod templates get `linkerd.io/inject: enabled` and the config annotations
        of the flags that differ from the defaults; Namespaces are annotated likewise."""
        spec = {"--ignore-cluster": "bool", "--manual": "bool"}
        if self.minor >= 12:
            spec["--default-inbound-policy"] = "str"
        flags, pos = parse_flags("linkerd inject", rest, spec)
        if pos != ["-"]:
            not_modelled("linkerd", self.args)
        policy = flags.get("--default-inbound-policy")
        valid = CORE_POLICIES + (["audit"] if self.minor >= 16 else [])
        if policy is not None and policy not in valid:
            self.fail("linkerd inject", "--default-inbound-policy must be one of: "
                      f"{', '.join(valid)} (got {policy})")
        overrides = {"config.linkerd.io/default-inbound-policy": policy} if policy not in (
            None, "all-unauthenticated") else {}
        out, report = [], []
        for doc in yaml.safe_load_all(sys.stdin.read()):
            if not isinstance(doc, dict):
                continue
            kind, name = doc.get("kind", ""), (doc.get("metadata") or {}).get("name", "")
            if kind == "Namespace":
                doc.setdefault("metadata", {}).setdefault("annotations", {}).update(
                    {"linkerd.io/inject": "enabled", **overrides})
                report.append(f'namespace "{name}" annotated')
            spec_ = doc.get("spec") or {}
            template = (spec_.get("jobTemplate") or {}).get("spec", {}).get("template") \
                if kind == "CronJob" else spec_.get("template")
            if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                        "CronJob") and isinstance(template, dict):
                template.setdefault("metadata", {}).setdefault("annotations", {}).update(
                    {**overrides, "linkerd.io/inject": "enabled"})
                report.append(f'{kind.lower()} "{name}" injected')
            out.append(doc)
        done("".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in out),
             "\n" + "".join(r + "\n" for r in report) + "\n")

    # ---- viz allow-scrapes
    def allow_scrapes(self, rest: list[str]):
        """linkerd-viz-allow-scrapes: viz/cmd/allow-scrapes.go at stable-2.12.0 (the Server
        v1beta2 at version-2.15, v1beta3 from version-2.16, with -o json|yaml)."""
        if self.minor <= 11:
            cobra_unknown_command("linkerd viz", "allow-scrapes")
        spec = {"-n": "str", "--namespace": "str"}
        if self.minor >= 16:
            spec.update({"-o": "str", "--output": "str"})
        flags, pos = parse_flags("linkerd viz allow-scrapes", rest, spec)
        if pos:
            self.fail("linkerd viz allow-scrapes", f'unknown command "{pos[0]}" for '
                      '"linkerd viz allow-scrapes"')
        ns = flags.get("-n") or flags.get("--namespace")
        if not ns:
            self.fail("linkerd viz allow-scrapes", 'required flag(s) "namespace" not set')
        sv = "v1beta1" if self.minor <= 14 else "v1beta2" if self.minor == 15 else "v1beta3"
        meta = {"namespace": ns, "annotations": {
            "linkerd-io/created-by": f"linkerd/helm {self.release}"},
            "labels": {"linkerd.io/extension": "viz"}}
        parent = [{"name": "proxy-admin", "kind": "Server", "group": "policy.linkerd.io"}]

        def obj(api, kind, name, body):
            return {"apiVersion": f"policy.linkerd.io/{api}", "kind": kind,
                    "metadata": {"name": name, **meta}, "spec": body}

        docs = [
            obj(sv, "Server", "proxy-admin", {
                "podSelector": {"matchExpressions": [
                    {"key": "linkerd.io/control-plane-ns", "operator": "Exists"}]},
                "port": "linkerd-admin", "proxyProtocol": "HTTP/1"}),
            obj("v1alpha1", "HTTPRoute", "proxy-metrics", {
                "parentRefs": parent, "rules": [{"matches": [{"path": {"value": "/metrics"}}]}]}),
            obj("v1alpha1", "HTTPRoute", "proxy-probes", {
                "parentRefs": parent, "rules": [{"matches": [{"path": {"value": "/live"}},
                                                             {"path": {"value": "/ready"}}]}]}),
            obj("v1alpha1", "AuthorizationPolicy", "prometheus-scrape", {
                "targetRef": {"group": "policy.linkerd.io", "kind": "HTTPRoute",
                              "name": "proxy-metrics"},
                "requiredAuthenticationRefs": [
                    {"kind": "ServiceAccount", "name": "prometheus", "namespace": "linkerd-viz"}]}),
            obj("v1alpha1", "AuthorizationPolicy", "proxy-probes", {
                "targetRef": {"group": "policy.linkerd.io", "kind": "HTTPRoute",
                              "name": "proxy-probes"},
                "requiredAuthenticationRefs": [
                    {"kind": "NetworkAuthentication", "group": "policy.linkerd.io",
                     "name": "kubelet", "namespace": "linkerd-viz"}]}),
        ]
        if (flags.get("-o") or flags.get("--output")) == "json":
            done("".join(json.dumps(d, indent=4) + "\n" for d in docs))
        done("".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs))

    # ---- check
    def check(self, rest: list[str]):
        spec = {"--pre": "bool", "--wait": "str", "-o": "str", "--output": "str",
                "--proxy": "bool", "-n": "str", "--namespace": "str",
                "--expected-version": "str", "--linkerd-cni-enabled": "bool"}
        if self.minor >= 12:  # linkerd-check-flags: --crds from edge-22.6.1 (#8499)
            spec["--crds"] = "bool"
        flags, pos = parse_flags("linkerd check", rest, spec)
        if pos:
            self.fail("linkerd check", f'unknown command "{pos[0]}" for "linkerd check"')
        output = flags.get("-o") or flags.get("--output") or "table"
        if output not in ("table", "json", "short"):  # linkerd-check-flags (validate)
            self.fail("linkerd check", "Validation error when executing check command: Invalid "
                      f"output type '{output}'. Supported output types are: json, table, short")
        server = self.server("linkerd check")
        hint = (f"https://linkerd.io/2.{self.minor}/checks/#"
                if self.release.startswith("stable-") else "https://linkerd.io/2/checks/#")
        results: list[tuple[str, str, str | None, str]] = []  # category, check, error, anchor

        def add(category, desc, err, anchor):
            results.append((category, desc, err, anchor))
            return err is None

        kube_version = None
        try:
            kube_version = http("GET", server + "/version")["gitVersion"]
            add("kubernetes-api", "can initialize the client", None, "k8s-api")
            add("kubernetes-api", "can query the Kubernetes API", None, "k8s-api")
        except (ApiError, ConnectionError, KeyError, TypeError) as e:
            add("kubernetes-api", "can initialize the client", None, "k8s-api")
            add("kubernetes-api", "can query the Kubernetes API", str(e), "k8s-api")
            self.print_check(results, output, hint)
        minimum = {11: (1, 17, 0), 12: (1, 21, 0), 13: (1, 21, 0), 14: (1, 21, 0),
                   15: (1, 22, 0), 16: (1, 22, 0), 17: (1, 22, 0), 18: (1, 23, 0),
                   19: (1, 23, 0)}.get(self.minor, (1, 31, 0))
        have = semver(kube_version)
        err = None
        if have < minimum:  # linkerd-check-k8s-version
            err = (f"Kubernetes is on version [{dotted(have)}], but version [{dotted(minimum)}]"
                   " or more recent is required")
        add("kubernetes-version", "is running the minimum Kubernetes API version", err,
            "k8s-version")
        if self.minor <= 11:
            add("kubernetes-version", "is running the minimum kubectl version",
                self.kubectl_check(minimum), "kubectl-version")
        if has_gateway_check(self.release):  # linkerd-check-gateway-api
            err = None if self.crd_present(server, GATEWAY_CRD) else (
                "The Gateway API CRDs must be installed prior to installing Linkerd. Run:\n\n"
                "kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/"
                "releases/download/v1.5.1/standard-install.yaml\n\nor see https://"
                "gateway-api.sigs.k8s.io/guides/#installing-gateway-api for more options.")
            if not add("gateway-api-crd", "Gateway API CRDs are installed", err,
                       "gateway-api-crd"):
                self.print_check(results, output, hint)
        if flags.get("--pre"):
            exists = get_or_none(f"{server}/api/v1/namespaces/{self.namespace}") is not None
            add("pre-kubernetes-setup", "control plane namespace does not already exist",
                f'The "{self.namespace}" namespace already exists' if exists else None,
                "pre-ns")  # linkerd-check-pre-existing-ns
            for what in ("non-namespaced resources", "ServiceAccounts", "Services",
                         "Deployments", "CronJobs", "ConfigMaps", "Secrets"):
                add("pre-kubernetes-setup", f"can create {what}", None, "pre-k8s")
        else:
            if self.minor >= 12:  # linkerd-check-post-install
                missing = [n for n in crds_of(self.minor) if "gateway" not in n
                           and not self.crd_present(server, n)]
                err = ("missing " + ", ".join(missing)) if missing else None
                if not add("linkerd-crd", "control plane CustomResourceDefinitions exist",
                           err, "l5d-existence-crd") or flags.get("--crds"):
                    self.print_check(results, output, hint)
            values = self.config_values(server)
            add("linkerd-existence", "'linkerd-config' config map exists",
                None if values is not None else 'configmaps "linkerd-config" not found',
                "l5d-existence-linkerd-config")
        self.print_check(results, output, hint)

    def kubectl_check(self, minimum: tuple[int, int, int]) -> str | None:
        """2.11 execs `kubectl version --client --short` from PATH and parses its stdout."""
        try:
            proc = subprocess.run(["kubectl", "version", "--client", "--short"],
                                  capture_output=True, text=True)
        except FileNotFoundError:
            return 'exec: "kubectl": executable file not found in $PATH'
        if proc.returncode:
            return f"exit status {proc.returncode}"
        try:
            have = semver(proc.stdout)
        except ValueError:
            return f"unknown version string format [{proc.stdout.strip()}]"
        if have < minimum:
            return (f"kubectl is on version [{dotted(have)}], but version [{dotted(minimum)}]"
                    " or more recent is required")
        return None

    def print_check(self, results, output: str, hint: str):
        """healthcheck_output.go: category header and dashes, `√ desc` / `× desc` with the
        error and a hint URL indented by 4, a blank line, then the status line."""
        ok = all(err is None for _c, _d, err, _a in results)
        lines: list[str] = []
        if output == "json":
            cats: dict[str, list] = {}
            for cat, desc, err, _a in results:
                cats.setdefault(cat, []).append({"description": desc,
                                                 "result": "success" if err is None else "error",
                                                 **({"error": err} if err else {})})
            done(json.dumps({"success": ok, "categories": [
                {"categoryName": c, "checks": v} for c, v in cats.items()]}, indent=2) + "\n",
                rc=0 if ok else 1)
        last = None
        shown = [r for r in results if output != "short" or r[2] is not None]
        if output == "short" and shown:
            lines += ["Linkerd core checks", "===================", ""]
        for cat, desc, err, anchor in shown:
            if cat != last:
                if last is not None:
                    lines.append("")
                lines += [cat, "-" * len(cat)]
                last = cat
            lines.append(f"{'√' if err is None else '×'} {desc}")
            if err is not None:
                lines += [f"    {err}", f"    see {hint}{anchor} for hints"]
        if output != "short" or not ok:
            lines.append("")
        lines.append(f"Status check results are {'√' if ok else '×'}")
        done("\n".join(lines) + "\n", rc=0 if ok else 1)

    # ---- diagnostics
    def diagnostics(self, rest: list[str]):
        sub, args = (rest[0], rest[1:]) if rest else ("", [])
        if sub == "proxy-metrics":
            flags, pos = parse_flags("linkerd diagnostics proxy-metrics", args, {
                "-n": "str", "--namespace": "str", "--obfuscate": "bool"})
            ns = flags.get("-n") or flags.get("--namespace") or "default"
            if len(pos) != 1:
                self.fail("linkerd diagnostics proxy-metrics",
                          "please specify a resource (e.g. po/web-abc)")
            pod = pos[0].split("/", 1)[-1]
            server = self.server("linkerd diagnostics proxy-metrics")
            try:  # linkerd-diagnostics-proxy-metrics
                body = http("GET", f"{server}/_double/v1/namespaces/{ns}/pods/{pod}/metrics")
            except ApiError as e:
                self.fail("linkerd diagnostics proxy-metrics", f"failed to get pod: {e.body}")
            done(body if isinstance(body, str) else json.dumps(body))
        if sub == "policy" and self.minor >= 12:
            self.policy(args)
        if self.minor <= 11 and sub == "policy":
            # linkerd-211-no-diagnostics-policy: `diagnostics` (Args: NoArgs, no Run) parses
            # the flags first, then prints its help.
            parse_flags("linkerd diagnostics", args, {})
            done("Commands used to diagnose Linkerd components.\n\nUsage:\n  linkerd "
                 "diagnostics [flags]\n  linkerd diagnostics [command]\n")
        if sub in ("controller-metrics", "endpoints", "profile"):
            not_modelled("linkerd", self.args)
        done("Commands used to diagnose Linkerd components.\n")

    def policy(self, args: list[str]):
        spec = {"-n": "str", "--namespace": "str", "--destination-pod": "str"}
        if self.minor >= 13:
            spec.update({"-o": "str", "--output": "str", "--token": "str"})
        flags, pos = parse_flags("linkerd diagnostics policy", args, spec)
        if len(pos) != 2:
            self.fail("linkerd diagnostics policy", f"accepts 2 arg(s), received {len(pos)}")
        ns = flags.get("-n") or flags.get("--namespace") or "default"
        target, port = pos
        if self.minor >= 13:  # linkerd-diagnostics-policy-syntax
            kind, _, pod = target.partition("/")
            if not pod:
                self.fail("linkerd diagnostics policy", f"invalid resource string: {target}")
            if kind not in ("po", "pod", "pods", "svc", "service", "services"):
                self.fail("linkerd diagnostics policy",
                          f"invalid resource type {kind}; must be one of Pod or Service")
        else:
            pod = target
        server = self.server("linkerd diagnostics policy")
        try:
            body = http("GET", f"{server}/_double/v1/namespaces/{ns}/pods/{pod}/policy/{port}")
        except ApiError as e:
            self.fail("linkerd diagnostics policy", e.body)
        # linkerd-diagnostics-policy-output: 2.12 prints json.MarshalIndent (no newline);
        # 2.13+ sigs.k8s.io/yaml (keys sorted) by default, or -o json
        served = yaml.safe_load(body) if isinstance(body, str) else body
        if self.minor <= 12:
            done(json.dumps(served, indent=2))
        output = flags.get("-o") or flags.get("--output") or "yaml"
        if output == "json":
            done(json.dumps(served, indent=2))
        if output != "yaml":
            self.fail("linkerd diagnostics policy", "output must be one of: yaml, json")
        done(yaml.safe_dump(served, sort_keys=True))


def linkerd_main(argv: list[str]):
    Linkerd(argv).main()
