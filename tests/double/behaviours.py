"""The real-tool behaviours the cluster double's fakes mirror, each with its source.

A behaviour without a source is not added. `L2@TAG:path` is linkerd/linkerd2 at that tag,
`kind@TAG:path` kubernetes-sigs/kind, `cobra@TAG:path` spf13/cobra.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    id: str
    tool: str
    versions: str
    behaviour: str
    source: str


K = "kubernetes-sigs/kind@v0.32.0:"
L11 = "linkerd/linkerd2@stable-2.11.5:"
L12 = "linkerd/linkerd2@stable-2.12.6:"

BEHAVIOURS: list[Behaviour] = [
    # ------------------------------------------------------------------ kind
    Behaviour("kind-get-clusters-none", "kind", "v0.17-v0.32",
              '`kind get clusters` with no cluster logs "No kind clusters found." (stderr), '
              "exits 0; otherwise one name per line on stdout",
              K + "pkg/cmd/kind/get/clusters/clusters.go"),
    Behaviour("kind-create-default-image", "kind", "v0.17-v0.32",
              "without --image the node image is the kind release's default "
              "(v0.32.0: kindest/node:v1.36.1, v0.20.0: v1.27.3, ...), so the cluster's "
              "Kubernetes version is that tag's",
              "kubernetes-sigs/kind@v0.17.0..v0.32.0:pkg/apis/config/defaults/image.go; "
              "cluster-review.md A2"),
    Behaviour("kind-create-kubeconfig", "kind", "v0.17-v0.32",
              "create merges a kubeconfig entry named kind-NAME into --kubeconfig (else "
              "$KUBECONFIG) and makes it the current context",
              K + "pkg/cluster/internal/kubeconfig/internal/kubeconfig/helpers.go "
              "(KINDClusterKey); pkg/cluster/internal/create/create.go (Export, logUsage)"),
    Behaviour("kind-create-progress", "kind", "v0.17-v0.32",
              'create logs `Creating cluster "N" ...`, then per step " • STEP  ..." and '
              '" ✓ STEP" (no terminal), starting with "Ensuring node image (IMAGE) 🖼", on '
              "stderr",
              K + "pkg/internal/cli/status.go; pkg/cluster/internal/create/create.go; "
              "pkg/cluster/internal/providers/docker/images.go"),
    Behaviour("kind-create-exists", "kind", "v0.17-v0.32",
              "create of an existing name fails: `ERROR: failed to create cluster: node(s) "
              'already exist for a cluster with the name "N"`, exit 1',
              K + "pkg/cluster/internal/create/create.go (alreadyExists); "
              "pkg/cmd/kind/create/cluster/createcluster.go; cmd/kind/app/main.go (logError)"),
    Behaviour("kind-load-absent", "kind", "v0.17-v0.32",
              '`kind load docker-image` of an image not in the local store: `ERROR: image: "X" '
              'not present locally`, exit 1; an unknown cluster: `no nodes found for cluster "N"`',
              K + "pkg/cmd/kind/load/docker-image/docker-image.go"),
    Behaviour("kind-get-kubeconfig-internal", "kind", "v0.17-v0.32",
              "`kind get kubeconfig --internal` points at https://N-control-plane:6443 (the node "
              "container's name and the internal API port); an unknown name fails with "
              "\"could not locate any control plane nodes for cluster named 'N'...\"",
              K + "pkg/cluster/internal/providers/docker/provider.go "
              "(GetAPIServerInternalEndpoint); pkg/cluster/internal/providers/common/"
              "constants.go; pkg/cluster/internal/kubeconfig/kubeconfig.go"),
    Behaviour("kind-delete-cluster", "kind", "v0.17-v0.32",
              '`kind delete cluster` logs `Deleting cluster "N" ...`, removes the kind-N '
              "kubeconfig entries and exits 0 even when the cluster does not exist",
              K + "pkg/cmd/kind/delete/cluster/deletecluster.go; "
              "pkg/cluster/internal/delete/delete.go"),
    Behaviour("kind-version", "kind", "v0.17-v0.32",
              "`kind version` prints `kind vX.Y.Z GOVERSION GOOS/GOARCH`",
              K + "pkg/cmd/kind/version/version.go (DisplayVersion)"),
    # ------------------------------------------------------------------ docker
    Behaviour("docker-daemon-down", "docker", "any",
              "with no daemon, `docker info` (and every daemon command) fails with \"Cannot "
              "connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
              'daemon running?"',
              "https://docs.docker.com/engine/daemon/troubleshoot/; cluster-review.md "
              "(docker info gate of the kind target)"),
    Behaviour("docker-build-layout", "docker", "BuildKit (Docker 23+)",
              "`docker build` copies only the Dockerfile's COPY sources (minus .dockerignore) "
              "into the image, so a RUN `python -c \"import ...\"` sees only those files, "
              "the stdlib and what the Dockerfile pip-installs",
              "https://docs.docker.com/reference/dockerfile/#copy; "
              "https://docs.docker.com/build/concepts/context/#dockerignore-files; "
              "cluster-review.md A1"),
    Behaviour("docker-build-failure-output", "docker", "BuildKit (Docker 23+)",
              'a failing RUN prints BuildKit progress first (`#0 building with "default" '
              'instance using docker driver`, `#N [i/n] RUN ...`, the step output), then '
              '`ERROR: failed to solve: process "/bin/sh -c ..." did not complete '
              "successfully: exit code: N`, exit 1",
              "https://docs.docker.com/build/drivers/docker/ (default docker driver); "
              "cluster-review.md A1 (first line is the progress line)"),
    Behaviour("docker-image-inspect-absent", "docker", "any",
              "`docker image inspect X` of an absent image exits 1 (kind relies on it to decide "
              '"not present locally"); text `Error: No such image: X`',
              K + "pkg/cmd/kind/load/docker-image/docker-image.go (imageID runs "
              "`docker image inspect -f {{ .Id }}`)"),
    Behaviour("kind-docker-network", "kind", "v0.8-v0.32",
              "nodes are containers on the Docker network `kind` (KIND_EXPERIMENTAL_DOCKER_NETWORK "
              "overrides it), created on the first cluster and kept after `kind delete cluster`; "
              "its IPv4 subnet is Docker's pick (172.18.0.0/16 where the default bridge has "
              "172.17.0.0/16); the double's is a loopback /24 outside its clusterNetworks",
              K + "pkg/cluster/internal/providers/docker/network.go (fixedNetworkName, "
              "ensureNetwork), provider.go l.71-74"),
    Behaviour("docker-network-inspect", "docker", "any",
              "`docker network inspect NAME` prints a JSON list: IPAM.Config[] with Subnet and "
              "Gateway, Containers by id with Name and IPv4Address (CIDR form); an unknown "
              "network: `Error response from daemon: network X not found`, exit 1",
              "https://docs.docker.com/reference/cli/docker/network/inspect/"),
    Behaviour("docker-run-flags", "docker", "any",
              "`docker run [OPTIONS] IMAGE [COMMAND]`: options end at the image; an unknown "
              "option is `unknown flag: --x`, exit 125; -d prints the container id; --name "
              "taken: `Conflict. The container name \"/N\" is already in use`, exit 125; "
              "--network NAME must exist (`network N not found`, 125)",
              "https://docs.docker.com/reference/cli/docker/container/run/ (Options, "
              "#exit-status, #network)"),
    Behaviour("docker-run-image-absent", "docker", "any",
              "an image not in the local store is pulled (`Unable to find image 'X' locally`); "
              "with no registry to pull from, `pull access denied`, exit 125",
              "https://docs.docker.com/reference/cli/docker/container/run/ (#pull); https://docs.docker.com/reference/cli/docker/image/pull/"),
    Behaviour("docker-run-container-network", "docker", "any",
              "`--network container:NAME` joins that container's network namespace (its "
              "addresses and routes); an unknown NAME: `No such container`, exit 125",
              "https://docs.docker.com/engine/network/#container-networks"),
    Behaviour("ip-route-add", "docker", "iproute2",
              "`ip route add CIDR via GW` needs CAP_NET_ADMIN (`--cap-add NET_ADMIN`; else "
              "`RTNETLINK answers: Operation not permitted`, exit 2); GW must be on a connected "
              "subnet (`Error: Nexthop has invalid gateway.`); a route that exists: `File "
              "exists`; without a route a pod address is unreachable (ENETUNREACH)",
              "https://docs.docker.com/reference/cli/docker/container/run/#privileged (--cap-add); https://man7.org/linux/man-pages/man8/"
              "ip-route.8.html; https://man7.org/linux/man-pages/man7/capabilities.7.html "
              "(CAP_NET_ADMIN: modify routing tables)"),
    Behaviour("docker-exec-absent", "docker", "any",
              "`docker exec` of an unknown container: `Error response from daemon: No such "
              "container: N`, exit 1; `-i` keeps stdin open; the command runs in the container's "
              "namespaces (its address, its routes)",
              "https://docs.docker.com/reference/cli/docker/container/exec/"),
    Behaviour("docker-exec-not-found", "docker", "any",
              "a command the image has no binary for: `OCI runtime exec failed: ... executable "
              "file not found in $PATH`, exit 126 (the prober image has python, no `ip`)",
              "https://docs.docker.com/reference/cli/docker/container/exec/ (exit status 126/127)"),
    Behaviour("docker-rm-absent", "docker", "any",
              "`docker rm -f N...` removes running containers; an unknown one: `Error response "
              "from daemon: No such container: N`, exit 1; without -f a running one is refused",
              "https://docs.docker.com/reference/cli/docker/container/rm/"),
    # ------------------------------------------------------------------ kubectl
    Behaviour("kubectl-version-short", "kubectl", "< v1.28",
              "`kubectl version --client --short` prints `Client Version: vX.Y.Z` (and "
              "`Kustomize Version: ...` from 1.24); 1.24-1.27 also print \"Flag --short has been "
              "deprecated, and will be removed in the future. The --short output will become "
              'the default." on stderr',
              "https://github.com/kubernetes/kubectl/issues/1518 (1.27 output); "
              "https://github.com/aws/eks-distro/pull/1186 (warning on v1.24.4)"),
    Behaviour("kubectl-version-short-removed", "kubectl", ">= v1.28",
              "`--short` was removed: `error: unknown flag: --short` + `See 'kubectl version "
              "--help' for usage.`, exit 1",
              "https://github.com/kubernetes/kubectl/issues/1518; "
              "https://github.com/linkerd/website/pull/1765"),
    Behaviour("kubectl-version-json", "kubectl", "any",
              "`kubectl version --client -o json` prints {\"clientVersion\": {\"major\", "
              "\"minor\", \"gitVersion\", ...}} (apimachinery version.Info fields)",
              "https://github.com/kubernetes/kubectl/issues/1518 (--output=json is the "
              "replacement)"),
    # ------------------------------------------------------------------ linkerd
    Behaviour("client-go-context-missing", "linkerd", "2.11-2.20",
              "a --context the kubeconfig lacks fails in client-go: `Error: context \"C\" does "
              "not exist` (cobra, stderr), no stdout, exit 1",
              "kubernetes/client-go:tools/clientcmd/client_config.go (getContext); "
              + L11 + "cli/cmd/version.go (k8s.NewAPI before printing); cluster-review.md C"),
    Behaviour("linkerd-version-client", "linkerd", "2.11-2.20",
              "`version --client --short` prints the bare release (edge-yy.m.n from 2.15)",
              "linkerd/linkerd2@version-2.20:cli/cmd/version.go; cluster-review.md B3"),
    Behaviour("linkerd-version-server", "linkerd", "2.11-2.20",
              "`version --short` prints the client line, then linkerdVersion from the "
              "linkerd-config ConfigMap's values in the control-plane namespace, or "
              "`unavailable`",
              L11 + "cli/cmd/version.go; " + L11 + "pkg/healthcheck/version.go "
              "(GetServerVersion)"),
    Behaviour("linkerd-cobra-unknown", "linkerd", "2.11-2.20",
              "unknown flags: `Error: unknown flag: --x` then the usage, exit 1; unknown "
              "top-level commands: `Error: unknown command \"x\" for \"linkerd\"` + `Run "
              "'linkerd --help' for usage.`",
              "spf13/cobra@v1.3.0:command.go (ExecuteC); cobra@v1.3.0:args.go (legacyArgs); "
              + L11 + "cli/main.go; " + L11 + "go.mod (cobra v1.3.0)"),
    Behaviour("linkerd-install-flags", "linkerd", "2.11 / 2.12+",
              "2.11 install has --set, --registry, --ignore-cluster and the identity-file flags "
              "but no --crds or --default-inbound-policy; 2.12 adds both",
              L11 + "cli/cmd/options.go; " + L12 + "cli/cmd/install.go (--crds); "
              + L12 + "cli/cmd/options.go:375 (--default-inbound-policy)"),
    Behaviour("linkerd-install-default-inbound-policy", "linkerd", "2.12+",
              "a bad --default-inbound-policy fails: \"--default-inbound-policy must be one of: "
              "all-authenticated, all-unauthenticated, cluster-authenticated, "
              "cluster-unauthenticated, deny (got X)\" (`, audit` from 2.16)",
              L12 + "cli/cmd/options.go:633-640; linkerd/linkerd2@version-2.16:"
              "cli/cmd/install_test.go:616"),
    Behaviour("linkerd-install-identity-files", "linkerd", "2.11-2.20",
              "the --identity-*-file flags are read with ReadFile; a missing file fails with "
              "`open PATH: no such file or directory`",
              L11 + "cli/cmd/options.go:143-154, 186-208"),
    Behaviour("linkerd-install-identity-objects", "linkerd", "2.11-2.20",
              "with the --identity-*-file flags, install renders Secret linkerd-identity-issuer "
              "(crt.pem, key.pem: the issuer files, trimmed, base64) and ConfigMap "
              "linkerd-identity-trust-roots (ca-bundle.crt: the anchors); the identity "
              "controller issues proxies' certificates from that issuer, so the double's "
              "reference adopts it once both are applied",
              L11 + "charts/linkerd2/templates/identity.yaml l.7-35; " + L12
              + "charts/linkerd-control-plane/templates/identity.yaml l.7-35"),
    Behaviour("proxy-inbound-detect-timeout-env", "linkerd", "2.11-2.20",
              "the proxy's inbound detect timeout is LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT "
              "(digits and a unit: ms, s, m, h, d), else 10 s; the double's injected proxies "
              "carry the reference's shorter one in that variable",
              "linkerd/linkerd2-proxy@HEAD:linkerd/app/src/env.rs (ENV_INBOUND_DETECT_TIMEOUT, "
              "DEFAULT_INBOUND_DETECT_TIMEOUT, parse_duration); F10.9"),
    Behaviour("linkerd-install-output", "linkerd", "2.11-2.20",
              "install renders the Namespace, ConfigMap linkerd-config (values: linkerdVersion, "
              "clusterNetworks, identityTrustDomain, default policy) and the identity, "
              "destination and proxy-injector Deployments with the chart's images: proxy, "
              "controller and policy-controller tagged with the release, proxy-init with its "
              "own tag (v1.5.3 at 2.11 ... v2.4.3 at 2.19); 2.19 drops policy-controller, 2.20 "
              "also proxy-init; --registry moves them; clusterNetworks gains fd00::/8 at 2.16",
              L11 + "charts/linkerd2/values.yaml; linkerd/linkerd2@{stable-2.12.6..version-2.20}"
              ":charts/linkerd-control-plane/values.yaml; cluster-review.md B1"),
    Behaviour("linkerd-install-crds", "linkerd", "2.11 / 2.12+",
              "2.11 install includes the policy CRDs (servers and serverauthorizations, "
              "v1alpha1+v1beta1); 2.12+ `install --crds` prints the CRDs (Server v1beta2 from "
              "2.15, v1beta3 from 2.16; Gateway API CRDs bundled 2.14-2.18) and `install` the "
              "rest",
              L11 + "charts/linkerd2/templates/policy-crd.yaml; linkerd/linkerd2@{tags}:"
              "charts/linkerd-crds/templates, charts/linkerd-crds/values.yaml; F9.8-F9.10"),
    Behaviour("linkerd-211-heartbeat-v1beta1", "linkerd", "2.11",
              "2.11 install renders the heartbeat CronJob as batch/v1beta1 (removed in "
              "Kubernetes 1.25)",
              L11 + "charts/linkerd2/templates/heartbeat.yaml:6; cluster-review.md A2"),
    Behaviour("linkerd-install-crds-first", "linkerd", "2.12+",
              "`install` without the CRDs on the cluster: \"Linkerd CRDs must be installed "
              "first. Run linkerd install with the --crds flag.\" on stderr, exit 1",
              L12 + "cli/cmd/install.go:129-139"),
    Behaviour("linkerd-install-config-exists", "linkerd", "2.11-2.20",
              "when ConfigMap linkerd-config exists, install (and 2.12+ install --crds) exits "
              "1 with \"Can't install the Linkerd control plane in the 'linkerd' namespace. "
              "Reason: ConfigMap/linkerd-config already exists.\" (2.11 also refuses earlier "
              "on existing global resources, not modelled)",
              L12 + "cli/cmd/install.go:45, 171-186; " + L11 + "cli/cmd/install.go:305-316; "
              "cluster-review.md A4"),
    Behaviour("linkerd-install-gateway-api-required", "linkerd", "2.19+",
              "with installGatewayAPI false (default from 2.19) and no Gateway API CRDs, install "
              "fails with \"The Gateway API CRDs must be installed prior to installing Linkerd. "
              "Run: ...v1.2.1/standard-install.yaml...\"",
              "linkerd/linkerd2@version-2.20:cli/cmd/install.go:407-425; "
              "linkerd/linkerd2@version-2.19:charts/linkerd-crds/values.yaml:4; "
              "cluster-review.md B3"),
    Behaviour("linkerd-check-output", "linkerd", "2.11-2.20",
              "check prints each category name underlined with dashes, `√ check` or `× check` "
              "with the error and `see https://linkerd.io/2.X/checks/#ANCHOR for hints` "
              "indented 4, a blank line, `Status check results are √|×`; exit 1 on failure; "
              "-o short prints only failures under a `Linkerd core checks` header",
              L11 + "pkg/healthcheck/healthcheck_output.go"),
    Behaviour("linkerd-check-pre-existing-ns", "linkerd", "2.11-2.20",
              "`check --pre` fails \"control plane namespace does not already exist\" with "
              "`The \"linkerd\" namespace already exists` (hint pre-ns) when it exists",
              L11 + "pkg/healthcheck/healthcheck.go:553, 1872-1884; cluster-review.md A4"),
    Behaviour("linkerd-check-k8s-version", "linkerd", "2.11-2.20",
              "\"is running the minimum Kubernetes API version\" compares /version with "
              "minAPIVersion: 1.17.0 (2.11), 1.21.0 (2.12-2.14), 1.22.0 (2.15-2.17), 1.23.0 "
              "(2.18-2.19), 1.31.0 (2.20): \"Kubernetes is on version [a.b.c], but version "
              "[x.y.z] or more recent is required\"",
              "linkerd/linkerd2@{stable-2.11.5..version-2.20}:pkg/k8s/api.go:30, "
              "CheckVersion; cluster-review.md A2"),
    Behaviour("linkerd-211-kubectl-check", "linkerd", "2.11",
              "2.11 check runs `kubectl version --client --short` from PATH; a non-zero exit "
              "is the error `exit status N`, else the first vX.Y.Z must be >= 1.17.0",
              L11 + "pkg/k8s/kubectl.go; " + L11 + "pkg/healthcheck/healthcheck.go:540; "
              "cluster-review.md A3"),
    Behaviour("linkerd-check-gateway-api", "linkerd", "edge-26.7.1+ (2.20)",
              "check has the fatal category gateway-api-crd \"Gateway API CRDs are installed\" "
              "(absent httproutes/grpcroutes.gateway.networking.k8s.io fail it and stop)",
              "linkerd/linkerd2 commit 6ed43844b (first in edge-26.7.1): "
              "pkg/healthcheck/healthcheck.go (GatewayAPICRDChecks), cli/cmd/check.go; F9.10"),
    Behaviour("linkerd-check-post-install", "linkerd", "2.11-2.20",
              "check (not --pre) fails \"control plane CustomResourceDefinitions exist\" "
              "(2.12+, fatal) without the CRDs and \"'linkerd-config' config map exists\" "
              "without the ConfigMap",
              L12 + "pkg/healthcheck/healthcheck.go (LinkerdCRDChecks, "
              "LinkerdControlPlaneExistenceChecks)"),
    Behaviour("linkerd-diagnostics-proxy-metrics", "linkerd", "2.11-2.20",
              "`diagnostics proxy-metrics -n NS po/NAME` prints the proxy's :4191/metrics "
              "(the real CLI port-forwards; the double serves it at /_double/v1/.../metrics)",
              "linkerd/linkerd2@stable-2.11.0:cli/cmd/diagnostics.go (newCmdMetrics); F9.4"),
    Behaviour("linkerd-diagnostics-policy-syntax", "linkerd", "2.12 / 2.13+",
              "2.12 `diagnostics policy [flags] POD PORT` (bare pod name, no -o); 2.13+ "
              "`policy [flags] resource port` with po/NAME or svc/NAME and -o yaml|json",
              L12 + "cli/cmd/policy.go; linkerd/linkerd2@stable-2.13.0:cli/cmd/policy.go; "
              "cluster-review.md C"),
    Behaviour("linkerd-211-no-diagnostics-policy", "linkerd", "2.11",
              "2.11 has no `diagnostics policy`: cobra parses the flags against `diagnostics` "
              "(so `-n` is `Error: unknown shorthand flag: 'n' in -n`, exit 1) and without "
              "flags prints the diagnostics help, exit 0",
              L11 + "cli/cmd/diagnostics.go (Args: cobra.NoArgs, no Run); "
              "spf13/cobra@v1.3.0:command.go (execute: ParseFlags, then ErrHelp)"),
    # ---- the CLI checks (suites/test_cli.py)
    Behaviour("linkerd-diagnostics-policy-output", "linkerd", "2.12 / 2.13+",
              "`diagnostics policy` prints the InboundServer the policy controller serves "
              "(labels group/kind/name of the server, authorizations with labels and "
              "metadata): 2.12 with json.MarshalIndent (no trailing newline), 2.13+ as YAML "
              "(sigs.k8s.io/yaml, keys sorted) or -o json",
              L12 + "cli/cmd/policy.go; linkerd/linkerd2@stable-2.13.0:cli/cmd/policy.go; "
              + L12 + "policy-controller/grpc/src/lib.rs (to_server, to_authz)"),
    Behaviour("linkerd-authz", "linkerd", "2.11 / 2.12+",
              "`authz [-n ns] resource` lists the Servers (selecting a pod of the resource "
              "whose spec.containers have the port) with the ServerAuthorizations naming or "
              "selecting them, never the defaults: 2.11 `SERVER AUTHORIZATION` right-aligned; "
              "2.12+ `ROUTE SERVER AUTHORIZATION_POLICY SERVER_AUTHORIZATION` left-aligned, "
              "with AuthorizationPolicies on a Server (`*`) or an HTTPRoute (its name), on a "
              "Namespace from 2.13; Servers read as v1alpha1 (2.11), v1beta1 (2.12-2.14), "
              "v1beta2 (2.15), v1beta3 (2.16+)",
              "linkerd/linkerd2@stable-2.11.0:cli/cmd/authz.go, pkg/k8s/policy.go, "
              "cli/table/table.go; linkerd/linkerd2@stable-2.12.0:cli/cmd/authz.go; "
              "linkerd/linkerd2@{stable-2.13.0..version-2.20}:pkg/k8s/policy.go; F9.1, F9.2"),
    Behaviour("linkerd-install-policy-controller-args", "linkerd", "2.11 / 2.12+",
              "the destination Deployment's `policy` container (the controller image from "
              "2.19) starts with --cluster-networks, --default-policy (2.11 "
              "policyController.defaultAllowPolicy, 2.12+ proxy.defaultInboundPolicy) and, "
              "from 2.12, --probe-networks=0.0.0.0/0 (0.0.0.0/0,::/0 from 2.16)",
              "linkerd/linkerd2@stable-2.11.0:charts/linkerd2/templates/destination.yaml "
              "l.252-258; linkerd/linkerd2@stable-2.12.0:charts/linkerd-control-plane/"
              "templates/destination.yaml l.262-269; linkerd/linkerd2@version-2.16 and "
              "@version-2.20 likewise (l.324-333, l.348-358); F1.17"),
    Behaviour("linkerd-install-control-plane-defaults", "linkerd", "2.11 / 2.12+",
              "the identity, destination and proxy-injector pod templates are annotated "
              "`config.linkerd.io/default-inbound-policy: all-unauthenticated`, and their "
              "proxies get LINKERD2_PROXY_INBOUND_DEFAULT_POLICY from the chart, not the "
              "cluster default: all-unauthenticated, except identity's "
              "cluster-unauthenticated in 2.11",
              "linkerd/linkerd2@stable-2.11.0:charts/linkerd2/templates/identity.yaml l.130, "
              "l.199, destination.yaml l.156, l.184, proxy-injector.yaml l.42, l.70, "
              "charts/partials/templates/_proxy.tpl l.40-41; linkerd/linkerd2@stable-2.12.0:"
              "charts/linkerd-control-plane/templates/identity.yaml l.127, l.199; "
              "@version-2.20 identity.yaml l.140, l.239; F1.25"),
    Behaviour("linkerd-install-control-plane-port-names", "linkerd", "2.11-2.18 / 2.19+",
              "the control-plane containers' ports are named grpc and admin-http (several "
              "containers alike) until 2.18; from 2.19 dest-grpc, dest-admin, spval-admin, "
              "policy-grpc, policy-admin, ident-grpc, ident-admin, injector-admin "
              "(sp-validator, policy-https and proxy-injector unchanged); numbers unchanged",
              "linkerd/linkerd2@stable-2.11.0:charts/linkerd2/templates/destination.yaml, "
              "identity.yaml, proxy-injector.yaml (containerPort entries); @version-2.18 and "
              "@version-2.19:charts/linkerd-control-plane/templates/ the same files; commit "
              "148fd1c16 (#14111); F2.16"),
    Behaviour("linkerd-multicluster-link-commands", "linkerd", "2.11-2.17 / 2.18+",
              "`multicluster --help` lists allow, check, gateways, install, link, uninstall, "
              "unlink; from 2.18 also link-gen, while link and unlink are deprecated (left "
              "out of the list, and `Command \"link\" is deprecated, please use `multicluster "
              "link-gen` instead.` on stderr when run, even with --help); link and link-gen "
              "take --cluster-name and --api-server-address; an unknown word prints the "
              "help (multicluster has no Run)",
              "linkerd/linkerd2@stable-2.11.0 and @version-2.17:multicluster/cmd/root.go "
              "l.82-88, link.go (flags l.379-380 at 2.17); @version-2.18:multicluster/cmd/"
              "root.go l.86-93, link.go l.79-80, unlink.go l.32, link-gen.go l.48-49, "
              "l.121-122; spf13/cobra@v1.9.1:command.go l.910-912 (deprecation on "
              "OutOrStderr), l.955-968 (not runnable: help before ValidateArgs), "
              "IsAvailableCommand; F8.6, F8.7"),
    Behaviour("linkerd-inject-default-inbound-policy", "linkerd", "2.12+",
              "`inject [--default-inbound-policy P] -` prints the input with each pod template "
              "annotated `linkerd.io/inject: enabled` and, when P is not the default, "
              "`config.linkerd.io/default-inbound-policy: P` (Namespaces are annotated the "
              "same way); the report (`deployment \"x\" injected`) goes to stderr; 2.11 has "
              "no such flag",
              "linkerd/linkerd2@stable-2.12.0:cli/cmd/inject.go l.182-206, 485-486; "
              "linkerd/linkerd2@stable-2.12.0:pkg/inject/inject.go (AnnotateNamespace); "
              "commit 9c0d457ab (#7428); F9.11"),
    Behaviour("linkerd-check-flags", "linkerd", "2.11 / 2.12+",
              "check takes --pre, --proxy, -n, --wait, -o table|json|short (anything else: "
              "\"Validation error when executing check command: Invalid output type 'X'. "
              "Supported output types are: json, table, short\"), --linkerd-cni-enabled, "
              "--expected-version; 2.12+ also --crds, which runs only the base checks and the "
              "`linkerd-crd` category",
              L11 + "cli/cmd/check.go l.51-79; " + L12 + "cli/cmd/check.go l.128-161; "
              "commit be2733b2b (#8499, first in edge-22.6.1); "
              + L12 + "pkg/healthcheck/healthcheck.go:72 (LinkerdCRDChecks = \"linkerd-crd\"); "
              "F9.7"),
    Behaviour("linkerd-viz-allow-scrapes", "linkerd", "2.12+",
              "`viz allow-scrapes -n NS` (namespace required) prints Server proxy-admin "
              "(linkerd-admin, pods with linkerd.io/control-plane-ns; v1beta1, v1beta2 at 2.15, "
              "v1beta3 from 2.16), HTTPRoutes proxy-metrics and proxy-probes and "
              "AuthorizationPolicies prometheus-scrape (ServiceAccount prometheus in "
              "linkerd-viz) and proxy-probes (NetworkAuthentication kubelet); 2.11 has no "
              "such command",
              "linkerd/linkerd2@stable-2.12.0:viz/cmd/allow-scrapes.go; "
              "linkerd/linkerd2@version-2.15 and @version-2.16:viz/cmd/allow-scrapes.go; F9.6"),
    # ------------------------------------------------------------------ multicluster
    Behaviour("kind-create-second-cluster", "kind", "v0.17-v0.32",
              "`kind create cluster --name N2` beside an existing cluster makes another "
              "cluster: its own node container N2-control-plane on the network `kind`, its own "
              "API server, its own kubeconfig entry kind-N2 (the double gives each name the API "
              "server the state file's `cluster_apiservers` names, else the next of its "
              "`spare_apiservers`, else its one)",
              K + "pkg/cluster/internal/create/create.go; "
              "pkg/cluster/internal/providers/docker/provision.go (node name "
              "`<cluster>-control-plane`, --net kind)"),
    Behaviour("linkerd-mc-install-flags", "linkerd", "2.11 / 2.12+ / 2.16+ / 2.20",
              "`multicluster install` takes --set/--set-string/--set-file/-f/--values, "
              "--gateway, --gateway-port, --gateway-probe-seconds, --gateway-probe-port, "
              "--service-mirror-credentials, --gateway-service-type, --wait; 2.11 also "
              "--namespace; 2.12+ --ha and --ignore-cluster; 2.16+ -o/--output; 2.20 "
              "--gateway-healthcheck-nodeport; anything else is cobra's unknown flag",
              "linkerd/linkerd2@stable-2.11.0:multicluster/cmd/install.go l.156-164; "
              "@stable-2.12.0..@version-2.19 and @version-2.20:multicluster/cmd/install.go "
              "(Flags())"),
    Behaviour("linkerd-mc-install-output", "linkerd", "2.11-2.20",
              "`multicluster install` reads linkerd-config (unless --ignore-cluster; without "
              "it: \"you need Linkerd to be installed in order to install multicluster "
              "addons\") and prints namespace linkerd-multicluster, the links CRD "
              "(v1alpha1; v1alpha2 from 2.17; v1alpha3 from 2.18), ServiceAccount "
              "linkerd-service-mirror-remote-access-default and, with the gateway, "
              "Deployment linkerd-gateway (inject enabled, config.linkerd.io/enable-gateway, "
              "proxy-require-identity-inbound-ports 4143), Service linkerd-gateway (type "
              "--gateway-service-type, default LoadBalancer; ports mc-gateway 4143, mc-probe "
              "4191; annotation mirror.linkerd.io/gateway-identity linkerd-gateway."
              "linkerd-multicluster.serviceaccount.identity.linkerd.<trust domain>) and its "
              "policy (2.11-2.12 Server HTTP/1 + ServerAuthorization meshTLS '*' from "
              "0.0.0.0/0 and ::/0; 2.13+ Server + AuthorizationPolicy requiring "
              "MeshTLSAuthentication any-meshed and NetworkAuthentication source-cluster); "
              "2.18+ a Deployment controller-<name> per `controllers[N].link.ref.name`",
              "linkerd/linkerd2@stable-2.11.0:multicluster/cmd/install.go l.195-208; "
              "@stable-2.11.0 and @version-2.20:multicluster/charts/linkerd-multicluster/"
              "templates/{gateway,gateway-policy,link-crd,remote-access-service-mirror-rbac}"
              ".yaml, values.yaml; @stable-2.12.0, @stable-2.13.0, @version-2.15, "
              "@version-2.16, @version-2.17:.../templates/gateway-policy.yaml, link-crd.yaml; "
              "@version-2.18:.../templates/controller/deployment.yaml; F8.1, F8.3, F8.7"),
    Behaviour("linkerd-mc-link-output", "linkerd", "2.11-2.17 link / 2.18+ link-gen",
              "`multicluster link` / `link-gen --cluster-name N` read the gateway Service of "
              "the cluster they run against and print Secret cluster-credentials-N (type "
              "mirror.linkerd.io/remote-kubeconfig, a kubeconfig whose server is "
              "--api-server-address when given) and Link N (multicluster.linkerd.io "
              "v1alpha1; v1alpha2 at 2.17; v1alpha3 from 2.18) with gatewayAddress "
              "(--gateway-addresses, else the LoadBalancer ingress), gatewayPort "
              "(--gateway-port, else the mc-gateway port), gatewayIdentity (the Service's "
              "annotation) and the selector mirror.linkerd.io/exported=true; `link` also "
              "the service mirror Deployment linkerd-service-mirror-N (label "
              "mirror.linkerd.io/cluster-name N); from 2.18 `link` says on stderr that it "
              "is deprecated. Flags: link at 2.11-2.13 --namespace, --cluster-name, "
              "--api-server-address, --service-account-name, --control-plane-version, "
              "--gateway-name, --gateway-namespace, --service-mirror-retry-limit, --log-level, "
              "--registry, -l/--selector, --gateway-addresses, --gateway-port; 2.14 adds "
              "--log-format, --remote-discovery-selector, --ha, --gateway; 2.16 -o/--output; "
              "2.17 --federated-service-selector; 2.18 --excluded-annotations, "
              "--excluded-labels; link-gen (2.18+) has the same but --control-plane-version, "
              "--service-mirror-retry-limit, --log-level, --log-format, --registry, --ha",
              "linkerd/linkerd2@stable-2.11.0:multicluster/cmd/link.go l.101-247, 323-336; "
              "@stable-2.12.0, @stable-2.13.0, @stable-2.14.0, @version-2.15, @version-2.16, "
              "@version-2.17, @version-2.18:multicluster/cmd/link.go (Flags()); "
              "@stable-2.11.0:multicluster/charts/linkerd-multicluster-link/templates/"
              "service-mirror.yaml l.82-89; @version-2.17:multicluster/cmd/link.go l.378-397; "
              "@version-2.20:multicluster/cmd/link-gen.go l.120-134, 204-318; F8.6, F8.7"),
    Behaviour("linkerd-mc-link-refusals", "linkerd", "2.11-2.20",
              "link/link-gen without --cluster-name: \"You need to specify cluster name\" "
              "(2.11; \"you need ...\" in link-gen); without Linkerd: \"you need Linkerd to "
              "be installed on a cluster in order to get its credentials\"; a gateway "
              "without LoadBalancer ingress and no --gateway-addresses: \"Gateway "
              "linkerd-gateway.linkerd-multicluster has no ingress addresses\" (\"gateway "
              "...\" in link-gen); no gateway-identity annotation: \"... has no "
              "mirror.linkerd.io/gateway-identity annotation\"; the service account's token "
              "is not read (the double's API server takes any token)",
              "linkerd/linkerd2@stable-2.11.0:multicluster/cmd/link.go l.72-74, 101-125, "
              "191-201; @version-2.20:multicluster/cmd/link-gen.go l.60-75, 289-300"),
    # ------------------------------------------------- install values (targets/reinstall.py)
    Behaviour("linkerd-install-cluster-networks-validated", "linkerd", "2.11-2.20",
              "install parses each comma-separated entry of clusterNetworks with Go's "
              "net.ParseCIDR and refuses one that is not a CIDR, the empty value included "
              "("" splits into one empty entry): `Error: cannot parse destination get "
              "networks: invalid CIDR address: <entry>`, exit 1; an escaped `\\,` in --set is "
              "Helm's literal comma",
              "linkerd/linkerd2@stable-2.11.0:cli/cmd/options.go l.568-574 "
              "(validateProxyValues), install.go l.302; @version-2.20:cli/cmd/options.go "
              "l.548-554, install.go l.326; the same lines at every tag between; Go net "
              "ParseError: \"invalid \" + Type + \": \" + Text"),
    Behaviour("linkerd-install-values-files", "linkerd", "2.11-2.20",
              "install takes -f/--values YAML files (merged in order, maps key by key, "
              "--set over them); a values file can give a list its empty value, which --set "
              "cannot (`{}` is a list of one empty string); policyController.probeNetworks "
              "defaults to [0.0.0.0/0] (2.12-2.15) and [0.0.0.0/0, ::/0] (2.16+) and is in "
              "linkerd-config's values",
              "linkerd/linkerd2@stable-2.11.0:pkg/flags/flags.go l.94, @stable-2.12.0 l.97, "
              "@version-2.20 l.110 (`values`, `f`); helm/helm pkg/cli/values/options.go "
              "(MergeValues), pkg/strvals/parser.go (valList); "
              "charts/linkerd-control-plane/values.yaml (probeNetworks) at stable-2.12.0 "
              "l.78, version-2.16 l.99; F6.4"),
    Behaviour("linkerd-install-probe-networks-arg", "linkerd", "2.12-2.20",
              "the policy container gets --probe-networks=<probeNetworks joined by commas> only "
              "when the list is not empty; an empty list leaves the flag out, and the "
              "controller then has no probe networks (no probe routes)",
              "linkerd/linkerd2@stable-2.12.0:charts/linkerd-control-plane/templates/"
              "destination.yaml l.267-268, policy-controller/src/main.rs l.71, 105; "
              "@version-2.20:charts/linkerd-control-plane/templates/destination.yaml l.356-357, "
              "policy-controller/runtime/src/args.rs l.85, 134"),
    Behaviour("double-installed-networks", "double", "2.11-2.20",
              "the networks of an installed control plane take effect as its components start: "
              "when linkerd-proxy-injector is applied or restarted, the proxies injected from "
              "then on get LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS from linkerd-config's values "
              "(an empty value: none); when linkerd-destination is applied, the policy "
              "controller runs with its policy container's --cluster-networks and (2.12+) "
              "--probe-networks (none without the flag). A ConfigMap edit alone changes "
              "nothing until the injector restarts (the real injector re-reads its mounted "
              "file, which the kubelet refreshes only periodically)",
              "linkerd/linkerd2@stable-2.11.0:controller/proxy-injector/webhook.go l.40 "
              "(config.Values(MountPathValuesConfig) per request), charts/partials/templates/"
              "_proxy.tpl l.42, charts/linkerd2/templates/proxy-injector.yaml l.112-115 (the "
              "linkerd-config volume); @version-2.20:controller/proxy-injector/webhook.go l.43, "
              "_proxy.tpl l.78; linkerd/linkerd2-proxy@HEAD:linkerd/app/src/env/types.rs "
              "parse_networks (empty entries skipped), env.rs l.669; F1.20, F6.4"),
]
