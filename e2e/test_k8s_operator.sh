#!/usr/bin/env bash
# e2e: kaa-operator against a real control plane (issue #3). Starts its own
# `harness.sh start k8s` cluster (kwok nodes) and its own etcd for the Kaa
# cluster under $TMPDIR, runs kaa-operator out of cluster (admin kubeconfig,
# --etcd-override pointing at that etcd, short autoscaling/finalizer
# settings), and checks what a platform team would: a KaaCluster gets its
# ConfigMap, three Deployments, Services, PDBs and Ingress with owner
# references; pods become Ready on the kwok nodes; the status reports replica
# counts, observedGeneration, Ready=True, devices and the control leader from
# etcd; a configuration change rolls the pods (config-hash annotation); a
# deleted Deployment comes back; `kubectl scale kaacluster` scales operations;
# a missing Secret makes it Degraded (SecretNotFound) with a Warning Event;
# autoscaling scales up from the sessions in etcd and down only after the
# window, draining the emptiest nodes first; the same with real kaa-node
# operations processes on loopback holding kaa-device sessions (the nodes
# honour the drain requests); deleting the KaaCluster removes its etcd keys;
# with etcd stopped the status says EtcdUnreachable and the deletion still
# completes after the bounded retries. Everything it starts is
# stopped at the end (also on failure).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/e2e/lib.sh"
HARNESS=${KAA_HARNESS:-$ROOT/e2e/harness/harness.sh}
DEADLINE_MS=${KAA_K8S_WAIT_MS:-60000}
OPERATOR=${KAA_OPERATOR_BIN:-${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:-$ROOT/build/bin}}/kaa-operator}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/k8s-operator.XXXXXX") || exit 1
K8S=$WORK/k8s
ETCD_DIR=$WORK/etcd
T0=$(now_ms)
SUMMARIZED=0
OP_PID=

# gone or a zombie waiting for us (kill -0 still succeeds on a zombie)
exited() { dead "$1" || grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }

