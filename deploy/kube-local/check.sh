#!/bin/bash
# check.sh: end-to-end checks of the running cluster (after up.sh): API, Istio CRDs, pods, pod IP, ClusterIP,
# logs, port-forward, EndpointSlices, pod -> API server, cluster DNS, admission webhooks (URL and Service-backed),
# and an istio-init-like NET_ADMIN init container that captures traffic with iptables.
# Prints one PASS/FAIL/SKIP line per check; the last line is "N passed, N failed" (", N skipped" follows when a
# check was skipped). Exits non-zero if a check failed. Its objects live in the kl-check* namespaces and are
# deleted at the end (CHECK_KEEP=1 keeps them); Istio's CRDs are deleted again if this run installed them.
set -euo pipefail
TOOL=$(dirname "$(readlink -f "$0")")
SCRIPT=check
. "$TOOL/lib/common.sh"
export PATH=$B:$PATH KUBECONFIG=$KCFG
[ -f "$KCFG" ] || die "no $KCFG: run up.sh first"
T=$TOOL/tests
ISTIO_REF=${ISTIO_REF:-$TOOL/../../../shared/reference/istio}
CRD_FILE=$ISTIO_REF/manifests/charts/base/files/crd-all.gen.yaml
VS_FILE=$ISTIO_REF/samples/bookinfo/networking/virtual-service-all-v1.yaml
NS=kl-check NS_WH=kl-check-wh NS_WHSVC=kl-check-whsvc NS_TARGET=kl-check-whsvc-target
NAMESPACES=("$NS" "$NS_WH" "$NS_WHSVC" "$NS_TARGET")
OVERRIDES='{"apiVersion": "v1", "spec": {"terminationGracePeriodSeconds": 1}}'   # node as PID 1 ignores SIGTERM
pass=0 fail=0 skip=0 summarized=0 created_crds=0 START=$SECONDS
BG=()   # background processes of this run, stopped on exit
mkdir -p "$KL/tmp" "$LOGS" "$R"
TMP=$(mktemp -d "$KL/tmp/check.XXXXXX")

check() { # name command...: one PASS/FAIL line (last line of the output, or the last 3 on failure)
  local name=$1 out; shift
  if out=$("$@" 2>&1); then
    pass=$((pass + 1)); echo "PASS $name: $(tail -1 <<<"$out" | cut -c1-150)"
  else
    fail=$((fail + 1)); echo "FAIL $name: $(tail -3 <<<"$out" | tr '\n' ' ' | cut -c1-300)"
  fi
}
skipped() { skip=$((skip + 1)); echo "SKIP $1: $2"; }
retry() { # times command...: once a second until it succeeds
  local n=$1; shift
  for _ in $(seq 2 "$n"); do "$@" && return 0; sleep 1; done
  "$@"
}
summary() {
  local line="$pass passed, $fail failed"
  [ $skip = 0 ] || line="$line, $skip skipped"
  echo "check.sh took $((SECONDS - START))s"
  echo "$line"
  summarized=1
}
cleanup() {
  local rc=$? p
  for p in "${BG[@]}"; do kill "$p" 2> /dev/null || true; done
  rm -f "$R/extra.pids"
  if [ "${CHECK_KEEP:-0}" != 1 ]; then
    kubectl delete mutatingwebhookconfigurations,validatingwebhookconfigurations -l kube-local-check=true --ignore-not-found > /dev/null 2>&1 || true
    delete_pods
    kubectl delete ns "${NAMESPACES[@]}" --ignore-not-found --wait=false > /dev/null 2>&1 || true
    # synchronously: a test that installs Istio right after must not meet CRDs that are still terminating
    if [ $created_crds = 1 ]; then kubectl delete -f "$CRD_FILE" --ignore-not-found --timeout=60s > /dev/null 2>&1 || true; fi
  fi
  rm -rf "$TMP"
  if [ $summarized = 0 ]; then
    fail=$((fail + 1)); echo "FAIL check.sh: stopped early (exit $rc), see above"; summary; exit 1
  fi
}
trap cleanup EXIT
# The namespaces go much faster once their pods are gone. The pods here are throw-away, so no grace period;
# the Deployment goes first, or its ReplicaSet recreates the pods that are being deleted.
delete_pods() {
  local n
  kubectl -n "$NS" delete deployments,replicasets --all --cascade=orphan --wait=false > /dev/null 2>&1 || true
  for n in "${NAMESPACES[@]}"; do
    kubectl -n "$n" delete pods --all --grace-period=0 --force --wait=false > /dev/null 2>&1 || true
  done
}

# leftovers of an earlier run (CHECK_KEEP=1, or one that was killed)
kubectl delete mutatingwebhookconfigurations,validatingwebhookconfigurations -l kube-local-check=true --ignore-not-found > /dev/null
if [ -n "$(kubectl get ns "${NAMESPACES[@]}" --ignore-not-found -o name)" ]; then
  delete_pods
  kubectl delete ns "${NAMESPACES[@]}" --ignore-not-found --timeout=120s > /dev/null
