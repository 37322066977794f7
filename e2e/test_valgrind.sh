#!/usr/bin/env bash
# kaa-node and the coordination-layer test suites under valgrind (built
# without sanitizers): no invalid access, no definite or possible leak, and a
# clean exit on SIGTERM. e2e/valgrind.supp suppresses only gRPC/abseil
# globals. Needs KAA_BIN_DIR and KAA_TEST_ETCD from e2e/run-tests.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BIN_DIR=${KAA_BIN_DIR:?}
TEST_DIR=$BIN_DIR/../tests
ETCD=${KAA_TEST_ETCD:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_valgrind.XXXXXX")
trap 'cleanup_pids; rm -rf "$work"' EXIT
VG=(valgrind --leak-check=full --show-leak-kinds=definite,possible
	--errors-for-leak-kinds=definite,possible --error-exitcode=99 --num-callers=40
	--suppressions="$here/valgrind.supp")

# vg_node NAME args...: runs kaa-node under valgrind until ready, then SIGTERM.
vg_node() {
	local name=$1 port rc
	shift
	port=$(free_ports 1)
	mkdir -p "$work/$name"
	(cd "$work/$name" && exec "${VG[@]}" --log-file="$work/$name.vg" "$BIN_DIR/kaa-node" \
		--services control --control-port "$port" --bind 127.0.0.1 --host 127.0.0.1 \
		--node-id "vg-$name" --cluster "vg$$" "$@" 2>"$work/$name.log") &
	local pid=$!
	E2E_PIDS+=($pid)
	check "$name: ready under valgrind" wait_for 60000 http_is 200 "http://127.0.0.1:$port/readyz"
	check "$name: leads" wait_for 30000 metric_is "http://127.0.0.1:$port" kaa_control_leader 1
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	check "$name: SIGTERM -> exit 0 with no valgrind error (got $rc)" [ "$rc" = 0 ]
	if [ "$rc" != 0 ]; then
		grep -A30 -E 'lost in loss record|Invalid|uninitialised' "$work/$name.vg" | head -80
	fi
}

echo "== kaa-node standalone"
vg_node standalone
echo "== kaa-node on etcd"
vg_node etcd --etcd "$ETCD" --lease-ttl 3

for t in test_coord_local test_node_record test_etcd_coord test_meta_store_sqlite \
	test_endpoint_codec test_filter test_json_merge test_avro test_auth test_bootstrap \
	test_jwt test_rendezvous test_rebalance test_owner_dir test_internode test_ops_server \
	test_log_appender test_endpoint_store test_operations \
	test_desired test_workqueue test_autoscale test_kubeconfig test_op_flags \
	test_sdk_log_queue test_sdk_state test_sdk_misc test_sdk_events test_event_router; do
	echo "== $t"
	if [ ! -x "$TEST_DIR/$t" ]; then
		fail "$t not built in $TEST_DIR"
		continue
	fi
	"${VG[@]}" --log-file="$work/$t.vg" "$TEST_DIR/$t" >"$work/$t.out" 2>&1
	rc=$?
	check "$t under valgrind (exit $rc)" [ "$rc" = 0 ]
	if [ "$rc" != 0 ]; then
		tail -20 "$work/$t.out"
		grep -A30 -E 'lost in loss record|Invalid|uninitialised' "$work/$t.vg" | head -80
	fi
done
summary
