"""The database fault suite (issue 18): PostgreSQL mode survives its database.

Each test runs a cluster stack (run-stack.sh --store postgresql --workers N,
the stack's own throwaway PostgreSQL cluster with durable settings, nginx
over HTTPS in front) under creation, poll, cancel and waiting-poll load from
several clients through nginx (fault_load.Load), with every worker's
/healthz asked on its socket four times a second (fault_load.HealthWatch),
and puts the database through one fault:

- stopped for 15 s while idle (pg_ctl -m immediate), then load while it is
  still down, then started again;
- every PostgreSQL process frozen (SIGSTOP) for 20 s under load, then SIGCONT;
- the postmaster killed with kill -9 under load, then the cluster started;
- the workers' connections terminated (pg_terminate_backend) under load;
- SIGTERM to a worker holding waiting polls while the database is down;
  run-stack.sh starts it again during the outage;
- a worker started while the database is down: run-stack.sh's restart of a
  worker stopped during the outage, under load through nginx; and a worker
  started apart on an empty database of the same cluster.

What each asserts (fault_load's checks; all violations are reported at once):
- every answer comes within statement_timeout_ms + 1 s (the config's value),
  with a status its request allows; while the database does not answer a
  creation is 503 application/problem+json with Retry-After, never 202,
  never nginx's 502/504, never a hang (clients wait longer than the bound and
  than nginx's 10 s before they call it one);
- /healthz is 503 on every worker while the database is down (from when a
  worker can know: Params.detect) and 200 again within the recovery bound;
- once the database is back every worker acknowledges a creation within
  reconnect_interval_ms + 2 s, and no worker was restarted (same pids);
- nothing acknowledged is lost and no answer changes its mind: afterwards
  every acknowledged survey answers 200 with one sentence, or 410, on every
  worker, as it answered before (a 204 cancel stays 410, a sentence stays);
- the log: per worker, one event=store_unavailable and one
  event=store_available per outage, at most one store_still_unavailable
  per 10 s (+1), no more warn/error lines than those plus LOG_SLACK (the
  access log's request lines aside), none repeated more often than the
  reminders may be (a line per attempt);
- (SIGTERM) the worker ends within 2 s and every waiting poll it held gets an
  answer (through nginx: not a 502);
- (a worker started during the outage) it starts and stays up, one process
  throughout: /healthz 503, a creation 503 problem+json with Retry-After
  (never 202), GET /animals 200; nginx passes it POSTs again, and none gets
  a 502; once the database is back its /healthz is 200 and it acknowledges a
  creation within the recovery bound, with no restart; its log has one
  store_unavailable and one store_available. On an empty database it
  creates the schema then (a store_migrated line per version, after its
  store_unavailable; the jobs table and zookeeper_schema's version are
  there), and its survey runs to the end, stored in that database.

Bounds are derived from the [store] values each test writes: the kill -9
test sets statement_timeout_ms 3000, reconnect_interval_ms 500 and
connect_timeout_s 3; the others leave the defaults (5000 / 1000 / 5).
Figures (answer times during and after each fault, /healthz flips, recovery
times, log lines) are printed under each result.
"""

import json
import os
import signal
import threading
import time

import cluster
import fault_load as fl
import fcgi_client
import harness
from harness import check
import registry
from registry import test

registry.module_backends(__name__, only='postgresql',
                         why="the database's own faults: stopped, frozen, killed, its connections dropped, "
                             "a worker started while it is down")

# Survey length: short enough that surveys finish (and are verified) within
# a test, long enough that cancels and waits meet running ones.
MIN_S, MAX_S = 2, 4
RESCUE_AFTER_MS, SWEEP_INTERVAL_MS = 2000, 500   # the defaults, written out: bounds derive from them
# The answer bound: statement_timeout_ms + this (issue 18).
ANSWER_MARGIN_S = 1.0
# Once the database is back: reconnect_interval_ms + this.
RECOVERY_MARGIN_S = 2.0
# /healthz may still say 200 this long after the database stopped answering:
# a worker learns of it at its next round trip: at once under load, within a
# sweep when idle; a frozen server only by a statement's time-out. Plus
# scheduling on 2 shared cores.
SCHEDULING_SLACK_S = 1.0
# warn/error lines a worker may write in an outage beyond its transitions and
# reminders: the failure that revealed it (a commit, a read, a sweep) may be
# named once in its own words before the store_unavailable line.
LOG_SLACK = 3
# After the last creation every survey is past its deadline and, if its
# completion failed with the database, rescued by a sweep.
SETTLE_SLACK_S = 1.5


