#!/usr/bin/env bash
# zookeeper: install the Debian packages that building, testing and running the service need, and only the missing ones.
# When everything is present it only asks dpkg: no network, no root, well under a second.
#
# usage: deploy/install-deps.sh [--runtime | --bench | --deb] [--tools DIR]
#   (none)       building, running and every test (make run, make check)
#   --runtime    building and running only: what a production host needs
#                (deploy/install.sh); no browsers, compilers for fuzzing or test tools
#   --bench      everything, and what `make bench` needs (wrk, perf, valgrind)
#   --deb        building the Debian package (`make deb`): the build
#                dependencies of debian/control plus debhelper, devscripts
#                (dch) and lintian; no browsers or test tools
#   --tools DIR  where promtool goes (default build/tools): the metrics test
#                checks the worker's /metrics with it
set -euo pipefail

mode=test
tools=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/tools
while (($#)); do
    case $1 in
        --runtime) mode=runtime; shift ;;
        --bench) mode=bench; shift ;;
        --deb) mode=deb; shift ;;
        --tools) tools=$2; shift 2 ;;
        *) echo "usage: $0 [--runtime | --bench | --deb] [--tools DIR]" >&2; exit 2 ;;
    esac
done

# The lists. Append here what a new part of the project needs.
PACKAGES=(
    build-essential
    g++
    make
    libfcgi-dev
    spawn-fcgi
    nginx
    rapidjson-dev
    uuid-dev
    libsqlite3-dev
    libpq-dev       # the PostgreSQL store's client library
    sqlite3         # the store's salvage recipe (README)
    openssl         # certificates, operator passwords
    curl
)
TEST_PACKAGES=(
    postgresql-15   # make run STORE=postgresql and the tests' throwaway clusters (deploy/pg-cluster.sh)
    # make run HA=1 and the failover tests: a throwaway Patroni cluster (deploy/ha-cluster.sh). Installing
    # them starts no service of theirs here: their init scripts are refused by policy-rc.d (exit 101, as in
    # containers) and, without one, by invoke-rc.d when there is no init; dh_installsystemd only starts
    # etcd.service when PID 1 is systemd (a developer's host: Debian's etcd then listens on 127.0.0.1:2379,
    # which ha-cluster.sh never uses; `systemctl disable --now etcd` if unwanted). patroni.service needs
    # /etc/patroni/config.yml, which nothing here writes.
    patroni
    etcd-server
    libfcgi-bin
    doctest-dev
    python3
    iproute2
    procps
    # The dashboard test (tests/ui/run.sh) drives Debian's Chromium.
    chromium
    chromium-driver
    # The fuzz targets (tests/fuzz/run.sh): clang with libFuzzer.
    clang
    libclang-rt-14-dev
)
# `make deb` (debian/control's Build-Depends are in the lists above, and
# doctest-dev for the unit tests dh_auto_test runs).
DEB_PACKAGES=(
    debhelper
    dpkg-dev
    devscripts      # dch: the upgrade test of make systemd-check bumps the version
    lintian
    doctest-dev
)
case $mode in
    runtime) ;;
    deb) PACKAGES+=("${DEB_PACKAGES[@]}") ;;
    *) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
esac

# `make bench` and `make bench-profile`.
[[ $mode != bench ]] || PACKAGES+=(wrk linux-perf valgrind)

# promtool comes only in Debian's prometheus package, whose installation would
# also start a Prometheus server on this machine: unpack the one binary instead.
install_promtool() {
    command -v promtool >/dev/null && return 0
    [[ -x $tools/promtool ]] && return 0
    local tmp
    tmp=$(mktemp -d)
    chmod 0755 "$tmp"
    ((EUID != 0)) || chown _apt "$tmp" 2>/dev/null || true  # apt downloads as _apt
    trap 'rm -rf "$tmp"' RETURN
    (cd "$tmp" && apt-get download -q prometheus >/dev/null) || {
        echo "install-deps: could not download Debian's prometheus package for promtool" >&2
        return 1
    }
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
    mkdir -p "$tools"
    install -m 0755 "$tmp/root/usr/bin/promtool" "$tools/promtool"
    echo "install-deps: promtool unpacked into $tools"
}

missing=()
# The UI test installs playwright-core with npm. Node may come from another
# source than Debian (its npm then comes bundled): ask apt only when absent.
[[ $mode == runtime || $mode == deb ]] || command -v npm >/dev/null || PACKAGES+=(nodejs npm)

# One dpkg-query for the whole list (one per package cost seconds on a busy
# machine, before `make run` could even check its config). "ii" = wanted
# and installed; anything else (absent, removed with its config left,
# half-configured) needs apt. Packages dpkg has never heard of print nothing.
declare -A installed=()
while read -r pkg status; do
    [[ $status == ii* ]] && installed[$pkg]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for pkg in "${PACKAGES[@]}"; do
    [[ -n ${installed[$pkg]:-} ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    [[ $mode == runtime || $mode == deb ]] || install_promtool
    exit 0
fi

if ((EUID != 0)); then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: as root run: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
[[ $mode == runtime || $mode == deb ]] || install_promtool
