"""Helpers for tests on several workers sharing one PostgreSQL database
(run-stack.sh --store postgresql --workers N): the stack, each worker's
FastCGI socket and pid, and the stack's throwaway PostgreSQL cluster
(<prefix>/pg, deploy/pg-cluster.sh), including the faults the fault suite
puts it through. Used by test_cluster.py, test_cluster_waits.py and
test_db_faults.py; written once here (issue 19).

A worker stopped (or dead) is started again by run-stack.sh after its pause,
under the same name and on the same socket: await_respawn waits for the new
process, and its log lines are those after the old one's event=stopped
(newest_process_events).

Workers are numbered from 1 as run-stack.sh numbers them: worker 1 listens on
<prefix>/zookeeper.sock (pid in zookeeper-fcgi.pid), worker N on
zookeeper-N.sock (zookeeper-fcgi-N.pid), and is named worker-N.

The PostgreSQL faults act on this stack's cluster only: its postmaster is
the pid in <prefix>/pg/data/postmaster.pid, its processes that pid and its
children. Other engineers' clusters on the same machine are never touched.
"""

import os
import re
import signal
import subprocess
import time

import fcgi_client
import harness
from harness import check, config_text

PG_PORT = 54329          # run-stack.sh's: names the socket file, nothing listens on TCP
PGBIN = "/usr/lib/postgresql/15/bin"
APPLICATION_NAME = "zookeeper"  # postgres_driver.cpp: fallback_application_name=zookeeper


# --- the stack ---------------------------------------------------------------

def cluster_config(st_dir, min_s, max_s, extra=""):
    """A config for a cluster stack: backend postgresql; `extra` adds keys
    to [store] (it follows backend = ...)."""
    return config_text(min_seconds=min_s, max_seconds=max_s, state_dir=os.path.join(st_dir, "state"),
                       extra="backend = postgresql\n" + extra)


def cluster(env, name, workers=3, min_s=3, max_s=5, extra="", tag_logs=False, ready_timeout=60):
    """Starts a stack of `workers` workers on the stack's own PostgreSQL
    cluster, whatever the run's backend; returns the started Stack (a
    context manager that stops it). tag_logs: each worker's log lines end in
    worker=worker-N (log_events)."""
    st = env.new_stack(name, backend="postgresql", workers=workers)
    st.write_config(cluster_config(st.dir, min_s, max_s, extra))
    if tag_logs:
        st.bin_path = os.path.join(env.here, "worker-tag.sh")
        st.extra_env["ZK_TAG_REAL_BIN"] = env.bin
    return st.start(ready_timeout=ready_timeout)


# The stack knows its workers (harness.Stack: sockets(), worker_pid(n),
# worker_name(n)); these names stay for the suites that use them.

def sockets(st, workers=None):
    """Each worker's FastCGI socket, worker 1 first."""
    return st.sockets()[:workers or st.workers]


def worker_name(n):
    return "worker-%d" % n


def worker_pid(st, n):
    return st.worker_pid(n)


def worker_pids(st, workers=None):
    """{n: pid} for workers 1..N, as run-stack.sh recorded them."""
    return {n: worker_pid(st, n) for n in range(1, (workers or st.workers) + 1)}


# --- FastCGI straight to one worker: harness.fcgi ----------------------------

Answer = harness.FcgiAnswer
fcgi = harness.fcgi


def fcgi_json(sock_path, method, uri, timeout=10.0):
    """(status, parsed JSON body or None)."""
    a = fcgi(sock_path, method, uri, timeout)
    return a.status, a.json()


# --- the stack's PostgreSQL cluster ------------------------------------------

def pg_dir(st):
    return os.path.join(st.dir, "pg")


def pg_data(st):
    return os.path.join(pg_dir(st), "data")


def pg_cluster(st, cmd):
    """deploy/pg-cluster.sh CMD on the stack's cluster (start waits until it
    accepts connections and its database exists: a real round trip)."""
    return st.store.cluster(cmd)


def pg_start(st):
    out = pg_cluster(st, "start")
    check(out.returncode == 0, "pg-cluster.sh start: %s %s" % (out.stdout, out.stderr))


def pg_stop_immediate(st):
    """pg_ctl -m immediate stop (no shutdown checkpoint: as a crash would,
    but through the postmaster, which ends every backend first)."""
    out = subprocess.run(["runuser", "-u", "postgres", "--", PGBIN + "/pg_ctl", "-D", pg_data(st),
                          "-m", "immediate", "-w", "-t", "30", "stop"], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "pg_ctl -m immediate stop: %s %s" % (out.stdout, out.stderr))


def postmaster_pid(st):
    with open(os.path.join(pg_data(st), "postmaster.pid")) as f:
        return int(f.readline().strip())


