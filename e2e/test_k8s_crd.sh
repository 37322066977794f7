#!/usr/bin/env bash
# e2e: the KaaCluster CRD and the operator packaging (issue #3), on a real
# control plane: starts its own `harness.sh start k8s` cluster under $TMPDIR
# and stops it at the end (also on failure).
#
# Checks: manifests/crds applies, is Established and structural, every schema
# field has a description and `kubectl explain` shows them; the sample (with
# its Secrets) applies and the API server fills the defaults; invalid specs are
# refused with the CEL messages; an inline store URL is refused (strict field
# validation, kubectl's default) or pruned (no field validation) and never
# stored; status only through the status subresource; the scale subresource
# scales operations; printer columns and the short name; manifests/operator
# applies, its pods pass the "restricted" Pod Security admission, and its RBAC
# allows what the operator needs and nothing more; the chart lints clean,
# renders, its output applies (--dry-run=server), it installs with helm, and
# its crds/ copy equals manifests/crds.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/e2e/lib.sh"
HARNESS=${KAA_HARNESS:-$ROOT/e2e/harness/harness.sh}
DEADLINE_MS=${KAA_K8S_WAIT_MS:-60000}

CRD_FILE=$ROOT/manifests/crds/kaaproject.org_kaaclusters.yaml
CHART=$ROOT/charts/kaa-operator
SAMPLE=$ROOT/manifests/samples/kaacluster.yaml

WORK=$(mktemp -d "${TMPDIR:-/tmp}/k8s-crd.XXXXXX") || exit 1
K8S=$WORK/k8s
T0=$(now_ms)
STOPPED=0
SUMMARIZED=0

