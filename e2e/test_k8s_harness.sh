#!/usr/bin/env bash
# e2e: the Kubernetes test harness (issue #3). Starts its own control plane
# with `harness.sh start k8s` under $TMPDIR (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok with fake nodes, all on
# 127.0.0.1) and checks that it behaves like a cluster: a Deployment's pods
# are scheduled to the kwok nodes and become Ready, deleting it
# garbage-collects its ReplicaSet and pods, a service-account token works
# against the API with the CA file (in-cluster style) and RBAC refuses what
# the account may not do, and helm renders and installs a chart. Stops the
# cluster at the end (also on failure) and checks that nothing is left.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/e2e/lib.sh"
HARNESS=${KAA_HARNESS:-$ROOT/e2e/harness/harness.sh}
DEADLINE_MS=${KAA_K8S_WAIT_MS:-60000}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/k8s-harness.XXXXXX") || exit 1
K8S=$WORK/k8s
STOPPED=0

cleanup() {
    trap - EXIT
    trap '' INT TERM
    if [ "$STOPPED" = 0 ] && [ -f "$K8S/kind" ]; then
        "$HARNESS" stop k8s "$K8S" || "$HARNESS" kill k8s "$K8S" || true
    fi
    if [ -n "${KAA_KEEP_TMP:-}" ]; then
        echo "kept $WORK (logs: $K8S/*/server.log)" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- start -------------------------------------------------------------------

echo "starting the k8s harness in $K8S"
t0=$(now_ms)
if ! out=$("$HARNESS" start k8s "$K8S"); then
    fail "harness start k8s"
    summary
    exit 1
fi
pass "harness start k8s ($(($(now_ms) - t0)) ms)"
echo "$out"
set -a
eval "$out"
set +a
KUBECTL=$KAA_TEST_K8S_BIN/kubectl
HELM=$KAA_TEST_K8S_BIN/helm
API=$KAA_TEST_K8S_APISERVER
CA=$KAA_TEST_K8S_CA
k() { "$KUBECTL" --request-timeout=10s "$@"; }

check "env: KUBECONFIG is DIR/kubeconfig and the apiserver is on 127.0.0.1" \
    test "$KUBECONFIG" = "$K8S/kubeconfig" -a "${API#https://127.0.0.1:}" != "$API"
check "harness status k8s: running" "$HARNESS" status k8s "$K8S"

server_version() { k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'; }
client_version() { k version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'; }
SV=$(server_version 2>/dev/null)
CV=$(client_version 2>/dev/null)
echo "  kube-apiserver $SV, kubectl $CV"
check "kube-apiserver and kubectl report the same pinned release ($SV)" \
    test -n "$SV" -a "$SV" = "$CV" -a "${SV#v1.}" != "$SV"

ready_nodes() {
    k get nodes -l type=kwok -o \
        'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
        grep -c ' True$'
}
check "3 kwok nodes are Ready" test "$(ready_nodes)" = 3

# anonymous requests may read /readyz (system:public-info-viewer) but not pods
check "apiserver /readyz answers ok with the CA file" \
    test "$(curl -sS --max-time 5 --cacert "$CA" "$API/readyz")" = ok
check "an anonymous request to list pods is refused (403)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" "$API/api/v1/pods")" = 403

# ---- Deployment -> ReplicaSet -> Pods on kwok nodes --------------------------------

NS=smoke
check "kubectl create namespace $NS" k create namespace "$NS"
check "kubectl create deployment web (2 replicas)" \
    k create deployment web -n "$NS" --image=registry.k8s.io/pause:3.10 --replicas=2

# "N M": pods of app=web that are Ready and bound to a kwok node, and all of them
web_pods() {
    k get pods -n "$NS" -l app=web -o \
        'jsonpath={range .items[*]}{.spec.nodeName} {.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.status.podIP}{"\n"}{end}'
}
pods_ready_on_kwok() {
    local out
    out=$(web_pods) || return 1
    [ "$(grep -cE '^kwok-node-[0-9]+ Running True [0-9.]+$' <<<"$out")" = 2 ] &&
        [ "$(grep -c . <<<"$out")" = 2 ]
}
check "2 pods scheduled to kwok nodes become Running and Ready" wait_for "$DEADLINE_MS" pods_ready_on_kwok
web_pods | sed 's/^/    /'
check "deployment web reports 2 available replicas" \
    "$KUBECTL" rollout status deployment/web -n "$NS" --timeout=60s

RS=$(k get replicasets -n "$NS" -l app=web -o 'jsonpath={.items[*].metadata.name}')
PODS=$(k get pods -n "$NS" -l app=web -o 'jsonpath={.items[*].metadata.name}')
RS_OWNER=$(k get replicasets -n "$NS" -l app=web -o 'jsonpath={.items[0].metadata.ownerReferences[0].kind}/{.items[0].metadata.ownerReferences[0].name}')
check "the deployment owns one ReplicaSet ($RS, owner $RS_OWNER)" \
    test -n "$RS" -a "${RS// /}" = "$RS" -a "$RS_OWNER" = Deployment/web

check "kubectl delete deployment web" k delete deployment web -n "$NS" --wait=false
gone() { # KIND NAMES...: none of the named objects exists any more
    local kind=$1 n
    shift
    for n in "$@"; do
        k get "$kind" "$n" -n "$NS" -o name >/dev/null 2>&1 && return 1
    done
    # and it was not an error of kubectl: the namespace can still be listed
    k get "$kind" -n "$NS" -o name >/dev/null
}
# shellcheck disable=SC2086 # lists of names
check "the garbage collector deletes its ReplicaSet" wait_for "$DEADLINE_MS" gone replicasets $RS
# shellcheck disable=SC2086
check "and its pods ($PODS)" wait_for "$DEADLINE_MS" gone pods $PODS

# ---- service-account token, in-cluster style ------------------------------------------

k create serviceaccount reader -n "$NS" >/dev/null &&
    k create role pod-reader -n "$NS" --verb=get,list,watch --resource=pods >/dev/null &&
    k create rolebinding reader-pods -n "$NS" --role=pod-reader --serviceaccount="$NS:reader" >/dev/null
check "service account reader with a Role to read pods in $NS" test $? = 0
TOKEN=$(k create token reader -n "$NS" --duration=10m)
check "kubectl create token issues a JWT" test "$(tr -cd . <<<"$TOKEN")" = ..

# HTTP status of a request with the token and the CA file only (no kubeconfig)
sa_code() {
    curl -s -o "$WORK/sa.out" -w '%{http_code}' --max-time 5 --cacert "$CA" \
        -H "Authorization: Bearer $TOKEN" "$@"
}
check "the token lists pods in $NS (200)" test "$(sa_code "$API/api/v1/namespaces/$NS/pods")" = 200
json_kind() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("kind"))' "$1" 2>/dev/null; }
check "and the answer is a PodList" test "$(json_kind "$WORK/sa.out")" = PodList
whoami_user() {
    sa_code -X POST -H 'Content-Type: application/json' \
        -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \
        "$API/apis/authentication.k8s.io/v1/selfsubjectreviews" >/dev/null &&
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"]["userInfo"]["username"])' "$WORK/sa.out"
}
check "the API sees the token as system:serviceaccount:$NS:reader" \
    test "$(whoami_user)" = "system:serviceaccount:$NS:reader"
check "RBAC refuses the token listing secrets in $NS (403)" \
    test "$(sa_code "$API/api/v1/namespaces/$NS/secrets")" = 403
check "RBAC refuses the token listing pods in kube-system (403)" \
    test "$(sa_code "$API/api/v1/namespaces/kube-system/pods")" = 403
check "RBAC refuses the token creating pods in $NS (403)" \
    test "$(sa_code -X POST -H 'Content-Type: application/json' -d '{}' "$API/api/v1/namespaces/$NS/pods")" = 403
check "a forged token is refused (401)" \
    test "$(TOKEN=${TOKEN%.*}.AAAA sa_code "$API/api/v1/namespaces/$NS/pods")" = 401
check "kubectl with only --server, --token and --certificate-authority lists pods" \
    env -u KUBECONFIG "$KUBECTL" --kubeconfig=/dev/null --server="$API" --token="$TOKEN" \
    --certificate-authority="$CA" --request-timeout=10s get pods -n "$NS" -o name
# what a pod would mount as ca.crt (root-ca-cert-publisher) is our CA
root_ca_published() {
    k get configmap kube-root-ca.crt -n "$NS" -o 'jsonpath={.data.ca\.crt}' >"$WORK/root-ca.crt" 2>/dev/null &&
        cmp -s "$WORK/root-ca.crt" "$CA"
}
check "configmap kube-root-ca.crt in $NS holds the cluster CA" wait_for "$DEADLINE_MS" root_ca_published

# ---- helm ------------------------------------------------------------------------------

export HELM_CACHE_HOME=$WORK/helm/cache HELM_CONFIG_HOME=$WORK/helm/config HELM_DATA_HOME=$WORK/helm/data
HV=$("$HELM" version --short 2>&1)
echo "  helm $HV"
check "helm version reports a v3 release" test "${HV#v3.}" != "$HV"

CHART=$WORK/chart/smoke
mkdir -p "$CHART/templates"
cat >"$CHART/Chart.yaml" <<'EOF'
apiVersion: v2
name: smoke
version: 0.1.0
EOF
cat >"$CHART/values.yaml" <<'EOF'
greeting: hello
EOF
cat >"$CHART/templates/configmap.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-greeting
data:
  greeting: {{ .Values.greeting | quote }}
EOF
"$HELM" template rel "$CHART" --set greeting=hi >"$WORK/rendered.yaml" 2>&1
check "helm template renders the chart" \
    grep -qx '  name: rel-greeting' "$WORK/rendered.yaml"
check "with the --set value" grep -qx '  greeting: "hi"' "$WORK/rendered.yaml"
check "helm install into the harness cluster" \
    "$HELM" install smoke "$CHART" -n "$NS" --wait --timeout 60s
check "the release's ConfigMap exists" \
    test "$(k get configmap smoke-greeting -n "$NS" -o 'jsonpath={.data.greeting}')" = hello
check "helm uninstall" "$HELM" uninstall smoke -n "$NS" --wait --timeout 60s

# ---- stop --------------------------------------------------------------------------------

PIDS=$(cat "$K8S"/*/pid 2>/dev/null)
t0=$(now_ms)
"$HARNESS" stop k8s "$K8S"
rc=$?
STOPPED=1
check "harness stop k8s ($(($(now_ms) - t0)) ms)" test "$rc" = 0
any_alive() {
    local p
    for p in $PIDS; do
        alive "$p" && return 0
    done
    return 1
}
check "no process of the cluster is left ($(wc -w <<<"$PIDS") pids)" test -n "$PIDS" -a "$(any_alive && echo yes)" != yes
check "harness status k8s: stopped" test "$("$HARNESS" status k8s "$K8S" && echo running)" != running

summary