class Params:
    """The [store] timing a test writes, and the bounds derived from it."""

    def __init__(self, statement_timeout_ms=5000, reconnect_interval_ms=1000, connect_timeout_s=5, explicit=False):
        self.statement_timeout_ms = statement_timeout_ms
        self.reconnect_interval_ms = reconnect_interval_ms
        self.connect_timeout_s = connect_timeout_s
        self.explicit = explicit  # False: the keys are left out, so the worker's defaults apply

    def extra(self):
        text = "rescue_after_ms = %d\nsweep_interval_ms = %d\n" % (RESCUE_AFTER_MS, SWEEP_INTERVAL_MS)
        if self.explicit:
            text += ("statement_timeout_ms = %d\nreconnect_interval_ms = %d\nconnect_timeout_s = %d\n"
                     % (self.statement_timeout_ms, self.reconnect_interval_ms, self.connect_timeout_s))
        return text

    @property
    def answer_bound(self):
        return self.statement_timeout_ms / 1000.0 + ANSWER_MARGIN_S

    @property
    def recovery_bound(self):
        return self.reconnect_interval_ms / 1000.0 + RECOVERY_MARGIN_S

    def detect(self, frozen):
        """Seconds after the database stopped answering until /healthz must say so."""
        wait = self.statement_timeout_ms / 1000.0 if frozen else 0.0
        return wait + SWEEP_INTERVAL_MS / 1000.0 + SCHEDULING_SLACK_S

    def describe(self):
        return ("statement_timeout_ms %d, reconnect_interval_ms %d, connect_timeout_s %d (%s): answers within %.1f s, "
                "creations back within %.1f s" % (self.statement_timeout_ms, self.reconnect_interval_ms,
                                                  self.connect_timeout_s, "set" if self.explicit else "defaults",
                                                  self.answer_bound, self.recovery_bound))


DEFAULTS = Params()
# One test sets every key (and a shorter connect timeout, so the connect wait
# stays within the statement bound): the bounds follow the config.
SHORT = Params(statement_timeout_ms=3000, reconnect_interval_ms=500, connect_timeout_s=3, explicit=True)


class Run:
    """One fault test's stack, record, load and watch."""

    def __init__(self, env, name, workers, params, min_s=MIN_S, max_s=MAX_S):
        self.env, self.params, self.max_s = env, params, max_s
        self.st = cluster.cluster(env, name, workers=workers, min_s=min_s, max_s=max_s, extra=params.extra(),
                                  tag_logs=True)
        self.workers = {cluster.worker_name(n): s for n, s in enumerate(cluster.sockets(self.st), 1)}
        self.pids = cluster.worker_pids(self.st)
        self.rec = fl.Record()
        self.watch = fl.HealthWatch(self.rec, self.workers, params.answer_bound).start()
        self.load = None
        self.log_from = None

    def start_load(self, **kw):
        spec = dict(creators=3, pollers=2, cancellers=1, waiters=1)
        spec.update(kw)
        self.load = fl.Load(self.st, self.rec, self.params.answer_bound, **spec).start()

    def stop_load(self):
        if self.load:
            self.load.stop()
            self.load = None

    def mark_fault(self):
        self.log_from = cluster.log_offset(self.st)
        return self.rec.mark("fault")

    def recover(self, t_back, workers=None):
        """Probes creations on each worker from t_back; returns {worker: s}."""
        self.rec.mark("back", t_back)
        return fl.probe_creations(self.rec, workers or self.workers, t_back, self.params.recovery_bound + 3,
                                  self.params.answer_bound)

    def settle(self):
        """Waits until every acknowledged survey is past its deadline and
        any failed completion has been rescued."""
        last = max((a.t1 for a in self.rec.acked.values()), default=time.monotonic())
        wait = last + self.max_s + (RESCUE_AFTER_MS + SWEEP_INTERVAL_MS) / 1000.0 + SETTLE_SLACK_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def close(self):
        for stop in (self.stop_load, self.watch.stop):
            try:
                stop()
            except harness.TestFailure:
                pass
        self.st.stop()


