"""The database fails over under load (issue 21): three workers behind nginx
on a Patroni cluster (run-stack.sh --ha: deploy/ha-cluster.sh, one etcd, a
primary and a synchronous standby, Patroni's loop_wait 1 s and ttl 10 s),
with creations, polls and cancels from several clients through nginx.

- (a) the leader's postmaster killed with kill -9: Patroni promotes the
  synchronous standby (primary_start_timeout 0);
- (b) `patronictl switchover` to the synchronous standby;
- (c) the synchronous standby's node killed (its Patroni, then its postmaster,
  kill -9, so that nothing restarts it): the primary degrades to asynchronous
  (synchronous_mode_strict off) and keeps answering, without hanging.

In each case:
- no acknowledged creation is lost: every id answered 202 is answered
  afterwards (never 404), and completes;
- no cancel is lost: an id answered 204 to DELETE stays 410;
- no finished survey answers differently later (its sentence, or 410 for
  ever once seen);
- answers during the window are 503 problem+json with Retry-After: no 502, no
  504, no other error, no answer slower than HANG_S;
- full service is back within 15 s of the fault (the last 503 is answered by
  then, then TAIL_S of clean answers), and no worker was restarted.
The window (first to last 503; 409 and 410 are answers, not failures) and
the time to the first 202 creation after the fault are printed as notes.

The cases share one stack and one Patroni cluster (its first start, initdb
and a base backup, is most of the cost); each starts from a healthy cluster:
a leader and a synchronous standby streaming from it, every worker's store
up. The last test stops the stack and checks that nothing of the cluster is
left (etcd, Patroni, PostgreSQL).

The load generator and invariant checker here are local; they give way to
tests/integration/fault_load.py once that lands.
"""

import os
import random
import signal
import subprocess
import threading
import time

import fcgi_client
import harness
from harness import check, problem_errors
from registry import test

# Patroni's and the workers' timings make a failover last a few seconds;
# the bound is the issue's.
WINDOW_BOUND_S = 15.0
# No answer may take longer: the workers' statement_timeout (5 s) + 1.
HANG_S = 6.0
# nginx's fastcgi_read_timeout is 10 s: our own timeout is above it, so a
# worker that hangs shows as nginx's 504 rather than as our timeout.
CLIENT_TIMEOUT_S = 15.0
# Clean answers needed after the last 503 before a case's load stops.
TAIL_S = 3.0
# Load before the fault, so the window is measured against a steady state.
WARMUP_S = 2.0
# Surveys short enough to finish within a case: done ones are then re-read.
MIN_S, MAX_S = 1, 2
RESCUE_AFTER_MS, SWEEP_INTERVAL_MS = 2000, 500
# Under nginx's per-address limits (10 creations/s, 50 reads/s).
CREATE_PAUSE_S = 0.12
POLL_PAUSE_S = 0.03
CANCEL_PAUSE_S = 0.25
CREATORS, POLLERS, CANCELLERS = 3, 3, 2
# The stack's first start: initdb, a base backup, three workers.
READY_TIMEOUT_S = 180
WORKERS = 3


# --- the shared stack ------------------------------------------------------------

class HaStack(harness.Stack):
    """run-stack.sh --ha. Patroni, etcd and PostgreSQL run detached (their
    own sessions), so killing run-stack.sh's process group would not reach
    them: stop() always ends with ha-cluster.sh stop, which leaves nothing."""

    def ha_dir(self):
        return os.path.join(os.path.realpath(self.dir), "ha")

    def ha(self, *args, timeout=120):
        return subprocess.run([os.path.join(self.env.repo, "deploy", "ha-cluster.sh"), args[0], self.ha_dir()]
                              + list(args[1:]), capture_output=True, text=True, timeout=timeout)

    def ha_out(self, *args, timeout=120):
        out = self.ha(*args, timeout=timeout)
        check(out.returncode == 0, "ha-cluster.sh %s: exit %d: %s%s"
              % (" ".join(args), out.returncode, out.stdout, out.stderr))
        return out.stdout.strip()

    def stop(self, timeout=90.0):
        rc = super().stop(timeout=timeout)
        self.ha("stop", timeout=120)
        return rc


