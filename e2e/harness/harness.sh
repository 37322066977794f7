#!/usr/bin/env bash
# Real-server test harness: starts etcd, PostgreSQL, FerretDB (MongoDB wire
# protocol on SQLite), Apache Kafka (KRaft, one node that is broker and
# controller) or a Kubernetes control plane (k8s) on 127.0.0.1 with
# free ports and a private state directory, waits until the server really
# answers, and can stop, kill and restart it on the same ports and data. See
# e2e/README.md.
#
#   harness.sh start   etcd|postgres|ferretdb|kafka|k8s DIR   start, print KAA_TEST_*=... on stdout
#   harness.sh stop    KIND DIR    graceful stop (SIGTERM; postgres: SIGINT), SIGKILL after a deadline
#   harness.sh kill    KIND DIR    SIGKILL the server (and its process group), wait until gone
#   harness.sh restart KIND DIR    start again on the same ports and data (stops it first if running)
#   harness.sh status  KIND DIR    exit 0 when the server process is alive
#   harness.sh env     KIND DIR    print the assignments again
#
# State in DIR: pid, server.log, env (the printed assignments), ports, cmd
# (the exact command line, reused by restart), data (etcd), pgdata
# (postgres), db + state (ferretdb), server.properties + data (kafka).
#
# kafka listens on four ports: PLAINTEXT (KAA_TEST_KAFKA), SASL_PLAINTEXT
# (KAA_TEST_KAFKA_SASL: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, user
# KAA_TEST_KAFKA_USER with password KAA_TEST_KAFKA_PASSWORD), SSL
# (KAA_TEST_KAFKA_SSL, a certificate for 127.0.0.1 from the CA in
# KAA_TEST_KAFKA_CA, made with openssl at the first start: DIR/pki) and its
# KRaft controller's. Topics are created on first use with 3 partitions.
#
# k8s is several servers, one sub-directory each (a kind of its own, so that
# a stop/kill of the sub-directory works too): etcd/, kube-apiserver/,
# kube-controller-manager/, kube-scheduler/, kwok/; DIR/pki holds the
# generated CA, certificates, service-account key and per-component
# kubeconfigs, DIR/kubeconfig the admin (system:masters) kubeconfig, DIR/bin
# links to the cached kubectl, helm and kwok. KWOK manages KAA_K8S_NODES
# (default 3) fake nodes kwok-node-0.. so pods become Running/Ready without
# containers.
#
# Environment:
#   KAA_ETCD_BIN       etcd binary (default: the cached pinned build, see e2e/tools/build.sh)
#   KAA_ETCD_ARGS      extra etcd flags (word-split)
#   KAA_FERRETDB_BIN   FerretDB binary (default: the cached pinned build)
#   KAA_KAFKA_HOME     directory with libs/*.jar (default: the cached pinned
#                      release, see e2e/tools/kafka/fetch.sh); run with java (17+)
#   KAA_KAFKA_HEAP     the broker's -Xmx (default 512m)
#   KAA_PG_BINDIR      PostgreSQL bin directory (default: newest /usr/lib/postgresql/*/bin)
#   KAA_PG_USER        OS user that runs postgres when the harness runs as root
#                      (default: postgres, else kaatest, created if missing)
#   KAA_K8S_NODES      number of KWOK nodes of the k8s kind (default 3)
#   KAA_KUBE_APISERVER_ARGS, KAA_KUBE_CONTROLLER_MANAGER_ARGS,
#   KAA_KUBE_SCHEDULER_ARGS, KAA_KWOK_ARGS   extra flags (word-split)
#   KAA_HARNESS_TIMEOUT  seconds to wait for readiness / shutdown (default 60)
#   KAA_CACHE          tool cache (default ~/.cache/kaa)
set -euo pipefail

HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS_BUILD=$HARNESS_DIR/../tools/build.sh
TIMEOUT=${KAA_HARNESS_TIMEOUT:-60}
PORT_MIN=20000 # below the usual ephemeral range (32768-60999)
PORT_MAX=32000

log() { echo "harness: $*" >&2; }
die() { echo "harness: $*" >&2; exit 1; }

usage() {
    sed -n '9,14p' "$HARNESS_DIR/harness.sh" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

now_ms() { date +%s%3N; }

# ---- processes ---------------------------------------------------------------

# STAT = fields of /proc/PID/stat after the command name:
#   state ppid pgrp session ... (starttime is the 20th); no fork, no subshell
STAT=()
proc_stat() {
    local s
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    read -r -a STAT <<<"${s##*) }"
}

proc_starttime() {
    proc_stat "$1" || return 1
    echo "${STAT[19]}"
}

# alive and not a zombie
pid_alive() {
    proc_stat "$1" || return 1
    [ "${STAT[0]}" != Z ] && [ "${STAT[0]}" != X ]
}

# The processes of the server whose main pid is $1, one per line: the main
# process, every process in its process group (each server is started in its
# own session, so pgid == pid) and, for postgres, every process whose working
# directory is the data directory (postgres puts each child process into a
# session of its own, but they all chdir to PGDATA; after a SIGKILL of the
# postmaster they are orphans and this is how they are still found).
server_procs() {
    local main=$1 p pgdata=''
    [ "$KIND" = postgres ] && pgdata=$DIR/pgdata
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        proc_stat "$p" || continue
        case ${STAT[0]} in Z | X) continue ;; esac
        if [ "$p" = "$main" ] || [ "${STAT[2]}" = "$main" ] ||
            { [ -n "$pgdata" ] && [ "/proc/$p/cwd" -ef "$pgdata" ]; }; then
            echo "$p"
        fi
    done
}