cleanup() {
    local rc=$?
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
    if [ "$SUMMARIZED" = 0 ]; then # stopped early (an error of the script itself)
        fail "the suite ran to its end (it stopped early, status $rc)"
        summary
        exit 1
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- files (no cluster needed) ------------------------------------------------------

check "the chart's crds/ copy is identical to manifests/crds" \
    cmp -s "$CRD_FILE" "$CHART/crds/kaaproject.org_kaaclusters.yaml"

# every property of the schema has a description (metadata excepted: the API
# server documents ObjectMeta itself); prints the paths that lack one
undescribed() {
    python3 - "$CRD_FILE" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
schema = docs[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
bad = []
def walk(node, path):
    for name, sub in (node.get("properties") or {}).items():
        p = f"{path}.{name}"
        if name == "metadata" and path == "":
            continue
        if not sub.get("description"):
            bad.append(p)
        walk(sub, p)
    if isinstance(node.get("items"), dict):
        walk(node["items"], path + "[]")
    if isinstance(node.get("additionalProperties"), dict):
        walk(node["additionalProperties"], path + "{}")
walk(schema, "")
print(" ".join(bad))
PY
}
MISSING=$(undescribed 2>&1)
check "every field of the KaaCluster schema has a description${MISSING:+ (missing: $MISSING)}" test -z "$MISSING"

# the sample's secretRefs name Secrets (and keys) that the sample itself creates
sample_refs_ok() {
    python3 - "$SAMPLE" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
secrets = {d["metadata"]["name"]: {**d.get("stringData", {}), **d.get("data", {})}
           for d in docs if d["kind"] == "Secret"}
kc = [d for d in docs if d["kind"] == "KaaCluster"]
ok = len(kc) == 1
for store in ("sql", "documentStore"):
    ref = kc[0]["spec"][store]["secretRef"]
    ok = ok and ref.get("key", "url") in secrets.get(ref["name"], {})
sys.exit(0 if ok else 1)
PY
}
check "the sample's sql and documentStore secretRefs point at Secrets and keys in the sample" sample_refs_ok

# ---- start -------------------------------------------------------------------------

echo "starting the k8s harness in $K8S"
t0=$(now_ms)
if ! out=$("$HARNESS" start k8s "$K8S"); then
    fail "harness start k8s"
    summary
    exit 1
fi
pass "harness start k8s ($(($(now_ms) - t0)) ms)"
set -a
eval "$out"
set +a
export KUBECACHEDIR=$WORK/kube-cache
export HELM_CACHE_HOME=$WORK/helm/cache HELM_CONFIG_HOME=$WORK/helm/config HELM_DATA_HOME=$WORK/helm/data
KUBECTL=$KAA_TEST_K8S_BIN/kubectl
HELM=$KAA_TEST_K8S_BIN/helm
k() { "$KUBECTL" --request-timeout=10s "$@"; }
q() { "$@" >/dev/null; } # a command whose stdout is noise (errors still show)
NS=crd-test
k create namespace "$NS" >/dev/null
kn() { k -n "$NS" "$@"; }

# ---- the CRD -----------------------------------------------------------------------

check "kubectl apply -f manifests/crds/" q k apply -f "$ROOT/manifests/crds/"
crd_cond() { k get crd kaaclusters.kaaproject.org -o "jsonpath={.status.conditions[?(@.type==\"$1\")].status}"; }
crd_established() { [ "$(crd_cond Established)" = True ]; }
check "the CRD becomes Established" wait_for "$DEADLINE_MS" crd_established
check "its names are accepted" test "$(crd_cond NamesAccepted)" = True
check "its schema is structural (no NonStructuralSchema condition)" test -z "$(crd_cond NonStructuralSchema)"
check "group kaaproject.org, v1alpha1 served and stored, namespaced, short name kaa" \
    test "$(k get crd kaaclusters.kaaproject.org -o 'jsonpath={.spec.group} {.spec.versions[0].name} {.spec.versions[0].served} {.spec.versions[0].storage} {.spec.scope} {.spec.names.shortNames}')" \
    = 'kaaproject.org v1alpha1 true true Namespaced ["kaa"]'

explain_has() { # PATH TEXT: kubectl explain PATH mentions TEXT (discovery may lag the CRD)
    k explain "$1" 2>/dev/null | tr -s ' \n' '  ' | grep -qF "$2"
}
check "kubectl explain kaacluster.spec describes the components" \
    wait_for "$DEADLINE_MS" explain_has kaacluster.spec 'The operations service: device WebSocket sessions'
check "kubectl explain kaacluster.spec says connection strings come from Secrets" \
    explain_has kaacluster.spec 'read from a Secret in the KaaCluster'"'"'s namespace (never inline)'
check "kubectl explain kaacluster.spec.operations.autoscaling describes targetSessionsPerPod" \
    explain_has kaacluster.spec.operations.autoscaling 'Device sessions per operations pod the autoscaler aims for'
check "kubectl explain shows defaults (services.ports.operations: 9080)" \
    explain_has kaacluster.spec.services.ports.operations 'Default: 9080.'
check "kubectl explain kaacluster.status.conditions describes Ready, Progressing, Degraded" \
    explain_has kaacluster.status.conditions 'Ready (all components available), Progressing'

# ---- the sample and defaults -------------------------------------------------------

check "kubectl apply -f manifests/samples/kaacluster.yaml" q kn apply -f "$SAMPLE"
kn get kaacluster kaa -o json >"$WORK/kaa.json" 2>&1
jq_spec() { python3 -c 'import json,sys
o = json.load(open(sys.argv[1]))
for p in sys.argv[2].split("."):
    o = o[int(p)] if isinstance(o, list) else o.get(p) if isinstance(o, dict) else None
print(json.dumps(o))' "$WORK/kaa.json" "$1" 2>/dev/null; }
check "default filled: spec.services type ClusterIP, ports 8080/8081/9080" \
    test "$(jq_spec spec.services.type) $(jq_spec spec.services.ports.control) $(jq_spec spec.services.ports.bootstrap) $(jq_spec spec.services.ports.operations)" \
    = '"ClusterIP" 8080 8081 9080'
check "default filled: spec.documentStore.secretRef.key = url" test "$(jq_spec spec.documentStore.secretRef.key)" = '"url"'
check "default filled: spec.operations.autoscaling.targetSessionsPerPod = 10000" \
    test "$(jq_spec spec.operations.autoscaling.targetSessionsPerPod)" = 10000
check "default filled: spec.image.pullPolicy = IfNotPresent" test "$(jq_spec spec.image.pullPolicy)" = '"IfNotPresent"'
check "default filled: spec.control.allowSingleReplica = false" test "$(jq_spec spec.control.allowSingleReplica)" = false
check "default filled: spec.bootstrap.podDisruptionBudget.enabled = true" \
    test "$(jq_spec spec.bootstrap.podDisruptionBudget.enabled)" = true
check "the sample's values are kept (operations.replicas 3, ingress host)" \
    test "$(jq_spec spec.operations.replicas) $(jq_spec spec.ingress.host)" = '3 "devices.example.com"'

# a minimal KaaCluster named NAME with extra spec lines
minimal() { # NAME [SPEC-LINES]
    cat <<EOF
apiVersion: kaaproject.org/v1alpha1
kind: KaaCluster
metadata:
  name: $1
spec:
  etcd: {endpoints: ["http://etcd:2379"]}
  sql: {secretRef: {name: kaa-sql}}
  documentStore: {secretRef: {name: kaa-document-store}}
${2:-}
EOF
}
accepted() { minimal "$@" | k -n "$NS" apply -f - >/dev/null; } # NAME [SPEC-LINES]
check "a minimal KaaCluster is accepted" accepted mini
check "and gets control.replicas 2, operations.replicas 2, bootstrap.replicas 1 by default" \
    test "$(kn get kaa mini -o 'jsonpath={.spec.control.replicas} {.spec.operations.replicas} {.spec.bootstrap.replicas}')" = '2 2 1'

# ---- refused specs ------------------------------------------------------------------

# refused TEXT NAME SPEC-LINES: kubectl apply fails and says TEXT
refused() {
    local text=$1 name=$2 lines=$3 out
    if out=$(minimal "$name" "$lines" | k -n "$NS" apply -f - 2>&1); then
        echo "    accepted: $out"
        return 1
    fi
    grep -qF -- "$text" <<<"$out" || {
        echo "    refused, but said: $out"
        return 1
    }
}
check "control.replicas 1 without allowSingleReplica is refused with the CEL message" \
    refused 'control.replicas must be at least 2 (a leader and a standby); set control.allowSingleReplica: true to run fewer' \
    bad1 '  control: {replicas: 1}'
check "control.replicas 1 with allowSingleReplica: true is accepted" \
    accepted single '  control: {replicas: 1, allowSingleReplica: true}'
check "autoscaling minReplicas 5 > maxReplicas 3 is refused with the CEL message" \
    refused 'operations.autoscaling.minReplicas must not be greater than maxReplicas' \
    bad2 '  operations: {autoscaling: {enabled: true, minReplicas: 5, maxReplicas: 3}}'
check "autoscaling minReplicas 20 above the default maxReplicas (10) is refused" \
    refused 'operations.autoscaling.minReplicas must not be greater than maxReplicas' \
    bad3 '  operations: {autoscaling: {minReplicas: 20}}'
for c in control operations bootstrap; do
    check "$c.podDisruptionBudget with minAvailable and maxUnavailable is refused with the CEL message" \
        refused "$c.podDisruptionBudget: set minAvailable or maxUnavailable, not both" \
        bad4 "  $c: {podDisruptionBudget: {minAvailable: 1, maxUnavailable: \"25%\"}}"
done
check "a podDisruptionBudget with only maxUnavailable: 25% is accepted" \
    accepted pdb '  operations: {podDisruptionBudget: {maxUnavailable: "25%"}}'
check "ingress enabled without a host is refused with the CEL message" \
    refused 'ingress.host is required when ingress.enabled is true' bad5 '  ingress: {enabled: true}'
no_endpoints() {
    local out
    out=$(minimal bad6 | sed 's/endpoints: \["http:\/\/etcd:2379"\]/endpoints: []/' | k -n "$NS" apply -f - 2>&1) && return 1
    grep -qF 'spec.etcd.endpoints: Invalid value: 0: spec.etcd.endpoints in body should have at least 1 items' <<<"$out" ||
        { echo "    said: $out"; return 1; }
}
check "etcd.endpoints [] is refused: at least 1 item" no_endpoints
check "services.type outside ClusterIP/NodePort/LoadBalancer is refused" \
    refused 'Unsupported value: "ExternalName"' bad7 '  services: {type: ExternalName}'
# an inline connection string: kubectl's default strict field validation refuses it ...
inline_sql() {
    minimal "$1" | sed 's|sql: {secretRef: {name: kaa-sql}}|sql: {url: "postgresql://kaa:secret@db/kaa", secretRef: {name: kaa-sql}}|'
}
inline_refused() {
    local out
    out=$(inline_sql bad8 | k -n "$NS" apply -f - 2>&1) && { echo "    accepted: $out"; return 1; }
    grep -qF 'unknown field "spec.sql.url"' <<<"$out" || { echo "    said: $out"; return 1; }
}
check "an inline spec.sql.url is refused (strict field validation: unknown field)" inline_refused
# ... and without field validation the API server prunes it: it is never stored
inline_pruned() { inline_sql pruned | k -n "$NS" apply --validate=false -f - >/dev/null; }
check "without field validation the inline url is accepted but pruned" inline_pruned
check "and the stored object has no spec.sql.url (only the secretRef)" \
    test "$(kn get kaa pruned -o 'jsonpath={.spec.sql}')" = '{"secretRef":{"key":"url","name":"kaa-sql"}}'
rename() {
    local out
    out=$(kn patch kaa "$1" --type=merge -p "{\"spec\":{\"clusterName\":\"$2\"}}" 2>&1) && { echo "    accepted: $out"; return 1; }
    grep -qF 'clusterName is immutable' <<<"$out" || { echo "    said: $out"; return 1; }
}
check "clusterName cannot be set after creation" rename mini other
check "a clusterName given at creation is accepted" accepted named '  clusterName: prod-eu'
check "and cannot be changed" rename named prod-us
check "none of the refused KaaClusters exists" \
    test -z "$(kn get kaa -o name | grep -E '/bad[0-9]$')"

# ---- status subresource, scale subresource, printer columns -----------------------

STATUS='{"status":{"observedGeneration":1,"replicas":3,"selector":"app.kubernetes.io/instance=kaa,app.kubernetes.io/component=operations",
 "control":{"replicas":2,"readyReplicas":2,"updatedReplicas":2},
 "operations":{"replicas":3,"readyReplicas":3,"updatedReplicas":3},
 "bootstrap":{"replicas":2,"readyReplicas":1,"updatedReplicas":2},
 "connectedDevices":1234,"controlLeader":"kaa-control-0",
 "conditions":[{"type":"Ready","status":"True","reason":"AllReady","message":"all components available","observedGeneration":1,"lastTransitionTime":"2026-01-01T00:00:00Z"},
  {"type":"Progressing","status":"False","reason":"RolloutComplete","message":"","observedGeneration":1,"lastTransitionTime":"2026-01-01T00:00:00Z"},
  {"type":"Degraded","status":"False","reason":"AsExpected","message":"","observedGeneration":1,"lastTransitionTime":"2026-01-01T00:00:00Z"}]}}'
kn patch kaa kaa --type=merge -p '{"status":{"connectedDevices":99}}' >/dev/null 2>&1
check "a status change through the main resource is ignored (status subresource)" \
    test -z "$(kn get kaa kaa -o 'jsonpath={.status.connectedDevices}')"
check "status written through the status subresource (as the operator does)" \
    q kn patch kaa kaa --subresource=status --type=merge -p "$STATUS"
status_refused() { # TEXT CONDITIONS-JSON: a status write the API server refuses, saying TEXT
    local out
    out=$(kn patch kaa kaa --subresource=status --type=merge -p "{\"status\":{\"conditions\":$2}}" 2>&1) &&
        { echo "    accepted: $out"; return 1; }
    grep -qF -- "$1" <<<"$out" || { echo "    said: $out"; return 1; }
}
T='"lastTransitionTime":"2026-01-01T00:00:00Z","message":""'
check "status with two conditions of the same type is refused (list map keyed by type)" \
    status_refused 'Duplicate value' "[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"A\",$T},{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"B\",$T}]"
check "a condition without a reason is refused" \
    status_refused 'status.conditions[0].reason: Required value' "[{\"type\":\"Ready\",\"status\":\"True\",$T}]"
check "a condition status other than True/False/Unknown is refused" \
    status_refused 'Unsupported value: "Yes"' "[{\"type\":\"Ready\",\"status\":\"Yes\",\"reason\":\"A\",$T}]"

GEN=$(kn get kaa kaa -o 'jsonpath={.metadata.generation}')
check "kubectl scale kaacluster/kaa --replicas=5" q kn scale kaacluster/kaa --replicas=5
check "scaled: spec.operations.replicas is 5" test "$(kn get kaa kaa -o 'jsonpath={.spec.operations.replicas}')" = 5
check "and metadata.generation went up" test "$(kn get kaa kaa -o 'jsonpath={.metadata.generation}')" -gt "$GEN"
check "control and bootstrap replicas are unchanged" \
    test "$(kn get kaa kaa -o 'jsonpath={.spec.control.replicas} {.spec.bootstrap.replicas}')" = '2 2'
kn get --raw "/apis/kaaproject.org/v1alpha1/namespaces/$NS/kaaclusters/kaa/scale" >"$WORK/scale.json" 2>&1
scale_field() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["kind"], s["spec"]["replicas"], s["status"]["replicas"], s["status"].get("selector",""))' "$WORK/scale.json" 2>/dev/null; }
check "the scale subresource reports spec 5, status 3 (status.operations.replicas) and the selector" \
    test "$(scale_field)" = 'Scale 5 3 app.kubernetes.io/instance=kaa,app.kubernetes.io/component=operations'
