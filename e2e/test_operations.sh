#!/usr/bin/env bash
# The operations service in kaa-node: its flags (--tls-cert/--tls-key,
# --drain-timeout, --appender-dir), wss on the operations port with a
# certificate made here, the operations metrics and readiness on that port,
# the node's registry record (sessions, load, draining) in etcd, and a
# prompt exit on SIGTERM with no device connected.
# The device protocol itself is exercised by tests/integration/test_operations_ws.c
# (a raw kaa.v1 client against two kaa-node processes on etcd, PostgreSQL and
# FerretDB) and by the SDK suites.
# Needs KAA_TEST_ETCD and KAA_ASAN_BIN_DIR (or KAA_BIN_DIR) from e2e/run-tests.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BIN=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}/kaa-node
ETCD=${KAA_TEST_ETCD:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_operations.XXXXXX")
trap 'cleanup_pids; rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
cluster="ops$$"

echo "== flags"
for args in "--tls-cert /nonexistent" "--tls-key /nonexistent" "--drain-timeout -1" \
	"--drain-timeout 99999" "--drain-timeout 0" "--drain-timeout x" "--appender-dir="; do
	# shellcheck disable=SC2086
	out=$(timeout 10 "$BIN" $args 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" = 2 ] && grep -q '^usage: kaa-node' <<<"$out"; then
		pass "kaa-node $args -> usage, exit 2"
	else
		fail "kaa-node $args -> exit $rc: $out"
	fi
done
check "--help lists the operations flags" bash -c \
	"'$BIN' --help | grep -q -- --tls-cert && '$BIN' --help | grep -q -- --drain-timeout"

echo "== wss with a certificate made here"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
read -r op ip <<<"$(free_ports 2)"
mkdir -p "$work/tls"
(cd "$work/tls" && exec "$BIN" --services operations --node-id tls-node \
	--operations-port "$op" --internode-port "$ip" --bind 127.0.0.1 --host 127.0.0.1 \
	--tls-cert "$work/cert.pem" --tls-key "$work/key.pem" 2>"$work/tls.log") &
tls=$!
E2E_PIDS+=("$tls")
check "wss node /healthz over https" wait_for 15000 bash -c \
	"[ \"\$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 https://127.0.0.1:$op/healthz)\" = 200 ]"
check "wss node /readyz over https (standalone: ready)" bash -c \
	"[ \"\$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 https://127.0.0.1:$op/readyz)\" = 200 ]"
check "plain http is not served on the TLS port" bash -c \
	"[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:$op/healthz)\" != 200 ]"
check "WebSocket upgrade with kaa.v1 over TLS -> 101" bash -c \
	"curl -sk -i --http1.1 --max-time 2 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	 -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
	 -H 'Sec-WebSocket-Protocol: kaa.v1' https://127.0.0.1:$op/ 2>/dev/null | head -1 | grep -q ' 101'"
check "operations metrics on the operations port" bash -c \
	"curl -sk --max-time 2 https://127.0.0.1:$op/metrics | grep -q '^kaa_ops_registrations_total{result=\"registered\"} 0'"
check "sqlite stores created in the working directory" \
	test -f "$work/tls/data/kaa.db" -a -f "$work/tls/data/endpoints.db"
t0=$(now_ms)
kill -TERM "$tls"
wait "$tls"
rc=$?
check "SIGTERM with no device -> exit 0 (got $rc)" [ "$rc" = 0 ]
check "SIGTERM with no device exits within 3 s" [ $(($(now_ms) - t0)) -lt 3000 ]
check "drain logged" grep -q 'drain_done' "$work/tls.log"

echo "== registry record on etcd"
read -r op ip <<<"$(free_ports 2)"
spawn "$BIN" --services operations --node-id ops-rec --cluster "$cluster" --etcd "$ETCD" \
	--sql "sqlite:$work/rec/kaa.db" --nosql "sqlite:$work/rec/ep.db" \
	--operations-port "$op" --internode-port "$ip" --bind 127.0.0.1 --host 127.0.0.1 \
	--lease-ttl 3 --drain-timeout 4 2>"$work/rec.log"
rec=$SPAWNED
check "clustered operations node ready" wait_for 15000 http_is 200 "http://127.0.0.1:$op/readyz"
record_ok() {
	etcd_value "$ETCD" "/kaa/$cluster/nodes/ops-rec" | python3 -c '
import sys, json
v = json.load(sys.stdin)
assert v["services"] == ["operations"] and v["ports"]["operations"] == '"$op"'
assert v["sessions"] == 0 and v["draining"] is False
assert isinstance(v["load"], (int, float)) and 0 <= v["load"] < 64'
}
check "record: operations port, sessions 0, load per core, not draining" wait_for 5000 record_ok
echo "== drain through the etcd key"
curl -s -X POST "$ETCD/v3/kv/put" -d "{\"key\":\"$(b64 "/kaa/$cluster/drain/ops-rec")\",\"value\":\"$(b64 "{\"deadline_ms\":$(($(now_ms) + 4000))}")\"}" >/dev/null
draining() { etcd_value "$ETCD" "/kaa/$cluster/nodes/ops-rec" | grep -q '"draining":true'; }
check "record says draining" wait_for 5000 draining
check "readyz 503 while draining" wait_for 3000 http_is 503 "http://127.0.0.1:$op/readyz"
check "healthz stays 200 while draining" http_is 200 "http://127.0.0.1:$op/healthz"
curl -s -X POST "$ETCD/v3/kv/deleterange" -d "{\"key\":\"$(b64 "/kaa/$cluster/drain/ops-rec")\"}" >/dev/null
check "drain key removed: ready again" wait_for 5000 http_is 200 "http://127.0.0.1:$op/readyz"
not_draining() { etcd_value "$ETCD" "/kaa/$cluster/nodes/ops-rec" | grep -q '"draining":false'; }
check "record says not draining" wait_for 5000 not_draining
kill -TERM "$rec"
wait "$rec"
rc=$?
check "SIGTERM -> exit 0 (got $rc)" [ "$rc" = 0 ]
check "record removed at exit" wait_for 5000 etcd_lacks "$ETCD" "/kaa/$cluster/nodes/ops-rec"

summary
