#!/usr/bin/env bash
# zookeeper: install the Debian packages that building, testing and running the service need, and only the missing ones.
# When everything is present it only asks dpkg: no network, no root, well under a second.
set -euo pipefail

# The one list. Append here what a new part of the project needs.
PACKAGES=(
    build-essential
    g++
    make
    libfcgi-dev
    libfcgi-bin
    spawn-fcgi
    nginx
    rapidjson-dev
    uuid-dev
    doctest-dev
    libsqlite3-dev
    sqlite3
    python3
    openssl
    curl
    iproute2
    procps
    # The dashboard test (tests/ui/run.sh) drives Debian's Chromium.
    chromium
    chromium-driver
    # The fuzz targets (tests/fuzz/run.sh): clang with libFuzzer.
    clang
    libclang-rt-14-dev
)

missing=()
# The UI test installs playwright-core with npm. Node may come from another
# source than Debian (its npm then comes bundled): ask apt only when absent.
command -v npm >/dev/null || PACKAGES+=(nodejs npm)

for pkg in "${PACKAGES[@]}"; do
    # "ii" = wanted and installed; anything else (absent, removed with its
    # config left, half-configured) needs apt.
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) || status=''
    [[ $status == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
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
