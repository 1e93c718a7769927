#!/usr/bin/env bash
# zookeeper: run the whole stack (spawn-fcgi + worker(s) + nginx over HTTPS) in a private prefix, in the foreground.
# Ctrl-C (SIGINT), SIGTERM or Ctrl-\ (SIGQUIT) stops all and exits 0; SIGHUP reloads all; if nginx or the only
# worker dies, the rest is stopped and the exit is non-zero. With several workers (PostgreSQL) a worker that dies
# is started again after a pause. The config is checked first (zookeeper-fcgi --check-config, as the systemd
# unit's ExecStartPre does): a bad one is refused before anything starts, with the worker's one line naming
# file, line and problem, and exit 2.
#
# Who gets Ctrl-C. A terminal sends SIGINT to its whole foreground process group. Started by make, that group
# is make's: make would die of the SIGINT (GNU make re-raises it once its recipe ends: status 130, or
# "make: *** ... Error 1" when the recipe failed) whatever this script did; and nginx and the worker would stop
# on their own, before this script's trap ran or without it (a SIGINT ignored on entry cannot be trapped), and
# this script then took the worker's exit for a crash. So:
# - when it shares the terminal's foreground group with its parent, this script re-executes itself in place
#   (same pid, so make still waits on it) in a process group of its own, takes the terminal and hands it back
#   as it exits: Ctrl-C reaches neither make nor anything else of make's. Ctrl-Z is ignored meanwhile
#   (stopped, this group would hold the terminal while make's shell still waited on make);
# - while the terminal can signal this script's group, the children run apart, in sessions of their own
#   (setsid; pg_ctl does the same for PostgreSQL): only this script signals them, in its order, nginx first (its
#   requests in flight finish), then the workers, the database last. Otherwise they stay in its group, so that
#   whoever owns the group (a test harness, a supervisor) reaches the whole stack through it;
# - a stop asked of the whole group (SIGINT or SIGTERM to it) reaches the children too: a child gone after
#   this script's trap has run is part of that stop, not a crash;
# - started with SIGINT ignored (`make run &` from a script), it re-executes itself with SIGINT restored, since
#   bash cannot trap a signal ignored on entry: SIGINT stops the stack in every case.
# A new kind of child must be started the same way: `"${detach[@]}" command &`.
#
# Everything it writes stays under --prefix DIR: the rendered nginx config,
# logs/, tmp/, tls/ (the dev certificate), state/ (the worker's store, unless
# --state-dir says otherwise), web/ (a copy of the dashboard's files), the
# FastCGI socket(s) and the pid files; with --store postgresql also pg/, a
# throwaway PostgreSQL cluster (deploy/pg-cluster.sh) kept between runs; with
# --ha instead ha/, a throwaway Patroni cluster (deploy/ha-cluster.sh: etcd,
# a primary and a synchronous standby), also kept between runs.
# As root, the worker and nginx's workers run as www-data: the socket is
# www-data:www-data 0660, so only they can use it. Otherwise nobody switches
# user and the socket is 0600.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
readonly HERE REPO
readonly SERVICE_USER=www-data
# The worker drains within 2 s by contract; nginx's graceful stop waits for
# requests in flight, which are short.
readonly WORKER_GRACE_S=5
readonly NGINX_GRACE_S=5  # above worker_shutdown_timeout in dev.conf.in
# Before a dead worker of several is started again (as systemd's RestartSec).
# One started while the database is down starts degraded (docs/cluster.md).
readonly RESPAWN_PAUSE_S=1
readonly PG_PORT=54329      # names the cluster's socket file; nothing listens on TCP

