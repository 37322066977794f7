#!/usr/bin/env bash
# Multi-node end to end (issue 6): on loopback, with the real etcd,
# PostgreSQL (metadata) and FerretDB (endpoint store) of e2e/run-tests.sh,
# two control, three operations and one bootstrap kaa-node processes
# (e2e/cluster_lib.sh) and kaa-device fleets. Each scenario asserts an
# outcome and prints what it measured as "measure NAME=VALUE" lines:
#   control leader kill -9   the standby leads within the lease TTL; REST
#                            (read and write) answers through the survivor
#   etcd stopped 20 s        sessions stay up (no reconnect), nodes
#                            re-register, watches resume (a configuration
#                            change after the restart reaches every device)
#   operations kill -9       its devices are back on the others within a
#                            bound (failover_s)
#   drain                    the drained node ends empty, its devices are on
#                            the others, the node then exits 0 at once
#   logs                     every log record a device got acknowledged is
#                            in the endpoint store (MongoDB), per device
#                            without gaps (covers the three scenarios above)
#   rebalance                45 devices piled on one node; after the plan
#                            the spread is within the threshold and no
#                            device was disconnected more than once
#   partition (ip netns)     an operations node in a network namespace cut
#                            off by taking its veth down: its registry record
#                            expires, its devices move to the other nodes;
#                            healed, it registers again; nothing lost.
#                            SKIP (not a failure) where netns is not allowed.
#   events                   devices of two owners spread over the three
#                            nodes: broadcast and unicast events reach
#                            exactly the owner's other devices, once, also
#                            across kill -9 of an operations node; an
#                            endpoint attached by another's access token is
#                            told so across nodes
# Figures on a 2-CPU machine, ASan build, lease TTL 3 s: leader take-over
# 2.2-3.2 s after kill -9; ops kill -9 to every device established elsewhere
# 1.7-1.9 s; drain of 23-29 sessions 2.5-4.1 s; re-registration 4-6 s after
# etcd is back; rebalance 60 moves for 90 devices (the minimum), 13 s from
# the control restart; partitioned node's record gone 2.6-3.3 s after the
# cut. Whole suite 80-125 s.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e/lib.sh
. "$here/lib.sh"
# shellcheck source=e2e/cluster_lib.sh
. "$here/cluster_lib.sh"

BINDIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
CL_NODE=$BINDIR/kaa-node
DEVICE=$BINDIR/kaa-device
work=$(mktemp -d "${TMPDIR:-/tmp}/test_cluster.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
JSON='Content-Type: application/json'
TTL=3           # --lease-ttl of every node
N=45            # devices per fleet
LOG_RATE=1      # log records per second per device of fleet A
REB_THRESHOLD=0.2
# kill -9 of an operations node -> every device established elsewhere:
# 1.3-1.9 s measured (4.5 s with the machine overloaded); the bound
# leaves room for a loaded CI machine
FAILOVER_BOUND_MS=15000
NETNS=
VETH=

finish() {
	cleanup_pids
	cl_finish
	[ -z "$NETNS" ] || ip netns del "$NETNS" 2>/dev/null
	[ -z "$VETH" ] || ip link del "$VETH" 2>/dev/null
	[ -n "${KAA_E2E_KEEP:-}" ] || rm -rf "$work"
}
trap finish EXIT

for v in KAA_TEST_ETCD KAA_TEST_PG KAA_TEST_MONGO KAA_HARNESS KAA_TEST_ETCD_DIR; do
	if [ -z "${!v:-}" ]; then
		fail "$v must be set (e2e/run-tests.sh sets it)"
		summary
		exit 1
	fi
done

measure() { echo "  measure $1"; }
secs_since() { # T0_MS: seconds with one decimal
	local d=$(($(now_ms) - $1))
	printf '%d.%01d' $((d / 1000)) $((d % 1000 / 100))
}

# ---- REST ------------------------------------------------------------------

URL=
api() { # USER:PASS METHOD PATH [BODY] -> CODE, RESP
	local args=(-s -o "$work/resp" -w '%{http_code}' -X "$2" --max-time 10 -u "$1")
	[ -n "${4:-}" ] && args+=(-H "$JSON" --data-binary "$4")
	CODE=$(curl "${args[@]}" "${EXTRA_CURL[@]}" "$URL$3")
	RESP=$(cat "$work/resp")
}
EXTRA_CURL=()
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
use_control() { URL=http://127.0.0.1:${CL_CP[$1]}/api/v1; }

# ---- fleets (kaa-device, --verbose lines in NAME.err, --json in NAME.json) --

declare -A FLEET_PID=()
fleet_start() { # NAME COUNT BOOTSTRAP_ID [LOG_RATE [kaa-device flags...]]
	spawn "$DEVICE" --bootstrap "127.0.0.1:${CL_BP[$3]}" --app-token "$TOKEN" --count "$2" \
		--state-dir "$work/$1" --log-rate "${4:-0}" --verbose --json "${@:5}" \
		>"$work/$1.json" 2>"$work/$1.err"
	FLEET_PID[$1]=$SPAWNED
}
fleet_stop() { # NAME: SIGTERM, the summary is printed
	kill -TERM "${FLEET_PID[$1]}" 2>/dev/null
	wait "${FLEET_PID[$1]}"
	FLEET_RC=$?
	cl_forget "${FLEET_PID[$1]}"
}
summary_field() { python3 -c 'import sys, json
print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
established_lines() { grep -c 'event=state state=established' "$work/$1.err" 2>/dev/null || echo 0; }
# devices_with NAME REGEX: distinct devices with a matching verbose line
devices_with() { grep -E -- "$2" "$work/$1.err" 2>/dev/null | sed -n 's/^device=\([0-9]*\) .*/\1/p' | sort -u | wc -l; }
# fleet_nodes NAME...: "D port" for each device of the fleets that is
# established now (its last state line), port = its node's operations port
fleet_nodes() {
	local f
	for f in "$@"; do
		sed -n 's/^device=\([0-9]*\) .*event=state state=\([a-z]*\)\( node=[^ ]*:\([0-9]*\)\)\{0,1\}.*/\1 \2 \4/p' \
			"$work/$f.err" | awk -v f="$f" '{st[$1] = $2; port[$1] = $3}
			END {for (d in st) if (st[d] == "established") print f "/" d, port[d]}'
	done
}
# devices_on NAME PORT...: devices of the fleet established now on one of the ports
devices_on() {
	local name=$1
	shift
	fleet_nodes "$name" | awk -v ports=" $* " 'index(ports, " " $2 " ") {n++} END {print n + 0}'
}
devices_on_are() { [ "$(devices_on "$1" "$2")" = "$3" ]; } # NAME "PORTS" N
# max_sessions NAME...: the most sessions any one device of the fleets started
max_sessions() {
	local f
	for f in "$@"; do grep 'event=state state=established' "$work/$f.err" | sed "s|^|$f/|"; done |
		awk '{n[$1]++} END {m = 0; for (d in n) if (n[d] > m) m = n[d]; print m}'
}

show_nodes() { # NAME: devices per current node port, and the ports of the nodes
	echo "  devices per port: $(fleet_nodes "$1" | awk '{n[$2]++} END {for (p in n) printf "%s:%d ", p, n[p]}')"
	echo "  ports: $(for id in "${OPS[@]}"; do printf '%s=%s ' "$id" "${CL_OP[$id]}"; done)"
}
sum_is() { # N ID...: the nodes' kaa_ops_sessions add up to N
	local n=$1
	shift
	[ "$(cl_sessions_sum "$@")" = "$n" ]
}
sessions_are() { [ "$(cl_sessions "$1")" = "$2" ]; }

OPS=(o1 o2 o3)
CTRL=(c1 c2)
CL_BOOT_ID=b1
ops_ports() {
	local id out=()
	for id in "$@"; do out+=("${CL_OP[$id]}"); done
	echo "${out[*]}"
}

# ---- set-up ----------------------------------------------------------------

echo "== set-up: 2 control, 3 operations, 1 bootstrap kaa-node on etcd, PostgreSQL, FerretDB"
t_suite=$(now_ms)
if ! cl_init "$work"; then
	fail "cannot create the PostgreSQL database"
	summary
	exit 1
fi
# control: rebalancing off until the rebalance scenario (it would move
# devices during the scenarios that count reconnects)
start_control() { cl_start "$1" control --rebalance-interval 0 "${@:2}"; }
start_ops() { cl_start "$1" operations --drain-timeout 10 "${@:2}"; }
start_control c1
start_control c2
cl_start b1 bootstrap
for id in "${OPS[@]}"; do start_ops "$id"; done
for id in c1 c2 b1 "${OPS[@]}"; do
	if wait_for 40000 cl_ready "$id"; then pass "$id ready (${CL_SVC[$id]})"; else
		fail "$id not ready: $(tail -3 "$work/$id.log")"
		summary
		exit 1
	fi
done
node_records() { [ "$(cl_etcd_count nodes/)" = "$1" ]; }
check "six node records in etcd" wait_for 10000 node_records 6
has_leader() { cl_leader "$@" >/dev/null; }
check "one control leader" wait_for 10000 has_leader c1 c2

ADMIN=$CL_ADMIN_USER:$CL_ADMIN_PASSWORD
use_control c1
api "$ADMIN" POST /tenants '{"name":"cluster"}'
must 201 "tenant"
T=$(jget id)
api "$ADMIN" POST "/tenants/$T/users" '{"name":"ta","role":"tenant-admin","password":"password-ta1"}'
must 201 "tenant admin"
api "$ADMIN" POST "/tenants/$T/users" '{"name":"td","role":"tenant-developer","password":"password-td1"}'
must 201 "tenant developer"
TA=ta:password-ta1
TD=td:password-td1
api $TA POST "/tenants/$T/applications" '{"name":"fleet","credentialsMode":"trustful"}'
must 201 "application"
APP=$(jget id)
TOKEN=$(jget applicationToken)
api $TD POST "/applications/$APP/schemas" \
	'{"kind":"configuration","schema":{"type":"record","name":"Cfg","fields":[{"name":"rate","type":"int","default":5}]}}'
must 201 "configuration schema"
api $TD POST "/applications/$APP/schemas" \
	'{"kind":"log","schema":{"type":"record","name":"Rec","fields":[{"name":"device","type":"int"},{"name":"seq","type":"int"}]}}'
must 201 "log schema"
api $TD POST "/applications/$APP/groups" '{"name":"all","weight":1}'
must 201 "catch-all group"
G=$(jget id)
api $TD POST "/applications/$APP/configurations" "{\"groupId\":$G,\"schemaVersion\":1,\"body\":{\"rate\":3}}"
must 201 "configuration rate 3"
CONF=$(jget id)
CONF_VER=$(jget version)
api $TA POST "/applications/$APP/log-appenders" '{"name":"store","settings":{"type":"endpoint-store"}}'
must 201 "endpoint-store log appender (MongoDB)"
three_listed() { [ "$(cl_boot_ids "$TOKEN")" = "o1 o2 o3" ]; }
check "bootstrap lists the three operations nodes" wait_for 20000 three_listed

# ---- control leader kill -9 --------------------------------------------------

echo "== kill -9 of the control leader: the standby leads within the lease TTL"
leader=$(cl_leader c1 c2)
if [ "$leader" = c1 ]; then standby=c2; else standby=c1; fi
echo "  leader $leader, standby $standby"
t0=$(now_ms)
cl_kill "$leader"
use_control "$standby"
api $TD GET "/applications/$APP/configurations/$CONF"
check "REST answers through $standby right after the kill, before any take-over ($CODE)" [ "$CODE" = 200 ]
leads() { [ "$(cl_leader "$1")" = "$1" ]; }
if wait_for $((TTL * 1000 + 5000)) leads "$standby"; then
	took=$(($(now_ms) - t0))
	measure "leader_takeover_ms=$took (lease TTL ${TTL} s)"
	check "the standby leads within the TTL + 1.5 s ($took ms)" [ "$took" -le $((TTL * 1000 + 1500)) ]
else
	fail "the standby did not take over"
fi
leader_key_is() { [ "$(etcd_value "$CL_ETCD" "/kaa/$CL_CLUSTER/control/leader")" = "$1" ]; }
check "the leader key names $standby" wait_for 3000 leader_key_is "$standby"
api $TD GET "/applications/$APP/configurations/$CONF"
check "REST read through the surviving replica ($CODE)" [ "$CODE" = 200 ]
api $TD POST "/applications/$APP/topics" "{\"name\":\"after-failover\",\"mandatory\":true,\"groupIds\":[$G]}"
check "REST write through the surviving replica ($CODE)" [ "$CODE" = 201 ]
start_control "$leader"
check "$leader back as a standby" wait_for 30000 cl_ready "$leader"
check "still one leader ($standby)" [ "$(cl_leader c1 c2)" = "$standby" ]

# ---- a fleet on the three operations nodes ------------------------------------

echo "== fleet A: $N devices through the bootstrap node"
fleet_start A "$N" b1 "$LOG_RATE"
if wait_for 60000 sum_is "$N" "${OPS[@]}"; then pass "$N sessions on the operations nodes"; else
	fail "sessions: $(cl_sessions_sum "${OPS[@]}") of $N"
fi
for id in "${OPS[@]}"; do echo "  $id: $(cl_sessions "$id") sessions"; done
all_configured() { [ "$(devices_with A "$1")" = "$N" ]; }
check "every device has configuration rate 3" wait_for 30000 all_configured 'json=\{"rate":3\}'
check "every device has had a log batch acknowledged" wait_for 30000 all_configured 'event=log_delivery .*ok=1'

# ---- etcd outage ----------------------------------------------------------------

echo "== etcd stopped for 20 s: sessions stay up, nodes re-register, watches resume"
before=$(established_lines A)
check "etcd stopped" "$KAA_HARNESS" stop etcd "$KAA_TEST_ETCD_DIR"
t0=$(now_ms)
down_ok=1
while [ $(($(now_ms) - t0)) -lt 20000 ]; do
	if ! sum_is "$N" "${OPS[@]}" || dead "${FLEET_PID[A]}"; then
		down_ok=0
		echo "  at $(secs_since "$t0") s: $(cl_sessions_sum "${OPS[@]}") sessions"
		break
	fi
	sleep 0.5 # sampling period of the 20 s outage, not a synchronisation
done
check "all $N sessions up throughout the 20 s outage" [ "$down_ok" = 1 ]
check "etcd restarted" "$KAA_HARNESS" restart etcd "$KAA_TEST_ETCD_DIR" >/dev/null
t0=$(now_ms)
all_registered() {
	local id
	for id in c1 c2 b1 "${OPS[@]}"; do cl_registered "$id" || return 1; done
}
if wait_for 30000 all_registered; then
	measure "reregister_s=$(secs_since "$t0") (all six nodes, after the etcd restart)"
	pass "every node registered again"
else
	fail "not every node registered again"
fi
check "a control leader again" wait_for 15000 has_leader c1 c2
use_control c1
EXTRA_CURL=(-H "If-Match: \"$CONF_VER\"")
api $TD PUT "/applications/$APP/configurations/$CONF" '{"body":{"rate":7}}'
EXTRA_CURL=()
check "configuration changed through REST after the restart ($CODE)" [ "$CODE" = 200 ]
t0=$(now_ms)
if wait_for 30000 all_configured 'json=\{"rate":7\}'; then
	measure "config_push_after_restart_s=$(secs_since "$t0")"
	pass "the change is pushed to all $N devices (watches resumed)"
else
	fail "the change reached $(devices_with A 'json=\{"rate":7\}') of $N devices"
fi
after=$(established_lines A)
check "no device reconnected ($before sessions started before, $after after)" [ "$before" = "$after" ]

# ---- kill -9 of an operations node ------------------------------------------------

echo "== kill -9 of an operations node holding devices"
victim=o1
for id in "${OPS[@]}"; do
	[ "$(cl_sessions "$id")" -gt "$(cl_sessions "$victim")" ] && victim=$id
done
held=$(cl_sessions "$victim")
others=()
for id in "${OPS[@]}"; do [ "$id" = "$victim" ] || others+=("$id"); done
echo "  killing $victim ($held sessions)"
t0=$(now_ms)
cl_kill "$victim"
if wait_for 60000 sum_is "$N" "${others[@]}"; then
	measure "failover_s=$(secs_since "$t0") ($held devices of a killed node back on ${others[*]})"
	pass "all $N devices are on ${others[*]}"
else
	fail "after kill -9: $(cl_sessions_sum "${others[@]}") of $N sessions on ${others[*]}"
fi
if wait_for 30000 devices_on_are A "$(ops_ports "${others[@]}")" "$N"; then
	took=$(($(now_ms) - t0))
	measure "failover_devices_s=$(secs_since "$t0") (every device established on ${others[*]}, as the devices see it)"
	pass "every device is established on a live node"
	check "within the bound of $((FAILOVER_BOUND_MS / 1000)) s" [ "$took" -le "$FAILOVER_BOUND_MS" ]
else
	fail "not every device is established on a live node"
	show_nodes A
fi
check "the killed node's record expires" wait_for $((TTL * 1000 + 5000)) \
	etcd_lacks "$CL_ETCD" "/kaa/$CL_CLUSTER/nodes/$victim"
start_ops "$victim"
check "$victim restarted" wait_for 30000 cl_ready "$victim"

# ---- drain ---------------------------------------------------------------------------

echo "== drain: /kaa/<cluster>/drain/<node> empties the node"
drained=o1
for id in "${OPS[@]}"; do
	[ "$(cl_sessions "$id")" -gt "$(cl_sessions "$drained")" ] && drained=$id
done
held=$(cl_sessions "$drained")
others=()
for id in "${OPS[@]}"; do [ "$id" = "$drained" ] || others+=("$id"); done
echo "  draining $drained ($held sessions)"
t0=$(now_ms)
cl_etcd_put "drain/$drained" "{\"deadline_ms\":$(($(now_ms) + 30000))}"
if wait_for 45000 sessions_are "$drained" 0; then
	measure "drain_s=$(secs_since "$t0") ($held sessions)"
	pass "$drained is empty"
else
	fail "$drained still holds $(cl_sessions "$drained") sessions"
fi
check "every device is on ${others[*]}" wait_for 30000 sum_is "$N" "${others[@]}"
if wait_for 30000 devices_on_are A "$(ops_ports "${others[@]}")" "$N"; then
	measure "drain_devices_s=$(secs_since "$t0") (every device established on ${others[*]}, as the devices see it)"
	pass "every device is established on ${others[*]}"
else
	fail "not every device is established on ${others[*]}"
	show_nodes A
fi
not_listed() { [[ " $(cl_boot_ids "$TOKEN") " != *" $drained "* ]]; }
check "bootstrap no longer offers $drained" wait_for 10000 not_listed
t0=$(now_ms)
cl_stop "$drained"
check "the empty drained node exits 0 on SIGTERM (rc $CL_RC) within 10 s ($(secs_since "$t0") s)" \
	test "$CL_RC" = 0 -a $(($(now_ms) - t0)) -lt 10000
cl_etcd_del "drain/$drained"
start_ops "$drained"
check "$drained restarted" wait_for 30000 cl_ready "$drained"

# ---- nothing lost -----------------------------------------------------------------------

echo "== logs: every acknowledged record is in the endpoint store"
fleet_stop A
check "fleet A stops with exit 0 ($FLEET_RC)" [ "$FLEET_RC" = 0 ]
acked=$(summary_field "$work/A.json" records_acked)
measure "fleet_A_reconnects=$(summary_field "$work/A.json" reconnects) records_acked=$acked"
read -r eps stored distinct gaps firstmax <<<"$(cl_store_logs "$APP")"
echo "  store: $eps endpoints, $stored records, $distinct distinct, $gaps gaps, first seq max $firstmax"
check "records were acknowledged" [ "${acked:-0}" -gt 0 ]
check "every acknowledged record is stored ($stored >= $acked)" [ "${stored:-0}" -ge "${acked:-1}" ]
check "no record stored twice" [ "$stored" = "$distinct" ]
check "no record missing between stored ones, every device from seq 0" [ "$gaps" = 0 -a "$firstmax" = 0 ]
check "records of all $N devices" [ "$eps" = "$N" ]

# ---- rebalance ---------------------------------------------------------------------------

# The control leader plans only when the busiest node is above the mean by
# the threshold and by at least 50 sessions (services/control/leader_jobs.c), so
# this scenario piles two fleets (2 x N) on one node.
NB=$((2 * N))
echo "== rebalance: $NB devices piled on o1, o2 and o3 empty, threshold $REB_THRESHOLD"
cl_stop o2
cl_stop o3
only_o1() { [ "$(cl_boot_ids "$TOKEN")" = o1 ]; }
check "bootstrap offers only o1" wait_for 10000 only_o1
fleet_start B1 "$N" b1
fleet_start B2 "$N" b1
check "$NB devices on o1" wait_for 60000 sessions_are o1 "$NB"
piled() { [ $(($(devices_on B1 "${CL_OP[o1]}") + $(devices_on B2 "${CL_OP[o1]}"))) = "$NB" ]; }
check "and established, as the devices see it" wait_for 30000 piled
start_ops o2
start_ops o3
check "o2 ready" wait_for 30000 cl_ready o2
check "o3 ready" wait_for 30000 cl_ready o3
# the leader starts rebalancing only now, with all three nodes registered
for id in "${CTRL[@]}"; do cl_stop "$id"; done
t0=$(now_ms)
for id in "${CTRL[@]}"; do
	cl_start "$id" control --rebalance-threshold "$REB_THRESHOLD" --rebalance-interval 2 \
		--rebalance-cooldown 5
done
check "a control leader with rebalancing" wait_for 30000 has_leader c1 c2
spread() { echo "o1 $(cl_sessions o1), o2 $(cl_sessions o2), o3 $(cl_sessions o3)"; }
balanced() {
	local a b c
	a=$(cl_sessions o1) b=$(cl_sessions o2) c=$(cl_sessions o3)
	[ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] && [ $((a + b + c)) = "$NB" ] || return 1
	python3 -c 'import sys
s = [int(x) for x in sys.argv[2:]]
sys.exit(0 if max(s) <= sum(s) / len(s) * (1 + float(sys.argv[1])) else 1)' "$REB_THRESHOLD" "$a" "$b" "$c"
}
if wait_for 60000 balanced; then
	measure "rebalance_s=$(secs_since "$t0") (control restart to a spread within the threshold)"
	pass "spread within the threshold: $(spread)"
else
	fail "not balanced: $(spread)"
fi
moved_devices() { echo $(($(devices_on B1 "$(ops_ports o2 o3)") + $(devices_on B2 "$(ops_ports o2 o3)"))); }
redirects_done() { # every redirect o1 sent has its device established elsewhere
	local r
	r=$(metric "http://127.0.0.1:${CL_OP[o1]}" kaa_ops_rebalance_redirects_total)
	[ -n "$r" ] && [ "$r" -gt 0 ] && [ "$(moved_devices)" -ge "$r" ]
}
check "the redirected devices are established on o2/o3" wait_for 45000 redirects_done
check "the spread stays within the threshold" wait_for 10000 balanced
echo "  spread: $(spread)"
redirects=$(metric "http://127.0.0.1:${CL_OP[o1]}" kaa_ops_rebalance_redirects_total)
moved=$(moved_devices)
fleet_stop B1
fleet_stop B2
reconnects=$(($(summary_field "$work/B1.json" reconnects) + $(summary_field "$work/B2.json" reconnects)))
minimum=$((NB - (NB + 2) / 3))
measure "rebalance_reconnects=$reconnects (redirects $redirects, devices moved $moved, minimum to reach the ceiling of the mean $minimum)"
most=$(max_sessions B1 B2)
check "no device was disconnected more than once (most sessions started by one device: $most)" \
	[ "$most" -le 2 ]
check "each moved device started exactly one more session" \
	[ $(($(established_lines B1) + $(established_lines B2))) = $((NB + moved)) ]

# ---- network partition (ip netns) --------------------------------------------------------

# Operations node o9 runs in a network namespace, reached over a veth pair:
# the devices and its peers dial its veth address; it reaches etcd,
# PostgreSQL and FerretDB (which listen on 127.0.0.1 only) through a TCP
# relay on the host end of the veth. Taking the host end down partitions
# o9 from everything; taking it up heals the partition.
relay() { # LISTEN_ADDR PORT...: LISTEN_ADDR:PORT -> 127.0.0.1:PORT, "ready" once listening
	python3 -u - "$@" <<'PY'
import asyncio, sys

async def pipe(r, w):
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            w.write(data)
            await w.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        w.close()

async def handle(port, r, w):
    try:
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        w.close()
        return
    await asyncio.gather(pipe(r, w2), pipe(r2, w))

async def main():
    servers = []
    for p in sys.argv[2:]:
        servers.append(await asyncio.start_server(
            lambda r, w, p=int(p): handle(p, r, w), sys.argv[1], int(p)))
    print("ready")
    await asyncio.Event().wait()

asyncio.run(main())
PY
}
url_port() { python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port)' "$1"; }
netns_probe() {
	local ns=kaa-probe-$$
	if ! ip netns add "$ns" 2>"$work/netns.err"; then
		NETNS_WHY="ip netns add: $(head -1 "$work/netns.err")"
		return 1
	fi
	ip netns del "$ns"
	if ! ip link add "kq$$a" type veth peer name "kq$$b" 2>"$work/netns.err"; then
		NETNS_WHY="ip link add type veth: $(head -1 "$work/netns.err")"
		return 1
	fi
	ip link del "kq$$a"
}
o9_metric() { metric "http://${CL_HOST[o9]}:${CL_OP[o9]}" "$1"; }
o9_inside_metric() { # the node's own view, from inside its namespace
	ip netns exec "$NETNS" curl -s --max-time 2 "http://${CL_HOST[o9]}:${CL_OP[o9]}/metrics" |
		awk -v m="$1" '$1 == m {print $2}'
}
o9_registered_inside() { [ "$(o9_inside_metric kaa_node_registered)" = "$1" ]; }
boot_is() { [ "$(cl_boot_ids "$TOKEN")" = "$1" ]; }
scenario_partition() {
	local sub host peer va vb rpid t0 on9 acked_p
	sub=$(($$ % 200 + 20))
	host=10.213.$sub.1 peer=10.213.$sub.2 va=kpa$$ vb=kpb$$
	NETNS=kaa-part-$$
	ip netns add "$NETNS" || return 1
	ip link add "$va" type veth peer name "$vb" || return 1
	VETH=$va
	ip link set "$vb" netns "$NETNS" &&
		ip addr add "$host/24" dev "$va" && ip link set "$va" up &&
		ip netns exec "$NETNS" ip addr add "$peer/24" dev "$vb" &&
		ip netns exec "$NETNS" ip link set "$vb" up &&
		ip netns exec "$NETNS" ip link set lo up || return 1
	spawn relay "$host" "$(url_port "$CL_ETCD")" "$(url_port "$KAA_TEST_PG")" \
		"${CL_MONGO_HOSTPORT##*:}" >"$work/relay.out" 2>"$work/relay.err"
	rpid=$SPAWNED
	check "relay to etcd, PostgreSQL and FerretDB on $host" wait_for 10000 grep -q ready "$work/relay.out"
	swap() { echo "${1//127.0.0.1/$host}"; }
	CL_AT_HOST=$peer CL_AT_WRAP="ip netns exec $NETNS" CL_AT_ETCD=$(swap "$CL_ETCD") \
		CL_AT_SQL=$(swap "$CL_PG_URL") CL_AT_NOSQL=$(swap "$CL_MONGO_URL") start_ops o9 \
		--idle-timeout 6 # its sessions of devices that left while cut off end 6 s after the heal
	check "o9 ready in namespace $NETNS at $peer" wait_for 40000 cl_ready o9
	cl_stop o2
	cl_stop o3
	check "bootstrap offers o1 and o9" wait_for 15000 boot_is "o1 o9"
	# short keepalive so the devices notice the cut link (SDK default: a
	# third of the server's idle timeout, then 10 s for an answer)
	fleet_start P "$N" b1 "$LOG_RATE" --keepalive-ms 2000 --liveness-timeout-ms 3000
	check "$N devices established on o1 and o9" wait_for 60000 devices_on_are P "$(ops_ports o1 o9)" "$N"
	on9=$(devices_on P "${CL_OP[o9]}")
	check "o9 holds devices ($on9)" [ "$on9" -gt 0 ]
	all_p_acked() { [ "$(devices_with P 'event=log_delivery .*ok=1')" = "$N" ]; }
	check "every device of the fleet has had logs acknowledged" wait_for 30000 all_p_acked

	echo "  partition: $va down"
	ip link set "$va" down
	t0=$(now_ms)
	if wait_for $((TTL * 1000 + 5000)) etcd_lacks "$CL_ETCD" "/kaa/$CL_CLUSTER/nodes/o9"; then
		measure "partition_record_expired_s=$(secs_since "$t0") (lease TTL ${TTL} s)"
		pass "the cluster drops o9's registry record"
	else
		fail "o9's record is still in etcd"
	fi
	check "bootstrap offers only o1" wait_for 5000 boot_is o1
	check "o9 knows it lost its registration" wait_for $((TTL * 1000 + 5000)) o9_registered_inside 0
	fleet_start Q 5 b1
	check "new devices during the partition all land on o1" \
		wait_for 30000 devices_on_are Q "${CL_OP[o1]}" 5
	if wait_for 20000 devices_on_are P "${CL_OP[o1]}" "$N"; then
		measure "partition_devices_moved_s=$(secs_since "$t0") ($on9 devices of o9 on o1; keepalive 2 s + liveness 3 s)"
		pass "the devices of the partitioned node move to o1 (SDK liveness check)"
	else
		fail "devices still on o9: $(devices_on P "${CL_OP[o9]}") of $on9"
	fi

	echo "  heal: $va up"
	ip link set "$va" up
	t0=$(now_ms)
	if wait_for 30000 cl_registered o9; then
		measure "partition_heal_reregister_s=$(secs_since "$t0")"
		pass "o9 registers again after the partition heals"
	else
		fail "o9 did not register again"
	fi
	check "bootstrap offers o1 and o9 again" wait_for 15000 boot_is "o1 o9"
	check "every device of the fleet is established on o1 or o9" \
		wait_for 60000 devices_on_are P "$(ops_ports o1 o9)" "$N"
	check "o1 and o9 sessions add up to the devices (no stale session)" \
		wait_for 60000 sum_is $((N + 5)) o1 o9
	fleet_stop Q
	fleet_stop P
	acked_p=$(summary_field "$work/P.json" records_acked)
	read -r eps stored distinct gaps firstmax <<<"$(cl_store_logs "$APP")"
	echo "  store: $eps endpoints, $stored records, $distinct distinct, $gaps gaps; acknowledged: A $acked, P $acked_p"
	check "every acknowledged record is stored ($stored >= $acked + $acked_p)" \
		[ "${stored:-0}" -ge $((acked + ${acked_p:-0})) ]
	check "no record stored twice, none missing between stored ones" \
		[ "$stored" = "$distinct" -a "$gaps" = 0 -a "$firstmax" = 0 ]
	cl_stop o9
	check "o9 exits 0 on SIGTERM ($CL_RC)" [ "$CL_RC" = 0 ]
	kill -TERM "$rpid"
	wait "$rpid" 2>/dev/null
	cl_forget "$rpid"
}
echo "== network partition of an operations node (ip netns, veth)"
if ! command -v ip >/dev/null; then
	echo "  SKIP: network partition: no ip command"
elif ! netns_probe; then
	echo "  SKIP: network partition: the sandbox does not allow network namespaces ($NETNS_WHY)"
elif ! scenario_partition; then
	fail "network partition: setting up the namespace failed"
fi

# ---- events between devices across nodes ---------------------------------------------------

# Devices of owner alice (fleet EA: 6 devices broadcasting; ED: 1 device
# sending unicast events to EA's device 0 and attaching EC's endpoint by its
# access token) and of owner bob (EB: 3 devices broadcasting), spread by
# bootstrap over the three operations nodes. Outcomes: events cross nodes;
# every event a source sent while a receiver of the same owner was
# connected (with a 3 s margin for locations to settle) reaches that
# receiver once, also across kill -9 of an operations node (the owners'
# homes move); unicast reaches only its target; no event crosses owners.
scenario_events() {
	local id
	echo "== events between devices of one owner across the operations nodes"
	for id in "${OPS[@]}"; do
		if ! cl_ready "$id"; then
			start_ops "$id"
			check "$id ready for the events scenario" wait_for 30000 cl_ready "$id"
		fi
	done
	use_control "$(cl_leader c1 c2 || echo c1)"
	api $TD POST "/tenants/$T/event-families" \
		'{"name":"home","classes":[{"fqn":"org.kaa.Ping","schema":{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"},{"name":"sent_ms","type":"long"}]}}]}'
	must 201 "event class family"
	local fam
	fam=$(jget id)
	api $TD POST "/applications/$APP/event-maps" "{\"familyId\":$fam,\"classes\":{\"org.kaa.Ping\":\"both\"}}"
	must 201 "event map: org.kaa.Ping source and sink"
	api $TA POST "/applications/$APP/user-verifiers" '{"name":"trust","settings":{"type":"trustful"}}'
	must 201 "trustful owner verifier"
	ev_fleet() { # NAME COUNT ARGS...
		local name=$1 count=$2
		shift 2
		spawn "$DEVICE" --bootstrap "127.0.0.1:${CL_BP[b1]}" --app-token "$TOKEN" --count "$count" \
			--state-dir "$work/$name" --verbose --json "$@" >"$work/$name.json" 2>"$work/$name.err"
		FLEET_PID[$name]=$SPAWNED
	}
	ev_fleet EC 1 --endpoint-token-prefix ec
	ev_fleet EA 6 --owner alice --owner-token any --send-event org.kaa.Ping --event-interval-ms 300
	ev_fleet EB 3 --owner bob --owner-token any --send-event org.kaa.Ping --event-interval-ms 300
	attached() { # NAME N: N distinct devices attached (a re-sent request may answer twice)
		[ "$(sed -n 's/^owner_attached device=\([0-9]*\) .*/\1/p' "$work/$1.err" 2>/dev/null |
			sort -u | wc -l)" -ge "$2" ]
	}
	check "alice's 6 devices attached" wait_for 60000 attached EA 6
	check "bob's 3 devices attached" wait_for 60000 attached EB 3
	local ea0
	ea0=$(sed -n 's/^registered device=0 key=\([^ ]*\)$/\1/p' "$work/EA.err")
	ev_fleet ED 1 --owner alice --owner-token any --attach-endpoint-token ec-0 \
		--send-event org.kaa.Ping --event-interval-ms 300 --event-target "$ea0"
	check "ED attached to alice" wait_for 60000 attached ED 1
	notified() { grep -q '^attach_notification device=0 owner=alice ' "$work/EC.err"; }
	check "EC attached by ED's endpoint token, across nodes, and told so" wait_for 30000 notified
	local t_ready
	t_ready=$(now_ms)
	# let events flow, then kill the node holding most of alice's devices
	received_some() { [ "$(grep -c '^event_received ' "$work/EA.err")" -ge 60 ]; }
	check "alice's devices receive events" wait_for 30000 received_some
	local victim=o1 best=-1 n
	for id in "${OPS[@]}"; do
		n=$(devices_on EA "${CL_OP[$id]}")
		if [ "$n" -gt "$best" ]; then best=$n victim=$id; fi
	done
	show_nodes EA
	local t_kill
	t_kill=$(now_ms)
	echo "  kill -9 $victim ($best of alice's devices)"
	cl_kill "$victim"
	local others=()
	for id in "${OPS[@]}"; do [ "$id" = "$victim" ] || others+=("$id"); done
	check "all 11 devices back on ${others[*]}" wait_for 60000 sum_is 11 "${others[@]}"
	measure "events_failover_s=$(secs_since "$t_kill")"
	local t_back
	t_back=$(now_ms)
	more() { [ $(($(now_ms) - t_back)) -ge 8000 ]; }
	wait_for 10000 more # eight more seconds of events after every device is back (a span, not a sync)
	local t_end
	t_end=$(now_ms)
	for f in EA EB EC ED; do fleet_stop "$f"; done
	python3 - "$work" "$t_ready" "$t_kill" "$t_end" "${CL_OP[$victim]}" >"$work/events.check" 2>&1 <<'EOF'
import collections, re, sys
work, t_ready, t_kill, t_end, victim_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
owner = {"EA": "alice", "ED": "alice", "EC": "alice", "EB": "bob"}
key, sent, recv, sessions, node_at = {}, collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(list), {}
for f in owner:
    for line in open(f"{work}/{f}.err"):
        m = re.match(r"registered device=(\d+) key=(\S+)$", line)
        if m: key[(f, int(m[1]))] = m[2]; continue
        m = re.match(r"event_sent ts_ms=(\d+) device=(\d+) seq=(\d+)", line)
        if m: sent[(f, int(m[2]))].append((int(m[1]), int(m[3]))); continue
        m = re.match(r"event_received ts_ms=(\d+) device=(\d+) source=(\S+) seq=(\d+)", line)
        if m: recv[(f, int(m[2]))].append((int(m[1]), m[3], int(m[4]))); continue
        m = re.match(r"device=(\d+) ts_ms=(\d+) event=state state=(\w+)(?: node=\S*:(\d+))?", line)
        if m:
            d = (f, int(m[1])); ts = int(m[2])
            if m[3] == "established": sessions[d].append([ts, None, m[4]])
            elif sessions[d] and sessions[d][-1][1] is None: sessions[d][-1][1] = ts
by_key = {v: k for k, v in key.items()}
ok = True
def bad(msg):
    global ok; ok = False; print("FAIL", msg)
def connected(d, a, b):  # one session of d spans [a, b]
    return any(s <= a and (e is None or e >= b) for s, e, _ in sessions[d])
def port_at(d, ts):
    p = None
    for s, e, port in sessions[d]:
        if s <= ts and (e is None or e >= ts): p = port
    return p
# 1. isolation and no duplicates delivered to the application
for r, evs in recv.items():
    seen = set()
    for ts, src, seq in evs:
        s = by_key.get(src)
        if s is None or owner[s[0]] != owner[r[0]]: bad(f"{r} received an event of {src} (another owner)")
        if (src, seq) in seen: bad(f"{r} got ({src}, {seq}) twice")
        seen.add((src, seq))
# 2. unicast: ED's events reach EA device 0 only
ed = key.get(("ED", 0)); ea0 = ("EA", 0)
for r, evs in recv.items():
    if r != ea0 and any(src == ed for _, src, _ in evs): bad(f"{r} received ED's unicast events")
# 3. completeness: every event sent while the receiver was connected (3 s margins) arrived
sources = [d for d in key if d[0] in ("EA", "EB", "ED")]
pairs = checked = 0
for s in sources:
    targets = [ea0] if s[0] == "ED" else [r for r in key if r != s and owner[r[0]] == owner[s[0]]]
    for r in targets:
        got = {seq for _, src, seq in recv[r] if src == key[s]}
        for ts, seq in sent[s]:
            if ts < t_ready or ts > t_end - 3000 or not connected(r, ts - 3000, t_end): continue
            checked += 1
            if seq not in got: bad(f"{s} seq {seq} (sent at {ts}) never reached {r}")
        pairs += 1
# 4. events crossed nodes before the kill
cross = sum(1 for r, evs in recv.items() for ts, src, _ in evs
            if ts < t_kill and by_key.get(src) and port_at(r, ts) and port_at(by_key[src], ts)
            and port_at(r, ts) != port_at(by_key[src], ts))
ports = {port_at(d, t_kill - 1) for d in key if d[0] == "EA"}
print(f"measure events_checked={checked} pairs={pairs} cross_node_receptions={cross} alice_nodes={len(ports)}")
if len(ports) < 2: bad(f"alice's devices were all on one node {ports}")
if cross == 0: bad("no event crossed nodes")
if checked < 200: bad(f"too few events checked ({checked})")
after = sum(1 for r, evs in recv.items() for ts, _, _ in evs if ts > t_kill + 1000)
print(f"measure events_received_after_kill={after}")
if after == 0: bad("no event after the kill")
sys.exit(0 if ok else 1)
EOF
	local rc=$?
	sed 's/^/  /' "$work/events.check" | head -40
	check "events: isolation, unicast, no duplicate, complete across kill -9 of $victim" [ "$rc" = 0 ]
	local lat
	lat=$(summary_field "$work/EA.json" event_latency_p50_ms)
	measure "event_latency_p50_ms=$lat p99_ms=$(summary_field "$work/EA.json" event_latency_p99_ms) (fleet EA, includes the failover)"
	check "no event refused" [ "$(summary_field "$work/EA.json" events_failed)" = 0 ] &&
		[ "$(summary_field "$work/EB.json" events_failed)" = 0 ]
	start_ops "$victim"
	check "$victim restarted" wait_for 30000 cl_ready "$victim"
}
scenario_events

# ---- shutdown ---------------------------------------------------------------------------

echo "== every node still running stops cleanly on SIGTERM"
for id in $(printf '%s\n' "${!CL_PID[@]}" | sort); do
	[ -n "${CL_PID[$id]}" ] || continue
	cl_stop "$id"
	check "$id exits 0 (sanitizers report at exit: $CL_RC)" [ "$CL_RC" = 0 ]
done

# ---- sanitizers ---------------------------------------------------------------------------

for f in "$work"/*.log "$work"/*.err; do
	[ -e "$f" ] || continue
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
		fail "sanitizer report in $(basename "$f")"
		grep -E -A30 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" | head -60
	fi
done
measure "suite_s=$(secs_since "$t_suite")"
summary
