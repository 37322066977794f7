#!/usr/bin/env bash
# Devices through an ingress (issue 15 §1, §3). A real nginx (Debian's) on
# loopback terminates TLS and routes by path, as one Ingress host does, and
# speaks TLS again to the nodes (TLS on every hop: the bootstrap port serves
# HTTPS with --https-services, the operations ports wss with --tls-cert,
# both verified by nginx against the cluster's internal CA):
# /bootstrap/ to the bootstrap service, /ops/<node>/ to that operations
# node (WebSocket upgrade). Each operations node advertises its URL through
# the proxy (--advertise). kaa-device is given only the proxy's https
# bootstrap URL and the CA: it registers, gets its configuration and
# uploads through the proxy; its node is drained and the Redirect names the
# other node's URL through the proxy, which the device follows without
# losing a record. A device with another CA does not get in.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/cluster_lib.sh"

BIN_DIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
CL_NODE=$BIN_DIR/kaa-node
DEVICE=$BIN_DIR/kaa-device
work=$(mktemp -d "${TMPDIR:-/tmp}/test_ingress.XXXXXX")
trap 'cleanup_pids; cl_finish; [ -n "${KAA_E2E_KEEP:-}" ] || rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
JSON='Content-Type: application/json'
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for v in KAA_TEST_ETCD KAA_TEST_PG KAA_TEST_MONGO; do
	if [ -z "${!v:-}" ]; then
		fail "$v must be set (e2e/run-tests.sh sets it)"
		summary
		exit 1
	fi
done
if [ ! -x "$NGINX" ]; then
	fail "nginx is not installed (packaging/debian-packages.txt lists it for tests)"
	summary
	exit 1
fi
cl_init "$work" || {
	fail "cannot create the test database"
	summary
	exit 1
}
read -r NP <<<"$(free_ports 1)"
PROXY=https://127.0.0.1:$NP

echo "== set-up: CAs, a control+bootstrap node, two operations nodes behind nginx"
mkcert() { # mkcert NAME: a CA NAME-ca.pem and a server certificate for 127.0.0.1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$1 test CA" -keyout "$work/$1-ca.key" -out "$work/$1-ca.pem" 2>/dev/null &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
			-keyout "$work/$1-server.key" -out "$work/$1-server.csr" 2>/dev/null &&
		openssl x509 -req -in "$work/$1-server.csr" -CA "$work/$1-ca.pem" \
			-CAkey "$work/$1-ca.key" -CAcreateserial -days 2 -out "$work/$1-server.pem" \
			-extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n') 2>/dev/null
}
check "test CAs and the certificates of the proxy and of the nodes" bash -c \
	"$(declare -f mkcert); work='$work'; mkcert proxy && mkcert other && mkcert internal"
NODE_TLS=(--tls-cert "$work/internal-server.pem" --tls-key "$work/internal-server.key")
cl_start ctl control,bootstrap --rebalance-interval 0 --https-services bootstrap "${NODE_TLS[@]}"
cl_start ops-a operations --drain-timeout 10 --advertise "wss://127.0.0.1:$NP/ops/ops-a/" \
	"${NODE_TLS[@]}"
cl_start ops-b operations --drain-timeout 10 --advertise "wss://127.0.0.1:$NP/ops/ops-b/" \
	"${NODE_TLS[@]}"
# the operations ports speak TLS: readiness and metrics over https
ops_get() { curl -s --max-time 2 --cacert "$work/internal-ca.pem" "https://127.0.0.1:${CL_OP[$1]}$2"; }
node_ready() {
	case $1 in
	ops-*) [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$work/internal-ca.pem" \
		"https://127.0.0.1:${CL_OP[$1]}/readyz")" = 200 ] ;;
	*) cl_ready "$1" ;;
	esac
}
ops_sessions() { ops_get "$1" /metrics | awk '$1 == "kaa_ops_sessions" {print $2}'; }
for id in ctl ops-a ops-b; do
	if wait_for 40000 node_ready "$id"; then pass "$id ready (${CL_SVC[$id]})"; else
		fail "$id not ready: $(tail -3 "$work/$id.log")"
		summary
		exit 1
	fi
done