cleanup() {
    local rc=$?
    trap - EXIT
    trap '' INT TERM
    if [ -n "$OP_PID" ] && alive "$OP_PID"; then
        kill -TERM "$OP_PID" 2>/dev/null
        wait_for 10000 exited "$OP_PID" || kill -KILL "$OP_PID" 2>/dev/null
    fi
    cleanup_pids
    if [ -f "$ETCD_DIR/kind" ] || [ -f "$ETCD_DIR/pid" ]; then
        "$HARNESS" stop etcd "$ETCD_DIR" >/dev/null 2>&1 || "$HARNESS" kill etcd "$ETCD_DIR" >/dev/null 2>&1 || true
    fi
    if [ -f "$K8S/kind" ]; then
        "$HARNESS" stop k8s "$K8S" >/dev/null 2>&1 || "$HARNESS" kill k8s "$K8S" >/dev/null 2>&1 || true
    fi
    if [ -n "${KAA_KEEP_TMP:-}" ]; then
        echo "kept $WORK (operator log: $WORK/operator.log)" >&2
    else
        rm -rf "$WORK"
    fi
    if [ "$SUMMARIZED" = 0 ]; then
        fail "the suite ran to its end (it stopped early, status $rc)"
        summary
        exit 1
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$OPERATOR" ]; then
    fail "kaa-operator is built ($OPERATOR)"
    SUMMARIZED=1
    summary
    exit 1
fi

# ---- servers -----------------------------------------------------------------------

echo "starting the k8s harness in $K8S and an etcd in $ETCD_DIR"
if ! out=$("$HARNESS" start k8s "$K8S"); then
    fail "harness start k8s"
    SUMMARIZED=1
    summary
    exit 1
fi
set -a
eval "$out"
set +a
if ! eout=$("$HARNESS" start etcd "$ETCD_DIR"); then
    fail "harness start etcd"
    SUMMARIZED=1
    summary
    exit 1
fi
ETCD=$(sed -n 's/^KAA_TEST_ETCD=//p' <<<"$eout")
pass "k8s and etcd ($ETCD) started ($(($(now_ms) - T0)) ms)"
export KUBECACHEDIR=$WORK/kube-cache
KUBECTL=$KAA_TEST_K8S_BIN/kubectl
k() { "$KUBECTL" --request-timeout=10s "$@"; }
q() { "$@" >/dev/null; }
NS=op-test
kn() { k -n "$NS" "$@"; }

# ---- etcd through its JSON gateway ------------------------------------------------------

etcd_put() { # KEY VALUE
    curl -s --max-time 2 -X POST "$ETCD/v3/kv/put" -d "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\"}" >/dev/null
}
etcd_count() { # PREFIX: number of keys under it
    local end
    end=$(python3 -c 'import sys; p=sys.argv[1].encode(); print(p[:-1].decode()+chr(p[-1]+1))' "$1")
    curl -s --max-time 2 -X POST "$ETCD/v3/kv/range" \
        -d "{\"key\":\"$(b64 "$1")\",\"range_end\":\"$(b64 "$end")\",\"count_only\":true}" |
        python3 -c 'import sys, json; print(json.load(sys.stdin).get("count", 0))'
}
etcd_empty() { [ "$(etcd_count "$1")" = 0 ]; }
node_record() { # ID SESSIONS
    etcd_put "/kaa/$CLUSTER/nodes/$1" \
        "{\"id\":\"$1\",\"services\":[\"operations\"],\"host\":\"10.0.0.1\",\"ports\":{\"operations\":9080},\"sessions\":$2,\"load\":0,\"draining\":false,\"version\":\"0.1.0\"}"
}

# ---- CRD, namespace, Secrets ----------------------------------------------------------

HELM=$KAA_TEST_K8S_BIN/helm
# The chart brings the CRD (its operator pods are KWOK's: this suite runs
# kaa-operator as a process outside the cluster).
check "helm install the chart (CRD included)" \
    q "$HELM" install kaa-chart "$ROOT/charts/kaa-operator" -n kaa-chart --create-namespace --wait --timeout 90s
crd_established() {
    [ "$(k get crd kaaclusters.kaaproject.org -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" = True ]
}
check "the CRD becomes Established" wait_for "$DEADLINE_MS" crd_established
q k create namespace "$NS"
cat >"$WORK/secrets.yaml" <<'EOF'
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
check "the store Secrets are created" q kn apply -f "$WORK/secrets.yaml"

# ---- the operator ----------------------------------------------------------------------

read -r HTTP_PORT < <(free_ports 1)
OP_URL=http://127.0.0.1:$HTTP_PORT
spawn "$OPERATOR" --kubeconfig="$KUBECONFIG" --http-port="$HTTP_PORT" --etcd-override="$ETCD" \
    --workers=2 --resync-period=30s --autoscale-interval=200ms --scale-down-window=2s \
    --finalizer-attempts=3 --log-level=info >"$WORK/operator.log" 2>&1
OP_PID=$SPAWNED
check "kaa-operator becomes ready (/readyz 200)" wait_for "$DEADLINE_MS" http_is 200 "$OP_URL/readyz"
check "its /healthz answers 200" http_is 200 "$OP_URL/healthz"

# ---- the sample --------------------------------------------------------------------------

SNS=kaa-sample
q k create namespace "$SNS"
check "kubectl apply -f manifests/samples/kaacluster.yaml" q k -n "$SNS" apply -f "$ROOT/manifests/samples/kaacluster.yaml"
sample_objects() {
    local o
    for o in deployment/kaa-control deployment/kaa-operations deployment/kaa-bootstrap \
        service/kaa-control service/kaa-operations service/kaa-bootstrap configmap/kaa-config \
        pdb/kaa-control pdb/kaa-operations ingress/kaa; do
        k -n "$SNS" get "$o" -o name >/dev/null 2>&1 || return 1
    done
}
check "the sample's Deployments, Services, ConfigMap, PDBs and Ingress exist" wait_for "$DEADLINE_MS" sample_objects
sget() { k -n "$SNS" get "$@" 2>/dev/null; }
check "with the sample's replicas (control 2, operations 3, bootstrap 2)" test \
    "$(sget deploy kaa-control -o 'jsonpath={.spec.replicas}')/$(sget deploy kaa-operations -o 'jsonpath={.spec.replicas}')/$(sget deploy kaa-bootstrap -o 'jsonpath={.spec.replicas}')" = 2/3/2
check "owned by the KaaCluster (controller reference)" test \
    "$(sget deploy kaa-operations -o 'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller}')" = KaaCluster/true
check "the PDBs carry the spec's minAvailable and maxUnavailable" test \
    "$(sget pdb kaa-control -o 'jsonpath={.spec.minAvailable}')/$(sget pdb kaa-operations -o 'jsonpath={.spec.maxUnavailable}')" = 1/1
check "the Ingress has the spec's host and class" test \
    "$(sget ingress kaa -o 'jsonpath={.spec.rules[0].host}/{.spec.ingressClassName}')" = devices.example.com/nginx
sample_ready() {
    [ "$(sget kaa kaa -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ] &&
        [ "$(sget kaa kaa -o 'jsonpath={.status.observedGeneration}')" = "$(sget kaa kaa -o 'jsonpath={.metadata.generation}')" ]
}
check "the sample reaches Ready=True with observedGeneration = generation" wait_for "$DEADLINE_MS" sample_ready
check "deleting the sample completes" q k -n "$SNS" delete kaa kaa --wait=true --timeout=60s

# ---- a KaaCluster ------------------------------------------------------------------------

NAME=demo
CLUSTER=demo
DEFAULT_ENV='    env: [{name: KAA_LOG_LEVEL, value: info}]'
kaacluster() { # [extra YAML lines for spec.operations, indented 4]
    local extra=${1:-$DEFAULT_ENV}
    cat <<EOF
apiVersion: kaaproject.org/v1alpha1
kind: KaaCluster
metadata:
  name: $NAME
spec:
  image: {repository: kaa/kaa-node, tag: "0.1.0"}
  etcd: {endpoints: ["http://etcd.invalid:2379"]}
  sql: {secretRef: {name: kaa-sql}}
  documentStore: {secretRef: {name: kaa-document-store}}
  control: {replicas: 2, podDisruptionBudget: {minAvailable: 1}}
  bootstrap: {replicas: 1}
  ingress: {enabled: true, host: devices.example.com, tlsSecretName: devices-tls}
  operations:
    replicas: 2
    drainTimeoutSeconds: 20
$extra
EOF
}
apply_kc() { kaacluster "$@" | kn apply -f - >/dev/null; }
check "kubectl apply a KaaCluster" apply_kc

exists() { kn get "$1" "$2" -o name >/dev/null 2>&1; }
all_exist() {
    exists configmap $NAME-config && exists service $NAME-control && exists service $NAME-operations &&
        exists service $NAME-bootstrap && exists deployment $NAME-control &&
        exists deployment $NAME-operations && exists deployment $NAME-bootstrap &&
        exists pdb $NAME-control && exists pdb $NAME-operations && exists ingress $NAME
}
check "ConfigMap, 3 Deployments, 3 Services, PDBs and the Ingress appear" wait_for "$DEADLINE_MS" all_exist
if [ "$E2E_FAILED" != 0 ]; then # everything below builds on these
    echo "---- stopping early; operator log (last 40 lines) ----"
    tail -40 "$WORK/operator.log"
    SUMMARIZED=1
    summary
    exit 1
fi
UID_KC=$(kn get kaa $NAME -o 'jsonpath={.metadata.uid}')
owned() { # KIND NAME: one controller owner reference to the KaaCluster, blockOwnerDeletion
    [ "$(kn get "$1" "$2" -o 'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].uid}/{.metadata.ownerReferences[0].controller}/{.metadata.ownerReferences[0].blockOwnerDeletion}')" \
        = "KaaCluster/$NAME/$UID_KC/true/true" ]
}
owned_all() {
    local o
    for o in configmap/$NAME-config deployment/$NAME-control deployment/$NAME-operations \
        deployment/$NAME-bootstrap service/$NAME-control service/$NAME-operations \
        service/$NAME-bootstrap pdb/$NAME-control ingress/$NAME; do
        owned "${o%%/*}" "${o#*/}" || { echo "    not owned: $o"; return 1; }
    done
}
check "each of them has a controller owner reference to the KaaCluster" owned_all
check "labels app.kubernetes.io/{name,instance,component,managed-by}" \
    test "$(kn get deploy $NAME-operations -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/name} {.metadata.labels.app\.kubernetes\.io/instance} {.metadata.labels.app\.kubernetes\.io/component} {.metadata.labels.app\.kubernetes\.io/managed-by}')" \
    = "kaa $NAME operations kaa-operator"
check "the operations Deployment runs kaa-node --services operations with --cluster and --etcd" \
    test "$(kn get deploy $NAME-operations -o 'jsonpath={.spec.template.spec.containers[0].args}')" \
    = "[\"--services\",\"operations\",\"--config\",\"/etc/kaa/kaa.conf\",\"--cluster\",\"$CLUSTER\",\"--etcd\",\"$ETCD\"]"
check "store URLs come from the Secrets by secretKeyRef (never inline)" \
    test "$(kn get deploy $NAME-control -o 'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="KAA_SQL")].valueFrom.secretKeyRef.name} {.spec.template.spec.containers[0].env[?(@.name=="KAA_NOSQL")].valueFrom.secretKeyRef.name}')" \
    = "kaa-sql kaa-document-store"
check "no Deployment spells a store URL" sh -c "! '$KUBECTL' -n '$NS' get deploy -o json | grep -q 'postgresql://\|mongodb://'"
check "readiness /readyz and liveness /healthz probes" \
    test "$(kn get deploy $NAME-bootstrap -o 'jsonpath={.spec.template.spec.containers[0].readinessProbe.httpGet.path} {.spec.template.spec.containers[0].livenessProbe.httpGet.path}')" = "/readyz /healthz"
check "operations pods get a grace period above the drain timeout (20 s)" \
    test "$(kn get deploy $NAME-operations -o 'jsonpath={.spec.template.spec.terminationGracePeriodSeconds}')" -gt 20
check "the Ingress routes devices.example.com with TLS" \
    test "$(kn get ingress $NAME -o 'jsonpath={.spec.rules[0].host} {.spec.tls[0].secretName}')" = "devices.example.com devices-tls"

pods_ready() { # COMPONENT N: N pods Ready on kwok nodes
    local out
    out=$(kn get pods -l "app.kubernetes.io/instance=$NAME,app.kubernetes.io/component=$1" -o \
        'jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}') || return 1
    [ "$(grep -cE '^kwok-node-[0-9]+ True $' <<<"$out")" = "$2" ]
}
all_pods_ready() { pods_ready control 2 && pods_ready operations 2 && pods_ready bootstrap 1; }
check "control, operations and bootstrap pods become Ready on the kwok nodes" \
    wait_for "$DEADLINE_MS" all_pods_ready

cond() { kn get kaa "$NAME" -o "jsonpath={.status.conditions[?(@.type==\"$1\")].$2}"; }
status_ok() {
    [ "$(cond Ready status)" = True ] &&
        [ "$(kn get kaa $NAME -o 'jsonpath={.status.observedGeneration}')" = "$(kn get kaa $NAME -o 'jsonpath={.metadata.generation}')" ] &&
        [ "$(kn get kaa $NAME -o 'jsonpath={.status.control.readyReplicas} {.status.operations.readyReplicas} {.status.bootstrap.readyReplicas}')" = "2 2 1" ]
}
check "status: readyReplicas 2/2/1, observedGeneration == generation, Ready=True" wait_for "$DEADLINE_MS" status_ok
check "status: Progressing=False and Degraded=False" \
    test "$(cond Progressing status) $(cond Degraded status)" = "False False"
check "status: the scale selector names the operations pods" \
    test "$(kn get kaa $NAME -o 'jsonpath={.status.selector}')" = "app.kubernetes.io/component=operations,app.kubernetes.io/instance=$NAME,app.kubernetes.io/name=kaa"
check "the finalizer kaaproject.org/cleanup was added" \
    test "$(kn get kaa $NAME -o 'jsonpath={.metadata.finalizers}')" = '["kaaproject.org/cleanup"]'
event_seen() { # REASON [OBJECT-NAME]
    kn get events --field-selector "reason=$1${2:+,involvedObject.name=$2}" -o name 2>/dev/null | grep -q .
}
check "a Created Event for the applied objects" wait_for 10000 event_seen Created $NAME

# ---- devices and leader from etcd --------------------------------------------------------

node_record op-a 30
node_record op-b 12
etcd_put "/kaa/$CLUSTER/control/leader" "ctl-0"
etcd_sees() { [ "$(kn get kaa $NAME -o 'jsonpath={.status.connectedDevices} {.status.controlLeader}')" = "42 ctl-0" ]; }
check "status.connectedDevices (42) and controlLeader (ctl-0) come from etcd" wait_for "$DEADLINE_MS" etcd_sees

# ---- configuration change -> rollout ---------------------------------------------------------

HASH0=$(kn get deploy $NAME-operations -o "jsonpath={.spec.template.metadata.annotations.kaaproject\.org/config-hash}")
check "the pod template carries the config-hash annotation" test "${#HASH0}" = 64
PROG_T0=$(cond Progressing lastTransitionTime)
check "change the operations port in the spec" q kn patch kaa $NAME --type merge -p '{"spec":{"services":{"ports":{"operations":9443}}}}'
hash_changed() {
    local h
    h=$(kn get deploy $NAME-operations -o "jsonpath={.spec.template.metadata.annotations.kaaproject\.org/config-hash}")
    [ -n "$h" ] && [ "$h" != "$HASH0" ]
}
check "the ConfigMap and the config-hash annotation change" wait_for "$DEADLINE_MS" hash_changed
check "the ConfigMap holds the new port" sh -c "'$KUBECTL' -n '$NS' get cm $NAME-config -o 'jsonpath={.data.kaa\.conf}' | grep -q 'operations-port = 9443'"
rolled_out() {
    [ "$(kn get deploy $NAME-operations -o 'jsonpath={.status.observedGeneration} {.status.updatedReplicas} {.status.readyReplicas}')" = \
        "$(kn get deploy $NAME-operations -o 'jsonpath={.metadata.generation}') 2 2" ] &&
        [ "$(kn get rs -l app.kubernetes.io/component=operations,app.kubernetes.io/instance=$NAME -o name | wc -l)" -ge 2 ]
}
check "the operations pods roll to a new ReplicaSet" wait_for "$DEADLINE_MS" rolled_out
check "an Updated Event names the rolled Deployment" wait_for 10000 event_seen Updated $NAME
progress_done() { [ "$(cond Progressing status)" = False ] && [ "$(cond Progressing lastTransitionTime)" != "$PROG_T0" ]; }
check "status went Progressing=True during the rollout and back to False (lastTransitionTime moved)" \
    wait_for "$DEADLINE_MS" progress_done
check "extra env in the spec reaches the pod template" \
    apply_kc '    env: [{name: KAA_LOG_LEVEL, value: debug}]'
env_is_debug() {
    [ "$(kn get deploy $NAME-operations -o 'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="KAA_LOG_LEVEL")].value}')" = debug ]
}
check "KAA_LOG_LEVEL=debug in the operations pod template" wait_for "$DEADLINE_MS" env_is_debug
check "Ready=True again with observedGeneration == generation" wait_for "$DEADLINE_MS" status_ok

# ---- self-healing ------------------------------------------------------------------------

DEP_UID=$(kn get deploy $NAME-control -o 'jsonpath={.metadata.uid}')
check "kubectl delete deployment $NAME-control" q kn delete deploy $NAME-control --wait=false
recreated() {
    local u
    u=$(kn get deploy $NAME-control -o 'jsonpath={.metadata.uid}' 2>/dev/null)
    [ -n "$u" ] && [ "$u" != "$DEP_UID" ]
}
check "the operator recreates it" wait_for "$DEADLINE_MS" recreated
check "and its pods become Ready again" wait_for "$DEADLINE_MS" status_ok

# ---- scale subresource -----------------------------------------------------------------------

check "kubectl scale kaacluster $NAME --replicas=4" q kn scale kaacluster $NAME --replicas=4
ops_replicas() { [ "$(kn get deploy $NAME-operations -o 'jsonpath={.spec.replicas}')" = "$1" ]; }
check "the operations Deployment has 4 replicas" wait_for "$DEADLINE_MS" ops_replicas 4
status_ops() { [ "$(kn get kaa $NAME -o 'jsonpath={.status.operations.readyReplicas} {.status.replicas}')" = "$1 $1" ]; }
check "status.operations.readyReplicas and status.replicas reach 4" wait_for "$DEADLINE_MS" status_ops 4

# ---- objects the spec no longer wants ---------------------------------------------------------

check "disable the Ingress and the bootstrap PodDisruptionBudget in the spec" \
    q kn patch kaa $NAME --type merge -p '{"spec":{"ingress":{"enabled":false},"bootstrap":{"podDisruptionBudget":{"enabled":false}}}}'
unwanted_gone() { ! exists ingress $NAME && ! exists pdb $NAME-bootstrap && exists pdb $NAME-control; }
check "the operator deletes the Ingress and that PDB (and keeps the others)" wait_for "$DEADLINE_MS" unwanted_gone
check "a Deleted Event says so" wait_for 10000 event_seen Deleted $NAME

# ---- a missing Secret -----------------------------------------------------------------------

cat >"$WORK/nosecret.yaml" <<'EOF'
apiVersion: kaaproject.org/v1alpha1
kind: KaaCluster
metadata: {name: nosecret}
spec:
  etcd: {endpoints: ["http://etcd.invalid:2379"]}
  sql: {secretRef: {name: absent-sql}}
  documentStore: {secretRef: {name: kaa-document-store}}
  control: {replicas: 2}
EOF
check "apply a KaaCluster naming a Secret that does not exist" q kn apply -f "$WORK/nosecret.yaml"
degraded_secret() {
    [ "$(kn get kaa nosecret -o 'jsonpath={.status.conditions[?(@.type=="Degraded")].status} {.status.conditions[?(@.type=="Degraded")].reason}')" = "True SecretNotFound" ]
}
check "it becomes Degraded=True reason SecretNotFound" wait_for "$DEADLINE_MS" degraded_secret
check "the message names the Secret" sh -c "'$KUBECTL' -n '$NS' get kaa nosecret -o 'jsonpath={.status.conditions[?(@.type==\"Degraded\")].message}' | grep -q absent-sql"
check "Ready=False for it" test "$(kn get kaa nosecret -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = False
check "a Warning Event SecretNotFound" wait_for 10000 event_seen SecretNotFound nosecret
check "the operator is still running" alive "$OP_PID"
check "delete it (its finalizer is released)" q kn delete kaa nosecret --wait=true --timeout=60s

# ---- autoscaling -----------------------------------------------------------------------------

node_record op-a 450
node_record op-b 200
check "enable autoscaling (target 100 sessions per pod, 1..5, window 2 s, drain 20 s)" \
    q kn patch kaa $NAME --type merge -p '{"spec":{"operations":{"autoscaling":{"enabled":true,"minReplicas":1,"maxReplicas":5,"targetSessionsPerPod":100,"stabilizationWindowSeconds":2}}}}'
check "650 sessions: operations scale up to ceil(650/100)=7 bounded by max -> 5" wait_for "$DEADLINE_MS" ops_replicas 5
check "a ScaledUp Event" wait_for 10000 event_seen ScaledUp $NAME
node_record op-a 50
node_record op-b 0
drain_requested() { [ "$(etcd_count "/kaa/$CLUSTER/drain/")" -ge 1 ]; }
check "at 50 sessions the operator first asks nodes to drain (/kaa/$CLUSTER/drain/...)" wait_for "$DEADLINE_MS" drain_requested
drain_has_deadline() { etcd_value "$ETCD" "/kaa/$CLUSTER/drain/$1" | grep -q '"deadline_ms":[0-9]'; }
check "the drain request for the emptiest node op-b carries a deadline" drain_has_deadline op-b
check "while op-a still holds sessions, operations stay at 5" ops_replicas 5
progressing() { [ "$(cond Progressing status)" = True ]; }
check "Progressing=True while waiting for the drain" wait_for 10000 progressing
node_record op-a 600
check "the load comes back (600 sessions): the scale-down is cancelled and the drain requests removed" \
    wait_for "$DEADLINE_MS" etcd_empty "/kaa/$CLUSTER/drain/"
check "a ScaleDownCancelled Event" wait_for 10000 event_seen ScaleDownCancelled $NAME
check "operations still at 5" ops_replicas 5
node_record op-a 50
check "the load drops again: a new drain request after the window" wait_for "$DEADLINE_MS" drain_requested
node_record op-a 0
check "once the nodes are empty, operations scale down to 1" wait_for "$DEADLINE_MS" ops_replicas 1
check "a ScaledDown Event" wait_for 10000 event_seen ScaledDown $NAME

# ---- metrics ---------------------------------------------------------------------------------

METRICS=$(curl -s --max-time 5 "$OP_URL/metrics")
# shellcheck disable=SC2016 # awk program
check "kaa_operator_reconcile_total{result=\"success\"} > 0" \
    awk '$1 == "kaa_operator_reconcile_total{result=\"success\"}" && $2 > 0 {ok=1} END {exit !ok}' <<<"$METRICS"
check "kaa_operator_reconcile_duration_seconds histogram exported" \
    grep -q '^kaa_operator_reconcile_duration_seconds_count ' <<<"$METRICS"
check "kaa_operator_queue_depth exported" grep -q '^kaa_operator_queue_depth ' <<<"$METRICS"
check "kaa_operator_reconcile_errors_total exported" grep -q '^kaa_operator_reconcile_errors_total ' <<<"$METRICS"

# ---- deletion: the finalizer removes the etcd keys --------------------------------------------

check "there are keys under /kaa/$CLUSTER/ before the deletion" test "$(etcd_count "/kaa/$CLUSTER/")" -ge 3
check "kubectl delete kaacluster $NAME completes" q kn delete kaa $NAME --wait=true --timeout=60s
check "every key under /kaa/$CLUSTER/ is gone" etcd_empty "/kaa/$CLUSTER/"
check "a CleanedUp Event" wait_for 10000 event_seen CleanedUp $NAME
gc_done() { ! exists deployment $NAME-operations && ! exists configmap $NAME-config; }
check "the garbage collector removes the owned objects" wait_for "$DEADLINE_MS" gc_done

# ---- autoscaling from real kaa-node operations processes ------------------------------------
# Outside the cluster, on loopback: a control,bootstrap node seeding the demo
# application (--demo) and two operations nodes, all on one SQLite database,
# the operator's etcd and the cluster name of a KaaCluster that autoscales
# (target 10 sessions per pod, 1..4). kaa-device sessions on the real nodes
# make the operator scale up; once the devices stop, it scales down after the
# window, first writing drain requests that the nodes honour (draining=true
# in their registry records).

BINDIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:-$ROOT/build/bin}}
NODE_BIN=$BINDIR/kaa-node
DEVICE_BIN=$BINDIR/kaa-device
NAME=live
CLUSTER=live
LIVE=$WORK/live
LIVE_T0=$(now_ms)
mkdir -p "$LIVE"
read -r L_CP L_BP L_OP L_IP A_CP A_BP A_OP A_IP B_CP B_BP B_OP B_IP < <(free_ports 12)
live_common=(--etcd "$ETCD" --cluster "$CLUSTER" --sql "sqlite:$LIVE/kaa.db"
    --nosql "sqlite:$LIVE/endpoints.db" --appender-dir "$LIVE/logs" --bind 127.0.0.1
    --host 127.0.0.1 --lease-ttl 3)