# pid from DIR/pid if that process is still the one we started
server_pid() {
    local pid start
    [ -f "$DIR/pid" ] || return 1
    pid=$(cat "$DIR/pid")
    [ -n "$pid" ] || return 1
    pid_alive "$pid" || return 1
    if [ -f "$DIR/pid.start" ]; then
        start=$(proc_starttime "$pid") || return 1
        [ "$start" = "$(cat "$DIR/pid.start")" ] || return 1
    fi
    echo "$pid"
}

# wait until the server of main pid $1 has no process left; 0 = gone
wait_gone() {
    local main=$1 deadline=$(($(now_ms) + $2 * 1000))
    while [ -n "$(server_procs "$main")" ]; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
    return 0
}

# SIGKILL every process of the server of main pid $1 until none is left
kill_all() {
    local main=$1 procs deadline=$(($(now_ms) + 10000))
    [ "$main" = - ] || kill -s KILL "$main" 2>/dev/null || true
    while procs=$(server_procs "$main") && [ -n "$procs" ]; do
        # shellcheck disable=SC2086
        kill -s KILL $procs 2>/dev/null || true
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.02
    done
    return 0
}

# ---- ports -------------------------------------------------------------------

# print N distinct free TCP ports on 127.0.0.1 (bind-tested, random order)
free_ports() {
    python3 - "$1" "$PORT_MIN" "$PORT_MAX" <<'EOF'
import random, socket, sys
n, lo, hi = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(2000):
    p = random.randrange(lo, hi)
    if p in out:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))   # no SO_REUSEADDR: also rejects TIME_WAIT
        s.listen(1)
    except OSError:
        continue
    finally:
        s.close()
    out.append(p)
    if len(out) == n:
        print(" ".join(map(str, out)))
        sys.exit(0)
sys.exit("no free ports found")
EOF
}

port_open() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# ---- readiness probes ----------------------------------------------------------

probe_etcd() {
    local body
    body=$(curl -fsS --max-time 2 "http://127.0.0.1:$CLIENT_PORT/health" 2>/dev/null) || return 1
    case $body in
    *'"health":"true"'* | *'"health": "true"'*) return 0 ;;
    esac
    return 1
}

probe_postgres() {
    "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1
}

# a real MongoDB round trip: OP_MSG {ping: 1, $db: "admin"} must answer ok: 1
mongo_ping() {
    python3 - "$1" <<'EOF'
import socket, struct, sys

def cstr(s):
    return s.encode() + b"\0"

def bson(elems):
    body = b""
    for k, v in elems:
        if isinstance(v, int):
            body += b"\x10" + cstr(k) + struct.pack("<i", v)
        else:
            b = v.encode() + b"\0"
            body += b"\x02" + cstr(k) + struct.pack("<i", len(b)) + b
    return struct.pack("<i", len(body) + 5) + body + b"\0"

def top_level(doc):
    out, i = {}, 4
    while i < len(doc) - 1:
        t = doc[i]; i += 1
        j = doc.index(b"\0", i); name = doc[i:j].decode(); i = j + 1
        if t == 0x01: out[name] = struct.unpack_from("<d", doc, i)[0]; i += 8
        elif t == 0x10: out[name] = struct.unpack_from("<i", doc, i)[0]; i += 4
        elif t == 0x12: out[name] = struct.unpack_from("<q", doc, i)[0]; i += 8
        elif t == 0x08: out[name] = doc[i] != 0; i += 1
        elif t == 0x02:
            n = struct.unpack_from("<i", doc, i)[0]; out[name] = doc[i+4:i+3+n].decode(); i += 4 + n
        elif t in (0x03, 0x04): i += struct.unpack_from("<i", doc, i)[0]
        elif t == 0x05: i += 5 + struct.unpack_from("<i", doc, i)[0]
        elif t in (0x09, 0x11): i += 8
        elif t == 0x07: i += 12
        elif t in (0x0A, 0x06, 0xFF, 0x7F): pass
        else: break
    return out

doc = bson([("ping", 1), ("$db", "admin")])
payload = struct.pack("<I", 0) + b"\0" + doc
msg = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    s.sendall(msg)
    buf = b""
    while len(buf) < 4 or len(buf) < struct.unpack_from("<i", buf)[0]:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(1)
        buf += chunk
except OSError:
    sys.exit(1)
length, _, resp_to, opcode = struct.unpack_from("<iiii", buf)
if opcode != 2013 or resp_to != 1 or buf[20] != 0:
    sys.exit(1)
reply = top_level(buf[21:length])
sys.exit(0 if reply.get("ok") in (1, 1.0, True) else 1)
EOF
}

probe_ferretdb() { mongo_ping "$MONGO_PORT"; }

# a Kafka Metadata (v4) round trip on the PLAINTEXT listener that lists at
# least one broker: the broker is registered with its controller and serves
# requests (the TCP port opens earlier)
probe_kafka() {
    python3 - "$KAFKA_PORT" <<'EOF'
import socket, struct, sys
cid = b"kaa-harness"
# header v1 (api key 3 = Metadata, version 4, correlation id 7, client id),
# topics = [] (none), allow_auto_topic_creation = false
body = struct.pack(">hhih", 3, 4, 7, len(cid)) + cid + struct.pack(">i", 0) + b"\0"
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    s.sendall(struct.pack(">i", len(body)) + body)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
        c = s.recv(65536)
        if not c:
            sys.exit(1)
        buf += c
except OSError:
    sys.exit(1)
if len(buf) < 16:
    sys.exit(1)
corr, _throttle, nbrokers = struct.unpack_from(">iii", buf, 4)
sys.exit(0 if corr == 7 and nbrokers >= 1 else 1)
EOF
}

