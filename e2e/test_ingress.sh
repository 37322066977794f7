#!/usr/bin/env bash
# Devices through an ingress (issue 15 §1): a real nginx (Debian's) on
# loopback terminates TLS in front of a kaa-node and routes by path, the
# way an Ingress with one host does: /bootstrap/ to the bootstrap service,
# /ops/<node>/ to that node's operations port (WebSocket upgrade). The node
# advertises its URL through the proxy (--advertise); kaa-device is given
# only the proxy's https bootstrap URL and the CA, and must register,
# receive its configuration and upload through the proxy. A device with
# another CA must not get in.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BIN_DIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_ingress.XXXXXX")
trap 'cleanup_pids; [ -n "${KAA_E2E_KEEP:-}" ] || rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
	fail "nginx is not installed (packaging/debian-packages.txt lists it for tests)"
	summary
	exit 1
fi

read -r pc pb po pi np <<<"$(free_ports 5)"

echo "== set-up: a CA, the proxy's certificate, nginx and kaa-node"
mkcert() { # mkcert NAME: a CA NAME-ca.pem and a server certificate for 127.0.0.1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$1 test CA" -keyout "$work/$1-ca.key" -out "$work/$1-ca.pem" 2>/dev/null &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
			-keyout "$work/$1-server.key" -out "$work/$1-server.csr" 2>/dev/null &&
		openssl x509 -req -in "$work/$1-server.csr" -CA "$work/$1-ca.pem" \
			-CAkey "$work/$1-ca.key" -CAcreateserial -days 2 -out "$work/$1-server.pem" \
			-extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n') 2>/dev/null
}
check "test CAs and the proxy's certificate" bash -c "$(declare -f mkcert); work='$work'; mkcert proxy && mkcert other"
mkdir -p "$work/nginx-tmp"
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
		listen 127.0.0.1:$np ssl;
		ssl_certificate $work/proxy-server.pem;
		ssl_certificate_key $work/proxy-server.key;
		location /bootstrap/ { proxy_pass http://127.0.0.1:$pb/; }
		location /ops/node-a/ {
			proxy_pass http://127.0.0.1:$po/;
			proxy_http_version 1.1;
			proxy_set_header Upgrade \$http_upgrade;
			proxy_set_header Connection \$connection_upgrade;
			proxy_read_timeout 300s;
		}
	}
}
CONF
spawn "$NGINX" -p "$work" -c "$work/nginx.conf" >"$work/nginx.out" 2>&1
port_open() { python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; }
check "nginx listens with TLS" wait_for 10000 port_open "$np"

ADV="wss://127.0.0.1:$np/ops/node-a/"
(cd "$work" && exec env KAA_ADMIN_USER=admin KAA_ADMIN_PASSWORD=demo-password-1 \
	"$BIN_DIR/kaa-node" --demo --node-id node-a --host 127.0.0.1 --bind 127.0.0.1 \
	--control-port "$pc" --bootstrap-port "$pb" --operations-port "$po" \
	--internode-port "$pi" --advertise "$ADV" >"$work/node.out" 2>"$work/node.err") &
E2E_PIDS+=($!)
check "kaa-node ready" wait_for 30000 http_is 200 "http://127.0.0.1:$pc/readyz"
check "the demo prints its application token" wait_for 5000 bash -c \
	"grep -q '^kaa demo: application token ' '$work/node.out'"
token=$(sed -n 's/^kaa demo: application token //p' "$work/node.out")

echo "== the bootstrap answer through the proxy names the advertised URL"
boot=$(curl -s --max-time 10 --cacert "$work/proxy-ca.pem" \
	"https://127.0.0.1:$np/bootstrap/v1/operations?application=$token")
check "bootstrap over https through nginx: url, urls, tls and the old host/port" python3 -c '
import json, sys
n = json.loads(sys.argv[1])["nodes"]
assert len(n) == 1, n
n = n[0]
assert n["url"] == sys.argv[2] and n["urls"] == [sys.argv[2]], n
assert n["tls"] is False and n["host"] == "127.0.0.1" and n["port"] == int(sys.argv[3]), n' \
	"$boot" "$ADV" "$po"
check "the node lists its advertised URL (REST /nodes)" bash -c \
	"curl -s -u admin:demo-password-1 'http://127.0.0.1:$pc/api/v1/nodes' | grep -qF '\"advertise\":[\"$ADV\"]'"

echo "== a device given only the proxy's https bootstrap URL"
timeout 60 "$BIN_DIR/kaa-device" --bootstrap "https://127.0.0.1:$np/bootstrap/" \
	--ca "$work/proxy-ca.pem" --app-token "$token" --state-dir "$work/dev" --count 1 \
	--log-rate 50 --log-total 20 --until-acked --duration 30 --json >"$work/dev.json" 2>"$work/dev.err"
check "registers, gets its configuration and has its logs acknowledged, through nginx" python3 -c '
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert s["registered"] == 1 and s["configurations_received"] >= 1, s
assert s["records_acked"] == 20 and s["errors"] == 0, s' "$work/dev.json"
check "nginx saw the bootstrap request" grep -q 'GET /bootstrap/v1/operations?application=.* 200 ' "$work/nginx-access.log"
check "nginx upgraded the WebSocket on the node's path" grep -q 'GET /ops/node-a/ HTTP/1.1" 101 ' "$work/nginx-access.log"

echo "== refused: a CA that did not sign the proxy's certificate"
timeout 60 "$BIN_DIR/kaa-device" --bootstrap "https://127.0.0.1:$np/bootstrap/" \
	--ca "$work/other-ca.pem" --app-token "$token" --state-dir "$work/dev2" --count 1 \
	--duration 3 --json >"$work/dev2.json" 2>"$work/dev2.err"
check "no registration with the wrong CA" python3 -c '
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert s["registered"] == 0 and s["errors"] >= 1, s' "$work/dev2.json"

for f in "$work"/*.err; do
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
		fail "sanitizer report in $(basename "$f")"
		sed -n '1,40p' "$f"
	fi
done
summary
