"""The Linkerd CLI as a workshop uses it (section 9, F1.15-F1.17): `linkerd authz`, `linkerd
diagnostics policy` and `proxy-metrics`, `linkerd install`'s policy flags and CRD stages, and
`linkerd viz allow-scrapes`.

Each check runs the target's own `linkerd` (`mesh.linkerd(...)`: the run's release on a cluster,
the embedded reference's CLI on the reference) and holds what it prints to the specification,
whose reading per version is `expectations.cli_facts`. Install checks only render
(`--ignore-cluster`): they never change the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import yaml

from linkerd_conformance import (
    HTTP_FORBIDDEN,
    OK,
    Client,
    CliResult,
    ConformanceFailure,
    Dest,
    Mesh,
    Metrics,
    TargetError,
    Unsupported,
    expect,
    expectations,
    lab,
    wait_for,
)

pytestmark = [pytest.mark.conformance, pytest.mark.feature("cli")]

HTTP = lab.REQUESTS["http"]
ADMIN = Dest(lab.NAMESPACE, "server", 4191)  # the server pod's proxy admin port
PROMETHEUS = Client("linkerd-viz", "prometheus", meshed=True, name="prometheus")


def ok(result: CliResult) -> CliResult:
    if result.rc != 0:
        raise ConformanceFailure(f"expected `linkerd {' '.join(result.argv)}` to succeed\n"
                                 f"  observed: {result}")
    return result


def server_pod(mesh: Mesh) -> str:
    pods = [p for p in mesh.pods(lab.NAMESPACE, {"app": "server"}) if p.ready]
    if not pods:
        raise ConformanceFailure("expected a Ready lab/server pod")
    return pods[-1].name


# ---- linkerd authz (F9.1)


def authz_table(text: str) -> tuple[list[str], list[tuple[str, ...]]]:
    """cli/table's output as (headers, rows): a left-aligned table (2.12+) starts each cell
    where its header starts (cells may be empty); 2.11's right-aligned one has no empty cell."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return [], []
    header = lines[0]
    headers = header.split()
    starts = [header.index(h) for h in headers]
    left = header.startswith(headers[0])
    rows = []
    for line in lines[1:]:
        if not left:  # 2.11: both cells are always set, so whitespace splits them
            rows.append(tuple(line.split()))
            continue
        bounds = [*starts[1:], len(line) + 1]
        rows.append(tuple(line[s:e].strip() for s, e in zip(starts, bounds, strict=True)))
    return headers, rows


def authz(mesh: Mesh) -> tuple[list[str], list[tuple[str, ...]]]:
    return authz_table(ok(mesh.linkerd("authz", "-n", lab.NAMESPACE, "deploy/server")).stdout)


def lab_without_admin_policy() -> list[dict[str, Any]]:
    """The lab without its admin Server and authorization, so that the only policy on the
    server's pod is what a check applies (the lab's own admin Server would be a row)."""
    return [o for o in lab.objects()
            if o["metadata"]["name"] not in ("lab-admin", "lab-admin-everyone")]


@pytest.mark.facts("F9.1")
def test_linkerd_authz_lists_only_what_the_crds_define_with_the_versions_columns(
        mesh: Mesh) -> None:
    """`linkerd authz` reads the policy resources, not the proxy: with no Server it lists
    nothing (the default policy is never a row), and a Server with a ServerAuthorization is
    one row, in the version's columns (ROUTE `*` means the whole Server from 2.12)."""
    facts = expectations.cli_facts(mesh.profile.version)
    lab.deploy(mesh, lab_without_admin_policy())
    headers, rows = authz(mesh)
    assert tuple(headers) == facts.authz_columns, headers
    assert rows == [], f"expected no rows while no resource is defined, got {rows}"
    mesh.apply(lab.server("web", "http"), lab.server_authorization(
        "lab-client", {"meshTLS": {"identities": [lab.identity(lab.MESHED)]}},
        server_name="web"))
    want = ("web", "lab-client") if len(facts.authz_columns) == 2 else (
        "*", "web", "", "lab-client")
    rows = wait_for(f"`linkerd authz` to list {want}", lambda: authz(mesh)[1],
                    lambda r: r == [want])
    assert rows == [want]


