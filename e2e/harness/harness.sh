#!/usr/bin/env bash
# Real-server test harness: starts etcd, PostgreSQL or FerretDB (MongoDB wire
# protocol on SQLite) on 127.0.0.1 with free ports and a private state
# directory, waits until the server really answers, and can stop, kill and
# restart it on the same ports and data. See e2e/README.md.
#
#   harness.sh start   etcd|postgres|ferretdb DIR   start, print KAA_TEST_*=... on stdout
#   harness.sh stop    KIND DIR    graceful stop (SIGTERM; postgres: SIGINT), SIGKILL after a deadline
#   harness.sh kill    KIND DIR    SIGKILL the server (and its process group), wait until gone
#   harness.sh restart KIND DIR    start again on the same ports and data (stops it first if running)
#   harness.sh status  KIND DIR    exit 0 when the server process is alive
#   harness.sh env     KIND DIR    print the assignments again
#
# State in DIR: pid, server.log, env (the printed assignments), ports, cmd
# (the exact command line, reused by restart), data (etcd), pgdata
# (postgres), db + state (ferretdb).
#
# Environment:
#   KAA_ETCD_BIN       etcd binary (default: the cached pinned build, see e2e/tools/build.sh)
#   KAA_ETCD_ARGS      extra etcd flags (word-split)
#   KAA_FERRETDB_BIN   FerretDB binary (default: the cached pinned build)
#   KAA_PG_BINDIR      PostgreSQL bin directory (default: newest /usr/lib/postgresql/*/bin)
#   KAA_PG_USER        OS user that runs postgres when the harness runs as root
#                      (default: postgres, else kaatest, created if missing)
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
    sed -n '7,13p' "$HARNESS_DIR/harness.sh" | sed 's/^# \{0,1\}//' >&2
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

# writes DIR/cmd (one argument per line) and DIR/env
configure() {
    case $KIND in
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
    esac
}

probe() {
    case $KIND in
    etcd) probe_etcd ;;
    postgres) probe_postgres ;;
    ferretdb) probe_ferretdb ;;
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
    tail -n 40 "$DIR/server.log" 2>/dev/null | grep -qiE 'address already in use|could not bind|could not create listen socket'
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
        esac
        configure
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

# ---- main ----------------------------------------------------------------------

[ $# -eq 3 ] || usage
CMD=$1 KIND=$2 DIR=$3
case $KIND in
etcd | postgres | ferretdb) ;;
*) echo "harness: unknown server kind '$KIND' (etcd, postgres, ferretdb)" >&2; exit 2 ;;
esac
PG_USER='' PG_BINDIR=''
[ "$CMD" != start ] || mkdir -p "$DIR"
if [ -d "$DIR" ]; then
    DIR=$(cd "$DIR" && pwd)
elif [ "$CMD" != stop ]; then
    die "no such directory: $DIR"
fi
cd / # postgres runs as another user who may not read the caller's directory

case $CMD in
start) cmd_start ;;
restart) cmd_restart ;;
stop) cmd_stop ;;
kill) cmd_kill ;;
status) server_pid >/dev/null ;;
env) cat "$DIR/env" ;;
*) usage ;;
esac