mkdir -p "$work/nginx-tmp"
ops_location() { # ID: the location block of one operations node
	cat <<LOC
		location /ops/$1/ {
			proxy_pass https://127.0.0.1:${CL_OP[$1]}/;
			proxy_http_version 1.1;
			proxy_set_header Upgrade \$http_upgrade;
			proxy_set_header Connection \$connection_upgrade;
			proxy_read_timeout 300s;
		}
LOC
}
cat >"$work/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log info;
events { worker_connections 256; }
http {
	access_log $work/nginx-access.log;
	client_body_temp_path $work/nginx-tmp/body;
	proxy_temp_path $work/nginx-tmp/proxy;
	fastcgi_temp_path $work/nginx-tmp/fastcgi;
	uwsgi_temp_path $work/nginx-tmp/uwsgi;
	scgi_temp_path $work/nginx-tmp/scgi;
	map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
	server {
		listen 127.0.0.1:$NP ssl;
		ssl_certificate $work/proxy-server.pem;
		ssl_certificate_key $work/proxy-server.key;
		proxy_ssl_trusted_certificate $work/internal-ca.pem;
		proxy_ssl_verify on;
		proxy_ssl_name localhost;
		location /bootstrap/ { proxy_pass https://127.0.0.1:${CL_BP[ctl]}/; }
$(ops_location ops-a)
$(ops_location ops-b)
	}
}
CONF
spawn "$NGINX" -p "$work" -c "$work/nginx.conf" >"$work/nginx.out" 2>&1
port_open() { python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; }
check "nginx listens with TLS" wait_for 10000 port_open "$NP"

URL=http://127.0.0.1:${CL_CP[ctl]}/api/v1
api() { # USER:PASS METHOD PATH [BODY] -> CODE, RESP
	local args=(-s -o "$work/resp" -w '%{http_code}' -X "$2" --max-time 10 -u "$1")
	[ -n "${4:-}" ] && args+=(-H "$JSON" --data-binary "$4")
	CODE=$(curl "${args[@]}" "$URL$3")
	RESP=$(cat "$work/resp")
}
jget() { python3 -c 'import sys, json
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$RESP" "$1"; }
must() { # must CODE description: stops the suite when set-up fails
	if [ "$CODE" = "$1" ]; then pass "$2"; else
		fail "$2 -> $CODE: $RESP"
		summary
		exit 1
	fi
}
ADMIN=$CL_ADMIN_USER:$CL_ADMIN_PASSWORD
api "$ADMIN" POST /tenants '{"name":"edge"}'
must 201 "tenant"
T=$(jget id)
api "$ADMIN" POST "/tenants/$T/users" '{"name":"ta","role":"tenant-admin","password":"password-ta1"}'
must 201 "tenant admin"
TA=ta:password-ta1
api "$ADMIN" POST "/tenants/$T/users" '{"name":"td","role":"tenant-developer","password":"password-td1"}'
must 201 "tenant developer"
TD=td:password-td1
api $TA POST "/tenants/$T/applications" '{"name":"fleet","credentialsMode":"trustful"}'
must 201 "application"
APP=$(jget id)
TOKEN=$(jget applicationToken)
api $TD POST "/applications/$APP/schemas" \
	'{"kind":"log","schema":{"type":"record","name":"Rec","fields":[{"name":"device","type":"int"},{"name":"seq","type":"int"}]}}'
must 201 "log schema"
api $TA POST "/applications/$APP/log-appenders" '{"name":"store","settings":{"type":"endpoint-store"}}'
must 201 "endpoint-store log appender (MongoDB)"

echo "== the bootstrap answer through the proxy names the advertised URLs"
boot_answer() { curl -s --max-time 10 --cacert "$work/proxy-ca.pem" \
	"$PROXY/bootstrap/v1/operations?application=$TOKEN"; }
two_urls() { boot_answer | python3 -c '
import json, sys
n = sorted(json.load(sys.stdin)["nodes"], key=lambda x: x["id"])
p = sys.argv[1]
assert [x["url"] for x in n] == [p + "/ops/ops-a/", p + "/ops/ops-b/"], n
assert all(x["urls"] == [x["url"]] and x["tls"] is True and x["host"] == "127.0.0.1" for x in n), n' \
	"$(printf 'wss://127.0.0.1:%s' "$NP")"; }
check "bootstrap over https through nginx: both nodes' url, urls, tls and host/port" \
	wait_for 20000 two_urls
check "the nodes list their advertised URLs (REST /nodes)" bash -c \
	"curl -s -u '$ADMIN' '$URL/nodes' | grep -qF '\"advertise\":[\"wss://127.0.0.1:$NP/ops/ops-a/\"]'"

echo "== a device given only the proxy's https bootstrap URL, through a drain"
spawn "$DEVICE" --bootstrap "$PROXY/bootstrap/" --ca "$work/proxy-ca.pem" --app-token "$TOKEN" \
	--state-dir "$work/dev" --count 1 --log-rate 20 --log-total 200 --until-acked \
	--duration 90 --verbose --json >"$work/dev.json" 2>"$work/dev.err"
DEV_PID=$SPAWNED
one_session() {
	local a b
	a=$(ops_sessions ops-a)
	b=$(ops_sessions ops-b)
	[ $((${a:-0} + ${b:-0})) = 1 ]
}
check "the device holds one session" wait_for 30000 one_session
first=ops-a
[ "$(ops_sessions ops-b)" = 1 ] && first=ops-b
other=ops-b
[ "$first" = ops-b ] && other=ops-a
cl_etcd_put "drain/$first" "{\"deadline_ms\":$(($(date +%s%3N) + 10000))}"
moved() { [ "$(ops_sessions "$other")" = 1 ]; }
check "drained: the device is on $other" wait_for 30000 moved
wait "$DEV_PID"
check "kaa-device exits 0 once all records are acknowledged" [ $? = 0 ]
# nginx logs a WebSocket request when it ends
check "its first session went through nginx on $first's path" wait_for 10000 \
	grep -q "GET /ops/$first/ HTTP/1.1\" 101 " "$work/nginx-access.log"
check "it reached $other through nginx too (the Redirect named its URL)" wait_for 10000 \
	grep -q "GET /ops/$other/ HTTP/1.1\" 101 " "$work/nginx-access.log"
check "200 records acknowledged, no error, one registration" python3 -c '
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert s["registered"] == 1 and s["records_acked"] == 200 and s["errors"] == 0, s
assert s["reconnects"] >= 1, s' "$work/dev.json"
read -r eps stored distinct gaps first_max <<<"$(cl_store_logs "$APP")"
check "the store holds each of the 200 records once ($stored stored, $distinct distinct, $gaps gaps)" \
	[ "$eps" = 1 ] && [ "$stored" = 200 ] && [ "$distinct" = 200 ] && [ "$gaps" = 0 ]

echo "== the hops behind the proxy speak TLS only"
check "the bootstrap port answers HTTPS verified by the internal CA" bash -c \
	"curl -sf --max-time 5 --cacert '$work/internal-ca.pem' 'https://localhost:${CL_BP[ctl]}/v1/operations?application=$TOKEN' | grep -q wss://"
check "and no plain HTTP" bash -c "! curl -sf --max-time 5 'http://127.0.0.1:${CL_BP[ctl]}/v1/operations' >/dev/null"
check "the operations port refuses a plain WebSocket upgrade" bash -c \
	"! curl -sf --max-time 5 -H 'Upgrade: websocket' 'http://127.0.0.1:${CL_OP[ops-a]}/' >/dev/null"

echo "== refused: a CA that did not sign the proxy's certificate"
timeout 60 "$DEVICE" --bootstrap "$PROXY/bootstrap/" --ca "$work/other-ca.pem" \
	--app-token "$TOKEN" --state-dir "$work/dev2" --count 1 --duration 3 --json \
	>"$work/dev2.json" 2>"$work/dev2.err"
check "no registration with the wrong CA" python3 -c '
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert s["registered"] == 0 and s["errors"] >= 1, s' "$work/dev2.json"

for f in "$work"/*.err "$work"/*.log; do
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
		fail "sanitizer report in $(basename "$f")"
		sed -n '1,40p' "$f"
	fi
done
summary
