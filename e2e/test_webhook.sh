#!/usr/bin/env bash
# The webhook log appender end to end (issue 12): a real kaa-node
# (standalone, SQLite), kaa-device fleets on libkaa, and a Python
# http.server receiver started here that checks X-Kaa-Signature
# (HMAC-SHA256 over the body with the appender's secret), keeps each batch
# once per Idempotency-Key, and can be told to answer 500 (before or after
# storing the batch), to stall past the appender's timeout, or to answer
# 400. Checks: settings validated over REST with the secret write-only;
# records arrive exactly once across induced 500s and stalls; a 400 is a
# permanent failure the device hears about and the metrics count.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BINDIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
NODE=$BINDIR/kaa-node
DEVICE=$BINDIR/kaa-device
work=$(mktemp -d "${TMPDIR:-/tmp}/test_webhook.XXXXXX")
trap 'cleanup_pids; [ -n "${KAA_E2E_KEEP:-}" ] || rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
JSON='Content-Type: application/json'
SECRET=e2e-webhook-secret-0123456789

read -r CPORT BPORT OPORT IPORT RPORT SPORT <<<"$(free_ports 6)"
URL=http://127.0.0.1:$CPORT/api/v1
BOOT=127.0.0.1:$BPORT
RX=http://127.0.0.1:$RPORT
ADMIN=root:rootpass123

# ---- the receiver ---------------------------------------------------------------
cat >"$work/receiver.py" <<'PY'
import hashlib, hmac, http.server, json, sys, threading, time

port, secret = int(sys.argv[1]), sys.argv[2].encode()
lock = threading.Lock()
state = {"mode": "ok", "left": 0, "requests": 0, "bad_sig": 0, "duplicates": 0,
         "refused": 0, "failed": 0, "stalled": 0}
