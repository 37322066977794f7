#!/usr/bin/env bash
# Device sessions end to end (issue 5): a real kaa-node (standalone,
# SQLite) and kaa-device fleets on libkaa. The application and everything
# in it is created through the control REST API; the suite then checks
# that devices register, receive their configuration and a pushed change,
# receive notifications (including the ones missed while offline: once, in
# order), and that log records land in the JSON-lines file appender exactly
# once across a kill -9 of kaa-device in the middle of an upload and across
# a kaa-node restart.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BINDIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
NODE=$BINDIR/kaa-node
DEVICE=$BINDIR/kaa-device
work=$(mktemp -d "${TMPDIR:-/tmp}/test_device_sessions.XXXXXX")
trap 'cleanup_pids; [ -n "${KAA_E2E_KEEP:-}" ] || rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
JSON='Content-Type: application/json'

read -r CPORT BPORT OPORT IPORT <<<"$(free_ports 4)"
URL=http://127.0.0.1:$CPORT/api/v1
BOOT=127.0.0.1:$BPORT
ADMIN=root:rootpass123

port_open() { python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; }
start_node() {
	KAA_ADMIN_USER=root KAA_ADMIN_PASSWORD=rootpass123 spawn "$NODE" --node-id dev-e2e \
		--bind 127.0.0.1 --host 127.0.0.1 --control-port "$CPORT" --bootstrap-port "$BPORT" \
		--operations-port "$OPORT" --internode-port "$IPORT" --sql "sqlite:$work/kaa.db" \
		--nosql "sqlite:$work/endpoints.db" --appender-dir "$work/logs" --lease-ttl 2 "$@" \
		>>"$work/node.out" 2>>"$work/node.log"
	NODE_PID=$SPAWNED
	wait_for 20000 http_is 200 "http://127.0.0.1:$CPORT/readyz" &&
		wait_for 20000 port_open "$OPORT"
}

# api USER:PASS METHOD PATH [BODY] -> CODE, RESP; EXTRA_CURL adds headers
EXTRA_CURL=()
api() {
	local auth=$1 method=$2 path=$3 data=${4:-}
	local args=(-s -o "$work/resp" -w '%{http_code}' -X "$method" --max-time 10 -u "$auth")
	[ -n "$data" ] && args+=(-H "$JSON" --data-binary "$data")
	CODE=$(curl "${args[@]}" "${EXTRA_CURL[@]}" "$URL$path")
	RESP=$(cat "$work/resp")
}
jget() { python3 -c 'import sys, json
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True))' "$RESP" "$1"; }
must() { # must CODE description: stops the suite when set-up fails
	if [ "$CODE" = "$1" ]; then pass "$2"; else
		fail "$2 -> $CODE: $RESP"
		summary
		exit 1
	fi
}