KAA_ADMIN_USER=admin KAA_ADMIN_PASSWORD=live-password-1 spawn "$NODE_BIN" "${live_common[@]}" \
    --node-id live-ctl --services control,bootstrap --demo --control-port "$L_CP" \
    --bootstrap-port "$L_BP" --operations-port "$L_OP" --internode-port "$L_IP" \
    >"$LIVE/live-ctl.out" 2>"$LIVE/live-ctl.log"
LIVE_PIDS=("$SPAWNED")
demo_token() { sed -n 's/^kaa demo: application token //p' "$LIVE/live-ctl.out"; }
has_token() { [ -n "$(demo_token)" ]; }
check "a kaa-node --services control,bootstrap --demo on cluster $CLUSTER prints its application token" \
    wait_for "$DEADLINE_MS" has_token
TOKEN=$(demo_token)
start_live_ops() { # ID CONTROL-PORT BOOTSTRAP-PORT OPERATIONS-PORT INTERNODE-PORT
    spawn "$NODE_BIN" "${live_common[@]}" --node-id "$1" --services operations --control-port "$2" \
        --bootstrap-port "$3" --operations-port "$4" --internode-port "$5" --drain-timeout 10 \
        >"$LIVE/$1.out" 2>"$LIVE/$1.log"
    LIVE_PIDS+=("$SPAWNED")
}
start_live_ops live-a "$A_CP" "$A_BP" "$A_OP" "$A_IP"
start_live_ops live-b "$B_CP" "$B_BP" "$B_OP" "$B_IP"
cat >"$WORK/live.yaml" <<EOF
apiVersion: kaaproject.org/v1alpha1
kind: KaaCluster
metadata: {name: $NAME}
spec:
  image: {repository: kaa/kaa-node, tag: "0.1.0"}
  etcd: {endpoints: ["http://etcd.invalid:2379"]}
  sql: {secretRef: {name: kaa-sql}}
  documentStore: {secretRef: {name: kaa-document-store}}
  control: {replicas: 2}
  bootstrap: {replicas: 1}
  operations:
    replicas: 1
    drainTimeoutSeconds: 20
    autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 4, targetSessionsPerPod: 10, stabilizationWindowSeconds: 2}