usage() {
    cat <<EOF
usage: $0 --bin BIN --config CONF --prefix DIR
          [--https-port 8443] [--http-port 8080] [--state-dir DIR]
          [--nginx-dir DIR]   (the nginx/ templates to render; default the
                               repository's, bench/ passes a tuned copy)
          [--store sqlite|postgresql] [--workers N]
                              (several workers need PostgreSQL: SQLite has one
                               writer by design)
          [--ha]              (PostgreSQL under Patroni: a primary and a
                               synchronous standby, deploy/ha-cluster.sh)
EOF
}

die() {
    echo "run-stack: $*" >&2
    exit 2
}

bin='' conf='' prefix='' state_dir='' https_port=8443 http_port=8080 nginx_dir=$REPO/nginx
store=sqlite workers=1 ha=''
parse_args() {
    while (($#)); do
        case $1 in
            --ha) ha=1; shift; continue ;;
            --bin | --config | --prefix | --state-dir | --https-port | --http-port | --nginx-dir | --store | --workers)
                [[ $# -ge 2 ]] || die "$1 needs a value"
                case $1 in
                    --bin) bin=$2 ;;
                    --config) conf=$2 ;;
                    --prefix) prefix=$2 ;;
                    --state-dir) state_dir=$2 ;;
                    --https-port) https_port=$2 ;;
                    --http-port) http_port=$2 ;;
                    --nginx-dir) nginx_dir=$2 ;;
                    --store) store=$2 ;;
                    --workers) workers=$2 ;;
                esac
                shift 2
                ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; exit 2 ;;
        esac
    done
    [[ -n $bin && -n $conf && -n $prefix ]] || { usage >&2; exit 2; }
    local port
    for port in "$https_port" "$http_port"; do
        if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
            die "bad port '$port'"
        fi
    done
    [[ -x $bin && -f $bin ]] || die "worker binary '$bin' is not an executable file"
    [[ -r $conf && -f $conf ]] || die "config '$conf' is not a readable file"
    [[ -r $nginx_dir/dev.conf.in ]] || die "nginx templates '$nginx_dir' lack dev.conf.in"
    [[ $store == sqlite || $store == postgresql ]] || die "--store takes sqlite or postgresql, not '$store'"
    [[ $workers =~ ^[1-9][0-9]?$ ]] || die "--workers takes 1 to 99, not '$workers'"
    if [[ $store == sqlite && $workers != 1 ]]; then
        die "WORKERS=$workers needs STORE=postgresql: SQLite has a single writer by design (one worker per store)"
    fi
    [[ -z $ha || $store == postgresql ]] || die "HA=1 needs STORE=postgresql (a Patroni cluster of PostgreSQL nodes)"
}

# As the systemd unit's ExecStartPre does, before anything starts (nginx,
# PostgreSQL): a bad config is refused with the worker's one line naming the
# file (as given), the line and the problem.
check_config() {
    "$bin" --check-config "$conf" >/dev/null || exit 2
}

# --- Ctrl-C and the terminal (see the top of this file) ---------------------

# Moves this very process (pid kept) into a group of its own that owns the
# terminal, if ZK_RUN_STACK_FG names the group it leaves; empties that
# variable if it cannot. Restores SIGINT in any case, then execs ARGV.
readonly PERL_REEXEC='
    use POSIX qw(getpgrp setpgid tcsetpgrp);
    $SIG{INT} = "DEFAULT";
    if ($ENV{ZK_RUN_STACK_FG} ne "") {
        my $ok = 0;
        if (open(my $tty, "+<", "/dev/tty")) {
            local $SIG{TTOU} = "IGNORE";  # asked from a group not yet in the foreground
            $ok = setpgid(0, 0) && tcsetpgrp(fileno($tty), $$);
            setpgid(0, $ENV{ZK_RUN_STACK_FG}) if !$ok;
        }
        $ENV{ZK_RUN_STACK_FG} = "" if !$ok;
    }
    exec { $ARGV[0] } @ARGV or die "run-stack: cannot re-execute: $!\n";'

# Hands the terminal back to ARGV[0] if this process group still owns it.
readonly PERL_GIVE_BACK='
    use POSIX qw(getpgrp tcgetpgrp tcsetpgrp);
    $SIG{TTOU} = "IGNORE";
    open(my $tty, "+<", "/dev/tty") or exit 0;
    tcsetpgrp(fileno($tty), $ARGV[0]) if tcgetpgrp(fileno($tty)) == getpgrp();'

return_pgrp=''  # the group the terminal goes back to as this script exits
detach=()       # (setsid) when the children run apart from this script's process group

