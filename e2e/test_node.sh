#!/usr/bin/env bash
# kaa-node as a process: flag handling, standalone mode, registration and
# deregistration in etcd, control leader election with kill -9 fail-over,
# and re-registration after etcd is restarted under running nodes.
# Needs KAA_TEST_ETCD, KAA_HARNESS, KAA_TEST_ETCD_DIR and KAA_ASAN_BIN_DIR
# (or KAA_BIN_DIR) from e2e/run-tests.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BIN=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}/kaa-node
ETCD=${KAA_TEST_ETCD:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_node.XXXXXX")
trap 'cleanup_pids; rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
cluster="e2e$$"
export -f metric etcd_value b64

echo "== flags"
for args in "--bogus" "--control-port" "--control-port 70000" "--services nope" \
	"extra-arg" "--lease-ttl 1" "--sql mysql://x" "--node-id a/b" \
	"--services control,bootstrap --control-port 9000 --bootstrap-port 9000"; do
	# shellcheck disable=SC2086
	out=$(timeout 10 "$BIN" $args 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" = 2 ] && grep -q '^usage: kaa-node' <<<"$out"; then
		pass "kaa-node $args -> usage, exit 2"
	else
		fail "kaa-node $args -> exit $rc: $out"
	fi
done
check "--help exits 0 with usage" bash -c "'$BIN' --help | grep -q '^usage: kaa-node'"
check "--version exits 0" bash -c "'$BIN' --version | grep -q '^kaa-node '"
printf 'bogus-key = 1\n' >"$work/bad.conf"
timeout 10 "$BIN" --config "$work/bad.conf" >/dev/null 2>&1
check "unknown key in --config -> exit 2" [ $? = 2 ]
printf '# comment\nnode-id = fromfile\ncluster = c1\n' >"$work/good.conf"

# start_node NAME LOGFILE args... : sets NODE_PID
start_node() {
	local log=$1
	shift
	spawn "$BIN" "$@" 2>"$log"
	NODE_PID=$SPAWNED
}

echo "== standalone"
read -r p1 p2 p3 p4 <<<"$(free_ports 4)"
mkdir -p "$work/sa"
(cd "$work/sa" && exec "$BIN" --config "$work/good.conf" --control-port "$p1" \
	--bootstrap-port "$p2" --operations-port "$p3" --internode-port "$p4" \
	--bind 127.0.0.1 --host 127.0.0.1 2>"$work/sa.log") &
sa=$!
E2E_PIDS+=($sa)
for p in $p1 $p2 $p3; do
	check "standalone :$p /healthz 200" wait_for 10000 http_is 200 "http://127.0.0.1:$p/healthz"
	check "standalone :$p /readyz 200" wait_for 10000 http_is 200 "http://127.0.0.1:$p/readyz"
done
check "standalone /metrics registered" metric_is "http://127.0.0.1:$p1" kaa_node_registered 1
check "standalone is control leader" wait_for 5000 metric_is "http://127.0.0.1:$p1" kaa_control_leader 1
check "standalone node id from --config" \
	bash -c "curl -s http://127.0.0.1:$p1/metrics | grep -q 'node=\"fromfile\",cluster=\"c1\"'"
check "unknown path -> 404 JSON" bash -c \
	"curl -s http://127.0.0.1:$p1/nope | grep -q '\"error\"'"
check "POST /healthz -> 405" bash -c \
	"[ \$(curl -s -o /dev/null -w '%{http_code}' -XPOST http://127.0.0.1:$p1/healthz) = 405 ]"
t0=$(now_ms)
kill -TERM "$sa"
wait "$sa"
rc=$?
check "standalone SIGTERM -> exit 0 (got $rc)" [ "$rc" = 0 ]
check "standalone SIGTERM exit within 5 s" [ $(($(now_ms) - t0)) -lt 5000 ]

echo "== a busy port fails start-up"
python3 -c 'import signal, socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); signal.pause()' >"$work/busy.port" 2>/dev/null &
holder=$!
E2E_PIDS+=($holder)
wait_for 5000 test -s "$work/busy.port"
busy=$(cat "$work/busy.port")
timeout 10 "$BIN" --sql "sqlite:$work/busy.db" --services control --control-port "$busy" --bind 127.0.0.1 >/dev/null 2>"$work/busy.log"
rc=$?
check "busy port -> exit 1 with a log line" bash -c "[ $rc = 1 ] && grep -q listen_failed '$work/busy.log'"
kill "$holder" 2>/dev/null

echo "== two nodes on etcd: registration, election, kill -9 fail-over"
read -r a1 a2 b1 b2 <<<"$(free_ports 4)"
start_node "$work/a.log" --sql "sqlite:$work/a.db" --etcd "$ETCD" --cluster "$cluster" --node-id node-a --services control \
	--control-port "$a1" --internode-port "$a2" --bind 127.0.0.1 --host 127.0.0.1 --lease-ttl 3
pa=$NODE_PID
check "node-a ready" wait_for 10000 http_is 200 "http://127.0.0.1:$a1/readyz"
check "node-a leads" wait_for 10000 metric_is "http://127.0.0.1:$a1" kaa_control_leader 1
start_node "$work/b.log" --sql "sqlite:$work/b.db" --etcd "$ETCD" --cluster "$cluster" --node-id node-b --services control \
	--control-port "$b1" --internode-port "$b2" --bind 127.0.0.1 --host 127.0.0.1 --lease-ttl 3
pb=$NODE_PID
check "node-b ready" wait_for 10000 http_is 200 "http://127.0.0.1:$b1/readyz"
check "node record in etcd is the brief's JSON" bash -c "curl -s -X POST '$ETCD/v3/kv/range' \
	-d '{\"key\":\"$(b64 "/kaa/$cluster/nodes/node-b")\"}' | python3 -c '
import sys, json, base64
v = json.loads(base64.b64decode(json.load(sys.stdin)[\"kvs\"][0][\"value\"]))
assert v[\"id\"] == \"node-b\" and v[\"services\"] == [\"control\"] and v[\"host\"] == \"127.0.0.1\"
assert v[\"ports\"][\"control\"] == $b1 and v[\"sessions\"] == 0 and v[\"draining\"] is False
assert isinstance(v[\"load\"], (int, float)) and v[\"version\"]'"
check "both nodes see two nodes" wait_for 5000 metric_is "http://127.0.0.1:$b1" kaa_registry_nodes 2
check "exactly one leader" bash -c "[ \"\$(metric http://127.0.0.1:$b1 kaa_control_leader)\" = 0 ]" 
check "leader key names node-a" [ "$(etcd_value "$ETCD" "/kaa/$cluster/control/leader")" = node-a ]
t0=$(now_ms)
kill -KILL "$pa"
wait "$pa" 2>/dev/null
if wait_for 8000 metric_is "http://127.0.0.1:$b1" kaa_control_leader 1; then
	took=$(($(now_ms) - t0))
	pass "node-b took over ${took} ms after kill -9 of the leader (TTL 3 s)"
	check "take-over within TTL + 1.5 s" [ "$took" -le 4500 ]
else
	fail "node-b did not take over after kill -9"
fi
check "leader key names node-b" wait_for 3000 bash -c \
	"[ \"\$(etcd_value '$ETCD' '/kaa/$cluster/control/leader')\" = node-b ]"
check "dead node-a's record expires" wait_for 8000 etcd_lacks "$ETCD" "/kaa/$cluster/nodes/node-a"

echo "== etcd restarted under a running node"
check "etcd killed" "$KAA_HARNESS" kill etcd "$KAA_TEST_ETCD_DIR"
t0=$(now_ms)
# etcd cannot expire the lease before TTL (3 s) after the last keepalive it
# received; the leader must have stepped down by then.
check "leader steps down within the lease TTL of losing etcd" \
	wait_for 3000 metric_is "http://127.0.0.1:$b1" kaa_control_leader 0
echo "  (stepped down after $(($(now_ms) - t0)) ms)"
check "node-b survives and reports not registered" \
	wait_for 10000 metric_is "http://127.0.0.1:$b1" kaa_node_registered 0
check "node-b not ready while etcd is down" http_is 503 "http://127.0.0.1:$b1/readyz"
check "node-b still alive" alive "$pb"
check "etcd restarted" "$KAA_HARNESS" restart etcd "$KAA_TEST_ETCD_DIR"
check "node-b registered again" wait_for 15000 metric_is "http://127.0.0.1:$b1" kaa_node_registered 1
check "node-b record back in etcd" wait_for 5000 etcd_has "$ETCD" "/kaa/$cluster/nodes/node-b"
check "node-b ready again" wait_for 10000 http_is 200 "http://127.0.0.1:$b1/readyz"
check "node-b leads again" wait_for 10000 metric_is "http://127.0.0.1:$b1" kaa_control_leader 1
check "no busy loop: node-b CPU time stays low" bash -c \
	"[ \$(awk '{print \$14+\$15}' /proc/$pb/stat) -lt 3000 ]"

echo "== SIGTERM deregisters at once"
read -r c1 c2 <<<"$(free_ports 2)"
start_node "$work/c.log" --etcd "$ETCD" --cluster "$cluster" --node-id node-c --services bootstrap \
	--bootstrap-port "$c1" --bind 127.0.0.1 --host 127.0.0.1 --lease-ttl 30
pc=$NODE_PID
check "node-c registered" wait_for 10000 etcd_has "$ETCD" "/kaa/$cluster/nodes/node-c"
t0=$(now_ms)
kill -TERM "$pc"
wait "$pc"
rc=$?
check "node-c SIGTERM -> exit 0 (got $rc)" [ "$rc" = 0 ]
check "node-c record gone right away (TTL is 30 s)" etcd_lacks "$ETCD" "/kaa/$cluster/nodes/node-c"
check "node-c exited within 5 s" [ $(($(now_ms) - t0)) -lt 5000 ]
kill -TERM "$pb"
wait "$pb"
check "node-b SIGTERM -> exit 0" [ $? = 0 ]
check "leader key released" wait_for 3000 etcd_lacks "$ETCD" "/kaa/$cluster/control/leader"

echo "== bootstrap lists live operations nodes"
read -r e1 e2 e3 <<<"$(free_ports 3)"
start_node "$work/e.log" --etcd "$ETCD" --cluster "$cluster" --node-id node-e \
	--services operations,bootstrap --operations-port "$e1" --internode-port "$e2" \
	--bootstrap-port "$e3" --bind 127.0.0.1 --host 127.0.0.1 --lease-ttl 3
pe=$NODE_PID
check "node-e ready" wait_for 10000 http_is 200 "http://127.0.0.1:$e3/readyz"
put_record() { # KEY JSON
	curl -s -X POST "$ETCD/v3/kv/put" -d "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\"}" >/dev/null
}
put_record "/kaa/$cluster/nodes/busy" '{"id":"busy","services":["operations"],"host":"10.1.1.1","ports":{"operations":9999},"sessions":3000,"load":0,"draining":false}'
put_record "/kaa/$cluster/nodes/drain" '{"id":"drain","services":["operations"],"host":"10.1.1.2","ports":{"operations":9999},"sessions":0,"load":0,"draining":true}'
put_record "/kaa/$cluster/nodes/junk" 'not json'
export BOOT_URL="http://127.0.0.1:$e3/v1/operations?application=x"
boot_list() { curl -s "$BOOT_URL"; }
export -f boot_list
has_busy() { boot_list | grep -q '"id":"busy"'; }
check "bootstrap sees the new node" wait_for 5000 has_busy
# node-e carries the machine's real load (load average per CPU), so only the
# fake busy node's weight is exact; tests/unit/test_bootstrap.c covers the formula.
check "bootstrap list: node-e at its operations port, busy weighted 250, no draining or junk" \
	bash -c "boot_list | python3 -c '
import json, sys
n = {x[\"id\"]: x for x in json.load(sys.stdin)[\"nodes\"]}
assert set(n) == {\"node-e\", \"busy\"}, n
assert n[\"node-e\"][\"port\"] == $e1 and n[\"node-e\"][\"host\"] == \"127.0.0.1\"
assert n[\"busy\"][\"weight\"] == 250 and n[\"node-e\"][\"weight\"] >= 1'"
kill -TERM "$pe"
wait "$pe"
check "node-e SIGTERM -> exit 0" [ $? = 0 ]

echo "== unreachable etcd: clear log, retry, no crash"
read -r d1 <<<"$(free_ports 1)"
start_node "$work/d.log" --etcd "http://127.0.0.1:1" --cluster "$cluster" --node-id node-d \
	--services bootstrap --bootstrap-port "$d1" --bind 127.0.0.1 --lease-ttl 3
pd=$NODE_PID
check "node-d answers /healthz" wait_for 10000 http_is 200 "http://127.0.0.1:$d1/healthz"
check "node-d not ready" http_is 503 "http://127.0.0.1:$d1/readyz"
check "node-d logs why" wait_for 10000 grep -q 'register_failed.*err=' "$work/d.log"
kill -TERM "$pd"
wait "$pd"
check "node-d SIGTERM -> exit 0" [ $? = 0 ]

for f in "$work"/*.log; do
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
		fail "sanitizer report in $(basename "$f")"
		sed -n '1,60p' "$f"
	fi
done
summary
