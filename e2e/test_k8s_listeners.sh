#!/usr/bin/env bash
# e2e: spec.operations.listeners on a real control plane (issue 15 §1).
# Starts its own `harness.sh start k8s` cluster and etcd, applies the plain
# manifests' CRD (its CEL rules run in the real API server: a listener
# without {pod} is refused), runs kaa-operator out of cluster, and applies a
# KaaCluster with an ingress listener (one host, path /ops/{pod}, TLS).
# Then, from what the operator wrote and the test reads back from the API
# server only: the operations StatefulSet, the per-pod Services and the
# Ingress. A python script turns that Ingress (its rules, TLS Secret and
# ingress-nginx timeout annotations) into a config for Debian's nginx,
# mapping each backend Service through its selector to the loopback
# kaa-node process standing in for that pod. The kaa-node operations
# processes run with the pod template's KAA_ADVERTISE, $(POD_NAME) and
# friends expanded as the kubelet does (and the template's command, when it
# has one). kaa-device gets only https://localhost:<nginx>/ and the CA:
# bootstrap through nginx, a session on a pod's path, a drain, and the
# Redirect followed through nginx to the other pod.
# Then the spec changes: loadbalancer and nodeport listeners are added (the
# harness has no cloud load balancer and no kube-proxy, so what is checked
# for them is the objects: one Service of that type per pod, the pod-name
# selector, the nodePorts the API server accepted, annotations with {pod}
# expanded, and the per-pod URLs the pods get through the template's sh
# wrapper, run here as the kubelet would); removing the ingress listener
# deletes its Ingress and per-pod Services; removing all listeners turns
# the StatefulSet back into a Deployment and deletes the Services.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/e2e/lib.sh"
HARNESS=${KAA_HARNESS:-$ROOT/e2e/harness/harness.sh}
DEADLINE_MS=${KAA_K8S_WAIT_MS:-60000}
BINDIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:-$ROOT/build/bin}}
OPERATOR=${KAA_OPERATOR_BIN:-$BINDIR/kaa-operator}
NODE_BIN=$BINDIR/kaa-node
DEVICE_BIN=$BINDIR/kaa-device
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/k8s-listeners.XXXXXX") || exit 1
K8S=$WORK/k8s
ETCD_DIR=$WORK/etcd
SUMMARIZED=0
OP_PID=

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
        echo "kept $WORK" >&2
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

stop_here() { # a set-up step failed: what follows would only fail too
    SUMMARIZED=1
    summary
    exit 1
}
 # must "description" command...: check, and stop when it fails
must() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else
        fail "$what"
        stop_here
    fi
}
for b in "$OPERATOR" "$NODE_BIN" "$DEVICE_BIN" "$NGINX"; do
    if [ ! -x "$b" ]; then
        fail "$b is installed/built"
        stop_here
    fi
done

# ---- servers -----------------------------------------------------------------------

if ! out=$("$HARNESS" start k8s "$K8S"); then
    fail "harness start k8s"
    stop_here
fi
set -a
eval "$out"
set +a
if ! eout=$("$HARNESS" start etcd "$ETCD_DIR"); then
    fail "harness start etcd"
    stop_here
fi
ETCD=$(sed -n 's/^KAA_TEST_ETCD=//p' <<<"$eout")
pass "k8s and etcd ($ETCD) started"
export KUBECACHEDIR=$WORK/kube-cache
KUBECTL=$KAA_TEST_K8S_BIN/kubectl
k() { "$KUBECTL" --request-timeout=10s "$@"; }
q() { "$@" >/dev/null; }
NS=listeners
kn() { k -n "$NS" "$@"; }

check "the plain manifests' CRD applies" q k apply -f "$ROOT/manifests/crds/kaaproject.org_kaaclusters.yaml"
crd_established() {
    [ "$(k get crd kaaclusters.kaaproject.org -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" = True ]
}
check "the CRD becomes Established" wait_for "$DEADLINE_MS" crd_established
q k create namespace "$NS"
cat >"$WORK/secrets.yaml" <<'EOF'
apiVersion: v1
kind: Secret
metadata: {name: kaa-sql}
stringData: {url: "sqlite:/var/lib/kaa/kaa.db"}
---
apiVersion: v1
kind: Secret
metadata: {name: kaa-document-store}
stringData: {url: "sqlite:/var/lib/kaa/endpoints.db"}
EOF
check "the store Secrets are created" q kn apply -f "$WORK/secrets.yaml"