check "scaling to -1 is refused" sh -c "! '$KUBECTL' -n $NS scale kaacluster/kaa --replicas=-1 >/dev/null 2>&1"

k -n "$NS" get kaa >"$WORK/get.txt" 2>&1
sed 's/^/    /' "$WORK/get.txt"
check "kubectl get kaa (short name) lists the clusters" grep -q '^kaa ' "$WORK/get.txt"
check "printer columns: NAME READY CONTROL OPERATIONS BOOTSTRAP DEVICES AGE" \
    test "$(head -1 "$WORK/get.txt" | tr -s ' ')" = 'NAME READY CONTROL OPERATIONS BOOTSTRAP DEVICES AGE'
check "printer values for kaa: True 2 3 1 1234" \
    test "$(awk '$1 == "kaa" {print $2, $3, $4, $5, $6}' "$WORK/get.txt")" = 'True 2 3 1 1234'
check "kubectl get kaa -o wide adds the control leader" \
    sh -c "'$KUBECTL' -n $NS get kaa kaa -o wide | grep -q 'LEADER' && '$KUBECTL' -n $NS get kaa kaa -o wide | grep -q ' kaa-control-0 '"
check "kubectl get kaaclusters and kaacluster.kaaproject.org work too" \
    sh -c "'$KUBECTL' -n $NS get kaaclusters kaa -o name && '$KUBECTL' -n $NS get kaacluster.kaaproject.org kaa -o name" >/dev/null

