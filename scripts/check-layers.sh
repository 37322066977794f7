#!/bin/sh
# Checks the layering of services/operations (services/operations/operations.h
# lists the layers): every file there includes headers of its own layer or
# lower only, and the module graph (x.c and x.h are one module x) has no
# cycle. A file not in the table below fails the check: place it in a layer.
#
#   scripts/check-layers.sh
#
# Exit status: 0 layered, 1 an upward include, a cycle or an unplaced file.
set -eu

cd "$(dirname "$0")/.."
dir=services/operations

# module layer
layers='
ops_server 0
ops_io 1
ops_state 1
ops_send 1
ops_sessions 1
ops_app_cache 1
ops_jobs 1
registration 2
delivery 2
owners 2
events 2
log_ingest 2
redirect 2
operations 3
dispatch 3
'

# One line per include of a file of the folder: "from to".
edges=$(for f in "$dir"/*.c "$dir"/*.h; do
	m=$(basename "$f")
	m=${m%.*}
	sed -n 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*"operations/\([A-Za-z0-9_]*\)\.h".*|\1|p' "$f" |
		while IFS= read -r to; do echo "$m $to"; done
	echo "$m $m" # every module, even one that includes nothing of the folder
done)

printf '%s\n' "$edges" | awk -v layers="$layers" -v dir="$dir" '
BEGIN {
	n = split(layers, l, "\n")
	for (i = 1; i <= n; i++)
		if (split(l[i], f, " ") == 2)
			layer[f[1]] = f[2] + 0
}
{
	from = $1; to = $2
	if (!(from in mods)) { mods[from] = 1; nmods++ }
	if (!(to in mods)) { mods[to] = 1; nmods++ }
	if (from == to)
		next
	if (!((from, to) in edge)) {
		edge[from, to] = 1
		adj[from] = adj[from] " " to
	}
}
function dfs(m,    k, nb, i, j) {
	state[m] = 1
	stack[++depth] = m
	k = split(adj[m], nb, " ")
	for (i = 1; i <= k; i++) {
		if (state[nb[i]] == 1) {
			cyc = nb[i]
			for (j = depth; j >= 1; j--) {
				cyc = stack[j] " -> " cyc
				if (stack[j] == nb[i])
					break
			}
			printf "check-layers: include cycle: %s\n", cyc > "/dev/stderr"
			bad = 1
		} else if (state[nb[i]] == 0)
			dfs(nb[i])
	}
	depth--
	state[m] = 2
}
END {
	for (m in mods)
		if (!(m in layer)) {
			printf "check-layers: %s/%s.* is in no layer (scripts/check-layers.sh)\n", dir, m > "/dev/stderr"
			bad = 1
		}
	for (e in edge) {
		split(e, p, SUBSEP)
		if ((p[1] in layer) && (p[2] in layer) && layer[p[2]] > layer[p[1]]) {
			printf "check-layers: upward include: %s (L%d) includes %s.h (L%d)\n", p[1], layer[p[1]], p[2], layer[p[2]] > "/dev/stderr"
			bad = 1
		}
	}
	for (m in mods)
		if (state[m] == 0)
			dfs(m)
	if (bad)
		exit 1
	printf "check-layers: %s: %d modules layered, no cycle\n", dir, nmods > "/dev/stderr"
}'
