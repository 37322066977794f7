#!/usr/bin/env bash
# Device sessions end to end (issue 5's benchmarks), each beside a baseline
# from the same run:
#   - registered idle sessions one kaa-node holds and RSS per session, beside
#     a bare libwebsockets echo server holding the same count (ops_bench);
#   - registration rate (new devices/s), beside bare WebSocket handshakes/s;
#   - configuration push latency p50/p99 to every device after one REST
#     change, beside the REST call's own latency;
#   - log ingest: acknowledged records/s through the file appender and
#     through MongoDB (FerretDB), beside the bare echo round trips/s.
# Usage: bench/device_bench.sh BUILD_DIR   (BENCH_DEVICES, default 18000)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
bin=$root/$build/bin
harness=$root/e2e/harness/harness.sh
. "$root/e2e/lib.sh"
N=${BENCH_DEVICES:-18000}
PROCS=6 # devices per simulator process: 3000 (its one loop polls them all)
work=$(mktemp -d "${TMPDIR:-/tmp}/device_bench.XXXXXX")
ferret=
cleanup() {
	cleanup_pids
	[ -z "$ferret" ] || "$harness" stop ferretdb "$work/ferretdb" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# value of a metric with an optional label filter: prom_sum URL NAME [LABEL_SUBSTRING]
prom_sum() {
	curl -s --max-time 5 "$1/metrics" | awk -v m="$2" -v l="${3:-}" \
		'index($1, m) == 1 && (l == "" || index($1, l)) {s += $2} END {print s + 0}'
}
ms() { date +%s%3N; }

echo "== baseline: bare lws echo server (bench/ops_bench, $N sessions)"
"$root/$build/bench/ops_bench" --sessions "$N" --messages 200000 | tee "$work/ops.txt"
col() { # ROW-PREFIX COLUMN(3 = bare)
	awk -F'|' -v r="$1" -v c="$2" 'index($2, r) {gsub(/ /, "", $c); print $c; exit}' "$work/ops.txt"
}
bare_rss=$(col " RSS per idle session" 4)
bare_hs=$(col " handshakes/s" 4)
bare_rt=$(col " round trips/s" 4)

# start_node NAME EXTRA-ARGS...: a standalone all-in-one node with the demo data
start_node() {
	local name=$1
	shift
	read -r pc pb po pi <<<"$(free_ports 4)"
	mkdir -p "$work/$name"
	(cd "$work/$name" && exec env KAA_ADMIN_USER=admin KAA_ADMIN_PASSWORD=bench-password-1 \
		"$bin/kaa-node" --demo --host 127.0.0.1 --bind 127.0.0.1 --control-port "$pc" \
		--bootstrap-port "$pb" --operations-port "$po" --internode-port "$pi" \
		--log-level warn "$@" >"$work/$name.out" 2>"$work/$name.err") &
	E2E_PIDS+=($!)
	NODE=$!
	CTL=http://127.0.0.1:$pc OPS=http://127.0.0.1:$po BOOT=127.0.0.1:$pb
	wait_for 30000 http_is 200 "$CTL/readyz" || { echo "node did not start" >&2; exit 1; }
	wait_for 5000 grep -q 'application token' "$work/$name.out"
	TOKEN=$(sed -n 's/^kaa demo: application token //p' "$work/$name.out")
}

api() { # METHOD PATH [BODY] [IF-MATCH] -> stdout body
	local args=(-s --max-time 10 -u bench:bench-password-2 -X "$1" -H 'Content-Type: application/json')
	[ -n "${4:-}" ] && args+=(-H "If-Match: $4")
	[ -n "${3:-}" ] && args+=(--data-binary "$3")
	curl "${args[@]}" "$CTL/api/v1$2"
}
make_developer() {
	local tenant
	tenant=$(curl -s -u admin:bench-password-1 "$CTL/api/v1/tenants" |
		python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin)["items"] if t["name"] == "demo"][0])')
	curl -s -u admin:bench-password-1 -H 'Content-Type: application/json' -X POST \
		"$CTL/api/v1/tenants/$tenant/users" \
		-d '{"name":"bench","role":"tenant-developer","password":"bench-password-2"}' >/dev/null
	APP=$(api GET "/tenants/$tenant/applications" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
}

echo
echo "== $N registered idle devices on one kaa-node (SQLite, standalone)"
start_node main
make_developer
rss0=$(rss_kb "$NODE")
per=$((N / PROCS))
t0=$(ms)
# one simulator process after the other (3000 devices arriving at once is
# already a storm; six at once overflow the listen backlog and the devices'
# backoff, not the node, would set the pace)
registered() { [ "$(prom_sum "$OPS" kaa_ops_registrations_total 'result="registered"')" -ge "$1" ]; }
for i in $(seq 1 "$PROCS"); do
	spawn "$bin/kaa-device" --bootstrap "$BOOT" --app-token "$TOKEN" --count "$per" \
		--state-dir "$work/dev$i" --verbose 2>"$work/dev$i.err" >/dev/null
	if ! wait_for 300000 registered "$((per * i))"; then
		echo "only $(prom_sum "$OPS" kaa_ops_registrations_total 'result="registered"') registered" >&2
		break
	fi