# ---- manifests/operator ----------------------------------------------------------------

check "kubectl apply -f manifests/operator/" q k apply -f "$ROOT/manifests/operator/"
check "the operator Deployment rolls out (pods admitted by the restricted Pod Security level)" \
    q k -n kaa-system rollout status deployment/kaa-operator --timeout=60s
check "the kaa-system namespace enforces the restricted Pod Security Standard" \
    test "$(k get namespace kaa-system -o 'jsonpath={.metadata.labels.pod-security\.kubernetes\.io/enforce}')" = restricted
check "the Deployment runs kaa/kaa-operator non-root with probes on /readyz and /healthz port 8080" \
    test "$(k -n kaa-system get deploy kaa-operator -o 'jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.securityContext.runAsNonRoot} {.spec.template.spec.containers[0].readinessProbe.httpGet.path} {.spec.template.spec.containers[0].livenessProbe.httpGet.path} {.spec.template.spec.containers[0].ports[0].containerPort}')" \
    = 'kaa/kaa-operator:0.1.0 true /readyz /healthz 8080'
check "with leader election arguments (15s/10s/2s)" \
    sh -c "'$KUBECTL' -n kaa-system get deploy kaa-operator -o 'jsonpath={.spec.template.spec.containers[0].args}' |
        grep -q -- '--leader-elect=true.*--leader-elect-lease-duration=15s.*--leader-elect-renew-deadline=10s.*--leader-elect-retry-period=2s'"