# k8s components: the parent directory holds pki/ (see k8s_pki)
probe_kube_apiserver() {
    local pki=$PARENT/pki body
    body=$(curl -sS --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
        "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null) || return 1
    [ "$body" = ok ]
}

probe_https_healthz() {
    local body
    body=$(curl -sS --max-time 2 --cacert "$PARENT/pki/ca.crt" "https://127.0.0.1:$1/healthz" 2>/dev/null) || return 1
    [ "$body" = ok ]
}

probe_kwok() {
    local body
    body=$(curl -sS --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz" 2>/dev/null) || return 1
    [ "$body" = ok ]
}

# ---- per-kind configuration ------------------------------------------------------

tool_bin() {
    local path
    path=$("$TOOLS_BUILD" path "$1") || die "cannot compute the $1 path"
    [ -x "$path" ] || die "$1 is not built ($path missing); run e2e/tools/build.sh"
    echo "$path"
}

pg_bindir() {
    local d
    if [ -n "${KAA_PG_BINDIR:-}" ]; then
        echo "$KAA_PG_BINDIR"
        return
    fi
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -1)
    [ -n "$d" ] || die "PostgreSQL server binaries not found (install postgresql-15)"
    echo "$d"
}

# OS user that runs postgres; empty when not root (runs as the caller)
pg_user() {
    [ "$(id -u)" = 0 ] || return 0
    if [ -n "${KAA_PG_USER:-}" ]; then
        echo "$KAA_PG_USER"
    elif id postgres >/dev/null 2>&1; then
        echo postgres
    else
        id kaatest >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin kaatest >&2 ||
            die "cannot create the kaatest user"
        echo kaatest
    fi
}

as_pg_user() {
    if [ -n "$PG_USER" ]; then
        setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --init-groups -- "$@"
    else
        "$@"
    fi
}

# let PG_USER reach DIR: give others search (x, not read) permission on the
# root-owned ancestors that lack it (e.g. a mktemp -d parent)
pg_reach_dir() {
    local d=$DIR
    [ -n "$PG_USER" ] || return 0
    chown "$PG_USER" "$DIR"
    while [ "$d" != / ]; do
        d=$(dirname "$d")
        if ! as_pg_user test -x "$d" 2>/dev/null; then
            if [ "$(stat -c %u "$d")" = 0 ]; then
                log "adding o+x to $d so that $PG_USER can reach $DIR"
                chmod o+x "$d"
            fi
        fi
    done
    as_pg_user test -w "$DIR" || die "user $PG_USER cannot write $DIR"
}

load_ports() {
    # shellcheck disable=SC1091
    . "$DIR/ports"
}

# extra flags from the environment variable named $1, one per line (split
# on white space, no globbing: "--controllers=*,-x" stays as it is)
extra_args() {
    local -
    set -f
    # shellcheck disable=SC2086
    [ -z "${!1:-}" ] || printf '%s\n' ${!1}
}

# writes DIR/cmd (one argument per line) and DIR/env
configure() {
    local pki=${PARENT:-}/pki
    case $KIND in
    kube-apiserver)
        local etcd_url
        etcd_url=$(sed -n 's/^KAA_TEST_ETCD=//p' "$PARENT/etcd/env")
        [ -n "$etcd_url" ] || die "no etcd URL in $PARENT/etcd/env"
        {
            # Node,RBAC and the default admission plugins plus
            # NodeRestriction, as kubeadm sets them up
            printf '%s\n' "$(tool_bin kube-apiserver)" \
                --etcd-servers="$etcd_url" \
                --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
                --secure-port="$API_PORT" \
                --tls-cert-file="$pki/serving.crt" --tls-private-key-file="$pki/serving.key" \
                --client-ca-file="$pki/ca.crt" \
                --authorization-mode=Node,RBAC \
                --enable-admission-plugins=NodeRestriction \
                --allow-privileged=true \
                --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
                --service-account-issuer=https://kubernetes.default.svc.cluster.local \
                --service-account-key-file="$pki/sa.pub" \
                --service-account-signing-key-file="$pki/sa.key" \
                --endpoint-reconciler-type=none \
                --profiling=false
            extra_args KAA_KUBE_APISERVER_ARGS
        } >"$DIR/cmd"
        echo "KAA_TEST_K8S_APISERVER=https://127.0.0.1:$API_PORT" >"$DIR/env"
        ;;
    kube-controller-manager)
        {
            # every default controller (Deployments, ReplicaSets, garbage
            # collector, service accounts and their tokens, namespaces,
            # endpoints, disruption budgets, node lifecycle, ...), each
            # with its own service-account credentials
            printf '%s\n' "$(tool_bin kube-controller-manager)" \
                --kubeconfig="$pki/kube-controller-manager.kubeconfig" \
                --bind-address=127.0.0.1 --secure-port="$CM_PORT" \
                --tls-cert-file="$pki/serving.crt" --tls-private-key-file="$pki/serving.key" \
                --service-account-private-key-file="$pki/sa.key" \
                --root-ca-file="$pki/ca.crt" \
                --use-service-account-credentials=true \
                --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
                --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
                --leader-elect=false \
                --profiling=false \
                --node-monitor-grace-period=2m
            # (KWOK's heartbeats arrive late on a loaded machine; with the
            # default 40 s grace the nodes flap NotReady and their pods stay
            # Ready=False, as KWOK's stages only start Pending pods)
            extra_args KAA_KUBE_CONTROLLER_MANAGER_ARGS
        } >"$DIR/cmd"
        echo "KAA_TEST_K8S_CONTROLLER_MANAGER=https://127.0.0.1:$CM_PORT" >"$DIR/env"
        ;;
    kube-scheduler)
        cat >"$DIR/config.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $pki/kube-scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF
        {
            printf '%s\n' "$(tool_bin kube-scheduler)" --config="$DIR/config.yaml" \
                --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
                --tls-cert-file="$pki/serving.crt" --tls-private-key-file="$pki/serving.key" \
                --profiling=false
            extra_args KAA_KUBE_SCHEDULER_ARGS
        } >"$DIR/cmd"
        echo "KAA_TEST_K8S_SCHEDULER=https://127.0.0.1:$SCHED_PORT" >"$DIR/env"
        ;;
    kwok)
        # HOME: kwok always also reads ~/.kwok/kwok.yaml when it exists
        mkdir -p "$DIR/home"
        {
            printf '%s\n' env HOME="$DIR/home" "$(tool_bin kwok)" \
                --kubeconfig="$pki/kwok.kubeconfig" \
                --config="$HARNESS_DIR/../tools/kwok/stages.yaml" \
                --manage-all-nodes=false \
                --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
                --node-ip=127.0.0.1 --cidr="$K8S_POD_CIDR" \
                --server-address="127.0.0.1:$KWOK_PORT"
            extra_args KAA_KWOK_ARGS
        } >"$DIR/cmd"
        echo "KAA_TEST_K8S_KWOK=http://127.0.0.1:$KWOK_PORT" >"$DIR/env"
        ;;
    etcd)
        local bin=${KAA_ETCD_BIN:-}
        [ -n "$bin" ] || bin=$(tool_bin etcd)
        [ -x "$bin" ] || die "etcd binary $bin not executable"
        local c=http://127.0.0.1:$CLIENT_PORT p=http://127.0.0.1:$PEER_PORT
        {
            printf '%s\n' "$bin" --name=kaa-test --data-dir="$DIR/data" \
                --listen-client-urls="$c" --advertise-client-urls="$c" \
                --listen-peer-urls="$p" --initial-advertise-peer-urls="$p" \
                --initial-cluster="kaa-test=$p" --initial-cluster-state=new \
                --initial-cluster-token="kaa-test-$CLIENT_PORT" \
                --enable-grpc-gateway=true --auto-compaction-retention=0 \
                --logger=zap --log-outputs=stderr --log-level=warn
            # shellcheck disable=SC2086
            [ -z "${KAA_ETCD_ARGS:-}" ] || printf '%s\n' ${KAA_ETCD_ARGS}
        } >"$DIR/cmd"
        echo "KAA_TEST_ETCD=$c" >"$DIR/env"
        ;;
    postgres)
        {
            printf '%s\n' "$PG_BINDIR/postgres" -D "$DIR/pgdata"
        } >"$DIR/cmd"
        echo "KAA_TEST_PG=postgresql://postgres@127.0.0.1:$PG_PORT/kaa" >"$DIR/env"
        ;;
    ferretdb)
        local bin=${KAA_FERRETDB_BIN:-}
        [ -n "$bin" ] || bin=$(tool_bin ferretdb)
        [ -x "$bin" ] || die "ferretdb binary $bin not executable"
        mkdir -p "$DIR/db" "$DIR/state"
        printf '%s\n' "$bin" --handler=sqlite --sqlite-url="file:$DIR/db/" \
            --state-dir="$DIR/state" --listen-addr="127.0.0.1:$MONGO_PORT" \
            --debug-addr=- --telemetry=disable --log-level=warn \
            >"$DIR/cmd"
        echo "KAA_TEST_MONGO=mongodb://127.0.0.1:$MONGO_PORT/" >"$DIR/env"
        ;;
    kafka)
        local home
        home=$(kafka_home)
        [ -f "$DIR/pki/keystore.pem" ] || kafka_pki || die "kafka: making the TLS certificates with openssl failed"
        kafka_properties >"$DIR/server.properties"
        # slf4j-simple logs to stderr (server.log); -Xss: Kafka's default
        printf '%s\n' java -Xmx"${KAA_KAFKA_HEAP:-512m}" -Xms64m -XX:+UseG1GC \
            -Djava.awt.headless=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
            -Dorg.slf4j.simpleLogger.showDateTime=true \
            -cp "$home/libs/*" kafka.Kafka "$DIR/server.properties" >"$DIR/cmd"
        {
            echo "KAA_TEST_KAFKA=127.0.0.1:$KAFKA_PORT"
            echo "KAA_TEST_KAFKA_SASL=127.0.0.1:$KAFKA_SASL_PORT"
            echo "KAA_TEST_KAFKA_USER=$KAFKA_USER"
            echo "KAA_TEST_KAFKA_PASSWORD=$KAFKA_PASSWORD"
            echo "KAA_TEST_KAFKA_SSL=127.0.0.1:$KAFKA_SSL_PORT"
            echo "KAA_TEST_KAFKA_CA=$DIR/pki/ca.crt"
        } >"$DIR/env"
        ;;
    esac
}

