#!/bin/sh
# Checks that every C source and header in the repository (tracked, or
# untracked but not ignored) is formatted as .clang-format says, without
# changing anything. Files under build/ are skipped.
#
#   scripts/format-check.sh          check; lists the files that differ
#   CLANG_FORMAT=clang-format-14 scripts/format-check.sh
#
# Fix with `make format`, or `clang-format -i FILE` for the files listed.
# Exit status: 0 all formatted, 1 some files differ, 2 clang-format missing
# or not in a git work tree.
set -eu

cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null 2>&1; then
	echo "format-check: $cf not found (apt-get install clang-format)" >&2
	exit 2
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	echo "format-check: not a git work tree" >&2
	exit 2
fi

list=$(mktemp)
trap 'rm -f "$list"' EXIT
git ls-files -z -co --exclude-standard -- '*.c' '*.h' | tr '\0' '\n' |
	grep -v -e '^build/' -e '/build/' >"$list" || true

bad=0
total=0
while IFS= read -r f; do
	[ -f "$f" ] || continue # deleted but still in the index
	total=$((total + 1))
	if ! "$cf" --dry-run -Werror --style=file "$f" >/dev/null 2>&1; then
		echo "format-check: needs formatting: $f" >&2
		bad=$((bad + 1))
	fi
done <"$list"

if [ "$bad" -gt 0 ]; then
	echo "format-check: $bad of $total files differ from .clang-format; run: make format" >&2
	exit 1
fi
echo "format-check: $total files formatted" >&2
