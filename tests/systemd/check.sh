#!/usr/bin/env bash
# tests/systemd/check.sh (`make systemd-check`): the Debian package, proven
# under a real systemd in a throw-away Debian 12 container (systemd-nspawn).
#
# How it works:
#   1. A Debian 12 root filesystem is debootstrapped once into build/systemd/base
#      and the project's packages are installed into it (cached; redone only
#      when deploy/install-deps.sh or the package list below changes).
#   2. On the host: `make deb` (build/deb/zookeeper_VERSION_*.deb, lintian
#      clean) and a "next release" VERSION+check1 built the same way into
#      build/systemd/deb-next/ for the upgrade test.
#   3. Each run copies base to build/systemd/run (a second or so), copies both
#      .debs in, and boots the copy with `systemd-nspawn --boot
#      --private-network` (its own loopback only).
#   4. Inside, through nsenter: `apt install ./zookeeper_*.deb` (again: the
#      second must change nothing), then HTTPS, a survey, socket ownership,
#      the worker's sandbox, the security score, the upgrade (a stored job and
#      the edited conffile survive), reload, restart-on-crash, a clean stop,
#      the worker pool (zookeeper@1 and @2 on the container's PostgreSQL 15,
#      the generated nginx upstream, kill -9 of one while surveys run, one
#      restarted while PostgreSQL is stopped),
#      `apt remove` (config and jobs stay) and `apt purge` (they go).
#   5. The container is always powered off (trap), and every step has a timeout.
# Never boot systemd on the host's own root: its boot-time cleanup empties /tmp.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${SYSTEMD_CHECK_DIR:-$REPO/build/systemd}
BASE=$WORK/base
RUN=$WORK/run
LOG=$WORK/log
DEB_IN_CT=/root/deb
VERSION=$(cat "$REPO/VERSION")
NEXT_VERSION=$VERSION+check1
NEXT_DIR=$WORK/deb-next
MAX_SECONDS=${SYSTEMD_CHECK_TIMEOUT:-1200}
# What this check itself runs inside, whether or not deploy/install-deps.sh
# (which provides everything the service needs) happens to list it too.
# postgresql-15: the worker pool's shared store (check_pool).
EXTRA_PKGS="curl openssl procps postgresql-15"
CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CERT=/etc/zookeeper/tls/zookeeper.crt
BIN=/usr/sbin/zookeeper-fcgi

PASSED=0
FAILED=0
NSPAWN_PID=
CT_PID=

pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
note() { printf '      %s\n' "$*"; }
step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }
die()  { printf 'systemd-check: %s\n' "$*" >&2; exit 1; }
# expect NAME CMD...: one PASS/FAIL line per claim.
expect() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

# Runs a command inside the booted container with a clean environment (the
# host's PATH with pyenv shims means nothing in there), bounded by T seconds.
in_ct() {
    timeout "${T:-60}" nsenter -t "$CT_PID" -a env -i PATH="$CT_PATH" HOME=/root \
        LANG=C.UTF-8 TERM=dumb "$@"
}

# ---- host prerequisites -----------------------------------------------------

host_prerequisites() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, nspawn)"
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