KAFKA_USER=kaa
KAFKA_PASSWORD=kaa-test-secret

kafka_home() {
    local home=${KAA_KAFKA_HOME:-}
    [ -n "$home" ] || home=$("$HARNESS_DIR/../tools/kafka/fetch.sh" path) || die "cannot compute the Kafka path"
    [ -n "$(ls "$home/libs/"kafka_2.13-*.jar 2>/dev/null)" ] ||
        die "Kafka is not fetched ($home/libs missing); run e2e/tools/build.sh kafka"
    command -v java >/dev/null || die "java (17+) is needed for kafka (Debian package openjdk-17-jre-headless)"
    echo "$home"
}

# a CA and the SSL listener's certificate (127.0.0.1, localhost) in DIR/pki;
# the key store is Kafka's PEM type: the PKCS#8 key, then the certificate
kafka_pki() {
    local pki=$DIR/pki
    command -v openssl >/dev/null || return 1
    mkdir -p "$pki" && chmod 0700 "$pki" || return 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" \
        -out "$pki/ca.crt" -days 3650 -subj /CN=kaa-test-kafka-ca 2>/dev/null || return 1
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
        'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$pki/ext.cnf"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/server.key" \
        -subj /CN=127.0.0.1 2>/dev/null |
        openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
            -days 3650 -extfile "$pki/ext.cnf" -out "$pki/server.crt" 2>/dev/null || return 1
    openssl pkcs8 -topk8 -nocrypt -in "$pki/server.key" -out "$pki/server.p8" || return 1
    cat "$pki/server.p8" "$pki/server.crt" >"$pki/keystore.pem"
}