check "the metrics Service selects the operator pods on port 8080" \
    test "$(k -n kaa-system get svc kaa-operator-metrics -o 'jsonpath={.spec.ports[0].port} {.spec.selector.app\.kubernetes\.io/name}')" = '8080 kaa-operator'
metrics_endpoints() { [ "$(k -n kaa-system get endpointslices -l kubernetes.io/service-name=kaa-operator-metrics -o 'jsonpath={.items[*].endpoints[*].addresses[0]}' | wc -w)" = 2 ]; }
check "and has both operator pods as endpoints" wait_for "$DEADLINE_MS" metrics_endpoints
check "kubectl apply --dry-run=server -f manifests/operator/ again (idempotent)" \
    q k apply --dry-run=server -f "$ROOT/manifests/operator/"

SA=system:serviceaccount:kaa-system:kaa-operator
can() { [ "$(k auth can-i --as="$SA" "$@" 2>/dev/null)" = yes ]; }
cannot() { [ "$(k auth can-i --as="$SA" "$@" 2>/dev/null)" = no ]; }
check "RBAC: the operator may watch kaaclusters in any namespace" can watch kaaclusters.kaaproject.org -A
check "RBAC: may patch kaaclusters/status" can patch kaaclusters.kaaproject.org --subresource=status -n "$NS"
check "RBAC: may update kaaclusters/finalizers" can update kaaclusters.kaaproject.org --subresource=finalizers -n "$NS"
for what in "patch deployments.apps" "create services" "delete configmaps" "patch poddisruptionbudgets.policy" \
    "patch ingresses.networking.k8s.io" "get secrets" "watch secrets" "create events.events.k8s.io" "patch events.events.k8s.io" \
    "patch pods"; do
    # shellcheck disable=SC2086 # verb and resource
    check "RBAC: may $what in $NS" can $what -n "$NS"