batches = {}  # Idempotency-Key -> body


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=b""):
        try:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # a stalled answer the sender stopped waiting for
            pass

    def do_GET(self):
        with lock:
            recs = [[json.loads(b)["endpoint"], r["seq"]]
                    for b in batches.values() for r in json.loads(b)["records"]]
            out = dict(state, batches=len(batches), records=recs)
        self.reply(200, json.dumps(out).encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.startswith("/ctl/"):
            _, _, mode, left = self.path.split("/")
            with lock:
                state["mode"], state["left"] = mode, int(left)
            return self.reply(200)
        want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        key = self.headers.get("Idempotency-Key", "")
        with lock:
            state["requests"] += 1
            if not hmac.compare_digest(self.headers.get("X-Kaa-Signature", ""), want) or not key:
                state["bad_sig"] += 1
                return self.reply(401)
            mode = state["mode"] if state["left"] > 0 else "ok"
            if state["left"] > 0:
                state["left"] -= 1
            if mode == "400":
                state["refused"] += 1
                return self.reply(400)
            if mode == "500":  # fails before storing
                state["failed"] += 1
                return self.reply(500)
            if key in batches:
                state["duplicates"] += 1
            else:
                batches[key] = body
            if mode == "500after":  # stored, but the answer says otherwise
                state["failed"] += 1
                return self.reply(500)
            if mode == "stall":  # stored, answered after the sender gave up
                state["stalled"] += 1
        if mode == "stall":
            time.sleep(2.5)
        self.reply(200)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
if len(sys.argv) > 4:  # https with this certificate and key
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
rx_mode() { curl -s -o /dev/null --max-time 2 -X POST "$RX/ctl/$1/$2"; }
rx_stat() { curl -s --max-time 2 "$RX/stats" | python3 -c 'import sys, json
print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# rx_records: "total distinct" of the (endpoint, seq) pairs stored
rx_records() { curl -s --max-time 2 "$RX/stats" | python3 -c 'import sys, json
r = [tuple(x) for x in json.load(sys.stdin)["records"]]
print(len(r), len(set(r)))'; }
rx_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$RX/stats")" = 200 ]; }

port_open() { python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; }
start_node() {
	KAA_ADMIN_USER=root KAA_ADMIN_PASSWORD=rootpass123 spawn "$NODE" --node-id wh-e2e \
		--bind 127.0.0.1 --host 127.0.0.1 --control-port "$CPORT" --bootstrap-port "$BPORT" \
		--operations-port "$OPORT" --internode-port "$IPORT" --sql "sqlite:$work/kaa.db" \
		--nosql "sqlite:$work/endpoints.db" --appender-dir "$work/logs" --lease-ttl 2 "$@" \
		>>"$work/node.out" 2>>"$work/node.log"
	NODE_PID=$SPAWNED
	wait_for 20000 http_is 200 "http://127.0.0.1:$CPORT/readyz" &&
		wait_for 20000 port_open "$OPORT"
}

EXTRA_CURL=()
api() { # api USER:PASS METHOD PATH [BODY] -> CODE, RESP (headers in $work/head)
	local auth=$1 method=$2 path=$3 data=${4:-}
	local args=(-s -o "$work/resp" -D "$work/head" -w '%{http_code}' -X "$method" --max-time 10
		-u "$auth")
	[ -n "$data" ] && args+=(-H "$JSON" --data-binary "$data")
	CODE=$(curl "${args[@]}" "${EXTRA_CURL[@]}" "$URL$path")
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
expect_err() { # expect_err CODE PATH description
	if [ "$CODE" = "$1" ] && [ "$(jget error.path 2>/dev/null)" = "$2" ]; then pass "$3"; else
		fail "$3 -> $CODE: $RESP"
	fi
}
summary_field() { python3 -c 'import sys, json
print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
field_is() { [ "$(summary_field "$1" "$2")" = "$3" ]; }
# node_metric NAME KIND: a kaa_log_appender_* sample of the webhook appender
node_metric() {
	curl -s --max-time 2 "http://127.0.0.1:$CPORT/metrics" |
		awk -v m="$1{app=\"$APP\",appender=\"$WH\",type=\"webhook\"$2}" '$1 == m {print $2}'
}

echo "== set-up: receiver, kaa-node, an application with a webhook appender"
spawn python3 "$work/receiver.py" "$RPORT" "$SECRET" 2>"$work/receiver.log"
check "receiver is up" wait_for 10000 rx_up
if start_node; then pass "kaa-node standalone is up"; else
	fail "kaa-node did not start: $(tail -5 "$work/node.log")"
	summary
	exit 1
fi
api $ADMIN POST /tenants '{"name":"hooks"}'
must 201 "tenant"
T=$(jget id)
api $ADMIN POST "/tenants/$T/users" '{"name":"ta","role":"tenant-admin","password":"password-ta1"}'
api $ADMIN POST "/tenants/$T/users" '{"name":"td","role":"tenant-developer","password":"password-td1"}'
TA=ta:password-ta1
TD=td:password-td1
api $TA POST "/tenants/$T/applications" '{"name":"hooked","credentialsMode":"trustful"}'
must 201 "trustful application"
APP=$(jget id)
TOKEN=$(jget applicationToken)
api $TD POST "/applications/$APP/schemas" \
	'{"kind":"log","schema":{"type":"record","name":"Rec","fields":[{"name":"device","type":"int"},{"name":"seq","type":"int"}]}}'
must 201 "log schema"

echo "== settings over REST"
api $TA POST "/applications/$APP/log-appenders" \
	"{\"name\":\"bad\",\"settings\":{\"type\":\"webhook\",\"url\":\"ftp://x/\",\"secret\":\"$SECRET\"}}"
expect_err 400 '$.settings.url' "a non-http URL is refused"
api $TA POST "/applications/$APP/log-appenders" \
	"{\"name\":\"bad\",\"settings\":{\"type\":\"webhook\",\"url\":\"$RX/in\"}}"
expect_err 400 '$.settings.secret' "a webhook without a secret is refused"
api $TA POST "/applications/$APP/log-appenders" \
	"{\"name\":\"bad\",\"settings\":{\"type\":\"webhook\",\"url\":\"$RX/in\",\"secret\":\"$SECRET\",\"timeout_ms\":5}}"
expect_err 400 '$.settings.timeout_ms' "an out-of-range timeout is refused"
WH_SETTINGS="{\"type\":\"webhook\",\"url\":\"$RX/in\",\"secret\":\"$SECRET\",\"timeout_ms\":1000,\"deadline_ms\":20000,\"backoff_ms\":50,\"max_backoff_ms\":400}"
api $TA POST "/applications/$APP/log-appenders" "{\"name\":\"hook\",\"settings\":$WH_SETTINGS}"
must 201 "webhook log appender"
WH=$(jget id)
check "the create answer masks the secret" [ "$(jget settings.secret)" = "********" ]
api $TA GET "/applications/$APP/log-appenders/$WH"
check "GET masks the secret" [ "$(jget settings.secret)" = "********" ]
check "GET never shows the secret" bash -c "! grep -q -- '$SECRET' '$work/resp'"
ETAG=$(sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' "$work/head" | tr -d '\r')
masked=${WH_SETTINGS/$SECRET/********}
EXTRA_CURL=(-H "If-Match: $ETAG")
api $TA PUT "/applications/$APP/log-appenders/$WH" "{\"name\":\"hook\",\"settings\":$masked}"
EXTRA_CURL=()
expect_err 400 '$.settings.secret' "writing the mask back as the secret is refused"

run_fleet() { # run_fleet NAME COUNT TOTAL: kaa-device until every record is acked
	timeout 90 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --count "$2" \
		--state-dir "$work/$1" --log-total "$3" --log-rate 50 --log-batch 5 --until-acked \
		--duration 80 --json >"$work/$1.json" 2>"$work/$1.err"
}

echo "== healthy receiver: every record once"
run_fleet plain 2 10
check "kaa-device exits 0" [ $? = 0 ]
check "20 records acknowledged" field_is "$work/plain.json" records_acked 20
check "receiver holds 20 records, all distinct" [ "$(rx_records)" = "20 20" ]
check "every request was signed correctly" [ "$(rx_stat bad_sig)" = 0 ]

echo "== induced 500s, before and after storing, and a stall past the timeout"
rx_mode 500 4
run_fleet f500 2 10
check "kaa-device exits 0" [ $? = 0 ]
check "20 records acknowledged" field_is "$work/f500.json" records_acked 20
check "the receiver answered 500 four times" [ "$(rx_stat failed)" = 4 ]
check "receiver holds 40 records, all distinct" [ "$(rx_records)" = "40 40" ]
rx_mode 500after 3
run_fleet f500after 2 10
check "kaa-device exits 0" [ $? = 0 ]
check "20 records acknowledged" field_is "$work/f500after.json" records_acked 20
check "re-sent batches were recognised by Idempotency-Key" [ "$(rx_stat duplicates)" -ge 3 ]
check "receiver holds 60 records, all distinct" [ "$(rx_records)" = "60 60" ]
rx_mode stall 2
run_fleet stall 1 10
check "kaa-device exits 0" [ $? = 0 ]
check "10 records acknowledged" field_is "$work/stall.json" records_acked 10
check "the receiver stalled twice" [ "$(rx_stat stalled)" = 2 ]
check "receiver holds 70 records, all distinct" [ "$(rx_records)" = "70 70" ]
check "every request was signed correctly" [ "$(rx_stat bad_sig)" = 0 ]
retries=$(node_metric kaa_log_appender_retries_total "")
check "retries counted in metrics (${retries:-none})" [ "${retries:-0}" -ge 9 ]
check "confirmed records in metrics" [ "$(node_metric kaa_log_appender_records_total "")" = 70 ]
check "nothing in flight" [ "$(node_metric kaa_log_appender_in_flight "")" = 0 ]

echo "== a 400 is a permanent failure"
rx_mode 400 1000
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN" --count 1 \
	--state-dir "$work/refused" --log-total 5 --log-rate 50 --log-batch 5 --until-acked \
	--duration 20 --json --verbose >"$work/refused.json" 2>"$work/refused.err"
check "the device is told the batch was refused (not retryable)" \
	grep -q 'refused.*HTTP 400' "$work/refused.err"
check "no record acknowledged" field_is "$work/refused.json" records_acked 0
check "nothing left queued (the device dropped the refused batch)" \
	field_is "$work/refused.json" queued_records 0
check "the receiver refused exactly one request (no retry of a 400)" [ "$(rx_stat refused)" = 1 ]
check "permanent failure in metrics" \
	[ "$(node_metric kaa_log_appender_failures_total ',kind="permanent"')" = 1 ]
check "the node logged the refusal" grep -q 'batch_refused.*status=400' "$work/node.log"
rx_mode ok 0

echo "== https: verified with the configured CA, refused without it"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext "subjectAltName=IP:127.0.0.1" \
	-keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
spawn python3 "$work/receiver.py" "$SPORT" "$SECRET" "$work/cert.pem" "$work/key.pem" \
	2>"$work/receiver-tls.log"
tls_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" --max-time 1 \
	"https://127.0.0.1:$SPORT/stats")" = 200 ]; }
check "https receiver is up" wait_for 10000 tls_up
tls_app() { # tls_app NAME CA_PEM_FILE|"" -> APP2, TOKEN2
	api $TA POST "/tenants/$T/applications" "{\"name\":\"$1\",\"credentialsMode\":\"trustful\"}"
	APP2=$(jget id)
	TOKEN2=$(jget applicationToken)
	local body
	body=$(python3 - "https://127.0.0.1:$SPORT/in" "$SECRET" "$2" <<'EOF'
import json, sys
s = {"type": "webhook", "url": sys.argv[1], "secret": sys.argv[2],
     "timeout_ms": 500, "deadline_ms": 1500, "backoff_ms": 50}
if sys.argv[3]:
    s["ca_pem"] = open(sys.argv[3]).read()
print(json.dumps({"name": "tls", "settings": s}))
EOF
)
	api $TA POST "/applications/$APP2/log-appenders" "$body"
}
tls_app tls-ok "$work/cert.pem"
must 201 "https webhook with ca_pem"
timeout 60 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN2" --count 1 --state-dir "$work/tls-ok" \
	--log-total 10 --log-rate 50 --log-batch 5 --until-acked --duration 40 --json \
	>"$work/tls-ok.json" 2>"$work/tls-ok.err"
check "kaa-device exits 0" [ $? = 0 ]
check "10 records acknowledged over verified TLS" field_is "$work/tls-ok.json" records_acked 10
tls_records() { curl -s --cacert "$work/cert.pem" --max-time 2 "https://127.0.0.1:$SPORT/stats" |
	python3 -c 'import sys, json; print(len(json.load(sys.stdin)["records"]))'; }
check "the https receiver holds them" [ "$(tls_records)" = 10 ]
tls_app tls-untrusted ""
must 201 "https webhook without ca_pem (system CAs)"
timeout 30 "$DEVICE" --bootstrap "$BOOT" --app-token "$TOKEN2" --count 1 \
	--state-dir "$work/tls-bad" --log-total 5 --log-rate 50 --log-batch 5 --duration 4 --json \
	>"$work/tls-bad.json" 2>"$work/tls-bad.err"
check "nothing acknowledged: the self-signed certificate is not trusted" \
	field_is "$work/tls-bad.json" records_acked 0
check "the node gave up on the batch (retryable) after certificate errors" \
	grep -q "batch_deadline app=$APP2 .*certificate" "$work/node.log"
check "the untrusted receiver stored nothing more" [ "$(tls_records)" = 10 ]

echo "== SIGTERM with nothing in flight"
kill -TERM "$NODE_PID"
wait "$NODE_PID"
rc=$?
check "kaa-node exits 0 (got $rc)" [ "$rc" = 0 ]
if grep -q 'ERROR: \(AddressSanitizer\|LeakSanitizer\)' "$work/node.log"; then
	fail "sanitizer report in the node log"
else
	pass "no sanitizer report in the node log"
fi

summary
