#!/usr/bin/env python3
"""Integration tests: the real nginx + spawn-fcgi + worker, driven over HTTPS.

usage: run.py --bin BIN --build BUILD --results FILE [-k FILTER]... [--timeout S] [--list]

A tiny runner instead of unittest: tests are plain functions registered with
@test in the test_*.py modules beside this file, run in file order, one line
each (PASS/FAIL, time, and for failures the exact request and answer). The
results file gets "<passed> <failed>". A watchdog bounds the whole run: on
expiry every stack is torn down and the tests not finished count as failed,
so `make check` can never hang here. Python 3 standard library only.
"""

import argparse
import os
import shutil
import signal
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import registry  # noqa: E402

TEST_MODULES = ["test_cli", "test_api", "test_errors", "test_observability", "test_load", "test_lifecycle",
                "test_security", "test_faults", "test_idempotency", "test_openapi", "test_manpages",
                "test_waits", "test_cluster", "test_cluster_waits", "test_db_faults", "test_store_faults",
                "test_run", "test_failover"]


class Env:
    """What every test gets: paths, the shared stack (started on first use),
    and factories for its own stacks."""

    def __init__(self, args):
        self.here = HERE
        self.repo = os.path.dirname(os.path.dirname(HERE))
        self.bin = os.path.abspath(args.bin)
        self.build = os.path.abspath(args.build)
        self.work_dir = os.path.join(self.build, "integration")
        self._main = None
        self._main_error = None
        self._main_lock = threading.Lock()  # tests' client threads may be the first to ask
        self.notes = []

    def note(self, text):
        """An informational line printed under the test's result."""
        self.notes.append(text)

    @property
    def main(self):
        with self._main_lock:
            if self._main_error:
                raise harness.StackError("shared stack failed to start earlier: " + self._main_error)
            if self._main is None:
                try:
                    self._main = harness.Stack(self, "main").start()
                except harness.TestFailure as e:
                    self._main_error = str(e).split("\n")[0]
                    raise
            return self._main

    def new_stack(self, name, config=None, shim=False):
        return harness.Stack(self, name, config=config, shim=shim)

    def close(self):
        harness.stop_all_stacks()


def write_results(path, passed, failed):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write("%d %d\n" % (passed, failed))
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the zookeeper-fcgi binary")
    ap.add_argument("--build", required=True, help="build directory (stacks go to BUILD/integration)")
    ap.add_argument("--results", required=True, help='file to write "<passed> <failed>" to')
    ap.add_argument("-k", action="append", default=[], metavar="FILTER",
                    help="run only tests whose name contains FILTER (repeatable)")
    ap.add_argument("--timeout", type=float, default=240.0, help="hard limit for the whole run, seconds")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()

    for m in TEST_MODULES:
        __import__(m)
    tests = [t for t in registry.TESTS if not args.k or any(k in t.name for k in args.k)]
    if args.list:
        for t in tests:
            print(t.name)
        return 0

    env = Env(args)
    os.makedirs(env.build, exist_ok=True)
    shutil.rmtree(env.work_dir, ignore_errors=True)
    os.makedirs(env.work_dir)

    counts = {"passed": 0, "failed": 0}
    # Re-entrant: abort() may run from a signal while the main thread holds it.
    lock = threading.RLock()

    def abort(reason):
        with lock:
            failed = counts["failed"] + (len(tests) - counts["passed"] - counts["failed"])
            print("ABORT %s: tearing down; %d test(s) not finished count as failed" % (
                reason, len(tests) - counts["passed"] - counts["failed"]), flush=True)
            env.close()
            write_results(args.results, counts["passed"], failed)
            print("integration: %d passed, %d failed" % (counts["passed"], failed), flush=True)
            os._exit(1)

    watchdog = threading.Timer(args.timeout, abort, ["run exceeded %.0f s" % args.timeout])
    watchdog.daemon = True
    watchdog.start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: abort("signal %d" % s))

    if not os.access(env.bin, os.X_OK):
        print("note: %s is not an executable; every test will fail" % env.bin)
    print("integration: %d test(s); stacks under %s" % (len(tests), env.work_dir), flush=True)
    started = time.monotonic()
    try:
        for t in tests:
            env.notes = []
            t0 = time.monotonic()
            error = None
            try:
                t.func(env)
            except AssertionError as e:  # TestFailure, or a bare assert
                error = str(e)
            except Exception:
                error = "unexpected error in the test itself:\n" + traceback.format_exc()
            dt = time.monotonic() - t0
            with lock:
                counts["failed" if error else "passed"] += 1
                print("%s %-40s %6.2fs" % ("FAIL" if error else "PASS", t.name, dt), flush=True)
                for n in env.notes:
                    print("      . " + n)
                if error:
                    for line in error.rstrip("\n").split("\n"):
                        print("      " + line)
                sys.stdout.flush()
    finally:
        watchdog.cancel()
        env.close()
    write_results(args.results, counts["passed"], counts["failed"])
    print("integration: %d passed, %d failed (%.0f s)" % (
        counts["passed"], counts["failed"], time.monotonic() - started), flush=True)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