def common_checks(run, t_fault, t_dead, t_restart, t_back, recovered, frozen=False, outages=1, skip_workers=()):
    """Every outcome of issue 18 over one fault; returns the violations.
    t_fault: the fault began; t_dead: from here the database surely did not
    answer; t_restart: from here it may again (pg_ctl start began, SIGCONT);
    t_back: it surely does (the start's round trip returned): the recovery
    bound counts from here. t_restart == t_dead: no outage window."""
    p, rec = run.params, run.rec
    v = []
    v += fl.answer_violations(rec, p.answer_bound)
    if t_restart > t_dead:
        v += fl.outage_violations(rec, t_dead, t_restart)
    watched = [w for w in run.workers if w not in skip_workers]
    v += fl.health_violations(rec, watched, t_dead, t_restart, p.detect(frozen), p.recovery_bound, t_back=t_back)
    v += fl.recovery_violations({w: t for w, t in recovered.items() if w not in skip_workers}, p.recovery_bound)
    now = cluster.worker_pids(run.st)
    v += ["%s restarted: pid %d, now %d" % (cluster.worker_name(n), run.pids[n], now[n])
          for n in run.pids if now[n] != run.pids[n] and cluster.worker_name(n) not in skip_workers]
    states, minds = fl.final_states(rec)
    v += minds
    run.settle()
    after, counts = fl.verify_afterwards(rec, run.workers, states, timeout=p.answer_bound + 2)
    v += after
    outage_s = max(t for t in recovered.values() if t is not None) + t_back - t_fault if any(
        t is not None for t in recovered.values()) else time.monotonic() - t_fault
    events = cluster.log_events(run.st, run.log_from)
    v += fl.log_violations(events, watched, outages, outage_s, LOG_SLACK)
    run.env.note("%s; %d surveys acknowledged (%d done, %d cancelled afterwards)"
                 % (p.describe(), len(rec.acked), counts["done"], counts["cancelled"]))
    run.env.note("during the fault: %s" % fl.timing_summary(rec, t_fault, t_back))
    run.env.note("after it: %s" % fl.timing_summary(rec, t_back, time.monotonic()))
    run.env.note("creations acknowledged again after: %s" % ", ".join(
        "%s %s" % (w, "never" if t is None else "%.2f s" % t) for w, t in sorted(recovered.items())))
    run.env.note("log lines per worker during the fault: %s" % "; ".join(
        "%s %s" % (w, log_tally(events, w)) for w in run.workers))
    run.env.note("store lines after the fault (back at %+.2f s): %s" % (t_back - t_fault, "; ".join(
        "%s: %s" % (w, fl.log_timeline(events, rec, t_fault, w)) for w in run.workers)))
    return v


def log_tally(events, worker):
    """'request x12, store_unavailable x1' for a worker's warn/error and store lines."""
    tally = {}
    for e in events:
        if e.get("worker") == worker and (e.get("level") in ("warn", "error")
                                          or e.get("event", "").startswith("store_")):
            tally[e.get("event")] = tally.get(e.get("event"), 0) + 1
    return ", ".join("%s x%d" % kv for kv in sorted(tally.items())) or "none"


def health_flips(rec, workers, since):
    """Seconds from `since` to each worker's first 503 /healthz."""
    out = []
    for w in workers:
        first = [a for a in rec.of("health", via=w, start=since) if a.status == 503]
        out.append("%s %s" % (w, "%.2f s" % (first[0].t1 - since) if first else "never"))
    return ", ".join(out)


# --- the faults ------------------------------------------------------------------

STOP_IDLE_S = 15.0      # issue 18: at least 15 s
LOAD_WHILE_DOWN_S = 5.0
FREEZE_S = 20.0         # issue 18: 20 s
KILL_DOWN_S = 8.0       # long enough for the /healthz window after DETECT
WARM_S = 3.0            # load before the fault: surveys held, running and done
TAIL_S = 3.0            # load after the recovery


@test
def db_stopped_15s_idle_then_loaded_answers_503_fast_and_recovers_losing_nothing(env):
    run = Run(env, "db-stop-idle", workers=3, params=DEFAULTS)
    try:
        run.start_load()
        time.sleep(WARM_S)
        run.stop_load()                       # idle from here
        time.sleep(0.5)
        t_fault = run.mark_fault()
        cluster.pg_stop_immediate(run.st)
        t_dead = time.monotonic()
        time.sleep(STOP_IDLE_S)
        run.start_load()                      # load while it is still down
        time.sleep(LOAD_WHILE_DOWN_S)
        t_restart = time.monotonic()
        cluster.pg_start(run.st)              # returns once a round trip succeeds
        t_back = time.monotonic()
        recovered = run.recover(t_back)
        time.sleep(TAIL_S)
        run.stop_load()
        run.watch.stop()
        env.note("database down %.1f s (%.0f s idle, then loaded), pg-cluster.sh start took %.1f s; "
                 "/healthz 503 after: %s" % (t_restart - t_fault, STOP_IDLE_S, t_back - t_restart,
                                            health_flips(run.rec, run.workers, t_dead)))
        fl.check_all(common_checks(run, t_fault, t_dead, t_restart, t_back, recovered))
    finally:
        run.close()


@test
def db_frozen_20s_under_load_answers_within_the_bound_and_recovers_losing_nothing(env):
    run = Run(env, "db-freeze", workers=3, params=DEFAULTS)
    frozen = []
    try:
        run.start_load()
        time.sleep(WARM_S)
        t_fault = run.mark_fault()
        frozen = cluster.pg_freeze(run.st)
        t_dead = time.monotonic()             # every process stopped: nothing commits from here
        n_frozen = len(frozen)
        time.sleep(FREEZE_S)
        cluster.pg_thaw(frozen)
        frozen = []
        t_back = time.monotonic()
        recovered = run.recover(t_back)
        time.sleep(TAIL_S)
        run.stop_load()
        run.watch.stop()
        env.note("%d PostgreSQL processes frozen for %.1f s; /healthz 503 after: %s"
                 % (n_frozen, t_back - t_dead, health_flips(run.rec, run.workers, t_dead)))
        fl.check_all(common_checks(run, t_fault, t_dead, t_back, t_back, recovered, frozen=True))
    finally:
        cluster.pg_thaw(frozen)               # never leave a cluster stopped
        run.close()