_shared = {"stack": None, "error": None}


def ha_stack(env):
    if _shared["error"]:
        raise harness.StackError("the HA stack failed to start earlier: " + _shared["error"])
    if _shared["stack"] is None:
        st = HaStack(env, "failover")
        extra = ("backend = postgresql\nrescue_after_ms = %d\nsweep_interval_ms = %d\n"
                 % (RESCUE_AFTER_MS, SWEEP_INTERVAL_MS))
        st.write_config(harness.config_text(min_seconds=MIN_S, max_seconds=MAX_S,
                                            state_dir=os.path.join(st.dir, "state"), extra=extra))
        st.run_args += ["--store", "postgresql", "--workers", str(WORKERS), "--ha"]
        try:
            st.start(ready_timeout=READY_TIMEOUT_S)
        except harness.TestFailure as e:
            _shared["error"] = str(e).split("\n")[0]
            st.stop()
            raise
        _shared["stack"] = st
    return _shared["stack"]


def worker_pids(st):
    out = []
    for n in range(1, WORKERS + 1):
        name = "zookeeper-fcgi.pid" if n == 1 else "zookeeper-fcgi-%d.pid" % n
        with open(os.path.join(st.dir, name)) as f:
            out.append(int(f.read().strip()))
    return out


def worker_sockets(st):
    return [st.socket_path()] + [os.path.join(os.path.realpath(st.dir), "zookeeper-%d.sock" % n)
                                 for n in range(2, WORKERS + 1)]


def store_up(sock):
    try:
        s = fcgi_client.connect(sock, timeout=5)
        try:
            s.sendall(fcgi_client.request_bytes("GET", "/healthz"))
            status, _, _, _ = fcgi_client.read_answer(s)
        finally:
            s.close()
        return status == 200
    except OSError:
        return False


def healthy_start(st, timeout=90):
    """A leader, a synchronous standby streaming from it, every worker's
    store up, the same workers as before. Returns (leader, sync, worker pids)."""
    out = st.ha("wait", str(timeout), timeout=timeout + 30)
    check(out.returncode == 0, "the Patroni cluster is not healthy before the case: %s%s"
          % (out.stdout, out.stderr))
    deadline = time.monotonic() + 30
    socks = worker_sockets(st)
    while not all(store_up(s) for s in socks):
        check(time.monotonic() < deadline, "a worker's /healthz is not 200 30 s after the cluster is healthy")
        time.sleep(0.2)
    return st.ha_out("leader"), st.ha_out("sync"), worker_pids(st)


# --- the load --------------------------------------------------------------------