# the ingress certificate, as cert-manager would leave it in a tls Secret
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=listeners test CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null &&
    openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
        -CAcreateserial -days 2 -out "$WORK/tls.crt" \
        -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n') 2>/dev/null
check "a CA and a certificate for localhost" test -s "$WORK/tls.crt"
check "the tls Secret edge-tls is created" \
    q kn create secret tls edge-tls --cert "$WORK/tls.crt" --key "$WORK/tls.key"

read -r HTTP_PORT NP L_CP L_BP L_OP L_IP < <(free_ports 6)
spawn "$OPERATOR" --kubeconfig="$KUBECONFIG" --http-port="$HTTP_PORT" --etcd-override="$ETCD" \
    --workers=2 --resync-period=30s --autoscale-interval=200ms --scale-down-window=2s --log-level=info >"$WORK/operator.log" 2>&1
OP_PID=$SPAWNED
check "kaa-operator becomes ready" wait_for "$DEADLINE_MS" http_is 200 "http://127.0.0.1:$HTTP_PORT/readyz"

# ---- the CRD's rules -------------------------------------------------------------------

NAME=edge
kaacluster() { # LISTENERS-YAML (a flow sequence) [REPLICAS [EXTRA-OPERATIONS-LINE]]
    cat <<EOF
apiVersion: kaaproject.org/v1alpha1
kind: KaaCluster
metadata: {name: $NAME}
spec:
  etcd: {endpoints: ["http://etcd.invalid:2379"]}
  sql: {secretRef: {name: kaa-sql}}
  documentStore: {secretRef: {name: kaa-document-store}}
  control: {replicas: 2}
  bootstrap: {replicas: 1}
  operations:
    replicas: ${2:-2}
    drainTimeoutSeconds: 10
    listeners: $1
${3:-}
EOF
}
kaacluster '[{name: web, type: ingress, host: devices.example.com}]' >"$WORK/bad.yaml"
bad_out=$(kn apply -f "$WORK/bad.yaml" 2>&1)
check "the API server refuses an ingress listener whose host and path lack {pod} (CEL)" \
    grep -q 'host or pathPrefix must contain {pod}' <<<"$bad_out"
kaacluster '[{name: np, type: nodeport}]' >"$WORK/bad.yaml"
bad_out=$(kn apply -f "$WORK/bad.yaml" 2>&1)
check "and a nodeport listener without nodePortBase" grep -q 'needs nodePortBase' <<<"$bad_out"
kaacluster '[{name: lb, type: loadbalancer, host: "{pod}.x", tls: {secretName: s}}]' >"$WORK/bad.yaml"
bad_out=$(kn apply -f "$WORK/bad.yaml" 2>&1)
check "and tls on a loadbalancer listener" grep -q 'are for type ingress' <<<"$bad_out"

# ---- an ingress listener ---------------------------------------------------------------

WEB="{name: web, type: ingress, host: localhost, pathPrefix: '/ops/{pod}', port: $NP, tls: {secretName: edge-tls}, ingressClassName: nginx}"
kaacluster "[$WEB]" >"$WORK/edge.yaml"
must "apply KaaCluster $NAME with an ingress listener (localhost, /ops/{pod}, TLS)" \
    q kn apply -f "$WORK/edge.yaml"
ingress_objects() {
    kn get statefulset/$NAME-operations service/$NAME-operations-0 service/$NAME-operations-1 \
        ingress/$NAME-web -o name >/dev/null 2>&1
}
must "the operator writes the StatefulSet, per-pod Services and Ingress $NAME-web" \
    wait_for "$DEADLINE_MS" ingress_objects