done
t1=$(ms)
reg=$(prom_sum "$OPS" kaa_ops_registrations_total 'result="registered"')
sessions=$(prom_sum "$OPS" kaa_ops_sessions)
rss1=$(rss_kb "$NODE")
reg_rate=$(python3 -c "print(round($reg * 1000 / max(1, $t1 - $t0)))")
rss_per=$(python3 -c "print(round(($rss1 - $rss0) * 1024 / max(1, $sessions)))")

# configuration push: one REST change, every device told
cfg=$(api GET "/applications/$APP/configurations" | python3 -c 'import json,sys; c=json.load(sys.stdin)["items"][0]; print(c["id"], c["version"])')
read -r cid cver <<<"$cfg"
T0=$(ms)
api PUT "/applications/$APP/configurations/$cid" '{"body":{"sampleSeconds":5,"greeting":"pushed"}}' "$cver" >/dev/null
T1=$(ms)
pushed() { [ "$(cat "$work"/dev*.err | grep -c 'greeting":"pushed')" -ge "$sessions" ]; }
wait_for 300000 pushed || echo "not every device got the push" >&2
lat=$(cat "$work"/dev*.err | grep 'greeting":"pushed' |
	sed -n 's/.*ts_ms=\([0-9]*\) .*/\1/p' | python3 -c "
import sys
v = sorted(int(x) - $T0 for x in sys.stdin)
print(len(v), v[len(v) // 2] if v else -1, v[min(len(v) - 1, len(v) * 99 // 100)] if v else -1)")
read -r npushed p50 p99 <<<"$lat"
cleanup_pids
E2E_PIDS=()

echo
BATCH=${BENCH_LOG_BATCH:-1000}
echo "== log ingest: 200 devices in batches of $BATCH, acknowledged (file appender: 5000 records each; MongoDB: 500 each)"
ingest() { # NAME RECORDS-PER-DEVICE -> records/s on stdout
	local t0 t1 acked
	t0=$(ms)
	"$bin/kaa-device" --bootstrap "$BOOT" --app-token "$TOKEN" --count 200 --log-total "$2" \
		--log-rate 100000 --log-batch "$BATCH" --until-acked --duration 300 \
		--state-dir "$work/ingest-$1" --json >"$work/ingest-$1.json" 2>/dev/null
	t1=$(ms)
	acked=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records_acked"])' "$work/ingest-$1.json")
	python3 -c "print(round($acked * 1000 / max(1, $t1 - $t0)))"
}
start_node file
file_rate=$(ingest file 5000)
kill -TERM "$NODE" && wait "$NODE"
E2E_PIDS=()
ferret=1
eval "$("$harness" start ferretdb "$work/ferretdb")"
start_node mongo --nosql "${KAA_TEST_MONGO}kaa_device_bench"
make_developer
# the endpoint store's collection instead of the demo's file appender
for id in $(api GET "/applications/$APP/log-appenders" | python3 -c 'import json,sys; print(" ".join(str(a["id"]) for a in json.load(sys.stdin)["items"]))'); do
	api DELETE "/applications/$APP/log-appenders/$id" >/dev/null
done
api POST "/applications/$APP/log-appenders" '{"name":"store","settings":{"type":"endpoint-store"}}' >/dev/null
mongo_rate=$(ingest mongo 500)
cleanup_pids
E2E_PIDS=()

ratio() { python3 -c "print(round($1 / $2, 2) if $2 else '-')"; }
echo
echo "| figure | kaa | baseline | ratio | baseline is |"
echo "| --- | ---: | ---: | ---: | --- |"
echo "| registered idle sessions held | $sessions | $N | $(ratio "$sessions" "$N") | asked |"
echo "| RSS per registered idle session (bytes) | $rss_per | $bare_rss | $(ratio "$rss_per" "$bare_rss") | bare lws echo, same count |"
echo "| registrations/s | $reg_rate | $bare_hs | $(ratio "$reg_rate" "$bare_hs") | bare WebSocket handshakes/s |"
echo "| config push p50 (ms), $npushed devices | $p50 | $((T1 - T0)) | $(ratio "$p50" "$((T1 - T0))") | the REST PUT itself (ms) |"
echo "| config push p99 (ms) | $p99 | $((T1 - T0)) | $(ratio "$p99" "$((T1 - T0))") | the REST PUT itself (ms) |"
echo "| log records acked/s, file appender, batches of $BATCH | $file_rate | $bare_rt | $(ratio "$file_rate" "$bare_rt") | bare echo round trips/s |"
echo "| log records acked/s, MongoDB (FerretDB), batches of $BATCH | $mongo_rate | $bare_rt | $(ratio "$mongo_rate" "$bare_rt") | bare echo round trips/s |"
