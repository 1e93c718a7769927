#!/usr/bin/env python3
"""Runs a command against a live stack: deploy/run-stack.sh (through the
integration harness) in BUILD/ui/<name>, on free loopback ports, with a short
workload so a progress bar visibly moves, then the command with

    ZK_URL        https://localhost:<port>/
    ZK_CERT       the stack's self-signed certificate (PEM)
    ZK_STACK_DIR  the stack's prefix (logs/, stack.log)

in its environment. Exits with the command's status; the stack is stopped
however the command ends. Without a command it serves until Ctrl-C.

usage: serve.py --bin BIN --build BUILD [--name NAME] [--min-seconds S]
                [--max-seconds S] [--max-jobs N] [-- COMMAND ARG...]
"""

import argparse
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402


class Env:
    """The part of tests/integration/run.py's Env that harness.Stack uses."""

    def __init__(self, bin_path, build):
        self.here = os.path.join(REPO, "tests", "integration")
        self.repo = REPO
        self.bin = os.path.abspath(bin_path)
        self.work_dir = os.path.join(os.path.abspath(build), "ui")


def parse_args(argv):
    command = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the zookeeper-fcgi binary")
    ap.add_argument("--build", required=True, help="build directory (the stack goes to BUILD/ui/NAME)")
    ap.add_argument("--name", default="stack", help="the stack's folder name")
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--max-seconds", type=float, default=5.0)
    ap.add_argument("--max-jobs", type=int, default=100000,
                    help="surveys in flight before 503 (low values provoke the error)")
    args = ap.parse_args(argv)
    args.command = command
    return args


def interrupted(_signum, _frame):
    """SIGTERM (a runner's timeout) stops the stack as Ctrl-C does."""
    raise KeyboardInterrupt


def main():
    args = parse_args(sys.argv[1:])
    env = Env(args.bin, args.build)
    os.makedirs(env.work_dir, exist_ok=True)
    os.chmod(env.work_dir, 0o755)  # www-data walks through it to the stack
    state = os.path.join(env.work_dir, args.name, "state")
    config = harness.config_text(min_seconds=args.min_seconds, max_seconds=args.max_seconds,
                                 state_dir=state)
    config = config.replace("max_jobs = 100000", "max_jobs = %d" % args.max_jobs)
    signal.signal(signal.SIGTERM, interrupted)
    stack = harness.Stack(env, args.name, config=config)
    try:
        stack.start()
        url = "https://localhost:%d/" % stack.https_port
        child_env = dict(os.environ, ZK_URL=url, ZK_CERT=stack.cert, ZK_STACK_DIR=stack.dir)
        if not args.command:
            print("serve: %s (CA certificate %s); Ctrl-C stops" % (url, stack.cert), flush=True)
            signal.pause()
            return 0
        return subprocess.call(args.command, env=child_env)
    except harness.TestFailure as e:
        print("serve: the stack did not start: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