@test
def db_postmaster_kill9_under_load_answers_503_and_recovers_losing_nothing(env):
    run = Run(env, "db-kill9", workers=3, params=SHORT)
    try:
        run.start_load()
        time.sleep(WARM_S)
        t_fault = run.mark_fault()
        pm = cluster.pg_kill9_postmaster(run.st)   # returns once its backends are gone too
        t_dead = time.monotonic()
        time.sleep(max(0.0, KILL_DOWN_S - (t_dead - t_fault)))
        t_restart = time.monotonic()
        cluster.pg_start(run.st)                   # crash recovery, then a round trip
        t_back = time.monotonic()
        recovered = run.recover(t_back)
        time.sleep(TAIL_S)
        run.stop_load()
        run.watch.stop()
        env.note("postmaster %d killed; its backends gone after %.2f s; down %.1f s; pg-cluster.sh start took %.1f s; "
                 "/healthz 503 after: %s" % (pm, t_dead - t_fault, t_restart - t_fault, t_back - t_restart,
                                            health_flips(run.rec, run.workers, t_fault)))
        fl.check_all(common_checks(run, t_fault, t_dead, t_restart, t_back, recovered))
    finally:
        run.close()


TERMINATE_ROUNDS = 2
TERMINATE_GAP_S = 4.0


@test
def db_connections_terminated_under_load_answers_and_reconnects_losing_nothing(env):
    run = Run(env, "db-terminate", workers=2, params=DEFAULTS)
    try:
        run.start_load()
        time.sleep(WARM_S)
        t_fault = run.mark_fault()
        killed = []
        recovered = {}
        for i in range(TERMINATE_ROUNDS):
            check(cluster.worker_backends(run.st), "no connection with application_name=%s to terminate"
                  % cluster.APPLICATION_NAME)
            killed.append(cluster.terminate_worker_backends(run.st))
            t_back = time.monotonic()
            got = run.recover(t_back)
            for w, t in got.items():   # the worst round counts
                recovered[w] = None if t is None or (w in recovered and recovered[w] is None) else max(
                    t, recovered.get(w) or 0.0)
            time.sleep(TERMINATE_GAP_S)
        run.stop_load()
        run.watch.stop()
        env.note("connections terminated per round: %r" % killed)
        # The database never went away: no window in which /healthz must be
        # 503. A worker may ride a round out unseen (it reconnects before
        # anything fails) or log it as an outage; one whose /healthz said
        # 503 was unavailable and must have said so in its log, once per
        # round at most, each closed by store_available.
        outages = {w: (1 if any(a.status == 503 for a in run.rec.of("health", via=w, start=t_fault)) else 0,
                       TERMINATE_ROUNDS) for w in run.workers}
        v = common_checks(run, t_fault, t_fault, t_fault, t_back, recovered, outages=outages)
        fl.check_all(v)
    finally:
        run.close()


# --- a worker started while the database is down ---------------------------------
#
# It happens two ways: run-stack.sh (systemd alike) starts a stopped worker of
# several again after RESPAWN_PAUSE_S, whatever the database's state; an
# operator starts one more, perhaps on a database nobody has used yet. The
# worker starts degraded: it serves at once, 503 where it needs the
# database, and takes its store (creating the schema in an empty database)
# once the database answers, without a restart.

RESPAWN_PAUSE_S = 1.0   # run-stack.sh's pause before it starts a dead worker again
# A start on 2 busy cores, beyond the first connect (refused at once while the
# database is stopped; connect_timeout_s at worst).
START_SLACK_S = 4.0
# nginx skips a worker whose socket refused it for fail_timeout (2 s,
# upstream.conf.in), then passes it its share of the load again.
NGINX_BACK_WITHIN_S = 2.0 + 6.0
# The database stays down at least this long after such a worker first
# answers: several of its reconnect attempts fail (one per
# reconnect_interval_ms), and it stays up, and quiet, through them.
DOWN_AFTER_START_S = 3.0


def respawn_bound(p):
    """Seconds from a worker's end until run-stack.sh's new process answers."""
    return RESPAWN_PAUSE_S + p.connect_timeout_s + START_SLACK_S


