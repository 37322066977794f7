#!/usr/bin/env bash
# The control REST API over HTTP against real kaa-node processes, once on
# SQLite and once on PostgreSQL ($KAA_TEST_PG): the life of a tenant, every
# role against every resource kind, tenant isolation, bad inputs, ETags,
# pagination, the per-application revision key in etcd, and two control
# replicas on one PostgreSQL and etcd (both serve, one leads, a change made
# through one is visible through the other). The fleet routes (endpoints,
# server profiles pushed to a live kaa-device, log records, live counts)
# run on SQLite standalone and on PostgreSQL + MongoDB ($KAA_TEST_MONGO)
# with control and operations on separate nodes over etcd.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BIN=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}/kaa-node
ETCD=${KAA_TEST_ETCD:?}
PG=${KAA_TEST_PG:?}
MONGO=${KAA_TEST_MONGO:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_control_api.XXXXXX")
trap 'cleanup_pids; rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export -f metric etcd_value b64
JSON='Content-Type: application/json'

# api USER:PASS METHOD PATH [BODY] -> sets CODE and BODY (response)
api() {
	local auth=$1 method=$2 path=$3 data=${4:-}
	local args=(-s -o "$work/resp" -w '%{http_code}' -X "$method" --max-time 10)
	[ -n "$auth" ] && args+=(-u "$auth")
	[ -n "$data" ] && args+=(-H "$JSON" --data-binary "$data")
	CODE=$(curl "${args[@]}" "${EXTRA_CURL[@]}" "$URL$path")
	RESP=$(cat "$work/resp")
}
EXTRA_CURL=()
jget() { python3 -c 'import sys, json
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True))' "$RESP" "$1"; }
expect() { # expect CODE description
	if [ "$CODE" = "$1" ]; then pass "$2 -> $1"; else fail "$2 -> $CODE (want $1): $RESP"; fi
}
expect_err() { # expect_err CODE error.code error.path description
	if [ "$CODE" = "$1" ] && [ "$(jget error.code 2>/dev/null)" = "$2" ] &&
		{ [ -z "$3" ] || [ "$(jget error.path 2>/dev/null)" = "$3" ]; }; then
		pass "$4 -> $1 $2 ${3}"
	else
		fail "$4 -> $CODE: $RESP (want $1 $2 $3)"
	fi
}

ADMIN=root:rootpass123
# Device keys as a factory makes them: PUBn is the standard base64 of the
# DER public key a device sends in Hello, HASHn its endpoint key hash.
for n in 1 2 3 4; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/key$n.pem" 2>/dev/null
	openssl pkey -in "$work/key$n.pem" -pubout -outform DER >"$work/pub$n.der"
	eval "PUB$n=\$(base64 -w0 <'$work/pub$n.der')"
	eval "HASH$n=\$(openssl dgst -sha256 -binary <'$work/pub$n.der' | base64 -w0 | tr '+/' '-_' | tr -d '=')"
done
# start_control NAME SQL [extra args]: sets NODE_PID and URL
start_control() {
	local name=$1 sql=$2 port
	shift 2
	port=$(free_ports 1)
	KAA_ADMIN_USER=root KAA_ADMIN_PASSWORD=rootpass123 spawn "$BIN" --services control \
		--control-port "$port" --bind 127.0.0.1 --host 127.0.0.1 --node-id "$name" \
		--sql "$sql" "$@" >"$work/$name.out" 2>"$work/$name.log"
	NODE_PID=$SPAWNED
	BASE=http://127.0.0.1:$port
	URL=$BASE/api/v1
}

