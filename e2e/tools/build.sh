#!/usr/bin/env bash
# Build the pinned Go test tools (etcd, FerretDB, the Kubernetes control plane,
# kubectl, KWOK, Helm) once and cache them outside the repository, keyed by
# version:
#
#   ${KAA_CACHE:-$HOME/.cache/kaa}/bin/etcd-v3.6.16
#   ${KAA_CACHE:-$HOME/.cache/kaa}/bin/ferretdb-v1.24.2
#   ${KAA_CACHE:-$HOME/.cache/kaa}/bin/kube-apiserver-v1.34.4   (also
#       kube-controller-manager, kube-scheduler, kubectl: one k8s.io/kubernetes)
#   ${KAA_CACHE:-$HOME/.cache/kaa}/bin/kwok-v0.8.0
#   ${KAA_CACHE:-$HOME/.cache/kaa}/bin/helm-v3.19.5
#
# and fetches the pinned Apache Kafka broker (jars from Maven Central, run by
# Java 17; not a Go tool: e2e/tools/kafka/fetch.sh, version in its pom.xml):
#
#   ${KAA_CACHE:-$HOME/.cache/kaa}/kafka-4.0.1/libs
#
# The version is read from the tool's go.mod (e2e/tools/<dir>/go.mod; the four
# Kubernetes binaries share e2e/tools/kubernetes), so bumping the pin there is
# the only change needed. A build is skipped when the
# cached binary exists; a new binary is built under a temporary name and moved
# into place, so an interrupted build never leaves a half-written tool.
#
# Usage:
#   e2e/tools/build.sh              build every tool that is not cached yet
#   e2e/tools/build.sh etcd ...     build only the named tools
#   e2e/tools/build.sh k8s          the Kubernetes tools (kube-apiserver,
#                                   kube-controller-manager, kube-scheduler,
#                                   kubectl, kwok, helm)
#   e2e/tools/build.sh path TOOL    print the cached binary path (no build)
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
CACHE=${KAA_CACHE:-$HOME/.cache/kaa}
BIN_DIR=$CACHE/bin
K8S_TOOLS="kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm"
ALL_TOOLS="etcd ferretdb kafka $K8S_TOOLS"
MIN_GO=1.24

die() { echo "e2e/tools/build.sh: $*" >&2; exit 1; }

# directory under e2e/tools holding the go.mod/go.sum of each tool
tool_dir() {
    case $1 in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) echo kubernetes ;;
    *) echo "$1" ;;
    esac
}

# module path and package to build for each tool
tool_module() {
    case $1 in
    etcd) echo "go.etcd.io/etcd/server/v3" ;;
    ferretdb) echo "github.com/FerretDB/FerretDB" ;;
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) echo "k8s.io/kubernetes" ;;
    kwok) echo "sigs.k8s.io/kwok" ;;
    helm) echo "helm.sh/helm/v3" ;;
    kafka) echo "org.apache.kafka:kafka_2.13" ;; # Maven, see e2e/tools/kafka/fetch.sh
    *) die "unknown tool '$1' (known: $ALL_TOOLS, or k8s)" ;;
    esac
}
tool_package() {
    case $1 in
    etcd) echo "." ;;                                    # wrapper main.go
    ferretdb) echo "github.com/FerretDB/FerretDB/cmd/ferretdb" ;;
    kube-*| kubectl) echo "k8s.io/kubernetes/cmd/$1" ;;
    kwok) echo "sigs.k8s.io/kwok/cmd/kwok" ;;
    helm) echo "helm.sh/helm/v3/cmd/helm" ;;
    esac
}

# arguments that make the freshly built binary print its version
tool_version_args() {
    case $1 in
    kubectl) echo "version --client" ;;
    helm) echo "version" ;;
    *) echo "--version" ;;
    esac
}

# version of module $2 in the go.mod of tool $1
mod_version() {
    awk -v m="$2" '
        $1 == "require" && $2 == m { print $3; exit }
        $1 == m && $2 ~ /^v/ { print $2; exit }' "$TOOLS_DIR/$(tool_dir "$1")/go.mod"
}