# summary_field FILE NAME: a field of kaa-device's --json summary
summary_field() { python3 -c 'import sys, json
print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
field_is() { [ "$(summary_field "$1" "$2")" = "$3" ]; }
has_line() { grep -q -- "$2" "$1" 2>/dev/null; }
count_lines() { grep -c -- "$2" "$1" 2>/dev/null || true; }

# records_of ENDPOINT: "stored distinct min max" of the {seq} values the
# file appender holds for that endpoint ("distinct" counts (endpoint, seq)).
records_of() {
	python3 - "$LOGFILE" "$1" <<'PY'
import json, sys
seqs = []
try:
    with open(sys.argv[1]) as f:
        for line in f:
            r = json.loads(line)
            if r.get("endpoint") == sys.argv[2]:
                seqs.append(r["record"]["seq"])
except FileNotFoundError:
    pass
print(len(seqs), len(set(seqs)), min(seqs) if seqs else -1, max(seqs) if seqs else -1)
PY
}
endpoint_of() { sed -n 's/.*event=registered endpoint=\([^ ]*\).*/\1/p' "$1" | head -1; }

echo "== set-up: kaa-node and an application through the REST API"
mkdir -p "$work/logs"
if start_node; then pass "kaa-node standalone is up"; else
	fail "kaa-node did not start: $(tail -5 "$work/node.log")"
	summary
	exit 1
fi
api $ADMIN POST /tenants '{"name":"devices"}'
must 201 "tenant"
T=$(jget id)
api $ADMIN POST "/tenants/$T/users" '{"name":"ta","role":"tenant-admin","password":"password-ta1"}'
api $ADMIN POST "/tenants/$T/users" '{"name":"td","role":"tenant-developer","password":"password-td1"}'
TA=ta:password-ta1
TD=td:password-td1
api $TA POST "/tenants/$T/applications" '{"name":"fleet","credentialsMode":"trustful"}'
must 201 "trustful application"
APP=$(jget id)
TOKEN=$(jget applicationToken)
api $TD POST "/applications/$APP/schemas" \
	'{"kind":"configuration","schema":{"type":"record","name":"Cfg","fields":[{"name":"rate","type":"int","default":5}]}}'
must 201 "configuration schema"
api $TD POST "/applications/$APP/schemas" \
	'{"kind":"notification","schema":{"type":"record","name":"Note","fields":[{"name":"text","type":"string"}]}}'
must 201 "notification schema"
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
api $TD POST "/applications/$APP/topics" "{\"name\":\"alerts\",\"mandatory\":true,\"groupIds\":[$G]}"
must 201 "mandatory topic"
TOPIC=$(jget id)
api $TA POST "/applications/$APP/log-appenders" '{"name":"file","settings":{"type":"file","file":"records.jsonl"}}'
must 201 "file log appender"
LOGFILE=$work/logs/app-$APP/records.jsonl

echo "== kaa-device command line"
"$DEVICE" --bootstrap "$BOOT" >/dev/null 2>&1
check "missing --app-token: exit 2" [ $? = 2 ]
"$DEVICE" --bootstrap "$BOOT" --app-token x --count 0 >/dev/null 2>&1
check "--count 0: exit 2" [ $? = 2 ]
"$DEVICE" --bootstrap nocolon --app-token x --duration 1 >/dev/null 2>&1
rc=$?
check "bad bootstrap address refused (rc $rc)" [ "$rc" != 0 ]

echo "== a fleet registers, gets its configuration and uploads logs"
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --count 5 \
	--state-dir "$work/fleet" --log-total 20 --log-rate 40 --until-acked --duration 40 --json \
	>"$work/fleet.json" 2>"$work/fleet.err"
check "kaa-device exits 0" [ $? = 0 ]
check "5 devices registered" field_is "$work/fleet.json" registered 5
check "5 devices connected" field_is "$work/fleet.json" connected 5
check "5 configurations received" field_is "$work/fleet.json" configurations_received 5
check "100 records acknowledged" field_is "$work/fleet.json" records_acked 100
check "nothing left queued" field_is "$work/fleet.json" queued_records 0
check "no errors" field_is "$work/fleet.json" errors 0
check "the SDK prints nothing (no --verbose: empty stderr)" [ ! -s "$work/fleet.err" ]
timeout 30 "$DEVICE" --bootstrap 127.0.0.1:1 --app-token "$TOKEN" --state-dir "$work/nowhere" \
	--count 3 --duration 2 --json >"$work/nowhere.json" 2>"$work/nowhere.err"
check "no bootstrap server: errors counted, nothing printed" \
	[ "$(summary_field "$work/nowhere.json" errors)" -ge 3 -a ! -s "$work/nowhere.err" ]
check "every record is in the file appender" bash -c "[ \$(grep -c '\"app\":$APP' '$LOGFILE') = 100 ]"

echo "== the SDK example builds against the generated kaa_profile.h and connects"
api $TD POST "/applications/$APP/sdk-profiles" "{\"name\":\"v1\",\"schemaVersions\":{\"configuration\":1},\"bootstrap\":[\"$BOOT\"]}"
must 201 "SDK profile with this node's bootstrap address"
SP=$(jget id)
mkdir -p "$work/example"
CODE=$(curl -s -o "$work/sdk.tar" -w '%{http_code}' -u "$TD" "$URL/applications/$APP/sdk-profiles/$SP/sdk")
check "SDK archive downloaded ($CODE)" [ "$CODE" = 200 ]
tar -xf "$work/sdk.tar" -C "$work/example" kaa_profile.h 2>/dev/null
cp "$here/../sdk/examples/minimal_device.c" "$work/example/"
LIBKAA=$BINDIR/../lib/libkaa.a
SANFLAGS=
if nm "$LIBKAA" 2>/dev/null | grep __asan_ >/dev/null; then SANFLAGS=-fsanitize=address,undefined; fi
# shellcheck disable=SC2046
if cc -std=gnu11 -Wall -Werror $SANFLAGS -I"$here/../sdk/include" -I"$work/example" \
	-o "$work/example/minimal_device" "$work/example/minimal_device.c" "$LIBKAA" \
	$(pkg-config --libs libwebsockets libprotobuf-c openssl) -lm 2>"$work/example/cc.err"; then
	pass "minimal_device.c compiles with kaa_profile.h"
	spawn "$work/example/minimal_device" "$work/example/state" >"$work/example/out" 2>&1
	EX=$SPAWNED
	check "the example registers and prints its configuration" \
		wait_for 20000 has_line "$work/example/out" 'configuration: {"rate":'
	kill -TERM "$EX"
	wait "$EX"
	check "the example stops on SIGTERM with exit 0" [ $? = 0 ]
else
	fail "minimal_device.c does not compile: $(head -5 "$work/example/cc.err")"
fi

echo "== configuration push and notifications to a running device"
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/one" --verbose \
	--json >"$work/one.json" 2>"$work/one.err"
DEV=$SPAWNED
check "device receives configuration rate 3" wait_for 20000 has_line "$work/one.err" 'json={"rate":3}'
EXTRA_CURL=(-H "If-Match: \"$CONF_VER\"")
api $TD PUT "/applications/$APP/configurations/$CONF" '{"body":{"rate":9}}'
EXTRA_CURL=()
check "configuration updated through REST ($CODE)" [ "$CODE" = 200 ]
check "the change is pushed to the device" wait_for 20000 has_line "$work/one.err" 'json={"rate":9}'
api $TD POST "/applications/$APP/notifications" "{\"topicId\":$TOPIC,\"body\":{\"text\":\"live-1\"},\"ttlSeconds\":600}"
check "notification created ($CODE)" [ "$CODE" = 201 ]
check "the online device receives it" wait_for 20000 has_line "$work/one.err" 'body={"text":"live-1"}'
kill -TERM "$DEV"
wait "$DEV"
check "SIGTERM: clean exit 0" [ $? = 0 ]
check "SIGTERM: summary printed" field_is "$work/one.json" notifications_received 1
for n in 1 2 3; do
	api $TD POST "/applications/$APP/notifications" \
		"{\"topicId\":$TOPIC,\"body\":{\"text\":\"missed-$n\"},\"ttlSeconds\":600}"
done
check "three notifications while offline" [ "$CODE" = 201 ]
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/one" --verbose \
	>"$work/one2.err" 2>&1
DEV=$SPAWNED
check "missed notifications arrive after reconnect" \
	wait_for 20000 has_line "$work/one2.err" 'body={"text":"missed-3"}'
check "in order" python3 - "$work/one2.err" <<'PY'
import re, sys
bodies = re.findall(r'event=notification .*body=\{"text":"([^"]*)"\}', open(sys.argv[1]).read())
sys.exit(0 if bodies == ["missed-1", "missed-2", "missed-3"] else 1)
PY
check "the one seen before the restart is not delivered again" \
	[ "$(count_lines "$work/one2.err" 'live-1')" = 0 ]
kill -TERM "$DEV"
wait "$DEV"
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/one" --verbose \
	>"$work/one3.err" 2>&1
DEV=$SPAWNED
wait_for 20000 has_line "$work/one3.err" 'event=configuration\|event=state state=established' >/dev/null
api $TD POST "/applications/$APP/notifications" "{\"topicId\":$TOPIC,\"body\":{\"text\":\"marker\"},\"ttlSeconds\":600}"
check "third session receives a new notification" \
	wait_for 20000 has_line "$work/one3.err" 'body={"text":"marker"}'
check "third session: nothing delivered twice" [ "$(count_lines "$work/one3.err" 'missed-')" = 0 ]
kill -TERM "$DEV"
wait "$DEV"

echo "== optional topic: only the subscribed device receives it"
api $TD POST "/applications/$APP/topics" "{\"name\":\"news\",\"mandatory\":false,\"groupIds\":[$G]}"
must 201 "optional topic"
NEWS=$(jget id)
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/sub" --subscribe "$NEWS" \
	--verbose >"$work/sub.err" 2>&1
SUB=$SPAWNED
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/nosub" --verbose \
	>"$work/nosub.err" 2>&1
NOSUB=$SPAWNED
wait_for 20000 has_line "$work/nosub.err" "state=established" >/dev/null
# the Subscribe goes out right after HelloAck; post until the subscriber
# has one (a news item posted before it was subscribed is not for it)
news_arrived() {
	api $TD POST "/applications/$APP/notifications" \
		"{\"topicId\":$NEWS,\"body\":{\"text\":\"news\"},\"ttlSeconds\":600}"
	wait_for 500 has_line "$work/sub.err" "topic=$NEWS .*body={\"text\":\"news\"}"
}
check "subscribed device receives the optional topic" wait_for 20000 news_arrived
api $TD POST "/applications/$APP/notifications" "{\"topicId\":$TOPIC,\"body\":{\"text\":\"after-news\"},\"ttlSeconds\":600}"
check "unsubscribed device receives the mandatory topic" \
	wait_for 20000 has_line "$work/nosub.err" 'body={"text":"after-news"}'
check "unsubscribed device got no news" [ "$(count_lines "$work/nosub.err" '"text":"news"')" = 0 ]
kill -TERM "$SUB" "$NOSUB"
wait "$SUB" "$NOSUB"

echo "== the client profile decides the groups and so the configuration"
api $TD POST "/applications/$APP/groups" '{"name":"eu","weight":10,"filter":{"cp.region":"eu"}}'
must 201 "group eu with a profile filter"
GEU=$(jget id)
api $TD POST "/applications/$APP/configurations" "{\"groupId\":$GEU,\"schemaVersion\":1,\"body\":{\"rate\":42}}"
must 201 "configuration of group eu"
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/eu" \
	--profile '{"region":"eu"}' --log-total 1 --until-acked --duration 30 --verbose --json \
	>"$work/eu.json" 2>"$work/eu.err"
check "device with region eu gets the eu configuration" has_line "$work/eu.err" 'json={"rate":42}'
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/us" \
	--profile '{"region":"us"}' --log-total 1 --until-acked --duration 30 --verbose --json \
	>"$work/us.json" 2>"$work/us.err"
check "device with region us gets the catch-all configuration" has_line "$work/us.err" 'json={"rate":9}'
echo '{"region":"us"}' >"$work/profile.json"
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/mover-eu" \
	--profile-file "$work/profile.json" --verbose >"$work/mover-eu.err" 2>&1
PDEV=$SPAWNED
check "profile us: catch-all configuration" wait_for 20000 has_line "$work/mover-eu.err" 'json={"rate":9}'
echo '{"region":"eu"}' >"$work/profile.json"
kill -HUP "$PDEV"
check "profile changed to eu at runtime: the eu configuration is pushed" \
	wait_for 20000 has_line "$work/mover-eu.err" 'json={"rate":42}'
kill -TERM "$PDEV"
wait "$PDEV"
"$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/badprof" --profile '{"region":' \
	--duration 1 >/dev/null 2>&1
rc=$?
check "kaa-device refuses a profile that is not JSON (rc $rc)" [ "$rc" != 0 ]

echo "== provisioned mode: provisioned key accepted, unknown key refused, revoked key stops"
api $TA POST "/tenants/$T/applications" '{"name":"locked","credentialsMode":"provisioned"}'
must 201 "provisioned application"
TOKEN2=$(jget applicationToken)
APP2=$(jget id)
# the device's key pair made ahead of time, as a factory would
keyhash() { openssl pkey -in "$1" -pubout -outform DER | openssl dgst -sha256 -binary |
	base64 -w0 | tr '+/' '-_' | tr -d '='; }
for d in good unknown; do
	mkdir -p "$work/$d/dev-0"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$d/dev-0/key.pem" 2>/dev/null
done
GOODHASH=$(keyhash "$work/good/dev-0/key.pem")
PUB=$(openssl pkey -in "$work/good/dev-0/key.pem" -pubout -outform DER | base64 -w0)
api $TA POST "/applications/$APP2/credentials" "{\"endpointKeyHash\":\"$GOODHASH\",\"publicKey\":\"$PUB\",\"status\":\"provisioned\"}"
must 201 "credential provisioned"
CRED=$(jget id)
CRED_VER=$(jget version)
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN2" --state-dir "$work/good" \
	--log-total 1 --until-acked --duration 30 --verbose --json >"$work/good.json" 2>"$work/good.err"
check "provisioned device registers" field_is "$work/good.json" registered 1
check "with the key hash it was provisioned with" has_line "$work/good.err" "endpoint=$GOODHASH"
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN2" --state-dir "$work/unknown" \
	--duration 3 --verbose --json >"$work/unknown.json" 2>"$work/unknown.err"
check "unknown key is not registered" field_is "$work/unknown.json" registered 0
check "unknown key gets FORBIDDEN" has_line "$work/unknown.err" "event=error err=-9 code=5 "
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token nosuchtoken --state-dir "$work/badtoken" \
	--duration 3 --verbose --json >"$work/badtoken.json" 2>"$work/badtoken.err"
check "unknown application token gets UNAUTHENTICATED" has_line "$work/badtoken.err" "code=4 "
# revoking ends the live session: the device is connected when it happens
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN2" --state-dir "$work/good" \
	--duration 60 --verbose --json >"$work/live.json" 2>"$work/live.err"
LIVE=$SPAWNED
check "provisioned device connected again (proof of possession, kaa.v2)" \
	wait_for 20000 has_line "$work/live.err" "event=registered"
EXTRA_CURL=(-H "If-Match: \"$CRED_VER\"")
api $TA PUT "/applications/$APP2/credentials/$CRED" '{"status":"revoked"}'
EXTRA_CURL=()
check "credential revoked through REST ($CODE)" [ "$CODE" = 200 ]
check "the live session gets REVOKED within 5 s" wait_for 5000 has_line "$work/live.err" "code=6 "
gone() { ! kill -0 "$LIVE" 2>/dev/null; }
check "and kaa-device stops for good (exits long before --duration 60)" wait_for 10000 gone
wait "$LIVE" 2>/dev/null
t0=$SECONDS
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN2" --state-dir "$work/good" \
	--duration 30 --verbose --json >"$work/revoked.json" 2>"$work/revoked.err"
took=$((SECONDS - t0))
check "revoked device gets REVOKED" has_line "$work/revoked.err" "code=6 "
check "and stops for good: kaa-device ends long before --duration 30 (${took}s)" [ "$took" -lt 20 ]
check "revoked device did not register again" field_is "$work/revoked.json" registered 0

echo "== logs exactly once across kill -9 of kaa-device mid-upload"
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/crash" \
	--log-total 20000 --log-rate 20000 --verbose >"$work/crash1.err" 2>&1
DEV=$SPAWNED
at_least_lines() { [ "$(count_lines "$1" "$2")" -ge "$3" ]; }
check "uploading" wait_for 20000 at_least_lines "$work/crash1.err" 'event=log_delivery' 3
kill -KILL "$DEV"
wait "$DEV" 2>/dev/null
EP=$(endpoint_of "$work/crash1.err")
read -r before _ _ _ <<<"$(records_of "$EP")"
timeout 120 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/crash" \
	--until-acked --duration 100 --json >"$work/crash2.json" 2>"$work/crash2.err"
check "restarted device drains its queue" field_is "$work/crash2.json" queued_records 0
read -r stored distinct lo hi <<<"$(records_of "$EP")"
generated=$(cat "$work/crash/dev-0/seq" 2>/dev/null || echo 0)
echo "    killed with $before stored; now $stored stored, $distinct distinct, seq $lo..$hi, $generated generated"
check "records were stored before the kill and more after it" [ "$before" -gt 0 -a "$stored" -gt "$before" ]
check "no record stored twice" [ "$stored" = "$distinct" ]
check "no record lost (seq 0..max all present)" [ "$lo" = 0 -a $((hi + 1)) = "$stored" ]
check "every record generated before the kill's last checkpoint is stored" [ "$stored" -ge "$generated" ]

echo "== logs exactly once across a kaa-node restart"
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/restart" \
	--log-total 400 --log-rate 100 --until-acked --duration 100 --verbose --json \
	>"$work/restart.json" 2>"$work/restart.err"
DEV=$SPAWNED
check "device uploading" wait_for 20000 has_line "$work/restart.err" 'event=log_delivery'
kill -KILL "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
check "node restarted" start_node
check "device finishes after the restart" wait_for 90000 dead "$DEV"
wait "$DEV"
check "device reconnected" [ "$(summary_field "$work/restart.json" reconnects)" -ge 1 ]
check "all 400 acknowledged in the end" field_is "$work/restart.json" queued_records 0
EP=$(endpoint_of "$work/restart.err")
read -r stored distinct lo hi <<<"$(records_of "$EP")"
echo "    $stored stored, $distinct distinct, seq $lo..$hi"
check "400 records stored once each" [ "$stored" = 400 -a "$distinct" = 400 -a "$hi" = 399 ]

kill -TERM "$NODE_PID"
wait "$NODE_PID"

echo "== wss: the device verifies the node's certificate against --ca"
mkcert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/$1.key" \
		-out "$work/$1.crt" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		>/dev/null 2>&1
}
mkcert node
mkcert stranger
check "node restarted with a TLS certificate" start_node --tls-cert "$work/node.crt" --tls-key "$work/node.key"
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/tls" \
	--ca "$work/node.crt" --log-total 5 --until-acked --duration 30 --verbose --json \
	>"$work/tls.json" 2>"$work/tls.err"