fi

check readyz kubectl get --raw /readyz
c_namespaces() { kubectl get ns default kube-node-lease kube-public kube-system -o name | tr '\n' ' '; }
check namespaces c_namespaces
for n in "${NAMESPACES[@]}"; do kubectl create ns "$n" > /dev/null; done

# --- Istio's CRDs and a VirtualService from the Bookinfo sample (read from the project's reference data)
if [ -f "$CRD_FILE" ] && [ -f "$VS_FILE" ]; then
  kubectl get crd virtualservices.networking.istio.io > /dev/null 2>&1 || created_crds=1
  c_istio_crds() {
    kubectl apply --server-side --force-conflicts -f "$CRD_FILE" > /dev/null &&
      kubectl wait --for=condition=Established crd/virtualservices.networking.istio.io --timeout=30s > /dev/null &&
      echo "$(kubectl get crd -o name | grep -c 'istio\.io$') istio.io CRDs"
  }
  check istio-crds c_istio_crds
  c_virtualservice() {
    local names
    kubectl -n "$NS" apply -f "$VS_FILE" > /dev/null &&
      names=$(kubectl -n "$NS" get virtualservices -o jsonpath='{.items[*].metadata.name}') &&
      [ "$(wc -w <<<"$names")" = 4 ] && echo "$names"
  }
  check virtualservice c_virtualservice
else
  skipped istio-crds "no Istio reference data at $ISTIO_REF (set ISTIO_REF)"
  skipped virtualservice "no Istio reference data at $ISTIO_REF (set ISTIO_REF)"
fi

