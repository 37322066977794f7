#!/usr/bin/env bash
# Test runner called by `make test` (and `make unit` with --unit-only).
#
#   e2e/run-tests.sh [--unit-only] BUILD_DIR        (BUILD_DIR e.g. build/asan)
#
# Suites, in order; each binary or script is one suite:
#   1. unit:        BUILD_DIR/tests/test_X for every tests/{unit,sdk,operator}/test_X.c
#   2. integration: BUILD_DIR/tests/test_X for every tests/integration/test_X.c,
#                   against real etcd, PostgreSQL and FerretDB started by
#                   e2e/harness/harness.sh in a temporary directory
#   3. e2e:         every executable e2e/test_*.sh, same environment
#   4. etcd 3.4:    when /usr/bin/etcd (Debian's etcd-server) exists, the
#                   integration binaries named test_etcd* again, against it
#
# Environment given to integration and e2e suites:
#   KAA_TEST_ETCD, KAA_TEST_PG, KAA_TEST_MONGO   server URLs
#   KAA_TEST_ETCD_DIR, KAA_TEST_PG_DIR, KAA_TEST_MONGO_DIR   harness state dirs
#                   (e.g. "$KAA_HARNESS" kill etcd "$KAA_TEST_ETCD_DIR", then restart)
#   KAA_TEST_ETCD_VERSION   e.g. 3.6.16
#   KAA_HARNESS     absolute path of e2e/harness/harness.sh
#   KAA_BIN_DIR     absolute build/bin (release binaries)
#   KAA_ASAN_BIN_DIR  BUILD_DIR/bin (sanitized binaries)
#   TMPDIR          a scratch directory removed at the end; harness servers
#                   a suite starts under it and leaves behind are stopped
# A server a suite leaves stopped or killed is restarted before the next one.
#
# Knobs: KAA_SUITE_TIMEOUT (seconds per suite, default 600), KAA_TEST_FILTER
# (only run suites whose name contains it), KAA_KEEP_TMP=1 (keep the temporary
# directory with the server logs).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=$ROOT/e2e/harness/harness.sh
SUITE_TIMEOUT=${KAA_SUITE_TIMEOUT:-600}
FILTER=${KAA_TEST_FILTER:-}
DEBIAN_ETCD=/usr/bin/etcd

UNIT_ONLY=0
if [ "${1:-}" = --unit-only ]; then
    UNIT_ONLY=1
    shift
fi
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 [--unit-only] BUILD_DIR   (BUILD_DIR must exist, e.g. build/asan)" >&2
    exit 2
fi
cd "$ROOT" || exit 2
BUILD=$(cd "$1" && pwd)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