check "wss with the node's CA: registered" field_is "$work/tls.json" registered 1
check "wss with the node's CA: logs acknowledged" field_is "$work/tls.json" records_acked 5
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/tls2" \
	--ca "$work/stranger.crt" --duration 3 --verbose --json >"$work/tls2.json" 2>"$work/tls2.err"
check "wss with another CA: certificate refused, not registered" field_is "$work/tls2.json" registered 0
check "wss with another CA: the failure is reported" has_line "$work/tls2.err" "event=error err=-4"
kill -TERM "$NODE_PID"
wait "$NODE_PID"

echo "== two operations nodes on etcd: a device moves when its node is killed"
if [ -z "${KAA_TEST_ETCD:-}" ] || [ -z "${KAA_TEST_PG:-}" ] || [ -z "${KAA_TEST_MONGO:-}" ]; then
	fail "KAA_TEST_ETCD, KAA_TEST_PG and KAA_TEST_MONGO must be set (e2e/run-tests.sh sets them)"
else
	CL=dev$$
	db=kaa_dev_$$
	psql "$KAA_TEST_PG" -qc "CREATE DATABASE $db" >/dev/null
	PGURL=${KAA_TEST_PG%/*}/$db
	MURL=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], p.query, "")))' "$KAA_TEST_MONGO" "$db")
	common=(--etcd "$KAA_TEST_ETCD" --cluster "$CL" --sql "$PGURL" --nosql "$MURL" --bind 127.0.0.1
		--host 127.0.0.1 --lease-ttl 2)
	read -r c_cp c_bp c_op c_ip a_cp a_bp a_op a_ip b_cp b_bp b_op b_ip <<<"$(free_ports 12)"
	KAA_ADMIN_USER=root KAA_ADMIN_PASSWORD=rootpass123 spawn "$NODE" "${common[@]}" --node-id c \
		--services control,bootstrap --control-port "$c_cp" --bootstrap-port "$c_bp" \
		--operations-port "$c_op" --internode-port "$c_ip" >"$work/c.out" 2>"$work/c.log"
	start_ops() { # start_ops a|b: sets PID_A or PID_B
		local n=$1 cp bp op ip
		if [ "$n" = a ]; then cp=$a_cp bp=$a_bp op=$a_op ip=$a_ip; else cp=$b_cp bp=$b_bp op=$b_op ip=$b_ip; fi
		spawn "$NODE" "${common[@]}" --node-id "$n" --services operations --control-port "$cp" \
			--bootstrap-port "$bp" --operations-port "$op" --internode-port "$ip" \
			--drain-timeout 10 --appender-dir "$work/logs-$n" >>"$work/$n.out" 2>>"$work/$n.log"
		if [ "$n" = a ]; then PID_A=$SPAWNED; else PID_B=$SPAWNED; fi
	}
	start_ops a
	start_ops b
	URL=http://127.0.0.1:$c_cp/api/v1
	check "control node ready" wait_for 30000 http_is 200 "http://127.0.0.1:$c_cp/readyz"
	api $ADMIN POST /tenants '{"name":"cluster"}'
	T3=$(jget id)
	api $ADMIN POST "/tenants/$T3/users" '{"name":"ta3","role":"tenant-admin","password":"password-ta3"}'
	api $ADMIN POST "/tenants/$T3/users" '{"name":"td3","role":"tenant-developer","password":"password-td3"}'
	api ta3:password-ta3 POST "/tenants/$T3/applications" '{"name":"moving","credentialsMode":"trustful"}'
	must 201 "application on the cluster"
	APP3=$(jget id)
	TOKEN3=$(jget applicationToken)
	api td3:password-td3 POST "/applications/$APP3/schemas" \
		'{"kind":"log","schema":{"type":"record","name":"Rec","fields":[{"name":"device","type":"int"},{"name":"seq","type":"int"}]}}'
	api ta3:password-ta3 POST "/applications/$APP3/log-appenders" '{"name":"store","settings":{"type":"endpoint-store"}}'
	must 201 "endpoint-store log appender (MongoDB)"
	two_nodes() { [ "$(curl -s --max-time 2 "http://127.0.0.1:$c_bp/v1/operations?application=$TOKEN3" |
		python3 -c 'import sys, json; print(len(json.load(sys.stdin)["nodes"]))' 2>/dev/null)" = 2 ]; }
	check "bootstrap lists both operations nodes" wait_for 30000 two_nodes
	spawn "$DEVICE" --bootstrap "127.0.0.1:$c_bp" --app-token "$TOKEN3" --state-dir "$work/mover" \
		--log-total 300 --log-rate 30 --until-acked --duration 100 --verbose --json \
		>"$work/mover.json" 2>"$work/mover.err"
	DEV=$SPAWNED
	check "device established on one node" wait_for 30000 has_line "$work/mover.err" "state=established node="
	first=$(sed -n 's/.*state=established node=127.0.0.1:\([0-9]*\).*/\1/p' "$work/mover.err" | head -1)
	if [ "$first" = "$a_op" ]; then victim=$PID_A vname=a other=$b_op; else victim=$PID_B vname=b other=$a_op; fi
	check "device uploading" wait_for 20000 has_line "$work/mover.err" 'event=log_delivery'
	kill -KILL "$victim"
	wait "$victim" 2>/dev/null
	check "device moves to the other node ($other)" \
		wait_for 30000 has_line "$work/mover.err" "state=established node=127.0.0.1:$other"
	check "device finishes its uploads" wait_for 90000 dead "$DEV"
	wait "$DEV"
	check "all 300 records acknowledged once" field_is "$work/mover.json" records_acked 300
	check "nothing left queued" field_is "$work/mover.json" queued_records 0
	check "one reconnect at least" [ "$(summary_field "$work/mover.json" reconnects)" -ge 1 ]

	echo "== draining node: the device follows the Redirect to the other node"
	start_ops "$vname"
	check "killed node back, bootstrap lists both again" wait_for 30000 two_nodes
	spawn "$DEVICE" --bootstrap "127.0.0.1:$c_bp" --app-token "$TOKEN3" --state-dir "$work/drainer" \
		--log-rate 20 --duration 60 --verbose --json >"$work/drainer.json" 2>"$work/drainer.err"
	DEV=$SPAWNED
	check "device established" wait_for 30000 has_line "$work/drainer.err" "state=established node="
	first=$(sed -n 's/.*state=established node=127.0.0.1:\([0-9]*\).*/\1/p' "$work/drainer.err" | head -1)
	if [ "$first" = "$a_op" ]; then victim=$PID_A other=$b_op; else victim=$PID_B other=$a_op; fi
	kill -TERM "$victim"
	check "redirected to the other node ($other)" \
		wait_for 30000 has_line "$work/drainer.err" "state=established node=127.0.0.1:$other"
	check "drained node exits" wait_for 30000 dead "$victim"
	wait "$victim"
	rc=$?
	check "drained node exit status 0 ($rc)" [ "$rc" = 0 ]
	check "the move cost no failed connection (Redirect honoured)" \
		[ "$(count_lines "$work/drainer.err" 'event=error')" = 0 ]
	kill -TERM "$DEV"
	wait "$DEV"
	check "device stops cleanly" field_is "$work/drainer.json" errors 0
	cleanup_pids
	E2E_PIDS=()
	psql "$KAA_TEST_PG" -qc "DROP DATABASE $db" >/dev/null 2>&1
fi

summary
