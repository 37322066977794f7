#!/usr/bin/env bash
# e2e: the operator's Kubernetes client and the kaa-operator binary against
# a real control plane (issue #3). Starts its own k8s harness under $TMPDIR
# (like test_k8s_harness.sh), then:
#   - runs tests/k8s/test_kube_client (requests, apply, TLS verification,
#     informers incl. a re-list after an API server restart, Lease election,
#     Events) from the sanitizer build;
#   - runs kaa-operator: bad flags exit 2; two replicas with
#     --leader-elect=true, exactly one holds the Lease; kill -9 of the leader
#     and the standby takes over within lease duration + retry period;
#     /healthz, /readyz, /metrics; SIGTERM exits 0 within 5 s and releases
#     the Lease; in-cluster style (KUBERNETES_SERVICE_HOST/PORT + a
#     service-account directory with a real token, CA and namespace, no
#     kubeconfig) with the RBAC of manifests/operator.
# Stops the cluster at the end (also on failure).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/e2e/lib.sh"
HARNESS=${KAA_HARNESS:-$ROOT/e2e/harness/harness.sh}
BIN_DIR=${KAA_ASAN_BIN_DIR:-$ROOT/build/asan/bin}
OPERATOR=$BIN_DIR/kaa-operator
TEST_BIN=$BIN_DIR/../tests/k8s/test_kube_client

WORK=$(mktemp -d "${TMPDIR:-/tmp}/k8s-client.XXXXXX") || exit 1
K8S=$WORK/k8s
STOPPED=0