class Load:
    """Creations, polls and cancels through nginx from several clients, each
    answer recorded with its times; the invariants are checked as answers
    arrive (violations) and once more at the end (verify())."""

    def __init__(self, st):
        self.st = st
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.answers = []        # (t_sent, t_answered, kind, status or None, detail)
        self.acked = []          # ids answered 202, in order
        self.cancelled = set()   # ids answered 204 to DELETE
        self.cancel_tried = set()
        self.final = {}          # id -> ("done", sentence) or ("cancelled", None), first seen
        self.violations = []
        self.threads = []
        self.inflight = {}       # thread -> when its request was sent

    # One request; every answer is recorded, and bad ones described.
    def send(self, client, kind, method, path):
        t0 = time.monotonic()
        me = threading.get_ident()
        self.inflight[me] = t0
        try:
            r = client.request(method, path)
        except harness.TestFailure as e:
            t1 = time.monotonic()
            self.inflight.pop(me, None)
            with self.lock:
                self.answers.append((t0, t1, kind, None, "%s (after %.1f s)" % (e, t1 - t0)))
            return None
        t1 = time.monotonic()
        self.inflight.pop(me, None)
        detail = ""
        if r.status == 503:
            errs = problem_errors(r, 503)
            if not r.header("Retry-After"):
                errs.append("no Retry-After")
            detail = "; ".join(errs)
        elif r.status not in (200, 202, 204, 409, 410):
            detail = r.describe()
        if t1 - t0 > HANG_S:
            detail = (detail + "; " if detail else "") + "answered after %.1f s" % (t1 - t0)
        with self.lock:
            self.answers.append((t0, t1, kind, r.status, detail))
        return r

    def observe(self, job, r):
        """A poll's answer against what this id answered before."""
        if r.status == 200:
            seen = ("done", r.json())
        elif r.status == 410:
            seen = ("cancelled", None)
        elif r.status == 404:
            with self.lock:
                self.violations.append("acknowledged %s answered 404: %s" % (job, r.describe()))
            return
        else:
            return
        with self.lock:
            first = self.final.setdefault(job, seen)
            if first != seen:
                self.violations.append("%s answered %r, then %r" % (job, first, seen))
            if seen[0] == "done" and job in self.cancelled:
                self.violations.append("%s was cancelled (204), then answered 200 %r" % (job, seen[1]))

    def creator(self, n):
        c = harness.Client(self.st, timeout=CLIENT_TIMEOUT_S)
        animal = harness.ANIMALS[n % len(harness.ANIMALS)]
        while not self.stop_event.is_set():
            r = self.send(c, "create", "POST", "/animals/" + animal)
            if r is not None and r.status == 202:
                with self.lock:
                    self.acked.append(r.json())
            time.sleep(CREATE_PAUSE_S)
        c.close()

    def pick(self, recent):
        with self.lock:
            if not self.acked:
                return None
            if recent:
                return random.choice(self.acked[-20:])
            return random.choice(self.acked)

    def poller(self, n):
        c = harness.Client(self.st, timeout=CLIENT_TIMEOUT_S)
        while not self.stop_event.is_set():
            job = self.pick(recent=n % 2 == 0)
            if job is not None:
                r = self.send(c, "poll", "GET", "/query/" + job)
                if r is not None:
                    self.observe(job, r)
            time.sleep(POLL_PAUSE_S)
        c.close()

    def canceller(self, n):
        c = harness.Client(self.st, timeout=CLIENT_TIMEOUT_S)
        while not self.stop_event.is_set():
            job = self.pick(recent=True)
            if job is not None and job not in self.cancel_tried:
                with self.lock:
                    self.cancel_tried.add(job)
                r = self.send(c, "cancel", "DELETE", "/query/" + job)
                if r is not None and r.status == 204:
                    with self.lock:
                        self.cancelled.add(job)
                        if self.final.get(job, ("cancelled",))[0] == "done":
                            self.violations.append("%s answered 200, then its cancel 204" % job)
            time.sleep(CANCEL_PAUSE_S)
        c.close()

    def start(self):
        for role, count in ((self.creator, CREATORS), (self.poller, POLLERS), (self.canceller, CANCELLERS)):
            for n in range(count):
                t = threading.Thread(target=role, args=(n,), daemon=True)
                t.start()
                self.threads.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT_S + 5)
        check(not any(t.is_alive() for t in self.threads), "a load thread did not stop")

    # --- what the answers say ----------------------------------------------------

    def degraded(self, a):
        return a[3] is None or a[3] >= 500 or a[4] != ""

    def back(self, now):
        """Service is back: nothing bad answered for TAIL_S, creations
        answered 202 in the last second, no request waiting over a second
        (a hung one has not been answered yet, so it is not among the bad)."""
        with self.lock:
            last_bad = max((a[1] for a in self.answers if self.degraded(a)), default=None)
            last_created = max((a[1] for a in self.answers if a[2] == "create" and a[3] == 202), default=None)
        oldest = min(self.inflight.values(), default=now)
        return ((last_bad is None or now - last_bad >= TAIL_S) and last_created is not None
                and now - last_created < 1.0 and now - oldest < 1.0)

    def run_fault(self, fault):
        """Load, the fault (a function returning once it is done; its start
        is t_fault), then load until service is back for TAIL_S or the bound
        has passed. Returns t_fault."""
        self.start()
        time.sleep(WARMUP_S)
        t_fault = time.monotonic()
        fault()
        deadline = t_fault + WINDOW_BOUND_S + TAIL_S
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now - t_fault >= 4.0 and self.back(now):
                break
            time.sleep(0.1)
        self.stop()
        return t_fault

    def report(self, t_fault, name):
        """Checks the window's answers; returns a note with its measures."""
        with self.lock:
            answers = list(self.answers)
        check(len(answers) > 50, "%s: too few answers (%d)" % (name, len(answers)))
        bad = [a for a in answers if a[3] is None or a[4] != "" or (a[3] >= 500 and a[3] != 503)]
        window = [a for a in answers if a[3] == 503]
        creations = sorted(a[1] for a in answers if a[2] == "create" and a[3] == 202)
        deg = [a for a in answers if self.degraded(a)]
        first = min((a[1] for a in deg), default=None)
        last = max((a[1] for a in deg), default=None)
        after = first if first is not None else t_fault
        first_create = next((t for t in creations if t >= after), None)
        counts = {}
        for a in answers:
            counts[a[3]] = counts.get(a[3], 0) + 1
        note = ("%s: %d answers %s; " % (name, len(answers), dict(sorted(counts.items(), key=str))))
        if first is None:
            note += "no 503 at all"
        else:
            note += ("503s from +%.2f s to +%.2f s after the fault (window %.2f s)"
                     % (first - t_fault, last - t_fault, last - first))
        note += ("; first 202 creation after it at +%.2f s" % (first_create - t_fault)
                 if first_create is not None else "; no 202 creation after it")
        note += "; slowest answer %.2f s" % max(a[1] - a[0] for a in answers)
        check(not bad, "%s: %d answers other than 2xx/409/410 or 503 problem+json with Retry-After, "
              "or slower than %.0f s; the first: %s\n      note: %s"
              % (name, len(bad), HANG_S, "; ".join("%s %s %s at +%.2f s" % (a[2], a[3], a[4], a[1] - t_fault)
                                                   for a in bad[:5]), note))
        if last is not None:
            check(last - t_fault <= WINDOW_BOUND_S, "%s: a 503 %.1f s after the fault (bound %.0f s): %s"
                  % (name, last - t_fault, WINDOW_BOUND_S, note))
        check(first_create is not None, "%s: no creation succeeded after the fault: %s" % (name, note))
        return note, len(window)

    def verify(self, name):
        """After the case: every acknowledged id answered and finished, every
        204 cancel still 410, every finished survey the same."""
        with self.lock:
            acked = list(self.acked)
            check(not self.violations, "%s: %d invariant violations during the load: %s"
                  % (name, len(self.violations), "; ".join(self.violations[:5])))
        check(len(acked) > 20, "%s: too few creations acknowledged (%d)" % (name, len(acked)))
        # Every survey's deadline has passed, and a dead owner's would be rescued.
        time.sleep(MAX_S + (RESCUE_AFTER_MS + SWEEP_INTERVAL_MS) / 1000.0 + 1.0)
        problems = []
        pending = list(acked)
        chunks = [pending[i::4] for i in range(4)]
        results = {}

        def reread(ids):
            c = harness.Client(self.st, timeout=CLIENT_TIMEOUT_S)
            try:
                for job in ids:
                    for _ in range(50):  # a 503 or a survey still finishing: try again shortly
                        r = c.request("GET", "/query/" + job)
                        if r.status not in (202, 503):
                            break
                        time.sleep(0.1)
                    results[job] = r
                    time.sleep(POLL_PAUSE_S)
            finally:
                c.close()

        threads = [threading.Thread(target=reread, args=(ids,)) for ids in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for job in acked:
            r = results.get(job)
            if r is None:
                problems.append("%s: not re-read" % job)
                continue
            if r.status == 404:
                problems.append("acknowledged %s LOST: %s" % (job, r.describe()))
            elif job in self.cancelled and r.status != 410:
                problems.append("cancel of %s LOST: %s" % (job, r.describe()))
            elif r.status not in (200, 410):
                problems.append("%s: %s" % (job, r.describe()))
            else:
                seen = ("done", r.json()) if r.status == 200 else ("cancelled", None)
                first = self.final.get(job)
                if first is not None and first != seen:
                    problems.append("%s answered %r, now %r" % (job, first, seen))
        check(not problems, "%s: %d of %d acknowledged ids wrong afterwards: %s"
              % (name, len(problems), len(acked), "; ".join(problems[:5])))
        return len(acked), len(self.cancelled), sum(1 for v in self.final.values() if v[0] == "done")


def run_case(env, name, fault, after=None):
    st = ha_stack(env)
    leader, sync, pids = healthy_start(st)
    load = Load(st)
    t_fault = load.run_fault(lambda: fault(st, leader, sync))
    note, n503 = load.report(t_fault, name)
    env.note(note)
    if after is not None:
        after(st, leader, sync)
    acked, cancelled, done = load.verify(name)
    env.note("%s: %d creations acknowledged, %d cancelled (204), %d seen done: none lost, none changed"
             % (name, acked, cancelled, done))
    check(worker_pids(st) == pids, "%s: a worker was restarted: pids %r, then %r" % (name, pids, worker_pids(st)))
    return st, leader, sync


def wait_leader(st, want, timeout=WINDOW_BOUND_S):
    deadline = time.monotonic() + timeout
    got = ""
    while time.monotonic() < deadline:
        out = st.ha("leader", timeout=10)
        got = out.stdout.strip()
        if out.returncode == 0 and got == want:
            return
        time.sleep(0.2)
    check(False, "the leader is %r %.0f s after the fault, want %r" % (got, timeout, want))


# --- the cases ---------------------------------------------------------------------

@test
def failover_a_leader_postmaster_kill9_promotes_the_sync_standby_nothing_acknowledged_lost(env):
    def fault(st, leader, sync):
        pid = int(st.ha_out("pid", leader))
        os.kill(pid, signal.SIGKILL)

    def after(st, leader, sync):
        wait_leader(st, sync)

    run_case(env, "kill -9 of the leader's postmaster", fault, after)


@test
def failover_b_patronictl_switchover_nothing_acknowledged_lost(env):
    def fault(st, leader, sync):
        out = st.ha("patronictl", "switchover", "--leader", leader, "--candidate", sync, "--force", timeout=60)
        check(out.returncode == 0, "patronictl switchover: %s%s" % (out.stdout, out.stderr))

    def after(st, leader, sync):
        wait_leader(st, sync)

    run_case(env, "patronictl switchover", fault, after)


@test
def failover_c_sync_standby_killed_the_primary_goes_on_alone_without_hanging(env):
    state = {}

    def fault(st, leader, sync):
        # The whole node: its Patroni first, or it would start PostgreSQL again at once.
        with open(os.path.join(st.ha_dir(), "patroni-%s.pid" % sync)) as f:
            os.kill(int(f.read().strip()), signal.SIGKILL)
        os.kill(int(st.ha_out("pid", sync)), signal.SIGKILL)

    def after(st, leader, sync):
        # Still the leader, now alone: no synchronous standby named.
        wait_leader(st, leader, timeout=5)
        port = st.ha_out("url").split("port=")[1].split()[0].split(",")[int(leader[1:]) - 1]
        out = subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/psql", "-h",
                              os.path.join(st.ha_dir(), leader, "sock"), "-p", port, "-d", "postgres", "-qAtc",
                              "SHOW synchronous_standby_names"], capture_output=True, text=True, timeout=20)
        state["names"] = out.stdout.strip()
        check(out.returncode == 0 and out.stdout.strip() == "",
              "the primary alone still names a synchronous standby: %r %s" % (out.stdout, out.stderr))
        # The node comes back (ha-cluster.sh start starts what is not running) as the sync standby.
        st.ha_out("start", timeout=150)

    run_case(env, "the sync standby's node killed", fault, after)
    env.note("while the standby was down the primary had synchronous_standby_names = %r (asynchronous)"
             % state.get("names"))


@test
def failover_stack_stops_leaving_no_etcd_patroni_or_postgres(env):
    st = _shared["stack"]
    if st is None:
        st = ha_stack(env)
    ha_dir = st.ha_dir()
    t0 = time.monotonic()
    st.stop()
    _shared["stack"] = None
    took = time.monotonic() - t0
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % pid)
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if cwd == ha_dir or cwd.startswith(ha_dir + "/") or ha_dir in cmd:
            left.append("%s %s" % (pid, cmd[:120]))
    check(not left, "processes left after the stack stopped: %s" % left)
    env.note("stack with its Patroni cluster stopped in %.1f s; nothing left" % took)
