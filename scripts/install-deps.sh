#!/bin/sh
# Installs the Debian packages from packaging/debian-packages.txt that are
# missing. Usage: install-deps.sh [STAGE...]   (default: build test)
# Exit status: 0 when everything is installed, 1 when apt-get failed,
# 2 on bad usage. Does nothing (and needs no root) when nothing is missing.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
list="$here/packaging/debian-packages.txt"
stages=${*:-build test}
missing=""
while read -r pkg tags; do
	case "$pkg" in ''|'#'*) continue ;; esac
	want=0
	for s in $stages; do
		case ",$tags," in *",$s,"*) want=1 ;; esac
	done
	[ "$want" = 1 ] || continue
	st=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$st" in *" installed") ;; *) missing="$missing $pkg" ;; esac
done < "$list"
if [ -z "$missing" ]; then
	exit 0
fi
echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: need root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2 || exit 1
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2 || exit 1
