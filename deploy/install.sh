#!/usr/bin/env bash
# deploy/install.sh: production install on a Debian 12 host booted with systemd.
# Installs packages, builds, `make install`s, creates a first TLS certificate and
# the operator password if absent, enables and starts zookeeper + nginx. Idempotent.
#
# Run as root from the repository: `deploy/install.sh`. PREFIX, SYSCONFDIR and
# the other Makefile variables may be set in the environment.
# Exactly the commands of the README's production section; `make systemd-check`
# runs this script (twice) inside a booted Debian 12 container.
set -euo pipefail

cd "$(dirname "$0")/.."

SYSCONFDIR=${SYSCONFDIR:-/etc}
CONFDIR=$SYSCONFDIR/zookeeper
TLS_DIR=$CONFDIR/tls
HTPASSWD=$CONFDIR/operators.htpasswd
PASSWORD_FILE=$CONFDIR/operator-password
NGINX_DEFAULT_SITE=/etc/nginx/sites-enabled/default

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
# enable/start need a running systemd; fail before changing anything.
[ -d /run/systemd/system ] ||
    die "systemd is not PID 1 here; for a throw-away proof run 'make systemd-check'"

# Hash of everything `make install` writes, to restart the worker only when
# something it runs actually changed (a second run must change nothing).
# Missing files (the first install) simply hash as absent.
installed_hash() {
    { cat "${BINDIR:-${PREFIX:-/usr/local}/bin}/zookeeper-fcgi" \
          "${UNITDIR:-/lib/systemd/system}/zookeeper.service" \
          "$CONFDIR/zookeeper.conf" 2>/dev/null || true; } | sha256sum
}

install_software() {
    deploy/install-deps.sh --runtime
    make
    local before; before=$(installed_hash)
    make install
    systemctl daemon-reload
    [ "$before" = "$(installed_hash)" ] || WORKER_CHANGED=1
}

# A self-signed certificate gets a first start going; the key never leaves
# root (nginx's master process reads it as root before dropping to www-data).
make_certificate() {
    install -d -m 0700 "$TLS_DIR"
    if [ -s "$TLS_DIR/zookeeper.crt" ] && [ -s "$TLS_DIR/zookeeper.key" ]; then
        say "keeping TLS certificate $TLS_DIR/zookeeper.crt"
        return
    fi
    local host; host=$(hostname -f 2>/dev/null || hostname)
    ( umask 077
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
          -nodes -days 825 -subj "/CN=$host" \
          -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1,IP:::1" \
          -keyout "$TLS_DIR/zookeeper.key" -out "$TLS_DIR/zookeeper.crt" 2>/dev/null )
    chmod 0644 "$TLS_DIR/zookeeper.crt"
    say "created a self-signed certificate for $host"
    say "  to use a real one, replace $TLS_DIR/zookeeper.crt (full chain, PEM)"
    say "  and $TLS_DIR/zookeeper.key (PEM), then: systemctl reload nginx"
}

# Operators reach /jobs, /metrics and /healthz from other hosts with HTTP
# Basic auth. SHA-512 crypt ($6$) rather than apr1 (MD5): nginx checks it
# through glibc's crypt(). nginx's workers read the file, hence www-data.
make_htpasswd() {
    if [ -s "$HTPASSWD" ]; then
        say "keeping operator accounts in $HTPASSWD"
        return
    fi
    local password; password=$(openssl rand -base64 18)
    ( umask 077; printf '%s\n' "$password" > "$PASSWORD_FILE" )
    ( umask 027
      printf 'operator:%s\n' "$(openssl passwd -6 -stdin <<<"$password")" > "$HTPASSWD" )
    chgrp www-data "$HTPASSWD"
    say "created operator account 'operator'; its password is in $PASSWORD_FILE"
    say "  (root only; note it and delete the file). More accounts:"
    say "  printf 'name:%s\\n' \"\$(openssl passwd -6)\" >> $HTPASSWD"
}

# Debian's default site claims `listen 80 default_server`, which would answer
# plain-HTTP requests for this host instead of our redirect to HTTPS.
disable_default_site() {
    if [ -L "$NGINX_DEFAULT_SITE" ]; then
        rm "$NGINX_DEFAULT_SITE"
        say "disabled nginx's default site (restore: ln -s ../sites-available/default $NGINX_DEFAULT_SITE)"
    fi
}

start_services() {
    nginx -t -q
    systemctl enable --quiet zookeeper.service nginx.service
    if [ -n "${WORKER_CHANGED:-}" ] && systemctl is-active --quiet zookeeper.service; then
        systemctl restart zookeeper.service
    fi
    systemctl start zookeeper.service nginx.service
    systemctl reload nginx.service
    systemctl is-active zookeeper.service nginx.service
}

WORKER_CHANGED=
install_software
make_certificate
make_htpasswd
disable_default_site
start_services
say "done: curl --cacert $TLS_DIR/zookeeper.crt https://localhost/animals"
