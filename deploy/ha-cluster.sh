#!/usr/bin/env bash
# zookeeper: a throwaway Patroni cluster in a folder of ours, for make run HA=1, make check and make bench HA=1:
# one etcd and two PostgreSQL 15 nodes under Patroni, a primary and a synchronous standby, from Debian's own
# packages (patroni 3.0.2, etcd-server 3.4, postgresql-15). The counterpart of deploy/pg-cluster.sh.
#
# usage: deploy/ha-cluster.sh COMMAND DIR [--port-base N]
#   start     creates the cluster on first use, starts etcd and both Patronis (as the postgres user), waits
#             until there is a leader and a streaming synchronous standby, and prints the connection string.
#             Kept between runs like pg-cluster.sh's: a second start of a running cluster only prints it.
#   stop      stops both Patronis (the standby's SIGTERM first; each stops its PostgreSQL), then etcd,
#             then kills whatever of ours is left (a process of the postgres user whose working folder is
#             inside DIR). A missing or stopped cluster is not an error.
#   status    exit 0 if etcd and both Patronis run; prints `patronictl list`.
#   url       the libpq multi-host string: host=127.0.0.1,127.0.0.1 port=P1,P2 dbname=zookeeper
#             user=postgres target_session_attrs=read-write (libpq tries each in turn and keeps the one
#             that accepts writes: the workers find the primary by themselves, no Patroni API needed).
#   yml [NODE]      the path of a node's Patroni YAML (default: every node's, one a line).
#   leader | sync   the name of the leader / of the synchronous standby (n1 or n2); exit 1 if there is none.
#   pid NODE        the postmaster pid of node n1 or n2; exit 1 if it does not run.
#   healthy         exit 0 if there is a leader and a synchronous standby streaming from it.
#   wait [SECONDS]  waits (default 60 s) until healthy; exit 1 on timeout, printing the cluster.
#   patronictl ARGS...  patronictl -c <n1's YAML> ARGS (e.g. list, switchover --candidate n2 --force).
#   destroy   stop, then remove DIR.
#   --port-base N   at creation: ports N..N+5 (etcd client, etcd peer, n1's and n2's REST API, n1's and
#             n2's PostgreSQL), all on 127.0.0.1. Default: a free block below the ephemeral range, chosen
#             at creation and kept in DIR/ports.
#
# Layout (DIR):
#   ports                   the six ports, chosen once
#   etcd/data, etcd/etcd.log, etcd.pid
#   n1/patroni.yml, n1/patroni.log, n1/data (PGDATA), n1/data/log (PostgreSQL's log), n1/sock (its
#   unix socket, for Patroni and psql), patroni-n1.pid; the same for n2.
# Everything listens on 127.0.0.1 only, with trust authentication (a throwaway cluster of one machine, as
# pg-cluster.sh's trusts its unix socket). Run as root: PostgreSQL, Patroni and etcd run as postgres.
set -euo pipefail

readonly PGBIN=/usr/lib/postgresql/15/bin
readonly PG_USER=postgres
readonly DB_NAME=zookeeper
readonly SCOPE=zookeeper
readonly NODES=(n1 n2)
readonly START_TIMEOUT_S=90   # the first start runs initdb and a base backup
readonly STOP_TIMEOUT_S=30    # per Patroni: a fast shutdown of its PostgreSQL

# Patroni's timings, tuned so that a failover completes well within 15 s (issue 21):
# - loop_wait 1: each Patroni runs its HA cycle every second (default 10). The leader sees its PostgreSQL
#   crashed, or its sync standby gone, within a second; a standby is woken at once by etcd's watch when
#   the leader key is released (a crash with primary_start_timeout 0, a switchover). Costs, measured idle:
#   3-5 ms of CPU a second per Patroni, 17 ms a second of etcd's (the leader key's lease kept alive).
# - ttl 10: the leader key's lease. It only matters when the leader's Patroni itself dies or hangs (the
#   standby then takes over after at most ttl + loop_wait = 11 s). Patroni needs ttl >= loop_wait +
#   2 * retry_timeout, so that a leader that is merely slow to reach etcd keeps its key; and on 2 shared,
#   busy cores a Patroni can stall for seconds, which must not cost a spurious failover.
# - retry_timeout 4: how long Patroni retries etcd and PostgreSQL before it gives up for this cycle (a
#   leader that cannot reach etcd for that long demotes itself). 1 + 2 * 4 = 9 <= 10.
# - primary_start_timeout 0: a crashed primary is not restarted in place (default: for up to 300 s);
#   the synchronous standby is promoted at once. With synchronous replication that loses nothing
#   acknowledged, and the old primary comes back as a standby (pg_rewind, or a new base backup).
readonly TTL=10 LOOP_WAIT=1 RETRY_TIMEOUT=4
# synchronous_mode_strict false: when the synchronous standby is gone, the leader takes it out of
# synchronous_standby_names at its next cycle and goes on committing alone (asynchronous) until a standby
# streams again. Commits wait at most about loop_wait for that, never for ever; the price is that while it is
# degraded a 202 is on one machine only, and a failover in that time could lose it (Patroni would not promote
# a standby that was not synchronous, so it would rather wait for the old primary). Strict mode would keep
# that promise by refusing every write while the standby is gone: with two nodes a single failure would
# stop the service, which is what a standby is meant to prevent. (A standby that is frozen rather than gone
# still streams as far as the primary can tell: commits then wait for the workers' statement timeout, until
# Patroni drops it, measured 7-8 s, or wal_sender_timeout, 60 s, ends its connection.)
readonly SYNC_STRICT=false

