#!/usr/bin/env bash
# The dashboard test in real headless Chromium: tests/ui/run.sh RESULTS_FILE
# Writes "<passed> <failed>" to RESULTS_FILE (also when it cannot run at all,
# as "0 1"), screenshots to $BUILD/ui/screenshots/.
#
# Needs Debian's chromium (deploy/install-deps.sh installs it), node and npm.
# playwright-core, pinned below, is installed once into $BUILD/ui/node with
# --no-save: no package.json, no lock file, and it downloads no browser.
# Environment: BUILD (default build), BIN (default $BUILD/zookeeper-fcgi).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO
readonly PLAYWRIGHT_VERSION=1.65.1
readonly CHROMIUM=/usr/bin/chromium

[[ $# -eq 1 ]] || { echo "usage: $0 RESULTS_FILE" >&2; exit 2; }
results=$1
build=$(realpath -m "${BUILD:-$REPO/build}")
bin=${BIN:-$build/zookeeper-fcgi}
node_dir=$build/ui/node
out=$build/ui/screenshots

fail() {
    echo "ui: $*" >&2
    mkdir -p "$(dirname "$results")"
    echo "0 1" >"$results"
    echo "ui: 0 passed, 1 failed"
    exit 1
}

[[ -x $CHROMIUM ]] || fail "$CHROMIUM is missing (deploy/install-deps.sh installs chromium)"
command -v node >/dev/null || fail "node is missing"
[[ -x $bin ]] || fail "no worker binary at $bin (run make first)"

# Reinstalled only when the pinned version changes.
installed=$(node -p "require('$node_dir/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [[ $installed != "$PLAYWRIGHT_VERSION" ]]; then
    command -v npm >/dev/null || fail "npm is missing"
    echo "ui: installing playwright-core@$PLAYWRIGHT_VERSION into $node_dir"
    mkdir -p "$node_dir"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$node_dir" --no-save \
        --no-audit --no-fund --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION" \
        || fail "npm install playwright-core@$PLAYWRIGHT_VERSION failed"
fi

rm -rf "$out" "$results"
mkdir -p "$out"
start=$SECONDS
status=0
# serve.py starts the stack, runs the test against it and always stops it.
ZK_PLAYWRIGHT=$node_dir ZK_UI_OUT=$out ZK_RESULTS=$results \
    timeout -k 10 240 python3 "$REPO/tests/ui/serve.py" --bin "$bin" --build "$build" \
    --name dashboard --min-seconds 3 --max-seconds 5 --max-jobs 3 \
    -- node "$REPO/tests/ui/dashboard.test.mjs" || status=$?
[[ -s $results ]] || fail "the test wrote no results (exit $status); stack log: $build/ui/dashboard/stack.log"
echo "ui: screenshots in $out ($((SECONDS - start)) s)"
exit "$status"