def await_started(st, proc, name, sock, deadline, bound):
    """Waits until a worker started with spawn_extra_worker answers /healthz
    on its socket. Returns (the answer, monotonic time it came); fails if it
    exits first (naming its status and last lines) or by `deadline`."""
    while True:
        if proc.poll() is not None:
            raise harness.TestFailure("%s (pid %d) exited with status %d before it answered; its last lines:\n%s"
                                      % (name, proc.pid, proc.returncode, cluster.last_lines(st, 0, name)))
        try:
            return harness.fcgi(sock, "GET", "/healthz", timeout=bound + 2), time.monotonic()
        except (OSError, EOFError, fcgi_client.FcgiError, ValueError):
            pass
        check(time.monotonic() < deadline, "%s (pid %d) does not answer on %s; its last lines:\n%s"
              % (name, proc.pid, sock, cluster.last_lines(st, 0, name)))
        time.sleep(0.05)


def await_health(sock, status, deadline, bound):
    """The monotonic time /healthz on sock first answered `status`, asking
    until `deadline` (once at least); None if it did not."""
    while True:
        try:
            if harness.fcgi(sock, "GET", "/healthz", timeout=bound + 2).status == status:
                return time.monotonic()
        except (OSError, EOFError, fcgi_client.FcgiError, ValueError):
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def degraded_violations(name, sock, bound):
    """What a worker without its database answers on its socket: /healthz
    503 saying "unavailable"; a creation 503 problem+json with a Retry-After
    of whole seconds >= 1 (never 202); GET /animals 200, the config's list
    (it needs no database)."""
    v = []
    timeout = bound + 2
    try:
        h = harness.fcgi(sock, "GET", "/healthz", timeout)
        if h.status != 503 or (h.json() or {}).get("status") != "unavailable":
            v.append("%s without its database: %s, want 503 \"unavailable\"" % (name, h.describe()))
        c = harness.fcgi(sock, "POST", "/animals/koalas", timeout)
        errs = harness.problem_errors(c, 503)
        retry = c.header("Retry-After")
        if not (retry or "").isdigit() or int(retry) < 1:
            errs.append("Retry-After %r, want whole seconds >= 1" % retry)
        if errs:
            v.append("%s without its database, a creation: %s: %s" % (name, c.describe(), "; ".join(errs)))
        a = harness.fcgi(sock, "GET", "/animals", timeout)
        if a.status != 200 or a.json() != harness.ANIMALS:
            v.append("%s without its database: %s, want 200 and the configured animals" % (name, a.describe()))
    except (OSError, EOFError, fcgi_client.FcgiError, ValueError) as e:
        v.append("%s without its database: no answer on its socket: %s: %s" % (name, type(e).__name__, e))
    return v


def request_tally(events):
    """'POST 503 x4, GET 200 x2' for access log lines."""
    tally = {}
    for e in events:
        key = "%s %s" % (e.get("method"), e.get("status"))
        tally[key] = tally.get(key, 0) + 1
    return ", ".join("%s x%d" % kv for kv in sorted(tally.items())) or "none"


SIGTERM_BOUND_S = 2.0   # the worker's contract: a clean stop within 2 s
PARKED = 6              # waiting polls parked on the victim's socket
PARKED_NGINX = 6        # and through nginx (some land on the victim)
WAIT_S = 10


