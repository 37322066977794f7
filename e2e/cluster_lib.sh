# shellcheck shell=bash
# Multi-node kaa cluster on loopback, for e2e suites and benchmarks (sourced,
# bash, after e2e/lib.sh). Used by e2e/test_cluster.sh.
#
# Every kaa-node is a separate process with its own four ports (control,
# bootstrap, operations, internode; all of them passed to every node, so no
# two nodes ever fall back to the same default port) and shares one etcd
# cluster name, one fresh PostgreSQL database (metadata) and one fresh
# MongoDB database (endpoint store) with the others.
#
#   cl_init WORK            needs KAA_TEST_ETCD, KAA_TEST_PG, KAA_TEST_MONGO and
#                           CL_NODE (the kaa-node binary); sets CL_CLUSTER,
#                           CL_ETCD, CL_PG_URL, CL_MONGO_URL, CL_DB; logs go
#                           to WORK/<id>.log
#   cl_start ID SERVICES [FLAG...]   start (or restart on the same ports) node ID
#                           with --services SERVICES; extra flags appended;
#                           CL_PID[ID], CL_CP/CL_BP/CL_OP/CL_IP[ID] its ports,
#                           CL_HOST[ID] its address. For a node elsewhere (e.g.
#                           in a network namespace) set, for that call only,
#                           CL_AT_HOST (address to bind and advertise),
#                           CL_AT_ETCD, CL_AT_SQL, CL_AT_NOSQL (its URLs) and
#                           CL_AT_WRAP (a command prefix, e.g. "ip netns exec NS").
#                           Control nodes get KAA_ADMIN_USER/PASSWORD from
#                           CL_ADMIN_USER/CL_ADMIN_PASSWORD (default root/rootpass123).
#   cl_ready ID             /readyz of the node's first service answers 200
#   cl_stop ID              SIGTERM, wait for the exit; status in CL_RC
#   cl_kill ID              SIGKILL, wait for the exit
#   cl_sessions ID          kaa_ops_sessions of an operations node (empty if down)
#   cl_sessions_sum ID...   the sum over the given nodes (down nodes count 0)
#   cl_leader ID...         the id of the node reporting kaa_control_leader 1
#   cl_registered ID        kaa_node_registered is 1 and nodes/<ID> is in etcd
#   cl_etcd_put KEY VALUE / cl_etcd_del KEY / cl_etcd_count PREFIX
#                           (KEY relative to /kaa/<cluster>/)
#   cl_boot_ids APP_TOKEN   ids listed by the bootstrap node(s) CL_BOOT_ID
#   cl_store_logs APP       "endpoints stored distinct gaps firstmax" of the log
#                           records the endpoint store (MongoDB) holds for APP;
#                           records must carry an integer "seq" (kaa-device's
#                           default template); gaps = seq values missing
#                           between each endpoint's lowest and highest;
#                           firstmax = the highest first seq over the
#                           endpoints (0: every endpoint's records start at 0)
#   cl_finish               stop every node still running (SIGTERM, then
#                           SIGKILL), drop the PostgreSQL database
#
# Processes are started with lib.sh's spawn, so cleanup_pids covers them
# too; cl_stop/cl_kill remove a reaped pid from E2E_PIDS.

declare -A CL_PID=() CL_CP=() CL_BP=() CL_OP=() CL_IP=() CL_SVC=() CL_HOST=()
CL_ADMIN_USER=${CL_ADMIN_USER:-root}
CL_ADMIN_PASSWORD=${CL_ADMIN_PASSWORD:-rootpass123}
CL_LEASE_TTL=${CL_LEASE_TTL:-3}
# shellcheck disable=SC2034 # read by the suites
CL_RC=

