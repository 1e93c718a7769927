#!/usr/bin/env bash
# zookeeper: run the doctest unit-test binary and record "<passed> <failed>" test cases for tests/summary.sh.
# Usage: tests/run-unit.sh UNIT_BIN RESULTS_FILE; exits with the binary's status (a binary that cannot run counts as "0 1").
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 UNIT_BIN RESULTS_FILE" >&2
    exit 2
fi
unit=$1
results=$2
mkdir -p "$(dirname "$results")"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
if [[ -x $unit && -f $unit ]]; then
    # The output goes to the terminal as it comes and to the log for parsing.
    "$unit" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
else
    echo "run-unit: $unit is not an executable file" >&2
    status=127
fi

# [doctest] test cases: 42 | 41 passed | 1 failed | 0 skipped
# (colour codes stripped in case doctest thinks it writes to a terminal)
summary=$(sed -e 's/\x1b\[[0-9;]*m//g' "$log" \
    | grep -E '^\[doctest\] test cases:' | tail -n 1) || summary=''
if [[ $summary =~ \|[[:space:]]*([0-9]+)[[:space:]]+passed[[:space:]]*\|[[:space:]]*([0-9]+)[[:space:]]+failed ]]; then
    passed=${BASH_REMATCH[1]}
    failed=${BASH_REMATCH[2]}
    # A crash after the summary, or a failing exit without failed cases,
    # must still show up as a failure.
    if ((status != 0 && failed == 0)); then
        failed=1
    fi
else
    # No summary: the binary did not run or died before reporting.
    passed=0
    failed=1
    ((status != 0)) || status=1
fi

echo "$passed $failed" >"$results.tmp"
mv -f "$results.tmp" "$results"
exit "$status"