def children_of(pid):
    """Direct children of pid, from /proc."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(d))
    return kids


def pg_pids(st):
    """The postmaster and all its children (PostgreSQL backends are its
    direct children)."""
    pm = postmaster_pid(st)
    return [pm] + children_of(pm)


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def pg_freeze(st):
    """SIGSTOP to the postmaster first (it forks no replacement meanwhile),
    then to its children; again for any child forked in between. Returns
    the pids stopped: pass them to pg_thaw. Stopping the stack thaws them
    too (a watchdog's teardown included)."""
    pm = postmaster_pid(st)
    stopped = [pm]
    st.before_stop.append(lambda: pg_thaw(stopped))
    os.kill(pm, signal.SIGSTOP)
    for _ in range(3):
        new = [p for p in children_of(pm) if p not in stopped]
        if not new:
            break
        signal_all(new, signal.SIGSTOP)
        stopped += new
    return stopped


def pg_thaw(pids):
    """SIGCONT to every pid pg_freeze stopped (children first, then the
    postmaster)."""
    signal_all(list(reversed(pids)), signal.SIGCONT)


def pg_kill9_postmaster(st, gone_timeout=15.0):
    """kill -9 of the postmaster; then waits (bounded) until its orphaned
    backends have exited too (they notice the postmaster's death), since a
    new postmaster refuses to start while they hold the shared memory.
    Returns the postmaster's pid."""
    pids = pg_pids(st)
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + gone_timeout
    while time.monotonic() < deadline and any(harness.pid_alive(p) for p in pids):
        time.sleep(0.05)
    alive = [p for p in pids if harness.pid_alive(p)]
    check(not alive, "PostgreSQL processes %r still alive %.0f s after kill -9 of the postmaster %d"
          % (alive, gone_timeout, pids[0]))
    return pids[0]


def psql(st, sql, timeout=20, db="zookeeper"):
    """Runs sql in the stack's database (or another database `db` of its
    cluster) as postgres; returns stdout lines."""
    out = subprocess.run(["runuser", "-u", "postgres", "--", PGBIN + "/psql", "-h", os.path.join(pg_dir(st), "sock"),
                          "-p", str(PG_PORT), "-U", "postgres", "-d", db, "-qAtX", "-c", sql],
                         capture_output=True, text=True, timeout=timeout)
    check(out.returncode == 0, "psql %r: %s" % (sql, out.stderr))
    return [line for line in out.stdout.split("\n") if line]


def worker_backends(st):
    """pids of the workers' backends (application_name set by the driver)."""
    return [int(p) for p in psql(st, "SELECT pid FROM pg_stat_activity WHERE application_name = '%s'"
                                 % APPLICATION_NAME)]


def terminate_worker_backends(st):
    """pg_terminate_backend on every connection of the workers; returns how
    many were terminated."""
    rows = psql(st, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '%s'"
                % APPLICATION_NAME)
    return sum(1 for r in rows if r == "t")


# --- a worker apart from the stack -------------------------------------------

def store_url(st, db):
    """The connection string of database `db` in the stack's cluster (the
    workers' own names the database "zookeeper")."""
    url = st.store.url()
    check(re.search(r"(^| )dbname=zookeeper( |$)", url), "pg-cluster.sh url: no dbname=zookeeper in %r" % url)
    return re.sub(r"(^| )dbname=zookeeper( |$)", r"\1dbname=%s\2" % db, url)


def spawn_extra_worker(st, name, url):
    """Starts one more worker with the stack's config, on a socket of its own
    (<prefix>/<name>.sock, which nginx does not know) and on the database at
    `url` (ZOOKEEPER_STORE_URL), as run-stack.sh starts its workers:
    spawn-fcgi -n binds the socket as fd 0 and execs the worker in place, so
    the Popen's pid is the worker's. Its log lines go to the stack log, ending
    in worker=<name> (log_events). Returns (Popen, socket path); stopping the
    stack stops it too (SIGTERM, bounded)."""
    sock = os.path.join(os.path.realpath(st.dir), name + ".sock")
    check(len(sock) <= 107, "socket path too long for a unix socket: " + sock)
    if os.path.exists(sock):
        os.unlink(sock)
    if os.geteuid() == 0:
        opts = ["-u", "www-data", "-g", "www-data", "-U", "www-data", "-G", "www-data", "-M", "0660"]
    else:
        opts = ["-M", "0600"]
    real = os.path.realpath
    cmd = (["spawn-fcgi", "-n", "-s", sock] + opts
           + ["--", os.path.join(st.env.here, "worker-tag.sh"), "--config", real(st.conf),
              "--state-dir", real(os.path.join(st.dir, "state")), "--backend", "postgresql", "--worker-name", name])
    env = dict(os.environ, ZOOKEEPER_STORE_URL=url, ZK_TAG_REAL_BIN=st.env.bin)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=st.log, stderr=subprocess.STDOUT,
                         start_new_session=True, env=env)
    st.before_stop.append(lambda: harness.terminate(p, 5))
    return p, sock