cl_init() {
	CL_WORK=$1
	CL_ETCD=${KAA_TEST_ETCD:?}
	CL_CLUSTER=cl$$
	CL_DB=kaa_cl_$$
	: "${CL_NODE:?CL_NODE must name the kaa-node binary}"
	psql "${KAA_TEST_PG:?}" -qc "CREATE DATABASE $CL_DB" >/dev/null || return 1
	CL_PG_URL=${KAA_TEST_PG%/*}/$CL_DB
	CL_MONGO_URL=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], p.query, "")))' "${KAA_TEST_MONGO:?}" "$CL_DB")
	CL_MONGO_HOSTPORT=$(python3 -c 'import sys, urllib.parse as u
print(u.urlsplit(sys.argv[1]).netloc.split("@")[-1])' "$KAA_TEST_MONGO")
}

cl_start() {
	local id=$1 svc=$2
	shift 2
	if [ -z "${CL_CP[$id]:-}" ]; then
		read -r "CL_CP[$id]" "CL_BP[$id]" "CL_OP[$id]" "CL_IP[$id]" <<<"$(free_ports 4)"
	fi
	CL_SVC[$id]=$svc
	CL_HOST[$id]=${CL_AT_HOST:-127.0.0.1}
	local wrap=()
	read -r -a wrap <<<"${CL_AT_WRAP:-}"
	KAA_ADMIN_USER=$CL_ADMIN_USER KAA_ADMIN_PASSWORD=$CL_ADMIN_PASSWORD spawn "${wrap[@]}" \
		"$CL_NODE" --node-id "$id" --services "$svc" --cluster "$CL_CLUSTER" \
		--etcd "${CL_AT_ETCD:-$CL_ETCD}" --sql "${CL_AT_SQL:-$CL_PG_URL}" \
		--nosql "${CL_AT_NOSQL:-$CL_MONGO_URL}" --bind "${CL_HOST[$id]}" --host "${CL_HOST[$id]}" \
		--lease-ttl "$CL_LEASE_TTL" --control-port "${CL_CP[$id]}" \
		--bootstrap-port "${CL_BP[$id]}" --operations-port "${CL_OP[$id]}" \
		--internode-port "${CL_IP[$id]}" --appender-dir "$CL_WORK/logs-$id" "$@" \
		>>"$CL_WORK/$id.out" 2>>"$CL_WORK/$id.log"
	CL_PID[$id]=$SPAWNED
}

# the URL of the node's first service port
cl_url() {
	case ${CL_SVC[$1]%%,*} in
	control) echo "http://${CL_HOST[$1]}:${CL_CP[$1]}" ;;
	bootstrap) echo "http://${CL_HOST[$1]}:${CL_BP[$1]}" ;;
	*) echo "http://${CL_HOST[$1]}:${CL_OP[$1]}" ;;
	esac
}

cl_ready() { http_is 200 "$(cl_url "$1")/readyz"; }

cl_forget() {
	local p keep=()
	for p in "${E2E_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	E2E_PIDS=("${keep[@]}")
}

cl_stop() {
	local pid=${CL_PID[$1]:-}
	CL_RC=
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# shellcheck disable=SC2034
	CL_RC=$?
	cl_forget "$pid"
	CL_PID[$1]=
}

cl_kill() {
	local pid=${CL_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	cl_forget "$pid"
	CL_PID[$1]=
}

cl_sessions() { metric "http://${CL_HOST[$1]}:${CL_OP[$1]}" kaa_ops_sessions; }

cl_sessions_sum() {
	local id n sum=0
	for id in "$@"; do
		[ -n "${CL_PID[$id]:-}" ] || continue
		n=$(cl_sessions "$id")
		sum=$((sum + ${n:-0}))
	done
	echo "$sum"
}

cl_leader() {
	local id
	for id in "$@"; do
		[ -n "${CL_PID[$id]:-}" ] || continue
		if [ "$(metric "http://${CL_HOST[$id]}:${CL_CP[$id]}" kaa_control_leader)" = 1 ]; then
			echo "$id"
			return 0
		fi
	done
	return 1
}

cl_registered() {
	[ "$(metric "$(cl_url "$1")" kaa_node_registered)" = 1 ] &&
		etcd_has "$CL_ETCD" "/kaa/$CL_CLUSTER/nodes/$1"
}

cl_etcd_put() {
	curl -s --max-time 2 -X POST "$CL_ETCD/v3/kv/put" \
		-d "{\"key\":\"$(b64 "/kaa/$CL_CLUSTER/$1")\",\"value\":\"$(b64 "$2")\"}" >/dev/null
}

cl_etcd_del() {
	curl -s --max-time 2 -X POST "$CL_ETCD/v3/kv/deleterange" \
		-d "{\"key\":\"$(b64 "/kaa/$CL_CLUSTER/$1")\"}" >/dev/null
}

cl_etcd_count() {
	local key end
	key="/kaa/$CL_CLUSTER/$1"
	end=$(python3 -c 'import sys; k = sys.argv[1].encode(); print(k[:-1].decode() + chr(k[-1] + 1))' "$key")
	curl -s --max-time 2 -X POST "$CL_ETCD/v3/kv/range" \
		-d "{\"key\":\"$(b64 "$key")\",\"range_end\":\"$(b64 "$end")\",\"count_only\":true}" |
		python3 -c 'import sys, json; print(json.load(sys.stdin).get("count", 0))' 2>/dev/null
}

cl_boot_ids() {
	curl -s --max-time 2 "http://127.0.0.1:${CL_BP[$CL_BOOT_ID]}/v1/operations?application=$1" |
		python3 -c 'import sys, json
print(" ".join(sorted(n["id"] for n in json.load(sys.stdin)["nodes"])))' 2>/dev/null
}

# A minimal MongoDB OP_MSG client (no driver on these machines): find with
# getMore over log_records of one application.
cl_store_logs() {
	python3 - "$CL_MONGO_HOSTPORT" "$CL_DB" "$1" <<'PY'
import json, socket, struct, sys

hostport, db, app = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = hostport.rsplit(":", 1)

def cstr(s):
    return s.encode() + b"\0"

def enc(doc):
    body = b""
    for k, v in doc.items():
        if isinstance(v, bool):
            body += b"\x08" + cstr(k) + (b"\1" if v else b"\0")
        elif isinstance(v, int):
            if -2**31 <= v < 2**31 and not k.startswith("getMore"):
                body += b"\x10" + cstr(k) + struct.pack("<i", v)
            else:
                body += b"\x12" + cstr(k) + struct.pack("<q", v)
        elif isinstance(v, str):
            b = v.encode() + b"\0"
            body += b"\x02" + cstr(k) + struct.pack("<i", len(b)) + b
        elif isinstance(v, dict):
            body += b"\x03" + cstr(k) + enc(v)
        else:
            raise TypeError(k)
    return struct.pack("<i", len(body) + 5) + body + b"\0"

def dec(buf, i=0, arr=False):
    n = struct.unpack_from("<i", buf, i)[0]
    end, i, out = i + n - 1, i + 4, {}
    while i < end:
        t = buf[i]; i += 1
        j = buf.index(b"\0", i); name = buf[i:j].decode(); i = j + 1
        if t == 0x01: v = struct.unpack_from("<d", buf, i)[0]; i += 8
        elif t == 0x10: v = struct.unpack_from("<i", buf, i)[0]; i += 4
        elif t in (0x11, 0x12, 0x09): v = struct.unpack_from("<q", buf, i)[0]; i += 8
        elif t == 0x08: v = buf[i] != 0; i += 1
        elif t == 0x02:
            m = struct.unpack_from("<i", buf, i)[0]; v = buf[i+4:i+3+m].decode(); i += 4 + m
        elif t in (0x03, 0x04):
            v = dec(buf, i, t == 0x04); i += struct.unpack_from("<i", buf, i)[0]
        elif t == 0x05: m = struct.unpack_from("<i", buf, i)[0]; v = None; i += 5 + m
        elif t == 0x07: v = buf[i:i+12].hex(); i += 12
        elif t in (0x0A, 0x06, 0xFF, 0x7F): v = None
        else: raise ValueError("bson type %d" % t)
        out[name] = v
    return list(out.values()) if arr else out

s = socket.create_connection((host, int(port)), timeout=10)
rid = 0
def cmd(doc):
    global rid
    rid += 1
    payload = struct.pack("<I", 0) + b"\0" + enc(doc)
    s.sendall(struct.pack("<iiii", 16 + len(payload), rid, 0, 2013) + payload)
    buf = b""
    while len(buf) < 4 or len(buf) < struct.unpack_from("<i", buf)[0]:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit("mongo: connection closed")
        buf += chunk
    r = dec(buf, 21)
    if r.get("ok") not in (1, 1.0, True):
        raise SystemExit("mongo: %r" % r)
    return r

seqs = {}
r = cmd({"find": "log_records", "filter": {"app": app},
         "projection": {"key": 1, "record": 1}, "batchSize": 10000, "$db": db})
cur = r["cursor"]
docs = cur["firstBatch"]
while True:
    for d in docs:
        seqs.setdefault(d["key"], []).append(json.loads(d["record"])["seq"])
    if not cur.get("id"):
        break
    r = cmd({"getMore": cur["id"], "collection": "log_records", "batchSize": 10000, "$db": db})
    cur = r["cursor"]
    docs = cur["nextBatch"]
stored = sum(len(v) for v in seqs.values())
distinct = sum(len(set(v)) for v in seqs.values())
gaps = sum(max(v) - min(v) + 1 - len(set(v)) for v in seqs.values())
firstmax = max((min(v) for v in seqs.values()), default=-1)
print(len(seqs), stored, distinct, gaps, firstmax)
PY
}

cl_finish() {
	local id
	for id in "${!CL_PID[@]}"; do
		[ -n "${CL_PID[$id]}" ] && kill -TERM "${CL_PID[$id]}" 2>/dev/null
	done
	for id in "${!CL_PID[@]}"; do
		[ -n "${CL_PID[$id]}" ] || continue
		wait_for 15000 dead "${CL_PID[$id]}" || kill -KILL "${CL_PID[$id]}" 2>/dev/null
		wait "${CL_PID[$id]}" 2>/dev/null
		CL_PID[$id]=
	done
	[ -z "${CL_DB:-}" ] || psql "$KAA_TEST_PG" -qc "DROP DATABASE IF EXISTS $CL_DB" >/dev/null 2>&1
}