@pytest.mark.facts("F9.1")
@pytest.mark.versions(">=2.12")
def test_linkerd_authz_names_the_authorization_policy_and_its_route(mesh: Mesh) -> None:
    """From 2.12 an AuthorizationPolicy on a Server is a `*` row under AUTHORIZATION_POLICY,
    and one on an HTTPRoute names the route in ROUTE."""
    lab.deploy(mesh, lab_without_admin_policy())
    anyone = lab.resource("NetworkAuthentication", "anyone", {
        "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]})
    needs = [{"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "anyone"}]
    mesh.apply(lab.server("web", "http"), anyone,
               lab.resource("AuthorizationPolicy", "whole-server", {
                   "targetRef": {"group": "policy.linkerd.io", "kind": "Server",
                                 "name": "web"},
                   "requiredAuthenticationRefs": needs}),
               lab.resource("HTTPRoute", "hello", {
                   "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server",
                                   "name": "web"}],
                   "rules": [{"matches": [{"path": {"value": "/hello"}}]}]},
                   api_version="policy.linkerd.io/v1beta1"),
               lab.resource("AuthorizationPolicy", "hello-route", {
                   "targetRef": {"group": "policy.linkerd.io", "kind": "HTTPRoute",
                                 "name": "hello"},
                   "requiredAuthenticationRefs": needs}))
    want = {("*", "web", "whole-server", ""), ("hello", "web", "hello-route", "")}
    rows = wait_for(f"`linkerd authz` to list {sorted(want)}", lambda: authz(mesh)[1],
                    lambda r: set(r) == want)
    assert set(rows) == want


# ---- one release's CLI against another release's cluster (F9.2)


@pytest.mark.facts("F9.2")
@pytest.mark.versions(">=2.16")
def test_linkerd_authz_reads_its_own_server_version_so_cli_and_cluster_must_match(
        mesh: Mesh) -> None:
    """From 2.16 `linkerd authz` reads Servers as v1beta3 only. Against its own cluster it
    lists the Server and its authorization; pointed at the newest cluster without v1beta3
    Servers (2.15), the same objects give no row: the Server's read fails with the API
    server's 404, which the CLI prints on stderr while still exiting 0."""
    reads = expectations.cli_facts(mesh.profile.version).authz_server_version
    older = expectations.newest_without_server_version(reads)
    assert older is not None, f"every version serves {reads} Servers"
    try:
        other = mesh.other_cluster(older)
    except Unsupported as e:
        pytest.skip(f"not applicable to the {mesh.name} target: {e}")
    objs = [*lab_without_admin_policy(), lab.server("web", "http"), lab.server_authorization(
        "lab-client", {"meshTLS": {"identities": [lab.identity(lab.MESHED)]}},
        server_name="web")]
    lab.deploy(mesh, objs)
    want = ("*", "web", "", "lab-client")
    rows = wait_for(f"`linkerd authz` to list {want}", lambda: authz(mesh)[1],
                    lambda r: r == [want])
    assert rows == [want]
    with other as cluster:
        lab.deploy(cluster, objs)
        result = cluster.linkerd("authz", "-n", lab.NAMESPACE, "deploy/server")
        failed = ("ServerAuthorization/lab-client targets Server/web but we failed to get it: "
                  "the server could not find the requested resource "
                  "(get servers.policy.linkerd.io web)")
        assert result.rc == 0 and failed in result.stderr, \
            f"expected a {reads} CLI against a {older} cluster to report {failed!r}\n" \
            f"  observed: {result}"
        assert authz_table(result.stdout)[1] == [], \
            f"expected no row from a cluster without {reads} Servers\n  observed: {result}"


# ---- linkerd diagnostics policy (F9.3)


def diagnostics_policy(mesh: Mesh, pod: str, port: int) -> Mapping[str, Any]:
    """`linkerd diagnostics policy` in the version's syntax (2.12: a bare pod, JSON; 2.13+:
    po/POD and -o json), parsed."""
    if expectations.cli_facts(mesh.profile.version).diagnostics_policy == "bare-pod":
        args = ["diagnostics", "policy", "-n", lab.NAMESPACE, pod, str(port)]
    else:
        args = ["diagnostics", "policy", "-n", lab.NAMESPACE, f"po/{pod}", str(port),
                "-o", "json"]
    served = json.loads(ok(mesh.linkerd(*args)).stdout)
    if not isinstance(served, dict):
        raise ConformanceFailure(f"expected an InboundServer object, got {served!r}")
    return served


def server_labels(served: Mapping[str, Any]) -> dict[str, str]:
    labels = served.get("labels") or {}
    return {k: labels.get(k, "") for k in ("group", "kind", "name")}


@pytest.mark.facts("F9.3")
@pytest.mark.versions(">=2.12")
def test_diagnostics_policy_names_the_server_that_applies(mesh: Mesh) -> None:
    """Under a deny default the policy controller serves `kind: default, name: deny` with no
    authorization; once a Server selects the port it serves that Server, with the
    ServerAuthorization that names it."""
    lab.deploy(mesh, lab.with_default("deny"))
    pod = server_pod(mesh)
    served = diagnostics_policy(mesh, pod, 8080)
    assert server_labels(served) == {"group": "", "kind": "default", "name": "deny"}, served
    assert not served.get("authorizations"), served
    mesh.apply(lab.server("web", "http"), lab.server_authorization(
        "lab-client", {"meshTLS": {"identities": [lab.identity(lab.MESHED)]}},
        server_name="web"))
    want = {"group": "policy.linkerd.io", "kind": "server", "name": "web"}
    served = wait_for(f"diagnostics policy to serve {want}",
                      lambda: diagnostics_policy(mesh, pod, 8080),
                      lambda s: server_labels(s) == want)
    names = [(a.get("labels") or {}).get("name") for a in served.get("authorizations") or []]
    assert names == ["lab-client"], served


@pytest.mark.facts("F9.3")
@pytest.mark.versions("2.11")
def test_2_11_has_no_diagnostics_policy(mesh: Mesh) -> None:
    """2.11 has no `diagnostics policy`: cobra parses the flags against `diagnostics`, so
    `-n` is an unknown shorthand flag."""
    lab.deploy(mesh, lab.objects())
    result = mesh.linkerd("diagnostics", "policy", "-n", lab.NAMESPACE,
                          f"po/{server_pod(mesh)}", "8080")
    assert result.rc != 0 and "unknown shorthand flag: 'n'" in result.stderr, str(result)


# ---- linkerd diagnostics proxy-metrics (F9.4)


@pytest.mark.facts("F9.4")
def test_proxy_metrics_prints_the_authorization_counters(mesh: Mesh) -> None:
    """`linkerd diagnostics proxy-metrics` prints the proxy's metrics, the authorization
    counters among them: two allowed requests show in inbound_http_authz_allow_total."""
    lab.deploy(mesh, lab.objects())
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(OK)
    for _ in range(2):
        assert OK.matches(mesh.probe(lab.MESHED, lab.HTTP, "http", **HTTP))

    def allowed() -> float:
        text = ok(mesh.linkerd("diagnostics", "proxy-metrics", "-n", lab.NAMESPACE,
                               f"po/{server_pod(mesh)}")).stdout
        return Metrics.parse(text).value("inbound_http_authz_allow_total", target_port="8080")

    wait_for("inbound_http_authz_allow_total on port 8080 >= 3", allowed, lambda v: v >= 3)


# ---- linkerd install: the cluster default and the policy controller (F1.15-F1.17)


def rendered(mesh: Mesh, *args: str) -> list[dict[str, Any]]:
    """`linkerd install --ignore-cluster ARGS`, parsed: rendering only, nothing applied."""
    text = ok(mesh.linkerd("install", "--ignore-cluster", *args)).stdout
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def policy_controller_args(docs: Sequence[Mapping[str, Any]]) -> list[str]:
    for d in docs:
        if d.get("kind") == "Deployment" and d["metadata"]["name"] == "linkerd-destination":
            for c in d["spec"]["template"]["spec"].get("containers") or []:
                if c["name"] == "policy":
                    return [str(a) for a in c.get("args") or []]
    raise ConformanceFailure("expected `linkerd install` to render linkerd-destination with "
                             "a `policy` container")


def deny_flags(version: str) -> list[str]:
    """How the version sets the cluster-wide default to deny (F1.15, F1.16)."""
    if expectations.cli_facts(version).default_policy_flag:
        return ["--default-inbound-policy", "deny"]
    return ["--set", "policyController.defaultAllowPolicy=deny"]


@pytest.mark.facts("F1.15", "F1.17")
@pytest.mark.versions("2.11")
def test_2_11_sets_the_cluster_default_with_the_helm_value(mesh: Mesh) -> None:
    """2.11 has no --default-inbound-policy; `--set policyController.defaultAllowPolicy=deny`
    starts the policy controller with --default-policy=deny."""
    refused = mesh.linkerd("install", "--ignore-cluster", "--default-inbound-policy", "deny")
    assert refused.rc != 0 and "unknown flag: --default-inbound-policy" in refused.stderr, \
        str(refused)
    args = policy_controller_args(rendered(mesh, *deny_flags("2.11")))
    assert "--default-policy=deny" in args, args


@pytest.mark.facts("F1.16")
@pytest.mark.versions(">=2.12")
def test_install_refuses_a_default_inbound_policy_that_is_no_policy(mesh: Mesh) -> None:
    """From 2.12 `--default-inbound-policy` takes only the version's policies; anything else
    is refused with the list of them (`audit` among them from 2.16)."""
    version = mesh.profile.version
    for value in ("allow-all", "audit"):
        result = mesh.linkerd("install", "--ignore-cluster", "--default-inbound-policy", value)
        valid = value == "audit" and mesh.profile.at_least("2.16")
        if valid:
            ok(result)
        else:
            refusal = expectations.refused_default_policy(version, value)
            assert result.rc != 0 and refusal in result.stderr, \
                f"expected the refusal {refusal!r}: {result}"


@pytest.mark.facts("F1.16", "F1.17")
@pytest.mark.versions(">=2.12")
def test_the_policy_controller_gets_the_default_the_cluster_and_probe_networks(
        mesh: Mesh) -> None:
    """--default-inbound-policy deny reaches the policy controller as --default-policy=deny
    (the 2.11 Helm value no longer does), with --cluster-networks and --probe-networks."""
    facts = expectations.cli_facts(mesh.profile.version)
    args = policy_controller_args(rendered(mesh, "--default-inbound-policy", "deny",
                                           "--set", "clusterNetworks=10.0.0.0/8"))
    assert "--default-policy=deny" in args, args
    assert "--cluster-networks=10.0.0.0/8" in args, args
    assert f"--probe-networks={facts.probe_networks}" in args, args
    old = policy_controller_args(rendered(mesh, "--set",
                                          "policyController.defaultAllowPolicy=deny"))
    assert "--default-policy=all-unauthenticated" in old, old


@pytest.mark.facts("F1.21", "F1.22")
def test_the_default_cluster_networks_are_the_private_ranges_and_fd00_from_2_16(
        mesh: Mesh) -> None:
    """Without `--set clusterNetworks`, `linkerd install` gives linkerd-config and the policy
    controller the chart's default: the private IPv4 ranges and 100.64.0.0/10, and from 2.16
    also fd00::/8."""
    want = expectations.cli_facts(mesh.profile.version).cluster_networks
    docs = rendered(mesh)
    assert f"--cluster-networks={want}" in policy_controller_args(docs), (
        want, policy_controller_args(docs))
    config = next((d for d in docs if d.get("kind") == "ConfigMap"
                   and d["metadata"]["name"] == "linkerd-config"), None)
    assert config is not None, "expected `linkerd install` to render the linkerd-config map"
    values = yaml.safe_load(config["data"]["values"])
    assert values["clusterNetworks"] == want, values.get("clusterNetworks")


def control_plane_pods(docs: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """component -> the pod template of its `linkerd-<component>` Deployment."""
    return {d["metadata"]["name"].removeprefix("linkerd-"): d["spec"]["template"]
            for d in docs if d.get("kind") == "Deployment"
            and d["metadata"].get("labels", {}).get("linkerd.io/control-plane-component")}


def proxy_env(template: Mapping[str, Any], name: str) -> str | None:
    for c in template["spec"].get("containers") or []:
        if c["name"] == "linkerd-proxy":
            return next((str(e.get("value")) for e in c.get("env") or []
                         if e.get("name") == name), None)
    return None


@pytest.mark.facts("F1.25")
def test_a_cluster_wide_deny_leaves_the_control_plane_its_own_default(mesh: Mesh) -> None:
    """Install with the cluster-wide default deny: identity, destination and proxy-injector
    are still annotated all-unauthenticated, and their proxies keep the chart's own default
    (identity cluster-unauthenticated in 2.11), so the control plane stays reachable."""
    version = mesh.profile.version
    want = dict(expectations.cli_facts(version).control_plane_proxies)
    pods = control_plane_pods(rendered(mesh, *deny_flags(version)))
    observed = {}
    for component in want:
        template = pods.get(component)
        assert template is not None, \
            f"expected `linkerd install` to render linkerd-{component}, got {sorted(pods)}"
        annotation = (template["metadata"].get("annotations") or {}).get(
            "config.linkerd.io/default-inbound-policy")
        observed[component] = (annotation, proxy_env(template,
                                                     "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"))
    expected = {c: ("all-unauthenticated", p) for c, p in want.items()}
    assert observed == expected, (
        f"under {' '.join(deny_flags(version))}: expected (annotation, proxy default) per "
        f"component {expected}, observed {observed}")


@pytest.mark.facts("F2.16")
def test_the_control_planes_port_names_are_unique_from_2_19(mesh: Mesh) -> None:
    """`linkerd install` names the control plane's container ports `grpc` and `admin-http` in
    several containers alike until 2.18; from 2.19 each has its own name (dest-admin,
    policy-admin, ident-admin, ...), so a Server selecting those pods by an old name stops
    matching."""
    want = dict(expectations.cli_facts(mesh.profile.version).control_plane_port_names)
    pods = control_plane_pods(rendered(mesh))
    observed = {component: tuple(p["name"] for c in pods[component]["spec"]["containers"]
                                 for p in c.get("ports") or [])
                for component in want if component in pods}
    assert {c: sorted(n) for c, n in observed.items()} == \
        {c: sorted(n) for c, n in want.items()}, (
        f"expected the control plane's container port names {want}, observed {observed}")


# ---- linkerd install: the CRDs (F9.8, F9.9, F9.10)


def crd_names(docs: Sequence[Mapping[str, Any]]) -> set[str]:
    return {d["metadata"]["name"] for d in docs if d.get("kind") == "CustomResourceDefinition"}


@pytest.mark.facts("F9.8", "F9.9")
def test_the_crds_come_with_the_control_plane_in_2_11_and_first_from_2_12(mesh: Mesh) -> None:
    """2.11's `linkerd install` renders the policy CRDs with the control plane; from 2.12 they
    are `linkerd install --crds`, and `linkerd install` renders none."""
    facts = expectations.cli_facts(mesh.profile.version)
    plain = crd_names(rendered(mesh))
    if facts.crds_with_control_plane:
        assert "servers.policy.linkerd.io" in plain, sorted(plain)
        return
    assert not plain, f"expected no CRD in `linkerd install`, got {sorted(plain)}"
    crds = crd_names(rendered(mesh, "--crds"))
    assert {"servers.policy.linkerd.io", "authorizationpolicies.policy.linkerd.io"} <= crds, \
        sorted(crds)


@pytest.mark.facts("F9.10")
@pytest.mark.versions(">=2.12")
def test_the_gateway_api_crds_are_bundled_from_2_14_to_2_18_only(mesh: Mesh) -> None:
    """`linkerd install --crds` includes the Gateway API HTTPRoute CRD in 2.14-2.18; from
    2.19 (and before 2.14) it is installed separately."""
    crds = crd_names(rendered(mesh, "--crds"))
    bundled = "httproutes.gateway.networking.k8s.io" in crds
    assert bundled == expectations.cli_facts(mesh.profile.version).gateway_api_bundled, sorted(crds)


# ---- linkerd check (F9.7)


@pytest.mark.facts("F9.7")
def test_linkerd_check_takes_the_versions_flags(mesh: Mesh) -> None:
    """`linkerd check -o` takes table, json or short (and refuses anything else before
    checking); `--crds`, only the CRD checks, came with 2.12."""
    refused = mesh.linkerd("check", "-o", "basic-table")
    assert refused.rc != 0 and ("Invalid output type 'basic-table'. Supported output types "
                                "are: json, table, short") in refused.stderr, str(refused)
    crds = mesh.linkerd("check", "--crds", "-o", "json")
    if not expectations.cli_facts(mesh.profile.version).check_crds:
        assert crds.rc != 0 and "unknown flag: --crds" in crds.stderr, str(crds)
        return
    try:  # the flag's promise is which checks run; whether they pass is the cluster's state
        report = json.loads(crds.stdout)
    except ValueError:
        raise ConformanceFailure(f"expected a JSON check report, got {crds}") from None
    names = [c["categoryName"] for c in report["categories"]]
    base = {"kubernetes-api", "kubernetes-version", "linkerd-version", "gateway-api-crd"}
    assert set(names) <= base | {"linkerd-crd"}, f"checks beyond the CRDs ran: {names}"
    stopped = [c["categoryName"] for c in report["categories"]
               if any(k.get("result") == "error" for k in c["checks"])]
    assert "linkerd-crd" in names or stopped, names  # a fatal failure before it stops the run


# ---- linkerd inject (F9.11)


@pytest.mark.facts("F9.11")
@pytest.mark.versions(">=2.12")
def test_inject_default_inbound_policy_sets_the_injected_pods_default(mesh: Mesh) -> None:
    """`linkerd inject --default-inbound-policy deny` annotates the pod template with
    `config.linkerd.io/default-inbound-policy: deny`, so the injected server refuses the meshed
    client the cluster's all-unauthenticated default would admit."""
    objs = lab.objects()
    server = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "server"]
    result = ok(mesh.linkerd("inject", "--ignore-cluster", "--default-inbound-policy", "deny",
                             "-", input=yaml.safe_dump_all(server)))
    injected = [d for d in yaml.safe_load_all(result.stdout) if isinstance(d, dict)]
    annotations = injected[0]["spec"]["template"]["metadata"].get("annotations") or {}
    assert annotations.get("config.linkerd.io/default-inbound-policy") == "deny", annotations
    lab.deploy(mesh, [*(o for o in objs if o not in server), *injected])
    expect(mesh, lab.MESHED, lab.HTTP, "http", **HTTP).becomes(HTTP_FORBIDDEN)


# ---- linkerd viz allow-scrapes (F9.6)


@pytest.mark.facts("F9.6")
@pytest.mark.versions(">=2.12")
def test_allow_scrapes_lets_prometheus_scrape_under_deny(mesh: Mesh) -> None:
    """Under deny, Prometheus (linkerd-viz's `prometheus` account) cannot read a proxy's
    /metrics; applying `linkerd viz allow-scrapes -n lab` lets it, and nobody else."""
    lab.placeable(mesh, PROMETHEUS)
    lab.deploy(mesh, lab.with_pod_annotations(
        lab_without_admin_policy(), {"config.linkerd.io/default-inbound-policy": "deny"}))
    try:  # what linkerd-viz installs: its namespace and the kubelet NetworkAuthentication
        # (L2@stable-2.12.0:viz/charts/linkerd-viz/templates/admin-policy.yaml)
        mesh.apply({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "linkerd-viz"}},
                   {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "NetworkAuthentication",
                    "metadata": {"name": "kubelet", "namespace": "linkerd-viz"},
                    "spec": {"networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}})
    except TargetError as e:
        pytest.skip(f"cannot stand in for linkerd-viz on this target: {e}")
    metrics = {"path": "/metrics"}
    expect(mesh, PROMETHEUS, ADMIN, "http", **metrics).becomes(HTTP_FORBIDDEN)
    out = ok(mesh.linkerd("viz", "allow-scrapes", "-n", lab.NAMESPACE)).stdout
    objs = [d for d in yaml.safe_load_all(out) if isinstance(d, dict)]
    assert {o["kind"] for o in objs} >= {"Server", "HTTPRoute", "AuthorizationPolicy"}, objs
    mesh.apply(*objs)
    expect(mesh, PROMETHEUS, ADMIN, "http", **metrics).becomes(OK)
    expect(mesh, lab.MESHED, ADMIN, "http", **metrics).becomes(HTTP_FORBIDDEN)


# ---- linkerd multicluster: linking clusters (F8.6, F8.7)


def available_commands(help_text: str) -> list[str]:
    """The command names of cobra's `Available Commands:` section."""
    lines = help_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line == "Available Commands:"), None)
    if start is None:
        raise ConformanceFailure(f"expected an `Available Commands:` section in:\n{help_text}")
    names = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        names.append(line.split()[0])
    return names


@pytest.mark.facts("F8.6", "F8.7")
def test_clusters_are_linked_with_link_before_2_18_and_link_gen_from_2_18(mesh: Mesh) -> None:
    """`linkerd multicluster` links clusters with `link --cluster-name` (and
    `--api-server-address` where the other cluster cannot reach the kubeconfig's address, as on
    kind) up to 2.17; from 2.18 with `link-gen`, and `link` says it is deprecated."""
    want = expectations.cli_facts(mesh.profile.version).link_command
    listed = available_commands(ok(mesh.linkerd("multicluster", "--help")).stdout)
    assert want in listed and ({"link", "link-gen"} - {want}).isdisjoint(listed), (
        f"expected `linkerd multicluster --help` to offer {want!r} (not the other), "
        f"observed {listed}")
    usage = ok(mesh.linkerd("multicluster", want, "--help"))
    for flag in ("--cluster-name", "--api-server-address"):
        assert flag in usage.stdout, f"expected `multicluster {want} --help` to list {flag}"
    link = ok(mesh.linkerd("multicluster", "link", "--help"))
    notice = 'Command "link" is deprecated, please use `multicluster link-gen` instead.'
    assert (notice in link.stderr) == (want == "link-gen"), (
        f"expected the deprecation notice {'on' if want == 'link-gen' else 'not on'} stderr "
        f"of `multicluster link --help`, observed stderr {link.stderr!r}")
