#!/usr/bin/env bash
# kind-e2e.sh: Weft and BookInfo on a kind cluster (Kubernetes in Docker), on a laptop with Docker.
#
#   1. a kind cluster from deploy/kind/cluster.yaml (reused when one of that name exists);
#   2. Weft's images: dist/images/{weftd,proxy,bookinfo}.tar (`npm run images` when missing), loaded into
#      the node with `kind load image-archive` (nothing is pulled from a registry);
#   3. the BookInfo suite through the kube driver (e2e/bookinfo/src/kube.e2e.kube.test.ts) with KUBECONFIG
#      set to the kind cluster's: the driver installs Weft itself, deploys BookInfo in a namespace of its
#      own, runs every scenario, and uninstalls (so it runs before step 4, which keeps Weft installed);
#   4. the demo: `weftctl install --values deploy/kind/values.yaml`, `weftctl check`, BookInfo in namespace
#      bookinfo (istio-injection=enabled) with Istio's bookinfo-gateway, Prometheus (deploy/addons), and
#      http://127.0.0.1:8080/productpage answering.
# The cluster is kept (delete it with `kind delete cluster --name NAME`) unless --delete.
#
# kind itself cannot run on the machines this repository is developed and tested on (no Docker daemon):
# there the script is only checked statically (shellcheck; the manifests with a server-side dry run)
# and for its early refusal below. It stops before touching anything when docker (a running daemon),
# kind, kubectl or the workspace's node_modules are missing, saying which.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=weft
TEST=1
DEMO=1
DELETE=0
REBUILD=0

usage() {
  cat <<'EOT'
Usage: scripts/kind-e2e.sh [--name NAME] [--no-test | --test-only] [--rebuild-images] [--delete]
  --name NAME       the kind cluster (default weft)
  --no-test         skip the BookInfo suite: cluster, images and the demo only
  --test-only       skip the demo: cluster, images and the suite only
  --rebuild-images  run `npm run images` even when dist/images has the archives
  --delete          delete the cluster at the end (also when a step fails)
Environment: KIND_NODE_IMAGE (kind's node image, default kind's own), KIND_EXPERIMENTAL_PROVIDER (podman or
nerdctl instead of docker), WEFT_E2E_HOST_ADDRESS and WEFT_E2E_INGRESS_URL (for the suite, when pods cannot
reach this host through the node's network or the node's NodePorts are not reachable from here, e.g. Docker
Desktop on macOS: see README, "On Kubernetes").
EOT
}

die() {
  echo "kind-e2e.sh: $*" >&2
  exit 1
}
say() { echo "kind-e2e.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --name) [ $# -ge 2 ] || die "--name needs a value"; NAME=$2; shift 2 ;;
    --no-test) TEST=0; shift ;;
    --test-only) DEMO=0; shift ;;
    --rebuild-images) REBUILD=1; shift ;;
    --delete) DELETE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[ $TEST = 1 ] || [ $DEMO = 1 ] || die "--no-test and --test-only together leave nothing to do"

# --- what must be there before anything is created
PROVIDER=${KIND_EXPERIMENTAL_PROVIDER:-docker}
missing=()
for tool in "$PROVIDER" kind kubectl node npm curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  die "needs ${missing[*]} on PATH (kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation;" \
    "Docker: https://docs.docker.com/engine/install/). kind cannot run without a container engine."
fi
if ! "$PROVIDER" info >/dev/null 2>&1; then
  die "$PROVIDER is installed but its daemon does not answer ($PROVIDER info failed): kind runs each node as a" \
    "container, so start it first (or set KIND_EXPERIMENTAL_PROVIDER=podman)."
fi
[ -x "$ROOT/node_modules/.bin/weftctl" ] || die "no node_modules in $ROOT: run npm ci first"

weftctl() { "$ROOT/node_modules/.bin/weftctl" "$@"; }

KUBECONFIG_FILE=$ROOT/dist/kind/$NAME.kubeconfig
if [ $DELETE = 1 ]; then
  trap 'say "deleting the cluster $NAME"; kind delete cluster --name "$NAME" >&2 || true; rm -f "$KUBECONFIG_FILE"' EXIT
fi

# --- 1. the cluster
if kind get clusters 2>/dev/null | grep -qx "$NAME"; then
  say "using the existing kind cluster $NAME"
else
  say "creating the kind cluster $NAME (deploy/kind/cluster.yaml)"
  kind create cluster --name "$NAME" --config "$ROOT/deploy/kind/cluster.yaml" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi
mkdir -p "$(dirname "$KUBECONFIG_FILE")"
kind get kubeconfig --name "$NAME" >"$KUBECONFIG_FILE"
export KUBECONFIG=$KUBECONFIG_FILE
say "KUBECONFIG=$KUBECONFIG"

# --- 2. the images
images=(weftd proxy bookinfo)
need_build=$REBUILD
for i in "${images[@]}"; do [ -f "$ROOT/dist/images/$i.tar" ] || need_build=1; done
if [ "$need_build" = 1 ]; then
  say "building the images (npm run images)"
  (cd "$ROOT" && npm run images)
fi
for i in "${images[@]}"; do
  say "loading dist/images/$i.tar into $NAME"
  kind load image-archive "$ROOT/dist/images/$i.tar" --name "$NAME"
done

# --- 3. the BookInfo suite through the kube driver
if [ $TEST = 1 ]; then
  say "running the BookInfo suite on $NAME (e2e/bookinfo/src/kube.e2e.kube.test.ts)"
  (cd "$ROOT/e2e/bookinfo" && npx vitest run src/kube.e2e.kube.test.ts)
fi

# --- 4. the demo
if [ $DEMO = 1 ]; then
  say "installing Weft (weftctl install --values deploy/kind/values.yaml)"
  weftctl install --kubeconfig "$KUBECONFIG" --values "$ROOT/deploy/kind/values.yaml"
  weftctl check --kubeconfig "$KUBECONFIG"
  say "deploying BookInfo in namespace bookinfo"
  kubectl create namespace bookinfo --dry-run=client -o yaml | kubectl apply -f -
  kubectl label namespace bookinfo istio-injection=enabled --overwrite
  kubectl apply -n bookinfo -f "$ROOT/examples/bookinfo/platform/kube/bookinfo.yaml"
  weftctl apply --kubeconfig "$KUBECONFIG" -n bookinfo -f "$ROOT/examples/bookinfo/networking/bookinfo-gateway.yaml" --wait 120
  kubectl wait -n bookinfo deployment --all --for=condition=Available --timeout=300s
  say "deploying Prometheus (deploy/addons/prometheus/base: the upstream prom/prometheus image)"
  kubectl apply -f "$ROOT/deploy/addons/prometheus/base/prometheus.yaml"
  url=http://127.0.0.1:8080/productpage
  for _ in $(seq 60); do
    if curl -fsS -o /dev/null "$url"; then break; fi
    sleep 2
  done
  curl -fsS -o /dev/null "$url" || die "$url does not answer (kubectl -n istio-system get pods,svc)"
  weftctl check --kubeconfig "$KUBECONFIG"
  cat <<EOT
BookInfo: $url
  export KUBECONFIG=$KUBECONFIG
  npx weftctl apply --kube -n bookinfo -f examples/bookinfo/networking/virtual-service-all-v1.yaml
  kubectl -n istio-system port-forward svc/prometheus 9090     # Prometheus: http://127.0.0.1:9090
  kind delete cluster --name $NAME                             # when done
EOT
fi
