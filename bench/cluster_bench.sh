#!/usr/bin/env bash
# Cluster behaviour (issue 6's benchmarks), each figure beside a baseline
# measured in the same run (bench/README.md, "Cluster"):
#   a. failover: BENCH_CLUSTER_DEVICES (10000) devices through bootstrap on
#      three operations nodes; kill -9 of the busiest; the time from the kill
#      until 99% of its devices are established on another node, beside the
#      lease TTL (the part owed to detection) and beside the time as many
#      fresh devices take to connect and register from scratch;
#   b. rebalance: BENCH_REBALANCE_DEVICES (6000) devices piled on one node,
#      then two empty nodes join; the reconnects the devices made until the
#      counts settled, beside the minimum number of moves;
#   c. event latency p50/p99 device -> device of one owner, receivers on the
#      sender's node and on other nodes, beside the internode link's raw
#      round trip (bench/internode_bench, run first). Prints SKIP while
#      kaa-device has no --send-event.
# One control+bootstrap kaa-node and three operations kaa-nodes, each its own
# process and ports, sharing an etcd (harness) and SQLite files (metadata and
# endpoint store) on local disk. About 3 minutes.
# Usage: bench/cluster_bench.sh BUILD_DIR
#   BENCH_CLUSTER_PARTS (abc) which parts; BENCH_PER_PROC (2500) devices per
#   kaa-device process; BENCH_LEASE_TTL (5); BENCH_REBALANCE_COOLDOWN (5);
#   BENCH_EVENTS (500); BENCH_LOG_LEVEL (warn) of the nodes; BENCH_KEEP=1
#   keeps the work directory (node and device logs).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
bin=$root/$build/bin
harness=$root/e2e/harness/harness.sh
. "$root/e2e/lib.sh"
N=${BENCH_CLUSTER_DEVICES:-10000}
NB=${BENCH_REBALANCE_DEVICES:-6000}
TTL=${BENCH_LEASE_TTL:-5}
PER_PROC=${BENCH_PER_PROC:-2500} # devices per simulator process (its one loop polls them all)
THRESHOLD=0.2
COOLDOWN=${BENCH_REBALANCE_COOLDOWN:-5}
PARTS=${BENCH_CLUSTER_PARTS:-abc} # which of a, b, c to run
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d "${TMPDIR:-/tmp}/cluster_bench.XXXXXX")
cleanup() {
	cleanup_pids
	"$harness" stop etcd "$work/etcd" >/dev/null 2>&1 || true
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ratio A B: A / B to two places; "-" when either is missing or negative
ratio() {
	python3 - "$1" "$2" <<'PY'
import sys
try:
    a, b = float(sys.argv[1]), float(sys.argv[2])
except ValueError:
    a = b = -1
print(round(a / b, 2) if a >= 0 and b > 0 else "-")
PY
}
die() {
	echo "cluster_bench: $*" >&2
	exit 1
}

echo "== internode link round trip (bench/internode_bench)"
"$root/$build/bench/internode_bench" | tee "$work/internode.txt" || die "internode_bench failed"
rtt_p50_us=$(sed -n 's/^internode_rtt_p50_us=\([0-9.]*\) .*/\1/p' "$work/internode.txt")
rtt_p99_us=$(sed -n 's/.* internode_rtt_p99_us=\([0-9.]*\)$/\1/p' "$work/internode.txt")

eval "$("$harness" start etcd "$work/etcd")"
ETCD=$KAA_TEST_ETCD

# ---- nodes -------------------------------------------------------------------
declare -A PID=() CP=() BP=() OP=() IP=()
CLUSTER=cb$$
# start_node ID SERVICES [FLAG...]: ports chosen at the first start, kept after
start_node() {
	local id=$1 svc=$2
	shift 2
	[ -n "${CP[$id]:-}" ] || read -r "CP[$id]" "BP[$id]" "OP[$id]" "IP[$id]" <<<"$(free_ports 4)"
	KAA_ADMIN_USER=admin KAA_ADMIN_PASSWORD=bench-password-1 spawn "$bin/kaa-node" \
		--node-id "$id" --services "$svc" --cluster "$CLUSTER" --etcd "$ETCD" \
		--sql "sqlite:$work/kaa.db" --nosql "sqlite:$work/endpoints.db" --bind 127.0.0.1 \
		--host 127.0.0.1 --lease-ttl "$TTL" --control-port "${CP[$id]}" \
		--bootstrap-port "${BP[$id]}" --operations-port "${OP[$id]}" \
		--internode-port "${IP[$id]}" --appender-dir "$work/logs-$id" --log-level "${BENCH_LOG_LEVEL:-warn}" "$@" \
		>>"$work/$id.out" 2>>"$work/$id.log"
	PID[$id]=$SPAWNED
}
# forget PID: a reaped process leaves E2E_PIDS (cleanup_pids signals the rest)
forget() {
	local p keep=()
	for p in "${E2E_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	E2E_PIDS=("${keep[@]}")
}
# stop_node ID [SIGNAL]
stop_node() {
	[ -n "${PID[$1]:-}" ] || return 0
	kill "-${2:-TERM}" "${PID[$1]}" 2>/dev/null
	wait_for 30000 dead "${PID[$1]}" || kill -KILL "${PID[$1]}" 2>/dev/null
	wait "${PID[$1]}"
	forget "${PID[$1]}"
	PID[$1]=
} 2>/dev/null # no "Killed" job notice
sessions() { # operations node ID -> kaa_ops_sessions (0 when down)
	local v=
	[ -z "${PID[$1]:-}" ] || v=$(metric "http://127.0.0.1:${OP[$1]}" kaa_ops_sessions)
	echo "${v:-0}"
}
sessions_sum() {
	local id s=0
	for id in "$@"; do s=$((s + $(sessions "$id"))); done
	echo "$s"
}
sessions_sum_ge() { [ "$(sessions_sum "${@:2}")" -ge "$1" ]; }
boot_count() {
	curl -s --max-time 2 "http://127.0.0.1:${BP[ctl]}/v1/operations?application=$TOKEN" |
		python3 -c 'import sys, json; print(len(json.load(sys.stdin)["nodes"]))' 2>/dev/null
}
boot_lists() { [ "$(boot_count)" = "$1" ]; }

# ---- REST set-up: tenant, users, trustful application ----------------------
rest() { # USER:PASS METHOD PATH [BODY] -> body; fails unless 2xx
	local args=(-fsS --max-time 30 -u "$1" -X "$2")
	[ -z "${4:-}" ] || args+=(-H 'Content-Type: application/json' --data-binary "$4")
	curl "${args[@]}" "http://127.0.0.1:${CP[ctl]}/api/v1$3"
}
jfield() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
DEV=bench-dev:bench-dev-password
FQN=org.kaa.bench.Tick # the event class of c.
setup_app() {
	TENANT=$(rest admin:bench-password-1 POST /tenants '{"name":"bench"}' | jfield id) || return 1
	rest admin:bench-password-1 POST "/tenants/$TENANT/users" \
		'{"name":"bench-admin","role":"tenant-admin","password":"bench-admin-password"}' >/dev/null || return 1
	rest admin:bench-password-1 POST "/tenants/$TENANT/users" \
		'{"name":"bench-dev","role":"tenant-developer","password":"bench-dev-password"}' >/dev/null || return 1
	rest bench-admin:bench-admin-password POST "/tenants/$TENANT/applications" \
		'{"name":"bench","credentialsMode":"trustful"}' >"$work/setup-app.json" || return 1
	APP=$(jfield id <"$work/setup-app.json")
	TOKEN=$(jfield applicationToken <"$work/setup-app.json")
	# for c.: made here, long before, so every operations node has loaded
	# them when the devices attach (a node refreshes its cache from an etcd
	# watch: a device attaching within milliseconds of the REST call may
	# still be told NO_VERIFIER)
	local family
	family=$(rest "$DEV" POST "/tenants/$TENANT/event-families" \
		"{\"name\":\"bench-events\",\"classes\":[{\"fqn\":\"$FQN\",\"schema\":{\"type\":\"record\",\"name\":\"Tick\",\"namespace\":\"org.kaa.bench\",\"fields\":[{\"name\":\"n\",\"type\":\"long\"},{\"name\":\"sent_ms\",\"type\":\"long\"}]}}]}" |
		jfield id) || return 1
	rest "$DEV" POST "/applications/$APP/event-maps" \
		"{\"familyId\":$family,\"classes\":{\"$FQN\":\"both\"}}" >/dev/null || return 1
	rest bench-admin:bench-admin-password POST "/applications/$APP/user-verifiers" \
		'{"name":"trustful","settings":{"type":"trustful"}}' >/dev/null
}

# ---- device logs -------------------------------------------------------------
# spawn_fleet TAG COUNT [FLAG...]: one kaa-device process, state in
# $work/state-TAG (kept between runs: the same devices come back registered)
spawn_fleet() {
	local tag=$1 count=$2
	shift 2
	spawn "$bin/kaa-device" --bootstrap "127.0.0.1:${BP[ctl]}" --app-token "$TOKEN" \
		--count "$count" --state-dir "$work/state-$tag" --verbose --json "$@" \
		>"$work/$tag.json" 2>"$work/$tag.err"
	FLEET_PIDS+=("$SPAWNED")
}
stop_fleets() { # SIGTERM: each prints its --json summary
	local p
	for p in "${FLEET_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${FLEET_PIDS[@]}"; do
		wait_for 30000 dead "$p" || kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
		forget "$p"
	done
	FLEET_PIDS=()
}
# established.py: per device "file:index" the established lines (ts, node)
cat >"$work/established.py" <<'PY'
import re, sys
pat = re.compile(r'device=(\d+) ts_ms=(\d+) event=state state=established node=\S*:(\d+)')
def load(files):
    dev = {}
    for f in files:
        with open(f, errors="replace") as fh:
            for line in fh:
                m = pat.search(line)
                if m:
                    dev.setdefault(f + ":" + m.group(1), []).append((int(m.group(2)), int(m.group(3))))
    return dev
PY
# established_count FILE...: devices with at least one established line
established_count() {
	python3 - "$@" <<PY
import sys
sys.path.insert(0, "$work")
from established import load
print(len(load(sys.argv[1:])))
PY
}
established_ge() { [ "$(established_count "${@:2}")" -ge "$1" ]; }

FLEET_PIDS=()
OPS=(o1 o2 o3)
# the figures of a part that is not run stay "-"
victims=- fo_p50=- fo_p99=- fr_p50=- fr_p99=- recon_a=- fill_rate=-
recon_b_json=- min_b=- moved_twice=- rb_ms=- recon_b=- init_o1=- f1=- f2=- f3=- spread=- min_thr=-
ev_rows=()

# ---- a. failover -------------------------------------------------------------
# failover.py K0 VPORT FILE...: "victims back p50 p99 last" over the devices
# whose last session before K0 was on port VPORT: back = established again
# after K0; pN = ms from K0 until N% of all those devices were back (-1: not
# yet); last = the latest of those back
cat >"$work/failover.py" <<PY
import sys
sys.path.insert(0, "$work")
from established import load
k0, vport = int(sys.argv[1]), int(sys.argv[2])
t = []
victims = 0
for lines in load(sys.argv[3:]).values():
    before = [l for l in lines if l[0] <= k0]
    if not before or before[-1][1] != vport:
        continue
    victims += 1
    after = [l[0] - k0 for l in lines if l[0] > k0]
    if after:
        t.append(after[0])
t.sort()
def pct(p):
    need = -(-victims * p // 100)  # ceil: p% of all the victim's devices
    return t[need - 1] if 0 < need <= len(t) else -1
print(victims, len(t), pct(50), pct(99), t[-1] if t else -1)
PY
failover_status() { python3 "$work/failover.py" "$K0" "${OP[$victim]}" "$work"/fail*.err; }
failover_done() { [ "$(failover_status | awk '{print $4}')" -ge 0 ]; }

part_a() {
	local procs t0 t1 left c i id s max=-1 dist='' survivors=() back fo_max B0 need
	echo
	echo "== a. failover: $N devices on 3 operations nodes, kill -9 of the busiest (lease TTL ${TTL} s)"
	for id in "${OPS[@]}"; do start_node "$id" operations --drain-timeout 10; done
	wait_for 30000 boot_lists 3 || die "bootstrap does not list the 3 operations nodes"
	procs=$(((N + PER_PROC - 1) / PER_PROC))
	t0=$(now_ms)
	left=$N
	for i in $(seq 1 "$procs"); do
		c=$((left < PER_PROC ? left : PER_PROC))
		left=$((left - c))
		# one simulator process after the other: thousands of devices
		# arriving at once are a storm the devices' backoff, not the
		# nodes, would pace
		spawn_fleet "fail$i" "$c"
		wait_for 300000 sessions_sum_ge "$((N - left))" "${OPS[@]}" ||
			die "only $(sessions_sum "${OPS[@]}") of $((N - left)) sessions"
	done
	# the session gauges also count connections still waiting for HelloAck
	wait_for 300000 established_ge "$N" "$work"/fail*.err ||
		die "only $(established_count "$work"/fail*.err) of $N devices established"
	t1=$(now_ms)
	fill_rate=$(python3 -c "print(round($N * 1000 / max(1, $t1 - $t0)))")
	for id in "${OPS[@]}"; do
		s=$(sessions "$id")
		dist="$dist $id=$s"
		if [ "$s" -gt "$max" ]; then max=$s victim=$id; fi
	done
	echo "sessions:$dist ($fill_rate registrations/s while filling); kill -9 $victim"
	for id in "${OPS[@]}"; do [ "$id" = "$victim" ] || survivors+=("$id"); done
	K0=$(now_ms)
	stop_node "$victim" KILL
	# done when 99% of the victim's devices report a new session
	wait_for 300000 failover_done || echo "not 99% of the devices of $victim came back" >&2
	read -r victims back fo_p50 fo_p99 fo_max <<<"$(failover_status)"
	echo "$back of the $victims devices of $victim back on another node: 50% after $fo_p50 ms, 99% after $fo_p99 ms, last after $fo_max ms"

	# baseline: as many fresh devices (new state: they register), spread
	# over as many processes as the victim's devices were, all at once
	B0=$(now_ms)
	left=$victims
	for i in $(seq 1 "$procs"); do
		c=$(((left + procs - i) / (procs - i + 1)))
		left=$((left - c))
		spawn_fleet "fresh$i" "$c"
	done
	need=$(((victims * 99 + 99) / 100))
	wait_for 300000 established_ge "$need" "$work"/fresh*.err ||
		echo "only $(established_count "$work"/fresh*.err) of $victims fresh devices established" >&2
	read -r fr_p50 fr_p99 <<<"$(python3 - "$B0" "$victims" "$work"/fresh*.err <<PY
import sys
sys.path.insert(0, "$work")
from established import load
b0, n = int(sys.argv[1]), int(sys.argv[2])
t = sorted(lines[0][0] - b0 for lines in load(sys.argv[3:]).values())
def pct(p):
    need = -(-n * p // 100)
    return t[need - 1] if 0 < need <= len(t) else -1
print(pct(50), pct(99))
PY
)"
	echo "$victims fresh devices: 50% established after $fr_p50 ms, 99% after $fr_p99 ms"
	stop_fleets
	recon_a=$(json_sum reconnects "$work"/fail*.json)
	for id in "${survivors[@]}"; do stop_node "$id"; done
}

# json_sum FIELD FILE...: the sum of FIELD over kaa-device --json summaries
json_sum() {
	local f=$1
	shift
	cat "$@" 2>/dev/null | python3 -c 'import sys, json
print(sum(json.loads(l).get(sys.argv[1], 0) for l in sys.stdin if l.strip().startswith("{")))' "$f" 2>/dev/null || echo -
}

# ---- b. rebalance ------------------------------------------------------------
# reap_crashed ID...: notes (in $crashed) nodes that exited on their own
crashed=
reap_crashed() {
	local id rc
	for id in "$@"; do
		if [ -z "${PID[$id]:-}" ] || alive "${PID[$id]}"; then continue; fi
		wait "${PID[$id]}" 2>/dev/null
		rc=$?
		forget "${PID[$id]}"
		PID[$id]=
		crashed="$crashed $id(exit $rc)"
		echo "cluster_bench: operations node $id exited on its own (status $rc); its log:" >&2
		tail -n 5 "$work/$id.log" >&2
	done
}

part_b() {
	local left=$NB c i=0 R0 changed=0 last='' cur
	echo
	echo "== b. rebalance: $NB devices on one node, two empty nodes join (threshold $THRESHOLD, interval 2 s, cooldown $COOLDOWN s)"
	while [ "$left" -gt 0 ]; do
		i=$((i + 1))
		c=$((left < PER_PROC ? left : PER_PROC))
		left=$((left - c))
		# the devices of a. (state-fail$i), registered already, only connect
		spawn_fleet "reb$i" "$c" --state-dir "$work/state-fail$i"
		wait_for 300000 sessions_sum_ge "$((NB - left))" o1 ||
			die "only $(sessions o1) sessions on o1"
	done
	wait_for 300000 established_ge "$NB" "$work"/reb*.err ||
		die "only $(established_count "$work"/reb*.err) of $NB devices established"
	init_o1=$(sessions o1)
	start_node o2 operations --drain-timeout 10
	start_node o3 operations --drain-timeout 10
	R0=$(now_ms)
	# settled: every device connected and the counts unchanged for 10 s,
	# longer than the leader's interval + cooldown (a further plan would
	# have started); then the spread is compared with the threshold
	rb_ms=-1
	while [ $(($(now_ms) - R0)) -lt 240000 ]; do
		cur="$(sessions o1) $(sessions o2) $(sessions o3)"
		if [ "$cur" != "$last" ]; then
			last=$cur
			changed=$(now_ms)
		elif [ "${cur%% *}" != "$NB" ] && [ $(($(now_ms) - changed)) -ge 10000 ] &&
			[ "$(sessions_sum o1 o2 o3)" = "$NB" ]; then
			rb_ms=$((changed - R0))
			break
		fi
		sleep 0.5
	done
	read -r f1 f2 f3 <<<"$cur"
	reap_crashed o1 o2 o3
	spread=$(python3 -c "s = [$f1, $f2, $f3]; print(round(max(s) / (sum(s) / 3) - 1, 3))")
	echo "sessions before: o1=$init_o1 o2=0 o3=0; after: o1=$f1 o2=$f2 o3=$f3 (settled after $rb_ms ms; busiest $spread above the mean, threshold $THRESHOLD)"
	stop_fleets
	read -r recon_b moved_twice <<<"$(python3 - "$work"/reb*.err <<PY
import sys
sys.path.insert(0, "$work")
from established import load
d = load(sys.argv[1:])
print(sum(len(v) - 1 for v in d.values()), sum(1 for v in d.values() if len(v) > 2))
PY
)"
	recon_b_json=$(json_sum reconnects "$work"/reb*.json)
	min_b=$((init_o1 > f1 ? init_o1 - f1 : 0))
	# o1 down to the threshold's ceiling (the two new nodes can take it)
	min_thr=$(python3 -c "import math; print(max(0, $init_o1 - math.floor($NB / 3 * (1 + $THRESHOLD))))")
}

# ---- c. event latency ----------------------------------------------------------
part_c() {
	local EVENTS=${BENCH_EVENTS:-500} INTERVAL=20 i tx
	local owner=(--owner bench-owner --owner-token bench-owner-token) rtt50_ms rtt99_ms
	local g nrx nev p50 p99 where
	echo
	echo "== c. event latency device -> device of one owner (3 operations nodes)"
	wait_for 30000 boot_lists 3 || die "bootstrap does not list the 3 operations nodes"
	# receivers first, one device per process, so each one's node is known;
	# 9 of them on 3 nodes: some share the sender's node, some do not
	for i in $(seq 1 9); do spawn_fleet "rx$i" 1 "${owner[@]}"; done
	wait_for 60000 established_ge 9 "$work"/rx*.err || die "receivers not established"
	attached() { [ "$(grep -l '^owner_attached' "$work"/rx*.err | wc -l)" -ge 9 ]; }
	wait_for 30000 attached || echo "not every receiver reports owner_attached" >&2
	spawn_fleet tx 1 "${owner[@]}" --send-event "$FQN" --event-interval-ms "$INTERVAL" \
		--event-count "$EVENTS" --until-acked --duration $((EVENTS * INTERVAL / 1000 + 30))
	tx=$SPAWNED
	wait_for 120000 dead "$tx" || die "the sender did not finish"
	# every receiver gets every event (broadcast to the owner's sinks)
	received() { [ "$(cat "$work"/rx*.err | grep -c '^event_received ')" -ge $((EVENTS * 9)) ]; }
	wait_for 30000 received ||
		echo "the receivers got $(cat "$work"/rx*.err | grep -c '^event_received ') of $((EVENTS * 9)) events" >&2
	stop_fleets
	# pooled per kind of receiver; latency is wall-clock ms (sent_ms in the
	# sender's body, the receive time on the receiver: one machine, one clock)
	python3 - "$work" "$((2000 / INTERVAL))" <<'PY' >"$work/events.txt"
import glob, sys
sys.path.insert(0, sys.argv[1])
from established import load
w, warm = sys.argv[1], int(sys.argv[2])
def node(f):
    v = list(load([f]).values())
    return v[0][-1][1] if v and v[0] else None
txn = node(w + "/tx.err")
lat = {"same": [], "other": []}
steady = {"same": [], "other": []}
nrx = {"same": 0, "other": 0}
for f in sorted(glob.glob(w + "/rx*.err")):
    g = "same" if node(f) == txn else "other"
    got = False
    with open(f, errors="replace") as fh:
        for line in fh:
            if not line.startswith("event_received ") or " latency_ms=" not in line:
                continue
            kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
            lat[g].append(int(kv["latency_ms"]))
            if int(kv.get("seq", 0)) > warm:
                steady[g].append(int(kv["latency_ms"]))
            got = True
    nrx[g] += got
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, len(v) * p // 100)] if v else -1
for g in ("same", "other"):
    print(g, nrx[g], len(lat[g]), pct(lat[g], 50), pct(lat[g], 99), pct(steady[g], 50),
          pct(steady[g], 99))
PY
	rtt50_ms=$(python3 -c "print(round($rtt_p50_us / 1000, 4))")
	rtt99_ms=$(python3 -c "print(round($rtt_p99_us / 1000, 4))")
	while read -r g nrx nev p50 p99 s50 s99; do
		where="receiver on the sender's node"
		[ "$g" = same ] || where="receiver on another node"
		if [ "$nrx" = 0 ]; then
			ev_rows+=("| event latency (ms), $where | - (no receiver there) | | | |")
			continue
		fi
		ev_rows+=("| event latency p50 (ms), $where ($nrx receivers, $nev events) | $p50 | $rtt50_ms | $(ratio "$p50" "$rtt50_ms") | internode RTT p50 (ms) |")
		ev_rows+=("| event latency p99 (ms), $where | $p99 | $rtt99_ms | $(ratio "$p99" "$rtt99_ms") | internode RTT p99 (ms) |")
		ev_rows+=("| the same without the first 2 s of events: p50 / p99 (ms) | $s50 / $s99 | $rtt50_ms / $rtt99_ms | $(ratio "$s50" "$rtt50_ms") / $(ratio "$s99" "$rtt99_ms") | internode RTT p50 / p99 (ms) |")
	done <"$work/events.txt"
}

# ---- the run -------------------------------------------------------------------
start_node ctl control,bootstrap --rebalance-interval 0 # a.: no rebalancing
wait_for 30000 http_is 200 "http://127.0.0.1:${CP[ctl]}/readyz" || die "control node not ready"
setup_app || die "REST set-up failed"
[[ $PARTS != *a* ]] || part_a
stop_node ctl

# b. and c.: a fresh registry (nothing left from a.), rebalancing on
CLUSTER=cb$$-rb
start_node ctl control,bootstrap --rebalance-threshold "$THRESHOLD" --rebalance-interval 2 \
	--rebalance-cooldown "$COOLDOWN"
start_node o1 operations --drain-timeout 10
wait_for 30000 http_is 200 "http://127.0.0.1:${CP[ctl]}/readyz" || die "control node not ready"
wait_for 30000 boot_lists 1 || die "bootstrap does not list o1"
if [[ $PARTS == *b* ]]; then
	part_b
else
	start_node o2 operations --drain-timeout 10
	start_node o3 operations --drain-timeout 10
fi
# nodes lost in b. come back for c. (their sessions are gone anyway)
for id in o1 o2 o3; do [ -n "${PID[$id]:-}" ] || start_node "$id" operations --drain-timeout 10; done
if [[ $PARTS != *c* ]]; then
	:
elif ! "$bin/kaa-device" --help 2>&1 | grep -q -- --send-event; then
	echo "event_latency: SKIP (kaa-device has no --send-event yet)"
else
	part_c
fi
for id in o1 o2 o3 ctl; do stop_node "$id"; done

echo
echo "| figure | kaa | baseline | ratio | baseline is |"
echo "| --- | ---: | ---: | ---: | --- |"
echo "| failover: kill -9 -> 99% of the killed node's $victims devices back (ms) | $fo_p99 | $((TTL * 1000)) | $(ratio "$fo_p99" "$((TTL * 1000))") | the lease TTL (detection) |"
echo "| failover: the same (ms) | $fo_p99 | $fr_p99 | $(ratio "$fo_p99" "$fr_p99") | $victims fresh devices: 99% connected and registered (ms) |"
echo "| failover: kill -9 -> 50% back (ms) | $fo_p50 | $fr_p50 | $(ratio "$fo_p50" "$fr_p50") | $victims fresh devices: 50% registered (ms) |"
echo "| failover: reconnects of the whole fleet | $recon_a | $victims | $(ratio "$recon_a" "$victims") | the killed node's devices |"
echo "| rebalance: reconnects until settled (devices' summaries) | $recon_b_json | $min_b | $(ratio "$recon_b_json" "$min_b") | moves the final counts need (o1: $init_o1 -> $f1; o2: $f2, o3: $f3) |"
echo "| rebalance: the same | $recon_b_json | $min_thr | $(ratio "$recon_b_json" "$min_thr") | fewest moves to within the threshold |"
echo "| rebalance: devices that moved more than once | $moved_twice | 0 | | |"
[ -z "$crashed" ] || echo "| rebalance: operations nodes that died during it |$crashed | none | | |"
echo "| rebalance: busiest node above the mean after it (fraction) | $spread | $THRESHOLD | $(ratio "$spread" "$THRESHOLD") | the threshold |"
echo "| rebalance: time from the nodes' start until the counts settled (ms) | $rb_ms | | | |"
for r in "${ev_rows[@]}"; do echo "$r"; done
echo "(registrations/s while filling a.: $fill_rate; reconnects in b. counted from the verbose logs: $recon_b)"
