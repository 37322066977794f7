# Shared helpers for the e2e/test_*.sh suites (sourced, bash).
# Every wait polls a condition with a deadline; nothing sleeps to synchronise.

E2E_PASSED=0
E2E_FAILED=0
E2E_PIDS=()

pass() { E2E_PASSED=$((E2E_PASSED + 1)); echo "  PASS: $*"; }
fail() { E2E_FAILED=$((E2E_FAILED + 1)); echo "  FAIL: $*"; }
check() { # check "description" command...
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# N free TCP ports on 127.0.0.1, bind-tested.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

now_ms() { date +%s%3N; }

# wait_for TIMEOUT_MS command... : polls every 50 ms until the command succeeds.
wait_for() {
	local timeout=$1 end
	shift
	end=$(($(now_ms) + timeout))
	while ! "$@"; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true; }
http_is() { [ "$(http_code "$2")" = "$1" ]; }

# metric URL NAME: value of an unlabelled sample, empty when absent.
metric() { curl -s --max-time 2 "$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }

b64() { printf '%s' "$1" | base64 -w0; }
# etcd_value ETCD KEY: the value through etcd's JSON gateway, empty if absent.
etcd_value() {
	curl -s --max-time 2 -X POST "$1/v3/kv/range" -d "{\"key\":\"$(b64 "$2")\"}" |
		python3 -c 'import sys, json, base64
kvs = json.load(sys.stdin).get("kvs") or []
print(base64.b64decode(kvs[0]["value"]).decode() if kvs else "")'
}
etcd_has() { [ -n "$(etcd_value "$1" "$2")" ]; }
etcd_lacks() { [ -z "$(etcd_value "$1" "$2")" ]; }

# Starts a background process, remembering its pid for cleanup_pids.
spawn() {
	"$@" &
	E2E_PIDS+=($!)
	SPAWNED=$!
}

cleanup_pids() {
	local p
	for p in "${E2E_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in "${E2E_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}

alive() { kill -0 "$1" 2>/dev/null; }
dead() { ! kill -0 "$1" 2>/dev/null; }

summary() {
	echo "$E2E_PASSED passed, $E2E_FAILED failed"
	[ "$E2E_FAILED" = 0 ]
}