done
check "RBAC: may update its Lease kaa-system/kaa-operator" can update leases.coordination.k8s.io/kaa-operator -n kaa-system
for what in "create secrets" "update secrets" "delete secrets" "create pods" "delete kaaclusters.kaaproject.org" \
    "create kaaclusters.kaaproject.org" "update leases.coordination.k8s.io/other" "create leases.coordination.k8s.io" \
    "create clusterroles.rbac.authorization.k8s.io" "create events"; do
    # shellcheck disable=SC2086
    check "RBAC: may not $what in $NS" cannot $what -n "$NS"
done
check "RBAC: may not update another Lease in kaa-system" cannot update leases.coordination.k8s.io/other -n kaa-system

# ---- the Helm chart ----------------------------------------------------------------------

lint_clean() { # helm lint --strict ARGS: exit 0, and no INFO/WARNING/ERROR line at all
    local out
    if out=$("$HELM" lint --strict "$CHART" "$@" 2>&1) && grep -q '1 chart(s) linted, 0 chart(s) failed' <<<"$out" &&
        ! grep -qE '\[(INFO|WARNING|ERROR)\]' <<<"$out"; then
        return 0
    fi
    printf '    %s\n' "${out//$'\n'/$'\n'    }"
    return 1
}
check "helm lint --strict is clean" lint_clean
check "helm lint --strict is clean with watchNamespaces set and leader election off" \
    lint_clean --set 'watchNamespaces={a,b}' --set leaderElection.enabled=false
