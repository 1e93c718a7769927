#!/usr/bin/env bash
# zookeeper benchmark (`make bench`): the real stack (nginx over HTTPS ->
# spawn-fcgi -> worker, store on) on loopback, every figure next to nginx's own
# ceiling measured in the same run, then a million surveys in flight.
# Writes BUILD/bench/results.md (and results.json) and prints the table.
#
# Parameters, from the environment (defaults in brackets):
#   DURATION [10]  seconds per measured wrk run     WARMUP  [3]   seconds of warm-up
#   REPEATS  [3]   runs per figure (median)         THREADS [2]   wrk threads
#   CONNECTIONS [32,256]                            ONLY    []    scenarios whose name contains it
#   CAPACITY [1000000] surveys in flight (0 skips)  CAPACITY_WINDOW [20] seconds they complete over
#   CAPACITY_CONNECTIONS [48]                       LOG_LEVEL [info] the worker's log level
#   SKIP_THROUGHPUT [] non-empty: capacity only
#   STORE [sqlite] the throughput stack's backend   WORKERS [1] its workers (postgresql: a throwaway
#              cluster in the stack's folder, durable settings; CPU per request then counts the database)
#   HA []      1: STORE=postgresql under Patroni, a primary and a synchronous standby (deploy/ha-cluster.sh):
#              every commit also waits for the standby; CPU per request counts both nodes
#   WAITS [10000]  waiting-poll scenarios and this many waiters (0 skips)
#   SERVICE [] the worker's [service] settings in the throughput runs, as
#              "key=value ..." (e.g. "acceptor_threads=4 awake_acceptors=4")
#   LATENCY_LOAD [0.5] fixed-load latency runs (bench/paced.lua) at this share
#                      of a GET scenario's throughput, 32 connections; 0 skips
#   HOPS [fcgi]    the second ceiling, the FastCGI hop with a free worker
#                  (bench/fcgi_hop.py): "fcgi" (libfcgi's C API), "fcgi++"
#                  (fcgio.h streams), "fcgi-min" (only the 5 params the worker
#                  reads), each optionally NAME@THREADS; comma-separated; "" skips
#   HOP_LOOP [epoll] fcgi-ceiling's loop: epoll or accept
#                  (libfcgi's own, a thread per kept connection); fcgi_ceiling.cpp
#   HOP_THREADS [] its threads (default: 1 in the epoll loop, 2 x connections
#                  + 16 in the accept loop)
# A smoke run:  DURATION=2 WARMUP=1 REPEATS=1 CAPACITY=20000 bench/run.sh
#
# usage: bench/run.sh [--bin build/zookeeper-fcgi] [--build build]
# Needs wrk, nginx, spawn-fcgi (deploy/install-deps.sh); runs as root or not,
# like `make run` (as root, nginx and the worker drop to www-data).
# Full run: about 24 min, 4 of them for the capacity part (each extra hop in
# HOPS adds a third of the throughput part).
# Exit 1 if a scenario saw errors or error answers.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

bin=$REPO/build/zookeeper-fcgi
build=$REPO/build
while (($#)); do
    case $1 in
        --bin) bin=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "usage: $0 [--bin BIN] [--build DIR]" >&2; exit 2 ;;
    esac
done

for tool in wrk nginx spawn-fcgi python3 "${CXX:-g++}"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 2; }
done
[[ -x $bin ]] || { echo "bench: no worker binary at $bin (run make first)" >&2; exit 2; }

# fcgi-flood loads the capacity part; fcgi-ceiling is the FastCGI hop's responder.
# shellcheck source=bench/tools.sh
source "$HERE/tools.sh"
build_tools "$build"

args=(--bin "$bin" --build "$build" --flood "$flood"
      --duration "${DURATION:-10}" --warmup "${WARMUP:-3}" --repeats "${REPEATS:-3}"
      --threads "${THREADS:-2}" --connections "${CONNECTIONS:-32,256}"
      --capacity "${CAPACITY:-1000000}" --capacity-window "${CAPACITY_WINDOW:-20}"
      --capacity-connections "${CAPACITY_CONNECTIONS:-48}" --log-level "${LOG_LEVEL:-info}"
      --latency-load "${LATENCY_LOAD:-0.5}" --service "${SERVICE:-}"
      --store "${STORE:-sqlite}" --workers "${WORKERS:-1}"
      --ceiling-bin "$ceiling" --hops "${HOPS-fcgi}" --hop-loop "${HOP_LOOP:-epoll}"
      --hop-threads "${HOP_THREADS:-0}")
[[ -z ${ONLY:-} ]] || args+=(--only "$ONLY")
[[ -z ${SKIP_THROUGHPUT:-} ]] || args+=(--skip-throughput)
[[ -z ${HA:-} || ${HA:-} == 0 ]] || args+=(--ha)
# Waiting polls against polling, and 10,000 waiters (bench/waits.py);
# WAITS [10000] waiters in the capacity figure, 0 skips it all.
if [[ ${WAITS:-10000} != 0 ]]; then
    python3 "$HERE/waits.py" --bin "$bin" --build "$build" --waiters "${WAITS:-10000}"
fi
exec python3 "$HERE/bench.py" "${args[@]}"