cleanup() {
    trap - EXIT
    trap '' INT TERM
    cleanup_pids
    if [ "$STOPPED" = 0 ] && [ -f "$K8S/kind" ]; then
        "$HARNESS" stop k8s "$K8S" >/dev/null 2>&1 || "$HARNESS" kill k8s "$K8S" || true
    fi
    if [ -n "${KAA_KEEP_TMP:-}" ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for f in "$OPERATOR" "$TEST_BIN"; do
    if [ ! -x "$f" ]; then
        fail "$f is not built (make SAN=1 BUILD=build/asan test-bins)"
        summary
        exit 1
    fi
done

# ---- bad flags (no cluster needed) ---------------------------------------------

bad_flag() { # exit status 2 and the usage on stderr
    local rc
    "$OPERATOR" "$@" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    [ "$rc" = 2 ] && grep -q '^usage: kaa-operator' "$WORK/err" && [ ! -s "$WORK/out" ]
}
check "kaa-operator --no-such-flag: usage, exit 2" bad_flag --no-such-flag
check "kaa-operator --leader-elect-lease-duration=15: exit 2 (no unit)" bad_flag --leader-elect-lease-duration=15
check "kaa-operator --leader-elect=maybe: exit 2" bad_flag --leader-elect=maybe
check "kaa-operator --http-port=70000: exit 2" bad_flag --http-port=70000
check "kaa-operator --watch-namespaces=Bad_NS: exit 2" bad_flag --watch-namespaces=Bad_NS
check "kaa-operator renew deadline >= lease duration: exit 2" \
    bad_flag --leader-elect=true --leader-elect-lease-duration=5s --leader-elect-renew-deadline=5s
check "kaa-operator positional argument: exit 2" bad_flag run
help_ok() { "$OPERATOR" --help | grep -q -- --leader-elect-retry-period; }
check "kaa-operator --help: exit 0, usage on stdout" help_ok

# ---- start -------------------------------------------------------------------

echo "starting the k8s harness in $K8S"
if ! out=$("$HARNESS" start k8s "$K8S"); then
    fail "harness start k8s"
    summary
    exit 1
fi
pass "harness start k8s"
set -a
eval "$out"
set +a
KUBECTL=$KAA_TEST_K8S_BIN/kubectl
API=$KAA_TEST_K8S_APISERVER
k() { "$KUBECTL" --request-timeout=10s "$@"; }

# ---- the client library ------------------------------------------------------------

echo "  running $TEST_BIN"
KAA_TEST_KUBECONFIG=$KUBECONFIG KAA_TEST_K8S_DIR=$K8S KAA_HARNESS=$HARNESS \
    "$TEST_BIN" >"$WORK/test_kube_client.log" 2>&1
rc=$?
grep -E '^\s+(Test:|tests|asserts)|FAIL|ERROR: AddressSanitizer|runtime error' "$WORK/test_kube_client.log" | sed 's/^/    /'
check "test_kube_client passes against the API server" test "$rc" = 0
# the API server was restarted by the test: wait until it answers again
api_ready() { k get --raw /readyz >/dev/null 2>&1; }
check "the API server answers after the test" wait_for 60000 api_ready

# ---- kaa-operator with leader election ---------------------------------------------

check "apply the CRD and manifests/operator (namespace, service account, RBAC)" \
    k apply -f "$ROOT/manifests/crds/" -f "$ROOT/manifests/operator/00-namespace.yaml" \
    -f "$ROOT/manifests/operator/01-serviceaccount.yaml" -f "$ROOT/manifests/operator/02-rbac.yaml"
crd_established() {
    [ "$(k get crd kaaclusters.kaaproject.org -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}')" = True ]
}
check "the CRD is established" wait_for 30000 crd_established

NS=op-e2e
k create namespace "$NS" >/dev/null
read -r PORT_A PORT_B PORT_C <<<"$(free_ports 3)"
LEASE=kaa-operator-e2e
# lease 4s, renew deadline 3s, retry 500ms: takeover after kill -9 within 4.5 s
LE_ARGS=(--leader-elect=true "--leader-elect-lease-name=$LEASE" --leader-elect-lease-duration=4s
    --leader-elect-renew-deadline=3s --leader-elect-retry-period=500ms --log-level=info)

start_op() { # NAME PORT
    POD_NAME=$1 POD_NAMESPACE=$NS spawn "$OPERATOR" --kubeconfig "$KUBECONFIG" \
        --http-port="$2" "${LE_ARGS[@]}" >"$WORK/$1.log" 2>&1
}
start_op op-a "$PORT_A"
PID_A=$SPAWNED
start_op op-b "$PORT_B"
PID_B=$SPAWNED

holder() { k get lease "$LEASE" -n "$NS" -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null; }
held() { local h; h=$(holder) && [ -n "$h" ]; }
check "one of the two operators takes the Lease" wait_for 20000 held
H=$(holder)
echo "    holder: $H"
check "the holder is op-a or op-b" test "$H" = op-a -o "$H" = op-b
leader_metric() { metric "http://127.0.0.1:$1" kaa_operator_leader; }
one_leader() {
    local a b
    a=$(leader_metric "$PORT_A")
    b=$(leader_metric "$PORT_B")
    { [ "$a" = 1 ] && [ "$b" = 0 ]; } || { [ "$a" = 0 ] && [ "$b" = 1 ]; }
}
check "exactly one operator reports kaa_operator_leader 1" wait_for 10000 one_leader
both_ready() { http_is 200 "http://127.0.0.1:$PORT_A/readyz" && http_is 200 "http://127.0.0.1:$PORT_B/readyz"; }
both_healthy() { http_is 200 "http://127.0.0.1:$PORT_A/healthz" && http_is 200 "http://127.0.0.1:$PORT_B/healthz"; }
check "/healthz answers 200 on both" both_healthy
check "/readyz answers 200 on the leader (controller synced) and the standby (client works)" \
    wait_for 30000 both_ready
LEADER_PORT=$([ "$H" = op-a ] && echo "$PORT_A" || echo "$PORT_B")
counts_puts() { metric "http://127.0.0.1:$LEADER_PORT" 'kaa_operator_api_requests_total{verb="PUT",code="200"}' | grep -q '^[1-9]'; }
check "/metrics counts API requests by verb and code (the leader's renewals: PUT 200)" \
    wait_for 5000 counts_puts
check "an unknown path answers 404" http_is 404 "http://127.0.0.1:$PORT_A/nothing"

# stays with one holder over several renewals
stable=1
for _ in $(seq 1 10); do
    [ "$(holder)" = "$H" ] || stable=0
    one_leader || stable=0
    sleep 0.2
done
check "the Lease stays with $H over several renewals" test "$stable" = 1

if [ "$H" = op-a ]; then
    LEADER_PID=$PID_A OTHER=op-b OTHER_PID=$PID_B OTHER_PORT=$PORT_B
else
    LEADER_PID=$PID_B OTHER=op-a OTHER_PID=$PID_A OTHER_PORT=$PORT_A
fi
t0=$(now_ms)
kill -KILL "$LEADER_PID"
other_holds() { [ "$(holder)" = "$OTHER" ]; }
check "after kill -9 of $H, $OTHER takes the Lease" wait_for 10000 other_holds
took=$(($(now_ms) - t0))
echo "    takeover after ${took} ms"
check "within lease duration + retry period (+1 s of polling slack): ${took} ms <= 5500" test "$took" -le 5500
other_leads() { [ "$(leader_metric "$OTHER_PORT")" = 1 ]; }
check "$OTHER reports kaa_operator_leader 1" wait_for 5000 other_leads
check "$OTHER becomes ready as the leader" wait_for 30000 http_is 200 "http://127.0.0.1:$OTHER_PORT/readyz"
logged_start() { grep -q leader_elected "$WORK/$OTHER.log" && grep -q controller_started "$WORK/$OTHER.log"; }
check "$OTHER logged leadership and a started controller" logged_start

t0=$(now_ms)
kill -TERM "$OTHER_PID"
wait "$OTHER_PID"
rc=$?
took=$(($(now_ms) - t0))
check "SIGTERM: $OTHER exits 0 ($rc) within 5 s (${took} ms)" test "$rc" = 0 -a "$took" -lt 5000
check "and released the Lease (holder empty)" test -z "$(holder)"
if grep -qE 'AddressSanitizer|runtime error' "$WORK"/op-*.log; then
    fail "sanitizer reports in the operator logs"
    grep -hE -A5 'AddressSanitizer|runtime error' "$WORK"/op-*.log | head -30
fi

# ---- in-cluster style: service-account token, CA and namespace, no kubeconfig ---------

SA_DIR=$WORK/sa
mkdir -p "$SA_DIR"
k create token kaa-operator -n kaa-system --duration=10m >"$SA_DIR/token"
cp "$KAA_TEST_K8S_CA" "$SA_DIR/ca.crt"
printf kaa-system >"$SA_DIR/namespace"
check "a service-account token for kaa-system:kaa-operator" test "$(tr -cd . <"$SA_DIR/token")" = ..
HOSTPORT=${API#https://}
env -u KUBECONFIG HOME="$WORK" KUBERNETES_SERVICE_HOST="${HOSTPORT%:*}" KUBERNETES_SERVICE_PORT="${HOSTPORT##*:}" \
    KAA_SA_DIR="$SA_DIR" POD_NAME=op-incluster \
    "$OPERATOR" --http-port="$PORT_C" --leader-elect=true --leader-elect-lease-duration=4s \
    --leader-elect-renew-deadline=3s --leader-elect-retry-period=500ms >"$WORK/op-incluster.log" 2>&1 &
PID_C=$!
E2E_PIDS+=("$PID_C")
incluster_holds() {
    [ "$(k get lease kaa-operator -n kaa-system -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null)" = op-incluster ]
}
check "in-cluster: holds Lease kaa-system/kaa-operator (namespace from the SA dir, RBAC of manifests/operator)" \
    wait_for 20000 incluster_holds
check "in-cluster: /readyz 200 (controller synced with the chart's RBAC)" \
    wait_for 30000 http_is 200 "http://127.0.0.1:$PORT_C/readyz"
no_auth_errors() { ! curl -s "http://127.0.0.1:$PORT_C/metrics" | grep -qE '^kaa_operator_api_requests_total\{[^}]*code="40[13]"'; }
check "in-cluster: no 401/403 from the API server" no_auth_errors
kill -TERM "$PID_C"
wait "$PID_C"
check "in-cluster: SIGTERM exits 0" test $? = 0
if grep -qE 'AddressSanitizer|runtime error' "$WORK/op-incluster.log"; then
    fail "sanitizer reports in the in-cluster operator log"
fi

# ---- stop ----------------------------------------------------------------------------

"$HARNESS" stop k8s "$K8S" >/dev/null
rc=$?
STOPPED=1
check "harness stop k8s" test "$rc" = 0
summary