check "helm template renders the chart" \
    sh -c "'$HELM' template kaa '$CHART' -n kaa-system --include-crds >'$WORK/rendered.yaml'"
kinds() { grep '^kind:' "$1" | sort | tr '\n' ' '; }
check "the rendered chart has the CRD, ServiceAccount, RBAC, Deployment, metrics Service and test Pod" \
    test "$(kinds "$WORK/rendered.yaml")" = 'kind: ClusterRole kind: ClusterRoleBinding kind: CustomResourceDefinition kind: Deployment kind: Pod kind: Role kind: RoleBinding kind: Service kind: ServiceAccount '
check "the test Pod is a helm test hook" grep -qx '    helm.sh/hook: test' "$WORK/rendered.yaml"
check "helm template output applies (kubectl apply --dry-run=server)" \
    q k apply --dry-run=server -f "$WORK/rendered.yaml"
"$HELM" template kaa "$CHART" -n kaa-system --set 'watchNamespaces={crd-test,default}' \
    --set leaderElection.leaseDuration=30s >"$WORK/rendered-ns.yaml" 2>&1
check "with watchNamespaces: a Role per namespace, no ClusterRole, --watch-namespaces=crd-test,default" \
    sh -c "test \"\$(grep -c '^kind: Role\$' '$WORK/rendered-ns.yaml')\" = 3 && ! grep -q '^kind: ClusterRole' '$WORK/rendered-ns.yaml' &&
        grep -q -- '- --watch-namespaces=crd-test,default' '$WORK/rendered-ns.yaml' && grep -q -- '- --leader-elect-lease-duration=30s' '$WORK/rendered-ns.yaml'"
check "and that output applies too (--dry-run=server)" q k apply --dry-run=server -f "$WORK/rendered-ns.yaml"
restricted_ns() {
    k create namespace "$1" >/dev/null &&
        k label namespace "$1" pod-security.kubernetes.io/enforce=restricted >/dev/null
}
check "namespace kaa-helm enforcing the restricted Pod Security Standard" restricted_ns kaa-helm
check "helm install into it (the CRD already there): the operator pods are admitted and become Ready" \
    q "$HELM" install kaa-helm "$CHART" -n kaa-helm --wait --timeout 60s
check "the release's operator Deployment has 2 ready replicas" \
    test "$(k -n kaa-helm get deploy kaa-helm-kaa-operator -o 'jsonpath={.status.readyReplicas}')" = 2
check "helm uninstall" q "$HELM" uninstall kaa-helm -n kaa-helm --wait --timeout 60s
check "helm uninstall leaves the CRD and the KaaClusters" \
    test "$(kn get kaa kaa -o name 2>/dev/null)" = kaacluster.kaaproject.org/kaa

# ---- stop --------------------------------------------------------------------------------

"$HARNESS" stop k8s "$K8S" >/dev/null
rc=$?
STOPPED=1
check "harness stop k8s" test "$rc" = 0
echo "  total $(($(now_ms) - T0)) ms"
SUMMARIZED=1
summary