check "and no operations Deployment" sh -c "! '$KUBECTL' -n '$NS' get deploy $NAME-operations -o name 2>/dev/null | grep -q ."
kn get statefulset $NAME-operations -o json >"$WORK/sts.json"
kn get ingress $NAME-web -o json >"$WORK/ingress.json"
kn get services -o json >"$WORK/services.json"
kn get secret edge-tls -o json >"$WORK/secret.json"
check "everything is owned by the KaaCluster" python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
objs = [json.load(open(f"{w}/sts.json")), json.load(open(f"{w}/ingress.json"))]
objs += [s for s in json.load(open(f"{w}/services.json"))["items"]
         if s["metadata"]["name"].startswith("edge-operations-")]
assert len(objs) == 4, len(objs)
for o in objs:
    r = o["metadata"]["ownerReferences"][0]
    assert r["kind"] == "KaaCluster" and r["name"] == "edge" and r["controller"], o["metadata"]
PY
check "the per-pod Services select their pod by statefulset.kubernetes.io/pod-name" python3 - "$WORK" <<'PY'
import json, sys
items = {s["metadata"]["name"]: s for s in json.load(open(sys.argv[1] + "/services.json"))["items"]}
for i in (0, 1):
    n = f"edge-operations-{i}"
    assert items[n]["spec"]["selector"] == {"statefulset.kubernetes.io/pod-name": n}, items[n]
PY

# kubelet's $(VAR) expansion of the pod template for one pod: prints the
# environment assignments of the operations container's POD_NAME, POD_IP,
# HOST_IP and KAA_ADVERTISE, then its command (NUL-separated) in $WORK/cmd-POD
kubelet_env() { # STS-JSON POD
    python3 - "$1" "$2" "$WORK/cmd-$2" <<'PY'
import json, re, sys
sts = json.load(open(sys.argv[1]))
pod = sys.argv[2]
c = sts["spec"]["template"]["spec"]["containers"][0]
field = {"metadata.name": pod, "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
env = {}
def expand(s):
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), s)
for e in c["env"]:
    if "valueFrom" in e and "fieldRef" in e["valueFrom"]:
        env[e["name"]] = field[e["valueFrom"]["fieldRef"]["fieldPath"]]
    elif "value" in e:
        env[e["name"]] = expand(e["value"])
for k in ("POD_NAME", "POD_IP", "HOST_IP", "KAA_ADVERTISE"):
    print(f"{k}={env[k]}")
open(sys.argv[3], "w").write("\0".join(expand(a) for a in c.get("command", [])))
PY
}
kubelet_env "$WORK/sts.json" $NAME-operations-0 >"$WORK/env-0"
kubelet_env "$WORK/sts.json" $NAME-operations-1 >"$WORK/env-1"
check "the pod template advertises wss://localhost:$NP/ops/<pod>/ through \$(POD_NAME)" \
    grep -qx "KAA_ADVERTISE=wss://localhost:$NP/ops/$NAME-operations-1/" "$WORK/env-1"

# ---- the pods, on loopback -------------------------------------------------------------

LIVE=$WORK/live
mkdir -p "$LIVE"
common=(--etcd "$ETCD" --cluster "$NAME" --sql "sqlite:$LIVE/kaa.db" --nosql "sqlite:$LIVE/endpoints.db"
    --appender-dir "$LIVE/logs" --bind 127.0.0.1 --host 127.0.0.1 --lease-ttl 3)
KAA_ADMIN_USER=admin KAA_ADMIN_PASSWORD=edge-password-1 spawn "$NODE_BIN" "${common[@]}" \
    --node-id edge-ctl --services control,bootstrap --demo --control-port "$L_CP" \
    --bootstrap-port "$L_BP" --operations-port "$L_OP" --internode-port "$L_IP" \
    >"$LIVE/ctl.out" 2>"$LIVE/ctl.log"
