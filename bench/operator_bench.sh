#!/usr/bin/env bash
# kaa-operator on the harness control plane (kube-apiserver, controller-manager,
# scheduler, KWOK nodes) with the operator as a process outside the cluster, as
# in e2e/test_k8s_operator.sh. Usage: bench/operator_bench.sh BUILD_DIR
#
# For each count N in BENCH_OPERATOR_CLUSTERS (default "1 200"; about 8
# minutes on a 2-core machine, "1 50" takes about 2), in a fresh
# namespace: `kubectl apply --server-side` of N KaaClusters, then the time
# until every owned object exists, until every pod is Ready (KWOK), and until
# every KaaCluster's status says Ready=True; the operator's RSS
# (/proc/PID/status VmRSS, VmHWM) and the API requests it made per reconcile
# (deltas of kaa_operator_api_requests_total and kaa_operator_reconcile_total
# on its /metrics over the phase). Baseline in the same run, in another fresh
# namespace: `kubectl apply --server-side` of the same objects the operator
# made for one cluster (exported with kubectl get -o json, stripped of
# status, uid, resourceVersion, ownerReferences, managedFields and assigned
# fields, renamed per copy), N copies, timed until kubectl returns (objects
# exist) and until every pod is Ready. Ratio = operator / baseline (below 1
# is faster). A figure not reached within BENCH_OPERATOR_DEADLINE seconds
# (default 300) per phase prints as "-". Prints a table; nothing passes or
# fails on speed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
counts=${BENCH_OPERATOR_CLUSTERS:-1 200}
deadline_s=${BENCH_OPERATOR_DEADLINE:-300}
harness=$root/e2e/harness/harness.sh
case $build in /*) operator=$build/bin/kaa-operator ;; *) operator=$root/$build/bin/kaa-operator ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/operator-bench.XXXXXX") || exit 1
op_pid=
cleanup() {
	if [ -n "$op_pid" ]; then
		kill -TERM "$op_pid" 2>/dev/null || true
		wait "$op_pid" 2>/dev/null || true
	fi
	"$harness" stop etcd "$work/etcd" >/dev/null 2>&1 || true
	[ ! -f "$work/k8s/kind" ] || "$harness" stop k8s "$work/k8s" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -x "$operator" ] || {
	echo "operator_bench: $operator is not built" >&2
	exit 1
}

# KWOK renews the fake nodes' heartbeats; on a loaded 2-core machine a renewal
# can come late, the node lifecycle controller then marks the node NotReady
# and its pods Ready=False, and the harness's KWOK stages only make Pending
# pods Ready, so those pods would stay unready for good: give the heartbeats
# a grace period longer than any phase (the figures are about the operator).
export KAA_KUBE_CONTROLLER_MANAGER_ARGS="--node-monitor-grace-period=15m ${KAA_KUBE_CONTROLLER_MANAGER_ARGS:-}"
k8s_env=$("$harness" start k8s "$work/k8s") || exit 1
etcd_env=$("$harness" start etcd "$work/etcd") || exit 1
set -a
eval "$k8s_env"
eval "$etcd_env"
set +a
export KUBECACHEDIR=$work/kube-cache
kubectl=$KAA_TEST_K8S_BIN/kubectl
k() { "$kubectl" --request-timeout=60s "$@"; }
pki=$KAA_TEST_K8S_DIR/pki

# poll.py: talks to the API server over one keep-alive TLS connection
# (admin certificate). Modes:
#   run NS N OBJS PODS CLUSTERS -- CMD...: runs CMD (the apply), then polls NS
#     until OBJS objects labelled app.kubernetes.io/managed-by=kaa-operator
#     exist, PODS pods are Ready and (CLUSTERS > 0) CLUSTERS KaaClusters have
#     Ready=True; prints JSON with the ms from the start of CMD to each.
#   count NS: prints "OBJS PODS" for what exists in NS now.
cat >"$work/poll.py" <<'PY'
import http.client, json, ssl, subprocess, sys, time
api, ca, crt, key = sys.argv[1:5]
mode, ns = sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(crt, key)
host = api.split("//", 1)[1]
conn = None
def get(path):
    global conn
    for _ in range(3):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(host, context=ctx, timeout=30)
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status == 200:
                return json.loads(body)
        except (OSError, http.client.HTTPException):
            conn = None
    return {"items": []}
SEL = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dkaa-operator"
KINDS = ["/api/v1/namespaces/%s/configmaps", "/api/v1/namespaces/%s/services",
         "/apis/apps/v1/namespaces/%s/deployments",
         "/apis/policy/v1/namespaces/%s/poddisruptionbudgets",
         "/apis/networking.k8s.io/v1/namespaces/%s/ingresses"]
def objs():
    return sum(len(get((p % ns) + "?" + SEL)["items"]) for p in KINDS)
def ready(o):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (o.get("status") or {}).get("conditions") or [])
def pods():
    return sum(1 for p in get("/api/v1/namespaces/%s/pods" % ns)["items"]
               if ready(p) and not p["metadata"].get("deletionTimestamp"))
def clusters():
    return sum(1 for c in get("/apis/kaaproject.org/v1alpha1/namespaces/%s/kaaclusters" % ns)["items"]
               if ready(c))
if mode == "count":
    print(objs(), pods())
    sys.exit(0)
n, want_objs, want_pods, want_cl, limit = (int(x) for x in sys.argv[7:12])
cmd = sys.argv[sys.argv.index("--") + 1:]
t0 = time.monotonic()
ms = lambda: round((time.monotonic() - t0) * 1000)
rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
out = {"n": n, "apply_rc": rc, "apply_ms": ms()}
todo = {"objects_ms": (objs, want_objs), "pods_ms": (pods, want_pods)}
if want_cl:
    todo["status_ms"] = (clusters, want_cl)
while todo and ms() < limit * 1000:
    for name, (f, want) in list(todo.items()):
        if f() >= want:
            out[name] = ms()
            del todo[name]
    time.sleep(0.01)
for name in todo:
    out[name] = None
if todo:  # why: pods by phase and readiness, nodes by readiness
    seen = {}
    for p in get("/api/v1/namespaces/%s/pods" % ns)["items"]:
        k = "%s/ready=%s" % (p["status"].get("phase"), ready(p))
        seen[k] = seen.get(k, 0) + 1
    nodes = ["%s ready=%s taints=%s" % (o["metadata"]["name"], ready(o), len(o["spec"].get("taints") or []))
             for o in get("/api/v1/nodes")["items"]]
    print("not reached: %s; pods %s; nodes %s" % (" ".join(todo), seen, nodes), file=sys.stderr)
print(json.dumps(out))
PY
poll() { python3 "$work/poll.py" "$KAA_TEST_K8S_APISERVER" "$KAA_TEST_K8S_CA" "$pki/admin.crt" "$pki/admin.key" "$@"; }

k apply -f "$root/manifests/crds/" >/dev/null || exit 1
established() {
	[ "$(k get crd kaaclusters.kaaproject.org -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" = True ]
}
for _ in $(seq 600); do
	established && break
	sleep 0.1
done
established || {
	echo "operator_bench: the KaaCluster CRD is not Established" >&2
	exit 1
}
secrets() { # NS
	k create namespace "$1" >/dev/null || return 1
	k -n "$1" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Secret
metadata: {name: kaa-sql}
stringData: {url: "postgresql://kaa:secret@postgres:5432/kaa"}
---
apiVersion: v1
kind: Secret
metadata: {name: kaa-document-store}
stringData: {url: "mongodb://kaa:secret@mongodb:27017/kaa"}
EOF
}
kaaclusters() { # PREFIX N: N KaaClusters PREFIX-0001..
	local i
	for ((i = 1; i <= $2; i++)); do
		cat <<EOF
---
apiVersion: kaaproject.org/v1alpha1
kind: KaaCluster
metadata: {name: $(printf '%s-%04d' "$1" "$i")}
spec:
  image: {repository: kaa/kaa-node, tag: "0.1.0"}
  etcd: {endpoints: ["http://etcd.invalid:2379"]}
  sql: {secretRef: {name: kaa-sql}}
  documentStore: {secretRef: {name: kaa-document-store}}
  control: {replicas: 1, allowSingleReplica: true}
  operations: {replicas: 1}
  bootstrap: {replicas: 1}
EOF
	done
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
murl=http://127.0.0.1:$port
"$operator" --kubeconfig="$KUBECONFIG" --http-port="$port" --etcd-override="$KAA_TEST_ETCD" \
	--log-level=warn >"$work/operator.log" 2>&1 &
op_pid=$!
for _ in $(seq 600); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$murl/readyz")" = 200 ] && break
	kill -0 "$op_pid" 2>/dev/null || break
	sleep 0.05
done
if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$murl/readyz")" != 200 ]; then
	echo "operator_bench: kaa-operator did not become ready" >&2
	tail -20 "$work/operator.log" >&2
	exit 1
fi
# sum of every sample of a metric family on /metrics
msum() { curl -s --max-time 5 "$murl/metrics" | awk -v m="$1" 'index($1, m) == 1 && (substr($1, length(m) + 1, 1) == "{" || $1 == m) {s += $2} END {printf "%d\n", s}'; }
rss() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$op_pid/status"; }

# ---- template: one cluster, its owned objects exported for the baseline ----
secrets bench-tmpl || exit 1
kaaclusters kbtmpl 1 | k -n bench-tmpl apply --server-side -f - >/dev/null || exit 1
tmpl=$(poll run bench-tmpl 1 1 1 1 120 -- true)
if ! python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(d["status_ms"] is None)' "$tmpl"; then
	echo "operator_bench: the template cluster did not become Ready: $tmpl $(poll count bench-tmpl)" >&2
	tail -20 "$work/operator.log" >&2
	exit 1
fi
read -r per_objs per_pods < <(poll count bench-tmpl)
k -n bench-tmpl get configmap,service,deployment,poddisruptionbudget,ingress \
	-l app.kubernetes.io/managed-by=kaa-operator -o json >"$work/owned.json" || exit 1
python3 - "$work/owned.json" "$work/template.json" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
out = []
for o in items:
    m = o["metadata"]
    for f in ("uid", "resourceVersion", "ownerReferences", "managedFields", "creationTimestamp",
              "generation", "namespace"):
        m.pop(f, None)
    m.get("annotations", {}).pop("deployment.kubernetes.io/revision", None)
    o.pop("status", None)
    if o["kind"] == "Service":
        for f in ("clusterIP", "clusterIPs"):
            o["spec"].pop(f, None)
    out.append(o)
json.dump({"apiVersion": "v1", "kind": "List", "items": out}, open(sys.argv[2], "w"))
PY
copies() { # PREFIX N: the template renamed PREFIX-0001..
	python3 - "$work/template.json" "$1" "$2" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
items = []
for i in range(1, int(sys.argv[3]) + 1):
    items += json.loads(text.replace("kbtmpl-0001", "%s-%04d" % (sys.argv[2], i)))["items"]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
PY
}

# kubectl downloads discovery and OpenAPI documents on its first apply of a
# kind and caches them (KUBECACHEDIR): warm that cache for the baseline's
# kinds, as the template's apply did for KaaCluster, so neither side pays it
k create namespace bench-warm >/dev/null || exit 1
copies warm 1 | k -n bench-warm apply --server-side -f - >/dev/null || exit 1

# ---- phases -----------------------------------------------------------------
results=()
for n in $counts; do
	secrets "bench-op-$n" || exit 1
	kaaclusters kc "$n" >"$work/kc-$n.yaml"
	req0=$(msum kaa_operator_api_requests_total)
	rec0=$(msum kaa_operator_reconcile_total)
	op=$(poll run "bench-op-$n" "$n" $((n * per_objs)) $((n * per_pods)) "$n" "$deadline_s" -- \
		"$kubectl" --request-timeout=300s -n "bench-op-$n" apply --server-side -f "$work/kc-$n.yaml")
	req1=$(msum kaa_operator_api_requests_total)
	rec1=$(msum kaa_operator_reconcile_total)
	rss_kb=$(rss VmRSS)
	hwm_kb=$(rss VmHWM)
	k create namespace "bench-base-$n" >/dev/null || exit 1
	copies base "$n" >"$work/base-$n.json"
	base=$(poll run "bench-base-$n" "$n" $((n * per_objs)) $((n * per_pods)) 0 "$deadline_s" -- \
		"$kubectl" --request-timeout=300s -n "bench-base-$n" apply --server-side -f "$work/base-$n.json")
	results+=("$(printf '%s|%s|%s|%s|%s|%s|%s|%s|%s' "$n" "$op" "$base" "$((req1 - req0))" \
		"$((rec1 - rec0))" "$rss_kb" "$hwm_kb" "$per_objs" "$per_pods")")
	echo "N=$n operator: $op  requests=$((req1 - req0)) reconciles=$((rec1 - rec0)) rss_kb=$rss_kb hwm_kb=$hwm_kb" >&2
	echo "N=$n baseline: $base" >&2
done

python3 - "${results[@]}" <<'PY'
import json, sys
def f(v):
    return "-" if v is None else str(v)
def r(a, b):
    return "-" if a is None or b is None or b == 0 else "%.2f" % (a / b)
print("| KaaClusters | figure | kaa-operator | kubectl apply of the objects | ratio |")
print("|---:|---|--:|--:|--:|")
for row in sys.argv[1:]:
    n, op, base, req, rec, rss, hwm, per_objs, per_pods = row.split("|")
    op, base = json.loads(op), json.loads(base)
    n = int(n)
    print("| %d | all %d owned objects exist (ms) | %s | %s | %s |" % (
        n, n * int(per_objs), f(op.get("objects_ms")), f(base.get("apply_ms")),
        r(op.get("objects_ms"), base.get("apply_ms"))))
    print("| %d | all %d pods Ready (ms) | %s | %s | %s |" % (
        n, n * int(per_pods), f(op.get("pods_ms")), f(base.get("pods_ms")),
        r(op.get("pods_ms"), base.get("pods_ms"))))
    st, pd = op.get("status_ms"), op.get("pods_ms")
    print("| %d | status Ready=True (ms; after the pods: %s) | %s | | |" % (
        n, "-" if st is None or pd is None else max(st - pd, 0), f(st)))
    print("| %d | kubectl apply returned (ms) | %s | %s | %s |" % (
        n, f(op.get("apply_ms")), f(base.get("apply_ms")), r(op.get("apply_ms"), base.get("apply_ms"))))
    rq, rc = int(req), int(rec)
    print("| %d | API requests / reconciles (per reconcile) | %d / %d (%s) | | |" % (
        n, rq, rc, "%.1f" % (rq / rc) if rc else "-"))
    print("| %d | operator VmRSS / VmHWM (KiB) | %s / %s | | |" % (n, rss, hwm))
PY
