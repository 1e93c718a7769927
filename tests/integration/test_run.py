"""`make run` as a newcomer meets it, through make itself, since GNU make
prints the error lines a newcomer reads (issue 22):

- Ctrl-C on the terminal, everything healthy: it reaches run-stack.sh
  alone (neither make nor a child of the stack is in the terminal's
  foreground group), make exits 0, no `make: ***` line, run-stack reports a
  requested stop, nginx got only its graceful SIGQUIT, and no process of the
  stack is left; with SQLite and with STORE=postgresql WORKERS=3;
- the same with make started with SIGINT ignored (as `make run &` from a
  script) and SIGINT sent to its whole process group, no terminal: how the
  issue was first seen ("zookeeper-fcgi exited with status 0", Error 1);
- a bad config (and, with STORE=postgresql WORKERS=3, a bad [store] key) is
  refused before nginx or PostgreSQL start: one line naming the file as
  given, the line and the problem, exit 2, nothing started (not even the
  prefix folder), nothing left running; by run-stack.sh run the way make runs
  it, under a second from its start, then by make run itself.

How: make runs on a pseudo-terminal of its own (`setsid --ctty`: make leads
a new session whose controlling terminal is the pty, as a job of a login
shell would be its terminal's foreground group), with a private prefix and
free ports through RUN_ARGS. Ctrl-C is the byte ^C written to the terminal:
the kernel's line discipline then sends SIGINT to whichever process group
holds the terminal, as with a keyboard. make runs with `-o deps` (make check
has installed the packages; a test never installs anything) and with the
binary under test as BIN, never relinked (`-o BIN`). Every process of the
stack is recorded while it serves (make's descendants, and whatever names the
prefix, such as the PostgreSQL postmaster, pg_ctl's orphan) and must be gone
once make has exited.
"""

import os
import re
import signal
import ssl
import subprocess
import threading
import time

import harness
from harness import check, config_text, free_ports
import registry
from registry import test

registry.module_backends(__name__, only='sqlite',
                         why="make run itself, which picks each test's store (STORE=postgresql WORKERS=3 too): once is enough")

REFUSE_LIMIT_S = 1.0
MAKE_REFUSE_LIMIT_S = 3.0
STOP_LIMIT_S = 15.0  # nginx's and each worker's grace (5 s) would show as more
MAKE_ERROR_RE = re.compile(r"^make(\[\d+\])?: \*\*\*")
PG_CLUSTER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "deploy", "pg-cluster.sh")


# --- make --------------------------------------------------------------------

def make_env():
    """The environment of a make typed at a shell: make check's own make
    variables (MAKEFLAGS with its jobserver, MAKELEVEL) would turn this make
    into a sub-make, with `make[N]:` messages and jobserver warnings."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def make_run_argv(env, conf, prefix, ports=None, store=None, workers=None):
    run_args = "--prefix %s" % prefix
    if ports:
        run_args += " --https-port %d --http-port %d" % ports
    argv = ["make", "--no-print-directory", "-o", "deps", "-o", env.bin, "run", "BIN=" + env.bin,
            "CONFIG=" + shown_path(env, conf), "RUN_ARGS=" + run_args]
    if store:
        argv += ["STORE=" + store, "WORKERS=%d" % workers]
    return argv


def shown_path(env, path):
    """The path as a newcomer would type it, relative to the checkout."""
    rel = os.path.relpath(path, env.repo)
    return path if rel.startswith("..") else rel


def quote(text, limit=25):
    lines = text.rstrip("\n").split("\n")
    return "\n".join("      | " + line for line in lines[-limit:]) if text else "      | (nothing)"


# --- processes ----------------------------------------------------------------

def proc_table():
    """{pid: (ppid, start time in ticks, command line, process group)} of every process."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except (OSError, IndexError):
            continue
        table[int(d)] = (int(fields[1]), fields[19], cmd, int(fields[2]))
    return table


