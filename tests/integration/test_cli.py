"""The worker's command line, run directly (no nginx): --help, --version,
--check-config, and refusing bad configs with `FILE:LINE: problem`, exit 2."""

import os
import re
import socket
import subprocess

from harness import ANIMALS, TestFailure, check, config_text
import registry
from registry import test

registry.module_backends(__name__, only="sqlite",
                         why="the command line and config checks start no stack: once is enough")


def run_bin(env, args, stdin=subprocess.DEVNULL, timeout=5):
    try:
        r = subprocess.run([env.bin] + args, stdin=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure("zookeeper-fcgi %s did not exit within %d s" % (" ".join(args), timeout))
    except OSError as e:
        raise TestFailure("cannot run %s: %s" % (env.bin, e))
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    return r.returncode, out


def cli_dir(env):
    d = os.path.join(env.work_dir, "cli")
    os.makedirs(d, exist_ok=True)
    return d


def write(env, name, text):
    path = os.path.join(cli_dir(env), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def good_config(env):
    return config_text(state_dir=os.path.join(cli_dir(env), "state"))


def quote(out):
    return "\n".join("      | " + line for line in out.rstrip("\n").split("\n")[:8]) or "      | (nothing)"


@test
def cli_help_and_version(env):
    rc, out = run_bin(env, ["--help"])
    check(rc == 0, "--help exited %d, want 0:\n%s" % (rc, quote(out)))
    check("--config" in out, "--help does not mention --config:\n%s" % quote(out))
    rc, out = run_bin(env, ["--version"])
    check(rc == 0, "--version exited %d, want 0:\n%s" % (rc, quote(out)))
    with open(os.path.join(env.repo, "VERSION")) as f:
        version = f.read().strip()
    check(version in out, "--version does not print VERSION (%s):\n%s" % (version, quote(out)))


@test
def cli_unknown_option_exits_2(env):
    rc, out = run_bin(env, ["--no-such-option"])
    check(rc == 2, "--no-such-option exited %d, want 2:\n%s" % (rc, quote(out)))


@test
def cli_check_config_accepts_shipped_and_test_configs(env):
    shipped = os.path.join(env.repo, "zookeeper.conf")
    for path in (shipped, write(env, "good.conf", good_config(env))):
        rc, out = run_bin(env, ["--check-config", path])
        check(rc == 0, "--check-config %s exited %d, want 0:\n%s" % (path, rc, quote(out)))
        check("%s: ok" % path in out, "--check-config %s did not print '%s: ok':\n%s"
              % (path, path, quote(out)))


@test
def cli_refuses_stdin_that_is_not_a_socket(env):
    path = write(env, "good-nosocket.conf", good_config(env))
    rc, out = run_bin(env, ["--config", path, "--state-dir", os.path.join(cli_dir(env), "state-ns")])
    check(rc == 2, "worker with /dev/null as fd 0 exited %d, want 2:\n%s" % (rc, quote(out)))


# --- bad configs: one test each --------------------------------------------

def lines_of(text):
    return text.split("\n")


def insert_after(text, anchor, new_line):
    """Inserts new_line after the line equal to anchor; returns (text, 1-based line)."""
    lines = lines_of(text)
    i = lines.index(anchor)
    lines.insert(i + 1, new_line)
    return "\n".join(lines), i + 2


def replace_line(text, old, new):
    lines = lines_of(text)
    i = lines.index(old)
    lines[i] = new
    return "\n".join(lines), i + 1


def drop_section(text, name):
    out, skipping = [], False
    for line in lines_of(text):
        if line.startswith("["):
            skipping = line == "[%s]" % name
        if not skipping:
            out.append(line)
    return "\n".join(out)


def bad_cases(env):
    base = good_config(env)
    d = cli_dir(env)
    cases = []  # (name, text or None for a path case, expected line or None, path override)
    cases.append(("missing_section", drop_section(base, "adverbs"), None))
    cases.append(("empty_section", drop_section(base, "adverbs") + "\n[adverbs]\n", None))
    text, line = insert_after(base, ANIMALS[-1], "bisons")
    cases.append(("duplicate_animal", text, line))
    text, line = insert_after(base, "log_level = info", "frobnicate = 1")
    cases.append(("unknown_key", text, line))
    text, line = replace_line(base, "min_seconds = 0.3", "min_seconds = fast")
    cases.append(("bad_number", text, line))
    text, line = replace_line(base, "acceptor_threads = 8", "acceptor_threads = 8x")
    cases.append(("bad_integer_suffix", text, line))
    text, _ = replace_line(base, "min_seconds = 0.3", "min_seconds = 5")
    cases.append(("min_above_max", text, None))
    out = []
    for name, text, line in cases:
        out.append((name, write(env, "bad-%s.conf" % name, text), line))
    out.append(("unreadable_missing_file", os.path.join(d, "does-not-exist.conf"), None))
    os.makedirs(os.path.join(d, "a-directory.conf"), exist_ok=True)
    out.append(("unreadable_directory", os.path.join(d, "a-directory.conf"), None))
    return out


def check_rejection(path, rc, out, want_line, how):
    check(rc == 2, "%s %s exited %d, want 2:\n%s" % (how, os.path.basename(path), rc, quote(out)))
    m = re.search(re.escape(path) + r":(\d+):", out)
    check(m, "%s %s: error does not start with FILE:LINE: (%s:<line>:):\n%s"
          % (how, os.path.basename(path), path, quote(out)))
    if want_line is not None:
        check(int(m.group(1)) == want_line, "%s %s: error names line %s, the problem is on line %d:\n%s"
              % (how, os.path.basename(path), m.group(1), want_line, quote(out)))


def make_bad_config_test(name):
    def run(env):
        case = [c for c in bad_cases(env) if c[0] == name][0]
        _, path, want_line = case
        rc, out = run_bin(env, ["--check-config", path])
        check_rejection(path, rc, out, want_line, "--check-config")
        # Starting for real must refuse the same way, with a genuine socket on
        # fd 0 so the config is the only thing wrong.
        sock_path = os.path.join(cli_dir(env), "%s.sock" % name)
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(sock_path)
            s.listen()
            rc, out = run_bin(env, ["--config", path, "--state-dir",
                                    os.path.join(cli_dir(env), "state-" + name)], stdin=s.fileno())
        os.unlink(sock_path)
        check_rejection(path, rc, out, want_line, "--config")
    run.__name__ = "config_rejects_" + name
    return run


for _name in ["missing_section", "empty_section", "duplicate_animal", "unknown_key", "bad_number",
              "bad_integer_suffix", "min_above_max", "unreadable_missing_file", "unreadable_directory"]:
    _f = make_bad_config_test(_name)
    test(_f)