die() {
    echo "ha-cluster: $*" >&2
    exit 2
}

(($# >= 2)) || die "usage: $0 start|stop|status|url|yml|leader|sync|pid|healthy|wait|patronictl|destroy DIR [...]"
cmd=$1 dir=$2
shift 2
port_base=''
args=()
while (($#)); do
    case $1 in
        --port-base) port_base=${2:?}; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
[[ -z $port_base ]] || { [[ $port_base =~ ^[0-9]+$ ]] && ((port_base > 1024 && port_base + 5 < 65536)); } \
    || die "bad --port-base '$port_base'"

mkdir -p "$dir"
dir=$(realpath -e "$dir")
[[ $dir =~ ^[A-Za-z0-9/._+-]+$ ]] || die "folder '$dir' may only contain letters, digits and / . _ + -"
# sun_path holds 108 bytes: DIR/nN/sock/.s.PGSQL.NNNNN
((${#dir} + 26 <= 107)) || die "folder path too long for a unix socket: $dir"

id -u "$PG_USER" >/dev/null 2>&1 || die "user $PG_USER does not exist"

# --- ports ---------------------------------------------------------------------

port_free() {
    python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

block_free() {
    local p
    for ((p = $1; p < $1 + 6; p++)); do port_free "$p" || return 1; done
}

# Below the ephemeral range (32768-60999 on Linux), so no outgoing connection takes one of them later.
pick_block() {
    local base i
    for ((i = 0; i < 50; i++)); do
        base=$((20000 + (RANDOM % 2000) * 6))
        block_free "$base" && { echo "$base"; return; }
    done
    die "no free block of 6 ports found between 20000 and 32000"
}

load_ports() {
    local base
    if [[ -n $port_base && -s $dir/ports && $(sed -n 's/^base=//p' "$dir/ports") != "$port_base" ]]; then
        die "the cluster in $dir uses ports from $(sed -n 's/^base=//p' "$dir/ports"): ports are chosen at creation ($0 destroy $dir first)"
    elif [[ -n $port_base ]]; then
        base=$port_base
    elif [[ -s $dir/ports ]]; then
        base=$(sed -n 's/^base=//p' "$dir/ports")
    elif [[ $cmd == start ]]; then
        base=$(pick_block)
    else
        return 1
    fi
    [[ $base =~ ^[0-9]+$ ]] || die "$dir/ports is damaged"
    etcd_port=$base etcd_peer_port=$((base + 1))
    rest_port=([n1]=$((base + 2)) [n2]=$((base + 3)))
    pg_port=([n1]=$((base + 4)) [n2]=$((base + 5)))
    port_base=$base
}
declare -A rest_port pg_port

url() {
    echo "host=127.0.0.1,127.0.0.1 port=${pg_port[n1]},${pg_port[n2]} dbname=$DB_NAME user=$PG_USER target_session_attrs=read-write"
}

# --- processes -----------------------------------------------------------------

pidfile() { echo "$dir/$1.pid"; }

# start-stop-daemon detaches (setsid), switches to postgres and writes the pid file. A pid file is
# believed only for a live process of the postgres user (a stale one never hits another process); a
# zombie counts as gone: PID 1 may be slow to reap what start-stop-daemon orphaned (here, about 2 s).
alive() {
    local state
    state=$(ps -o user=,stat= -p "$1" 2>/dev/null) || return 1
    [[ $state =~ ^$PG_USER\ +[^Z] ]]
}

daemon_pid() {
    local pid
    pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && echo "$pid"
}

daemon_running() { daemon_pid "$1" >/dev/null; }

daemon_start() {
    local name=$1 log=$2
    shift 2
    start-stop-daemon --start --background --make-pidfile --pidfile "$(pidfile "$name")" \
        --chuid "$PG_USER:$PG_USER" --chdir "$dir" --output "$log" --startas "$1" -- "${@:2}" >/dev/null
}

# SIGTERM to each, then SIGKILL to those still running after timeout seconds.
daemon_stop() {
    local timeout=$1 name pid pids=() i
    shift
    for name; do
        pid=$(daemon_pid "$name") && kill -TERM "$pid" 2>/dev/null && pids+=("$pid:$name")
    done
    for ((i = 0; ${#pids[@]} && i < timeout * 10; i++)); do
        for pid in "${pids[@]}"; do alive "${pid%%:*}" && break; done || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if alive "${pid%%:*}"; then
            echo "ha-cluster: ${pid#*:} ignored SIGTERM for ${timeout}s; killing it" >&2
            kill -KILL "${pid%%:*}" 2>/dev/null || true
        fi
    done
    for name; do rm -f "$(pidfile "$name")"; done
}

# Ours: a process of the postgres user whose working folder is DIR or below it (etcd and Patroni run in
# DIR, PostgreSQL's processes in their data folder, pg_basebackup and pg_rewind in Patroni's).
leftovers() {
    local p cwd
    for p in $(ps -u "$PG_USER" -o pid=); do
        cwd=$(readlink "/proc/$p/cwd" 2>/dev/null) || continue
        [[ $cwd == "$dir" || $cwd == "$dir"/* ]] && echo "$p"
    done
    return 0
}

# --- the REST API ----------------------------------------------------------------

rest() {  # rest NODE PATH: a node's Patroni REST API answer, or nothing
    curl -s --max-time 2 "http://127.0.0.1:${rest_port[$1]}$2" 2>/dev/null || true
}

# The cluster as either node's Patroni sees it: one line per member, "name role state", then
# "sync name" for each member the leader reports as a synchronous standby streaming from it.
cluster_lines() {
    local n out
    for n in "${NODES[@]}"; do
        out=$(rest "$n" /cluster)
        [[ -n $out ]] && break
    done
    [[ -n $out ]] || return 1
    local leader
    leader=$(python3 -c 'import json, sys
for m in json.loads(sys.argv[1]).get("members", []):
    print(m["name"], m.get("role", "?"), m.get("state", "?"))' "$out") || return 1
    echo "$leader"
    local l
    l=$(awk '$2 == "leader" && $3 == "running" { print $1 }' <<<"$leader")
    [[ -n $l ]] || return 0
    python3 -c 'import json, sys
for r in json.loads(sys.argv[1] or "{}").get("replication", []):
    if r.get("state") == "streaming" and r.get("sync_state") == "sync":
        print("sync", r["application_name"])' "$(rest "$l" /patroni)"
}

role_of() {  # role_of ROLE: the member with that role in the DCS (leader, sync_standby)
    cluster_lines | awk -v r="$1" '$2 == r { print $1; found = 1 } END { exit !found }'
}

healthy() {
    local lines sync
    lines=$(cluster_lines) || return 1
    sync=$(awk '$2 == "sync_standby" { print $1 }' <<<"$lines")
    [[ -n $sync ]] && grep -q "^$(awk '$2 == "leader" && $3 == "running" { print $1 }' <<<"$lines") leader" <<<"$lines" \
        && grep -qx "sync $sync" <<<"$lines"
}

wait_healthy() {
    local timeout=$1 i
    for ((i = 0; i < timeout * 5; i++)); do
        healthy && return 0
        sleep 0.2
    done
    echo "ha-cluster: no leader with a streaming synchronous standby after ${timeout}s:" >&2
    cluster_lines >&2 || echo "  (no Patroni REST API answers)" >&2
    return 1
}

postmaster_pid() {
    local f=$dir/$1/data/postmaster.pid pid
    [[ -s $f ]] || return 1
    pid=$(head -n 1 "$f")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# --- configuration -------------------------------------------------------------------

write_etcd_args() {
    etcd_args=(--name zk-etcd --data-dir "$dir/etcd/data"
        --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port"
        --listen-peer-urls "http://127.0.0.1:$etcd_peer_port"
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port"
        --initial-cluster "zk-etcd=http://127.0.0.1:$etcd_peer_port"
        --initial-cluster-state new --initial-cluster-token "zk-ha-$port_base"
        # Patroni writes its leader key every loop_wait: keep the history short.
        --auto-compaction-mode revision --auto-compaction-retention 1000
        --log-level warn --logger zap)
}

# Written on every start (the ports may be given anew); Patroni keeps the dynamic part (bootstrap.dcs) in
# etcd after the first start, so edits there need `patronictl edit-config`.
write_yml() {
    local n=$1 f=$dir/$1/patroni.yml
    cat >"$f.tmp" <<EOF
# zookeeper's throwaway Patroni node $n, written by deploy/ha-cluster.sh (rewritten at every start).
# patronictl -c $f list
scope: $SCOPE
namespace: /zookeeper/
name: $n
log:
  level: INFO
restapi:
  listen: 127.0.0.1:${rest_port[$n]}
  connect_address: 127.0.0.1:${rest_port[$n]}
etcd3:
  hosts: 127.0.0.1:$etcd_port
bootstrap:
  # Written to etcd by the node that bootstraps the cluster; see ha-cluster.sh for the timings.
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
    primary_start_timeout: 0
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: $SYNC_STRICT
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 200
        wal_keep_size: 256MB
        synchronous_commit: 'on'
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - no-sync   # a throwaway cluster: initdb need not flush; the server itself keeps fsync on
postgresql:
  listen: 127.0.0.1:${pg_port[$n]}
  connect_address: 127.0.0.1:${pg_port[$n]}
  data_dir: $dir/$n/data
  bin_dir: $PGBIN
  pgpass: $dir/$n/pgpass
  use_unix_socket: true
  # A node whose timeline diverged (an old primary with WAL the new one never had: only ever what was not
  # acknowledged) is rewound, or copied anew when that fails.
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
  basebackup:
    - checkpoint: fast
  authentication:
    superuser:
      username: $PG_USER
    replication:
      username: replicator
    rewind:
      username: $PG_USER
  parameters:
    unix_socket_directories: '$dir/$n/sock'
    unix_socket_permissions: '0777'
    logging_collector: 'on'
    log_directory: log
    log_filename: postgresql.log
    log_file_mode: '0644'
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
# Never arm a watchdog device: resetting the machine is not a throwaway cluster's business.
watchdog:
  mode: 'off'
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
EOF
    chmod 0644 "$f.tmp"
    mv "$f.tmp" "$f"
}

# --- commands ------------------------------------------------------------------------

check_installed() {
    [[ -x $PGBIN/initdb ]] || die "PostgreSQL 15 is not installed ($PGBIN/initdb missing): run deploy/install-deps.sh"
    command -v patroni >/dev/null || die "patroni is not installed: run deploy/install-deps.sh"
    command -v etcd >/dev/null || die "etcd is not installed (Debian's etcd-server): run deploy/install-deps.sh"
    ((EUID == 0)) || die "run as root (PostgreSQL, Patroni and etcd run as the $PG_USER user)"
}

check_ports_free() {
    local p
    daemon_running etcd || for p in "$etcd_port" "$etcd_peer_port"; do
        port_free "$p" || die "port $p (etcd) is taken by another program: stop it, or $0 destroy $dir"
    done
    local n
    for n in "${NODES[@]}"; do
        daemon_running "patroni-$n" && continue
        for p in "${rest_port[$n]}" "${pg_port[$n]}"; do
            port_free "$p" || die "port $p ($n) is taken by another program: stop it, or $0 destroy $dir"
        done
    done
}

start_etcd() {
    daemon_running etcd && return 0
    daemon_start etcd "$dir/etcd/etcd.log" /usr/bin/etcd "${etcd_args[@]}" \
        || die "etcd did not start; see $dir/etcd/etcd.log"
    local i
    for ((i = 0; i < 100; i++)); do
        curl -s --max-time 1 "http://127.0.0.1:$etcd_port/health" | grep -q '"health":"true"' && return 0
        daemon_running etcd || break
        sleep 0.1
    done
    die "etcd is not healthy after 10 s; see $dir/etcd/etcd.log"
}

start_patroni() {
    daemon_running "patroni-$1" && return 0
    daemon_start "patroni-$1" "$dir/$1/patroni.log" /usr/bin/patroni "$dir/$1/patroni.yml" \
        || die "Patroni $1 did not start; see $dir/$1/patroni.log"
}

create_database() {
    local leader sock
    leader=$(role_of leader) || die "no leader"
    sock=$dir/$leader/sock
    runuser -u "$PG_USER" -- "$PGBIN/psql" -h "$sock" -p "${pg_port[$leader]}" -U "$PG_USER" -d postgres -qAtc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1 \
        || runuser -u "$PG_USER" -- "$PGBIN/createdb" -h "$sock" -p "${pg_port[$leader]}" -U "$PG_USER" "$DB_NAME" \
        || die "could not create the database $DB_NAME on $leader"
}

start() {
    check_installed
    chmod 0755 "$dir"
    install -d -o "$PG_USER" -g "$PG_USER" -m 0700 "$dir/etcd"
    install -d -o "$PG_USER" -g "$PG_USER" -m 0755 "$dir/n1" "$dir/n2"
    runuser -u "$PG_USER" -- test -x "$dir" || die "$PG_USER cannot reach $dir (a parent lacks o+x)"
    check_ports_free
    echo "base=$port_base" >"$dir/ports"
    write_etcd_args
    local n
    for n in "${NODES[@]}"; do write_yml "$n"; done
    start_etcd
    if [[ ! -f $dir/n1/data/PG_VERSION && ! -f $dir/n2/data/PG_VERSION ]]; then
        # First start: n1 bootstraps (initdb) alone, so that it is the first leader; n2 then copies it.
        start_patroni n1
        local i
        for ((i = 0; i < START_TIMEOUT_S * 5; i++)); do
            [[ $(role_of leader 2>/dev/null) == n1 ]] && break
            daemon_running patroni-n1 || die "Patroni n1 exited; see $dir/n1/patroni.log"
            sleep 0.2
        done
    fi
    for n in "${NODES[@]}"; do start_patroni "$n"; done
    wait_healthy "$START_TIMEOUT_S" || die "see $dir/n1/patroni.log and $dir/n2/patroni.log"
    create_database
    url
}

stop() {
    [[ -d $dir/n1 || -d $dir/etcd ]] || return 0
    load_ports || true
    # The standby's SIGTERM first: a Patroni that has it runs no more HA cycles, so it cannot be
    # promoted when the leader, stopping too, releases its key. Both stop at once: a standby stopped
    # alone would first wait for the leader to stop naming it synchronous (2 x loop_wait).
    local leader n order=()
    leader=$(role_of leader 2>/dev/null) || leader=''
    for n in "${NODES[@]}"; do [[ $n == "$leader" ]] || order+=("patroni-$n"); done
    [[ -z $leader ]] || order+=("patroni-$leader")
    daemon_stop "$STOP_TIMEOUT_S" "${order[@]}"
    daemon_stop 10 etcd
    # A PostgreSQL whose Patroni was killed, a backend whose postmaster was: no process of ours survives.
    local pids i
    for ((i = 0; i < 50; i++)); do
        pids=$(leftovers)
        [[ -n $pids ]] || return 0
        # shellcheck disable=SC2086 # one pid a word
        kill -KILL $pids 2>/dev/null || true
        sleep 0.1
    done
    die "processes left in $dir: $(leftovers | tr '\n' ' ')"
}

status() {
    load_ports || return 1
    daemon_running etcd && daemon_running patroni-n1 && daemon_running patroni-n2 || return 1
    patronictl -c "$dir/n1/patroni.yml" list 2>/dev/null || true
}

case $cmd in
    start) load_ports; start ;;
    stop) stop ;;
    status) status ;;
    url) load_ports || die "no cluster in $dir"; url ;;
    yml)
        if ((${#args[@]})); then
            [[ ${args[0]} == n1 || ${args[0]} == n2 ]] || die "no node '${args[0]}' (n1 or n2)"
            echo "$dir/${args[0]}/patroni.yml"
        else
            for n in "${NODES[@]}"; do echo "$dir/$n/patroni.yml"; done
        fi
        ;;
    leader) load_ports || exit 1; role_of leader ;;
    sync) load_ports || exit 1; role_of sync_standby ;;
    pid)
        [[ ${args[0]:-} == n1 || ${args[0]:-} == n2 ]] || die "pid takes a node: n1 or n2"
        postmaster_pid "${args[0]}"
        ;;
    healthy) load_ports || exit 1; healthy ;;
    wait) load_ports || exit 1; wait_healthy "${args[0]:-60}" ;;
    patronictl) exec patronictl -c "$dir/n1/patroni.yml" "${args[@]}" ;;
    destroy) stop; rm -rf "$dir" ;;
    *) die "unknown command $cmd" ;;
esac