# single node KRaft: one process is broker and controller (static voter set)
kafka_properties() {
    cat <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$DIR/pki/keystore.pem
listener.name.ssl.ssl.client.auth=none
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_USER="$KAFKA_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$DIR/data
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

# formats DIR/data (cluster id, SCRAM credentials of KAFKA_USER); once, at
# the first successful start; a restart keeps the data
kafka_format() {
    local home
    home=$(kafka_home)
    rm -rf "$DIR/data"
    java -cp "$home/libs/*" kafka.tools.StorageTool format \
        -t "$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')" \
        -c "$DIR/server.properties" \
        --add-scram "SCRAM-SHA-256=[name=$KAFKA_USER,password=$KAFKA_PASSWORD]" \
        --add-scram "SCRAM-SHA-512=[name=$KAFKA_USER,password=$KAFKA_PASSWORD]" \
        >>"$DIR/server.log" 2>&1 || { log_tail; die "formatting the Kafka storage failed"; }
}

probe() {
    case $KIND in
    etcd) probe_etcd ;;
    postgres) probe_postgres ;;
    ferretdb) probe_ferretdb ;;
    kafka) probe_kafka ;;
    kube-apiserver) probe_kube_apiserver ;;
    kube-controller-manager) probe_https_healthz "$CM_PORT" ;;
    kube-scheduler) probe_https_healthz "$SCHED_PORT" ;;
    kwok) probe_kwok ;;
    esac
}

# ---- start / stop ------------------------------------------------------------------

# The supervisor: a small python process that becomes a child subreaper,
# starts the server in a session of its own (pid == process group id), writes
# DIR/pid and DIR/pid.start, and then reaps the server and any orphan of it
# (postgres backends after a SIGKILL of the postmaster) until none is left.
# Without it, killed servers stay zombies until PID 1 reaps them, and a zombie
# postmaster keeps its pid "alive" so that postgres refuses to restart.
SUPERVISOR_PY='
import ctypes, os, signal, sys
d, cmd = sys.argv[1], sys.argv[2:]
os.closerange(3, 65536)
try:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
try:
    os.setsid()
except OSError:
    pass
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
            signal.signal(s, signal.SIG_DFL)
        os.execvp(cmd[0], cmd)
    except BaseException as e:
        print("harness supervisor: cannot run %s: %s" % (cmd[0], e), file=sys.stderr, flush=True)
    os._exit(127)
with open("/proc/%d/stat" % pid) as f:
    start = f.read().rsplit(")", 1)[1].split()[19]
for name, value in (("pid.start", start), ("pid", str(pid))):
    with open(os.path.join(d, name + ".tmp"), "w") as f:
        f.write(value + "\n")
    os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
    except InterruptedError:
        pass
'

# launch DIR/cmd under the supervisor; sets PID
launch() {
    local -a cmd
    local sup deadline=$(($(now_ms) + 10000))
    mapfile -t cmd <"$DIR/cmd"
    if [ "$KIND" = postgres ] && [ -n "$PG_USER" ]; then
        cmd=(setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --init-groups -- "${cmd[@]}")
    fi
    echo "=== harness: $1 $KIND at $(date '+%F %T') ===" >>"$DIR/server.log"
    rm -f "$DIR/pid" "$DIR/pid.start"
    python3 -c "$SUPERVISOR_PY" "$DIR" "${cmd[@]}" </dev/null >>"$DIR/server.log" 2>&1 &
    sup=$!
    until [ -s "$DIR/pid" ]; do
        if ! pid_alive "$sup" && [ ! -s "$DIR/pid" ]; then
            log_tail
            die "the supervisor of $KIND exited early"
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            log_tail
            die "the supervisor did not start $KIND"
        fi
        sleep 0.01
    done
    PID=$(cat "$DIR/pid")
}

log_tail() {
    echo "---- last lines of $DIR/server.log ----" >&2
    tail -n 40 "$DIR/server.log" >&2 2>/dev/null || true
    echo "----" >&2
}

# wait for readiness; 0 ready, 1 died, 2 timed out
wait_ready() {
    local deadline=$(($(now_ms) + TIMEOUT * 1000))
    while :; do
        if ! pid_alive "$PID"; then
            return 1
        fi
        if probe; then
            return 0
        fi
        [ "$(now_ms)" -lt "$deadline" ] || return 2
        sleep 0.05
    done
}

address_in_use() {
    tail -n 40 "$DIR/server.log" 2>/dev/null | grep -qiE 'address already in use|could not bind|could not create listen socket|BindException'
}

postgres_init() {
    local conf=$DIR/pgdata/postgresql.conf
    as_pg_user "$PG_BINDIR/initdb" -D "$DIR/pgdata" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >>"$DIR/server.log" 2>&1 ||
        { log_tail; die "initdb failed"; }
    cat >>"$conf" <<EOF

# kaa test harness
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
fsync = off
full_page_writes = off
max_connections = 200
logging_collector = off
EOF
}

postgres_set_port() {
    sed -i '/^port = /d' "$DIR/pgdata/postgresql.conf"
    echo "port = $PG_PORT" >>"$DIR/pgdata/postgresql.conf"
}

postgres_create_db() {
    as_pg_user "$PG_BINDIR/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -c 'CREATE DATABASE kaa' >>"$DIR/server.log" 2>&1
}

kind_setup() {
    case $KIND in
    postgres)
        PG_BINDIR=$(pg_bindir)
        [ -x "$PG_BINDIR/postgres" ] || die "$PG_BINDIR/postgres not found"
        PG_USER=$(pg_user)
        ;;
    esac
}

