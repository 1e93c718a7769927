#!/usr/bin/env bash
# Test-only stand-in for zookeeper-fcgi under run-stack.sh: runs the real worker, records how and when it exited,
# then lives on with the FastCGI socket closed, so run-stack.sh keeps nginx up and tests see what nginx answers.
#
# Environment: ZK_SHIM_REAL_BIN (the worker), ZK_SHIM_DIR (writable by the
# worker's user): worker.pid while it runs, worker.exit "<status> <unix time>".
# Several workers (run-stack.sh --workers N names each --worker-name worker-N)
# record as worker-N.pid and worker-N.exit instead.
set -euo pipefail

real=${ZK_SHIM_REAL_BIN:?ZK_SHIM_REAL_BIN must name the real worker}
out=${ZK_SHIM_DIR:?ZK_SHIM_DIR must name a writable directory}
name=worker
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    [[ ${args[i]} != --worker-name ]] || name=${args[i + 1]}
done

# run-stack.sh checks the config with the worker's binary before it starts
# anything: no worker's life to record, so the real worker answers it.
[[ ${1-} != --check-config ]] || exec "$real" "$@"

# A background job's stdin would be /dev/null; the worker needs fd 0, the
# listening socket spawn-fcgi handed over.
"$real" "$@" <&0 &
child=$!
echo "$child" >"$out/$name.pid"

# run-stack.sh stops "the worker" (this shim) with SIGTERM: pass it on, and
# leave with the worker instead of lingering.
stopping=''
trap 'stopping=1; kill -TERM "$child" 2>/dev/null || true' TERM INT

status=0
while :; do
    wait "$child" && status=0 || status=$?
    # wait also returns (>128) when the trap ran; the child may still live.
    kill -0 "$child" 2>/dev/null || break
done
printf '%s %s\n' "$status" "$(date +%s.%N)" >"$out/$name.exit.tmp"
mv "$out/$name.exit.tmp" "$out/$name.exit"
[[ -z $stopping ]] || exit "$status"

# Close the last copy of the listening socket: nginx now gets ECONNREFUSED
# (502) instead of a connection that nobody accepts (504 after a timeout).
exec 0<&-
trap - TERM INT
exec sleep 3600
