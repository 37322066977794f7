#!/bin/bash
# check-runtime-libs.sh BIN... - checks that every shared library the given
# binaries load at run time will be present in the Dockerfile's runtime image
# (debian:12-slim plus the `runtime`-tagged packages of
# packaging/debian-packages.txt).
#
# For each binary: `ldd` lists the libraries it loads (the whole tree); any
# "not found" is a failure. Each resolved library is mapped to the Debian
# package that ships it (`dpkg -S`, trying the path, its symlink target and
# the /lib <-> /usr/lib merged-usr twins). That package must be in the image:
#   base    = the closure of the Essential: yes / Priority: required packages
#             installed here (what debootstrap's minbase, hence debian:12-slim,
#             installs; libc6, libgcc-s1 and libstdc++6 have Priority:
#             optional but are in it as dependencies of coreutils and apt)
#   image   = base + the closure of the runtime-tagged packages
# "Closure" follows Depends and Pre-Depends recursively as apt would: an
# alternative group (a | b) or a virtual package is satisfied by whatever is
# already in the set, otherwise by its first alternative / first provider
# (for the base set: by the alternative installed on this machine, since
# debootstrap made both; e.g. usr-is-merged rather than usrmerge).
# The dependency graph comes from one `apt-cache depends --recurse` call per
# run and is shared by all binaries.
#
# Output: one line per binary on stdout, "BIN: OK (N libraries)" or
# "BIN: MISSING lib, lib (package pkg); lib (not found by ldd); ...".
# Diagnostics, and the list of packages to add, go to stderr.
# Environment: KAA_PACKAGE_LIST overrides the package list path.
# Exit status: 0 all OK, 1 any library missing (or the package list names a
# runtime package apt does not know), 2 bad usage or unreadable binary.
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")/.." && pwd)
list=${KAA_PACKAGE_LIST:-$here/packaging/debian-packages.txt}

usage() {
	echo "usage: $prog BIN..." >&2
	echo "  checks that the shared libraries of each BIN come from packages" >&2
	echo "  in the runtime image (runtime-tagged packages of" >&2
	echo "  \${KAA_PACKAGE_LIST:-packaging/debian-packages.txt} + debian:12-slim)" >&2
	exit 2
}