@test
def db_down_sigterm_ends_a_worker_within_2s_answering_its_waiting_polls(env):
    p = DEFAULTS
    # run-stack.sh starts the stopped victim again after its usual pause,
    # while the database is still down: the new process serves degraded
    # (503), and nginx may pass it requests meanwhile (never a 502).
    run = Run(env, "db-down-sigterm", workers=2, params=p, min_s=12, max_s=14)
    victim, survivor = cluster.worker_name(1), cluster.worker_name(2)
    wait_timeout = WAIT_S + p.answer_bound + 2
    try:
        # Surveys held by the victim (running, in its memory), outlasting the waits.
        held = []
        for _ in range(PARKED + PARKED_NGINX):
            a = fl.ask_fcgi(run.rec, "create", run.workers[victim], victim, "POST", "/animals/koalas",
                            timeout=p.answer_bound + 2)
            check(a.status == 202, "creation on the victim: " + a.describe())
            held.append(a.job)
        run.start_load(creators=2, pollers=2, cancellers=0, waiters=0)
        parked = {}

        def park(i, job):
            path = "/query/%s?wait=%d" % (job, WAIT_S)
            if i < PARKED:
                parked[i] = fl.ask_fcgi(run.rec, "wait", run.workers[victim], victim, "GET", path, job,
                                        timeout=wait_timeout)
            else:
                c = fl.HttpClient(run.st, wait_timeout)
                parked[i] = c.ask(run.rec, "wait", "GET", path, job)
                c.close()

        # Parked while the database answers; then it goes down under load.
        threads = [threading.Thread(target=park, args=(i, j), daemon=True) for i, j in enumerate(held)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        early = [a for i, a in parked.items() if i < PARKED]
        check(not early, "waiting polls on the victim answered before the fault (want them parked): %s"
              % "; ".join(a.describe(run.rec.origin) for a in early))
        t_fault = run.mark_fault()
        cluster.pg_stop_immediate(run.st)
        t_dead = time.monotonic()
        time.sleep(3.0)                           # load meets the outage; the waits are 4 s old
        pid = run.pids[1]
        log_term = cluster.log_offset(run.st)
        run.watch.drop(victim)
        pending = [i for i in range(len(held)) if i not in parked]
        t_term = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        ended = harness.wait_dead(pid, SIGTERM_BOUND_S + 8)
        t_end = time.monotonic()
        for t in threads:
            t.join(wait_timeout + 2)
        v = []
        if not ended or t_end - t_term > SIGTERM_BOUND_S:
            v.append("%s (pid %d) %s after SIGTERM (bound %.0f s)"
                     % (victim, pid, "still alive %.1f s" % (t_end - t_term) if not ended
                        else "exited after %.2f s" % (t_end - t_term), SIGTERM_BOUND_S))
        for i in range(len(held)):
            a = parked.get(i)
            if a is None:
                v.append("waiting poll %d never returned" % i)
            elif a.status is None or a.status in (502, 504):
                v.append("waiting poll %d (%s) not answered by the stopping worker: %s"
                         % (i, "its socket" if i < PARKED else "nginx", a.describe(run.rec.origin)))
            elif i < PARKED and i in pending and a.t1 - t_term > SIGTERM_BOUND_S:
                v.append("waiting poll %d answered %.2f s after the SIGTERM: %s"
                         % (i, a.t1 - t_term, a.describe(run.rec.origin)))
        # run-stack.sh starts the victim again RESPAWN_PAUSE_S after its end:
        # the database stays down until the new process answers.
        new_pid, first, _ = cluster.await_respawn(run.st, 1, pid, log_term, t_end + respawn_bound(p),
                                                  p.answer_bound + 2)
        if first.status != 503:
            v.append("%s (pid %d, started again during the outage), its first answer: %s, want /healthz 503"
                     % (victim, new_pid, first.describe()))
        t_restart = time.monotonic()
        cluster.pg_start(run.st)
        t_back = time.monotonic()
        recovered = run.recover(t_back, {survivor: run.workers[survivor]})
        # The final reads ask every worker, the new victim too.
        healthy = await_health(run.workers[victim], 200, t_back + p.recovery_bound, p.answer_bound)
        if healthy is None:
            v.append("%s (pid %d, started again during the outage) not healthy within %.1f s of the database's "
                     "return" % (victim, new_pid, p.recovery_bound))
        env.note("run-stack.sh started %s again during the outage: pid %d, first /healthz %d; 200 %s after the "
                 "database's return" % (victim, new_pid, first.status,
                                        "never" if healthy is None else "%.2f s" % (healthy - t_back)))
        time.sleep(TAIL_S)
        run.stop_load()
        run.watch.stop()
        env.note("SIGTERM %.1f s into the outage with %d of %d waits on %s's socket still parked: it exited after "
                 "%.2f s; the waits (status, s after the SIGTERM): %s"
                 % (t_term - t_dead, len([i for i in pending if i < PARKED]), PARKED, victim, t_end - t_term,
                    ", ".join("%s %+.2f" % (a.status, a.t1 - t_term) for _, a in sorted(parked.items()))))
        # The victim's answers before its end and after its restart are
        # judged like any others; its health, recovery, pid and log are not
        # (it was stopped on purpose).
        run.pids = {2: run.pids[2]}
        v += common_checks(run, t_fault, t_dead, t_restart, t_back, recovered, skip_workers=(victim,))
        fl.check_all(v)
    finally:
        run.close()


# Creations, polls and cancels through nginx; no waiting polls (the load
# pauses during the test, and a wait can hold it up to WAIT_S).
LIGHT_LOAD = dict(creators=2, pollers=2, cancellers=1, waiters=0)


@test
def db_down_worker_started_during_the_outage_answers_503_and_recovers_without_a_restart(env):
    p = DEFAULTS
    run = Run(env, "db-down-respawn", workers=2, params=p)
    victim, survivor = cluster.worker_name(1), cluster.worker_name(2)
    sock = run.workers[victim]
    try:
        run.start_load(**LIGHT_LOAD)
        time.sleep(WARM_S)
        t_fault = run.mark_fault()
        cluster.pg_stop_immediate(run.st)
        t_dead = time.monotonic()
        # Stopped once it has seen the outage; run-stack.sh starts it again
        # RESPAWN_PAUSE_S after its end, while the database is still down.
        check(await_health(sock, 503, t_dead + p.detect(False), p.answer_bound) is not None,
              "%s: /healthz not 503 within %.1f s of the database's stop" % (victim, p.detect(False)))
        # The load pauses while the old process stops: how a worker answers
        # what nginx passes it at its SIGTERM is the SIGTERM test's subject.
        # It resumes before the new process starts.
        run.stop_load()
        old = run.pids[1]
        log_term = cluster.log_offset(run.st)
        run.watch.drop(victim)
        t_term = time.monotonic()
        os.kill(old, signal.SIGTERM)
        check(harness.wait_dead(old, SIGTERM_BOUND_S + 8), "%s (pid %d) still alive %.0f s after SIGTERM"
              % (victim, old, SIGTERM_BOUND_S + 8))
        t_end = time.monotonic()
        run.start_load(**LIGHT_LOAD)
        pid, first, t_first = cluster.await_respawn(run.st, 1, old, log_term, t_end + respawn_bound(p),
                                                    p.answer_bound + 2)
        run.watch.add(victim, sock)
        v = []
        if first.status != 503:
            v.append("%s (pid %d, started during the outage), its first answer: %s, want /healthz 503"
                     % (victim, pid, first.describe()))
        v += degraded_violations(victim, sock, p.answer_bound)
        # nginx passes it POSTs again (it did not refuse them: never a 502).
        if not cluster.await_nginx_posts(run.st, victim, log_term, t_first + NGINX_BACK_WITHIN_S):
            v.append("nginx passed no POST to %s within %.0f s of its start during the outage: the load did not "
                     "meet the restarted worker" % (victim, NGINX_BACK_WITHIN_S))
        time.sleep(max(0.0, t_first + DOWN_AFTER_START_S - time.monotonic()))
        t_restart = time.monotonic()
        cluster.pg_start(run.st)
        t_back = time.monotonic()
        recovered = run.recover(t_back)
        time.sleep(TAIL_S)
        run.stop_load()
        run.watch.stop()
        # The restarted worker: up through the outage, 503 on /healthz until
        # the database is back, then healthy and acknowledging creations, as
        # the same process; its log says each once.
        now = cluster.worker_pid(run.st, 1)
        if now != pid or not harness.pid_alive(pid):
            v.append("%s started during the outage as pid %d; now %s" % (
                victim, pid, "pid %d" % now if now != pid else "dead"))
        v += fl.health_violations(run.rec, [victim], t_first, t_restart, 0.0, p.recovery_bound, t_back=t_back)
        v += fl.recovery_violations({victim: recovered[victim]}, p.recovery_bound)
        events = cluster.newest_process_events(cluster.log_events(run.st, log_term), victim)
        outage_s = t_back - t_first + (recovered[victim] or p.recovery_bound)
        v += fl.log_violations(events, [victim], 1, outage_s, LOG_SLACK)
        names = [e.get("event") for e in events]
        back_at = names.index("store_available") if "store_available" in names else len(events)
        healthy = [a for a in run.rec.of("health", via=victim, start=t_back) if a.status == 200]
        env.note("%s (pid %d) ended %.2f s after its SIGTERM, %.1f s into the outage; run-stack.sh started it "
                 "again: pid %d answered /healthz %d %.2f s after that end"
                 % (victim, old, t_end - t_term, t_term - t_dead, pid, first.status, t_first - t_end))
        env.note("nginx passed the new %s, while the database was down: %s; after: %s" % (
            victim, request_tally(cluster.nginx_requests(events[:back_at])),
            request_tally(cluster.nginx_requests(events[back_at:]))))
        env.note("the new %s after the database's return: /healthz 200 after %s, a creation 202 after %s; %s"
                 % (victim, "%.2f s" % (healthy[0].t1 - t_back) if healthy else "never",
                    "never" if recovered[victim] is None else "%.2f s" % recovered[victim],
                    fl.log_timeline(events, run.rec, t_fault, victim)))
        v += common_checks(run, t_fault, t_dead, t_restart, t_back, recovered, skip_workers=(victim,))
        fl.check_all(v)
    finally:
        run.close()


LATE = "late-1"            # a worker started apart from the stack (its own socket; nginx does not know it)
LATE_DB = "zookeeper_late"  # an empty database in the stack's cluster


@test
def db_down_worker_started_on_an_empty_database_creates_the_schema_once_it_answers(env):
    p = DEFAULTS
    run = Run(env, "db-down-empty", workers=1, params=p)
    proc = None
    try:
        cluster.psql(run.st, "CREATE DATABASE %s" % LATE_DB)
        version = cluster.psql(run.st, "SELECT max(version) FROM zookeeper_schema")[0]  # the stack's worker's
        t_fault = run.mark_fault()
        cluster.pg_stop_immediate(run.st)
        proc, sock = cluster.spawn_extra_worker(run.st, LATE, cluster.store_url(run.st, LATE_DB))
        t_spawn = time.monotonic()
        first, t_first = await_started(run.st, proc, LATE, sock, t_spawn + p.connect_timeout_s + START_SLACK_S,
                                       p.answer_bound)
        run.watch.add(LATE, sock)
        v = []
        if first.status != 503:
            v.append("%s (started during the outage), its first answer: %s, want /healthz 503"
                     % (LATE, first.describe()))
        v += degraded_violations(LATE, sock, p.answer_bound)
        time.sleep(max(0.0, t_first + DOWN_AFTER_START_S - time.monotonic()))
        check(proc.poll() is None, "%s (pid %d) exited with status %s during the outage; its last lines:\n%s"
              % (LATE, proc.pid, proc.returncode, cluster.last_lines(run.st, run.log_from, LATE)))
        t_restart = time.monotonic()
        cluster.pg_start(run.st)
        t_back = time.monotonic()
        recovered = fl.probe_creations(run.rec, {LATE: sock}, t_back, p.recovery_bound + 3, p.answer_bound)
        v += fl.recovery_violations(recovered, p.recovery_bound)
        # Its survey runs to the end (a waiting poll answers when it is done),
        # stored in its own database.
        acked = [a for a in run.rec.of("create", via=LATE) if a.status == 202]
        if acked:
            job = acked[0].job
            w = fl.ask_fcgi(run.rec, "wait", sock, LATE, "GET", "/query/%s?wait=%d" % (job, WAIT_S), job,
                            timeout=WAIT_S + p.answer_bound + 2)
            errs = ["want 200"] if w.status != 200 else harness.sentence_errors(json.loads(w.body), "zebras")
            if errs:
                v.append("%s, its survey after the outage: %s: %s"
                         % (LATE, w.describe(run.rec.origin), "; ".join(errs)))
            rows = (cluster.psql(run.st, "SELECT count(*) FROM jobs WHERE id = '%s'" % job, db=LATE_DB),
                    cluster.psql(run.st, "SELECT count(*) FROM jobs WHERE id = '%s'" % job))
            if rows != (["1"], ["0"]):
                v.append("%s's survey %s: rows in %s, zookeeper: %r, want 1, 0" % (LATE, job, LATE_DB, rows))
        schema = (cluster.psql(run.st, "SELECT max(version) FROM zookeeper_schema", db=LATE_DB),
                  cluster.psql(run.st, "SELECT to_regclass('public.jobs') IS NOT NULL", db=LATE_DB))
        if schema != ([version], ["t"]):
            v.append("%s: schema version %r and a jobs table %r, want %s and t" % (LATE_DB, schema[0], schema[1],
                                                                                  version))
        run.watch.stop()
        t_stop = time.monotonic()
        rc = harness.terminate(proc, SIGTERM_BOUND_S + 3)
        t_stopped = time.monotonic()
        if rc != 0:
            v.append("%s: exit status %s after SIGTERM, want 0" % (LATE, rc))
        v += fl.health_violations(run.rec, [LATE], t_first, t_restart, 0.0, p.recovery_bound, t_back=t_back)
        v += fl.answer_violations(run.rec, p.answer_bound)
        # Its log: once unavailable, the migrations (every version, only
        # once the database answered), once available.
        events = [e for e in cluster.log_events(run.st, run.log_from) if e.get("worker") == LATE]
        v += fl.log_violations(events, [LATE], 1, t_back - t_first + (recovered[LATE] or p.recovery_bound), LOG_SLACK)
        names = [e.get("event") for e in events]
        migrated = [e.get("version") for e in events[names.index("store_unavailable") if "store_unavailable" in names
                                                     else len(events):] if e.get("event") == "store_migrated"]
        if migrated != [str(n) for n in range(1, int(version) + 1)]:
            v.append("%s: store_migrated versions %r after store_unavailable, want 1 to %s (its lines: %s)"
                     % (LATE, migrated, version, ", ".join(n for n in names if n != "request")))
        healthy = [a for a in run.rec.of("health", via=LATE, start=t_back) if a.status == 200]
        env.note("%s started during the outage on an empty database: /healthz %d %.2f s after its spawn; "
                 "the database back after %.1f s more" % (LATE, first.status, t_first - t_spawn, t_restart - t_first))
        env.note("after the database's return: /healthz 200 after %s, a creation 202 after %s; %s; "
                 "stopped in %.2f s" % ("%.2f s" % (healthy[0].t1 - t_back) if healthy else "never",
                                        "never" if recovered[LATE] is None else "%.2f s" % recovered[LATE],
                                        fl.log_timeline(events, run.rec, t_fault, LATE), t_stopped - t_stop))
        env.note("its lines: %s" % ", ".join(n for n in names if n != "request"))
        fl.check_all(v)
    finally:
        if proc is not None:
            harness.terminate(proc, 5)
        run.close()
