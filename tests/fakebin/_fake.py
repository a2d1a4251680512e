"""Fake kind, kubectl, linkerd and docker for the cluster targets' boundary tests.

Each call appends {"prog", "argv", "stdin", "kubeconfig"} as one JSON line to $FAKEBIN_LOG.
Behaviour comes from the environment:
  FAKE_KUBE_STATE        JSON file with {"namespaces": {name: labels}, "clusters": [names]}
  FAKE_RESPONSES         JSON file: [{"prog", "match": [tokens], "stdout", "stderr", "rc",
                         "once"}], the first entry whose tokens all appear in argv wins
  FAKE_LINKERD_VERSION   `linkerd version --client --short` (default stable-2.11.5)
  FAKE_LINKERD_SERVER_VERSION  server line of `linkerd version --short` ("" = unavailable)
  FAKE_DOCKER_DOWN=1     `docker info` fails
  FAKE_PROBER_OUTCOME    what `kubectl exec ... linkerd_conformance.prober` prints
"""

import json
import os
import sys


def load(path, default):
    if path and os.path.exists(path):
        with open(path) as fh:
            return json.load(fh)
    return default


def save(path, data):
    if path:
        with open(path, "w") as fh:
            json.dump(data, fh)


def out(text="", err="", rc=0):
    sys.stdout.write(text)
    sys.stderr.write(err)
    sys.exit(rc)


def canned(prog, argv):
    path = os.environ.get("FAKE_RESPONSES")
    responses = load(path, [])
    for i, r in enumerate(responses):
        if r.get("prog", prog) == prog and all(tok in argv for tok in r.get("match", [])):
            if r.get("once"):
                del responses[i]
                save(path, responses)
            out(r.get("stdout", ""), r.get("stderr", ""), r.get("rc", 0))


def strip_context(argv):
    args = list(argv)
    if "--context" in args:
        i = args.index("--context")
        del args[i:i + 2]
    return args


def kubectl(argv, stdin, state_path):
    state = load(state_path, {"namespaces": {}, "clusters": []})
    args = strip_context(argv)
    verb = args[0] if args else ""
    if verb == "apply":
        if "-" not in args:
            out("customresourcedefinition.apiextensions.k8s.io/gateways serverside-applied\n")
        try:
            doc = json.loads(stdin or "{}")
        except ValueError:  # YAML piped from `linkerd install`
            out("namespace/linkerd created\n")
        lines = []
        for item in doc.get("items", []):
            meta = item.get("metadata", {})
            if item.get("kind") == "Namespace":
                state["namespaces"][meta["name"]] = meta.get("labels", {})
            lines.append(f"{item.get('kind', '').lower()}/{meta.get('name')} serverside-applied")
        save(state_path, state)
        out("\n".join(lines) + "\n")
    if verb == "get" and len(args) > 1 and args[1] in ("namespaces", "namespace", "ns"):
        selector = {}
        if "-l" in args:
            selector = dict(kv.split("=", 1) for kv in args[args.index("-l") + 1].split(","))
        items = [{"metadata": {"name": n, "labels": labels}}
                 for n, labels in state["namespaces"].items()
                 if all(labels.get(k) == v for k, v in selector.items())]
        out(json.dumps({"items": items}))
    if verb == "delete" and len(args) > 1 and args[1] == "namespace" and "-l" in args:
        selector = dict(kv.split("=", 1) for kv in args[args.index("-l") + 1].split(","))
        gone = [n for n, labels in state["namespaces"].items()
                if all(labels.get(k) == v for k, v in selector.items())]
        for n in gone:
            del state["namespaces"][n]
        save(state_path, state)
        out("".join(f'namespace "{n}" deleted\n' for n in gone))
    if verb == "exec":
        default = json.dumps({"verdict": "allowed", "protocol": "http", "status": 200,
                              "bytes_seen": 12, "elapsed": 0.004})
        out(os.environ.get("FAKE_PROBER_OUTCOME", default) + "\n")
    if verb == "wait":
        out("pod/x condition met\n")
    if verb == "get" and len(args) > 2 and args[1] == "deployment":
        name = args[2]
        ns = args[args.index("-n") + 1] if "-n" in args else "default"
        out(json.dumps({"metadata": {"name": name, "namespace": ns, "generation": 1},
                        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}},
                        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                                   "readyReplicas": 1, "availableReplicas": 1}}))
    if verb == "get" and len(args) > 1 and args[1] in ("pods", "events", "deployments"):
        out(json.dumps({"items": []}))
    out("")


def linkerd(argv):
    args = strip_context(argv)
    client = os.environ.get("FAKE_LINKERD_VERSION", "stable-2.11.5")
    if args[:1] == ["version"]:
        if "--client" in args:
            out(client + "\n")
        server = os.environ.get("FAKE_LINKERD_SERVER_VERSION", client)
        out(f"{client}\n{server or 'unavailable'}\n")
    if args[:1] == ["install"]:
        out("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: linkerd\n")
    if args[:1] == ["check"]:
        out("Status check results are \u221a\n")
    if args[:2] == ["diagnostics", "proxy-metrics"]:
        out(os.environ.get("FAKE_PROXY_METRICS",
                           'inbound_http_authz_allow_total{srv_name="default:all-unauthenticated"}'
                           ' 3\n'))
    out("")


def docker(argv):
    if argv[:1] == ["info"] and os.environ.get("FAKE_DOCKER_DOWN") == "1":
        out(err="Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n", rc=1)
    out("")


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: kind-{n}
  cluster: {{server: "https://127.0.0.1:6443"}}
users:
- name: kind-{n}
  user: {{token: fake}}
contexts:
- name: kind-{n}
  context: {{cluster: kind-{n}, user: kind-{n}}}
current-context: kind-{n}
"""


def kind(argv, state_path):
    state = load(state_path, {"namespaces": {}, "clusters": []})
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    if argv[:2] == ["get", "clusters"]:
        out("".join(c + "\n" for c in state["clusters"]))
    if argv[:2] == ["create", "cluster"]:
        with open(opts["kubeconfig"], "w") as fh:
            fh.write(KUBECONFIG.format(n=opts["name"]))
        state["clusters"].append(opts["name"])
        save(state_path, state)
        out(err=f"Creating cluster \"{opts['name']}\" ...\n")
    if argv[:2] == ["delete", "cluster"]:
        state["clusters"] = [c for c in state["clusters"] if c != opts.get("name")]
        save(state_path, state)
        out(err="Deleting cluster ...\n")
    out("")


def main(prog):
    argv = sys.argv[1:]
    stdin = sys.stdin.read() if "-" in argv else ""
    log = os.environ.get("FAKEBIN_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps({"prog": prog, "argv": argv, "stdin": stdin,
                                 "kubeconfig": os.environ.get("KUBECONFIG")}) + "\n")
    canned(prog, argv)
    state = os.environ.get("FAKE_KUBE_STATE")
    if prog == "kubectl":
        kubectl(argv, stdin, state)
    elif prog == "linkerd":
        linkerd(argv)
    elif prog == "docker":
        docker(argv)
    elif prog == "kind":
        kind(argv, state)
    out("")
