#!/usr/bin/env bash
# zookeeper: before make check, as root: the service users the tests run as (www-data for nginx and the
# worker, postgres for the throwaway clusters) must reach build/. A checkout under a private folder
# (mktemp -d makes one 0700) fails every stack otherwise; say so once, with the fix, instead.
set -euo pipefail
((EUID == 0)) || exit 0
build=$(realpath -m "${1:?usage: $0 BUILD_DIR}")
mkdir -p "$build"
for user in www-data postgres; do
    id -u "$user" >/dev/null 2>&1 || continue
    runuser -u "$user" -- test -x "$build" && continue
    # The first folder on the way down that the user cannot enter.
    dir='' blocked=/
    IFS=/ read -ra parts <<<"${build#/}"
    for part in "${parts[@]}"; do
        dir+=/$part
        runuser -u "$user" -- test -x "$dir" || { blocked=$dir; break; }
    done
    echo "make check: $user cannot reach $build: $blocked is not searchable by other users" \
         "($(stat -c %A "$blocked")); chmod o+x it, or clone into a folder others can enter" >&2
    exit 2
done
