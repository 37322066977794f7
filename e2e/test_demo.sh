#!/usr/bin/env bash
# `make run`'s promise: kaa-node --demo on embedded defaults seeds a demo
# application and prints a kaa-device command; that exact command connects
# a device that receives its configuration. A second start keeps the data
# and prints the same token. Needs KAA_ASAN_BIN_DIR (or KAA_BIN_DIR).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BIN_DIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_demo.XXXXXX")
trap 'cleanup_pids; rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

read -r pc pb po pi <<<"$(free_ports 4)"
start_demo() { # LOG
	(cd "$work" && exec env KAA_ADMIN_USER=admin KAA_ADMIN_PASSWORD=demo-password-1 \
		"$BIN_DIR/kaa-node" --demo --host 127.0.0.1 --bind 127.0.0.1 --control-port "$pc" \
		--bootstrap-port "$pb" --operations-port "$po" --internode-port "$pi" \
		>"$work/$1.out" 2>"$work/$1.err") &
	E2E_PIDS+=($!)
	NODE_PID=$!
	check "$1: ready" wait_for 30000 http_is 200 "http://127.0.0.1:$pc/readyz"
}
printed_cmd() { sed -n 's/^    \(.*kaa-device .*\)$/\1/p' "$work/$1.out"; }

echo "== first start: demo data and the device command"
start_demo first
check "prints the device command" wait_for 5000 bash -c "grep -q -- '--app-token' '$work/first.out'"
cmd=$(printed_cmd first)
token=$(sed -n 's/^kaa demo: application token //p' "$work/first.out")
check "the demo tenant exists (REST)" bash -c \
	"curl -s -u admin:demo-password-1 'http://127.0.0.1:$pc/api/v1/tenants' | grep -q '\"demo\"'"
# shellcheck disable=SC2086 # the printed command, word-split as a user's shell would
(cd "$work" && timeout 60 $cmd --duration 3 --json >"$work/dev.json" 2>"$work/dev.err")
check "the printed command connects a device that receives its configuration" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["registered"] == 1 and s["configurations_received"] >= 1 and s["errors"] == 0, s' "$work/dev.json"
check "... and shows the document" grep -q 'hello from kaa' "$work/dev.err"
kill -TERM "$NODE_PID"
wait "$NODE_PID"
check "SIGTERM -> exit 0" [ $? = 0 ]

echo "== second start: the same data"
start_demo second
check "same token printed again" wait_for 5000 bash -c \
	"grep -q 'application token $token' '$work/second.out'"
check "one demo tenant only" bash -c "[ \$(curl -s -u admin:demo-password-1 \
	'http://127.0.0.1:$pc/api/v1/tenants' | grep -o '\"demo\"' | wc -l) = 1 ]"
kill -TERM "$NODE_PID"
wait "$NODE_PID"
check "SIGTERM -> exit 0" [ $? = 0 ]

for f in "$work"/*.err; do
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
		fail "sanitizer report in $(basename "$f")"
		sed -n '1,40p' "$f"
	fi
done
summary
