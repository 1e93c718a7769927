#!/usr/bin/env bash
# zookeeper: a throwaway PostgreSQL 15 cluster in a folder of ours, for make run, make check and make bench.
# Unix socket only (in the cluster's folder, no TCP port), trust for local connections, one database "zookeeper".
#
# usage: deploy/pg-cluster.sh start|stop|status|url DIR [--port N] [--fsync off]
#   start   creates the cluster on first use (initdb as the postgres user), then starts it; it survives
#           between runs like the SQLite file does. Prints the libpq connection string.
#   stop    fast shutdown (waits for it). A missing or stopped cluster is not an error.
#   status  exit 0 if the cluster runs.
#   url     prints the connection string ("host=DIR/sock port=N dbname=zookeeper user=postgres").
#   --port  the port number names the socket file (.s.PGSQL.N); nothing listens on TCP. Default 54329.
#   --fsync off: only for unit tests (the durability tests keep the real settings).
# Run as root: initdb and pg_ctl refuse root, so they run as the postgres user, which owns DIR.
set -euo pipefail

readonly PGBIN=/usr/lib/postgresql/15/bin
readonly PG_USER=postgres
readonly DB_NAME=zookeeper
readonly START_TIMEOUT_S=30

die() {
    echo "pg-cluster: $*" >&2
    exit 2
}

(($# >= 2)) || die "usage: $0 start|stop|status|url DIR [--port N] [--fsync off]"
cmd=$1 dir=$2
shift 2
port=54329 fsync=on
while (($#)); do
    case $1 in
        --port) port=${2:?}; shift 2 ;;
        --fsync) fsync=${2:?}; shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done
[[ $port =~ ^[0-9]+$ ]] && ((port > 1024 && port < 65536)) || die "bad port '$port'"
[[ $fsync == on || $fsync == off ]] || die "--fsync takes on or off"

mkdir -p "$dir"
dir=$(realpath -e "$dir")
data=$dir/data
sock=$dir/sock
log=$dir/postgresql.log
url="host=$sock port=$port dbname=$DB_NAME user=$PG_USER"
# sun_path holds 108 bytes: DIR/sock/.s.PGSQL.NNNNN
((${#sock} + 18 <= 107)) || die "folder path too long for a unix socket: $sock"

as_pg() { runuser -u "$PG_USER" -- "$@"; }

running() { [[ -f $data/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; }

create() {
    [[ -x $PGBIN/initdb ]] || die "PostgreSQL 15 is not installed ($PGBIN/initdb missing): run deploy/install-deps.sh"
    id -u "$PG_USER" >/dev/null 2>&1 || die "user $PG_USER does not exist"
    ((EUID == 0)) || die "run as root (initdb runs as the $PG_USER user)"
    install -d -o "$PG_USER" -g "$PG_USER" -m 0700 "$dir" "$sock"
    runuser -u "$PG_USER" -- test -x "$dir" || die "$PG_USER cannot reach $dir (a parent lacks o+x)"
    as_pg "$PGBIN/initdb" -D "$data" -U "$PG_USER" --auth-local=trust --auth-host=reject \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || die "initdb failed; see $dir/initdb.log"
    cat >>"$data/postgresql.conf" <<EOF
# zookeeper's throwaway cluster (deploy/pg-cluster.sh)
listen_addresses = ''
unix_socket_directories = '$sock'
unix_socket_permissions = 0777
port = $port
max_connections = 200
fsync = $fsync
EOF
}

start() {
    [[ -f $data/PG_VERSION ]] || create
    # The socket folder is in the config: a moved checkout needs it rewritten.
    if running; then echo "$url"; return; fi
    sed -i -e "s|^unix_socket_directories = .*|unix_socket_directories = '$sock'|" \
        -e "s|^port = .*|port = $port|" -e "s|^fsync = .*|fsync = $fsync|" "$data/postgresql.conf"
    chmod 0755 "$dir"  # workers running as another user reach the socket
    install -d -o "$PG_USER" -g "$PG_USER" -m 0755 "$sock"
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$log" -w -t "$START_TIMEOUT_S" start >/dev/null \
        || die "PostgreSQL did not start; see $log"
    as_pg "$PGBIN/psql" -h "$sock" -p "$port" -U "$PG_USER" -d postgres -qAtc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1 \
        || as_pg "$PGBIN/createdb" -h "$sock" -p "$port" -U "$PG_USER" "$DB_NAME"
    echo "$url"
}

stop() {
    [[ -f $data/PG_VERSION ]] || return 0
    running || return 0
    as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t "$START_TIMEOUT_S" stop >/dev/null
}

case $cmd in
    start) start ;;
    stop) stop ;;
    status) running ;;
    url) echo "$url" ;;
    *) die "unknown command $cmd" ;;
esac
