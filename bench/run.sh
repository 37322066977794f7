#!/usr/bin/env bash
# make bench: starts the servers the benchmarks need (harness), runs each
# benchmark, stops the servers. Usage: bench/run.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
work=$(mktemp -d)
harness=$root/e2e/harness/harness.sh
node_pid=
pg_started=
cleanup() {
	if [ -n "$node_pid" ]; then
		kill -TERM "$node_pid" 2>/dev/null || true
		wait "$node_pid" 2>/dev/null || true
	fi
	[ -z "$pg_started" ] || "$harness" stop postgres "$work/postgres" >/dev/null 2>&1 || true
	"$harness" stop etcd "$work/etcd" >/dev/null 2>&1 || true
	"$harness" stop ferretdb "$work/ferretdb" >/dev/null 2>&1 || true
	"$harness" stop kafka "$work/kafka" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
eval "$("$harness" start etcd "$work/etcd")"
echo "== proof of possession vs TLS handshakes (bench/proof_bench.c)"
"$root/$build/bench/proof_bench" --seconds "${BENCH_SECONDS:-3}"

echo "== etcd client vs JSON gateway (etcd $("${KAA_ETCD_BIN:-$(ls -1 "${KAA_CACHE:-$HOME/.cache/kaa}"/bin/etcd-v* | tail -1)}" --version | head -1 | awk '{print $3}'))"
"$root/$build/bench/etcd_bench" --etcd "$KAA_TEST_ETCD" --seconds "${BENCH_SECONDS:-3}" \
	--threads "${BENCH_THREADS:-4}" --samples "${BENCH_SAMPLES:-200}"
"$harness" stop etcd "$work/etcd" >/dev/null 2>&1 || true

# ---- control REST API (bench/control_bench.c), once per SQL backend ----------
# A standalone kaa-node --services control on a free loopback port; the
# set-up goes through the REST API with curl: tenant, tenant admin, tenant
# developer, application, the developer's API token, one group.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# rest USER:PASS METHOD PATH [BODY] -> the response body; fails unless 2xx
rest() {
	local args=(-fsS --max-time 30 -u "$1" -X "$2")
	[ -z "${4:-}" ] || args+=(-H 'Content-Type: application/json' --data-binary "$4")
	curl "${args[@]}" "$url/api/v1$3"
}
jfield() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

admin=bench-root admin_pw=bench-root-password
# bench_node --pg URL | --sqlite PATH: set-up through $url, then the benchmark
bench_node() {
	local tenant app tok group
	tenant=$(rest "$admin:$admin_pw" POST /tenants '{"name":"bench"}' | jfield id) || return 1
	rest "$admin:$admin_pw" POST "/tenants/$tenant/users" \
		'{"name":"bench-admin","role":"tenant-admin","password":"bench-admin-password"}' \
		>/dev/null || return 1
	rest "$admin:$admin_pw" POST "/tenants/$tenant/users" \
		'{"name":"bench-dev","role":"tenant-developer","password":"bench-dev-password"}' \
		>/dev/null || return 1
	app=$(rest bench-admin:bench-admin-password POST "/tenants/$tenant/applications" \
		'{"name":"bench"}' | jfield id) || return 1
	tok=$(rest bench-dev:bench-dev-password POST /tokens '{"name":"bench"}' | jfield token) ||
		return 1
	group=$(curl -fsS --max-time 30 -H "Authorization: Bearer $tok" \
		-H 'Content-Type: application/json' -X POST "$url/api/v1/applications/$app/groups" \
		--data-binary '{"name":"bench-read","weight":10,"filter":{"cp.region":"eu"}}' |
		jfield id) || return 1
	"$root/$build/bench/control_bench" --url "$url" --token "$tok" --app "$app" --group "$group" \
		--basic bench-dev:bench-dev-password --seconds "${BENCH_SECONDS:-3}" \
		--threads "${BENCH_THREADS:-4}" "$@"
}
# control_bench TAG SQL_URL --pg URL | --sqlite PATH: starts the node, runs, stops it
control_bench() {
	local tag=$1 sql=$2 port rc=0
	shift 2
	port=$(free_port)
	url=http://127.0.0.1:$port
	KAA_ADMIN_USER=$admin KAA_ADMIN_PASSWORD=$admin_pw "$root/$build/bin/kaa-node" \
		--services control --node-id "bench-$tag" --bind 127.0.0.1 --host 127.0.0.1 \
		--control-port "$port" --sql "$sql" --log-level warn \
		>"$work/node-$tag.log" 2>&1 &
	node_pid=$!
	for _ in $(seq 200); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/readyz")" = 200 ] && break
		kill -0 "$node_pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/readyz")" != 200 ]; then
		echo "kaa-node ($tag) did not become ready" >&2
		rc=1
	else
		bench_node "$@" || rc=$?
	fi
	kill -TERM "$node_pid" 2>/dev/null || true
	wait "$node_pid" 2>/dev/null || true
	node_pid=
	[ "$rc" = 0 ] || tail -n 20 "$work/node-$tag.log" >&2
	return "$rc"
}

status=0
echo "== control REST API on SQLite (kaa-node --services control, standalone)"
mkdir -p "$work/sqlite"
control_bench sqlite "sqlite:$work/sqlite/kaa.db" --sqlite "$work/sqlite/kaa.db" || status=1

pg_started=1
eval "$("$harness" start postgres "$work/postgres")"
echo "== control REST API on PostgreSQL $(psql --version 2>/dev/null | awk '{print $3}') (kaa-node --services control, standalone)"
control_bench pg "$KAA_TEST_PG" --pg "$KAA_TEST_PG" || status=1
"$harness" stop postgres "$work/postgres" >/dev/null 2>&1 || true
pg_started=

eval "$("$harness" start ferretdb "$work/ferretdb")"
echo "== log batch appends: endpoint store (SQLite, FerretDB) and file appender vs raw drivers"
mkdir -p "$work/ep"
"$root/$build/bench/ep_store_bench" --dir "$work/ep" --mongo "${KAA_TEST_MONGO}kaa_bench" \
	--seconds "${BENCH_SECONDS:-3}" --threads "${BENCH_THREADS:-4}" || status=1
"$harness" stop ferretdb "$work/ferretdb" >/dev/null 2>&1 || true

echo "== webhook log appender vs bare libcurl POSTs (bench/webhook_bench.c)"
"$root/$build/bench/webhook_bench" --seconds "${BENCH_SECONDS:-3}" || status=1

echo "== Kafka log appender vs bare librdkafka producer (Kafka $("$root/e2e/tools/kafka/fetch.sh" version), KRaft, harness)"
"$root/e2e/tools/kafka/fetch.sh" >/dev/null
eval "$("$harness" start kafka "$work/kafka")"
"$root/$build/bench/kafka_bench" --bootstrap "$KAA_TEST_KAFKA" --seconds "${BENCH_SECONDS:-5}" || status=1
"$harness" stop kafka "$work/kafka" >/dev/null 2>&1 || true

echo "== device sessions end to end (registered sessions, registration, configuration push, log ingest);"
echo "   its baselines come from bench/ops_bench (bare lws echo server) run first"
"$root/bench/device_bench.sh" "$build" || status=1

echo "== cluster: internode round trip, failover, rebalance, event latency (bench/cluster_bench.sh)"
"$root/bench/cluster_bench.sh" "$build" || status=1
echo "== kaa-operator on the harness control plane vs kubectl apply of the same objects"
"$root/bench/operator_bench.sh" "$build" || status=1
exit "$status"
