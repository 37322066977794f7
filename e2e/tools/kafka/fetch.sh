#!/usr/bin/env bash
# Fetch the pinned Apache Kafka broker (e2e/tools/kafka/pom.xml: kafka.version)
# and its runtime dependencies from Maven Central into
#
#   ${KAA_CACHE:-$HOME/.cache/kaa}/kafka-<version>/libs/*.jar
#
# with Maven (dependency:copy-dependencies; the local Maven repository is
# ${KAA_CACHE}/m2, not ~/.m2). Idempotent: when the directory exists (it is
# only ever created complete: the jars land in a temporary directory that is
# renamed into place) nothing is done. Java 17 runs it: see e2e/harness
# (kind kafka).
#
# Usage:
#   e2e/tools/kafka/fetch.sh           fetch unless cached
#   e2e/tools/kafka/fetch.sh path      print the cached directory (no fetch)
#   e2e/tools/kafka/fetch.sh version   print the pinned version
set -euo pipefail

DIR=$(cd "$(dirname "$0")" && pwd)
CACHE=${KAA_CACHE:-$HOME/.cache/kaa}

die() { echo "e2e/tools/kafka/fetch.sh: $*" >&2; exit 1; }

VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$DIR/pom.xml" | head -1)
[ -n "$VERSION" ] || die "no <kafka.version> in $DIR/pom.xml"
OUT=$CACHE/kafka-$VERSION

case ${1:-} in
path) echo "$OUT"; exit 0 ;;
version) echo "$VERSION"; exit 0 ;;
'') ;;
*) die "usage: $0 [path|version]" ;;
esac

if [ -d "$OUT/libs" ] && [ -n "$(ls "$OUT/libs" 2>/dev/null)" ]; then
    echo "kafka $VERSION: cached ($OUT)"
    exit 0
fi
command -v mvn >/dev/null 2>&1 || die "mvn is needed to fetch Kafka (Debian package maven)"
command -v java >/dev/null 2>&1 || die "java is needed to run Kafka (Debian package openjdk-17-jre-headless)"

start=$(date +%s)
mkdir -p "$CACHE/tmp"
tmp=$(mktemp -d "$CACHE/tmp/kafka-$VERSION.XXXXXX")
# shellcheck disable=SC2064
trap "rm -rf '$tmp'" EXIT
echo "kafka $VERSION: fetching from Maven Central ..." >&2
mvn -q -B -Dstyle.color=never -f "$DIR/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >&2 ||
    die "fetching Kafka $VERSION with Maven failed"
[ -f "$tmp/libs/kafka_2.13-$VERSION.jar" ] || die "kafka_2.13-$VERSION.jar is missing after the fetch"
# a sanity run: the storage tool prints a cluster id
java -cp "$tmp/libs/*" kafka.tools.StorageTool random-uuid >/dev/null 2>&1 ||
    die "the fetched Kafka does not run: $(java -cp "$tmp/libs/*" kafka.tools.StorageTool random-uuid 2>&1 | head -3)"
mkdir -p "$OUT.tmp.$$"
mv "$tmp/libs" "$OUT.tmp.$$/libs"
mv -T "$OUT.tmp.$$" "$OUT" 2>/dev/null || { rm -rf "$OUT.tmp.$$"; [ -d "$OUT/libs" ] || die "cannot move $OUT into place"; }
echo "kafka $VERSION: fetched in $(( $(date +%s) - start )) s ($OUT)"