demo_token() { sed -n 's/^kaa demo: application token //p' "$LIVE/ctl.out"; }
has_token() { [ -n "$(demo_token)" ]; }
must "a control,bootstrap kaa-node (--demo) prints its application token" wait_for "$DEADLINE_MS" has_token
TOKEN=$(demo_token)
declare -A OPS_PORT
start_pod() { # POD: a kaa-node operations process with that pod's environment
    local pod=$1 cp bp op ip
    read -r cp bp op ip < <(free_ports 4)
    OPS_PORT[$pod]=$op
    # env -i: only what the pod would have (plus PATH for the sh wrapper)
    spawn env -i PATH="$BINDIR:/usr/bin:/bin" ASAN_OPTIONS="$ASAN_OPTIONS" \
        KAA_NODE_ID="$pod" $(cat "$WORK/env-${pod##*-}") \
        "$NODE_BIN" "${common[@]}" --services operations --control-port "$cp" \
        --bootstrap-port "$bp" --operations-port "$op" --internode-port "$ip" --drain-timeout 10 \
        >"$LIVE/$pod.out" 2>"$LIVE/$pod.log"
    POD_PIDS+=("$SPAWNED")
}
POD_PIDS=()
start_pod $NAME-operations-0
start_pod $NAME-operations-1
ready() { http_is 200 "http://127.0.0.1:${OPS_PORT[$1]}/readyz"; }
must "both operations processes are ready" wait_for "$DEADLINE_MS" ready $NAME-operations-0
check "(the second)" wait_for "$DEADLINE_MS" ready $NAME-operations-1

# ---- nginx from the Ingress object ----------------------------------------------------

mkdir -p "$WORK/nginx-tmp"
# pods: the loopback port of each pod's kaa-node (operations), and the
# bootstrap Service's pods (the control,bootstrap node)
python3 - "$WORK" "$NP" "$NAME-operations-0=${OPS_PORT[$NAME-operations-0]}" \
    "$NAME-operations-1=${OPS_PORT[$NAME-operations-1]}" "bootstrap=$L_BP" >"$WORK/nginx.conf" <<'PY'
import base64, json, sys
w, listen = sys.argv[1], sys.argv[2]
pods = dict(a.split("=") for a in sys.argv[3:])
ing = json.load(open(f"{w}/ingress.json"))
svcs = {s["metadata"]["name"]: s for s in json.load(open(f"{w}/services.json"))["items"]}
ann = ing["metadata"].get("annotations", {})
rt = ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60")
st = ann.get("nginx.ingress.kubernetes.io/proxy-send-timeout", "60")

def upstream(backend):
    """Ingress backend -> Service (read back) -> the loopback process of its pods."""
    svc = svcs[backend["service"]["name"]]
    port = backend["service"]["port"]
    assert any(p["name"] == port.get("name") or p["port"] == port.get("number")
               for p in svc["spec"]["ports"]), (svc["spec"]["ports"], port)
    sel = svc["spec"]["selector"]
    if "statefulset.kubernetes.io/pod-name" in sel:
        return pods[sel["statefulset.kubernetes.io/pod-name"]]
    assert sel.get("app.kubernetes.io/component") == "bootstrap", sel
    return pods["bootstrap"]

tls_hosts = {}
for t in ing["spec"].get("tls", []):
    sec = json.load(open(f"{w}/secret.json"))
    assert sec["metadata"]["name"] == t["secretName"]
    for k in ("tls.crt", "tls.key"):
        open(f"{w}/ingress-{k}", "wb").write(base64.b64decode(sec["data"][k]))
    for h in t["hosts"]:
        tls_hosts[h] = True
servers = []
for r in ing["spec"]["rules"]:
    locs = []
    for p in r["http"]["paths"]:
        assert p["pathType"] == "Prefix", p
        path = p["path"] if p["path"].endswith("/") else p["path"] + "/"
        # Ingress paths are not rewritten: the upstream sees the full path
        locs.append(f"""
        location {path} {{
            proxy_pass http://127.0.0.1:{upstream(p["backend"])};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout {rt}s;
            proxy_send_timeout {st}s;
        }}""")
    ssl = f"""ssl;
        ssl_certificate {w}/ingress-tls.crt;
        ssl_certificate_key {w}/ingress-tls.key;""" if r["host"] in tls_hosts else ";"
    servers.append(f"""
    server {{
        listen 127.0.0.1:{listen} {ssl}
        server_name {r["host"]};{"".join(locs)}
    }}""")
