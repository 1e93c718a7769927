#!/usr/bin/env bash
# deploy/install.sh: production install on a Debian 12 host booted with
# systemd, from a checkout. A thin wrapper around the Debian package: builds
# it (`make deb`, which installs the build dependencies first) and installs it
# with apt, whose maintainer scripts do the rest (first TLS certificate and
# operator account if absent, nginx site, enable + start zookeeper.service).
# Running it again changes nothing: apt finds the same version installed.
#
# Run as root from the repository: `deploy/install.sh`. docs/production.md
# describes the package; `make systemd-check` proves it in a container.
set -euo pipefail

cd "$(dirname "$0")/.."

die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -d /run/systemd/system ] ||
    die "systemd is not PID 1 here; for a throw-away proof run 'make systemd-check'"

make deb
deb=./build/deb/zookeeper_$(cat VERSION)_$(dpkg --print-architecture).deb
DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb"
systemctl is-active zookeeper.service nginx.service
printf 'install: done: curl --cacert /etc/zookeeper/tls/zookeeper.crt https://localhost/animals\n'
