#!/usr/bin/env bash
# Profiles the worker under load (perf across every process, system calls
# per request, then callgrind on the worker alone, and on the FastCGI hop's
# responder through libfcgi's C API and through fcgi++) and writes
# BUILD/bench/profile/profile.md.
# usage: bench/profile.sh [--bin build/zookeeper-fcgi] [--build build]
# Environment: DURATION [5] seconds per perf run, REQUESTS [2000] per
# callgrind measurement, SKIP_PERF / SKIP_STRACE / SKIP_CALLGRIND (non-empty
# skips), FEW_PARAMS (non-empty: callgrind's requests carry the 6 params the
# worker reads or logs instead of the 22 nginx sends). strace's counts and
# callgrind's instructions are exact on a busy machine; perf's samples are not.
# Needs perf (linux-perf), strace, valgrind and root, like bench/run.sh.
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
for tool in perf strace valgrind callgrind_control callgrind_annotate wrk; do
    command -v "$tool" >/dev/null || { echo "profile: $tool is not installed" >&2; exit 2; }
done
# shellcheck source=bench/tools.sh
source "$HERE/tools.sh"
build_tools "$build"
args=(--bin "$bin" --build "$build" --flood "$flood" --ceiling-bin "$ceiling"
      --duration "${DURATION:-5}" --requests "${REQUESTS:-2000}" --hop-loop "${HOP_LOOP:-epoll}")
[[ -z ${SKIP_PERF:-} ]] || args+=(--skip-perf)
[[ -z ${SKIP_STRACE:-} ]] || args+=(--skip-strace)
[[ -z ${SKIP_CALLGRIND:-} ]] || args+=(--skip-callgrind)
[[ -z ${FEW_PARAMS:-} ]] || args+=(--few-params)
exec python3 "$HERE/profile.py" "${args[@]}"