[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac
for b in "$@"; do
	if [ ! -f "$b" ] || [ ! -r "$b" ]; then
		echo "$prog: $b: no such readable file" >&2
		exit 2
	fi
	if [ "$(head -c 4 "$b")" != $'\x7fELF' ]; then
		echo "$prog: $b: not an ELF file" >&2
		exit 2
	fi
done
if [ ! -r "$list" ]; then
	echo "$prog: cannot read package list $list" >&2
	exit 2
fi
for tool in ldd dpkg dpkg-query apt-cache; do
	command -v "$tool" >/dev/null || {
		echo "$prog: $tool not found" >&2
		exit 2
	}
done

# ---- the package sets (computed once per run) -------------------------
mapfile -t runtime_pkgs < <(awk '$1 !~ /^#/ && $2 ~ /(^|,)runtime(,|$)/ {print $1}' "$list")
if [ ${#runtime_pkgs[@]} -eq 0 ]; then
	echo "$prog: no runtime-tagged packages in $list" >&2
fi
mapfile -t base_pkgs < <(dpkg-query -W -f='${Package} ${Essential} ${Priority} ${db:Status-Status}\n' |
	awk '$4 == "installed" && ($2 == "yes" || $3 == "required") {print $1}')

deps_out=$(mktemp)
trap 'rm -f "$deps_out"' EXIT
# apt-cache depends prints nothing for an unknown name (and fails only when
# no name at all is known); unknown runtime names are caught below.
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
	--no-breaks --no-replaces --no-enhances \
	"${base_pkgs[@]}" "${runtime_pkgs[@]}" >"$deps_out" 2>/dev/null || true

# Virtual roots are printed without their providers; ask for them.
declare -A extra_prov=()
for p in "${runtime_pkgs[@]}"; do
	if grep -qxF "<$p>" "$deps_out"; then
		extra_prov[$p]=$(apt-cache showpkg "$p" 2>/dev/null |
			awk '/^Reverse Provides:/ {f = 1; next} f && NF {print $1}' | sort -u | tr '\n' ' ')
	fi
done

# The closure awk program: reads the apt-cache output, then prints one
# package per line: "B name" for the base closure, "R name" for what the
# runtime packages add, "U name" for a runtime root apt does not know.
closure=$(
	{
		for p in "${!extra_prov[@]}"; do
			for q in ${extra_prov[$p]}; do
				printf '#prov %s %s\n' "$p" "$q"
			done
		done
		dpkg-query -W -f='#inst ${Package} ${db:Status-Status}\n' | awk '$3 == "installed"'
		cat "$deps_out"
	} | awk -v base="${base_pkgs[*]}" -v rt="${runtime_pkgs[*]}" '
	function strip(s) {
		gsub(/[<>]/, "", s)
		sub(/:.*/, "", s)
		return s
	}
	function addprov(v, q) {
		if (!((v, q) in hasprov)) {
			hasprov[v, q] = 1
			prov[v] = prov[v] " " q
		}
	}
	/^#prov / { virt[$2] = 1; addprov($2, $3); next }
	/^#inst / { inst[$2] = 1; next }
	/^[^ ]/ {
		cur = strip($1)
		known[cur] = 1
		if ($1 ~ /^</)
			virt[cur] = 1
		inor = 0
		next
	}
	/^ [ |][A-Za-z]*Depends: / {
		t = strip($2)
		if ($2 ~ /^</)
			virt[t] = 1
		if (inor)
			grp[cur, ng[cur]] = grp[cur, ng[cur]] " " t
		else
			grp[cur, ++ng[cur]] = t
		inor = (substr($0, 2, 1) == "|")
		last = t
		next
	}
	/^    [^ ]/ { addprov(last, strip($1)); next }

	function add(p) {
		if (p in inset)
			return
		inset[p] = 1
		order[++norder] = p
		queue[++qtail] = p
	}
	# Is the alternative a already provided (the package or a provider)?
	function sat(a,    n, i, ps) {
		if (a in inset)
			return 1
		if (a in prov) {
			n = split(prov[a], ps, " ")
			for (i = 1; i <= n; i++)
				if (ps[i] in inset)
					return 1
		}
		return 0
	}
	# Adds what apt would install for alternative a; 0 if it cannot.
	function realize(a,    ps) {
		if (a in virt) {
			if (!(a in prov))
				return 0
			split(prov[a], ps, " ")
			add(ps[1])
		} else {
			add(a)
		}
		return 1
	}
	function realize_installed(a,    n, i, ps) {
		if (a in inst) {
			add(a)
			return 1
		}
		if (a in prov) {
			n = split(prov[a], ps, " ")
			for (i = 1; i <= n; i++) {
				if (ps[i] in inst) {
					add(ps[i])
					return 1
				}
			}
		}
		return 0
	}
	function drain(    p, k, g) {
		while (qhead < qtail) {
			p = queue[++qhead]
			for (k = 1; k <= ng[p]; k++) {
				g = grp[p, k]
				if (g !~ / / && !(g in virt))
					add(g)
				else
					deferred[++ndef] = g
			}
		}
	}
	# Plain dependencies first; then the first unsatisfied alternative
	# group or virtual dependency gets its first installable choice, and
	# the plain dependencies that brings in are followed before the next.
	function closure(    i, n, alts, j, ok) {
		for (;;) {
			drain()
			for (i = 1; i <= ndef; i++) {
				if (i in done)
					continue
				done[i] = 1
				n = split(deferred[i], alts, " ")
				ok = 0
				for (j = 1; j <= n && !ok; j++)
					ok = sat(alts[j])
				# The base image was installed like this machine
				# (debootstrap): take the alternative installed here.
				for (j = 1; j <= n && !ok && basemode; j++)
					ok = realize_installed(alts[j])
				for (j = 1; j <= n && !ok; j++)
					ok = realize(alts[j])
				if (qhead < qtail)
					break
			}
			if (qhead == qtail)
				return
		}
	}
	function roots(s, tag,    n, r, i, from) {
		n = split(s, r, " ")
		from = norder
		for (i = 1; i <= n; i++) {
			if (!(r[i] in known)) {
				if (tag == "R")
					print "U " r[i]
				continue
			}
			if (r[i] in virt) {
				if (!sat(r[i]))
					realize(r[i])
			}
			else
				add(r[i])
		}
		closure()
		for (i = from + 1; i <= norder; i++)
			print tag " " order[i]
	}
	END {
		basemode = 1
		roots(base, "B")
		basemode = 0
		roots(rt, "R")
	}'
)

declare -A image=()
unknown=""
while read -r tag name; do
	case "$tag" in
	B | R) image[$name]=1 ;;
	U) unknown="$unknown $name" ;;
	esac
done <<<"$closure"
if [ -n "$unknown" ]; then
	echo "$prog: runtime packages unknown to apt (typo, or run apt-get update):$unknown" >&2
fi

# ---- libraries of each binary -------------------------------------------
# Merged /usr: the dpkg database may record either /lib/... or /usr/lib/...
twins() {
	local p=$1
	echo "$p"
	case "$p" in
	/usr/lib/* | /usr/lib64/* | /usr/bin/* | /usr/sbin/*) echo "${p#/usr}" ;;
	/lib/* | /lib64/* | /bin/* | /sbin/*) echo "/usr$p" ;;
	esac
}

declare -A bin_libs=()  # binary -> newline-separated "soname path"
declare -A bin_nf=()    # binary -> sonames ldd did not find
declare -A candidates=() # lib path -> candidate paths for dpkg -S
all_cands=()
for b in "$@"; do
	if ! out=$(LC_ALL=C ldd "$b" 2>&1); then
		case "$out" in
		*"not a dynamic executable"* | *"statically linked"*) out="" ;;
		*)
			echo "$prog: ldd $b failed: $out" >&2
			exit 2
			;;
		esac
	fi
	libs=""
	nf=""
	while read -r soname arrow path _; do
		[ "$arrow" = "=>" ] || continue # vdso and the dynamic loader
		if [ "$path" = "not" ]; then
			nf="$nf $soname"
			continue
		fi
		case "$path" in /*) ;; *) continue ;; esac
		libs="$libs$soname $path"$'\n'
		if [ -z "${candidates[$path]+x}" ]; then
			real=$(readlink -f "$path")
			c=$( { twins "$path"; twins "$real"; } | awk '!seen[$0]++')
			candidates[$path]=$c
			mapfile -t -O ${#all_cands[@]} all_cands <<<"$c"
		fi
	done <<<"$out"
	bin_libs[$b]=$libs
	bin_nf[$b]=$nf
done

# One dpkg -S for every candidate path; lines are "pkg[:arch][, pkg...]: path".
declare -A owner=()
if [ ${#all_cands[@]} -gt 0 ]; then
	while IFS= read -r line; do
		case "$line" in "diversion by "*) continue ;; esac
		i=${line%%: /*}
		[ "$i" != "$line" ] || continue
		path=${line#"$i: "}
		pkgs=$(echo "$i" | tr ',' '\n' | sed -e 's/^ *//' -e 's/:.*//' | tr '\n' ' ')
		owner[$path]=$pkgs
	done < <(LC_ALL=C dpkg -S "${all_cands[@]}" 2>/dev/null || true)
fi

status=0
[ -z "$unknown" ] || status=1
all_missing=""
for b in "$@"; do
	# Missing libraries grouped by the package that ships them here.
	declare -A by_pkg=()
	pkg_order=()
	miss=""
	n=0
	for s in ${bin_nf[$b]}; do
		miss="$miss; $s (not found by ldd)"
	done
	while read -r soname path; do
		[ -n "$soname" ] || continue
		n=$((n + 1))
		pkgs=""
		while read -r c; do
			if [ -n "${owner[$c]+x}" ]; then
				pkgs=${owner[$c]}
				break
			fi
		done <<<"${candidates[$path]}"
		if [ -z "$pkgs" ]; then
			miss="$miss; $soname ($path is in no Debian package)"
			continue
		fi
		ok=0
		for p in $pkgs; do
			[ -z "${image[$p]+x}" ] || ok=1
		done
		[ $ok = 0 ] || continue
		pkgs=${pkgs% }
		pkgs=${pkgs// /|}
		if [ -z "${by_pkg[$pkgs]+x}" ]; then
			pkg_order+=("$pkgs")
			by_pkg[$pkgs]=$soname
			all_missing="$all_missing $pkgs"
		else
			by_pkg[$pkgs]="${by_pkg[$pkgs]}, $soname"
		fi
	done <<<"${bin_libs[$b]}"
	for p in "${pkg_order[@]}"; do
		miss="$miss; ${by_pkg[$p]} (package $p)"
	done
	unset by_pkg
	if [ -z "$miss" ]; then
		[ $n = 1 ] && what=library || what=libraries
		echo "$b: OK ($n $what)"
	else
		echo "$b: MISSING ${miss#; }"
		status=1
	fi
done
if [ -n "$all_missing" ]; then
	all_missing=$(echo "$all_missing" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
	echo "$prog: add these packages (or packages that depend on them) with the" \
		"'runtime' tag to $list: ${all_missing% }" >&2
fi
exit $status
