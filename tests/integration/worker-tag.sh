#!/usr/bin/env bash
# Test-only wrapper for zookeeper-fcgi under run-stack.sh with several workers: execs the real worker in place (same
# pid, so pid files and /proc/PID/exe stay the worker's) with its stderr piped through a filter that appends
# " worker=<its --worker-name>" to every line. The workers of one stack share one log and their logfmt lines do not
# name the worker; the fault tests count log lines per worker (tests/integration/cluster.py, log_events).
#
# Environment: ZK_TAG_REAL_BIN (the worker).
set -euo pipefail

real=${ZK_TAG_REAL_BIN:?ZK_TAG_REAL_BIN must name the real worker}
name=unnamed
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    [[ ${args[i]} != --worker-name ]] || name=${args[i + 1]}
done
[[ $name =~ ^[A-Za-z0-9._:-]+$ ]] || name=unnamed
# sed -u: one write per line, so the lines of several workers do not mix in the shared log (opened O_APPEND). The
# filter is the worker's child; it ends at the worker's exit (end of its stderr).
exec "$real" "$@" 2> >(exec sed -u "s/\$/ worker=$name/" >&2)
