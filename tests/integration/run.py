#!/usr/bin/env python3
"""Integration tests: the real nginx + spawn-fcgi + worker, driven over HTTPS.

usage: run.py --bin BIN --build BUILD --results FILE [--backend sqlite|postgresql] [--workers N]
              [-k FILTER]... [--timeout S] [--list]

A tiny runner instead of unittest: tests are plain functions registered with
@test in the test_*.py modules beside this file, run in file order, one line
each (PASS/FAIL, time, and for failures the exact request and answer). The
results file gets "<passed> <failed>". A watchdog bounds the whole run: on
expiry every stack is torn down and the tests not finished count as failed,
so `make check` can never hang here. Python 3 standard library only.

One run is one backend: --backend sqlite (one worker, the default) or
--backend postgresql --workers N (N workers on one throwaway PostgreSQL
cluster per stack, 3 by default), and env.main and env.new_stack() give
stacks on it. A test runs on both unless it declares one backend with its
reason (registry.py); `--list` shows each test's backends and reasons. The
Makefile runs the suite once per backend, each with its own results file
and its own folder of stacks (BUILD/integration/<sqlite|pg>/<name>).
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

WORK_DIRS = {"sqlite": "sqlite", "postgresql": "pg"}

TEST_MODULES = ["test_cli", "test_api", "test_errors", "test_observability", "test_load", "test_lifecycle",
                "test_security", "test_faults", "test_idempotency", "test_openapi", "test_manpages",
                "test_waits", "test_consistency", "test_cluster", "test_cluster_waits", "test_db_faults",
                "test_store_faults", "test_run", "test_failover"]


class Env:
    """What every test gets: paths, the shared stack (started on first use),
    and factories for its own stacks."""

    def __init__(self, args):
        self.here = HERE
        self.repo = os.path.dirname(os.path.dirname(HERE))
        self.bin = os.path.abspath(args.bin)
        self.build = os.path.abspath(args.build)
        self.backend = args.backend
        self.workers = args.workers
        # Short folder names: a PostgreSQL stack's socket is
        # <prefix>/pg/sock/.s.PGSQL.54329, and sun_path holds 107 bytes.
        self.work_dir = os.path.join(self.build, "integration", WORK_DIRS[args.backend])
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

    def new_stack(self, name, config=None, shim=False, backend=None, workers=None):
        """A stack of the test's own: the run's backend and workers unless
        given (the cluster tests ask for PostgreSQL and their own count)."""
        return harness.Stack(self, name, config=config, shim=shim, backend=backend, workers=workers)

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
    ap.add_argument("--build", required=True, help="build directory (stacks go to BUILD/integration/<backend>)")
    ap.add_argument("--results", required=True, help='file to write "<passed> <failed>" to')
    ap.add_argument("--backend", default="sqlite", choices=registry.BACKENDS,
                    help="the store of env.main and env.new_stack(); runs the tests declared for it")
    ap.add_argument("--workers", type=int, default=None,
                    help="workers per stack (sqlite: 1; postgresql: 3 by default)")
    ap.add_argument("-k", action="append", default=[], metavar="FILTER",
                    help="run only tests whose name contains FILTER (repeatable)")
    ap.add_argument("--timeout", type=float, default=240.0, help="hard limit for the whole run, seconds")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()
    args.workers = args.workers or harness.DEFAULT_WORKERS[args.backend]
    if args.backend == "sqlite" and args.workers != 1:
        ap.error("--workers %d needs --backend postgresql: SQLite has a single writer by design" % args.workers)
    if not 1 <= args.workers <= 99:
        ap.error("--workers takes 1 to 99")

    for m in TEST_MODULES:
        __import__(m)
    chosen = [t for t in registry.TESTS if not args.k or any(k in t.name for k in args.k)]
    tests = [t for t in chosen if t.runs_on(args.backend)]
    if args.list:
        for t in chosen:
            print("%-70s %s%s" % (t.name, "+".join(t.backends), "  (%s)" % t.why if t.why else ""))
        return 0

    env = Env(args)
    os.makedirs(env.build, exist_ok=True)
    shutil.rmtree(env.work_dir, ignore_errors=True)
    os.makedirs(env.work_dir)
    os.chmod(os.path.dirname(env.work_dir), 0o755)  # www-data and postgres walk through it
    os.chmod(env.work_dir, 0o755)

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
            print("integration (%s): %d passed, %d failed" % (args.backend, counts["passed"], failed), flush=True)
            os._exit(1)

    watchdog = threading.Timer(args.timeout, abort, ["run exceeded %.0f s" % args.timeout])
    watchdog.daemon = True
    watchdog.start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: abort("signal %d" % s))

    if not os.access(env.bin, os.X_OK):
        print("note: %s is not an executable; every test will fail" % env.bin)
    print("integration on %s, %d worker(s) per stack: %d test(s), %d declared for another backend; stacks under %s"
          % (args.backend, args.workers, len(tests), len(chosen) - len(tests), env.work_dir), flush=True)
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
    print("integration (%s): %d passed, %d failed (%.0f s)" % (
        args.backend, counts["passed"], counts["failed"], time.monotonic() - started), flush=True)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