# --- workloads, pod IP, Service, logs, port-forward, EndpointSlices
kubectl apply -f "$T/app.yaml" > /dev/null
c_pods_ready() {
  kubectl -n "$NS" rollout status deploy/web --timeout=120s > /dev/null &&
    kubectl -n "$NS" wait --for=condition=Ready pod/web-pod --timeout=120s
}
check pods-ready c_pods_ready
IP=$(kubectl -n "$NS" get pod web-pod -o jsonpath='{.status.podIP}' || true)
check pod-ip curl -sf -m 5 "http://$IP:8080/pod-ip"
CIP=$(kubectl -n "$NS" get svc web-pod -o jsonpath='{.spec.clusterIP}' || true)
check cluster-ip retry 10 curl -sf -m 5 "http://$CIP/cluster-ip"
c_logs() { kubectl -n "$NS" logs web-pod | grep -x 'listening 8080'; }
check kubectl-logs c_logs
# local port 0: kubectl picks a free one and prints "Forwarding from 127.0.0.1:PORT -> 8080"
kubectl -n "$NS" port-forward pod/web-pod :8080 > "$TMP/port-forward.out" 2>&1 &
BG+=($!)
c_port_forward() {
  local port
  port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$TMP/port-forward.out" | head -1)
  [ -n "$port" ] && curl -sf -m 5 "http://127.0.0.1:$port/port-forward"
}
check port-forward retry 10 c_port_forward
c_endpointslice() {
  local a
  a=$(kubectl -n "$NS" get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{.items[*].endpoints[*].addresses[0]}') &&
    [ "$(wc -w <<<"$a")" = 2 ] && echo "service web: $a"
}
check endpointslice-2-replicas retry 10 c_endpointslice

# --- from inside a pod: the API server through the "kubernetes" Service with the pod's token, then DNS
c_pod_to_apiserver() {
  kubectl -n "$NS" exec web-pod -- /usr/bin/node -e '
const https = require("https"), fs = require("fs"), d = "/var/run/secrets/kubernetes.io/serviceaccount/";
https.get({host: process.argv[1], port: 443, path: "/version", ca: fs.readFileSync(d + "ca.crt"), servername: "kubernetes.default.svc",
  headers: {Authorization: "Bearer " + fs.readFileSync(d + "token", "utf8")}}, (r) => {
  let b = ""; r.on("data", (c) => (b += c));
  r.on("end", () => { console.log(r.statusCode, JSON.parse(b).gitVersion); process.exit(r.statusCode == 200 ? 0 : 1); });
}).on("error", (e) => { console.log(e.message); process.exit(1); });' "$KUBE_SVC_IP"
}
check pod-to-apiserver c_pod_to_apiserver
if kubectl -n kube-system get deploy coredns > /dev/null 2>&1; then
  # A Service name of its own for each run: CoreDNS caches answers for 30 s, so a Service deleted and created
  # again under the same name (by an earlier run) may still resolve to its old ClusterIP.
  DNS_SVC=dns-$RANDOM
  kubectl -n "$NS" expose deployment web --name="$DNS_SVC" --port=80 --target-port=8080 > /dev/null
  c_dns() {
    kubectl -n "$NS" exec web-pod -- /usr/bin/node -e '
require("http").get(process.argv[1], (r) => {
  let b = ""; r.on("data", (c) => (b += c)); r.on("end", () => { console.log(b.trim()); process.exit(0); });
}).on("error", (e) => { console.log(e.message); process.exit(1); });' "http://$DNS_SVC.$NS.svc.cluster.local/dns"
  }
  check dns-name retry 10 c_dns
else
  skipped dns-name "no CoreDNS in this cluster"
fi

# --- admission webhooks served on the host (URL); registered only once the server listens, since a
#     failurePolicy: Fail webhook that cannot be reached rejects every pod it matches
CA=$(base64 -w0 "$P/ca.crt")
CERT_DIR=$P/ KEY=check-webhook.key CERT=check-webhook.crt PORT=0 node "$T/webhook-server.js" > "$LOGS/check-webhook.log" 2>&1 &
BG+=($!)
echo $! >> "$R/extra.pids"   # down.sh stops it should this script be killed
WPORT=""
for _ in $(seq 1 50); do
  WPORT=$(sed -n 's/^webhook listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$LOGS/check-webhook.log")
  [ -z "$WPORT" ] || break
  sleep 0.2
done
sed -e "s#CA_BUNDLE#$CA#" -e "s#WEBHOOK_PORT#${WPORT:-1}#" "$T/webhook-config.yaml" | kubectl apply -f - > /dev/null
run_pod() { # namespace name [kubectl run options]: a pod that just waits
  local ns=$1 name=$2; shift 2
  kubectl -n "$ns" run "$name" --image="$NODE_IMAGE" --image-pull-policy=Never --overrides="$OVERRIDES" "$@" \
    --command -- /usr/bin/node -e 'setInterval(() => {}, 1e6)'
}
c_webhook_mutate() {
  run_pod "$NS_WH" mutated > /dev/null &&
    kubectl -n "$NS_WH" get pod mutated -o jsonpath='{.metadata.labels.kube-local-webhook}' | grep -x mutated
}
check webhook-mutate c_webhook_mutate
c_webhook_deny() {
  local out
  if out=$(run_pod "$NS_WH" denied --labels=deny-me=true 2>&1); then echo "created: $out"; return 1; fi
  grep -q 'denied the request' <<<"$out" || { echo "$out"; return 1; }
  ! kubectl -n "$NS_WH" get pod denied > /dev/null 2>&1 && echo "denied: ${out##*: }"
}
check webhook-validate-deny c_webhook_deny

# --- a webhook served by a pod behind a Service (as istiod's injector is)
kubectl -n "$NS_WHSVC" create secret tls kl-webhook-tls --cert="$P/check-webhook-svc.crt" --key="$P/check-webhook-svc.key" > /dev/null
kubectl -n "$NS_WHSVC" create configmap kl-webhook-js --from-file="$T/webhook-server.js" > /dev/null
sed "s#CA_BUNDLE#$CA#" "$T/webhook-svc.yaml" | kubectl apply -f - > /dev/null
kubectl -n "$NS_WHSVC" wait --for=condition=Ready pod/kl-webhook --timeout=60s > /dev/null || true
# Retried: the endpoint appears when the pod is Ready, but the ClusterIP forwards to it only after kube-proxy's
# next sync; a call in between fails with "connection refused" (kube-proxy REJECTs Services without endpoints).
c_webhook_svc() {
  run_pod "$NS_TARGET" svc-mutated > /dev/null 2>&1
  kubectl -n "$NS_TARGET" get pod svc-mutated -o jsonpath='{.metadata.labels.kube-local-webhook}' | grep -x mutated
}
check webhook-via-service retry 10 c_webhook_svc

# --- NET_ADMIN init container: iptables REDIRECT of inbound and outbound traffic inside the pod's netns
kubectl apply -f "$T/netadmin.yaml" > /dev/null
check netadmin-init kubectl -n "$NS" wait --for=condition=Ready pod/capture-test --timeout=90s
CT=$(kubectl -n "$NS" get pod capture-test -o jsonpath='{.status.podIP}' || true)
c_inbound() { curl -sf -m 5 "http://$CT:80/" | grep -x captured-inbound-by-15006; }
check inbound-capture c_inbound
c_outbound() {
  kubectl -n "$NS" exec capture-test -c sidecar -- /usr/bin/node -e '
require("http").get("http://10.96.0.99/", (r) => { let b = ""; r.on("data", (c) => (b += c)); r.on("end", () => console.log(b.trim())); })
  .on("error", (e) => console.log(e.message));' | grep -x captured-outbound-by-15001
}
check outbound-capture c_outbound

summary
[ $fail = 0 ]