cmd_start() {
    local attempt rc ports t0
    t0=$(now_ms)
    if server_pid >/dev/null; then
        die "the $KIND server is already running in $DIR (pid $(cat "$DIR/pid"))"
    fi
    [ ! -f "$DIR/ports" ] || die "$DIR already holds a $KIND server; use restart, or remove the directory"
    kind_setup
    : >>"$DIR/server.log"
    echo "$KIND" >"$DIR/kind"
    if [ "$KIND" = postgres ]; then
        pg_reach_dir
        postgres_init
    fi
    for attempt in 1 2 3 4 5; do
        case $KIND in
        etcd)
            ports=$(free_ports 2) || die "no free ports"
            CLIENT_PORT=${ports% *} PEER_PORT=${ports#* }
            printf 'CLIENT_PORT=%s\nPEER_PORT=%s\n' "$CLIENT_PORT" "$PEER_PORT" >"$DIR/ports.try"
            # a failed first start may leave a half-made member directory
            rm -rf "$DIR/data"
            ;;
        postgres)
            PG_PORT=$(free_ports 1) || die "no free ports"
            echo "PG_PORT=$PG_PORT" >"$DIR/ports.try"
            postgres_set_port
            ;;
        ferretdb)
            MONGO_PORT=$(free_ports 1) || die "no free ports"
            echo "MONGO_PORT=$MONGO_PORT" >"$DIR/ports.try"
            ;;
        kafka)
            ports=$(free_ports 4) || die "no free ports"
            read -r KAFKA_PORT KAFKA_SASL_PORT KAFKA_SSL_PORT KAFKA_CONTROLLER_PORT <<<"$ports"
            printf 'KAFKA_PORT=%s\nKAFKA_SASL_PORT=%s\nKAFKA_SSL_PORT=%s\nKAFKA_CONTROLLER_PORT=%s\n' \
                "$KAFKA_PORT" "$KAFKA_SASL_PORT" "$KAFKA_SSL_PORT" "$KAFKA_CONTROLLER_PORT" >"$DIR/ports.try"
            ;;
        kube-apiserver)
            API_PORT=$(free_ports 1) || die "no free ports"
            echo "API_PORT=$API_PORT" >"$DIR/ports.try"
            ;;
        kube-controller-manager)
            CM_PORT=$(free_ports 1) || die "no free ports"
            echo "CM_PORT=$CM_PORT" >"$DIR/ports.try"
            ;;
        kube-scheduler)
            SCHED_PORT=$(free_ports 1) || die "no free ports"
            echo "SCHED_PORT=$SCHED_PORT" >"$DIR/ports.try"
            ;;
        kwok)
            KWOK_PORT=$(free_ports 1) || die "no free ports"
            echo "KWOK_PORT=$KWOK_PORT" >"$DIR/ports.try"
            ;;
        esac
        configure
        [ "$KIND" != kafka ] || kafka_format
        launch start
        rc=0
        wait_ready || rc=$?
        if [ "$rc" = 0 ]; then
            mv "$DIR/ports.try" "$DIR/ports"
            if [ "$KIND" = postgres ]; then
                postgres_create_db || { stop_pid "$PID" 10 || true; log_tail; die "CREATE DATABASE kaa failed"; }
            fi
            log "$KIND ready in $(($(now_ms) - t0)) ms (pid $PID, $DIR)"
            cat "$DIR/env"
            return 0
        fi
        if [ "$rc" = 1 ] && address_in_use; then
            log "$KIND: port conflict on attempt $attempt, picking other ports"
            wait_gone "$PID" 10 || true
            continue
        fi
        break
    done
    if [ "${rc:-1}" = 2 ]; then
        log "$KIND did not become ready within ${TIMEOUT}s"
        stop_pid "$PID" 10 || true
    else
        log "$KIND exited during start-up"
    fi
    rm -f "$DIR/ports.try"
    log_tail
    exit 1
}

cmd_restart() {
    local rc t0
    t0=$(now_ms)
    if [ ! -f "$DIR/ports" ] || [ ! -f "$DIR/cmd" ]; then
        die "$DIR holds no $KIND server started by the harness"
    fi
    kind_setup
    if PID=$(server_pid); then
        log "$KIND still running (pid $PID), stopping it first"
        stop_pid "$PID" "$TIMEOUT" || die "cannot stop $KIND (pid $PID)"
    else
        kill_orphans
    fi
    load_ports
    launch restart
    rc=0
    wait_ready || rc=$?
    if [ "$rc" = 0 ]; then
        log "$KIND ready again in $(($(now_ms) - t0)) ms (pid $PID, $DIR)"
        cat "$DIR/env"
        return 0
    fi
    if [ "$rc" = 2 ]; then
        log "$KIND did not become ready within ${TIMEOUT}s after restart"
        stop_pid "$PID" 10 || true
    else
        log "$KIND exited during restart"
    fi
    log_tail
    exit 1
}

# graceful stop of PID, SIGKILL of its group after $2 seconds
stop_pid() {
    local pid=$1 secs=$2 sig=TERM
    [ "$KIND" = postgres ] && sig=INT # fast shutdown; SIGTERM would wait for clients
    kill -s "$sig" "$pid" 2>/dev/null || true
    if wait_gone "$pid" "$secs"; then
        return 0
    fi
    log "$KIND (pid $pid) did not stop within ${secs}s, sending SIGKILL"
    kill_all "$pid"
}

cmd_stop() {
    local pid
    [ -d "$DIR" ] || { log "no such directory: $DIR (nothing to stop)"; return 0; }
    if ! pid=$(server_pid); then
        log "$KIND in $DIR is not running"
        # orphaned children of a killed server (postgres backends) still go
        kill_orphans
        return 0
    fi
    stop_pid "$pid" "$TIMEOUT" || die "$KIND (pid $pid) is still alive"
    log "$KIND stopped (pid $pid)"
}

