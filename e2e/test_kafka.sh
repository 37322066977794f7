#!/usr/bin/env bash
# The Kafka log appender end to end (issue 12) against a real broker: Apache
# Kafka 4 in KRaft mode (one node, pinned release from Maven Central, run by
# the harness: e2e/harness/harness.sh start kafka), a standalone kaa-node
# whose application has a Kafka appender configured through the REST API,
# and kaa-device fleets uploading log records. The topic is read back with
# tests/tools/kafka_consume (librdkafka). Checks:
#   - REST validation of the settings, the SASL password write-only;
#   - every acknowledged record is in the topic once, one endpoint's records
#     in one partition in their order, with the kaa.* headers;
#   - the broker stopped for 20 s during an upload, then restarted: the
#     devices' batches wait (or are retried) and every acknowledged record
#     is in the topic exactly once;
#   - kill -9 of kaa-node mid-upload: no acknowledged record is lost (a
#     batch that was in Kafka but not yet acknowledged may appear twice:
#     the appender's documented guarantee);
#   - TLS to the broker's SSL listener, verified against the CA given in
#     ssl_ca_pem; another CA acknowledges nothing;
#   - SASL PLAIN to the broker's SASL listener; a wrong password
#     acknowledges nothing. (SCRAM is passed to librdkafka the same way, but
#     librdkafka < 2.6.1 - Debian 12 has 2.0.2 - sends a SCRAM nonce that
#     Kafka 4.x refuses as "invalid credentials", confluentinc/librdkafka#4895;
#     see docs/appenders.md.)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BINDIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
NODE=$BINDIR/kaa-node
DEVICE=$BINDIR/kaa-device
CONSUME=$BINDIR/../tests/tools/kafka_consume
HARNESS=${KAA_HARNESS:-$here/harness/harness.sh}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_kafka.XXXXXX")
cleanup() {
	cleanup_pids
	"$HARNESS" stop kafka "$work/kafka" >/dev/null 2>&1 || true
	[ -n "${KAA_E2E_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
JSON='Content-Type: application/json'

if [ ! -x "$CONSUME" ]; then
	fail "$CONSUME is not built (make test-bins)"
	summary
	exit 1
fi

echo "== Kafka (KRaft) from the harness"
"$here/tools/kafka/fetch.sh" >/dev/null || { fail "fetching Kafka failed"; summary; exit 1; }
if out=$("$HARNESS" start kafka "$work/kafka"); then
	eval "$out"
	pass "Kafka $("$here/tools/kafka/fetch.sh" version) is up at $KAA_TEST_KAFKA"
else
	fail "Kafka did not start"
	summary
	exit 1
fi

read -r CPORT BPORT OPORT IPORT <<<"$(free_ports 4)"
URL=http://127.0.0.1:$CPORT/api/v1
BOOT=127.0.0.1:$BPORT
ADMIN=root:rootpass123

port_open() { python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; }
start_node() {
	KAA_ADMIN_USER=root KAA_ADMIN_PASSWORD=rootpass123 spawn "$NODE" --node-id kafka-e2e \
		--bind 127.0.0.1 --host 127.0.0.1 --control-port "$CPORT" --bootstrap-port "$BPORT" \
		--operations-port "$OPORT" --internode-port "$IPORT" --sql "sqlite:$work/kaa.db" \
		--nosql "sqlite:$work/endpoints.db" --appender-dir "$work/logs" --lease-ttl 2 \
		>>"$work/node.out" 2>>"$work/node.log"
	NODE_PID=$SPAWNED
	wait_for 20000 http_is 200 "http://127.0.0.1:$CPORT/readyz" &&
		wait_for 20000 port_open "$OPORT"
}

api() { # api USER:PASS METHOD PATH [BODY] -> CODE, RESP
	local auth=$1 method=$2 path=$3 data=${4:-}
	local args=(-s -o "$work/resp" -w '%{http_code}' -X "$method" --max-time 10 -u "$auth")
	[ -n "$data" ] && args+=(-H "$JSON" --data-binary "$data")
	CODE=$(curl "${args[@]}" "$URL$path")
	RESP=$(cat "$work/resp")
}
jget() { python3 -c 'import sys, json
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True))' "$RESP" "$1"; }
must() {
	if [ "$CODE" = "$1" ]; then pass "$2"; else
		fail "$2 -> $CODE: $RESP"
		summary
		exit 1
	fi
}
summary_field() { python3 -c 'import sys, json
print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
field_is() { [ "$(summary_field "$1" "$2")" = "$3" ]; }
has_line() { grep -q -- "$2" "$1" 2>/dev/null; }
count_lines() { grep -c -- "$2" "$1" 2>/dev/null || true; }
at_least_lines() { [ "$(count_lines "$1" "$2")" -ge "$3" ]; }

# read_topic TOPIC [consumer args] > FILE: the whole topic, one line per record
read_topic() {
	local t=$1
	shift
	"$CONSUME" --bootstrap "$KAA_TEST_KAFKA" --topic "$t" --timeout-ms 30000 "$@"
}

# analyse FILE: per endpoint (Kafka key): one partition, the seq order is the
# offset order (first occurrences), the kaa.* headers; prints
# "records distinct endpoints partitions_ok order_ok headers_ok"
analyse() {
	python3 - "$@" <<'PY'
import collections, json, os, sys
lines = open(sys.argv[1]).read().splitlines()
by_key = collections.defaultdict(list)
headers_ok = True
for ln in lines:
    part, off, key, hdrs, val = ln.split("\t", 4)
    rec = json.loads(val)
    h = dict(kv.split("=", 1) for kv in hdrs.split(",")) if hdrs else {}
    if h.get("kaa.endpoint") != key or "kaa.batch" not in h or "kaa.index" not in h \
            or h.get("kaa.schema_version") != "1":
        headers_ok = False
    by_key[key].append((int(part), int(off), rec["seq"]))
total = sum(len(v) for v in by_key.values())
distinct = sum(len(set(s for _, _, s in v)) for v in by_key.values())
parts_ok = all(len(set(p for p, _, _ in v)) == 1 for v in by_key.values())
order_ok = True
for v in by_key.values():
    seqs = [s for _, _, s in sorted(v, key=lambda x: x[1])]
    firsts = []
    for s in seqs:                       # first occurrence of each seq
        if s not in firsts:
            firsts.append(s)
    if firsts != sorted(firsts):
        order_ok = False
print(total, distinct, len(by_key), int(parts_ok), int(order_ok), int(headers_ok))
PY
}
# records_of FILE KEY: "count distinct max" of the seq values of one key
records_of() {
	python3 - "$1" "$2" <<'PY'
import json, sys
seqs = []
for ln in open(sys.argv[1]).read().splitlines():
    part, off, key, hdrs, val = ln.split("\t", 4)
    if key == sys.argv[2]:
        seqs.append(json.loads(val)["seq"])
print(len(seqs), len(set(seqs)), max(seqs) if seqs else -1)
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
api $ADMIN POST /tenants '{"name":"kafka"}'
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
	'{"kind":"log","schema":{"type":"record","name":"Rec","fields":[{"name":"device","type":"int"},{"name":"seq","type":"int"}]}}'
must 201 "log schema"

echo "== settings are validated by the REST API"
for bad in '{"type":"kafka"}' \
	'{"type":"kafka","bootstrap_servers":"127.0.0.1"}' \
	'{"type":"kafka","bootstrap_servers":"127.0.0.1:9092","topic":"a b"}' \
	'{"type":"kafka","bootstrap_servers":"127.0.0.1:9092","compression":"brotli"}' \
	'{"type":"kafka","bootstrap_servers":"127.0.0.1:9092","security_protocol":"sasl_plaintext","sasl_mechanism":"PLAIN"}' \
	'{"type":"kafka","bootstrap_servers":"127.0.0.1:9092","acks":"1"}'; do
	api $TA POST "/applications/$APP/log-appenders" "{\"name\":\"bad\",\"settings\":$bad}"
	check "refused with 400: $bad" [ "$CODE" = 400 ]
done

TOPIC=kaa-e2e-$TOKEN
api $TA POST "/applications/$APP/log-appenders" \
	"{\"name\":\"kafka\",\"settings\":{\"type\":\"kafka\",\"bootstrap_servers\":\"$KAA_TEST_KAFKA\",\"topic\":\"kaa-e2e-{app_token}\",\"linger_ms\":2,\"delivery_timeout_ms\":600000}}"
must 201 "Kafka log appender"
KAFKA_APPENDER=$(jget id)

echo "== a fleet uploads: every record once, in order per endpoint, with headers"
timeout 120 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --count 4 \
	--state-dir "$work/fleet" --log-total 50 --log-rate 100 --until-acked --duration 90 --json \
	>"$work/fleet.json" 2>"$work/fleet.err"
check "kaa-device exits 0" [ $? = 0 ]
check "200 records acknowledged" field_is "$work/fleet.json" records_acked 200
check "nothing left queued" field_is "$work/fleet.json" queued_records 0
if read_topic "$TOPIC" >"$work/t1.txt" 2>"$work/t1.err"; then
	pass "topic $TOPIC read back"
else
	fail "reading $TOPIC: $(tail -3 "$work/t1.err")"
fi
read -r total distinct eps parts order hdrs <<<"$(analyse "$work/t1.txt")"
echo "    $total records, $distinct distinct, $eps endpoints"
check "200 records in the topic, each once" [ "$total" = 200 -a "$distinct" = 200 ]
check "4 endpoints (keys)" [ "$eps" = 4 ]
check "one endpoint's records are in one partition" [ "$parts" = 1 ]
check "in their order" [ "$order" = 1 ]
check "kaa.* headers on every record" [ "$hdrs" = 1 ]
m=$(curl -s --max-time 2 "http://127.0.0.1:$OPORT/metrics" | grep "kaa_log_appender_records_total{.*appender=\"$KAFKA_APPENDER\"" | awk '{print $2}')
check "per-appender metric: 200 records confirmed (got ${m:-none})" [ "${m:-0}" = 200 ]

echo "== broker stopped for 20 s during an upload, then restarted"
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/outage" \
	--log-total 600 --log-rate 20 --until-acked --duration 200 --verbose --json \
	>"$work/outage.json" 2>"$work/outage.err"
DEV=$SPAWNED
check "uploading" wait_for 20000 at_least_lines "$work/outage.err" 'event=log_delivery' 2
t0=$(now_ms)
if "$HARNESS" stop kafka "$work/kafka" >/dev/null 2>&1; then pass "broker stopped"; else fail "broker stop"; fi
acked_at_stop=$(count_lines "$work/outage.err" 'event=log_delivery')
# the outage itself is the test's subject: the broker stays down for 20 s
while [ $(($(now_ms) - t0)) -lt 20000 ]; do
	alive "$DEV" || break
	sleep 0.5
done
acked_down=$(($(count_lines "$work/outage.err" 'event=log_delivery') - acked_at_stop))
check "nothing acknowledged while the broker is down (got $acked_down deliveries)" [ "$acked_down" -le 1 ]
if "$HARNESS" restart kafka "$work/kafka" >/dev/null 2>&1; then pass "broker restarted"; else fail "broker restart"; fi
check "the device finishes after the restart" wait_for 180000 dead "$DEV"
wait "$DEV"
check "all 600 acknowledged" field_is "$work/outage.json" queued_records 0
EP=$(endpoint_of "$work/outage.err")
read_topic "$TOPIC" >"$work/t2.txt" 2>"$work/t2.err" || fail "reading $TOPIC: $(tail -3 "$work/t2.err")"
read -r n d hi <<<"$(records_of "$work/t2.txt" "$EP")"
echo "    endpoint $EP: $n records, $d distinct, max seq $hi"
check "every acknowledged record is in the topic exactly once (600 = $n = $d)" [ "$n" = 600 -a "$d" = 600 -a "$hi" = 599 ]
read -r total distinct eps parts order hdrs <<<"$(analyse "$work/t2.txt")"
check "still one partition per endpoint, in order" [ "$parts" = 1 -a "$order" = 1 ]

echo "== kill -9 of kaa-node mid-upload loses no acknowledged record"
spawn "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --state-dir "$work/crash" \
	--log-total 400 --log-rate 100 --until-acked --duration 150 --verbose --json \
	>"$work/crash.json" 2>"$work/crash.err"
DEV=$SPAWNED
check "device uploading" wait_for 20000 at_least_lines "$work/crash.err" 'event=log_delivery' 3
kill -KILL "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
check "node restarted" start_node
check "device finishes after the restart" wait_for 120000 dead "$DEV"
wait "$DEV"
check "device reconnected" [ "$(summary_field "$work/crash.json" reconnects)" -ge 1 ]
check "all 400 acknowledged in the end" field_is "$work/crash.json" queued_records 0
EP=$(endpoint_of "$work/crash.err")
read_topic "$TOPIC" >"$work/t3.txt" 2>"$work/t3.err" || fail "reading $TOPIC: $(tail -3 "$work/t3.err")"
read -r n d hi <<<"$(records_of "$work/t3.txt" "$EP")"
echo "    endpoint $EP: $n records, $d distinct, max seq $hi ($((n - d)) duplicates of unacknowledged batches)"
check "no record lost: seq 0..399 all present" [ "$d" = 400 -a "$hi" = 399 ]

echo "== SASL PLAIN on the broker's SASL listener"
api $TA POST "/tenants/$T/applications" '{"name":"sasl","credentialsMode":"trustful"}'
must 201 "second application"
APP2=$(jget id)
TOKEN2=$(jget applicationToken)
api $TD POST "/applications/$APP2/schemas" \
	'{"kind":"log","schema":{"type":"record","name":"Rec","fields":[{"name":"device","type":"int"},{"name":"seq","type":"int"}]}}'
api $TA POST "/applications/$APP2/log-appenders" \
	"{\"name\":\"kafka-sasl\",\"settings\":{\"type\":\"kafka\",\"bootstrap_servers\":\"$KAA_TEST_KAFKA_SASL\",\"topic\":\"sasl-{app_token}-v{schema_version}\",\"security_protocol\":\"sasl_plaintext\",\"sasl_mechanism\":\"PLAIN\",\"sasl_username\":\"$KAA_TEST_KAFKA_USER\",\"sasl_password\":\"$KAA_TEST_KAFKA_PASSWORD\",\"compression\":\"lz4\"}}"
must 201 "Kafka appender with SASL PLAIN"
SASL_ID=$(jget id)
check "the password is not in the answer" bash -c "! grep -q -- '$KAA_TEST_KAFKA_PASSWORD' '$work/resp'"
api $TA GET "/applications/$APP2/log-appenders/$SASL_ID"
check "GET does not show the password" bash -c "[ '$CODE' = 200 ] && ! grep -q -- '$KAA_TEST_KAFKA_PASSWORD' '$work/resp'"
timeout 90 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN2" --state-dir "$work/sasl" \
	--log-total 30 --log-rate 100 --until-acked --duration 60 --json >"$work/sasl.json" 2>"$work/sasl.err"
check "30 records acknowledged over SASL" field_is "$work/sasl.json" records_acked 30
KAA_TEST_KAFKA=$KAA_TEST_KAFKA_SASL read_topic "sasl-$TOKEN2-v1" --sasl-mechanism PLAIN \
	--user "$KAA_TEST_KAFKA_USER" --password "$KAA_TEST_KAFKA_PASSWORD" >"$work/t4.txt" 2>"$work/t4.err" ||
	fail "reading sasl-$TOKEN2-v1: $(tail -3 "$work/t4.err")"
read -r total distinct _ _ _ _ <<<"$(analyse "$work/t4.txt")"
check "30 records in the topic (schema version in its name), each once" [ "$total" = 30 -a "$distinct" = 30 ]

echo "== a wrong SASL password acknowledges nothing"
api $TA POST "/tenants/$T/applications" '{"name":"wrongpw","credentialsMode":"trustful"}'
APP3=$(jget id)
TOKEN3=$(jget applicationToken)
api $TD POST "/applications/$APP3/schemas" \
	'{"kind":"log","schema":{"type":"record","name":"Rec","fields":[{"name":"device","type":"int"},{"name":"seq","type":"int"}]}}'
api $TA POST "/applications/$APP3/log-appenders" \
	"{\"name\":\"kafka-bad\",\"settings\":{\"type\":\"kafka\",\"bootstrap_servers\":\"$KAA_TEST_KAFKA_SASL\",\"security_protocol\":\"sasl_plaintext\",\"sasl_mechanism\":\"PLAIN\",\"sasl_username\":\"$KAA_TEST_KAFKA_USER\",\"sasl_password\":\"wrong\",\"delivery_timeout_ms\":10000}}"
must 201 "appender with a wrong password"
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN3" --state-dir "$work/wrong" \
	--log-total 5 --log-rate 100 --duration 15 --json >"$work/wrong.json" 2>"$work/wrong.err"
check "nothing acknowledged" field_is "$work/wrong.json" records_acked 0
check "the node logs the authentication failure" has_line "$work/node.log" 'kafka_appender.*\(SASL\|uthenticat\)'

echo "== TLS: the broker's certificate verified against ssl_ca_pem"
# new_app NAME SETTINGS_JSON: an application with the log schema and one
# Kafka appender; sets APPX, TOKENX
new_app() {
	api $TA POST "/tenants/$T/applications" "{\"name\":\"$1\",\"credentialsMode\":\"trustful\"}"
	APPX=$(jget id)
	TOKENX=$(jget applicationToken)
	api $TD POST "/applications/$APPX/schemas" \
		'{"kind":"log","schema":{"type":"record","name":"Rec","fields":[{"name":"device","type":"int"},{"name":"seq","type":"int"}]}}'
	api $TA POST "/applications/$APPX/log-appenders" "{\"name\":\"$1\",\"settings\":$2}"
}
tls_settings() { # CA_FILE -> settings JSON with that CA
	python3 - "$KAA_TEST_KAFKA_SSL" "$1" <<'PY'
import json, sys
print(json.dumps({"type": "kafka", "bootstrap_servers": sys.argv[1], "topic": "tls-{app_token}",
                  "security_protocol": "ssl", "ssl_ca_pem": open(sys.argv[2]).read(),
                  "delivery_timeout_ms": 10000}))
PY
}
new_app tls "$(tls_settings "$KAA_TEST_KAFKA_CA")"
must 201 "Kafka appender over TLS with the broker's CA"
timeout 90 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKENX" --state-dir "$work/tls" \
	--log-total 20 --log-rate 100 --until-acked --duration 60 --json >"$work/tls.json" 2>"$work/tls.err"
check "20 records acknowledged over TLS" field_is "$work/tls.json" records_acked 20
read_topic "tls-$TOKENX" >"$work/t5.txt" 2>"$work/t5.err" || fail "reading tls-$TOKENX: $(tail -3 "$work/t5.err")"
read -r total distinct _ _ _ _ <<<"$(analyse "$work/t5.txt")"
check "20 records in the topic, each once" [ "$total" = 20 -a "$distinct" = 20 ]
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/other.key" \
	-out "$work/other.crt" -days 1 -subj /CN=other-ca >/dev/null 2>&1
new_app tlsbad "$(tls_settings "$work/other.crt")"
must 201 "Kafka appender over TLS with another CA"
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKENX" --state-dir "$work/tlsbad" \
	--log-total 5 --log-rate 100 --duration 15 --json >"$work/tlsbad.json" 2>"$work/tlsbad.err"
check "another CA: nothing acknowledged" field_is "$work/tlsbad.json" records_acked 0
check "the node logs the certificate failure" has_line "$work/node.log" 'kafka_appender.*certificate verify failed'

kill -TERM "$NODE_PID"
wait "$NODE_PID"
check "kaa-node exits 0 on SIGTERM (appenders closed)" [ $? = 0 ]

summary