# -X flags that stamp the version the release builds stamp (the module
# source carries placeholders: "v0.0.0-master" for Kubernetes, "v3.19" and
# Kubernetes 1.20 capabilities for Helm)
tool_ldflags() {
    local v=$2 p major minor x=''
    case $1 in
    kube-* | kubectl)
        major=${v#v} major=${major%%.*}
        minor=${v#v*.} minor=${minor%%.*}
        for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
            x="$x -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
            x="$x -X $p.gitTreeState=clean -X $p.gitCommit="
        done
        ;;
    helm)
        # the Kubernetes version helm template assumes without a cluster:
        # that of its client-go (v0.X.Y -> 1.X), as helm's Makefile does
        minor=$(mod_version helm k8s.io/client-go)
        minor=${minor#v0.} minor=${minor%%.*}
        [ -n "$minor" ] || die "no k8s.io/client-go version in e2e/tools/helm/go.mod"
        x=" -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.metadata="
        x="$x -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
        for p in chartutil lint/rules; do
            x="$x -X helm.sh/helm/v3/pkg/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$p.k8sVersionMinor=$minor"
        done
        ;;
    esac
    echo "$x"
}

# pinned version of TOOL, from the require line in its go.mod
tool_version() {
    local mod v
    mod=$(tool_module "$1")
    v=$(mod_version "$1" "$mod")
    [ -n "$v" ] || die "no version of $mod in $TOOLS_DIR/$(tool_dir "$1")/go.mod"
    echo "$v"
}

tool_path() { echo "$BIN_DIR/$1-$(tool_version "$1")"; }

# "1.26.8" -> comparable integer
ver_num() {
    local IFS=. a b c
    read -r a b c <<<"$1"
    echo $(( ${a:-0} * 1000000 + ${b:-0} * 1000 + ${c:-0} ))
}

find_go() {
    if ! command -v go >/dev/null 2>&1; then
        [ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH
    fi
    command -v go >/dev/null 2>&1 ||
        die "Go >= $MIN_GO is required to build the test tools, and 'go' was not found (looked in PATH and /usr/local/go/bin)"
    GO_VERSION=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed 's/^go//; s/[^0-9.].*//') || GO_VERSION=
    [ -n "$GO_VERSION" ] || die "cannot read the Go version from $(command -v go)"
    [ "$(ver_num "$GO_VERSION")" -ge "$(ver_num "$MIN_GO")" ] ||
        die "Go >= $MIN_GO is required to build the test tools; $(command -v go) is go$GO_VERSION"
}

# FerretDB's build/version package panics at start-up unless the module holds
# build/version/version.txt (its release builds generate it; the module zip on
# the proxy does not carry it). Copy the pinned module source into WORK, add
# the file, and replace the module by that directory in the copy of our
# go.mod the build uses; dependency versions and checksums still come from
# our go.mod/go.sum.
prepare_ferretdb() {
    local version=$1 work=$2 src
    go mod download -modfile="$work/go.mod" github.com/FerretDB/FerretDB
    src=$(go list -modfile="$work/go.mod" -m -f "{{.Dir}}" github.com/FerretDB/FerretDB)
    [ -d "$src" ] || die "FerretDB $version source not found in the module cache"
    cp -R "$src" "$work/src"
    chmod -R u+w "$work/src"
    echo "$version" >"$work/src/build/version/version.txt"
    echo "kaa-e2e" >"$work/src/build/version/package.txt"
    echo "replace github.com/FerretDB/FerretDB => $work/src" >>"$work/go.mod"
}

build_tool() {
    local tool=$1 version out tmp work start need dir
    version=$(tool_version "$tool")
    out=$BIN_DIR/$tool-$version
    if [ -x "$out" ]; then
        echo "$tool $version: cached ($out)"
        return 0
    fi
    [ -n "${GO_VERSION:-}" ] || find_go
    # the module's own go directive must not exceed the local toolchain
    dir=$(tool_dir "$tool")
    need=$(awk '$1 == "go" { print $2; exit }' "$TOOLS_DIR/$dir/go.mod")
    if [ -n "$need" ] && [ "$(ver_num "$need")" -gt "$(ver_num "$GO_VERSION")" ]; then
        die "$tool $version needs Go >= $need (e2e/tools/$dir/go.mod); $(command -v go) is go$GO_VERSION"
    fi
    mkdir -p "$BIN_DIR" "$CACHE/tmp"
    tmp=$(mktemp "$BIN_DIR/.$tool-$version.XXXXXX")
    work=$(mktemp -d "$CACHE/tmp/$tool-$version.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -f '$tmp'; rm -rf '$work'" EXIT
    start=$(date +%s)
    echo "$tool $version: building with go$GO_VERSION ..." >&2
    (
        cd "$TOOLS_DIR/$dir"
        export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
        export GOCACHE="$CACHE/go-build"
        # build through a copy of go.mod/go.sum: -mod=mod may add go.sum
        # lines that `go mod tidy` drops again, and a build must not touch
        # the files in the repository
        cp go.mod "$work/go.mod"
        cp go.sum "$work/go.sum"
        [ "$tool" != ferretdb ] || prepare_ferretdb "$version" "$work"
        go build -modfile="$work/go.mod" -trimpath -ldflags "-s -w$(tool_ldflags "$tool" "$version")" \
            -o "$tmp" "$(tool_package "$tool")"
    ) || die "building $tool $version failed"
    chmod 0755 "$tmp"
    # shellcheck disable=SC2046
    "$tmp" $(tool_version_args "$tool") >/dev/null 2>&1 ||
        die "the freshly built $tool does not run: $("$tmp" $(tool_version_args "$tool") 2>&1 | head -3)"
    mv -f "$tmp" "$out"
    rm -rf "$work"
    trap - EXIT
    echo "$tool $version: built in $(( $(date +%s) - start )) s ($out)"
}

if [ "${1:-}" = path ]; then
    [ $# -eq 2 ] || die "usage: $0 path TOOL"
    [ "$2" != kafka ] || exec "$TOOLS_DIR/kafka/fetch.sh" path
    tool_module "$2" >/dev/null
    tool_path "$2"
    exit 0
fi

# shellcheck disable=SC2086 # a list of words
[ $# -gt 0 ] || set -- $ALL_TOOLS
tools=
for t in "$@"; do
    case $t in
    k8s) tools="$tools $K8S_TOOLS" ;;
    *) tool_module "$t" >/dev/null; tools="$tools $t" ;;
    esac
done
for t in $tools; do
    if [ "$t" = kafka ]; then
        "$TOOLS_DIR/kafka/fetch.sh"
    else
        build_tool "$t"
    fi
done