# The mirror apt already uses here: the container must come from the same one.
debian_mirror() {
    if [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; return; fi
    local uri
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources |
          awk '{print $2}' | grep -m1 '/debian/*$' || true)
    [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list |
          awk '{print $2}' | grep -m1 '/debian/*$' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

# ---- cached base root filesystem --------------------------------------------

base_stamp() {
    { cat "$REPO/deploy/install-deps.sh"; echo "$EXTRA_PKGS"; debian_mirror; } |
        sha256sum | cut -c1-16
}

debootstrap_base() {
    [ -x "$BASE/usr/bin/systemctl" ] && return
    step "debootstrap Debian 12 into $BASE (cold cache, about a minute)"
    rm -rf "$BASE.tmp"
    timeout 600 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
        bookworm "$BASE.tmp" "$(debian_mirror)" > "$WORK/debootstrap.log" 2>&1 ||
        { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
    mv "$BASE.tmp" "$BASE"
}

# Packages go in with nspawn in plain (non-boot) mode, sharing the host's
# network for the mirror. policy-rc.d stops maintainer scripts from starting
# nginx there: it would bind the host's port 80.
install_base_packages() {
    local want; want=$(base_stamp)
    [ "$(cat "$BASE/.zk-stamp" 2>/dev/null)" = "$want" ] && return
    step "installing packages into the base root filesystem"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        cp /etc/apt/sources.list.d/debian.sources "$BASE/etc/apt/sources.list.d/"
        : > "$BASE/etc/apt/sources.list"
    fi
    printf '#!/bin/sh\nexit 101\n' > "$BASE/usr/sbin/policy-rc.d"
    chmod 0755 "$BASE/usr/sbin/policy-rc.d"
    install -D -m 0755 "$REPO/deploy/install-deps.sh" "$BASE/root/install-deps.sh"
    timeout 900 systemd-nspawn -q -D "$BASE" --register=no --keep-unit --as-pid2 \
        --resolv-conf=replace-host -E DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get update -q && /root/install-deps.sh --runtime &&
               apt-get install -y -q --no-install-recommends $EXTRA_PKGS &&
               apt-get clean" > "$WORK/packages.log" 2>&1 ||
        { tail -30 "$WORK/packages.log"; die "package install failed"; }
    rm -f "$BASE/usr/sbin/policy-rc.d" "$BASE/root/install-deps.sh"
    echo "$want" > "$BASE/.zk-stamp"
}

# ---- this run's container ---------------------------------------------------

# Both packages, built on the host; the container has no network, and its
# base already holds every package they depend on.
build_packages() {
    step "make deb (host)"
    make -s -C "$REPO" deb 2>&1 | sed 's/^/      | /'
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "make deb failed"
    DEB=$(ls "$REPO"/build/deb/zookeeper_"$VERSION"_*.deb)
    pass "make deb: $(basename "$DEB"), lintian clean"
    step "the next release, $NEXT_VERSION, for the upgrade (host)"
    DEB_BUILD_OPTIONS=nocheck "$REPO/deploy/build-deb.sh" --out "$NEXT_DIR" \
        --version "$NEXT_VERSION" --no-lintian 2>&1 | sed 's/^/      | /'
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "building $NEXT_VERSION failed"
    NEXT_DEB=$(ls "$NEXT_DIR"/zookeeper_"$NEXT_VERSION"_*.deb)
}

prepare_run() {
    step "fresh container tree $RUN"
    rm -rf "$RUN"
    cp -a "$BASE" "$RUN"
    install -d "$RUN$DEB_IN_CT"
    cp "$DEB" "$NEXT_DEB" "$RUN$DEB_IN_CT/"
}

boot() {
    step "booting the container"
    systemd-nspawn -D "$RUN" --boot --console=passive --register=no --keep-unit \
        --private-network --machine=zookeeper-check > "$LOG" 2>&1 &
    NSPAWN_PID=$!
    local i pid
    for i in $(seq 100); do
        for pid in $(pgrep -P "$NSPAWN_PID" || true); do
            # The container's init is nspawn's child whose own-namespace pid is 1.
            if awk '/^NSpid:/ { exit !($NF == 1) }' "/proc/$pid/status" 2>/dev/null; then
                CT_PID=$pid
            fi
        done
        [ -n "$CT_PID" ] && break
        sleep 0.1
    done
    [ -n "$CT_PID" ] || { cat "$LOG"; die "container did not start"; }
    # Its bus is not up the instant init exists: ask again until it answers.
    local state=
    for i in $(seq 90); do
        state=$(timeout 30 nsenter -t "$CT_PID" -a systemctl is-system-running --wait 2>/dev/null || true)
        case $state in running|degraded|maintenance|stopping) break ;; esac
        sleep 1
    done
    if [ "$state" = running ] || [ "$state" = degraded ]; then
        pass "container booted under systemd ($state)"
    else
        fail "container booted under systemd ($state)"
    fi
    [ "$state" = degraded ] && in_ct systemctl --failed --no-legend --plain | sed 's/^/      /'
    return 0
}

poweroff() {
    [ -n "$NSPAWN_PID" ] || return 0
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
        [ -n "$CT_PID" ] && in_ct systemctl poweroff --no-block >/dev/null 2>&1 || true
        local i
        for i in $(seq 300); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
        # nspawn turns SIGTERM into a container shutdown; SIGKILL is the last resort.
        kill -0 "$NSPAWN_PID" 2>/dev/null && kill -TERM "$NSPAWN_PID" && sleep 5
        kill -0 "$NSPAWN_PID" 2>/dev/null && kill -KILL "$NSPAWN_PID"
    fi
    wait "$NSPAWN_PID" 2>/dev/null || true
    NSPAWN_PID=
    printf '\ncontainer powered off (%ds)\n' "$SECONDS"
}

# ---- checks inside ----------------------------------------------------------

# Everything the package owns or creates, hashed: a second `apt install` of
# the same .deb must leave it identical, and the worker running (same pid).
# Contents, modes, owners and link targets count.
install_snapshot() {
    in_ct sh -c 'paths="/etc/zookeeper /etc/nginx /usr/sbin/zookeeper-fcgi /usr/share/zookeeper
            /usr/share/doc/zookeeper /etc/systemd/system /lib/systemd/system/zookeeper.service
            /lib/systemd/system/nginx.service.d /var/lib/dpkg/status"
        { find $paths -xdev -printf "%p %m %u %g %l %T@\n" 2>/dev/null | sort
          find $paths -xdev -type f -exec sha256sum {} + 2>/dev/null | sort; } | sha256sum
        systemctl show -p MainPID --value zookeeper.service'
}

apt_ct() {
    T=300 in_ct env DEBIAN_FRONTEND=noninteractive apt-get -q -y "$@" < /dev/null
}

# Short surveys keep the check fast: the first edit of the conffile, which
# the upgrade must keep.
edit_config() {
    in_ct sed -i -e 's/^\([[:space:]]*min_seconds[[:space:]]*=\).*/\1 0.2/' \
        -e 's/^\([[:space:]]*max_seconds[[:space:]]*=\).*/\1 0.5/' /etc/zookeeper/zookeeper.conf
    in_ct systemctl reload zookeeper.service
}

check_install() {
    step "apt install ./$(basename "$DEB") inside the container"
    if (cd / && in_ct sh -c "cd $DEB_IN_CT && DEBIAN_FRONTEND=noninteractive apt install -y ./$(basename "$DEB")" \
            < /dev/null > "$WORK/install.log" 2>&1); then
        pass "apt install ./$(basename "$DEB")"
        grep -v '^WARNING: apt does not have' "$WORK/install.log" | sed 's/^/      | /' | tail -12
    else
        fail "apt install ./$(basename "$DEB") (log: $WORK/install.log)"
        sed 's/^/      | /' "$WORK/install.log" | tail -25
        return 1  # nothing after this can pass
    fi
    expect "zookeeper.service enabled by the package" in_ct systemctl is-enabled --quiet zookeeper.service
    expect "zookeeper.service started by the package" in_ct systemctl is-active --quiet zookeeper.service
    expect "conffile: /etc/zookeeper/zookeeper.conf" \
        in_ct sh -c 'dpkg-query -W -f="\${Conffiles}" zookeeper | grep -q " /etc/zookeeper/zookeeper.conf "'
    expect "postinst created the TLS certificate and key" \
        in_ct test -s $CERT -a -s /etc/zookeeper/tls/zookeeper.key
    local perms; perms=$(in_ct stat -c '%n %U:%G %a' /etc/zookeeper/tls /etc/zookeeper/tls/zookeeper.key \
        /etc/zookeeper/operators.htpasswd /etc/zookeeper/operator-password 2>&1 | paste -sd ';')
    note "$perms"
    expect "postinst created the operator account (root:www-data 0640) and its password file (0600)" \
        [ "$perms" = "/etc/zookeeper/tls root:root 700;/etc/zookeeper/tls/zookeeper.key root:root 600;/etc/zookeeper/operators.htpasswd root:www-data 640;/etc/zookeeper/operator-password root:root 600" ]
    expect "man pages installed (zookeeper-fcgi.8, zookeeper.conf.5)" \
        in_ct test -s /usr/share/man/man8/zookeeper-fcgi.8.gz -a -s /usr/share/man/man5/zookeeper.conf.5.gz
    edit_config
    local first second
    first=$(install_snapshot)
    if (in_ct sh -c "cd $DEB_IN_CT && DEBIAN_FRONTEND=noninteractive apt install -y ./$(basename "$DEB")" \
            < /dev/null > "$WORK/install2.log" 2>&1); then
        second=$(install_snapshot)
        note "$(grep -E 'newest version|upgraded' "$WORK/install2.log" | paste -sd ' ')"
        expect "second apt install of the same .deb changed nothing (files, dpkg status, worker pid)" \
            [ "$first" = "$second" ]
    else
        fail "second apt install (log: $WORK/install2.log)"
    fi
}

check_units() {
    step "systemctl start zookeeper nginx"
    in_ct systemctl start zookeeper.service nginx.service || true
    expect "zookeeper.service active" in_ct systemctl is-active --quiet zookeeper.service
    expect "nginx.service active" in_ct systemctl is-active --quiet nginx.service
    in_ct systemctl status --no-pager --lines=3 zookeeper.service | sed 's/^/      | /' || true
    local verify
    verify=$(in_ct systemd-analyze verify zookeeper.service 2>&1) && [ -z "$verify" ] &&
        pass "systemd-analyze verify zookeeper.service: clean" ||
        fail "systemd-analyze verify zookeeper.service: $verify"
    local order
    order=$(in_ct systemctl show -p After -p Wants --value nginx.service | tr '\n' ' ')
    expect "nginx.service wants and is ordered after zookeeper.service (drop-in)" \
        [ "$(grep -o 'zookeeper.service' <<<"$order" | wc -l)" -ge 2 ]
    local sock uid
    sock=$(in_ct stat -c '%u:%G %a' /run/zookeeper/zookeeper.sock /run/zookeeper 2>&1 | paste -sd ' ')
    uid=$(in_ct stat -c %u "/proc/$(worker_pid)" 2>/dev/null || echo none)
    note "socket, directory: $sock (worker uid $uid)"
    expect "socket is <worker uid>:www-data 0660 in a 0750 directory" \
        [ "$sock" = "$uid:www-data 660 $uid:www-data 750" ]
}

curl_ct() { in_ct curl -sS --max-time 5 --cacert "$CERT" "$@"; }

check_https() {
    step "HTTPS through nginx"
    local out
    out=$(curl_ct -w ' %{http_code}' https://localhost/animals 2>&1 || true)
    note "GET /animals -> $out"
    expect "curl --cacert $CERT https://localhost/animals answers 200 with a JSON list" \
        grep -qE '^\[.*\] 200$' <<<"$out"
    out=$(in_ct curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' http://localhost/animals || true)
    note "plain HTTP -> $out"
    expect "plain HTTP redirects to HTTPS" grep -qE '^30[18] https://localhost/animals$' <<<"$out"
    out=$(curl_ct -o /dev/null -w '%{http_code} %{content_type}' https://localhost/ 2>&1 || true)
    note "GET / -> $out"
    expect "dashboard page served from the installed web root" grep -q '^200 text/html' <<<"$out"
    check_survey
}

check_survey() {
    local animal id body code i
    animal=$(curl_ct https://localhost/animals 2>&1 | sed -E 's/^\["([^"]+)".*/\1/' || true)
    id=$(curl_ct -X POST "https://localhost/animals/$animal" 2>&1 | tr -d '"' || true)
    note "POST /animals/$animal -> $id"
    code=
    for i in $(seq 100); do
        body=$(curl_ct -w ' %{http_code}' "https://localhost/query/$id" 2>&1 || true)
        code=${body##* }
        [ "$code" = 200 ] && break
        sleep 0.3
    done
    note "GET /query/$id -> $body"
    expect "survey completed (200 with a sentence)" [ "$code" = 200 ]
}

worker_pid() { in_ct systemctl show -p MainPID --value zookeeper.service; }

# The running worker itself, seen from outside its sandbox.
check_sandbox() {
    step "the running worker's sandbox"
    local pid status
    pid=$(worker_pid)
    status=$(in_ct cat "/proc/$pid/status" 2>/dev/null || true)
    if [ "${pid:-0}" = 0 ] || [ -z "$status" ]; then
        fail "no running worker to inspect (MainPID=${pid:-none})"
        return 0
    fi
    note "$(grep -E '^(Name|Uid|Gid|Groups|CapEff|CapBnd|NoNewPrivs|Seccomp):' <<<"$status" | tr '\t' ' ' | paste -sd ';')"
    expect "MainPID is the worker itself (spawn-fcgi -n exec'd it)" \
        grep -qE '^Name:[[:space:]]+zookeeper-fcgi' <<<"$status"
    expect "worker is not root (real, effective, saved, fs uid)" \
        awk '/^Uid:/ { ok = $2 && $3 && $4 && $5 } END { exit !ok }' <<<"$status"
    expect "worker has no capabilities (effective, bounding)" \
        awk '/^Cap(Eff|Bnd):/ { n++; if ($2 != "0000000000000000") bad = 1 }
             END { exit !(n == 2 && !bad) }' <<<"$status"
    expect "worker has no_new_privs and a seccomp filter" \
        awk '/^NoNewPrivs:/ { n = $2 } /^Seccomp:/ { s = $2 } END { exit !(n == 1 && s == 2) }' <<<"$status"
    # Root inside the worker's mount namespace still cannot write /usr:
    # ProtectSystem=strict made it a read-only mount, not just unwritable for a uid.
    local out
    out=$(in_ct nsenter -t "$pid" -m touch /usr/zookeeper-probe 2>&1 || true)
    note "touch /usr in the worker's mount namespace: $out"
    expect "worker cannot write /usr (read-only file system)" grep -q 'Read-only file system' <<<"$out"
    expect "worker has its own network namespace (PrivateNetwork=)" \
        [ "$(in_ct readlink "/proc/$pid/ns/net")" != "$(in_ct readlink /proc/1/ns/net)" ]
    check_probe_unit
}

# seccomp and RestrictAddressFamilies= cannot be entered with nsenter, so a
# live probe runs under the installed unit's own [Service] settings: a copy of
# the unit with only its commands and directories replaced by the probe's.
check_probe_unit() {
    in_ct sh -c 'cp /lib/systemd/system/zookeeper.service /run/systemd/system/zookeeper-probe.service
        mkdir -p /run/systemd/system/zookeeper-probe.service.d
        cat > /run/zookeeper-probe.sh <<"EOF"
echo "uid=$(id -u) gid=$(id -g)"
(exec 3<>/dev/tcp/127.0.0.1/443) 2>&1 | sed "s/^/inet: /"
(exec 3<>/dev/tcp/::1/443) 2>&1 | sed "s/^/inet6: /"
touch /usr/probe 2>&1 | sed "s/^/usr: /"
touch /var/lib/zookeeper/probe && echo "state=writable" && rm /var/lib/zookeeper/probe
EOF
        cat > /run/systemd/system/zookeeper-probe.service.d/probe.conf <<"EOF"
[Service]
Type=oneshot
Restart=no
User=zookeeper
ExecStartPre=
ExecReload=
ExecStart=
ExecStart=/bin/bash /run/zookeeper-probe.sh
RuntimeDirectory=
StateDirectory=zookeeper
StandardOutput=truncate:/run/zookeeper-probe.out
StandardError=inherit
EOF
        systemctl daemon-reload && systemctl start zookeeper-probe.service'
    local out; out=$(in_ct cat /run/zookeeper-probe.out 2>&1 || true)
    sed 's/^/      | /' <<<"$out"
    expect "same sandbox, live: not root" grep -qE '^uid=[1-9][0-9]* ' <<<"$out"
    # "Connection refused" would mean the socket was made: only EAFNOSUPPORT counts.
    expect "same sandbox, live: AF_INET socket refused" \
        grep -qE '^inet: .*Address family not supported' <<<"$out"
    expect "same sandbox, live: AF_INET6 socket refused" \
        grep -qE '^inet6: .*Address family not supported' <<<"$out"
    expect "same sandbox, live: /usr read-only" grep -qE '^usr: .*Read-only file system' <<<"$out"
    expect "same sandbox, live: state directory writable" grep -qx 'state=writable' <<<"$out"
    in_ct sh -c 'rm -rf /run/systemd/system/zookeeper-probe.service*; systemctl daemon-reload'
}

check_lifecycle() {
    step "reload, crash, stop"
    local pid; pid=$(worker_pid)
    in_ct systemctl reload zookeeper.service || true
    sleep 0.5
    local ok=false
    [ "$(worker_pid)" = "$pid" ] && in_ct systemctl is-active --quiet zookeeper.service && ok=true
    expect "systemctl reload zookeeper: same worker, still active" $ok
    expect "systemctl reload nginx" in_ct systemctl reload nginx.service
    # Restart=on-failure: a crashed worker comes back by itself.
    in_ct kill -KILL "$pid"
    local i new=0
    for i in $(seq 50); do
        sleep 0.2
        new=$(worker_pid)
        [ "$new" != 0 ] && [ "$new" != "$pid" ] && in_ct systemctl is-active --quiet zookeeper.service && break
    done
    ok=false
    [ "$new" != 0 ] && [ "$new" != "$pid" ] && ok=true
    expect "killed worker restarted by systemd (pid $pid -> $new)" $ok
    sleep 1.5 # let the new worker get to its accept loop
    local t0 t1 props
    t0=$(date +%s%N)
    in_ct systemctl stop zookeeper.service || true
    t1=$(date +%s%N)
    props=$(in_ct systemctl show -p Result -p ExecMainCode -p ExecMainStatus zookeeper.service | paste -sd ' ')
    note "stop took $(( (t1 - t0) / 1000000 )) ms; $props"
    # Result=success alone would also accept death by SIGTERM; code 1 is
    # CLD_EXITED, i.e. the worker drained and returned 0 by itself.
    ok=false
    grep -qw 'Result=success' <<<"$props" && grep -qw 'ExecMainCode=1' <<<"$props" &&
        grep -qw 'ExecMainStatus=0' <<<"$props" && ok=true
    expect "systemctl stop zookeeper: the worker exited 0 by itself" $ok
    expect "stop within TimeoutStopSec, no SIGKILL" \
        [ $(( (t1 - t0) / 1000000 )) -lt 5000 ]
    expect "runtime directory and socket removed on stop" in_ct test ! -e /run/zookeeper
    local out
    out=$(curl_ct -w ' %{http_code} %{content_type}' https://localhost/animals 2>&1 || true)
    note "worker stopped: GET /animals -> $out"
    expect "nginx answers 502 problem+json while the worker is down" \
        grep -qE ' 502 application/problem\+json' <<<"$out"
}

check_security_score() {
    step "systemd-analyze security zookeeper.service (inside, online)"
    local line
    line=$(in_ct systemd-analyze security zookeeper.service 2>&1 | grep 'Overall exposure' || true)
    note "$line"
    expect "exposure below 1.0" awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) v = $i }
        END { exit !(v != "" && v < 1.0) }' <<<"$line"
}

# A finished survey's answer, to compare after the upgrade.
finished_job() {
    local animal id body code i
    animal=$(curl_ct https://localhost/animals 2>&1 | sed -E 's/^\["([^"]+)".*/\1/' || true)
    id=$(curl_ct -X POST "https://localhost/animals/$animal" 2>&1 | tr -d '"' || true)
    for i in $(seq 100); do
        body=$(curl_ct -w ' %{http_code}' "https://localhost/query/$id" 2>&1 || true)
        code=${body##* }
        [ "$code" = 200 ] && break
        sleep 0.3
    done
    printf '%s\n%s\n' "$id" "$body"
}

check_upgrade() {
    step "upgrade to $NEXT_VERSION (apt install ./$(basename "$NEXT_DEB"))"
    local job id before after pid cert_before
    job=$(finished_job); id=$(head -1 <<<"$job"); before=$(tail -1 <<<"$job")
    note "stored before: /query/$id -> $before"
    pid=$(worker_pid)
    cert_before=$(in_ct sha256sum $CERT /etc/zookeeper/tls/zookeeper.key /etc/zookeeper/operators.htpasswd)
    if in_ct sh -c "cd $DEB_IN_CT && DEBIAN_FRONTEND=noninteractive apt install -y ./$(basename "$NEXT_DEB")" \
            < /dev/null > "$WORK/upgrade.log" 2>&1; then
        pass "apt install ./$(basename "$NEXT_DEB") (no conffile prompt: stdin is /dev/null)"
    else
        fail "upgrade (log: $WORK/upgrade.log)"
        sed 's/^/      | /' "$WORK/upgrade.log" | tail -20
    fi
    grep -E 'Unpacking|Setting up zookeeper|Configuration file' "$WORK/upgrade.log" | sed 's/^/      | /' || true
    expect "dpkg has zookeeper $NEXT_VERSION" \
        [ "$(in_ct dpkg-query -W -f='${Version}' zookeeper)" = "$NEXT_VERSION" ]
    local new_pid ok=false; new_pid=$(worker_pid)
    [ "$new_pid" != "$pid" ] && [ "$new_pid" != 0 ] && in_ct systemctl is-active --quiet zookeeper.service && ok=true
    expect "the worker was restarted by the upgrade (pid $pid -> $new_pid), active" $ok
    expect "zookeeper-fcgi --version says $NEXT_VERSION" \
        grep -qx "zookeeper-fcgi $NEXT_VERSION" <<<"$(in_ct $BIN --version)"
    after=$(curl_ct -w ' %{http_code}' "https://localhost/query/$id" 2>&1 || true)
    note "after the upgrade: /query/$id -> $after"
    ok=false
    [ -n "$id" ] && [ "${before##* }" = 200 ] && [ "$before" = "$after" ] && ok=true
    expect "the job stored before the upgrade answers the same after it (200)" $ok
    expect "the upgrade kept the edited conffile (max_seconds = 0.5)" \
        in_ct grep -qE '^[[:space:]]*max_seconds[[:space:]]*=[[:space:]]*0\.5' /etc/zookeeper/zookeeper.conf
    expect "the upgrade kept the certificate, key and operator accounts" \
        [ "$cert_before" = "$(in_ct sha256sum $CERT /etc/zookeeper/tls/zookeeper.key /etc/zookeeper/operators.htpasswd)" ]
    check_survey
}

check_remove() {
    step "apt remove zookeeper"
    in_ct systemctl start zookeeper.service || true
    expect "worker running before the remove" in_ct systemctl is-active --quiet zookeeper.service
    if apt_ct remove zookeeper > "$WORK/remove.log" 2>&1; then pass "apt remove zookeeper"
    else fail "apt remove zookeeper (log: $WORK/remove.log)"; fi
    expect "apt remove stopped the service (no zookeeper-fcgi process)" \
        in_ct sh -c '! pgrep -x zookeeper-fcgi >/dev/null && ! systemctl is-active --quiet zookeeper.service'
    expect "dpkg status rc (removed, config files kept)" \
        [ "$(in_ct dpkg-query -W -f='${db:Status-Abbrev}' zookeeper | tr -d ' ')" = rc ]
    expect "worker, unit and site link gone" in_ct sh -c '! test -e /usr/sbin/zookeeper-fcgi &&
        ! test -e /lib/systemd/system/zookeeper.service && ! test -e /etc/nginx/sites-enabled/zookeeper'
    expect "apt remove kept the edited /etc/zookeeper/zookeeper.conf and the TLS files" \
        in_ct sh -c 'grep -qE "^max_seconds = 0.5" /etc/zookeeper/zookeeper.conf && test -s '$CERT
    local store; store=$(in_ct sh -c 'readlink /var/lib/zookeeper; ls /var/lib/private/zookeeper' 2>&1 | paste -sd ' ')
    note "/var/lib/zookeeper -> $store"
    expect "apt remove kept the job store in /var/lib/zookeeper" \
        in_ct sh -c 'test -L /var/lib/zookeeper && ls /var/lib/private/zookeeper | grep -q .'
    expect "nginx still valid and active after the remove" \
        in_ct sh -c 'nginx -t -q && systemctl is-active --quiet nginx.service'
}

check_purge() {
    step "apt purge zookeeper"
    if apt_ct purge zookeeper > "$WORK/purge.log" 2>&1; then pass "apt purge zookeeper"
    else fail "apt purge zookeeper (log: $WORK/purge.log)"; fi
    local left
    left=$(in_ct sh -c 'ls -d /etc/zookeeper /var/lib/zookeeper /var/lib/private/zookeeper \
        /etc/nginx/zookeeper /etc/nginx/sites-available/zookeeper /usr/share/zookeeper \
        /usr/share/doc/zookeeper /var/log/nginx/zookeeper.access.log 2>/dev/null' || true)
    expect "apt purge removed config, TLS files, accounts and jobs${left:+ (left: $left)}" [ -z "$left" ]
    expect "dpkg knows no zookeeper any more" \
        in_ct sh -c '! dpkg-query -W -f="\${db:Status-Abbrev}" zookeeper 2>/dev/null | grep -q "^[a-z]"'
    expect "nginx still valid and active after the purge" \
        in_ct sh -c 'nginx -t -q && systemctl is-active --quiet nginx.service'
}

# ---- the worker pool: two instances on PostgreSQL ---------------------------

PG_UNIT=postgresql@15-main.service
POOL_PASSWORD=check-$$-pool
UPSTREAM=/etc/nginx/zookeeper/upstream.conf

# Sets the survey durations in the conffile (edit_config's 0.2/0.5 are put
# back at the end: the remove check expects them).
survey_seconds() {
    in_ct sed -i -e "s/^\([[:space:]]*min_seconds[[:space:]]*=\).*/\1 $1/" \
        -e "s/^\([[:space:]]*max_seconds[[:space:]]*=\).*/\1 $2/" /etc/zookeeper/zookeeper.conf
}

# The database the operator makes (docs/production.md): a role with a
# password (the workers' dynamic user has no fixed OS name for peer auth),
# scram-sha-256 on the unix socket for that role only.
setup_database() {
    local i
    for i in $(seq 60); do
        in_ct runuser -u postgres -- pg_isready -q -h /run/postgresql && break
        sleep 0.5
    done
    expect "PostgreSQL 15 runs in the container ($PG_UNIT)" in_ct systemctl is-active --quiet $PG_UNIT
    in_ct runuser -u postgres -- psql -qX -v ON_ERROR_STOP=1 -h /run/postgresql -d postgres \
        -c "CREATE ROLE zookeeper LOGIN PASSWORD '$POOL_PASSWORD'" \
        -c "CREATE DATABASE zookeeper OWNER zookeeper" >/dev/null || true
    in_ct sh -c 'f=/etc/postgresql/15/main/pg_hba.conf
        grep -q "^local zookeeper zookeeper scram-sha-256" $f ||
            sed -i "1i local zookeeper zookeeper scram-sha-256" $f'
    in_ct systemctl reload $PG_UNIT
    in_ct sh -c "umask 027; printf '%s\n' 'ZOOKEEPER_STORE_URL=\"host=/run/postgresql dbname=zookeeper user=zookeeper password=$POOL_PASSWORD\"' > /etc/zookeeper/store.env; chmod 0640 /etc/zookeeper/store.env"
    note "store.env: $(in_ct stat -c '%U:%G %a' /etc/zookeeper/store.env)"
}

pool_pid() { in_ct systemctl show -p MainPID --value "zookeeper@$1.service"; }

# The "worker" field of /healthz through nginx, once per request.
healthz_workers() {
    local i
    for i in $(seq "$1"); do
        # The body has no final newline: add one, or sed joins the lines.
        { curl_ct https://localhost/healthz 2>/dev/null; echo; } |
            sed -nE 's/.*"backend":"([^"]*)".*"worker":"([^"]*)".*/\1 \2/p; s/.*"worker":"([^"]*)".*"backend":"([^"]*)".*/\2 \1/p'
    done
}

# RFC 3339 -> milliseconds since the epoch.
ms_of() { date -d "$1" +%s%3N 2>/dev/null || echo 0; }

check_pool() {
    step "worker pool: zookeeper@1 and @2 on PostgreSQL 15"
    local t0=$SECONDS
    setup_database
    survey_seconds 2 3
    in_ct systemctl disable --now zookeeper.service >/dev/null 2>&1 || true
    # nginx.service's drop-in Wants= the single worker: masked, it is never
    # pulled in next to the pool (Conflicts= would stop one or the other).
    in_ct systemctl mask zookeeper.service >/dev/null 2>&1 || true
    if in_ct systemctl enable --now zookeeper.target zookeeper@1.service zookeeper@2.service \
            > "$WORK/pool.log" 2>&1; then
        pass "systemctl enable --now zookeeper.target zookeeper@1 zookeeper@2"
    else
        fail "systemctl enable --now zookeeper.target zookeeper@1 zookeeper@2 (log: $WORK/pool.log)"
        in_ct journalctl -u zookeeper@1 -u zookeeper@2 --no-pager -n 20 | sed 's/^/      | /'
    fi
    expect "zookeeper@1 and zookeeper@2 active" \
        in_ct systemctl is-active --quiet zookeeper@1.service zookeeper@2.service
    expect "zookeeper.service inactive (masked)" \
        in_ct sh -c '! systemctl is-active --quiet zookeeper.service'
    local socks
    socks=$(in_ct stat -c '%n %G %a' /run/zookeeper /run/zookeeper/worker-1 /run/zookeeper/worker-1/zookeeper.sock \
        /run/zookeeper/worker-2 /run/zookeeper/worker-2/zookeeper.sock 2>&1 | paste -sd ';')
    note "$socks"
    expect "one runtime directory (www-data 0750) and socket (www-data 0660) per instance" \
        [ "$socks" = "/run/zookeeper root 755;/run/zookeeper/worker-1 www-data 750;/run/zookeeper/worker-1/zookeeper.sock www-data 660;/run/zookeeper/worker-2 www-data 750;/run/zookeeper/worker-2/zookeeper.sock www-data 660" ]
    # ExecStartPost ran zookeeper-upstream; a second, explicit run (as the
    # docs tell an operator) must find nothing to change.
    in_ct zookeeper-upstream --reload 2>&1 | sed 's/^/      | /' || true
    local servers
    servers=$(in_ct sh -c "grep -E '^[[:space:]]*server ' $UPSTREAM" | awk '{print $2}' | paste -sd ' ')
    note "upstream.conf: $servers"
    expect "generated upstream names both instances' sockets" \
        [ "$servers" = "unix:/run/zookeeper/worker-1/zookeeper.sock unix:/run/zookeeper/worker-2/zookeeper.sock" ]
    expect "nginx -t accepts it, nginx active" in_ct sh -c 'nginx -t -q && systemctl is-active --quiet nginx'
    local verify
    verify=$(in_ct systemd-analyze verify zookeeper@1.service zookeeper.target 2>&1) && [ -z "$verify" ] &&
        pass "systemd-analyze verify zookeeper@1.service zookeeper.target: clean" ||
        fail "systemd-analyze verify zookeeper@1.service zookeeper.target: $verify"
    sleep 0.5  # nginx's reload (asked for without waiting)
    local line score
    line=$(in_ct systemd-analyze security zookeeper@1.service 2>&1 | grep 'Overall exposure' || true)
    note "$line"
    score=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) v = $i } END { print v }' <<<"$line")
    expect "zookeeper@1 exposure 0.2 or below (same sandbox as zookeeper.service)" \
        awk -v v="$score" 'BEGIN { exit !(v != "" && v <= 0.2) }'
    local seen
    seen=$(healthz_workers 24 | sort | uniq -c | sed 's/^ *//' | paste -sd ';')
    note "/healthz x24 through nginx: $seen"
    local ok=false
    grep -qE 'postgresql [^ ;]*-1([:;]|$)' <<<"$seen" && grep -qE 'postgresql [^ ;]*-2([:;]|$)' <<<"$seen" && ok=true
    expect "/healthz through nginx answers from both workers (backend postgresql)" $ok
    check_survey

    step "kill -9 of zookeeper@1 while surveys run"
    local animal ids=() id i pid1 new1
    animal=$(curl_ct https://localhost/animals 2>&1 | sed -E 's/^\["([^"]+)".*/\1/' || true)
    for i in $(seq 12); do
        id=$(curl_ct -X POST "https://localhost/animals/$animal" 2>/dev/null | tr -d '"' || true)
        [[ $id =~ ^[0-9a-f-]{36}$ ]] && ids+=("$id")
    done
    pid1=$(pool_pid 1)
    local mine
    mine=$(in_ct journalctl -u zookeeper@1.service -o cat --no-pager | grep -oE 'job=[0-9a-f-]{36}' | sort -u)
    local held=0
    for id in "${ids[@]}"; do grep -q "job=$id" <<<"$mine" && held=$((held + 1)); done
    note "${#ids[@]} of 12 surveys of 2-3 s created, $held of them by worker 1 (pid $pid1)"
    expect "12 surveys created through nginx" [ ${#ids[@]} -eq 12 ]
    expect "worker 1 holds some of the running surveys" [ "$held" -gt 0 ]
    in_ct systemctl kill -s KILL zookeeper@1.service
    local killed_at; killed_at=$(date +%s%3N)
    local pending=("${ids[@]}") body codes='' late max_late=0 left round
    for round in $(seq 60); do
        left=()
        for id in "${pending[@]}"; do
            body=$(curl_ct -w ' %{http_code}' "https://localhost/jobs/$id" 2>/dev/null || echo " 000")
            codes+=" ${body##* }"
            if grep -q '"state":"done"' <<<"$body"; then
                late=$(( $(ms_of "$(sed -nE 's/.*"finished":"([^"]+)".*/\1/p' <<<"$body")") -
                         $(ms_of "$(sed -nE 's/.*"deadline":"([^"]+)".*/\1/p' <<<"$body")") ))
                [ "$late" -gt "$max_late" ] && max_late=$late
            else
                left+=("$id")
            fi
        done
        pending=("${left[@]}")
        [ ${#pending[@]} -eq 0 ] && break
        sleep 0.25
    done
    local bad; bad=$(tr ' ' '\n' <<<"$codes" | grep -cE '^(5..|000)$' || true)
    note "all done $(( $(date +%s%3N) - killed_at )) ms after the kill; latest finish $max_late ms past its deadline; $bad 5xx of $(wc -w <<<"$codes") polls"
    expect "every survey completed after kill -9 of worker 1 (${#pending[@]} left)" [ ${#pending[@]} -eq 0 ]
    expect "none later than rescue_after_ms + sweep_interval_ms (2500 ms) + 1000 ms margin past its deadline ($max_late ms)" \
        [ "$max_late" -le 3500 ]
    expect "polls through nginx saw no 5xx while worker 1 was down" [ "$bad" -eq 0 ]
    new1=0
    for i in $(seq 50); do
        new1=$(pool_pid 1)
        [ "$new1" != 0 ] && [ "$new1" != "$pid1" ] && in_ct systemctl is-active --quiet zookeeper@1.service && break
        sleep 0.2
    done
    expect "systemd restarted zookeeper@1 (pid $pid1 -> $new1)" \
        sh -c "[ '$new1' != 0 ] && [ '$new1' != '$pid1' ]"
    sleep 0.5
    servers=$(in_ct sh -c "grep -E '^[[:space:]]*server ' $UPSTREAM" | awk '{print $2}' | paste -sd ' ')
    expect "upstream names both sockets again after the restart" \
        [ "$servers" = "unix:/run/zookeeper/worker-1/zookeeper.sock unix:/run/zookeeper/worker-2/zookeeper.sock" ]
    check_survey
    check_pool_db_down_restart "$animal"

    step "back to the single worker"
    in_ct systemctl disable --now zookeeper.target zookeeper@1.service zookeeper@2.service >/dev/null 2>&1 || true
    expect "systemctl stop zookeeper.target stopped both instances" \
        in_ct sh -c '! systemctl is-active --quiet zookeeper@1.service && ! systemctl is-active --quiet zookeeper@2.service'
    expect "with no instance running, the upstream is the template (the single worker's socket)" \
        in_ct cmp -s $UPSTREAM /usr/share/zookeeper/upstream.conf
    survey_seconds 0.2 0.5
    in_ct systemctl unmask zookeeper.service >/dev/null 2>&1 || true
    in_ct systemctl enable --now zookeeper.service >/dev/null 2>&1 || true
    expect "zookeeper.service (SQLite) active again" in_ct systemctl is-active --quiet zookeeper.service
    note "pool checks took $((SECONDS - t0)) s"
}

# An instance restarted while its database is down must not stay down:
# systemd does not restart an exit 2 (RestartPreventExitStatus=2), so the
# worker starts degraded (503) and connects once PostgreSQL is back.
check_pool_db_down_restart() {
    local animal=$1 i pid1 codes='' back=false
    step "zookeeper@1 restarted while PostgreSQL is stopped"
    in_ct systemctl stop $PG_UNIT
    in_ct systemctl restart zookeeper@1.service || true
    sleep 2
    pid1=$(pool_pid 1)
    expect "zookeeper@1 active with the database down (pid $pid1)" in_ct systemctl is-active --quiet zookeeper@1.service
    for i in $(seq 4); do
        codes+=" $(curl_ct -o /dev/null -w '%{http_code}' -X POST "https://localhost/animals/$animal" 2>/dev/null || echo 000)"
    done
    note "creations through nginx with the database down:$codes"
    local bad; bad=$(tr ' ' '\n' <<<"$codes" | grep -cvE '^(503|)$' || true)
    expect "creations answer 503 meanwhile, never 502" [ "$bad" -eq 0 ]
    in_ct systemctl start $PG_UNIT
    local t0=$SECONDS body
    for i in $(seq 120); do
        # nginx takes turns: wait for worker 1's own "ok".
        body=$(curl_ct https://localhost/healthz 2>/dev/null || true)
        grep -q '"status":"ok"' <<<"$body" && grep -qE '"worker":"[^"]*-1"' <<<"$body" && { back=true; break; }
        sleep 0.25
    done
    note "zookeeper@1 healthy $((SECONDS - t0)) s after PostgreSQL started"
    expect "zookeeper@1 recovered by itself once PostgreSQL was back" $back
    expect "without another restart (pid $pid1 -> $(pool_pid 1))" [ "$(pool_pid 1)" = "$pid1" ]
    expect "its journal says store_unavailable, then store_available" in_ct sh -c \
        "journalctl -u zookeeper@1.service -o cat --no-pager | grep -E 'event=store_(un)?available' | tail -2 | paste -sd ' ' | grep -q 'store_unavailable.*store_available'"
    check_survey
}

# On the host, fast: install into a DESTDIR and uninstall leaves no file behind.
check_destdir_roundtrip() {
    step "make install/uninstall DESTDIR round trip (host)"
    local dest=$WORK/destdir left
    rm -rf "$dest"
    make -s -C "$REPO" install DESTDIR="$dest" > "$WORK/destdir.log" 2>&1 ||
        { fail "make install DESTDIR="; tail "$WORK/destdir.log"; return; }
    note "installed: $(cd "$dest" && find . \( -type f -o -type l \) | sort | paste -sd ' ')"
    make -s -C "$REPO" uninstall DESTDIR="$dest" >> "$WORK/destdir.log" 2>&1 || true
    left=$(cd "$dest" && find . \( -type f -o -type l \) | paste -sd ' ')
    expect "make uninstall DESTDIR= leaves no file${left:+ (left: $left)}" [ -z "$left" ]
    rm -rf "$dest"
}

# ---- main -------------------------------------------------------------------

finish() {
    local rc=$?
    poweroff
    printf '\nsystemd-check: %d passed, %d failed (%ds)\n' "$PASSED" "$FAILED" "$SECONDS"
    [ "$rc" -eq 0 ] && [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ] || exit 1
}

main() {
    mkdir -p "$WORK"
    # One run per cache: a second would copy over the first one's container.
    exec 9> "$WORK/lock"
    flock -n 9 || die "another systemd-check is running in $WORK"
    trap finish EXIT
    trap 'exit 1' INT TERM
    host_prerequisites
    build_packages
    make -s -C "$REPO" -j2 all
    step "systemd-analyze security --offline=true systemd/zookeeper.service (host)"
    note "$(systemd-analyze security --offline=true "$REPO/systemd/zookeeper.service" | tail -1)"
    note "$(systemd-analyze security --offline=true "$REPO/systemd/zookeeper@.service" | tail -1)"
    check_destdir_roundtrip
    debootstrap_base
    install_base_packages
    prepare_run
    boot
    # A check that trips over an unexpected error counts as one failure and
    # the rest still run (errexit does not apply inside a `||` list).
    local c
    check_install || return 0
    for c in check_units check_https check_sandbox check_security_score \
             check_upgrade check_lifecycle check_pool check_remove check_purge; do
        "$c" || fail "$c stopped on an unexpected error"
    done
}

# Bounded as a whole, even if a step hangs past its own timeout: timeout(1)
# sends SIGTERM to this script's process group (nspawn turns it into a
# container shutdown, the trap powers off), then SIGKILL a minute later.
if [ -z "${ZK_SYSTEMD_CHECK_BOUNDED:-}" ]; then
    ZK_SYSTEMD_CHECK_BOUNDED=1 exec timeout -k 60 "$MAX_SECONDS" "$0" "$@"
fi
main "$@"
