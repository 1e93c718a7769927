#!/usr/bin/env bash
# zookeeper: add up every suite's results file ("<passed> <failed>") in RESULTS_DIR and print "N passed, M failed".
# Exits 1 when anything failed or when there are no results at all (nothing ran is not a pass).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 RESULTS_DIR" >&2
    exit 2
fi
dir=$1

passed=0
failed=0
files=0
shopt -s nullglob
for f in "$dir"/*; do
    [[ -f $f && $f != *.tmp ]] || continue
    files=$((files + 1))
    read -r p q rest <"$f" || true
    if [[ ${p:-} =~ ^[0-9]+$ && ${q:-} =~ ^[0-9]+$ && -z ${rest:-} ]]; then
        passed=$((passed + p))
        failed=$((failed + q))
    else
        # A suite that wrote garbage did not report a pass.
        echo "summary: $f does not hold '<passed> <failed>'; counted as 1 failure" >&2
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
if ((files == 0)); then
    echo "summary: no results in $dir" >&2
    exit 1
fi
((failed == 0))