# processes left over from a server whose main process is gone (postgres
# backends after the postmaster was killed): never the stale pid itself,
# which may belong to someone else by now
kill_orphans() {
    local g
    g=$(cat "$DIR/pid" 2>/dev/null) || g=''
    # a live process under that pid is not ours (server_pid failed): then
    # match only by data directory ("-" matches no pid or group)
    if [ -z "$g" ] || pid_alive "$g"; then
        g=-
    fi
    kill_all "$g" || true
}

cmd_kill() {
    local pid
    [ -f "$DIR/pid" ] || die "no pid file in $DIR"
    if ! pid=$(server_pid); then
        log "$KIND in $DIR is not running"
        kill_orphans
        return 0
    fi
    kill_all "$pid" || die "$KIND (pid $pid) survived SIGKILL"
    log "$KIND killed (pid $pid)"
}

# ---- k8s: a control plane made of several servers ----------------------------------

# start order; stop and kill go the other way
K8S_PARTS="etcd kube-apiserver kube-controller-manager kube-scheduler kwok"
K8S_PARTS_REVERSED="kwok kube-scheduler kube-controller-manager kube-apiserver etcd"
K8S_SERVICE_CIDR=10.96.0.0/16
K8S_SERVICE_IP=10.96.0.1 # the first address: the kubernetes Service
K8S_POD_CIDR=10.244.0.1/16 # fake pod IPs handed out by kwok; nothing listens there

# run the harness on one part's sub-directory; its stdout (assignments) is dropped
part() { "$HARNESS_DIR/harness.sh" "$1" "$2" "$DIR/$2" >/dev/null; }

k8s_api_port() {
    sed -n 's/^API_PORT=//p' "$DIR/kube-apiserver/ports" 2>/dev/null
}

KUBECTL=''
kubectl_() { "$KUBECTL" --kubeconfig="$DIR/kubeconfig" --request-timeout=5s "$@"; }

# CA, serving and client certificates (ECDSA P-256), service-account key
k8s_pki() {
    local pki=$DIR/pki name subj
    mkdir -p "$pki"
    chmod 0700 "$pki"
    cat >"$pki/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, IP:$K8S_SERVICE_IP, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
EOF
    newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key" 2>/dev/null; }
    newkey ca || return 1
    openssl req -config "$pki/openssl.cnf" -new -x509 -key "$pki/ca.key" -subj "/CN=kaa-test-ca" \
        -days 3650 -extensions ca -out "$pki/ca.crt" 2>/dev/null || return 1
    # name subject extensions
    while read -r name subj ext; do
        newkey "$name" || return 1
        openssl req -config "$pki/openssl.cnf" -new -key "$pki/$name.key" -subj "$subj" 2>/dev/null |
            openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
                -days 3650 -extfile "$pki/openssl.cnf" -extensions "$ext" -out "$pki/$name.crt" 2>/dev/null ||
            return 1
    done <<EOF
serving /CN=kube-apiserver server
admin /O=system:masters/CN=kaa-admin client
kube-controller-manager /CN=system:kube-controller-manager client
kube-scheduler /CN=system:kube-scheduler client
kwok /O=system:masters/CN=kwok client
EOF
    newkey sa || return 1
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null || return 1
    cp "$pki/ca.crt" "$DIR/ca.crt"
}

# FILE USER: a kubeconfig for pki/USER.crt/.key
k8s_kubeconfig() {
    local pki=$DIR/pki
    (
        umask 077
        cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kaa-test
  cluster:
    server: https://127.0.0.1:$(k8s_api_port)
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$pki/$2.crt")
    client-key-data: $(base64 -w0 "$pki/$2.key")
contexts:
- name: kaa-test
  context:
    cluster: kaa-test
    user: $2
current-context: kaa-test
EOF
    )
}

# Node objects that kwok manages (the annotation); no taints, so every pod
# may land there; zones a, b, c for topology spreading
k8s_nodes_yaml() {
    local i zones=(a b c)
    for ((i = 0; i < K8S_NODES; i++)); do
        cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    topology.kubernetes.io/zone: zone-${zones[i % 3]}
spec: {}
status:
  allocatable: {cpu: "256", memory: 1Ti, pods: "1000"}
  capacity: {cpu: "256", memory: 1Ti, pods: "1000"}
EOF
    done
}

# every kwok node Ready and untainted (the not-ready taint that admission puts
# on a new node is gone), and the default service account exists
k8s_nodes_ready() {
    local out n
    out=$(kubectl_ get nodes -l type=kwok -o \
        'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.spec.taints}{"\n"}{end}' \
        2>/dev/null) || return 1
    n=$(grep -cE '^kwok-node-[0-9]+ True $' <<<"$out") || true
    [ "$n" = "$K8S_NODES" ] || return 1
    kubectl_ get serviceaccount default -n default -o name >/dev/null 2>&1
}

k8s_wait_ready() {
    local deadline=$(($(now_ms) + TIMEOUT * 1000)) p
    until k8s_nodes_ready; do
        for p in $K8S_PARTS; do
            part status "$p" || { log "k8s: $p exited"; return 1; }
        done
        if [ "$(now_ms)" -ge "$deadline" ]; then
            log "k8s: the kwok nodes are not Ready (and untainted) after ${TIMEOUT}s:"
            kubectl_ get nodes -o wide >&2 2>&1 || true
            return 1
        fi
        sleep 0.2
    done
}

k8s_teardown() {
    local p
    for p in $K8S_PARTS_REVERSED; do
        [ ! -f "$DIR/$p/kind" ] || "$HARNESS_DIR/harness.sh" stop "$p" "$DIR/$p" 2>/dev/null || true
    done
}

