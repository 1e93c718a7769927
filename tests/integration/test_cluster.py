"""Several workers on one PostgreSQL store (the cluster), on the real stack:
run-stack.sh with --store postgresql --workers N, a throwaway PostgreSQL
cluster in the stack's prefix (durable settings: fsync and synchronous
commits on), nginx over HTTPS in front.

- consistency: a job created through one worker is seen by every other at
  once, talking to each worker's socket directly and through nginx; a cancel
  through one is seen by the next poll through any other; done never turns
  cancelled;
- kill -9 of one of three workers holding 500 running surveys: every one
  still completes, at most rescue_after_ms + sweep_interval_ms (+ slack)
  after its deadline, through the others (and the restarted one);
- polls through nginx see no 5xx while a worker is killed and restarted;
- each of three workers stopped (SIGTERM) and started again, in turn, under
  creation load through nginx on kept connections: no 502 (nginx does not
  pass a POST it has written to a worker to another), no 504, no hang; every
  creation acknowledged is then on every worker; each stop ends in status 0
  within 2 s;
- a connection URL that does not parse refuses to start with one line
  naming the file and line, exit 2; an unreachable database starts degraded
  (503 + Retry-After, /healthz 503, one store_unavailable line naming it).

The database's own faults (stopped, frozen, killed, connections dropped) are
test_db_faults.py; the helpers shared by the cluster tests are cluster.py.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import fault_load as fl
import fcgi_client
import harness
import registry
from cluster import (await_nginx_posts, await_respawn, cluster, exit_statuses, fcgi, fcgi_json, log_events, log_offset,
                     nginx_posts, sockets, worker_name, worker_pid)
from harness import check, check_problem, config_text, request, rfc3339_seconds
from registry import test

registry.module_backends(__name__, only="postgresql", why="several workers on one PostgreSQL database")

RESCUE_AFTER_MS = 2000
SWEEP_INTERVAL_MS = 500
CLUSTER_TIMING = "rescue_after_ms = %d\nsweep_interval_ms = %d\n" % (RESCUE_AFTER_MS, SWEEP_INTERVAL_MS)
# Scheduling on 2 shared cores and the poll that observes the completion.
LATENESS_SLACK_S = 1.5
# Each polling client stays under nginx's read limit (50/s per address).
POLL_PAUSE_S = 0.03
# A cancel through one worker reaches the others through the database's
# cancel feed (LISTEN/NOTIFY): the contract is 0.5 s (docs/cluster.md).
CANCEL_SEEN_WITHIN_S = 0.5


def first_answer(sock_path, uri, status, within_s):
    """Polls one worker's socket until it answers `status`; the monotonic
    time it did, or None after within_s."""
    deadline = time.monotonic() + within_s
    while True:
        if fcgi(sock_path, "GET", uri).status == status:
            return time.monotonic()
        if time.monotonic() > deadline:
            return None
        time.sleep(0.005)


@test
def cluster_any_worker_answers_the_same(env):
    with cluster(env, "cluster-consistency", workers=3, min_s=2, max_s=3, extra=CLUSTER_TIMING) as st:
        socks = sockets(st, 3)
        names = set()
        for s in socks:
            status, health = fcgi_json(s, "GET", "/healthz")
            check(status == 200 and health["backend"] == "postgresql", "healthz on %s: %r" % (s, health))
            names.add(health["worker"])
        check(len(names) == 3, "three workers, three names: %r" % names)
        # Created through worker 1, seen at once by 2 and 3 and through nginx.
        status, job = fcgi_json(socks[0], "POST", "/animals/bisons")
        check(status == 202, "create through worker 1: %d" % status)
        for s in socks[1:]:
            status, body = fcgi_json(s, "GET", "/query/" + job)
            check(status == 202 and body == "...", "poll of a fresh job through %s: %d %r" % (s, status, body))
        r = request(st, "GET", "/query/" + job)
        check(r.status == 202, r.describe())
        # Cancelled through worker 3: every other says so within the cancel
        # feed's bound (docs/cluster.md), and never changes its mind after.
        status = fcgi(socks[2], "DELETE", "/query/" + job).status
        cancelled_at = time.monotonic()
        check(status == 204, "cancel through worker 3: %d" % status)
        for s in socks[:2]:
            seen = first_answer(s, "/query/" + job, 410, CANCEL_SEEN_WITHIN_S)
            check(seen is not None, "poll after a cancel elsewhere through %s: not 410 within %.1f s"
                  % (s, CANCEL_SEEN_WITHIN_S))
            env.note("cancel through worker 3 seen by %s after %.0f ms"
                     % (os.path.basename(s), 1000 * (seen - cancelled_at)))
        for s in socks:
            status = fcgi(s, "GET", "/query/" + job).status
            check(status == 410, "poll through %s after it saw the cancel: %d" % (s, status))
        check_problem(request(st, "GET", "/query/" + job), 410)
        # Completed on worker 2: the same sentence everywhere; a cancel then is 409 and changes nothing.
        status, done = fcgi_json(socks[1], "POST", "/animals/zebras")
        time.sleep(3.3)
        answers = set()
        for s in socks:
            status, body = fcgi_json(s, "GET", "/query/" + done)
            check(status == 200, "poll of a finished job through %s: %d %r" % (s, status, body))
            answers.add(body)
        check(len(answers) == 1, "one sentence through every worker: %r" % answers)
        status = fcgi(socks[0], "DELETE", "/query/" + done).status
        check(status == 409, "cancel of a done job through worker 1: %d" % status)
        status, body = fcgi_json(socks[2], "GET", "/query/" + done)
        check(status == 200 and body in answers, "still done after the refused cancel: %d %r" % (status, body))
        # The listing is the cluster's: both jobs, whoever made them.
        r = request(st, "GET", "/jobs?limit=10", src=harness.LOOPBACK)
        ids = [j["id"] for j in r.json()["jobs"]]
        check(job in ids and done in ids, "/jobs through nginx lists both: %r" % ids)


def create_many(sock_path, n, animal="koalas"):
    ids = []
    s = fcgi_client.Connection(sock_path, timeout=10)
    try:
        for _ in range(n):
            status, _, body = s.request("POST", "/animals/" + animal)
            check(status == 202, "create: %d %r" % (status, body))
            ids.append(json.loads(body))
    finally:
        s.close()
    return ids


def read_jobs(sock_path, ids):
    out = {}
    s = fcgi_client.Connection(sock_path, timeout=10)
    try:
        for i in ids:
            status, _, body = s.request("GET", "/jobs/" + i)
            out[i] = (status, json.loads(body) if status == 200 else None)
    finally:
        s.close()
    return out


class StallWatch:
    """The longest this test process went unscheduled beyond its tick while
    the sweepers worked: a machine that freezes (a VM's stolen time) freezes
    the sweepers too, so the lateness bound allows what was measured."""

    TICK_S = 0.02

    def __init__(self):
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        last = time.monotonic()
        while not self._stop.wait(self.TICK_S):
            now = time.monotonic()
            self.longest = max(self.longest, now - last - self.TICK_S)
            last = now

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def rescue_passes(st):
    """Each worker's passes that rescued something: worker -> [(ts, count)]."""
    passes = {}
    for e in log_events(st):
        if e.get("event") == "jobs_rescued":
            passes.setdefault(e.get("worker", "?"), []).append((rfc3339_seconds(e["ts"]), int(e["count"])))
    return passes


@test
def cluster_kill9_one_of_three_with_500_in_flight_all_complete_within_the_bound(env):
    with cluster(env, "cluster-kill9", workers=3, min_s=4, max_s=6, extra=CLUSTER_TIMING, tag_logs=True) as st:
        socks = sockets(st, 3)
        ids = create_many(socks[0], 500)
        victim = worker_pid(st, 1)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        check(harness.wait_dead(victim, 5), "worker 1 (pid %d) did not die" % victim)
        bound = (RESCUE_AFTER_MS + SWEEP_INTERVAL_MS) / 1000.0
        # Every survey's deadline is at most max_s after its creation.
        with StallWatch() as stalls:
            time.sleep(max(0.0, 6 + bound + LATENESS_SLACK_S - (time.time() - killed_at)))
        jobs = read_jobs(socks[1], ids)
        states = {}
        late = []
        for i, (status, job) in jobs.items():
            check(status == 200, "job %s after the kill: %d" % (i, status))
            states[job["state"]] = states.get(job["state"], 0) + 1
            if job["state"] == "done":
                late.append(rfc3339_seconds(job["finished"]) - rfc3339_seconds(job["deadline"]))
        check(states.get("done") == 500, "all 500 done after the kill: %r" % states)
        late.sort()
        p99 = late[int(0.99 * (len(late) - 1))]
        worst = late[-1]
        env.note("kill -9 with 500 in flight: completion lag p50 %.3f s, p99 %.3f s, max %.3f s (bound %.1f s + %.1f s slack)"
                 % (late[len(late) // 2], p99, worst, bound, LATENESS_SLACK_S))
        passes = rescue_passes(st)
        times = sorted(t for ps in passes.values() for t, _ in ps)
        gaps = [b - a for a, b in zip(times, times[1:])]
        env.note("rescuing passes: %s; longest gap between two %.3f s; this process's longest stall %.3f s"
                 % (", ".join("%s %d (%d surveys)" % (w, len(ps), sum(n for _, n in ps)) for w, ps in sorted(passes.items())),
                    max(gaps, default=0.0), stalls.longest))
        allowed = bound + LATENESS_SLACK_S + stalls.longest
        check(worst <= allowed, "a survey finished %.3f s late (bound %.1f s, allowed %.3f s)" % (worst, bound, allowed))
        # The same sentence as any other worker would give: through worker 3.
        sample = ids[:20]
        again = read_jobs(socks[2], sample)
        for i in sample:
            check(again[i][1]["result"] == jobs[i][1]["result"], "result of %s differs between workers" % i)


def poll_loop(st, job, stop, answers):
    c = harness.Client(st, timeout=10)
    try:
        while not stop.is_set():
            try:
                r = c.request("GET", "/query/" + job)
                answers.append(r.status)
            except (OSError, harness.TestFailure) as e:
                answers.append("error: %s" % e)
                c.close()
                c = harness.Client(st, timeout=10)
            time.sleep(POLL_PAUSE_S)
    finally:
        c.close()


@test
def cluster_polls_through_nginx_see_no_5xx_while_a_worker_is_killed_and_restarted(env):
    with cluster(env, "cluster-failover", workers=3, min_s=30, max_s=40, extra=CLUSTER_TIMING) as st:
        r = request(st, "POST", "/animals/lions")
        check(r.status == 202, r.describe())
        job = r.json()
        stop = threading.Event()
        answers = []
        threads = [threading.Thread(target=poll_loop, args=(st, job, stop, answers)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        victim = worker_pid(st, 2)
        os.kill(victim, signal.SIGKILL)
        # run-stack.sh starts it again after a second; keep polling across that.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if worker_pid(st, 2) != victim:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(15)
        bad = [a for a in answers if a != 202]
        env.note("%d polls across the kill and restart of worker 2; non-202: %r" % (len(answers), bad[:5]))
        check(len(answers) > 100, "too few polls: %d" % len(answers))
        check(not bad, "polls during the failover answered %d non-202: %r" % (len(bad), bad[:10]))
        check(worker_pid(st, 2) != victim, "worker 2 was not started again")


# --- a worker stopped under load: systemctl restart, a deploy ------------------
#
# nginx never passes a POST to another worker once it has written it to one
# (fastcgi_next_upstream without non_idempotent, kept on purpose): what it
# wrote to a stopping worker, on a kept connection or on one still in the
# listen backlog, that worker must answer, or the client gets a 502 ("recv()
# failed (104: Connection reset by peer)"). A connect the worker refuses (no
# listener) nginx does retry on the next one, POST or not. Each worker is
# stopped while nginx passes it creations, as often as the test's bound
# allows; every stop is a chance for the reset, so one 502 fails the test.

STOPS = 9                  # each of the three workers three times
STOP_CREATORS = 24         # keep-alive HTTPS clients creating through nginx, each ~6/s (under its address's limit)
STOP_POLLERS = 2
SIGTERM_BOUND_S = 2.0      # the worker's contract (docs/contract.md): exit 0 within 2 s
ANSWER_BOUND_S = 6.0       # statement_timeout_ms's default (5 s) + 1 s, as test_db_faults
# run-stack.sh's pause before a start (1 s) and its 0.2 s supervision tick;
# a start on 2 busy cores.
RESPAWN_WITHIN_S = 1.2 + 4.0
# nginx skips a worker that refused a connect or reset a request for
# fail_timeout (2 s, upstream.conf.in; max_fails=1), counted on its
# whole-second clock: up to 3 s. A rolling restart faster than that leaves
# it, for a moment, with every worker marked failed ("no live upstreams":
# 502, whatever the workers do); so the next worker is stopped only once
# this long has passed since the restarted one answered (it refused its last
# connect before that), and nginx has passed that new process POSTs again.
NGINX_FAIL_WINDOW_S = 2.0 + 1.0
# A worker is stopped once nginx has passed its process this many POSTs: it
# is in the rotation, with kept connections.
IN_ROTATION_POSTS = 20
IN_ROTATION_WITHIN_S = NGINX_FAIL_WINDOW_S + 5.0
# Every survey is past its deadline and, if its worker stopped before
# completing it, rescued by another's sweep.
SETTLE_S = 2 + (RESCUE_AFTER_MS + SWEEP_INTERVAL_MS) / 1000.0 + 1.5


class Stop:
    """One SIGTERM to worker n under load, and what came of it (monotonic
    times; `wall` is the SIGTERM's on the log's clock)."""

    def __init__(self, n, pid, posts, log_from):
        self.n, self.name, self.pid, self.posts, self.log_from = n, worker_name(n), pid, posts, log_from
        self.t_term = self.wall = self.exit_after = self.new_pid = self.up_after = None
        self.status = None       # as run-stack.sh reported it
        self.lines = {}          # event=stopping / stopped: seconds after the SIGTERM
        self.failed = 0          # answers that failed (502, 504, none) after it, before the next stop
        self.answered_503 = 0    # and the 503s

    def describe_lines(self):
        return ", ".join("%s %+.3f s" % kv for kv in sorted(self.lines.items(), key=lambda kv: kv[1])) or "no log lines"

    def describe(self):
        return ("%s pid %d (passed %d POSTs): exit %s %.3f s after the SIGTERM (%s); after it %d failed, "
                "%d answered 503; pid %d answered /healthz after %.2f s"
                % (self.name, self.pid, self.posts, self.status, self.exit_after, self.describe_lines(), self.failed,
                   self.answered_503, self.new_pid, self.up_after))


def await_in_rotation(st, n, log_from, since):
    """Waits (until IN_ROTATION_WITHIN_S after the monotonic `since`) until
    nginx has passed IN_ROTATION_POSTS POSTs to worker n's process (its log
    lines after byte `log_from`); fails if it does not."""
    name = worker_name(n)
    check(await_nginx_posts(st, name, log_from, since + IN_ROTATION_WITHIN_S, IN_ROTATION_POSTS),
          "%s (pid %d): nginx passed it %d POSTs in %.0f s, want %d: the load does not reach it"
          % (name, worker_pid(st, n), nginx_posts(st, name, log_from), IN_ROTATION_WITHIN_S, IN_ROTATION_POSTS))


def stop_under_load(st, n, log_from):
    """Once nginx passes worker n's process POSTs (its log lines after byte
    `log_from`), SIGTERM to it; waits for its exit, for the process
    run-stack.sh starts again to answer /healthz and to be back in nginx's
    rotation (NGINX_FAIL_WINDOW_S). Returns the Stop."""
    name, pid = worker_name(n), worker_pid(st, n)
    await_in_rotation(st, n, log_from, time.monotonic())
    stop = Stop(n, pid, nginx_posts(st, name, log_from), log_offset(st))
    stop.t_term, stop.wall = time.monotonic(), time.time()
    os.kill(pid, signal.SIGTERM)
    ended = harness.wait_dead(pid, SIGTERM_BOUND_S + 8)
    stop.exit_after = time.monotonic() - stop.t_term
    check(ended, "%s (pid %d) still alive %.1f s after SIGTERM" % (name, pid, stop.exit_after))
    stop.new_pid, _, t_up = await_respawn(st, n, pid, stop.log_from, time.monotonic() + RESPAWN_WITHIN_S,
                                          ANSWER_BOUND_S + 2)
    stop.up_after = t_up - stop.t_term
    time.sleep(max(0.0, t_up + NGINX_FAIL_WINDOW_S - time.monotonic()))
    await_in_rotation(st, n, stop.log_from, t_up)
    return stop


def read_stop_logs(st, stop):
    """The stopped process's exit status (run-stack.sh's line) and its
    stopping/stopped lines, from the stack log after its SIGTERM."""
    statuses = exit_statuses(st, stop.n, stop.log_from)
    stop.status = statuses[0] if statuses else None
    for e in log_events(st, stop.log_from):
        if e.get("worker") == stop.name and e.get("event") in ("stopping", "stopped") and e["event"] not in stop.lines:
            stop.lines[e["event"]] = rfc3339_seconds(e["ts"]) - stop.wall


def stop_violations(stops):
    out = []
    for s in stops:
        if s.status != 0:
            out.append("%s (pid %d) exited with status %s after SIGTERM, want 0" % (s.name, s.pid, s.status))
        if s.exit_after > SIGTERM_BOUND_S:
            out.append("%s (pid %d) exited %.2f s after SIGTERM, bound %.0f s" % (s.name, s.pid, s.exit_after,
                                                                                 SIGTERM_BOUND_S))
    return out


NGINX_ERROR_RE = re.compile(r'^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[error\] .*?: \*\d+ (.*?), client: .*?'
                            r'request: "(\S+) (\S+) [^"]*"(?:, upstream: "fastcgi://unix:([^"]*?):?")?')


def nginx_upstream_errors(st):
    """nginx's error.log lines about a worker, but for refused connects (it
    tries the next worker then, even with a POST): [(local time in whole
    seconds, error, method, uri, socket file or None)], and how many
    connects were refused."""
    out, refused = [], 0
    try:
        with open(os.path.join(st.dir, "logs", "error.log"), errors="replace") as f:
            for line in f:
                m = NGINX_ERROR_RE.match(line)
                if not m or "upstream" not in m.group(2):
                    continue
                if "(111: Connection refused)" in m.group(2):
                    refused += 1
                    continue
                when = time.mktime(time.strptime(m.group(1), "%Y/%m/%d %H:%M:%S"))  # nginx writes local time
                sock = m.group(5) and os.path.basename(m.group(5))
                out.append((when, m.group(2), m.group(3), m.group(4), sock))
    except OSError:
        pass
    return out, refused


def stop_before(stops, t):
    """The last Stop whose SIGTERM came at or before monotonic t, or None."""
    before = [s for s in stops if s.t_term <= t]
    return before[-1] if before else None


def after_stop(what, a, s):
    if s is None:
        return "%s, before any stop" % what
    return "%s, asked %+.3f s, answered %+.3f s after the SIGTERM of %s (%s)" % (
        what, a.t0 - s.t_term, a.t1 - s.t_term, s.name, s.describe_lines())


def failed_near_stops(rec, stops):
    """Each answer that failed (502, 504, none), placed after the SIGTERM
    before it ('POST /animals/lions -> 502, asked +0.002 s, answered +0.016 s
    after the SIGTERM of worker-1 (stopping -0.000 s, stopped +0.008 s)');
    counted on that Stop, as are its 503s."""
    out = []
    for a in rec.of():
        s = stop_before(stops, a.t1)
        if a.status == 503 and s is not None:
            s.answered_503 += 1
        if a.status is not None and a.status not in (502, 504):
            continue
        if s is not None:
            s.failed += 1
        out.append(after_stop("%s %s -> %s" % (a.method, a.path, a.status if a.status is not None
                                                 else "no answer: " + a.error), a, s))
    return out


def upstream_errors_near_stops(rec, stops, errors):
    """nginx's upstream errors (nginx_upstream_errors), each placed after the
    SIGTERM before the answer it concerns: the answer asked for the same
    method and URI within that second of nginx's clock (a GET it retried on
    another worker is not an error the client sees, but a POST there would
    have been a 502)."""
    out = []
    wall_to_mono = rec.origin - rec.wall_origin
    for when, error, method, uri, sock in errors:
        what = "%s %s on %s: %s" % (method, uri, sock or "?", error)
        near = [a for a in rec.of() if a.method == method and a.path == uri and a.t1 is not None
                and when - 0.5 <= a.t1 - wall_to_mono < when + 1.5]
        if not near:
            out.append("%s (no matching answer)" % what)
            continue
        a = sorted(near, key=lambda b: b.status not in (502, 504, None))[0]
        out.append(after_stop("%s; the client got %s" % (what, a.status if a.status is not None else "no answer"),
                              a, stop_before(stops, a.t1)))
    return out


@test
def cluster_worker_stopped_under_creation_load_hands_nginx_no_502(env):
    with cluster(env, "cluster-stop-under-load", workers=3, min_s=1, max_s=2, extra=CLUSTER_TIMING,
                 tag_logs=True) as st:
        workers = {worker_name(n): s for n, s in enumerate(sockets(st), 1)}
        rec = fl.Record()
        load = fl.Load(st, rec, ANSWER_BOUND_S, creators=STOP_CREATORS, pollers=STOP_POLLERS, cancellers=0)
        stops = []
        since = {n: 0 for n in st.worker_numbers()}  # where each worker's current process's log lines begin
        try:
            load.start()
            for i in range(STOPS):
                n = i % st.workers + 1
                stops.append(stop_under_load(st, n, since[n]))
                since[n] = stops[-1].log_from
        finally:
            load.stop()
        t_load_end = time.monotonic()
        for s in stops:
            read_stop_logs(st, s)
        states, minds = fl.final_states(rec)
        last_ack = max((a.t1 for a in rec.acked.values()), default=t_load_end)
        time.sleep(max(0.0, last_ack + SETTLE_S - time.monotonic()))
        after, counts = fl.verify_afterwards(rec, workers, states, timeout=ANSWER_BOUND_S + 2)
        failed = failed_near_stops(rec, stops)
        errors, refused = nginx_upstream_errors(st)
        answers = rec.of()
        env.note("%d stops under load, each of %d workers in turn: %s" % (len(stops), st.workers, "; ".join(
            "%s %.3f s" % (s.name, s.exit_after) for s in stops)))
        for s in stops:
            env.note("  " + s.describe())
        env.note("%d requests through nginx in %.1f s: %s" % (
            len([a for a in answers if a.via == "nginx"]), t_load_end - rec.origin,
            fl.timing_summary(rec, rec.origin, t_load_end, kinds=("create", "poll"))))
        env.note("502 x%d, 504 x%d, 503 x%d, no answer x%d; %d surveys acknowledged, afterwards on every worker: "
                 "%d done, %d cancelled; nginx retried %d refused connects on the next worker"
                 % (sum(a.status == 502 for a in answers), sum(a.status == 504 for a in answers),
                    sum(a.status == 503 for a in answers), sum(a.status is None for a in answers), len(rec.acked),
                    counts["done"], counts["cancelled"], refused))
        if errors:
            env.note("nginx's upstream errors (but refused connects), the answer each concerns:\n      "
                     + "\n      ".join(upstream_errors_near_stops(rec, stops, errors)[:10]))
        fl.check_all(fl.answer_violations(rec, ANSWER_BOUND_S) + minds + after + stop_violations(stops)
                     + (["the failed answers, placed after the stops:\n        " + "\n        ".join(failed[:10])]
                        if failed else []))


def bare_worker(env, name, url):
    """A worker of its own on a unix socket (no nginx, no run-stack.sh), its
    config's [store] url set to `url`: (config path, url's line, socket
    path, listening socket, environment without ZOOKEEPER_STORE_URL)."""
    d = os.path.join(env.work_dir, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "zookeeper.conf")
    with open(conf, "w") as f:
        f.write(config_text(state_dir=os.path.join(d, "state"), extra="backend = postgresql\nurl = %s\n" % url))
    url_line = open(conf).read().split("\n").index("url = " + url) + 1
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = os.path.join(d, "s.sock")
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(8)
    env_vars = {k: v for k, v in os.environ.items() if k != "ZOOKEEPER_STORE_URL"}
    return conf, url_line, path, listener, env_vars


@test
def cluster_url_that_does_not_parse_refuses_to_start_naming_file_and_line(env):
    conf, url_line, _, listener, env_vars = bare_worker(env, "cluster-bad-url", "host = = nowhere")
    try:
        p = subprocess.run([env.bin, "--config", conf], stdin=listener.fileno(), capture_output=True, text=True,
                           timeout=20, env=env_vars)
    finally:
        listener.close()
    lines = [l for l in p.stderr.split("\n") if l.startswith("zookeeper-fcgi:")]
    check(p.returncode == 2, "exit %d (want 2): %s" % (p.returncode, p.stderr))
    check(len(lines) == 1, "want one line, got: %r" % p.stderr)
    check("%s:%d:" % (conf, url_line) in lines[0] and "bad connection string" in lines[0],
          "the line names %s:%d and the reason: %r" % (conf, url_line, lines[0]))


# Down for now and never reachable look alike at start; a worker restarted
# during an outage must not stay down (systemd does not restart an exit 2),
# so both start degraded. Coming back is test_db_faults' (a worker respawned
# during an outage) and the unit suite's (an empty schema migrated late).
@test
def cluster_unreachable_database_at_start_serves_503_with_retry_after_and_says_why(env):
    conf, _, path, listener, env_vars = bare_worker(env, "cluster-unreachable", "host=/nonexistent-zk dbname=zookeeper")
    err_path = os.path.join(os.path.dirname(conf), "stderr")
    with open(err_path, "w") as err:
        p = subprocess.Popen([env.bin, "--config", conf], stdin=listener.fileno(), stdout=err, stderr=err,
                             env=env_vars)
    listener.close()
    try:
        # The socket listens already: this waits in its backlog until the
        # worker, started or not, takes it (connect_timeout_s bounds a start).
        health = fcgi(path, "GET", "/healthz", timeout=15)
        check(p.poll() is None, "the worker exited %s: %s" % (p.returncode, open(err_path).read()))
        check(health.status == 503 and health.json().get("status") == "unavailable", "GET /healthz: " + health.describe())
        created = fcgi(path, "POST", "/animals/koalas")
        check_problem(created, 503)
        check(created.header("Retry-After"), "a 503 without Retry-After: " + created.describe())
        animals = fcgi(path, "GET", "/animals")
        check(animals.status == 200, "GET /animals while the store is down: " + animals.describe())
    finally:
        p.send_signal(signal.SIGTERM)
        code = p.wait(10)
    said = open(err_path).read()
    down = [l for l in said.split("\n") if "event=store_unavailable" in l]
    check(len(down) == 1 and "host=/nonexistent-zk" in down[0],
          "want one store_unavailable line naming the database, got: %r" % said)
    check(code == 0, "exit %d after SIGTERM (want 0): %s" % (code, said))
    env.note("degraded start: %s; creation %d, Retry-After %s" % (down[0][:160], created.status,
                                                                 created.header("Retry-After")))
