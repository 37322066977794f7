#!/bin/sh
# Builds the web console (console/, Vite + Preact + uPlot) into OUT_DIR.
# Usage: build-console.sh OUT_DIR
# The npm packages are exactly those of console/package-lock.json
# (`npm ci`), installed again only when the lock file changes; npm's cache
# (~/.npm) makes later installs work offline. Exit status: 0, 1 when npm
# or the build failed, 2 on bad usage.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$root/console"
if ! command -v npm >/dev/null 2>&1; then
	echo "build-console: npm not found: install Node.js 18+ with npm (packaging/debian-packages.txt: nodejs)" >&2
	exit 1
fi
stamp=node_modules/.kaa-npm-ci
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
	npm ci --no-audit --no-fund --prefer-offline --loglevel=error >&2 || exit 1
	touch "$stamp"
fi
KAA_CONSOLE_OUT="$out" ./node_modules/.bin/vite build --logLevel warn || exit 1
