#!/bin/sh
# Builds every fuzz/fuzz_*.c as a libFuzzer target (clang, ASan + UBSan)
# into build/fuzz/, and optionally runs each for a while.
#
#   fuzz/build.sh                      build all targets
#   fuzz/build.sh --smoke SECONDS      build, then run each target SECONDS
#   fuzz/build.sh [...] NAME...        only these targets (fuzz_http_request or
#                                      fuzz/fuzz_http_request.c)
#
# A target declares what it links in comment lines that start at column 0:
#   // fuzz-sources: lib/http/http_server.c lib/base/error.c lib/base/log.c
#   // fuzz-pkgs: libprotobuf-c          (pkg-config names, optional)
#   // fuzz-ldflags: -lm                 (optional)
# Paths in fuzz-sources are relative to the repository root; build/gen is
# on the include path for generated protobuf headers (generate them first
# with make).
#
# Smoke runs start from a fresh copy of fuzz/corpus/<target>/ (seeds, never
# modified) in build/fuzz/corpus/<target>/, use fuzz/<target>.dict when it
# exists, and write crashing inputs to build/fuzz/artifacts/<target>/.
# Exit status: 0 when everything built and no run found a crash, 1 when a
# build failed or a run crashed, 2 on bad usage.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=build/fuzz
cc=${FUZZ_CC:-clang}
smoke=""
targets=""

usage() {
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--smoke)
		[ $# -ge 2 ] || usage
		smoke=$2
		case "$smoke" in '' | *[!0-9]*) usage ;; esac
		[ "$smoke" -gt 0 ] || usage
		shift 2
		;;
	-h | --help) usage ;;
	-*) usage ;;
	*)
		name=$(basename "$1" .c)
		[ -f "fuzz/$name.c" ] || { echo "fuzz: no such target: $1" >&2; exit 2; }
		targets="$targets $name"
		shift
		;;
	esac
done
if [ -z "$targets" ]; then
	for f in fuzz/fuzz_*.c; do
		[ -e "$f" ] || continue
		targets="$targets $(basename "$f" .c)"
	done
fi
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz/fuzz_*.c targets" >&2
	exit 0
fi
command -v "$cc" >/dev/null 2>&1 || { echo "fuzz: $cc not found (install clang)" >&2; exit 1; }

# The value of a "// fuzz-KEY:" line of file $2 (several lines concatenate).
directive() {
	sed -n "s|^// fuzz-$1:[[:space:]]*||p" "$2" | tr '\n' ' '
}

mkdir -p "$out"
cflags="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra -Wno-unused-parameter -Ilib -Iservices -Ioperator -Isdk/include -Isdk/src -Ibuild/gen"
failed=""
for t in $targets; do
	src=fuzz/$t.c
	sources=$(directive sources "$src")
	pkgs=$(directive pkgs "$src")
	ldflags=$(directive ldflags "$src")
	for s in $sources; do
		[ -f "$s" ] || { echo "fuzz: $src: fuzz-sources names missing $s" >&2; exit 1; }
	done
	pkg_cflags=""
	pkg_libs=""
	if [ -n "$pkgs" ]; then
		# shellcheck disable=SC2086
		pkg_cflags=$(pkg-config --cflags $pkgs) || { echo "fuzz: $t: pkg-config $pkgs failed" >&2; exit 1; }
		# shellcheck disable=SC2086
		pkg_libs=$(pkg-config --libs $pkgs)
	fi
	echo "fuzz: building $out/$t" >&2
	# shellcheck disable=SC2086
	if ! $cc $cflags $pkg_cflags -o "$out/$t" "$src" $sources $pkg_libs $ldflags -pthread; then
		echo "fuzz: build of $t failed" >&2
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: build failed:$failed" >&2
	exit 1
fi
[ -n "$smoke" ] || exit 0

crashed=""
for t in $targets; do
	corpus=$out/corpus/$t
	artifacts=$out/artifacts/$t
	rm -rf "$corpus"
	mkdir -p "$corpus" "$artifacts"
	if [ -d "fuzz/corpus/$t" ]; then
		cp -R "fuzz/corpus/$t/." "$corpus/"
	fi
	set -- -max_total_time="$smoke" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$artifacts/"
	if [ -f "fuzz/$t.dict" ]; then
		set -- "$@" -dict="fuzz/$t.dict"
	fi
	echo "fuzz: running $t for ${smoke}s" >&2
	if ! "$out/$t" "$@" "$corpus" >"$out/$t.log" 2>&1; then
		echo "fuzz: $t FAILED; log $out/$t.log, inputs in $artifacts/:" >&2
		ls "$artifacts" >&2 || true
		tail -n 40 "$out/$t.log" >&2
		crashed="$crashed $t"
	else
		tail -n 12 "$out/$t.log" | grep -E '^(stat::|Done)' >&2 || true
	fi
done
if [ -n "$crashed" ]; then
	echo "fuzz: crashes in:$crashed" >&2
	exit 1
fi
echo "fuzz: smoke run clean" >&2