k8s_fail() {
    log "k8s: $*; stopping what was started"
    k8s_teardown
    exit 1
}

k8s_write_env() {
    {
        echo "KUBECONFIG=$DIR/kubeconfig"
        echo "KAA_TEST_K8S_APISERVER=https://127.0.0.1:$(k8s_api_port)"
        echo "KAA_TEST_K8S_CA=$DIR/ca.crt"
        echo "KAA_TEST_K8S_BIN=$DIR/bin"
        echo "KAA_TEST_K8S_DIR=$DIR"
    } >"$DIR/env.tmp"
    mv "$DIR/env.tmp" "$DIR/env"
}

k8s_start() {
    local t0 p pids=() rc=0 tool
    t0=$(now_ms)
    if [ -f "$DIR/env" ] || [ -d "$DIR/kube-apiserver" ]; then
        die "$DIR already holds a k8s cluster; use restart, or remove the directory"
    fi
    echo k8s >"$DIR/kind"
    command -v openssl >/dev/null || die "openssl is needed for the k8s certificates (Debian package openssl)"
    KUBECTL=$(tool_bin kubectl)
    for p in kube-apiserver kube-controller-manager kube-scheduler kwok; do
        tool_bin "$p" >/dev/null
    done
    mkdir -p "$DIR/bin"
    for tool in kubectl helm kwok; do
        p=$("$TOOLS_BUILD" path "$tool")
        [ -x "$p" ] && ln -sfn "$p" "$DIR/bin/$tool"
    done
    k8s_pki || die "k8s: generating the certificates with openssl failed"
    part start etcd || k8s_fail "etcd did not start"
    part start kube-apiserver || k8s_fail "kube-apiserver did not start"
    k8s_kubeconfig "$DIR/kubeconfig" admin
    for p in kube-controller-manager kube-scheduler kwok; do
        k8s_kubeconfig "$DIR/pki/$p.kubeconfig" "$p"
    done
    k8s_nodes_yaml >"$DIR/nodes.yaml"
    kubectl_ apply -f "$DIR/nodes.yaml" >/dev/null || k8s_fail "creating the kwok nodes failed"
    # the rest start in parallel, each waits for its own /healthz
    for p in kube-controller-manager kube-scheduler kwok; do
        part start "$p" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do
        wait "$p" || rc=1
    done
    [ "$rc" = 0 ] || k8s_fail "a component did not start"
    k8s_wait_ready || k8s_fail "the cluster did not become ready"
    k8s_write_env
    log "k8s ready in $(($(now_ms) - t0)) ms ($K8S_NODES kwok nodes, $DIR)"
    cat "$DIR/env"
}

k8s_restart() {
    local t0 p
    t0=$(now_ms)
    [ -f "$DIR/env" ] || die "$DIR holds no k8s cluster started by the harness"
    KUBECTL=$(tool_bin kubectl)
    k8s_teardown
    for p in $K8S_PARTS; do
        part restart "$p" || k8s_fail "$p did not restart"
    done
    k8s_wait_ready || k8s_fail "the cluster did not become ready again"
    log "k8s ready again in $(($(now_ms) - t0)) ms ($DIR)"
    cat "$DIR/env"
}

k8s_stop() {
    [ -d "$DIR" ] || { log "no such directory: $DIR (nothing to stop)"; return 0; }
    local p rc=0
    for p in $K8S_PARTS_REVERSED; do
        [ -f "$DIR/$p/kind" ] || continue
        "$HARNESS_DIR/harness.sh" stop "$p" "$DIR/$p" || rc=1
    done
    [ "$rc" = 0 ] || die "k8s: a component did not stop"
    log "k8s stopped ($DIR)"
}

k8s_kill() {
    local p rc=0
    for p in $K8S_PARTS_REVERSED; do
        [ -f "$DIR/$p/pid" ] || continue
        "$HARNESS_DIR/harness.sh" kill "$p" "$DIR/$p" || rc=1
    done
    [ "$rc" = 0 ] || die "k8s: a component survived SIGKILL"
}

k8s_status() {
    local p
    for p in $K8S_PARTS; do
        part status "$p" || return 1
    done
}

# ---- main ----------------------------------------------------------------------

[ $# -eq 3 ] || usage
CMD=$1 KIND=$2 DIR=$3
case $KIND in
etcd | postgres | ferretdb | kafka | k8s) ;;
# the parts of k8s, each in its sub-directory of the k8s DIR
kube-apiserver | kube-controller-manager | kube-scheduler | kwok) ;;
*) echo "harness: unknown server kind '$KIND' (etcd, postgres, ferretdb, kafka, k8s)" >&2; exit 2 ;;
esac
PG_USER='' PG_BINDIR=''
K8S_NODES=${KAA_K8S_NODES:-3}
[ "$KIND" != k8s ] || [[ $K8S_NODES =~ ^[1-9][0-9]*$ ]] || die "KAA_K8S_NODES must be a positive number"
[ "$CMD" != start ] || mkdir -p "$DIR"
if [ -d "$DIR" ]; then
    DIR=$(cd "$DIR" && pwd)
elif [ "$CMD" != stop ]; then
    die "no such directory: $DIR"
fi
PARENT=$(dirname "$DIR")
cd / # postgres runs as another user who may not read the caller's directory

if [ "$KIND" = k8s ]; then
    case $CMD in
    start) k8s_start ;;
    restart) k8s_restart ;;
    stop) k8s_stop ;;
    kill) k8s_kill ;;
    status) k8s_status ;;
    env) cat "$DIR/env" ;;
    *) usage ;;
    esac
    exit
fi

case $CMD in
start) cmd_start ;;
restart) cmd_restart ;;
stop) cmd_stop ;;
kill) cmd_kill ;;
status) server_pid >/dev/null ;;
env) cat "$DIR/env" ;;
*) usage ;;
esac