now_ms() { date +%s%3N; }
secs() { printf '%d.%01d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

RESULTS=()
SUITE_PID=
TMP=
PASSED=0
FAILED=0
record() { # PASS|FAIL name detail
    RESULTS+=("$1 $2${3:+ ($3)}")
    if [ "$1" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

interrupted() {
    echo "run-tests.sh: interrupted" >&2
    if [ -n "$SUITE_PID" ]; then
        kill -TERM -- "-$SUITE_PID" 2>/dev/null || kill -TERM "$SUITE_PID" 2>/dev/null
        wait "$SUITE_PID" 2>/dev/null
    fi
    exit 130
}
trap interrupted INT TERM

wanted() { [ -z "$FILTER" ] || [[ $1 == *"$FILTER"* ]]; }

# run_suite NAME CMD...: one suite, with a timeout
run_suite() {
    local name=$1 t0 rc dt
    shift
    echo
    echo "==== $name ===="
    t0=$(now_ms)
    # timeout puts the suite into a process group of its own, so that a hang
    # is killed with everything it started; it runs in the background so that
    # an INT/TERM trap of this script is not deferred until the suite ends
    timeout --kill-after=10 "$SUITE_TIMEOUT" "$@" &
    SUITE_PID=$!
    wait "$SUITE_PID"
    rc=$?
    SUITE_PID=
    dt=$(secs $(($(now_ms) - t0)))
    if [ "$rc" = 0 ]; then
        record PASS "$name" "${dt} s"
    elif [ "$rc" = 124 ]; then
        echo "==== $name: timed out after ${SUITE_TIMEOUT}s ===="
        record FAIL "$name" "timed out after ${SUITE_TIMEOUT} s"
    elif [ "$rc" -gt 128 ]; then
        echo "==== $name: killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null)) ===="
        record FAIL "$name" "signal $((rc - 128)), ${dt} s"
    else
        echo "==== $name: exit status $rc ===="
        record FAIL "$name" "exit $rc, ${dt} s"
    fi
}

# tests/<kind>/test_X.c -> names test_X
test_names() {
    local f
    for f in "tests/$1"/test_*.c; do
        [ -e "$f" ] || continue
        f=${f##*/}
        echo "${f%.c}"
    done
}

run_binaries() { # kind label
    local name
    for name in $(test_names "$1"); do
        wanted "$name" || continue
        if [ ! -x "$BUILD/tests/$name" ]; then
            echo "==== $2: $name: $BUILD/tests/$name was not built ===="
            record FAIL "$2: $name" "not built"
            continue
        fi
        run_suite "$2: $name" "$BUILD/tests/$name"
        [ "$2" = unit ] || ensure_servers "$2: $name"
    done
}

summary() {
    local r
    echo
    echo "==== summary ===="
    for r in "${RESULTS[@]}"; do
        echo "$r"
    done
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
}

# ---- unit ----------------------------------------------------------------------

run_binaries unit unit
run_binaries sdk unit
run_binaries operator unit

if [ "$UNIT_ONLY" = 1 ]; then
    summary
    exit
fi

# ---- servers -------------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kaa-test.XXXXXX") || exit 1
chmod 0755 "$TMP" # postgres runs as an unprivileged user and must reach $TMP/postgres
mkdir -p "$TMP/tmp"

# stop every harness server under $TMP (ours and any a suite left behind)
cleanup() {
    local kindfile dir
    trap - EXIT
    trap '' INT TERM
    while IFS= read -r kindfile; do
        dir=${kindfile%/kind}
        "$HARNESS" stop "$(cat "$kindfile")" "$dir" 2>&1 | sed 's/^/cleanup: /' >&2
    done < <(find "$TMP" -name kind -type f 2>/dev/null)
    if [ -n "${KAA_KEEP_TMP:-}" ]; then
        echo "run-tests.sh: kept $TMP (server logs: $TMP/*/server.log)" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT

SERVERS="etcd postgres ferretdb"

# start the servers in parallel; each harness start prints its assignments
start_servers() {
    local k rc=0
    local -A pids=()
    for k in $SERVERS; do
        "$HARNESS" start "$k" "$TMP/$k" >"$TMP/$k.out" &
        pids[$k]=$!
    done
    for k in $SERVERS; do
        if ! wait "${pids[$k]}"; then
            record FAIL "harness: start $k" "see the log above"
            rc=1
        fi
    done
    return $rc
}

etcd_version() { # binary
    "$1" --version 2>/dev/null | sed -n 's/^etcd Version: *//p' | head -1
}

# after a suite: restart any server it left stopped or killed
ensure_servers() {
    local k
    for k in $SERVERS; do
        if ! "$HARNESS" status "$k" "$TMP/$k"; then
            echo "==== $1 left $k stopped; restarting it ===="
            if ! "$HARNESS" restart "$k" "$TMP/$k" >/dev/null; then
                record FAIL "harness: restart $k after $1"
            fi
        fi
    done
}

echo
echo "==== starting etcd, postgres, ferretdb in $TMP ===="
t0=$(now_ms)
SERVERS_OK=1
start_servers || SERVERS_OK=0
if [ "$SERVERS_OK" = 1 ]; then
    echo "==== servers started in $(secs $(($(now_ms) - t0))) s ===="
else
    echo "==== a server did not start; integration and e2e suites are not run ===="
fi

if [ "$SERVERS_OK" = 1 ]; then
    set -a
    # shellcheck disable=SC1090,SC1091
    . "$TMP/etcd/env"
    # shellcheck disable=SC1090,SC1091
    . "$TMP/postgres/env"
    # shellcheck disable=SC1090,SC1091
    . "$TMP/ferretdb/env"
    set +a
    export KAA_HARNESS=$HARNESS
    export KAA_TEST_ETCD_DIR=$TMP/etcd KAA_TEST_PG_DIR=$TMP/postgres KAA_TEST_MONGO_DIR=$TMP/ferretdb
    KAA_TEST_ETCD_VERSION=$(etcd_version "$(head -1 "$TMP/etcd/cmd")")
    export KAA_TEST_ETCD_VERSION
    export KAA_BIN_DIR=$ROOT/build/bin KAA_ASAN_BIN_DIR=$BUILD/bin
    export TMPDIR=$TMP/tmp
    echo "KAA_TEST_ETCD=$KAA_TEST_ETCD (etcd $KAA_TEST_ETCD_VERSION)"
    echo "KAA_TEST_PG=$KAA_TEST_PG"
    echo "KAA_TEST_MONGO=$KAA_TEST_MONGO"

    # ---- integration and e2e ------------------------------------------------------
    run_binaries integration integration

    for script in e2e/test_*.sh; do
        [ -e "$script" ] || continue
        name=${script##*/}
        wanted "$name" || continue
        if [ ! -x "$script" ]; then
            echo "==== e2e: $name is not executable, skipped ===="
            continue
        fi
        run_suite "e2e: $name" "$ROOT/$script"
        ensure_servers "e2e: $name"
    done

    # ---- etcd 3.4 (Debian) ----------------------------------------------------------
    etcd_tests=()
    for name in $(test_names integration); do
        [[ $name == test_etcd* ]] && wanted "$name" && etcd_tests+=("$name")
    done
    if [ -x "$DEBIAN_ETCD" ] && [ ${#etcd_tests[@]} -gt 0 ]; then
        echo
        echo "==== starting Debian etcd $(etcd_version "$DEBIAN_ETCD") ($DEBIAN_ETCD) ===="
        if out=$(KAA_ETCD_BIN=$DEBIAN_ETCD "$HARNESS" start etcd "$TMP/etcd34"); then
            for name in "${etcd_tests[@]}"; do
                label="integration [etcd $(etcd_version "$DEBIAN_ETCD")]: $name"
                if [ ! -x "$BUILD/tests/$name" ]; then
                    record FAIL "$label" "not built"
                    continue
                fi
                # shellcheck disable=SC2097,SC2098
                run_suite "$label" env "${out}" KAA_TEST_ETCD_DIR="$TMP/etcd34" \
                    KAA_ETCD_BIN="$DEBIAN_ETCD" KAA_TEST_ETCD_VERSION="$(etcd_version "$DEBIAN_ETCD")" \
                    "$BUILD/tests/$name"
                if ! "$HARNESS" status etcd "$TMP/etcd34"; then
                    "$HARNESS" restart etcd "$TMP/etcd34" >/dev/null ||
                        record FAIL "harness: restart etcd 3.4 after $name"
                fi
            done
            "$HARNESS" stop etcd "$TMP/etcd34"
        else
            record FAIL "harness: start etcd $(etcd_version "$DEBIAN_ETCD")"
        fi
    fi
else
    for name in $(test_names integration); do
        wanted "$name" && record FAIL "integration: $name" "not run: the servers did not start"
    done
    for script in e2e/test_*.sh; do
        [ -x "$script" ] && wanted "${script##*/}" && record FAIL "e2e: ${script##*/}" "not run: the servers did not start"
    done
fi

# stop the servers before the summary, so that its last line is the count
cleanup
summary
