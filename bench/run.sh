#!/usr/bin/env bash
# make bench: starts the servers the benchmarks need (harness), runs each
# benchmark, stops the servers. Usage: bench/run.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
work=$(mktemp -d)
harness=$root/e2e/harness/harness.sh
trap '"$harness" stop etcd "$work/etcd" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
eval "$("$harness" start etcd "$work/etcd")"
echo "== etcd client vs JSON gateway (etcd $("${KAA_ETCD_BIN:-$(ls -1 "${KAA_CACHE:-$HOME/.cache/kaa}"/bin/etcd-v* | tail -1)}" --version | head -1 | awk '{print $3}'))"
"$root/$build/bench/etcd_bench" --etcd "$KAA_TEST_ETCD" --seconds "${BENCH_SECONDS:-3}" \
	--threads "${BENCH_THREADS:-4}" --samples "${BENCH_SAMPLES:-200}"