# --- the stack's log, per worker ---------------------------------------------

LOGFMT_RE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def log_offset(st):
    """The stack log's size now: log_events(st, since=...) reads from here."""
    try:
        return os.path.getsize(st.log_path)
    except OSError:
        return 0


def log_events(st, since=0, worker=None):
    """The worker logfmt lines written to the stack log after byte `since`,
    each a dict of its keys (worker= on a stack started with tag_logs=True;
    `worker` names the lines that lack it: a single worker's)."""
    with open(st.log_path, "rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    events = []
    for line in text.split("\n"):
        if not line.startswith("ts="):
            continue
        kv = {k: (v[1:-1] if v.startswith('"') else v) for k, v in LOGFMT_RE.findall(line)}
        kv["_line"] = line
        if worker is not None:
            kv.setdefault("worker", worker)
        events.append(kv)
    return events


def last_lines(st, since, worker, n=4):
    """The last n lines of `worker` in the stack log after byte `since`
    (its logfmt lines and anything else it wrote on stderr), quoted."""
    with open(st.log_path, "rb") as f:
        f.seek(since)
        lines = [line for line in f.read().decode("utf-8", "replace").split("\n")
                 if line.endswith(" worker=" + worker)]
    return "\n".join("      | " + line[:240] for line in lines[-n:]) or "      | (nothing)"


def newest_process_events(events, name):
    """`name`'s log lines after its last event=stopped: those of the process
    started after it (run-stack.sh starts a worker again under its name)."""
    mine = [e for e in events if e.get("worker") == name]
    last = max((i for i, e in enumerate(mine) if e.get("event") == "stopped"), default=-1)
    return mine[last + 1:]


def nginx_requests(events):
    """The access log lines of requests nginx passed (the tests' own, straight
    to a socket, carry the id fcgi-test)."""
    return [e for e in events if e.get("event") == "request" and e.get("id") not in (None, "", "fcgi-test")]


def nginx_posts(st, name, log_from):
    """How many POSTs nginx passed the newest process of `name` (its log
    lines after byte `log_from`)."""
    events = newest_process_events(log_events(st, log_from), name)
    return sum(1 for e in nginx_requests(events) if e.get("method") == "POST")


def await_nginx_posts(st, name, log_from, deadline, count=1):
    """True once the newest process of `name` has logged `count` POSTs nginx
    passed it (by the monotonic `deadline`; one look at least)."""
    while True:
        if nginx_posts(st, name, log_from) >= count:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def exit_statuses(st, n, since):
    """The statuses run-stack.sh reported for worker n's exits after byte
    `since` of the stack log ("worker N exited with status S"), in order."""
    with open(st.log_path, "rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    return [int(s) for s in re.findall(r"run-stack: worker %d exited with status (\d+)" % n, text)]


def await_respawn(st, n, old_pid, log_from, deadline, timeout=10.0):
    """Waits (until the monotonic `deadline`; one try at least) until
    run-stack.sh has started worker n again, as a pid other than old_pid,
    and that process answers /healthz on its socket (each ask bounded by
    `timeout`). Returns (pid, the answer, monotonic time it came); fails
    naming the pids seen meanwhile and the exit statuses run-stack.sh
    reported after byte `log_from` of the stack log."""
    name = worker_name(n)
    sock = st.socket_path(n)
    started = []
    since = time.monotonic()
    while True:
        pid = worker_pid(st, n)
        if pid != old_pid and pid not in started:
            started.append(pid)
        if pid != old_pid and harness.pid_alive(pid):
            try:
                a = fcgi(sock, "GET", "/healthz", timeout=timeout)
                if worker_pid(st, n) == pid:
                    return pid, a, time.monotonic()
            except (OSError, EOFError, fcgi_client.FcgiError, ValueError):
                pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    exits = {}
    for status in exit_statuses(st, n, log_from):
        exits[status] = exits.get(status, 0) + 1
    raise harness.TestFailure(
        "%s not serving again after %.1f s of waiting: run-stack.sh started processes meanwhile (pids seen: %s) "
        "and saw worker %d exit with status %s (the stopped one's included); its last lines:\n%s"
        % (name, time.monotonic() - since, " ".join(map(str, started)) or "none", n,
           ", ".join("%s x%d" % kv for kv in sorted(exits.items())) or "none",
           last_lines(st, log_from, name, 2)))