EOF
check "apply KaaCluster $NAME (autoscaling: target 10 sessions per pod, 1..4, window 2 s)" \
    q kn apply -f "$WORK/live.yaml"
# SESSIONS|DRAINING: the operations records under /kaa/$CLUSTER/nodes/ as
# "id=value" words sorted by id
live_records() {
    curl -s --max-time 2 -X POST "$ETCD/v3/kv/range" \
        -d "{\"key\":\"$(b64 "/kaa/$CLUSTER/nodes/")\",\"range_end\":\"$(b64 "/kaa/$CLUSTER/nodes0")\"}" |
        python3 -c 'import sys, json, base64
want = sys.argv[1]
out = []
for kv in json.load(sys.stdin).get("kvs") or []:
    r = json.loads(base64.b64decode(kv["value"]))
    if "operations" in r.get("services", []):
        out.append("%s=%s" % (r["id"], str(r[want]).lower()))
print(" ".join(sorted(out)))' "$1"
}
live_records_are() { [ "$(live_records "$1")" = "$2" ]; }
check "both operations nodes register in etcd with 0 sessions, not draining" \
    wait_for "$DEADLINE_MS" live_records_are draining "live-a=false live-b=false"
bootstrap_lists_two() {
    [ "$(curl -s --max-time 2 "http://127.0.0.1:$L_BP/v1/operations?application=$TOKEN" |
        python3 -c 'import sys, json; print(len(json.load(sys.stdin)["nodes"]))' 2>/dev/null)" = 2 ]
}
check "bootstrap lists both operations nodes for the demo application" \
    wait_for "$DEADLINE_MS" bootstrap_lists_two