def stack_processes(root, prefix):
    """{pid: (start time, command line)}: root's descendants and every
    process whose command line names prefix, with their descendants."""
    table = proc_table()
    children = {}
    for pid, (ppid, _, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    todo = [root] + [pid for pid, (_, _, cmd, _) in table.items() if prefix in cmd]
    found = {}
    while todo:
        pid = todo.pop()
        if pid in found or pid not in table or pid == os.getpid():
            continue
        found[pid] = table[pid][1:3]
        todo.extend(children.get(pid, []))
    return found


def still_running(processes):
    """The processes of a stack_processes() record that still run (the same
    process: a reused pid has another start time; a zombie counts as gone)."""
    alive = []
    for pid, (start, cmd) in processes.items():
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == start and fields[0] != "Z":
            alive.append("%d %s" % (pid, cmd))
    return alive


def wait_gone(processes, timeout):
    deadline = time.monotonic() + timeout
    while still_running(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return still_running(processes)


def processes_naming(prefix):
    return ["%d %s" % (pid, cmd) for pid, (_, _, cmd, _) in proc_table().items()
            if prefix in cmd and pid != os.getpid()]


def kill_leftovers(prefix):
    """SIGKILL to whatever still names prefix; the cluster in prefix/pg stopped."""
    for line in processes_naming(prefix):
        try:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass
    pg = os.path.join(prefix, "pg")
    if os.path.isdir(pg):
        subprocess.run([PG_CLUSTER, "stop", pg], capture_output=True, timeout=60)


# --- make run, interrupted --------------------------------------------------

class MakeRun:
    """make in a session of its own, its output collected by a thread.

    terminal=True: on a pseudo-terminal that is the session's controlling
    terminal, make its foreground group; interrupt() types ^C.
    terminal=False: on a pipe, with SIGINT ignored from the start, as
    `make run &` in a script (or a tool running it in the background) starts
    it; interrupt() sends SIGINT to make's whole process group. This is how
    the issue was first seen: run-stack.sh could not trap the SIGINT, the
    worker stopped on it, and run-stack.sh took that for a crash."""

    def __init__(self, argv, cwd, prefix, terminal=True):
        self.prefix = prefix
        self.terminal = terminal
        self.output = b""
        self.lock = threading.Lock()
        self.processes = {}
        if terminal:
            self.fd, slave = os.openpty()
            try:
                # setsid execs in place (this child leads no group): the pid is make's.
                self.proc = subprocess.Popen(["setsid", "--ctty"] + argv, cwd=cwd, env=make_env(),
                                             stdin=slave, stdout=slave, stderr=slave)
            finally:
                os.close(slave)
        else:
            self.proc = subprocess.Popen(["bash", "-c", "trap '' INT; exec \"$@\"", "make-run"] + argv,
                                         cwd=cwd, env=make_env(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            self.fd = self.proc.stdout.fileno()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        with harness._live_lock:  # torn down with the stacks if the run is aborted
            harness._live_stacks.add(self)

    def _read(self):
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # the pty's EIO: every process holding the terminal is gone
                data = b""
            if not data:
                return
            with self.lock:
                self.output += data

    def text(self):
        with self.lock:
            return self.output.decode("utf-8", "replace").replace("\r\n", "\n")

    def wait_for(self, needle, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def record_processes(self):
        self.processes = stack_processes(self.proc.pid, self.prefix)
        return self.processes

    def foreground_group(self):
        """The processes of the stack in the terminal's foreground group."""
        fg = os.tcgetpgrp(self.fd)
        table = proc_table()
        return ["%d %s" % (pid, table[pid][2]) for pid in self.processes
                if pid in table and table[pid][3] == fg]

    def interrupt(self):
        if self.terminal:
            os.write(self.fd, b"\x03")
        else:
            os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """Whatever happened: SIGTERM to make (it passes it on to
        run-stack.sh), then SIGKILL to what is left of the recorded stack."""
        with harness._live_lock:
            harness._live_stacks.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(STOP_LIMIT_S) is None:
                self.proc.kill()
                self.proc.wait(5)
        for line in still_running(self.processes or self.record_processes()):
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill_leftovers(self.prefix)
        self.reader.join(5)
        if self.terminal:
            os.close(self.fd)
        else:
            self.proc.stdout.close()


class Served:
    """What harness.request needs of a stack."""

    def __init__(self, prefix, https_port):
        self.https_port = https_port
        self.cert = os.path.join(prefix, "tls", "cert.pem")
        self._ctx = None

    def tls_context(self):
        if self._ctx is None:
            self._ctx = ssl.create_default_context(cafile=self.cert)
        return self._ctx


def private_dir(env, name):
    d = os.path.join(env.work_dir, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)  # as root the worker and nginx run as www-data
    return d


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def interrupt_stops_cleanly(env, name, terminal=True, extra="", store=None, workers=None, ready_timeout=30.0):
    d = private_dir(env, name)
    prefix = os.path.join(d, "stack")
    conf = os.path.join(d, "zookeeper.conf")
    write_config(conf, config_text(state_dir=os.path.join(prefix, "state"), extra=extra))
    ports = tuple(free_ports(2))
    how = "Ctrl-C" if terminal else "SIGINT to its process group"
    run = MakeRun(make_run_argv(env, conf, prefix, ports, store, workers), env.repo, prefix, terminal)
    try:
        check(run.wait_for("run-stack: ready", ready_timeout),
              "make run did not get ready within %.0f s:\n%s" % (ready_timeout, quote(run.text())))
        r = harness.request(Served(prefix, ports[0]), "GET", "/animals")
        check(r.status == 200, "make run serves: " + r.describe())
        processes = run.record_processes()
        kinds = sorted({cmd.split()[0].rsplit("/", 1)[-1] for _, cmd in processes.values()})
        if terminal:
            # Ctrl-C must reach run-stack.sh alone (and its passing sleep):
            # not make, which would die of it, nor the stack's children,
            # which would stop on their own instead of in run-stack's order.
            fg = [p for p in run.foreground_group() if "run-stack.sh" not in p and " sleep " not in " %s " % p]
            check(not fg, "in the terminal's foreground group besides run-stack.sh:\n  " + "\n  ".join(fg))
        t0 = time.monotonic()
        run.interrupt()
        rc = run.wait(STOP_LIMIT_S)
        stop_s = time.monotonic() - t0
        check(rc is not None, "make run still running %.0f s after %s:\n%s" % (STOP_LIMIT_S, how, quote(run.text())))
        run.reader.join(5)
        out = run.text()
        left = wait_gone(processes, 2.0)
        check(rc == 0, "make run exited %d after %s, want 0:\n%s" % (rc, how, quote(out)))
        errors = [line for line in out.split("\n") if MAKE_ERROR_RE.match(line) or "Interrupt" in line]
        check(not errors, "make printed an error line after %s: %r\n%s" % (how, errors, quote(out)))
        check("run-stack: stopped" in out and "exited with status" not in out,
              "run-stack did not report a requested stop:\n%s" % quote(out))
        check(not left, "left running after make run exited:\n  " + "\n  ".join(left))
        if terminal:
            # In run-stack's order: nginx's graceful SIGQUIT, never the terminal's SIGINT.
            with open(os.path.join(prefix, "logs", "error.log")) as f:
                signals = re.findall(r"signal \d+ \((SIG[A-Z]+)\) received", f.read())
            check("SIGQUIT" in signals and "SIGINT" not in signals,
                  "nginx got %s, want SIGQUIT from run-stack.sh alone" % (signals,))
        env.note("stopped in %.2f s after %s (to make's exit), %d processes (%s) all gone"
                 % (stop_s, how, len(processes), " ".join(kinds)))
    finally:
        run.stop()


@test
def make_run_ctrl_c_exits_0_without_make_error_and_leaves_nothing(env):
    interrupt_stops_cleanly(env, "run-ctrl-c")


@test
def make_run_started_with_sigint_ignored_stops_on_sigint_and_exits_0(env):
    interrupt_stops_cleanly(env, "run-sigint-ignored", terminal=False)


@test
def make_run_postgresql_3_workers_ctrl_c_exits_0_and_stops_the_cluster(env):
    interrupt_stops_cleanly(env, "run-ctrl-c-pg", extra="backend = postgresql\n", store="postgresql", workers=3,
                            ready_timeout=90.0)


# --- bad configs -----------------------------------------------------------------

def run_to_refusal(argv, cwd, prefix):
    """Runs argv in a session of its own; (status, output, seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, env=make_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
        left = processes_naming(prefix)
        kill_leftovers(prefix)
        raise harness.TestFailure("%s with a bad config still running after 20 s:\n%s\n%s"
                                  % (argv[0], quote(out.decode("utf-8", "replace")), "\n".join(left)))
    return p.returncode, out.decode("utf-8", "replace"), time.monotonic() - t0


def check_refusal(what, rc, out, prefix, want, want_problem):
    """Exit 2, the one line (besides make's own), nothing started or left."""
    lines = [line for line in out.rstrip("\n").split("\n") if line]
    ours = [line for line in lines if not MAKE_ERROR_RE.match(line)]
    check(rc == 2, "%s exited %d, want 2:\n%s" % (what, rc, quote(out)))
    check(len(ours) == 1, "%s: want exactly one line%s, got %d:\n%s"
          % (what, " besides make's" if what == "make run" else "", len(ours), quote(out)))
    check(ours[0].startswith(want) and want_problem in ours[0],
          "%s: the line should read %r...%r:\n%s" % (what, want, want_problem, quote(out)))
    check(not os.path.exists(prefix), "%s created %s: something started before the check" % (what, prefix))
    left = processes_naming(prefix)
    kill_leftovers(prefix)
    check(not left, "running after the refusal by %s:\n  %s" % (what, "\n  ".join(left)))
    return ours[0]


def refuses(env, name, text, want_line, want_problem, store=None, workers=None):
    """A bad config is refused at once, by run-stack.sh run the way make
    runs it (timed from its start: the refusal itself, < 1 s), then by make
    run itself, whose own start-up (parsing the Makefile) varies with the
    machine's load, so it gets a looser bound: well under the 5 s that
    starting nginx first cost."""
    d = private_dir(env, name)
    prefix = os.path.join(d, "stack")
    conf = os.path.join(d, "bad.conf")
    write_config(conf, text)
    want = "zookeeper-fcgi: %s:%d: " % (shown_path(env, conf), want_line)
    # Free ports all the same: were the check skipped, nginx must not take 8443.
    ports = free_ports(2)
    direct = [os.path.join(env.repo, "deploy", "run-stack.sh"), "--bin", env.bin, "--config", shown_path(env, conf),
              "--prefix", prefix, "--https-port", str(ports[0]), "--http-port", str(ports[1])]
    if store:
        direct += ["--store", store, "--workers", str(workers)]
    rc, out, took = run_to_refusal(direct, env.repo, prefix)
    line = check_refusal("run-stack.sh", rc, out, prefix, want, want_problem)
    check(took < REFUSE_LIMIT_S, "run-stack.sh took %.2f s to refuse a bad config (limit %.1f s):\n%s"
          % (took, REFUSE_LIMIT_S, quote(out)))
    rc, out, make_took = run_to_refusal(make_run_argv(env, conf, prefix, tuple(ports), store, workers),
                                        env.repo, prefix)
    check_refusal("make run", rc, out, prefix, want, want_problem)
    check(any(line.endswith("Error 2") for line in out.split("\n") if MAKE_ERROR_RE.match(line)),
          "make run: run-stack.sh did not exit 2 (make's line says otherwise):\n%s" % quote(out))
    check(make_took < MAKE_REFUSE_LIMIT_S, "make run took %.2f s to refuse a bad config (limit %.1f s):\n%s"
          % (make_took, MAKE_REFUSE_LIMIT_S, quote(out)))
    env.note("refused in %.2f s from run-stack's start, %.2f s from make's: %s" % (took, make_took, line))


def with_duplicate_animal(text):
    """text with a second 'bisons' right after the first; (text, its line, the first's line)."""
    lines = text.split("\n")
    i = lines.index("bisons")
    lines.insert(i + 1, "bisons")
    return "\n".join(lines), i + 2, i + 1


@test
def make_run_bad_config_refused_in_under_1s_before_anything_starts(env):
    d = os.path.join(env.work_dir, "run-bad-config")
    text, line, first = with_duplicate_animal(config_text(state_dir=os.path.join(d, "stack", "state")))
    refuses(env, "run-bad-config", text, line, "duplicate animal 'bisons' (first on line %d)" % first)


@test
def make_run_postgresql_bad_config_refused_before_the_cluster_starts(env):
    d = os.path.join(env.work_dir, "run-bad-config-pg")
    text, line, first = with_duplicate_animal(config_text(state_dir=os.path.join(d, "stack", "state"),
                                                          extra="backend = postgresql\n"))
    refuses(env, "run-bad-config-pg", text, line, "duplicate animal 'bisons' (first on line %d)" % first,
            store="postgresql", workers=3)


@test
def make_run_postgresql_bad_store_key_refused_before_the_cluster_starts(env):
    d = os.path.join(env.work_dir, "run-bad-store")
    text = config_text(state_dir=os.path.join(d, "stack", "state"),
                       extra="backend = postgresql\nread_connections = 0\n")
    line = text.split("\n").index("read_connections = 0") + 1
    refuses(env, "run-bad-store", text, line, "'0' is out of range", store="postgresql", workers=3)

