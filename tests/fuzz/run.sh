#!/usr/bin/env bash
# zookeeper: build the libFuzzer targets with clang (ASan + UBSan) and run each for a bounded time.
#
# usage: tests/fuzz/run.sh [SECONDS] [RESULTS_FILE]
#   SECONDS       fuzzing time per target (default 60)
#   RESULTS_FILE  gets one line "<passed> <failed>" (for make check's summary)
# Environment: FUZZ_CXX (default clang++), FUZZ_TARGETS (default: all four).
#
# Each target is compiled from the sources it needs (not build/libzookeeper.a,
# which g++ builds without coverage instrumentation) into build/fuzz/<name>,
# and only when a source or header is newer than the binary. It runs on
# build/fuzz/corpus/<name>, seeded from tests/fuzz/corpus/<name>: the repo
# corpus is only ever read, and what a run discovers stays in build/ for the
# next run. A crash leaves its input in build/fuzz/artifacts/<name>/; replay it
# with `build/fuzz/<name> FILE`.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$REPO/build/fuzz
CXX=${FUZZ_CXX:-clang++}
seconds=${1:-60}
results=${2:-}

[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 ]] || { echo "usage: $0 [SECONDS] [RESULTS_FILE]" >&2; exit 2; }

# router_fuzz routes over the real table (api/routes.cpp), whose rows point at
# the API's handlers, so it links them and what they use; it never calls them.
declare -A SOURCES=(
    [router_fuzz]="src/dispatch/router.cpp src/http/problem.cpp src/http/message.cpp
                  src/api/routes.cpp src/api/api.cpp src/api/json.cpp src/api/metrics.cpp src/api/waiting.cpp
                  src/domain/job_pool.cpp src/domain/held_jobs.cpp src/domain/job_table.cpp src/domain/thread_pool.cpp
                  src/domain/timers.cpp src/domain/pool_counters.cpp src/domain/record_mapping.cpp
                  src/domain/deadline_queue.cpp src/domain/survey.cpp src/domain/vocabulary.cpp
                  src/domain/job.cpp src/domain/job_id.cpp src/domain/watch_registry.cpp src/domain/remote_watches.cpp src/domain/idempotency_index.cpp src/http/idempotency_key.cpp src/util/random.cpp src/util/rfc3339.cpp
                  src/util/histogram.cpp src/util/prometheus.cpp src/util/log.cpp src/util/version.cpp"
    [config_fuzz]="src/config/config.cpp src/config/settings.cpp src/util/log.cpp src/util/rfc3339.cpp"
    [job_id_fuzz]="src/domain/job_id.cpp src/util/random.cpp"
    [fcgi_guard_fuzz]="src/transport/fcgi_guard.cpp"
)
declare -A LIBS=([job_id_fuzz]="-luuid" [router_fuzz]="-luuid")
targets=${FUZZ_TARGETS:-router_fuzz config_fuzz job_id_fuzz fcgi_guard_fuzz}

# shellcheck disable=SC2054  # the commas belong to -fsanitize=
CXXFLAGS_FUZZ=(-std=c++20 -g -O1 -fno-omit-frame-pointer -I"$REPO/src"
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
               -fsanitize-ignorelist="$HERE/ubsan.ignorelist")

# True when the binary is missing or older than anything it was built from
# (the sources and every header they include, as clang -MM listed them).
stale() {
    local bin=$OUT/$1 deps=$OUT/$1.deps dep
    [[ -x $bin && -s $deps ]] || return 0
    [[ $HERE/run.sh -nt $bin || $HERE/ubsan.ignorelist -nt $bin ]] && return 0
    while read -r dep; do
        [[ -e $dep && ! $dep -nt $bin ]] || return 0
    done <"$deps"
    return 1
}

build() {
    local name=$1 bin=$OUT/$1 src
    stale "$name" || return 0
    local -a files=("$HERE/$name.cpp")
    for src in ${SOURCES[$name]}; do files+=("$REPO/$src"); done
    # shellcheck disable=SC2086  # LIBS holds several words on purpose
    "$CXX" "${CXXFLAGS_FUZZ[@]}" "${files[@]}" ${LIBS[$name]:-} -o "$bin.tmp" >"$OUT/$name.build.log" 2>&1 \
        || return 1
    # One dependency per line: drop the rule heads and continuation marks.
    "$CXX" -std=c++20 -I"$REPO/src" -MM "${files[@]}" | sed -e 's/\\$//' -e 's/^[^ ]*://' \
        | tr -s ' ' '\n' | grep . >"$OUT/$name.deps" || return 1
    mv -f "$bin.tmp" "$bin"
}

# Prints the one-line verdict; returns the target's success.
run_one() {
    local name=$1 bin=$OUT/$1 log=$OUT/$1.log corpus=$OUT/corpus/$1 art=$OUT/artifacts/$1/
    local -a dict=()
    [[ -f $HERE/$name.dict ]] && dict=(-dict="$HERE/$name.dict")
    mkdir -p "$corpus" "$art"
    cp -n "$HERE/corpus/$name/"* "$corpus/" 2>/dev/null || true
    local t0=$SECONDS rc=0
    # The outer timeout only guards against a hung target; -max_total_time ends a normal run.
    timeout -k 5 $((seconds + 60)) "$bin" "$corpus" "${dict[@]}" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=1536 -max_len=4096 -artifact_prefix="$art" -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    local runs cov corp
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corp=$(find "$corpus" -type f | wc -l)
    if ((rc == 0)); then
        printf 'fuzz %-12s ok    %s runs in %ds, coverage %s, corpus %s\n' \
            "$name" "${runs:-?}" $((SECONDS - t0)) "${cov:-?}" "$corp"
        return 0
    fi
    local crash summary
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    summary=$(grep -m1 -E 'SUMMARY:|property violated|ERROR: libFuzzer' "$log")
    printf 'fuzz %-12s FAIL  exit %d after %ds: %s\n' "$name" "$rc" $((SECONDS - t0)) "${summary:-see $log}"
    [[ -n $crash ]] && printf '      reproducer: %s (replay: %s %s); log: %s\n' "$crash" "$bin" "$crash" "$log"
    return 1
}

main() {
    command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (install clang)" >&2; exit 2; }
    mkdir -p "$OUT"
    local passed=0 failed=0 name
    local -A built=()
    for name in $targets; do
        [[ -n ${SOURCES[$name]:-} ]] || { echo "fuzz: unknown target $name" >&2; exit 2; }
    done
    # Builds in parallel (they are independent); runs one after the other,
    # once every build is done, so a run never shares the CPU with a build.
    for name in $targets; do
        build "$name" &
        built[$name]=$!
    done
    for name in $targets; do
        wait "${built[$name]}" && built[$name]=ok || built[$name]=failed
    done
    for name in $targets; do
        if [[ ${built[$name]} != ok ]]; then
            printf 'fuzz %-12s FAIL  does not compile; see %s\n' "$name" "$OUT/$name.build.log"
            failed=$((failed + 1))
        elif run_one "$name"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
    if [[ -n $results ]]; then
        mkdir -p "$(dirname "$results")"
        echo "$passed $failed" >"$results.tmp" && mv -f "$results.tmp" "$results"
    fi
    echo "fuzz: $passed passed, $failed failed"
    ((failed == 0))
}

main