check "the operations Deployment starts at 1 replica" wait_for "$DEADLINE_MS" ops_replicas 1
spawn "$DEVICE_BIN" --bootstrap "127.0.0.1:$L_BP" --app-token "$TOKEN" --count 25 \
    --state-dir "$LIVE/devices" --json >"$LIVE/devices.json" 2>"$LIVE/devices.log"
DEV_PID=$SPAWNED
live_sessions() { # total sessions of the operations records
    local w total=0
    for w in $(live_records sessions); do total=$((total + ${w#*=})); done
    echo "$total"
}
live_sessions_are() { [ "$(live_sessions)" = "$1" ]; }
check "25 kaa-device sessions show in the nodes' registry records" wait_for "$DEADLINE_MS" live_sessions_are 25
check "the operator scales operations up to ceil(25/10) = 3" wait_for "$DEADLINE_MS" ops_replicas 3
check "a ScaledUp Event for $NAME" wait_for 10000 event_seen ScaledUp $NAME
check "operations stay at 3 while the devices stay connected" ops_replicas 3
kill -TERM "$DEV_PID"
check "kaa-device exits on SIGTERM" wait_for 15000 exited "$DEV_PID"
wait "$DEV_PID" 2>/dev/null
rc=$?
check "with status 0 (got $rc)" test "$rc" = 0
check "the sessions drop to 0 in the registry records" wait_for "$DEADLINE_MS" live_sessions_are 0
both_drain_keys() {
    etcd_value "$ETCD" "/kaa/$CLUSTER/drain/live-a" | grep -q '"deadline_ms":[0-9]' &&
        etcd_value "$ETCD" "/kaa/$CLUSTER/drain/live-b" | grep -q '"deadline_ms":[0-9]'
}
check "after the window the operator asks both nodes to drain (/kaa/$CLUSTER/drain/live-a, live-b)" \
    wait_for "$DEADLINE_MS" both_drain_keys
check "the real nodes honour them: their records say draining=true" \
    wait_for "$DEADLINE_MS" live_records_are draining "live-a=true live-b=true"
check "and their /readyz answers 503" wait_for 10000 http_is 503 "http://127.0.0.1:$A_OP/readyz"
check "(both)" wait_for 10000 http_is 503 "http://127.0.0.1:$B_OP/readyz"
check "the drained nodes are empty: operations scale down to 1" wait_for "$DEADLINE_MS" ops_replicas 1
check "a ScaledDown Event for $NAME" wait_for 10000 event_seen ScaledDown $NAME
for p in "${LIVE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
live_all_exited() {
    local p
    for p in "${LIVE_PIDS[@]}"; do exited "$p" || return 1; done
}
check "the three kaa-node processes exit on SIGTERM" wait_for 20000 live_all_exited
live_rcs=
for p in "${LIVE_PIDS[@]}"; do
    wait "$p" 2>/dev/null
    live_rcs="$live_rcs$?"
done
check "with status 0 (got $live_rcs)" test "$live_rcs" = 000
check "kubectl delete kaacluster $NAME completes" q kn delete kaa $NAME --wait=true --timeout=60s
check "its etcd keys (drain requests included) are gone" etcd_empty "/kaa/$CLUSTER/"
for f in "$LIVE"/*.log; do
    if grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$f"; then
        fail "no sanitizer report in $f"
        grep -A20 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$f" | head -40
    fi
done
echo "  autoscaling with real nodes: $(($(now_ms) - LIVE_T0)) ms"

# ---- etcd unreachable -----------------------------------------------------------------------

NAME=down
CLUSTER=down
check "apply KaaCluster $NAME" apply_kc
check "it becomes Ready" wait_for "$DEADLINE_MS" status_ok
node_record op-z 1
check "harness stop etcd" q "$HARNESS" stop etcd "$ETCD_DIR"
degraded_etcd() { [ "$(cond Degraded status) $(cond Degraded reason)" = "True EtcdUnreachable" ]; }
check "status: Degraded=True reason EtcdUnreachable (status still written)" wait_for "$DEADLINE_MS" degraded_etcd
check "kubectl delete kaacluster $NAME still completes after the bounded retries" \
    q kn delete kaa $NAME --wait=true --timeout=60s
check "a Warning Event CleanupFailed says so" wait_for 10000 event_seen CleanupFailed $NAME
check "the operator is still running" alive "$OP_PID"

# ---- stop ------------------------------------------------------------------------------------

kill -TERM "$OP_PID"
check "kaa-operator exits on SIGTERM" wait_for 15000 exited "$OP_PID"
wait "$OP_PID" 2>/dev/null
rc=$?
check "with status 0 (got $rc)" test "$rc" = 0
if grep -q 'ERROR: AddressSanitizer\|runtime error:' "$WORK/operator.log"; then
    fail "no sanitizer report in the operator log"
    grep -A20 'ERROR: AddressSanitizer\|runtime error:' "$WORK/operator.log" | head -40
fi
OP_PID=

# ---- in-cluster style: the operator's own ServiceAccount, RBAC and CA file -------------------

check "harness restart etcd" q "$HARNESS" restart etcd "$ETCD_DIR"
check "kubectl apply -f manifests/operator/ (namespace, ServiceAccount, RBAC)" q k apply -f "$ROOT/manifests/operator/"
mkdir -p "$WORK/sa" "$WORK/home"
k -n kaa-system create token kaa-operator --duration=30m >"$WORK/sa/token" 2>/dev/null
cp "$KAA_TEST_K8S_CA" "$WORK/sa/ca.crt"
echo kaa-system >"$WORK/sa/namespace"
check "a token for the kaa-operator ServiceAccount" test -s "$WORK/sa/token"
API_PORT=${KAA_TEST_K8S_APISERVER##*:}
read -r HTTP_PORT2 < <(free_ports 1)
OP_URL=http://127.0.0.1:$HTTP_PORT2
spawn env -u KUBECONFIG HOME="$WORK/home" KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$API_PORT" \
    KAA_SA_DIR="$WORK/sa" "$OPERATOR" --http-port="$HTTP_PORT2" --etcd-override="$ETCD" \
    --autoscale-interval=200ms --finalizer-attempts=3 >"$WORK/operator-incluster.log" 2>&1
OP_PID=$SPAWNED
check "kaa-operator with in-cluster settings becomes ready" wait_for "$DEADLINE_MS" http_is 200 "$OP_URL/readyz"
NAME=incluster
CLUSTER=incluster
check "apply KaaCluster $NAME" apply_kc
check "it becomes Ready with its own RBAC" wait_for "$DEADLINE_MS" status_ok
node_record op-1 5
devices_are() { [ "$(kn get kaa $NAME -o 'jsonpath={.status.connectedDevices}')" = "$1" ]; }
check "status.connectedDevices comes from etcd (5)" wait_for "$DEADLINE_MS" devices_are 5
check "kubectl delete kaacluster $NAME completes" q kn delete kaa $NAME --wait=true --timeout=60s
check "its etcd keys are gone" etcd_empty "/kaa/$CLUSTER/"
no_403() { ! curl -s --max-time 5 "$OP_URL/metrics" | grep -q '^kaa_operator_api_requests_total{.*code="403"}'; }
check "no API request was refused (no 403 in kaa_operator_api_requests_total)" no_403
kill -TERM "$OP_PID"
check "the in-cluster operator exits on SIGTERM" wait_for 15000 exited "$OP_PID"
wait "$OP_PID" 2>/dev/null
check "with status 0" test $? = 0
if grep -q 'ERROR: AddressSanitizer\|runtime error:' "$WORK/operator-incluster.log"; then
    fail "no sanitizer report in the in-cluster operator log"
    grep -A20 'ERROR: AddressSanitizer\|runtime error:' "$WORK/operator-incluster.log" | head -40
fi
OP_PID=

# ---- two replicas with leader election: one acts, the other takes over ----------------------

LEASE=kaa-operator-e2e
start_replica() { # IDENTITY HTTP-PORT
    spawn env POD_NAME="$1" POD_NAMESPACE="$NS" "$OPERATOR" --kubeconfig="$KUBECONFIG" \
        --http-port="$2" --etcd-override="$ETCD" --leader-elect=true --leader-elect-lease-name="$LEASE" \
        --leader-elect-lease-duration=3s --leader-elect-renew-deadline=2s \
        --leader-elect-retry-period=500ms >"$WORK/operator-$1.log" 2>&1
}
read -r PORT_A PORT_B < <(free_ports 2)
start_replica op-a "$PORT_A"
PID_A=$SPAWNED
start_replica op-b "$PORT_B"
PID_B=$SPAWNED
holder() { kn get lease "$LEASE" -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null; }
has_holder() { case "$(holder)" in op-a | op-b) return 0 ;; *) return 1 ;; esac }
check "one of two replicas holds the Lease" wait_for "$DEADLINE_MS" has_holder
LEADER=$(holder)
if [ "$LEADER" = op-a ]; then
    LEADER_PID=$PID_A STANDBY=op-b STANDBY_PID=$PID_B STANDBY_URL=http://127.0.0.1:$PORT_B
else
    LEADER_PID=$PID_B STANDBY=op-a STANDBY_PID=$PID_A STANDBY_URL=http://127.0.0.1:$PORT_A
fi
NAME=ha
CLUSTER=ha
check "apply KaaCluster $NAME" apply_kc
check "the leader ($LEADER) makes it Ready" wait_for "$DEADLINE_MS" status_ok
standby_idle() { [ "$(metric "$STANDBY_URL" 'kaa_operator_reconcile_total{result="success"}')" -eq 0 ] 2>/dev/null ||
    [ -z "$(metric "$STANDBY_URL" 'kaa_operator_reconcile_total{result="success"}')" ]; }
check "the standby ($STANDBY) has reconciled nothing" standby_idle
kill -KILL "$LEADER_PID"
holder_is_standby() { [ "$(holder)" = "$STANDBY" ]; }
check "after the leader is killed the standby takes the Lease within the lease time" wait_for 15000 holder_is_standby
check "kubectl scale kaacluster $NAME --replicas=3" q kn scale kaacluster $NAME --replicas=3
check "the new leader scales operations to 3" wait_for "$DEADLINE_MS" ops_replicas 3
check "kubectl delete kaacluster $NAME completes" q kn delete kaa $NAME --wait=true --timeout=60s
kill -TERM "$STANDBY_PID"
check "the remaining replica exits on SIGTERM" wait_for 15000 exited "$STANDBY_PID"
for f in "$WORK"/operator-op-*.log; do
    if grep -q 'ERROR: AddressSanitizer\|runtime error:' "$f"; then
        fail "no sanitizer report in $f"
        grep -A20 'ERROR: AddressSanitizer\|runtime error:' "$f" | head -40
    fi
done
if [ "$E2E_FAILED" != 0 ]; then
    echo "---- operator log (last 60 lines) ----"
    tail -60 "$WORK/operator.log"
fi
"$HARNESS" stop k8s "$K8S" >/dev/null
check "harness stop k8s" test $? = 0
echo "  total $(($(now_ms) - T0)) ms"
SUMMARIZED=1
summary