lifecycle() { # the whole suite on one backend
	local tag=$1
	echo "== [$tag] life of a tenant"
	api "" GET /me
	expect 401 "[$tag] no credentials"
	api root:wrong GET /me
	expect 401 "[$tag] wrong password"
	EXTRA_CURL=(-H "Authorization: Bearer kaa_nope")
	api "" GET /me
	expect 401 "[$tag] unknown bearer token"
	EXTRA_CURL=()
	api $ADMIN GET /me
	expect 200 "[$tag] platform admin /me"
	api $ADMIN POST /tenants '{"name":"acme"}'
	expect 201 "[$tag] create tenant"
	T1=$(jget id)
	api $ADMIN POST /tenants '{"name":"globex"}'
	T2=$(jget id)
	api $ADMIN POST /tenants '{"name":"acme"}'
	expect_err 409 exists "" "[$tag] duplicate tenant"
	for who in admin:tenant-admin dev:tenant-developer user:tenant-user; do
		api $ADMIN POST "/tenants/$T1/users" \
			"{\"name\":\"${who%%:*}-$tag\",\"role\":\"${who#*:}\",\"password\":\"password-$tag\"}"
		expect 201 "[$tag] create ${who#*:}"
	done
	api $ADMIN POST "/tenants/$T2/users" \
		"{\"name\":\"other-$tag\",\"role\":\"tenant-admin\",\"password\":\"password-$tag\"}"
	local TA=admin-$tag:password-$tag TD=dev-$tag:password-$tag TU=user-$tag:password-$tag
	local TO=other-$tag:password-$tag
	api "$TA" POST "/tenants/$T1/applications" '{"name":"thermo","credentialsMode":"trustful"}'
	expect 201 "[$tag] tenant admin creates application"
	A1=$(jget id)
	[ -n "$(jget applicationToken)" ] && pass "[$tag] application token issued" ||
		fail "[$tag] no application token"
	local rev1
	rev1=$(jget appRev)
	api "$TO" POST "/tenants/$T2/applications" '{"name":"thermo"}'
	A2=$(jget id)

	api "$TD" POST "/applications/$A1/schemas" \
		'{"kind":"configuration","schema":{"type":"record","name":"Cfg","fields":[{"name":"rate","type":"int","default":5},{"name":"mode","type":{"type":"enum","name":"Mode","symbols":["ECO","FAST"]},"default":"ECO"}]}}'
	expect 201 "[$tag] developer creates configuration schema"
	api "$TD" POST "/applications/$A1/schemas" \
		'{"kind":"notification","schema":{"type":"record","name":"Note","fields":[{"name":"text","type":"string"}]}}'
	expect 201 "[$tag] notification schema"
	api "$TD" POST "/applications/$A1/groups" '{"name":"eu","weight":10,"filter":{"cp.region":"eu"}}'
	expect 201 "[$tag] group with filter"
	G1=$(jget id)
	api "$TD" POST "/applications/$A1/configurations" \
		"{\"groupId\":$G1,\"schemaVersion\":1,\"body\":{\"rate\":7,\"mode\":\"ECO\"}}"
	expect 201 "[$tag] configuration"
	C1=$(jget id)
	api "$TD" POST "/applications/$A1/groups" '{"name":"all","weight":1}'
	local GALL
	GALL=$(jget id)
	api "$TD" POST "/applications/$A1/configurations" \
		"{\"groupId\":$GALL,\"schemaVersion\":1,\"body\":{\"rate\":3,\"mode\":\"FAST\"}}"
	expect 201 "[$tag] configuration of the catch-all group"
	api "$TU" POST "/applications/$A1/resolve-configuration" '{"clientProfile":{"region":"eu"}}'
	expect 200 "[$tag] resolve an EU endpoint's configuration"
	check "[$tag] EU endpoint: both groups, the heavier group wins" \
		[ "$(jget groupIds)" = "[$G1, $GALL]" ] && [ "$(jget configuration)" = '{"mode": "ECO", "rate": 7}' ]
	check "[$tag] configuration hash is SHA-256 of the canonical document" python3 -c '
import hashlib, json, sys
r = json.loads(sys.argv[1])
canon = json.dumps(r["configuration"], sort_keys=True, separators=(",", ":"))
sys.exit(0 if hashlib.sha256(canon.encode()).hexdigest() == r["hash"] else 1)' "$RESP"
	api "$TU" POST "/applications/$A1/resolve-configuration" '{"clientProfile":{"region":"us"},"schemaVersion":1}'
	check "[$tag] US endpoint: only the catch-all group" \
		[ "$(jget groupIds)" = "[$GALL]" ] && [ "$(jget configuration)" = '{"mode": "FAST", "rate": 3}' ]
	api "$TU" POST "/applications/$A1/resolve-configuration" '{"clientProfile":1,"nope":2}'
	expect 400 "[$tag] resolve with an unknown field"
	api "$TD" POST "/applications/$A1/topics" "{\"name\":\"alerts\",\"mandatory\":true,\"groupIds\":[$G1]}"
	expect 201 "[$tag] topic"
	TP=$(jget id)
	api "$TD" POST "/applications/$A1/notifications" "{\"topicId\":$TP,\"body\":{\"text\":\"hi\"},\"ttlSeconds\":60}"
	expect 201 "[$tag] notification"
	[ "$(jget seq)" = 1 ] && pass "[$tag] first notification seq 1" || fail "[$tag] seq: $RESP"
	api "$TD" POST "/applications/$A1/notifications" "{\"topicId\":$TP,\"body\":{\"text\":\"again\"}}"
	[ "$(jget seq)" = 2 ] && pass "[$tag] second notification seq 2" || fail "[$tag] seq: $RESP"
	api "$TD" POST "/applications/$A1/sdk-profiles" '{"name":"v1","schemaVersions":{"configuration":1},"bootstrap":["127.0.0.1:8081"]}'
	expect 201 "[$tag] SDK profile"
	local SP
	SP=$(jget id)
	CODE=$(curl -s -o "$work/sdk.tar" -w '%{http_code}' -u "$TU" "$URL/applications/$A1/sdk-profiles/$SP/sdk")
	expect 200 "[$tag] SDK generation"
	mkdir -p "$work/sdk-$tag"
	if tar -xf "$work/sdk.tar" -C "$work/sdk-$tag" kaa_profile.h 2>/dev/null; then
		local tokn
		api "$TA" GET "/tenants/$T1/applications/$A1"
		tokn=$(jget applicationToken)
		check "[$tag] kaa_profile.h carries the application token" \
			grep -q "KAA_APPLICATION_TOKEN \"$tokn\"" "$work/sdk-$tag/kaa_profile.h"
		check "[$tag] kaa_profile.h carries the default configuration" \
			grep -q 'KAA_DEFAULT_CONFIGURATION "{\\"mode\\":\\"ECO\\",\\"rate\\":5}"' \
			"$work/sdk-$tag/kaa_profile.h"
		printf '#include "kaa_profile.h"\nstatic const char *b[] = KAA_BOOTSTRAP_SERVERS;\nint main(void) { return KAA_CONFIGURATION_SCHEMA_VERSION == 1 && b[0] && sizeof(KAA_DEFAULT_CONFIGURATION) > 2 ? 0 : 1; }\n' >"$work/sdk-$tag/t.c"
		check "[$tag] kaa_profile.h compiles and holds what the profile says" bash -c \
			"cc -std=c11 -Wall -Werror -I'$work/sdk-$tag' -o '$work/sdk-$tag/t' '$work/sdk-$tag/t.c' && '$work/sdk-$tag/t'"
	else
		fail "[$tag] SDK archive does not hold kaa_profile.h"
	fi
	api "$TA" POST "/applications/$A1/credentials" "{\"endpointKeyHash\":\"$HASH1\",\"publicKey\":\"$PUB1\",\"status\":\"provisioned\"}"
	expect 201 "[$tag] provision a credential"
	local CRV=$(jget version) CRI=$(jget id)
	api "$TA" POST "/applications/$A1/credentials" '{"endpointKeyHash":"abc"}'
	expect_err 400 invalid '$.endpointKeyHash' "[$tag] a key hash that is not 43 base64url characters"
	api "$TA" POST "/applications/$A1/credentials" "{\"endpointKeyHash\":\"${HASH1%?}+\"}"
	expect_err 400 invalid '$.endpointKeyHash' "[$tag] a key hash outside the base64url alphabet"
	api "$TA" POST "/applications/$A1/credentials" "{\"endpointKeyHash\":\"$HASH2\",\"publicKey\":\"not base64!\"}"
	expect_err 400 invalid '$.publicKey' "[$tag] a public key that is not base64"
	api "$TA" POST "/applications/$A1/credentials" "{\"endpointKeyHash\":\"$HASH2\",\"publicKey\":\"$PUB1\"}"
	expect_err 400 invalid '$.publicKey' "[$tag] a public key of another device"
	api "$TA" POST "/applications/$A1/credentials" "{\"endpointKeyHash\":\"$HASH2\",\"status\":\"lost\"}"
	expect 400 "[$tag] a status other than provisioned or revoked"
	EXTRA_CURL=(-H "If-Match: $CRV")
	api "$TA" PUT "/applications/$A1/credentials/$CRI" "{\"publicKey\":\"$PUB2\"}"
	expect_err 400 invalid '$.publicKey' "[$tag] an update keeps the key hash: another key is refused"
	api "$TA" PUT "/applications/$A1/credentials/$CRI" "{\"publicKey\":\"$PUB1\"}"
	expect 200 "[$tag] an update with the same key"
	EXTRA_CURL=()
	api "$TA" POST "/applications/$A1/log-appenders" '{"name":"file","settings":{"type":"file","file":"logs.jsonl"}}'
	expect 201 "[$tag] log appender"
	api "$TA" POST "/applications/$A1/log-appenders" '{"name":"bad","settings":{"type":"file","file":"../etc/passwd"}}'
	expect_err 400 invalid '$.settings.file' "[$tag] a log file name is not a path"
	api "$TA" POST "/applications/$A1/log-appenders" '{"name":"bad","settings":{"type":"file","file":"x.jsonl","path":"/tmp/x"}}'
	expect_err 400 invalid '$.settings.path' "[$tag] unknown appender setting"
	api "$TA" POST "/applications/$A1/log-appenders" '{"name":"bad","settings":{"type":"cassandra"}}'
	expect_err 400 invalid '$.settings.type' "[$tag] unknown appender type"
	api "$TU" GET "/applications/$A1/configurations/$C1"
	expect 200 "[$tag] tenant user reads configuration"

	echo "== [$tag] event families, event maps, owner verifiers"
	local FAM='{"name":"thermo-events","classes":[{"fqn":"org.acme.Temp","schema":{"type":"record","name":"Temp","fields":[{"name":"c","type":"double"}]}},{"fqn":"org.acme.SetPoint","schema":{"type":"record","name":"SetPoint","fields":[{"name":"c","type":"double"}]}}]}'
	api "$TD" POST "/tenants/$T1/event-families" "$FAM"
	expect 201 "[$tag] developer creates an event family"
	local F1 F2 M1 V1
	F1=$(jget id)
	check "[$tag] first family version is 1" [ "$(jget familyVersion)" = 1 ]
	api "$TD" POST "/tenants/$T1/event-families" "$FAM"
	F2=$(jget id)
	check "[$tag] same name again: version 2" [ "$(jget familyVersion)" = 2 ]
	api "$TU" POST "/tenants/$T1/event-families" "$FAM"
	expect_err 403 forbidden "" "[$tag] tenant user cannot create families"
	api "$TO" GET "/tenants/$T1/event-families/$F1"
	expect_err 404 not_found "" "[$tag] another tenant's admin does not see the family"
	api "$TU" GET "/tenants/$T1/event-families"
	check "[$tag] tenant user lists both versions" [ "$(jget items.1.familyVersion)" = 2 ]
	api "$TD" POST "/tenants/$T1/event-families" '{"name":"bad","classes":[{"fqn":"org..Temp","schema":{"type":"record","name":"T","fields":[]}}]}'
	expect_err 400 invalid '$.classes[0].fqn' "[$tag] malformed fqn"
	api "$TD" POST "/tenants/$T1/event-families" '{"name":"bad","classes":[{"fqn":"a.B","schema":{"type":"recrd"}}]}'
	expect_err 400 invalid_schema '$.classes[0].schema' "[$tag] invalid event schema"
	api "$TD" POST "/tenants/$T1/event-families" '{"name":"bad","classes":[]}'
	expect_err 400 invalid '$.classes' "[$tag] empty family"
	api "$TD" POST "/applications/$A1/event-maps" "{\"familyId\":$F1,\"classes\":{\"org.acme.Temp\":\"source\",\"org.acme.SetPoint\":\"sink\"}}"
	expect 201 "[$tag] map the family into the application"
	M1=$(jget id)
	api "$TD" POST "/applications/$A1/event-maps" "{\"familyId\":$F1,\"classes\":{\"org.acme.Nope\":\"source\"}}"
	expect_err 400 invalid '$.classes.org.acme.Nope' "[$tag] class not in the family"
	api "$TD" POST "/applications/$A1/event-maps" "{\"familyId\":$F2,\"classes\":{\"org.acme.Temp\":\"listener\"}}"
	expect_err 400 invalid '$.classes.org.acme.Temp' "[$tag] unknown role"
	api "$TO" POST "/tenants/$T2/event-families" "$FAM"
	local FOTHER
	FOTHER=$(jget id)
	api "$TD" POST "/applications/$A1/event-maps" "{\"familyId\":$FOTHER,\"classes\":{\"org.acme.Temp\":\"sink\"}}"
	expect_err 400 invalid '$.familyId' "[$tag] another tenant's family cannot be mapped"
	api "$TD" DELETE "/tenants/$T1/event-families/$F1"
	expect_err 409 in_use "" "[$tag] a mapped family version cannot be deleted"
	api "$TD" DELETE "/tenants/$T1/event-families/$F2"
	expect 204 "[$tag] an unmapped version can"
	EXTRA_CURL=(-H 'If-Match: 1')
	api "$TD" PUT "/applications/$A1/event-maps/$M1" '{"classes":{"org.acme.Temp":"both"}}'
	EXTRA_CURL=()
	check "[$tag] event map roles updated, family kept" \
		[ "$(jget classes)" = '{"org.acme.Temp": "both"}' ] && [ "$(jget familyId)" = "$F1" ]
	api "$TA" POST "/applications/$A1/user-verifiers" '{"name":"default","settings":{"type":"jwt-hs256","secret":"0123456789abcdef0123456789abcdef","issuer":"acme"}}'
	expect 201 "[$tag] JWT owner verifier"
	V1=$(jget id)
	check "[$tag] the secret is write-only" [ "$(jget settings.secret)" = '********' ]
	api "$TU" GET "/applications/$A1/user-verifiers/$V1"
	check "[$tag] ... also when read back" [ "$(jget settings.secret)" = '********' ] && [ "$(jget settings.issuer)" = acme ]
	api "$TA" POST "/applications/$A1/user-verifiers" '{"name":"short","settings":{"type":"jwt-hs256","secret":"tooshort"}}'
	expect_err 400 invalid '$.settings.secret' "[$tag] short JWT secret"
	api "$TA" POST "/applications/$A1/user-verifiers" '{"name":"t","settings":{"type":"trustful","secret":"0123456789abcdef0123456789abcdef"}}'
	expect_err 400 invalid '$.settings.secret' "[$tag] trustful takes no settings"
	api "$TA" POST "/applications/$A1/user-verifiers" '{"name":"t","settings":{"type":"ldap"}}'
	expect_err 400 invalid '$.settings.type' "[$tag] unknown verifier type"
	api "$TA" POST "/applications/$A1/user-verifiers" '{"name":"t","settings":{"type":"jwt-hs256"}}'
	expect_err 400 invalid '$.settings.secret' "[$tag] JWT verifier without a secret"
	api "$TA" POST "/applications/$A1/user-verifiers" '{"name":"open","settings":{"type":"trustful"}}'
	expect 201 "[$tag] trustful owner verifier"
	api "$TA" POST "/applications/$A1/user-verifiers" '{"name":"open","settings":{"type":"trustful"}}'
	expect_err 409 exists "" "[$tag] verifier names are unique per application"
	api "$TA" GET "/tenants/$T1/applications/$A1"
	if [ "$(jget appRev)" -gt "$rev1" ]; then pass "[$tag] app revision bumped by changes"; else fail "[$tag] appRev: $RESP"; fi
	local rev
	rev=$(jget appRev)
	if [ -n "${CLUSTER:-}" ]; then
		check "[$tag] app revision published to etcd" wait_for 5000 bash -c \
			"[ \"\$(etcd_value '$ETCD' '/kaa/$CLUSTER/apps/$A1/rev')\" = '{\"rev\":$rev}' ]"
		# A lost publication (key gone, or left by a deleted application) is
		# repaired by the control leader's periodic pass (every 10 s).
		curl -s --max-time 2 -X POST "$ETCD/v3/kv/deleterange" \
			-d "{\"key\":\"$(b64 "/kaa/$CLUSTER/apps/$A1/rev")\"}" >/dev/null
		curl -s --max-time 2 -X POST "$ETCD/v3/kv/put" \
			-d "{\"key\":\"$(b64 "/kaa/$CLUSTER/apps/987654/rev")\",\"value\":\"$(b64 '{"rev":3}')\"}" >/dev/null
		check "[$tag] leader republishes a lost app revision" wait_for 25000 bash -c \
			"[ \"\$(etcd_value '$ETCD' '/kaa/$CLUSTER/apps/$A1/rev')\" = '{\"rev\":$rev}' ]"
		check "[$tag] leader removes the key of an application that does not exist" \
			wait_for 25000 bash -c "[ -z \"\$(etcd_value '$ETCD' '/kaa/$CLUSTER/apps/987654/rev')\" ]"
	fi

	echo "== [$tag] bad inputs"
	api "$TD" POST "/applications/$A1/configurations" "{\"groupId\":$G1,\"schemaVersion\":1,\"body\":{\"rate\":\"fast\",\"mode\":\"ECO\"}}"
	expect_err 400 schema_mismatch '$.body.rate' "[$tag] configuration not matching its schema"
	api "$TD" POST "/applications/$A1/configurations" "{\"groupId\":$G1,\"schemaVersion\":1,\"body\":{\"rate\":1,\"mode\":\"SLOW\"}}"
	expect_err 400 schema_mismatch '$.body.mode' "[$tag] bad enum symbol"
	api "$TD" POST "/applications/$A1/schemas" '{"kind":"log","schema":{"type":"record","name":"L","fields":[{"name":"x","type":"strin"}]}}'
	expect_err 400 invalid_schema '$.schema.fields[0].type' "[$tag] invalid Avro schema"
	api "$TD" POST "/applications/$A1/groups" '{"name":"bad","filter":{"cp.x":{"$regx":"y"}}}'
	expect_err 400 invalid_filter "" "[$tag] invalid filter"
	api "$TD" POST "/applications/$A1/groups" '{"name":"g","colour":"red"}'
	expect_err 400 unknown_field '$.colour' "[$tag] unknown field"
	api "$TD" POST "/applications/$A1/groups" '{"name":5}'
	expect_err 400 invalid '$.name' "[$tag] wrong type"
	api "$TD" POST "/applications/$A1/groups" '{"weight":1}'
	expect_err 400 missing_field '$.name' "[$tag] missing field"
	api "$TD" POST "/applications/$A1/groups" '{"name":'
	expect_err 400 malformed_json "" "[$tag] malformed JSON"
	CODE=$(curl -s -o "$work/resp" -w '%{http_code}' -u "$TD" -X POST -H 'Content-Type: text/plain' \
		--data 'x' "$URL/applications/$A1/groups")
	expect 415 "[$tag] wrong media type"
	head -c 1100000 /dev/zero | tr '\0' ' ' >"$work/big"
	CODE=$(curl -s -o /dev/null -w '%{http_code}' -u "$TD" -X POST -H "$JSON" \
		--data-binary @"$work/big" "$URL/applications/$A1/groups")
	expect 413 "[$tag] body over 1 MiB"
	api "$TD" POST "/applications/$A1/notifications" "{\"topicId\":$TP,\"body\":{\"text\":1}}"
	expect_err 400 schema_mismatch '$.body.text' "[$tag] notification not matching its schema"
	api "$TD" GET "/applications/$A1/groups?limit=0"
	expect 400 "[$tag] bad limit"
	api "$TD" GET "/applications/$A1/groups?cursor=garbage"
	expect 400 "[$tag] bad cursor"
	api "$TD" DELETE "/applications/$A1/tenants"
	expect 404 "[$tag] unknown route"
	api "$TD" PATCH "/applications/$A1/groups/$G1"
	expect 405 "[$tag] unsupported method"

	echo "== [$tag] ETags"
	api "$TD" PUT "/applications/$A1/groups/$G1" '{"weight":20}'
	expect 428 "[$tag] update without If-Match"
	for bad in '"1x"' '1junk' '"1' '0'; do
		EXTRA_CURL=(-H "If-Match: $bad")
		api "$TD" PUT "/applications/$A1/groups/$G1" '{"weight":20}'
		expect 400 "[$tag] malformed If-Match $bad"
	done
	EXTRA_CURL=(-H 'If-Match: "1"')
	api "$TD" PUT "/applications/$A1/groups/$G1" '{"weight":20}'
	expect 200 "[$tag] update with the right ETag"
	api "$TD" PUT "/applications/$A1/groups/$G1" '{"weight":30}'
	expect 412 "[$tag] second admin with a stale ETag"
	EXTRA_CURL=()
	api "$TD" GET "/applications/$A1/groups/$G1"
	[ "$(jget weight)" = 20 ] && pass "[$tag] stale update did not overwrite" || fail "[$tag] $RESP"

	echo "== [$tag] pagination"
	for i in $(seq 1 12); do api "$TD" POST "/applications/$A1/groups" "{\"name\":\"p$i\"}"; done
	local seen="" cursor="" pages=0
	while :; do
		api "$TD" GET "/applications/$A1/groups?limit=5${cursor:+&cursor=$cursor}"
		seen="$seen $(python3 -c 'import sys,json; print(" ".join(str(i["id"]) for i in json.loads(sys.argv[1])["items"]))' "$RESP")"
		cursor=$(python3 -c 'import sys,json,urllib.parse; c=json.loads(sys.argv[1])["nextCursor"]; print(urllib.parse.quote(c) if c else "")' "$RESP")
		pages=$((pages + 1))
		[ -n "$cursor" ] && [ "$pages" -lt 10 ] || break
	done
	local n uniq
	n=$(wc -w <<<"$seen")
	uniq=$(tr ' ' '\n' <<<"$seen" | sed '/^$/d' | sort -u | wc -l)
	check "[$tag] 14 groups over $pages pages, none twice (got $n, $uniq unique)" \
		bash -c "[ $n = 14 ] && [ $uniq = 14 ] && [ $pages = 3 ]"

	echo "== [$tag] tenant isolation"
	api "$TO" GET "/applications/$A1/groups"
	expect 404 "[$tag] other tenant lists our groups"
	api "$TO" GET "/tenants/$T1/applications/$A1"
	expect 404 "[$tag] other tenant reads our application"
	api "$TO" GET "/applications/$A1/configurations/$C1"
	expect 404 "[$tag] other tenant reads our configuration"
	api "$TD" GET "/applications/$A2/groups"
	expect 404 "[$tag] we list the other tenant's groups"
	api "$TA" GET "/tenants/$T2"
	expect 404 "[$tag] we read the other tenant"
	api "$TA" GET "/tenants"
	[ "$(python3 -c 'import sys,json; print([i["id"] for i in json.loads(sys.argv[1])["items"]])' "$RESP")" = "[$T1]" ] &&
		pass "[$tag] tenant list shows only our tenant" || fail "[$tag] tenants: $RESP"
	api "$TD" GET "/applications/$A1/groups/999999"
	expect 404 "[$tag] missing object"

	echo "== [$tag] roles x resources"
	# role: what it may write; reads are allowed to every tenant role.
	local kinds="schemas groups configurations topics notifications sdk-profiles credentials log-appenders event-maps user-verifiers"
	local role k want
	for role in "$TA" "$TD" "$TU"; do
		for k in $kinds; do
			api "$role" GET "/applications/$A1/$k"
			expect 200 "[$tag] ${role%%:*} reads $k"
			api "$role" POST "/applications/$A1/$k" '{}'
			case "${role%%-*}:$k" in
			dev:credentials | dev:user-verifiers) want=403 ;; # admin matters
			dev:*) want=400 ;;                                # allowed, then the body is incomplete
			admin:credentials | admin:log-appenders | admin:user-verifiers) want=400 ;;
			*) want=403 ;;
			esac
			expect "$want" "[$tag] ${role%%:*} writes $k"
		done
		api "$role" POST "/tenants/$T1/applications" '{}'
		[ "${role%%-*}" = admin ] && want=400 || want=403
		expect "$want" "[$tag] ${role%%:*} writes applications"
		api "$role" POST "/tenants/$T1/users" '{}'
		[ "${role%%-*}" = admin ] && want=400 || want=403
		expect "$want" "[$tag] ${role%%:*} writes users"
		api "$role" POST /tenants '{"name":"x"}'
		expect 403 "[$tag] ${role%%:*} creates tenants"
	done
	# The platform admin manages tenants and their users, reads
	# applications, and has no business inside them.
	for k in $kinds; do
		api $ADMIN GET "/applications/$A1/$k"
		expect 403 "[$tag] platform admin reads $k"
		api $ADMIN POST "/applications/$A1/$k" '{}'
		expect 403 "[$tag] platform admin writes $k"
	done
	api $ADMIN GET "/tenants/$T1/applications"
	expect 200 "[$tag] platform admin lists applications"
	api $ADMIN GET "/tenants/$T1/users"
	expect 200 "[$tag] platform admin lists users"
	api $ADMIN POST "/tenants/$T1/users" '{}'
	expect 400 "[$tag] platform admin writes users (then the body is incomplete)"
	api $ADMIN POST "/tenants/$T1/applications" '{"name":"pa"}'
	expect 403 "[$tag] platform admin creates applications"
	api "$TA" POST "/tenants/$T1/users" '{"name":"evil","role":"platform-admin","password":"password-x"}'
	expect 403 "[$tag] tenant admin cannot mint platform admins"

	echo "== [$tag] who may provision devices and configure owner verifiers"
	# Every credential and verifier route, per role, with valid bodies (so
	# only the role can refuse): the tenant admin writes, the tenant's other
	# roles read, the platform admin gets 403, another tenant's admin 404.
	local CR VR kind id body who rw
	api "$TA" POST "/applications/$A1/credentials" "{\"endpointKeyHash\":\"$HASH3\",\"publicKey\":\"$PUB3\"}"
	expect 201 "[$tag] tenant-admin POST credentials"
	CR=$(jget id)
	api "$TA" POST "/applications/$A1/user-verifiers" '{"name":"roles","settings":{"type":"trustful"}}'
	expect 201 "[$tag] tenant-admin POST user-verifiers"
	VR=$(jget id)
	for kind in credentials:$CR user-verifiers:$VR; do
		id=${kind#*:}
		kind=${kind%%:*}
		if [ "$kind" = credentials ]; then
			body="{\"endpointKeyHash\":\"$HASH4\",\"publicKey\":\"$PUB4\"}"
			rw='{"status":"revoked"}'
		else
			body='{"name":"roles2","settings":{"type":"trustful"}}'
			rw='{"settings":{"type":"jwt-hs256","secret":"0123456789abcdef0123456789abcdef"}}'
		fi
		for who in "$TD:tenant-developer:200" "$TU:tenant-user:200" "$ADMIN:platform-admin:403" "$TO:other-tenant-admin:404"; do
			local cred=${who%:*:*} rest=${who#*:*:} role read deny
			role=${rest%%:*}
			read=${rest#*:}
			deny=403
			[ "$read" = 404 ] && deny=404
			api "$cred" GET "/applications/$A1/$kind"
			expect "$read" "[$tag] $role GET $kind"
			api "$cred" GET "/applications/$A1/$kind/$id"
			expect "$read" "[$tag] $role GET $kind/{id}"
			api "$cred" POST "/applications/$A1/$kind" "$body"
			expect "$deny" "[$tag] $role POST $kind"
			EXTRA_CURL=(-H 'If-Match: 1')
			api "$cred" PUT "/applications/$A1/$kind/$id" "$rw"
			expect "$deny" "[$tag] $role PUT $kind/{id}"
			EXTRA_CURL=()
			api "$cred" DELETE "/applications/$A1/$kind/$id"
			expect "$deny" "[$tag] $role DELETE $kind/{id}"
		done
		api "$TA" GET "/applications/$A1/$kind/$id"
		check "[$tag] refused writes left $kind/$id unchanged" [ "$(jget version)" = 1 ]
		api "$TA" GET "/applications/$A1/$kind"
		expect 200 "[$tag] tenant-admin GET $kind"
		EXTRA_CURL=(-H 'If-Match: 1')
		api "$TA" PUT "/applications/$A1/$kind/$id" "$rw"
		expect 200 "[$tag] tenant-admin PUT $kind/{id}"
		EXTRA_CURL=()
		api "$TA" DELETE "/applications/$A1/$kind/$id"
		expect 204 "[$tag] tenant-admin DELETE $kind/{id}"
		api "$TA" GET "/applications/$A1/$kind/$id"
		expect 404 "[$tag] tenant-admin GET $kind/{id} after the delete"
	done

	echo "== [$tag] API tokens"
	api "$TU" POST /tokens '{"name":"ci"}'
	expect 201 "[$tag] create API token"
	local tok
	tok=$(jget token)
	EXTRA_CURL=(-H "Authorization: Bearer $tok")
	api "" GET "/applications/$A1/groups/$G1"
	expect 200 "[$tag] bearer token authenticates"
	EXTRA_CURL=()

	echo "== [$tag] password change"
	api "$TU" GET /me
	expect 200 "[$tag] tenant user logs in (verification now cached)"
	local uid
	uid=$(jget id)
	api "$TA" GET "/tenants/$T1/users/$uid"
	local uver
	uver=$(jget version)
	EXTRA_CURL=(-H "If-Match: \"$uver\"")
	api "$TA" PUT "/tenants/$T1/users/$uid" '{"password":"a-new-password"}'
	expect 200 "[$tag] tenant admin changes the user's password"
	EXTRA_CURL=()
	api "$TU" GET /me
	expect 401 "[$tag] the old password no longer works"
	api "user-$tag:a-new-password" GET /me
	expect 200 "[$tag] the new password works"
	TU=user-$tag:a-new-password

	echo "== [$tag] deletes cascade"
	api "$TD" DELETE "/applications/$A1/groups/$G1"
	expect 204 "[$tag] delete group"
	api "$TD" GET "/applications/$A1/configurations/$C1"
	expect 404 "[$tag] its configuration is gone"
	api "$ADMIN" DELETE "/tenants/$T2"
	expect 204 "[$tag] delete tenant"
	api "$TO" GET /me
	expect 401 "[$tag] its users are gone"
}

# ---- the fleet routes: endpoints, server profiles, configuration, logs, counts ----
DEVICE=$(dirname "$BIN")/kaa-device
# api_h USER:PASS METHOD PATH BODY IF-MATCH: api with an If-Match header,
# the response headers in $work/hdr
api_h() {
	local args=(-s -D "$work/hdr" -o "$work/resp" -w '%{http_code}' -X "$2" --max-time 10 -u "$1")
	[ -n "${4:-}" ] && args+=(-H "$JSON" --data-binary "$4")
	[ -n "${5:-}" ] && args+=(-H "If-Match: $5")
	CODE=$(curl "${args[@]}" "$URL$3")
	RESP=$(cat "$work/resp")
}
etag() { sed -n 's/^[Ee][Tt][Aa][Gg]: *\([^[:space:]]*\).*/\1/p' "$work/hdr"; }
has_line() { grep -q -- "$2" "$1" 2>/dev/null; }
# ep_is PATH EXPR: GET as the tenant user, then the Python expression on r
ep_is() {
	api "$FU" GET "$1"
	[ "$CODE" = 200 ] && python3 -c 'import sys, json
r = json.loads(sys.argv[1])
sys.exit(0 if eval(sys.argv[2]) else 1)' "$RESP" "$2"
}

# fleet TAG SQL NOSQL [cluster args]: without cluster args one standalone
# node runs every service; with them (--etcd ...) a control-only node and
# an operations+bootstrap node share the stores and etcd, so the session
# lives on another node than the REST call.
fleet() {
	local tag=$1 sql=$2 nosql=$3 cport bport oport iport cnode onode
	shift 3
	read -r cport bport oport iport <<<"$(free_ports 4)"
	echo "== [$tag] fleet routes: endpoints, server profiles, logs, counts"
	if [ $# = 0 ]; then
		KAA_ADMIN_USER=root KAA_ADMIN_PASSWORD=rootpass123 spawn "$BIN" --node-id "fleet-$tag" \
			--control-port "$cport" --bootstrap-port "$bport" --operations-port "$oport" \
			--internode-port "$iport" --bind 127.0.0.1 --host 127.0.0.1 --sql "$sql" \
			--nosql "$nosql" >"$work/fleet-$tag.out" 2>"$work/fleet-$tag.log"
		cnode=$SPAWNED onode=$SPAWNED
		OPS_NODE=fleet-$tag
	else
		KAA_ADMIN_USER=root KAA_ADMIN_PASSWORD=rootpass123 spawn "$BIN" --services control \
			--node-id "fleet-c-$tag" --control-port "$cport" --bind 127.0.0.1 --host 127.0.0.1 \
			--sql "$sql" --nosql "$nosql" "$@" >"$work/fleet-c-$tag.out" 2>"$work/fleet-c-$tag.log"
		cnode=$SPAWNED
		spawn "$BIN" --services operations,bootstrap --node-id "fleet-o-$tag" \
			--bootstrap-port "$bport" --operations-port "$oport" --internode-port "$iport" \
			--bind 127.0.0.1 --host 127.0.0.1 --sql "$sql" --nosql "$nosql" "$@" \
			>"$work/fleet-o-$tag.out" 2>"$work/fleet-o-$tag.log"
		onode=$SPAWNED
		OPS_NODE=fleet-o-$tag
	fi
	URL=http://127.0.0.1:$cport/api/v1
	check "[$tag] fleet control ready" wait_for 20000 http_is 200 "http://127.0.0.1:$cport/readyz"
	check "[$tag] fleet bootstrap ready" wait_for 20000 http_is 200 "http://127.0.0.1:$bport/readyz"
	api $ADMIN POST /tenants "{\"name\":\"fleet-$tag\"}"
	local FT=$(jget id) FT2
	api $ADMIN POST /tenants "{\"name\":\"fleet-other-$tag\"}"
	FT2=$(jget id)
	for who in fa:tenant-admin fd:tenant-developer fu:tenant-user; do
		api $ADMIN POST "/tenants/$FT/users" \
			"{\"name\":\"${who%%:*}-$tag\",\"role\":\"${who#*:}\",\"password\":\"password-$tag\"}"
	done
	api $ADMIN POST "/tenants/$FT2/users" \
		"{\"name\":\"fo-$tag\",\"role\":\"tenant-admin\",\"password\":\"password-$tag\"}"
	local FA=fa-$tag:password-$tag FD=fd-$tag:password-$tag FO=fo-$tag:password-$tag
	FU=fu-$tag:password-$tag
	api "$FA" POST "/tenants/$FT/applications" '{"name":"fleet","credentialsMode":"trustful"}'
	expect 201 "[$tag] fleet application"
	local FAPP=$(jget id) TOKEN=$(jget applicationToken)
	api "$FD" POST "/applications/$FAPP/schemas" \
		'{"kind":"configuration","schema":{"type":"record","name":"Cfg","fields":[{"name":"rate","type":"int","default":5}]}}'
	api "$FD" POST "/applications/$FAPP/schemas" \
		'{"kind":"profile-server","schema":{"type":"record","name":"Sp","fields":[{"name":"tier","type":"string"}]}}'
	expect 201 "[$tag] profile-server schema"
	api "$FD" POST "/applications/$FAPP/groups" '{"name":"all","weight":1}'
	local GALL=$(jget id) GGOLD
	api "$FD" POST "/applications/$FAPP/configurations" \
		"{\"groupId\":$GALL,\"schemaVersion\":1,\"body\":{\"rate\":3}}"
	api "$FD" POST "/applications/$FAPP/groups" '{"name":"gold","weight":10,"filter":{"sp.tier":"gold"}}'
	expect 201 "[$tag] group with a server-profile filter"
	GGOLD=$(jget id)
	api "$FD" POST "/applications/$FAPP/configurations" \
		"{\"groupId\":$GGOLD,\"schemaVersion\":1,\"body\":{\"rate\":42}}"
	expect 201 "[$tag] configuration of the gold group"
	api "$FA" POST "/applications/$FAPP/log-appenders" '{"name":"store","settings":{"type":"endpoint-store"}}'
	expect 201 "[$tag] endpoint-store log appender"

	spawn "$DEVICE" --bootstrap "127.0.0.1:$bport" --app-token "$TOKEN" --state-dir "$work/dev-$tag" \
		--profile '{"region":"eu"}' --log-rate 20 --log-total 5 --log-batch 2 --verbose \
		>"$work/dev-$tag.out" 2>"$work/dev-$tag.err"
	local DEV=$SPAWNED
	check "[$tag] the device gets the catch-all configuration" \
		wait_for 20000 has_line "$work/dev-$tag.err" 'json={"rate":3}'
	check "[$tag] the list shows it online on the operations node" wait_for 10000 ep_is \
		"/applications/$FAPP/endpoints" \
		"len(r['items']) == 1 and r['items'][0]['online'] and r['items'][0]['nodeId'] == '$OPS_NODE' and r['items'][0]['groupIds'] == [$GALL] and r['nextCursor'] is None"
	api "$FU" GET "/applications/$FAPP/endpoints"
	local EKH
	EKH=$(jget items.0.keyHash)
	check "[$tag] item: key hash, times, client profile, configuration hash" python3 -c '
import sys, json
e = json.loads(sys.argv[1])["items"][0]
assert len(e["keyHash"]) == 43 and e["registeredAt"] > 0 and abs(e["lastSeen"] - e["registeredAt"]) < 60000
assert e["clientProfile"] == {"region": "eu"} and e["serverProfile"] is None and e["ownerId"] is None
assert len(e["configurationHash"]) == 64' "$RESP"
	check "[$tag] filter online=false: none" ep_is "/applications/$FAPP/endpoints?online=false" "r['items'] == []"
	check "[$tag] filter online=true: it" ep_is "/applications/$FAPP/endpoints?online=true" "len(r['items']) == 1"
	check "[$tag] filter group=gold: none" ep_is "/applications/$FAPP/endpoints?group=$GGOLD" "r['items'] == []"
	check "[$tag] filter group=all: it" ep_is "/applications/$FAPP/endpoints?group=$GALL" "len(r['items']) == 1"
	check "[$tag] filter owner: none" ep_is "/applications/$FAPP/endpoints?owner=alice" "r['items'] == []"
	check "[$tag] profile filter cp.region=eu: it" ep_is \
		"/applications/$FAPP/endpoints?filter=%7B%22cp.region%22%3A%22eu%22%7D" "len(r['items']) == 1"
	check "[$tag] profile filter cp.region=us: none" ep_is \
		"/applications/$FAPP/endpoints?filter=%7B%22cp.region%22%3A%22us%22%7D" "r['items'] == []"
	check "[$tag] limit=1: one page, then the cursor's page is empty" ep_is \
		"/applications/$FAPP/endpoints?limit=1" "len(r['items']) == 1 and r['nextCursor'] == '$EKH'"
	check "[$tag] after the cursor: nothing" ep_is \
		"/applications/$FAPP/endpoints?cursor=$EKH" "r['items'] == [] and r['nextCursor'] is None"
	check "[$tag] GET one endpoint" ep_is "/applications/$FAPP/endpoints/$EKH" "r['keyHash'] == '$EKH' and r['online']"
	check "[$tag] effective configuration: catch-all, delivered" wait_for 10000 ep_is \
		"/applications/$FAPP/endpoints/$EKH/configuration" \
		"r['groupIds'] == [$GALL] and r['configuration'] == {'rate': 3} and r['delivered'] and r['hash'] == r['deliveredHash']"

	echo "== [$tag] bad inputs on the fleet routes"
	for q in "limit=0" "limit=1001" "limit=x" "online=maybe" "group=-1" "group=x" "cursor=a%20b" \
		"filter=notjson" "filter=%7B%22cp.x%22%3A%7B%22%24regx%22%3A1%7D%7D" "owner=" "limit=1&limit=2"; do
		api "$FU" GET "/applications/$FAPP/endpoints?$q"
		expect_err 400 invalid "${q%%=*}" "[$tag] endpoints?$q"
	done
	for q in "from=x" "to=-1" "to=4&from=5" "cursor=!!" "cursor=$(printf 'x:y' | base64)" "endpoint=a%20b" "limit=0"; do
		api "$FU" GET "/applications/$FAPP/logs?$q"
		expect_err 400 invalid "${q%%=*}" "[$tag] logs?$q"
	done
	local big
	big=$(head -c 5000 /dev/zero | tr '\0' 'a')
	api "$FU" GET "/applications/$FAPP/endpoints?filter=$big"
	expect_err 400 invalid filter "[$tag] a filter over 4096 bytes"
	api "$FU" GET "/applications/$FAPP/endpoints/nosuchkey"
	expect_err 404 not_found "" "[$tag] unknown endpoint"
	api "$FU" GET "/applications/$FAPP/endpoints/bad%20key/server-profile"
	expect_err 404 not_found "" "[$tag] malformed key hash"
	api "$FU" GET "/applications/999999/endpoints"
	expect_err 404 not_found "" "[$tag] unknown application"

	echo "== [$tag] server profile: validated, ETag, pushed to the live session"
	api_h "$FU" GET "/applications/$FAPP/endpoints/$EKH/server-profile"
	check "[$tag] server profile never set: null, ETag \"1\"" \
		test "$CODE" = 200 -a "$(jget serverProfile)" = None -a "$(etag)" = '"1"'
	api_h "$FD" PUT "/applications/$FAPP/endpoints/$EKH/server-profile" '{"serverProfile":{"tier":"gold"}}'
	expect_err 428 precondition_required "" "[$tag] PUT without If-Match"
	api_h "$FD" PUT "/applications/$FAPP/endpoints/$EKH/server-profile" '{"serverProfile":{"tier":7}}' '"1"'
	expect_err 400 schema_mismatch '$.serverProfile.tier' "[$tag] server profile against profile-server"
	api_h "$FD" PUT "/applications/$FAPP/endpoints/$EKH/server-profile" '{"profile":{}}' '"1"'
	expect_err 400 unknown_field "" "[$tag] unknown field"
	api_h "$FD" PUT "/applications/$FAPP/endpoints/$EKH/server-profile" '{"serverProfile":{"tier":"gold"}}' '"x"'
	expect_err 400 invalid "" "[$tag] malformed If-Match"
	api_h "$FU" PUT "/applications/$FAPP/endpoints/$EKH/server-profile" '{"serverProfile":{"tier":"gold"}}' '"1"'
	expect_err 403 forbidden "" "[$tag] a tenant user may not set it"
	api_h "$FD" PUT "/applications/$FAPP/endpoints/$EKH/server-profile" '{"serverProfile":{"tier":"gold"}}' '"1"'
	check "[$tag] developer sets the server profile -> 200, ETag \"2\"" \
		test "$CODE" = 200 -a "$(etag)" = '"2"' -a "$(jget version)" = 1
	api_h "$FD" PUT "/applications/$FAPP/endpoints/$EKH/server-profile" '{"serverProfile":{"tier":"iron"}}' '"1"'
	expect_err 412 precondition_failed "" "[$tag] a stale If-Match"
	check "[$tag] the device receives the gold configuration (groups re-evaluated on the session's node)" \
		wait_for 20000 has_line "$work/dev-$tag.err" 'json={"rate":42}'
	check "[$tag] the endpoint is in the gold group" wait_for 10000 ep_is \
		"/applications/$FAPP/endpoints/$EKH" "r['groupIds'] == [$GALL, $GGOLD] and r['serverProfile'] == {'tier': 'gold'}"
	check "[$tag] filter group=gold and sp filter: it" ep_is \
		"/applications/$FAPP/endpoints?group=$GGOLD&filter=%7B%22sp.tier%22%3A%22gold%22%7D" "len(r['items']) == 1"
	check "[$tag] effective configuration: gold, delivered" wait_for 10000 ep_is \
		"/applications/$FAPP/endpoints/$EKH/configuration" \
		"r['groupIds'] == [$GALL, $GGOLD] and r['configuration'] == {'rate': 42} and r['delivered']"
	[ $# = 0 ] || check "[$tag] the announcement key is not left in etcd" \
		etcd_lacks "$ETCD" "/kaa/$FLEET_CLUSTER/apps/$FAPP/endpoints/$EKH"

	echo "== [$tag] log records"
	check "[$tag] 5 log records stored" wait_for 20000 ep_is "/applications/$FAPP/logs" \
		"len(r['items']) == 5 and r['nextCursor'] is None"
	api "$FU" GET "/applications/$FAPP/logs"
	local all=$RESP
	check "[$tag] records: key hash, batch, order, JSON body" python3 -c '
import sys, json
items = json.loads(sys.argv[1])["items"]
assert all(i["endpointKeyHash"] == sys.argv[2] and i["record"]["seq"] >= 0 for i in items)
keys = [(i["receivedAt"], i["endpointKeyHash"], i["batchId"], i["index"]) for i in items]
assert keys == sorted(keys) and len(set(keys)) == 5' "$all" "$EKH"
	check "[$tag] paging with limit=2 and cursor walks the same records" python3 -c '
import sys, json, urllib.request, base64
url, auth, want = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])["items"]
got, cur = [], None
for _ in range(10):
    q = url + "?limit=2" + ("&cursor=" + cur if cur else "")
    req = urllib.request.Request(q, headers={"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()})
    page = json.load(urllib.request.urlopen(req, timeout=10))
    got += page["items"]
    cur = page["nextCursor"]
    if not cur:
        break
assert got == want, (got, want)' "$URL/applications/$FAPP/logs" "$FU" "$all"
	local t0
	t0=$(python3 -c 'import sys, json; print(json.loads(sys.argv[1])["items"][0]["receivedAt"])' "$all")
	check "[$tag] time range before the first record: none" ep_is "/applications/$FAPP/logs?to=$t0" "r['items'] == []"
	check "[$tag] time range from the first record: all" ep_is "/applications/$FAPP/logs?from=$t0" "len(r['items']) == 5"
	check "[$tag] per endpoint (query)" ep_is "/applications/$FAPP/logs?endpoint=$EKH" "len(r['items']) == 5"
	check "[$tag] per endpoint (path)" ep_is "/applications/$FAPP/endpoints/$EKH/logs?limit=3" \
		"len(r['items']) == 3 and r['nextCursor']"
	check "[$tag] another endpoint: none" ep_is "/applications/$FAPP/logs?endpoint=someoneelse" "r['items'] == []"

	echo "== [$tag] live counts"
	check "[$tag] stats: 1 online, 1 endpoint, 5 records in the window" ep_is "/applications/$FAPP/stats" \
		"r['sessionsOnline'] == 1 and r['endpoints'] == 1 and r['registrationsInWindow'] == 1 and r['recordsInWindow'] == 5 and r['nodes'] == [{'id': '$OPS_NODE', 'sessions': 1}]"
	api $ADMIN GET "/applications/$FAPP/stats"
	expect 200 "[$tag] a platform admin reads the counts"

	echo "== [$tag] tenant isolation and roles on the fleet routes"
	for p in "endpoints" "endpoints/$EKH" "endpoints/$EKH/server-profile" "endpoints/$EKH/configuration" \
		"endpoints/$EKH/logs" "logs" "stats"; do
		api "$FO" GET "/applications/$FAPP/$p"
		expect_err 404 not_found "" "[$tag] another tenant's admin: GET $p"
	done
	api_h "$FO" PUT "/applications/$FAPP/endpoints/$EKH/server-profile" '{"serverProfile":{"tier":"x"}}' '"2"'
	expect_err 404 not_found "" "[$tag] another tenant's admin: PUT server-profile"
	api $ADMIN GET "/applications/$FAPP/endpoints"
	expect_err 403 forbidden "" "[$tag] a platform admin does not read endpoints"
	api "" GET "/applications/$FAPP/endpoints"
	expect 401 "[$tag] no credentials"
	api "$FA" GET "/applications/$FAPP/endpoints"
	expect 200 "[$tag] tenant admin reads endpoints"

	kill -TERM "$DEV"
	wait "$DEV"
	check "[$tag] device stopped: offline in the list" wait_for 10000 ep_is \
		"/applications/$FAPP/endpoints?online=false" "len(r['items']) == 1 and r['items'][0]['nodeId'] is None"
	check "[$tag] stats: 0 online" ep_is "/applications/$FAPP/stats" "r['sessionsOnline'] == 0"
	kill -TERM "$cnode"
	wait "$cnode"
	check "[$tag] fleet control node exits 0" [ $? = 0 ]
	if [ "$onode" != "$cnode" ]; then
		kill -TERM "$onode"
		wait "$onode"
		check "[$tag] fleet operations node exits 0" [ $? = 0 ]
	fi
}

echo "== SQLite, standalone"
start_control sa "sqlite:$work/sa/kaa.db"
sa=$NODE_PID
check "sqlite node ready" wait_for 20000 http_is 200 "$BASE/readyz"
lifecycle sqlite
kill -TERM "$sa"
wait "$sa"
check "sqlite node exits 0" [ $? = 0 ]
fleet sqlite "sqlite:$work/fleet/kaa.db" "sqlite:$work/fleet/endpoints.db"

echo "== PostgreSQL, two control replicas on one database and etcd"
CLUSTER=api$$
dbname=kaa_api_$$
psql "$PG" -qc "CREATE DATABASE $dbname" >/dev/null
PGURL=${PG%/*}/$dbname
start_control r1 "$PGURL" --etcd "$ETCD" --cluster "$CLUSTER" --lease-ttl 3 \
	--rebalance-interval 1 --rebalance-cooldown 1
r1=$NODE_PID u1=$BASE
start_control r2 "$PGURL" --etcd "$ETCD" --cluster "$CLUSTER" --lease-ttl 3 \
	--rebalance-interval 1 --rebalance-cooldown 1
r2=$NODE_PID u2=$BASE
check "replica 1 ready" wait_for 20000 http_is 200 "$u1/readyz"
check "replica 2 ready" wait_for 20000 http_is 200 "$u2/readyz"
check "exactly one leader" wait_for 10000 bash -c \
	"[ \$(( \$(metric $u1 kaa_control_leader) + \$(metric $u2 kaa_control_leader) )) = 1 ]"
URL=$u1/api/v1
lifecycle postgresql
URL=$u1/api/v1
api $ADMIN POST /tenants '{"name":"shared"}'
ts=$(jget id)
URL=$u2/api/v1
api $ADMIN GET "/tenants/$ts"
expect 200 "a tenant made through replica 1 is read through replica 2"
api $ADMIN POST "/tenants/$ts/users" '{"name":"via2","role":"tenant-user","password":"password-2"}'
expect 201 "replica 2 writes too"
URL=$u1/api/v1
api via2:password-2 GET /me
expect 200 "the user made through replica 2 logs in through replica 1"
echo "== rebalancing: the leader plans moves from the operations nodes' records"
lease=$(curl -s --max-time 2 -X POST "$ETCD/v3/lease/grant" -d '{"TTL":60}' |
	python3 -c 'import sys, json; print(json.load(sys.stdin)["ID"])')
put_leased() { # key value
	curl -s --max-time 2 -X POST "$ETCD/v3/kv/put" \
		-d "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\",\"lease\":\"$lease\"}" >/dev/null
}
put_leased "/kaa/$CLUSTER/nodes/ops-x" '{"id":"ops-x","services":["operations"],"host":"10.9.0.1","ports":{"operations":9080},"sessions":900,"load":0,"draining":false}'
put_leased "/kaa/$CLUSTER/nodes/ops-y" '{"id":"ops-y","services":["operations"],"host":"10.9.0.2","ports":{"operations":9080},"sessions":0,"load":0,"draining":false}'
put_leased "/kaa/$CLUSTER/nodes/ops-z" '{"id":"ops-z","services":["operations"],"host":"10.9.0.3","ports":{"operations":9080},"sessions":5000,"load":0,"draining":true}'
plan_ok() {
	etcd_value "$ETCD" "/kaa/$CLUSTER/rebalance" | python3 -c '
import json, sys
p = json.load(sys.stdin)
assert p["seq"] >= 1 and p["moves"] == [{"from": "ops-x", "to": "ops-y", "sessions": 450}], p'
}
export -f plan_ok etcd_value b64
export ETCD CLUSTER
check "plan: 450 sessions from ops-x to ops-y, the draining node left alone" wait_for 15000 plan_ok
put_leased "/kaa/$CLUSTER/nodes/ops-x" '{"id":"ops-x","services":["operations"],"host":"10.9.0.1","ports":{"operations":9080},"sessions":460,"load":0,"draining":false}'
put_leased "/kaa/$CLUSTER/nodes/ops-y" '{"id":"ops-y","services":["operations"],"host":"10.9.0.2","ports":{"operations":9080},"sessions":440,"load":0,"draining":false}'
seq_now() { etcd_value "$ETCD" "/kaa/$CLUSTER/rebalance" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])'; }
s1=$(seq_now)
leader_url() { [ "$(metric "$u1" kaa_control_leader)" = 1 ] && echo "$u1" || echo "$u2"; }
lu=$(leader_url)
c0=$(metric "$lu" kaa_control_rebalance_checks_total)
p0=$(metric "$lu" kaa_control_rebalance_plans_total)
export lu c0
checks_past() { [ "$(metric "$lu" kaa_control_rebalance_checks_total)" -ge $((c0 + 3)) ]; }
export -f checks_past metric
check "the leader keeps checking (3 more passes)" wait_for 15000 checks_past
check "no new plan once balanced: seq and plan count unchanged" \
	[ "$(seq_now)" = "$s1" ] && [ "$(metric "$lu" kaa_control_rebalance_plans_total)" = "$p0" ]
echo "== nodes and drain through REST"
URL=$u2/api/v1
api $ADMIN GET /nodes
expect 200 "GET /nodes"
check "GET /nodes lists the registered nodes with their sessions" python3 -c '
import json, sys
items = {n["id"]: n for n in json.loads(sys.argv[1])["items"]}
assert items["ops-x"]["sessions"] == 460 and items["ops-z"]["draining"] is True, items
assert "r1" in items and "control" in items["r1"]["services"], items' "$RESP"
api via2:password-2 GET /nodes
expect 403 "GET /nodes as a tenant user"
api "" GET /nodes
expect 401 "GET /nodes without credentials"
api $ADMIN PUT /nodes/ops-x/drain '{"timeoutSeconds":45}'
expect 202 "PUT /nodes/ops-x/drain"
check "the drain key holds the deadline" python3 -c '
import json, sys, time
v = json.loads(sys.argv[1]); d = json.loads(sys.argv[2])
assert abs(v["deadline_ms"] - d["deadlineMs"]) == 0 and d["deadlineMs"] > time.time() * 1000 + 40000, (v, d)' \
	"$(etcd_value "$ETCD" "/kaa/$CLUSTER/drain/ops-x")" "$RESP"
api $ADMIN GET /nodes
check "GET /nodes shows the drain request" python3 -c '
import json, sys
items = {n["id"]: n for n in json.loads(sys.argv[1])["items"]}
assert items["ops-x"]["drainRequested"] is True and items["ops-y"]["drainRequested"] is False' "$RESP"
api $ADMIN PUT /nodes/no-such-node/drain
expect_err 404 not_found "" "drain an unknown node"
api $ADMIN PUT /nodes/ops-x/drain '{"timeoutSeconds":0}'
expect_err 400 invalid '$.timeoutSeconds' "drain timeout 0"
api $ADMIN PUT /nodes/ops-x/drain '{"deadline":5}'
expect_err 400 unknown_field "" "drain with an unknown field"
api via2:password-2 PUT /nodes/ops-x/drain
expect 403 "drain as a tenant user"
api $ADMIN DELETE /nodes/ops-x/drain
expect 204 "DELETE /nodes/ops-x/drain"
check "the drain key is gone" [ -z "$(etcd_value "$ETCD" "/kaa/$CLUSTER/drain/ops-x")" ]
api $ADMIN DELETE /nodes/ops-x/drain
expect_err 404 not_found "" "cancel a drain nobody asked for"
curl -s --max-time 2 -X POST "$ETCD/v3/lease/revoke" -d "{\"ID\":\"$lease\"}" >/dev/null

kill -TERM "$r1" "$r2"
wait "$r1"
check "replica 1 exits 0" [ $? = 0 ]
wait "$r2"
check "replica 2 exits 0" [ $? = 0 ]
psql "$PG" -qc "DROP DATABASE $dbname" >/dev/null 2>&1

echo "== PostgreSQL and MongoDB, control and operations on separate nodes over etcd"
fdb=kaa_fleet_$$
psql "$PG" -qc "CREATE DATABASE $fdb" >/dev/null
mbase=${MONGO%%\?*}
mbase=${mbase%/}
FLEET_CLUSTER=fleet$$
fleet postgresql "${PG%/*}/$fdb" "$mbase/kaa_fleet_$$" --etcd "$ETCD" --cluster "$FLEET_CLUSTER" --lease-ttl 3
psql "$PG" -qc "DROP DATABASE $fdb" >/dev/null 2>&1

for f in "$work"/*.log; do
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
		fail "sanitizer report in $(basename "$f")"
		sed -n '1,60p' "$f"
	fi
done
summary