# Sets the caller's pgrp, tty (0: none) and tpgid (the terminal's foreground group).
read_stat() {
    local stat
    read -r stat <"/proc/$$/stat"
    # The fields after the command name (which may hold spaces and parentheses):
    # state ppid pgrp session tty_nr tpgid.
    read -r _ _ pgrp _ tty tpgid _ <<<"${stat##*) }"
}

claim_ctrl_c() {
    local pgrp tty tpgid key ignored=0 take=''
    if [[ -n ${ZK_RUN_STACK_FG+set} ]]; then  # the re-executed image
        return_pgrp=$ZK_RUN_STACK_FG
        unset ZK_RUN_STACK_FG
    else
        read_stat
        # In the terminal's foreground group, and in a group another process leads (make's).
        if ((tty != 0 && tpgid == pgrp && pgrp != $$)); then take=$pgrp; fi
        while read -r key ignored; do [[ $key != SigIgn: ]] || break; done <"/proc/$$/status"
        if [[ -n $take ]] || ((16#$ignored & 1 << (2 - 1))); then  # SIGINT is signal 2
            export ZK_RUN_STACK_FG=$take
            exec perl -e "$PERL_REEXEC" -- "$BASH" "${BASH_SOURCE[0]}" "$@"
        fi
    fi
    [[ -z $return_pgrp ]] || trap '' TSTP
    read_stat
    if ((tty != 0 && tpgid == pgrp)); then detach=(setsid); fi
}

give_back_terminal() {
    [[ -n $return_pgrp ]] || return 0
    perl -e "$PERL_GIVE_BACK" "$return_pgrp" || true
    return_pgrp=''
}

# Absolute paths: the worker re-reads its config on SIGHUP from wherever it
# runs, and nginx.conf must not depend on the directory nginx starts in.
resolve_paths() {
    bin=$(realpath -e "$bin")
    conf=$(realpath -e "$conf")
    mkdir -p "$prefix"
    prefix=$(realpath -e "$prefix")
    # nginx.conf takes these paths unquoted.
    [[ $prefix =~ ^[A-Za-z0-9/._+-]+$ ]] \
        || die "prefix '$prefix' may only contain letters, digits and / . _ + -"
    state_dir=${state_dir:-$prefix/state}
    mkdir -p "$state_dir"
    state_dir=$(realpath -e "$state_dir")
    socket=$prefix/zookeeper.sock
    sockets=("$socket")
    local i
    for ((i = 2; i <= workers; i++)); do sockets+=("$prefix/zookeeper-$i.sock"); done
    worker_pidfile=$prefix/zookeeper-fcgi.pid
    cert=$prefix/tls/cert.pem
    key=$prefix/tls/key.pem
    # sun_path holds 108 bytes including the terminating NUL.
    ((${#socket} <= 107)) || die "socket path too long for a unix socket: $socket"
}

# A pid file left by a run that crashed is removed; one whose process still
# runs this prefix means a second stack would fight the first for the socket.
clear_stale() {
    local pidfile pid
    for pidfile in "$worker_pidfile" "$prefix/nginx.pid"; do
        [[ -s $pidfile ]] || { rm -f "$pidfile"; continue; }
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
            && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$prefix"; then
            die "a stack already runs in $prefix (pid $pid); stop it first"
        fi
        rm -f "$pidfile"
    done
    rm -f "${sockets[@]}"
}

setup_user() {
    if ((EUID == 0)); then
        id -u "$SERVICE_USER" >/dev/null 2>&1 || die "user $SERVICE_USER does not exist"
        user_directive="user $SERVICE_USER;"
        spawn_opts=(-u "$SERVICE_USER" -g "$SERVICE_USER" -U "$SERVICE_USER" -G "$SERVICE_USER" -M 0660)
        chown "$SERVICE_USER:$SERVICE_USER" "$state_dir"
        chmod 0750 "$state_dir"
        # Fail here with a clear message rather than later with EACCES in a log.
        runuser -u "$SERVICE_USER" -- test -x "$prefix" \
            || die "$SERVICE_USER cannot reach $prefix (a parent directory lacks o+x)"
        runuser -u "$SERVICE_USER" -- test -r "$conf" \
            || die "$SERVICE_USER cannot read $conf"
        runuser -u "$SERVICE_USER" -- test -x "$bin" \
            || die "$SERVICE_USER cannot execute $bin"
    else
        user_directive="# not root: nginx workers keep the invoking user"
        spawn_opts=(-M 0600)
    fi
}

# One sed per file and no subshell per value: under load, each fork here
# costs tens of milliseconds, and stacks start often in the tests.
sed_subst() {
    local value=$2
    value=${value//\\/\\\\}
    value=${value//&/\\&}
    value=${value//|/\\|}
    sed_args+=(-e "s|@$1@|$value|g")
}

render() {
    if ((${#sed_args[@]} == 0)); then
        sed_subst PREFIX "$prefix"
        sed_subst SOCKET "$socket"
        sed_subst UPSTREAM "$prefix/upstream.conf"
        sed_subst HTTPS_PORT "$https_port"
        sed_subst HTTP_PORT "$http_port"
        sed_subst CERT "$cert"
        sed_subst KEY "$key"
        sed_subst USER_DIRECTIVE "$user_directive"
        sed_subst HTPASSWD /dev/null
        sed_subst WEBROOT "$prefix/web"
    fi
    sed "${sed_args[@]}" "$1" >"$2"
}

# The upstream (nginx/upstream.conf.in, its own file as in production, where
# zookeeper-upstream generates it) names one worker's socket; several workers
# get one server line each, with the same parameters.
upstream_servers() {
    ((workers > 1)) || return 0
    local line lines='' i
    line=$(grep -E "^[[:space:]]*server unix:$socket[ ;]" "$1") || die "no upstream server line for $socket in $1"
    for i in "${sockets[@]}"; do lines+=${line//"$socket"/"$i"}$'\n'; done
    awk -v old="$line" -v new="${lines%$'\n'}" '$0 == old { print new; next } { print }' "$1" >"$1.tmp"
    mv "$1.tmp" "$1"
}

render_nginx() {
    mkdir -p "$prefix/logs" "$prefix/tmp"
    render "$nginx_dir/zookeeper-http.conf.in" "$prefix/zookeeper-http.conf"
    render "$nginx_dir/upstream.conf.in" "$prefix/upstream.conf"
    upstream_servers "$prefix/upstream.conf"
    render "$nginx_dir/zookeeper-locations.conf" "$prefix/zookeeper-locations.conf"
    # Operators' endpoints as in production; the dev stack only listens on
    # loopback, which they let in without credentials, so none are made.
    render "$nginx_dir/zookeeper-operator.conf.in" "$prefix/zookeeper-operator.conf"
    # The dashboard (/, /app.js, /style.css) and /openapi.json. Copied, so
    # nginx's workers (www-data) need no access to the work tree; restart the
    # stack to serve edited files.
    mkdir -p "$prefix/web"
    install -m 0644 "$REPO"/web/index.html "$REPO"/web/app.js "$REPO"/web/style.css \
        "$REPO"/docs/openapi.json "$prefix/web/"
    render "$nginx_dir/zookeeper-dashboard.conf.in" "$prefix/zookeeper-dashboard.conf"
    render "$nginx_dir/dev.conf.in" "$prefix/nginx.conf"
    # Configuration errors reach the terminal now, not a log file later.
    nginx -t -q -p "$prefix/" -c "$prefix/nginx.conf" -e stderr \
        || die "nginx rejected $prefix/nginx.conf"
}

worker_pids=() nginx_pid='' stop_requested='' store_url=''
sed_args=()

# A pause that Ctrl-C cuts short: the sleep runs as a background job, which
# ignores SIGINT, and `wait` returns as soon as a trap has run. A foreground
# sleep would die of the SIGINT, and `set -e` take its 130 for a failure.
pause() {
    sleep "$1" &
    wait $! 2>/dev/null || true
}

pidfile_of() { (($1 == 1)) && echo "$worker_pidfile" || echo "$prefix/zookeeper-fcgi-$1.pid"; }

# The throwaway cluster lives in $prefix/pg and survives between runs, like
# the SQLite file in state/.
start_database() {
    [[ $store == postgresql ]] || return 0
    [[ -z $ha ]] || { start_ha_database; return; }
    store_url=$("$HERE/pg-cluster.sh" start "$prefix/pg" --port "$PG_PORT") || {
        [[ -z $stop_requested ]] || exit 0  # Ctrl-C while it started: not its failure
        die "the PostgreSQL cluster in $prefix/pg did not start"
    }
    echo "zookeeper: PostgreSQL in $prefix/pg ($store_url)"
}

# The Patroni cluster in $prefix/ha (ports chosen at its creation and kept);
# the workers get its multi-host string and find the primary themselves.
start_ha_database() {
    store_url=$("$HERE/ha-cluster.sh" start "$prefix/ha") || {
        [[ -z $stop_requested ]] || exit 0  # Ctrl-C while it started: not its failure
        die "the Patroni cluster in $prefix/ha did not start (see $prefix/ha/n*/patroni.log)"
    }
    echo "zookeeper: PostgreSQL under patroni in $prefix/ha ($store_url)"
    local yml
    for yml in $("$HERE/ha-cluster.sh" yml "$prefix/ha"); do echo "zookeeper:   Patroni YAML $yml"; done
    echo "zookeeper:   patronictl -c $prefix/ha/n1/patroni.yml list"
    "$HERE/ha-cluster.sh" patronictl "$prefix/ha" list | sed 's/^/zookeeper:   /' || true
}

stop_database() {
    [[ $store == postgresql ]] || return 0
    if [[ -n $ha ]]; then
        "$HERE/ha-cluster.sh" stop "$prefix/ha" || true
    else
        "$HERE/pg-cluster.sh" stop "$prefix/pg" --port "$PG_PORT" || true
    fi
}

# Worker N (1-based) on sockets[N-1]. -n: spawn-fcgi binds the socket as fd 0
# and execs the worker in place, so $! is the worker itself, which this
# script supervises. setsid, if the children run apart (see the top of this
# file), execs in place too: a background child of this shell leads no group.
start_worker() {
    local n=$1 sock=${sockets[$(($1 - 1))]} i
    local args=(--config "$conf" --state-dir "$state_dir")
    [[ $store == sqlite ]] || args+=(--backend "$store" --worker-name "worker-$n")
    rm -f "$sock"
    ZOOKEEPER_STORE_URL=$store_url "${detach[@]}" spawn-fcgi -n -s "$sock" "${spawn_opts[@]}" -- "$bin" "${args[@]}" &
    worker_pids[n]=$!
    echo "${worker_pids[n]}" >"$(pidfile_of "$n")"
    for ((i = 0; i < 50; i++)); do
        [[ -S $sock ]] && return 0
        kill -0 "${worker_pids[n]}" 2>/dev/null || break
        pause 0.1
    done
    [[ -S $sock ]] || die "spawn-fcgi did not create $sock"
}

start_workers() {
    local n
    for ((n = 1; n <= workers; n++)); do start_worker "$n"; done
}

# Apart if the workers are. Returns once nginx has written its pid file,
# which it does after installing its signal handlers: until then SIGQUIT is
# lost (a background job starts with SIGQUIT ignored), and a stop that early
# would wait NGINX_GRACE_S for nothing, then kill it.
start_nginx() {
    local i
    "${detach[@]}" nginx -p "$prefix/" -c "$prefix/nginx.conf" -e stderr &
    nginx_pid=$!
    for ((i = 0; i < 50; i++)); do
        [[ ! -s $prefix/nginx.pid ]] || return 0
        kill -0 "$nginx_pid" 2>/dev/null || return 0
        pause 0.1
    done
}

# Polls instead of blocking in wait, so a stuck child is killed after grace.
stop_child() {
    local pid=$1 sig=$2 grace_s=$3 name=$4 i
    [[ -n $pid ]] || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < grace_s * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run-stack: $name ignored SIG$sig for ${grace_s}s; killing it" >&2
        # Its children first (nginx's workers): killed alone, the master
        # would leave them running, orphaned, with the ports still bound.
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    trap '' INT TERM QUIT HUP
    # SIGQUIT: nginx finishes the requests it has, then exits; the worker then
    # drains what nginx already handed it.
    stop_child "$nginx_pid" QUIT "$NGINX_GRACE_S" nginx
    nginx_pid=''
    local n
    for n in "${!worker_pids[@]}"; do
        stop_child "${worker_pids[n]}" TERM "$WORKER_GRACE_S" "zookeeper-fcgi (worker $n)"
        rm -f "$(pidfile_of "$n")"
    done
    worker_pids=()
    rm -f "${sockets[@]}"
    # The database last: the workers commit what they hold as they stop.
    stop_database
}

reload_all() {
    echo "run-stack: SIGHUP: reloading the worker's config and nginx" >&2
    local pid
    for pid in "${worker_pids[@]}"; do kill -HUP "$pid" 2>/dev/null || true; done
    kill -HUP "$nginx_pid" 2>/dev/null || true
}

wait_ready() {
    local i code
    for ((i = 0; i < 100; i++)); do
        [[ -z $stop_requested ]] || return 0
        if ! kill -0 "${worker_pids[1]}" 2>/dev/null || ! kill -0 "$nginx_pid" 2>/dev/null; then
            return 0
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            --cacert "$cert" "https://localhost:$https_port/animals" 2>/dev/null) || true
        if [[ $code == 200 ]]; then
            echo "run-stack: ready (pids: worker ${worker_pids[*]}, nginx $nginx_pid)" >&2
            return 0
        fi
        pause 0.1
    done
    echo "run-stack: not ready after 10 s (last answer: ${code:-none}); still running" >&2
}

# Polls rather than `wait -n`: a child that dies while this script is busy
# elsewhere (say, in wait_ready) is reported by bash and dropped from its job
# table, and `wait -n` then blocks on the other child forever. Plain
# `wait PID` still returns the dead child's status. pause keeps Ctrl-C and
# SIGTERM prompt.
supervise() {
    local status n dead
    while :; do
        dead=''
        for n in "${!worker_pids[@]}"; do
            kill -0 "${worker_pids[n]}" 2>/dev/null || { dead=$n; break; }
        done
        [[ -n $dead ]] || kill -0 "$nginx_pid" 2>/dev/null || dead=nginx
        # After the scan: a child seen gone was reaped after any signal that
        # stopped it reached this script too, whose trap has then run. So a
        # stop asked of the whole process group is not taken for a crash.
        if [[ -n $stop_requested ]]; then
            stop_all
            echo "run-stack: stopped" >&2
            exit 0
        fi
        if [[ -z $dead ]]; then
            pause 0.2
            continue
        fi
        status=0
        if [[ $dead != nginx ]]; then
            wait "${worker_pids[dead]}" 2>/dev/null || status=$?
            if ((workers > 1)); then
                echo "run-stack: worker $dead exited with status $status; the others serve; starting it again in ${RESPAWN_PAUSE_S}s" >&2
                pause "$RESPAWN_PAUSE_S"
                start_worker "$dead"
                continue
            fi
            unset "worker_pids[dead]"
            echo "run-stack: zookeeper-fcgi exited with status $status; stopping nginx" >&2
        else
            wait "$nginx_pid" 2>/dev/null || status=$?
            nginx_pid=''
            echo "run-stack: nginx exited with status $status (see $prefix/logs/error.log); stopping the workers" >&2
        fi
        stop_all
        exit $((status == 0 ? 1 : status))
    done
}

main() {
    claim_ctrl_c "$@"
    trap 'give_back_terminal' EXIT
    trap 'exit 0' INT TERM QUIT  # nothing started yet
    parse_args "$@"
    check_config
    resolve_paths
    clear_stale
    setup_user
    "$HERE/dev-cert.sh" "$prefix/tls" >/dev/null
    render_nginx

    # Until supervise() runs, an error or signal must not leave children behind.
    trap 'stop_all; give_back_terminal' EXIT
    trap 'stop_requested=1' INT TERM QUIT
    trap 'reload_all' HUP

    echo "zookeeper: https://localhost:$https_port/animals (http://localhost:$http_port redirects)"
    echo "zookeeper: CA certificate $cert"
    echo "zookeeper:   curl --cacert $cert https://localhost:$https_port/animals"
    echo "zookeeper: logs in $prefix/logs, worker log on stderr; Ctrl-C stops"
    start_database
    start_workers
    start_nginx
    wait_ready
    supervise
}

main "$@"