print(f"""user root;
worker_processes 1;
daemon off;
pid {w}/nginx.pid;
error_log {w}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {w}/nginx-access.log;
    client_body_temp_path {w}/nginx-tmp/body;
    proxy_temp_path {w}/nginx-tmp/proxy;
    fastcgi_temp_path {w}/nginx-tmp/fastcgi;
    uwsgi_temp_path {w}/nginx-tmp/uwsgi;
    scgi_temp_path {w}/nginx-tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}{"".join(servers)}
}}""")
PY
check "an nginx config generated from the Ingress the operator wrote" grep -q "location /ops/$NAME-operations-1/" "$WORK/nginx.conf"
check "with ingress-nginx's WebSocket timeouts from its annotations" grep -q "proxy_read_timeout 3600s" "$WORK/nginx.conf"
check "and /v1/ to the bootstrap Service" grep -q "location /v1/" "$WORK/nginx.conf"
must "nginx accepts it" q "$NGINX" -t -p "$WORK" -c "$WORK/nginx.conf"
spawn "$NGINX" -p "$WORK" -c "$WORK/nginx.conf" >"$WORK/nginx.out" 2>&1
port_open() { python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; }
must "nginx listens with TLS" wait_for 10000 port_open "$NP"

PROXY=https://localhost:$NP
boot_answer() { curl -s --max-time 5 --cacert "$WORK/ca.pem" "$PROXY/v1/operations?application=$TOKEN"; }
both_urls() { boot_answer | python3 -c '
import json, sys
n = sorted(json.load(sys.stdin)["nodes"], key=lambda x: x["id"])
p = sys.argv[1]
assert [x["url"] for x in n] == [p + "/ops/edge-operations-0/", p + "/ops/edge-operations-1/"], n' \
    "wss://localhost:$NP" 2>/dev/null; }
must "bootstrap through nginx answers both pods' advertised URLs" wait_for 30000 both_urls

# ---- a device through nginx only, through a drain --------------------------------------

spawn "$DEVICE_BIN" --bootstrap "$PROXY/" --ca "$WORK/ca.pem" --app-token "$TOKEN" \
    --state-dir "$LIVE/dev" --count 1 --duration 120 --json >"$LIVE/dev.json" 2>"$LIVE/dev.err"
DEV_PID=$SPAWNED
sessions() { metric "http://127.0.0.1:${OPS_PORT[$1]}" kaa_ops_sessions; }
on_one() { [ "$(sessions $NAME-operations-0)$(sessions $NAME-operations-1)" = 10 ] ||
    [ "$(sessions $NAME-operations-0)$(sessions $NAME-operations-1)" = 01 ]; }
must "the device holds one session" wait_for 30000 on_one
first=$NAME-operations-0 other=$NAME-operations-1
if [ "$(sessions $NAME-operations-1)" = 1 ]; then first=$NAME-operations-1 other=$NAME-operations-0; fi
etcd_put() {
    curl -s --max-time 2 -X POST "$ETCD/v3/kv/put" -d "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\"}" >/dev/null
}
etcd_put "/kaa/$NAME/drain/$first" "{\"deadline_ms\":$(($(date +%s%3N) + 10000))}"
moved() { [ "$(sessions "$other")" = 1 ]; }
check "drained: the device moved to $other" wait_for 30000 moved
# nginx logs a WebSocket request when it ends
check "its first session went through nginx on $first's path" wait_for 10000 \
    grep -q "GET /ops/$first/ HTTP/1.1\" 101 " "$WORK/nginx-access.log"
check "its bootstrap request went through nginx" \
    grep -q "GET /v1/operations?application=$TOKEN HTTP/1.1\" 200 .* \"-\"$" "$WORK/nginx-access.log"
kill -TERM "$DEV_PID" 2>/dev/null
check "kaa-device exits on SIGTERM" wait_for 15000 exited "$DEV_PID"
check "its second session went through nginx on $other's path (the Redirect named its advertised URL)" \
    wait_for 10000 grep -q "GET /ops/$other/ HTTP/1.1\" 101 " "$WORK/nginx-access.log"
check "with no error and at least one reconnect" python3 -c '
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert s["errors"] == 0 and s["reconnects"] >= 1, s' "$LIVE/dev.json"

# ---- loadbalancer and nodeport listeners -------------------------------------------------

LB="{name: lb, type: loadbalancer, host: '{pod}.lb.example.com', port: 443, annotations: {external-dns.alpha.kubernetes.io/hostname: '{pod}.lb.example.com'}}"
NPL="{name: np, type: nodeport, nodePortBase: 31400, advertisedHosts: [{pod: 0, host: node0.example.com}]}"
kaacluster "[$WEB, $LB, $NPL]" 3 >"$WORK/edge.yaml"
must "add a loadbalancer and a nodeport listener, 3 pods" q kn apply -f "$WORK/edge.yaml"
lb_np_objects() {
    kn get service/$NAME-operations-2-lb service/$NAME-operations-2-np service/$NAME-operations-2 -o name >/dev/null 2>&1
}
check "the operator writes their per-pod Services" wait_for "$DEADLINE_MS" lb_np_objects
kn get services -o json >"$WORK/services.json"
check "one LoadBalancer and one NodePort Service per pod, by pod name, nodePort base+ordinal" python3 - "$WORK" <<'PY'
import json, sys
items = {s["metadata"]["name"]: s for s in json.load(open(sys.argv[1] + "/services.json"))["items"]}
for i in range(3):
    pod = f"edge-operations-{i}"
    lb, np = items[f"{pod}-lb"], items[f"{pod}-np"]
    assert lb["spec"]["type"] == "LoadBalancer" and np["spec"]["type"] == "NodePort"
    for s in (lb, np):
        assert s["spec"]["selector"] == {"statefulset.kubernetes.io/pod-name": pod}, s["spec"]
        assert s["metadata"]["ownerReferences"][0]["kind"] == "KaaCluster"
    assert lb["spec"]["ports"][0]["port"] == 443
    assert np["spec"]["ports"][0]["nodePort"] == 31400 + i, np["spec"]["ports"]
    assert lb["metadata"]["annotations"]["external-dns.alpha.kubernetes.io/hostname"] == \
        f"{pod}.lb.example.com"
PY
sts_has_wrapper() {
    kn get statefulset $NAME-operations -o json >"$WORK/sts.json" &&
        python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0]
sys.exit(0 if c.get("command", [None])[0] == "/bin/sh" else 1)' "$WORK/sts.json"
}
check "the pod template gets the per-pod wrapper (the NodePorts differ per pod)" wait_for "$DEADLINE_MS" sts_has_wrapper
# run the template's command for two pods as the kubelet would: sh -c
# SCRIPT kaa-node ARGS, with a stand-in kaa-node that prints its URLs
mkdir -p "$WORK/fakebin"
printf '#!/bin/sh\necho "$KAA_ADVERTISE"\n' >"$WORK/fakebin/kaa-node"
chmod +x "$WORK/fakebin/kaa-node"
pod_urls() { # POD: what that pod's kaa-node gets as KAA_ADVERTISE
    local i=${1##*-} cmd=()
    kubelet_env "$WORK/sts.json" "$1" >"$WORK/env-$i"
    mapfile -d '' cmd <"$WORK/cmd-$1"
    env -i PATH="$WORK/fakebin:/usr/bin:/bin" $(cat "$WORK/env-$i") "${cmd[@]}" --services operations
}
want0="wss://localhost:$NP/ops/$NAME-operations-0/,ws://$NAME-operations-0.lb.example.com:443/,ws://node0.example.com:31400/"
want2="wss://localhost:$NP/ops/$NAME-operations-2/,ws://$NAME-operations-2.lb.example.com:443/,ws://127.0.0.1:31402/"
got0=$(pod_urls $NAME-operations-0)
got2=$(pod_urls $NAME-operations-2)
check "pod 0 advertises ingress, load balancer and its advertisedHosts override ($got0)" test "$got0" = "$want0"
check "pod 2 advertises its NodePort 31402 on its node's IP ($got2)" test "$got2" = "$want2"

# ---- autoscaling a StatefulSet: the top ordinals are drained ----------------------------
# A StatefulSet removes its highest ordinals, so those are the pods the
# autoscaler must drain, even when another pod is emptier. The loopback
# pods stop; registry records stand in for three pods: pod 0 empty, 1 and
# 2 with 5 sessions each (10 sessions, target 10: one pod is enough).
for p in "${POD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
pods_exited() {
    local p
    for p in "${POD_PIDS[@]}"; do exited "$p" || return 1; done
}
check "the loopback pods exit on SIGTERM" wait_for 20000 pods_exited
node_record() { # ID SESSIONS
    etcd_put "/kaa/$NAME/nodes/$1" \
        "{\"id\":\"$1\",\"services\":[\"operations\"],\"host\":\"10.0.0.1\",\"ports\":{\"operations\":9080},\"sessions\":$2,\"load\":0,\"draining\":false,\"version\":\"0.1.0\"}"
}
records_only_fake() { [ "$(etcd_value "$ETCD" "/kaa/$NAME/nodes/$NAME-operations-0" | grep -c '10.0.0.1')" = 1 ]; }
drain_key() { etcd_value "$ETCD" "/kaa/$NAME/drain/$1" | grep -q '"deadline_ms":[0-9]'; }
# the device phase's drain request goes; only the autoscaler's may follow
curl -s --max-time 2 -X POST "$ETCD/v3/kv/deleterange" \
    -d "{\"key\":\"$(b64 "/kaa/$NAME/drain/")\",\"range_end\":\"$(b64 "/kaa/$NAME/drain0")\"}" >/dev/null
no_drains() { ! drain_key $NAME-operations-0 && ! drain_key $NAME-operations-1; }
node_record $NAME-operations-0 0
node_record $NAME-operations-1 5
node_record $NAME-operations-2 5
check "three registry records (0, 5, 5 sessions)" records_only_fake
check "no drain requests before autoscaling" no_drains
kaacluster "[$WEB, $LB, $NPL]" 3 \
    "    autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 3, targetSessionsPerPod: 10, stabilizationWindowSeconds: 1}" \
    >"$WORK/edge.yaml"
check "enable autoscaling (target 10 sessions per pod, 1..3)" q kn apply -f "$WORK/edge.yaml"
top_two_drained() { drain_key $NAME-operations-2 && drain_key $NAME-operations-1; }
check "the autoscaler drains pods 2 and 1 (the StatefulSet's top ordinals)" wait_for "$DEADLINE_MS" top_two_drained
not() { ! "$@"; }
check "not pod 0, although it is the emptiest" not drain_key $NAME-operations-0
sts_replicas() { [ "$(kn get statefulset $NAME-operations -o 'jsonpath={.spec.replicas}')" = "$1" ]; }
check "after the drain deadline the StatefulSet is scaled to 1" wait_for 40000 sts_replicas 1

# ---- removing listeners -------------------------------------------------------------------

kaacluster "[$LB]" 2 >"$WORK/edge.yaml"
check "remove the ingress and nodeport listeners, 2 pods" q kn apply -f "$WORK/edge.yaml"
gone() { ! kn get "$@" -o name 2>/dev/null | grep -q .; }
web_gone() {
    gone ingress/$NAME-web && gone service/$NAME-operations-0 && gone service/$NAME-operations-1 &&
        gone service/$NAME-operations-0-np && gone service/$NAME-operations-2-lb
}
check "the Ingress, the per-pod ClusterIP and NodePort Services and pod 2's Services are deleted" \
    wait_for "$DEADLINE_MS" web_gone
check "the LoadBalancer Services of pods 0 and 1 stay" \
    q kn get service/$NAME-operations-0-lb service/$NAME-operations-1-lb
kaacluster "[]" 2 >"$WORK/edge.yaml"
check "remove all listeners" q kn apply -f "$WORK/edge.yaml"
back_to_deploy() {
    gone statefulset/$NAME-operations && gone service/$NAME-operations-0-lb &&
        kn get deploy/$NAME-operations -o name >/dev/null 2>&1
}
check "operations is a Deployment again; no StatefulSet, no listener Services" wait_for "$DEADLINE_MS" back_to_deploy
check "the Deployment's pods get no KAA_ADVERTISE" sh -c "! '$KUBECTL' -n '$NS' get deploy $NAME-operations -o json | grep -q KAA_ADVERTISE"

for f in "$LIVE"/*.log "$LIVE"/*.err "$WORK/operator.log"; do
    if grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$f"; then
        fail "no sanitizer report in $f"
        grep -A20 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$f" | head -40
    fi
done
SUMMARIZED=1
summary
