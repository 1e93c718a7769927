#!/usr/bin/env bash
# Profiles the worker under load (perf across every process, then callgrind
# on the worker alone) and writes BUILD/bench/profile/profile.md.
# usage: bench/profile.sh [--bin build/zookeeper-fcgi] [--build build]
# Environment: DURATION [5] seconds per perf run, REQUESTS [2000] per
# callgrind measurement, SKIP_PERF / SKIP_CALLGRIND (non-empty skips).
# Needs perf (linux-perf), valgrind and root, like bench/run.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
bin=$REPO/build/zookeeper-fcgi
build=$REPO/build
while (($#)); do
    case $1 in
        --bin) bin=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        *) echo "usage: $0 [--bin BIN] [--build DIR]" >&2; exit 2 ;;
    esac
done
for tool in perf valgrind callgrind_control callgrind_annotate wrk; do
    command -v "$tool" >/dev/null || { echo "profile: $tool is not installed" >&2; exit 2; }
done
mkdir -p "$build/bench"
flood=$build/bench/fcgi-flood
if [[ ! -x $flood || $HERE/fcgi_flood.cpp -nt $flood ]]; then
    "${CXX:-g++}" -std=c++20 -O2 -Wall -Wextra -Werror -o "$flood" "$HERE/fcgi_flood.cpp"
fi
args=(--bin "$bin" --build "$build" --flood "$flood"
      --duration "${DURATION:-5}" --requests "${REQUESTS:-2000}")
[[ -z ${SKIP_PERF:-} ]] || args+=(--skip-perf)
[[ -z ${SKIP_CALLGRIND:-} ]] || args+=(--skip-callgrind)
exec python3 "$HERE/profile.py" "${args[@]}"
