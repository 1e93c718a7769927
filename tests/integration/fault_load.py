"""Load and invariants for fault tests: what clients and operators see while
a dependency (the database, a disk) fails and comes back.

Generic on purpose (the database faults use it, so can failover tests): it
takes a started harness.Stack and, to ask workers directly, their FastCGI
sockets; it knows nothing about the fault. A test marks when the fault began
and when it was undone, and the checks judge the record against those marks.

- Record: every answer, with when it was asked and answered (monotonic
  clock), what it was (creation, poll, cancel, waiting poll, /healthz), which
  way it went (through nginx, or straight to worker-N's socket), its status,
  Content-Type, Retry-After and body; or the error if no answer came (a
  timeout, a reset). Thread-safe.
- Load: client threads through nginx over HTTPS: creators (POST
  /animals/{a}), pollers (GET /query/{id} of acknowledged surveys), cancellers
  (DELETE /query/{id}) and waiters (GET /query/{id}?wait=S). nginx limits each
  source address (10 creations/s, 50 reads/s, one wait per second per URI):
  every client thread binds its own fresh loopback address (a new one after
  any error) and paces itself under those limits, so a 429 means the limits
  changed, and is a failure like any other unexpected status.
- HealthWatch: asks every worker's /healthz on its socket, as an operator's
  probe would.
- probe_creations: after the fault, creations straight to each worker's
  socket until one is acknowledged: how long each worker took to recover.
- The checks return lists of violations (strings naming the answer), so a
  test reports all of them at once; check_all raises with every one.

Every HTTP and FastCGI client has a timeout above the answer bound (and above
nginx's fastcgi_read_timeout of 10 s, so nginx's 504 is seen as such); an
answer that does not come in time is recorded as an error and counts as a
failure (a hang).

Use (test_db_faults.py is the full example):

    rec = Record()
    watch = HealthWatch(rec, {"worker-1": sock1, "worker-2": sock2}, bound).start()
    load = Load(stack, rec, bound).start()
    ...; t_down = rec.mark("fault"); <the fault>; ...; t_up = rec.mark("back")
    recovered = probe_creations(rec, workers, t_up, limit, bound)
    load.stop(); watch.stop()
    states, minds = final_states(rec)
    check_all(answer_violations(rec, bound) + outage_violations(rec, t_down, t_up)
              + health_violations(rec, workers, t_down, t_up, detect_s, limit)
              + recovery_violations(recovered, limit) + minds
              + verify_afterwards(rec, workers, states)[0])
"""

import calendar
import json
import random
import re
import threading
import time

import fcgi_client
import harness
from harness import check

# Kinds of answer and the statuses each may have while a dependency fails and
# after: a poll or a wait of a survey a worker holds may answer from memory.
# 404 is never allowed: every id asked about was acknowledged (202).
ALLOWED = {
    "create": {202, 503},
    "poll": {200, 202, 410, 503},
    "wait": {200, 202, 410, 503},
    "cancel": {204, 409, 503},
    "health": {200, 503},
}

# Pacing under nginx's per-address limits (zookeeper-http.conf.in).
CREATE_PAUSE_S = 0.15   # < 10 creations/s
POLL_PAUSE_S = 0.05     # < 50 reads/s
CANCEL_PAUSE_S = 0.30
WAIT_PAUSE_S = 0.20     # waits are limited to 1/s per address and URI; each URI differs
HEALTH_INTERVAL_S = 0.25
NGINX_READ_TIMEOUT_S = 10.0  # fastcgi_read_timeout in zookeeper-locations.conf


class Answer:
    __slots__ = ("kind", "via", "method", "path", "job", "t0", "t1", "status", "ctype", "retry_after", "body",
                 "error")

    def __init__(self, kind, via, method, path, job, t0):
        self.kind, self.via, self.method, self.path, self.job, self.t0 = kind, via, method, path, job, t0
        self.t1 = None
        self.status = self.ctype = self.retry_after = self.error = None
        self.body = b""

    @property
    def elapsed(self):
        return self.t1 - self.t0

    def text(self):
        return self.body.decode("utf-8", "replace")

    def describe(self, origin=None):
        at = "" if origin is None else " at +%.2f s" % (self.t0 - origin)
        what = ("no answer: %s" % self.error if self.status is None
                else "%d%s%s %r" % (self.status, " Retry-After: %s" % self.retry_after if self.retry_after else "",
                                    " (%s)" % self.ctype if self.ctype else "", self.text()[:120]))
        return "%s %s via %s%s -> %s after %.2f s" % (self.method, self.path, self.via, at, what, self.elapsed)


class Record:
    """Every answer of one test, and named moments (monotonic seconds)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []
        self.acked = {}       # job id -> the Answer that acknowledged it (202)
        self.marks = {}
        self.origin = time.monotonic()
        self.wall_origin = time.time()  # the same moment on the log's clock

    def mark(self, name, t=None):
        self.marks[name] = time.monotonic() if t is None else t
        return self.marks[name]

    def add(self, a):
        with self.lock:
            self.answers.append(a)
            if a.kind == "create" and a.status == 202:
                try:
                    job = json.loads(a.body)
                except ValueError:
                    return
                a.job = job
                self.acked[job] = a

    def acked_ids(self):
        with self.lock:
            return list(self.acked)

    def of(self, kind=None, via=None, start=None, end=None):
        """Answers of a kind/way asked in [start, end)."""
        with self.lock:
            out = list(self.answers)
        return [a for a in out if (kind is None or a.kind == kind) and (via is None or a.via == via)
                and (start is None or a.t0 >= start) and (end is None or a.t0 < end)]

    def at(self, t):
        return "+%.2f s" % (t - self.origin)


# --- asking -------------------------------------------------------------------

def _header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


class HttpClient:
    """Keep-alive HTTPS through nginx from one fresh loopback address; a new
    connection and address after any error."""

    def __init__(self, st, timeout):
        self.st, self.timeout = st, timeout
        self.c = harness.Client(st, timeout=timeout)

    def ask(self, record, kind, method, path, job=None):
        a = Answer(kind, "nginx", method, path, job, time.monotonic())
        try:
            r = self.c.request(method, path)
            a.status = r.status
            a.ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
            a.retry_after = r.header("Retry-After")
            a.body = r.body
        except (harness.TestFailure, OSError) as e:
            a.error = str(e)[:200]
            self.c.close()
            self.c = harness.Client(self.st, timeout=self.timeout)
        a.t1 = time.monotonic()
        record.add(a)
        return a

    def close(self):
        self.c.close()


def ask_fcgi(record, kind, sock, via, method, path, job=None, timeout=10.0):
    """One request straight to a worker's socket, recorded."""
    a = Answer(kind, via, method, path, job, time.monotonic())
    try:
        s = fcgi_client.connect(sock, timeout)
        try:
            s.sendall(fcgi_client.request_bytes(method, path))
            status, headers, body, _ = fcgi_client.read_answer(s)
        finally:
            s.close()
        a.status, a.body = status, body
        a.ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
        a.retry_after = headers.get("retry-after")
    except (OSError, EOFError, fcgi_client.FcgiError, ValueError) as e:
        a.error = "%s: %s" % (type(e).__name__, e)
    a.t1 = time.monotonic()
    record.add(a)
    return a


# --- load ---------------------------------------------------------------------

class Load:
    """Client threads through nginx until stop(). answer_bound: the longest
    any answer may take (the checks use it too); clients wait longer than it
    and than nginx's own timeout before they count a hang."""

    def __init__(self, st, record, answer_bound, creators=2, pollers=2, cancellers=1, waiters=0, wait_s=10,
                 animals=("koalas", "lions", "pandas", "zebras")):
        self.st, self.record = st, record
        self.timeout = max(answer_bound, NGINX_READ_TIMEOUT_S) + 2.0
        self.wait_s = wait_s
        self.animals = animals
        self.stop_event = threading.Event()
        self.cancel_tried = set()
        self.threads = ([threading.Thread(target=self._run, args=(self._create,)) for _ in range(creators)]
                        + [threading.Thread(target=self._run, args=(self._poll,)) for _ in range(pollers)]
                        + [threading.Thread(target=self._run, args=(self._cancel,)) for _ in range(cancellers)]
                        + [threading.Thread(target=self._run, args=(self._wait,)) for _ in range(waiters)])
        for t in self.threads:
            t.daemon = True

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        """Stops the clients; each finishes the request it is in (bounded by
        its timeout). Returns the names of threads still running (none)."""
        self.stop_event.set()
        deadline = time.monotonic() + self.timeout + self.wait_s + 5
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        check(not stuck, "load threads did not stop: %r" % stuck)

    def _run(self, step):
        rng = random.Random()
        timeout = self.timeout + (self.wait_s if step == self._wait else 0)
        c = HttpClient(self.st, timeout)
        try:
            while not self.stop_event.is_set():
                pause = step(c, rng)
                self.stop_event.wait(pause)
        finally:
            c.close()

    def _pick(self, rng, recent=50):
        ids = self.record.acked_ids()
        if not ids:
            return None
        # Half the time one of the newest (likely running), else any.
        return rng.choice(ids[-recent:] if rng.random() < 0.5 else ids)

    def _create(self, c, rng):
        c.ask(self.record, "create", "POST", "/animals/" + rng.choice(self.animals))
        return CREATE_PAUSE_S

    def _poll(self, c, rng):
        job = self._pick(rng)
        if job is not None:
            c.ask(self.record, "poll", "GET", "/query/" + job, job)
        return POLL_PAUSE_S

    def _cancel(self, c, rng):
        ids = [j for j in self.record.acked_ids()[-30:] if j not in self.cancel_tried]
        if ids:
            job = rng.choice(ids)
            self.cancel_tried.add(job)
            c.ask(self.record, "cancel", "DELETE", "/query/" + job, job)
        return CANCEL_PAUSE_S

    def _wait(self, c, rng):
        job = self._pick(rng, recent=20)
        if job is not None:
            c.ask(self.record, "wait", "GET", "/query/%s?wait=%d" % (job, self.wait_s), job)
        return WAIT_PAUSE_S


class HealthWatch:
    """Asks /healthz on every worker's socket every HEALTH_INTERVAL_S until
    stop(). workers: {name: socket path}; add() watches one more from then
    on (a worker started again, or one started apart from the stack)."""

    def __init__(self, record, workers, answer_bound):
        self.record = record
        self.timeout = answer_bound + 2.0
        self.stop_event = threading.Event()
        self.dropped = {}
        self.threads = []
        self.by_name = {}
        self.started = False
        for name, sock in workers.items():
            self._watch(name, sock)

    def _watch(self, name, sock):
        self.dropped[name] = threading.Event()
        t = threading.Thread(target=self._run, args=(name, sock, self.dropped[name]), daemon=True)
        self.threads.append(t)
        self.by_name[name] = t
        return t

    def add(self, name, sock):
        """Asks `name` on `sock` from now on (a name dropped before may come
        back: a worker started again on its socket)."""
        check(name not in self.by_name or not self.by_name[name].is_alive(), "%s is already watched" % name)
        t = self._watch(name, sock)
        if self.started:
            t.start()

    def drop(self, name):
        """Stops asking one worker (one that is about to be stopped); returns
        once its last /healthz has been answered or has failed."""
        self.dropped[name].set()
        t = self.by_name[name]
        if t.is_alive():
            t.join(self.timeout + 1)

    def start(self):
        self.started = True
        for t in self.threads:
            t.start()
        return self

    def _run(self, name, sock, dropped):
        while not self.stop_event.is_set() and not dropped.is_set():
            ask_fcgi(self.record, "health", sock, name, "GET", "/healthz", timeout=self.timeout)
            self.stop_event.wait(HEALTH_INTERVAL_S)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            if t.is_alive():
                t.join(self.timeout + 5)
        check(not any(t.is_alive() for t in self.threads), "health watch threads did not stop")


def probe_creations(record, workers, since, limit, answer_bound, animal="zebras", pause=0.1):
    """Creations straight to each worker's socket (in parallel) until one is
    acknowledged or `limit` seconds after `since` have passed (plus one
    request's timeout). Returns {worker: seconds from since to its first
    202, or None}."""
    out = {}
    timeout = answer_bound + 2.0

    def run(name, sock):
        while True:
            a = ask_fcgi(record, "create", sock, name, "POST", "/animals/" + animal, timeout=timeout)
            if a.status == 202:
                out[name] = a.t1 - since
                return
            if time.monotonic() - since > limit:
                out[name] = None
                return
            time.sleep(pause)

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in workers.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(limit + timeout + 5)
    return {name: out.get(name) for name in workers}


# --- checks -------------------------------------------------------------------

def _head(items, n=8):
    items = list(items)
    more = "" if len(items) <= n else "\n        ... and %d more" % (len(items) - n)
    return "\n        ".join(items[:n]) + more


def answer_violations(record, bound, wait_s=10, kinds=None):
    """Every answer came, in time, with a status its kind allows; a 503 is
    problem+json with a Retry-After of whole seconds >= 1; never nginx's
    502/504. bound: seconds any answer may take (a waiting poll: wait_s
    more). One violation line per rule, naming the first answers that broke
    it."""
    broken = {}

    def add(rule, a):
        broken.setdefault(rule, []).append(a.describe(record.origin))

    for a in record.of():
        if kinds and a.kind not in kinds:
            continue
        limit = bound + (wait_s if a.kind == "wait" else 0)
        if a.status is None:
            add("no answer (a hang: the client timed out; or a reset)", a)
            continue
        if a.elapsed > limit:
            add("answered after more than %.1f s" % limit, a)
        if a.status in (502, 504):
            add("nginx's %d (the worker did not answer in time or failed)" % a.status, a)
        elif a.status not in ALLOWED[a.kind]:
            add("%s answered %d (allowed: %s)" % (a.kind, a.status, sorted(ALLOWED[a.kind])), a)
        if a.status == 503 and a.kind != "health":  # /healthz's 503 is its own JSON document
            if a.ctype != "application/problem+json":
                add("503 not application/problem+json", a)
            if not (a.retry_after or "").isdigit() or int(a.retry_after) < 1:
                add("503 without a Retry-After of whole seconds >= 1", a)
    return ["%d answer(s): %s:\n        %s" % (len(v), rule, _head(v)) for rule, v in broken.items()]


def outage_violations(record, t_down, t_up):
    """While the database could not commit (requests asked after t_down and
    answered before t_up), no creation is acknowledged; and the load met
    the outage (creations were refused 503 in it)."""
    inside = [a for a in record.of("create", start=t_down) if a.t1 is not None and a.t1 <= t_up]
    lies = [a for a in inside if a.status == 202]
    out = []
    if lies:
        out.append("%d creation(s) acknowledged (202) while the database was down:\n        %s"
                   % (len(lies), _head(a.describe(record.origin) for a in lies)))
    if not any(a.status == 503 for a in inside):
        out.append("no creation was refused 503 during the outage (%d asked: %s): the load did not meet the fault"
                   % (len(inside), sorted({a.status for a in inside}, key=str)))
    return out


def health_violations(record, workers, t_down, t_up, detect_s, recover_s, t_back=None):
    """Per worker: every /healthz asked from t_down + detect_s until t_up
    (the database did not answer in between) is 503, and at least one was
    asked; and one answers 200 within recover_s of t_back (default t_up:
    from when the database surely answers again)."""
    t_back = t_up if t_back is None else t_back
    out = []
    for name in workers:
        mine = record.of("health", via=name)
        inside = [a for a in mine if t_down + detect_s <= a.t0 < t_up]
        bad = [a for a in inside if a.status != 503]
        if not inside and t_up > t_down + detect_s:
            out.append("%s: no /healthz asked between %s and %s" % (name, record.at(t_down + detect_s),
                                                                     record.at(t_up)))
        if bad:
            out.append("%s: /healthz not 503 while the database was down (from %.1f s after the fault):\n        %s"
                       % (name, detect_s, _head(a.describe(record.origin) for a in bad)))
        ok = [a for a in mine if a.t0 >= t_back and a.status == 200]
        if not ok or ok[0].t1 - t_back > recover_s:
            out.append("%s: /healthz not 200 within %.1f s of the fault's end (first 200: %s)"
                       % (name, recover_s, "none" if not ok else "%.2f s after" % (ok[0].t1 - t_back)))
    return out


def recovery_violations(recovered, limit):
    """recovered: probe_creations' result."""
    return ["%s: no creation acknowledged within %.1f s of the fault's end (%s)"
            % (name, limit, "none at all" if t is None else "first after %.2f s" % t)
            for name, t in sorted(recovered.items()) if t is None or t > limit]


def _verdicts(a):
    """What a final answer says about its survey: ('done', sentence or None),
    ('cancelled', None), or None (not final)."""
    if a.status is None:
        return None
    if a.kind in ("poll", "wait") and a.status == 200:
        return ("done", a.text())
    if a.kind in ("poll", "wait") and a.status == 410:
        return ("cancelled", None)
    if a.kind == "cancel" and a.status == 204:
        return ("cancelled", None)
    if a.kind == "cancel" and a.status == 409:
        return ("done", None)
    return None


# A cancel through one worker reaches the others through the database's
# cancel feed within this (docs/cluster.md); through nginx a poll may land on
# another worker than the cancel did.
CANCEL_SEEN_WITHIN_S = 0.5


def final_states(record, cancel_seen_within=CANCEL_SEEN_WITHIN_S):
    """{job: ('done', sentence or None) | ('cancelled', None)} from the
    record's final answers, and the violations: answers that changed their
    mind (done and cancelled, two sentences, a 202 asked after a final
    answer had been given; after a 204 cancel, once the cancel feed's bound
    has passed)."""
    by_job = {}
    for a in record.of():
        if a.job is not None and a.kind in ("poll", "wait", "cancel"):
            by_job.setdefault(a.job, []).append(a)
    states, out = {}, []
    for job, answers in by_job.items():
        finals = [(a, _verdicts(a)) for a in answers if _verdicts(a)]
        kinds = {v[0] for _, v in finals}
        sentences = {v[1] for _, v in finals if v[1] is not None}
        if len(kinds) > 1 or len(sentences) > 1:
            out.append("%s changed its mind:\n        %s" % (job, _head(a.describe(record.origin) for a, _ in finals)))
            continue
        if finals:
            # When each final answer binds every worker: a sentence or a 410
            # at once (the answering worker read it), a 204 once the feed has
            # carried it.
            first_end = min(a.t1 + (cancel_seen_within if a.kind == "cancel" and a.status == 204 else 0.0)
                            for a, _ in finals)
            back = [a for a in answers if a.status == 202 and a.t0 > first_end]
            if back:
                out.append("%s answered 202 after a final answer:\n        %s"
                           % (job, _head(a.describe(record.origin) for a in [finals[0][0]] + back)))
            states[job] = (kinds.pop(), sentences.pop() if sentences else None)
    return states, out


def verify_afterwards(record, workers, states=None, timeout=10.0):
    """Every acknowledged survey, asked on every worker (GET /query/{id} on
    its socket, once every survey's deadline is past): 200 with one sentence
    on every worker or 410 on every worker; never 404, 503, 202; and as the
    record's final answers said (a 204 cancel stays 410, a sentence stays).
    Returns (violations, counts by outcome)."""
    if states is None:
        states, _ = final_states(record)
    ids = record.acked_ids()
    seen = {job: {} for job in ids}
    errors = []
    for name, sock in workers.items():
        conn, failures = None, 0
        for job in ids:
            if failures >= 2:  # a worker that stopped answering: not asked again (bounded time)
                seen[job][name] = (None, "not asked: %s did not answer twice" % name)
                continue
            try:
                if conn is None:
                    conn = fcgi_client.Connection(sock, timeout=timeout)
                status, _, body = conn.request("GET", "/query/" + job)
                seen[job][name] = (status, body.decode("utf-8", "replace"))
                failures = 0
            except (OSError, EOFError, fcgi_client.FcgiError) as e:
                seen[job][name] = (None, "%s: %s" % (type(e).__name__, e))
                failures += 1
                if conn is not None:
                    conn.sock.close()
                conn = None
        if conn is not None:
            conn.close()
    counts = {"done": 0, "cancelled": 0}
    for job in ids:
        answers = seen[job]
        statuses = {s for s, _ in answers.values()}
        view = ", ".join("%s %s %r" % (n, s, b[:60]) for n, (s, b) in sorted(answers.items()))
        if not statuses <= {200, 410} or len(statuses) != 1:
            errors.append("%s: %s" % (job, view))
            continue
        status = statuses.pop()
        bodies = {b for _, b in answers.values()}
        want = states.get(job)
        if status == 200:
            counts["done"] += 1
            if len(bodies) != 1:
                errors.append("%s: different sentences: %s" % (job, view))
            elif want and (want[0] != "done" or (want[1] is not None and want[1] not in bodies)):
                errors.append("%s: was %s %r, now %s" % (job, want[0], want[1], view))
        else:
            counts["cancelled"] += 1
            if want and want[0] != "cancelled":
                errors.append("%s: was %s %r, now %s" % (job, want[0], want[1], view))
    out = []
    if errors:
        out.append("%d of %d acknowledged surveys not answered 200 (one sentence) or 410 on every worker, "
                   "or not as answered before:\n        %s" % (len(errors), len(ids), _head(errors)))
    return out, counts


# Lines that are not about the store: the access log has one line per request
# (its level follows the status: a 503 is a warn), by design.
NOT_STORE_EVENTS = ("request",)


def log_violations(events, workers, outages, outage_s, slack):
    """Per worker, in the log lines written during the fault and recovery:
    as many event=store_unavailable lines as `outages` says (a number, or
    {worker: (least, most)} for faults a worker may ride out unseen), as many
    store_available lines, the first after the first store_unavailable; at
    most one store_still_unavailable per 10 s of outage_s, plus one; and no
    more warn/error lines (besides the access log's) than those plus `slack`."""
    out = []
    allowed_reminders = int(outage_s // 10) + 1
    for name in workers:
        least, most = outages.get(name, (0, 0)) if isinstance(outages, dict) else (outages, outages)
        mine = [e for e in events if e.get("worker") == name]
        names = [e.get("event") for e in mine]
        down, up, again = (names.count("store_unavailable"), names.count("store_available"),
                           names.count("store_still_unavailable"))
        noisy = [e for e in mine if e.get("level") in ("warn", "error") and e.get("event") not in NOT_STORE_EVENTS]
        tally = {}
        for e in noisy:
            tally[e.get("event")] = tally.get(e.get("event"), 0) + 1
        budget = down + again + slack
        if not least <= down <= most:
            out.append("%s: %d event=store_unavailable line(s), want %s" % (
                name, down, least if least == most else "%d to %d" % (least, most)))
        if up != down:
            out.append("%s: %d event=store_available line(s), want %d (one per store_unavailable)" % (name, up, down))
        elif up and names.index("store_available") < names.index("store_unavailable"):
            out.append("%s: store_available logged before store_unavailable" % name)
        if again > allowed_reminders:
            out.append("%s: %d store_still_unavailable reminders in a %.0f s outage (at most %d: one per 10 s, + 1)"
                       % (name, again, outage_s, allowed_reminders))
        # Not a line per attempt: no other warn/error line repeats more often than reminders may.
        repeated = {ev: n for ev, n in tally.items()
                    if ev not in ("store_unavailable", "store_still_unavailable") and n > allowed_reminders}
        if repeated:
            out.append("%s: warn/error lines repeated during a %.0f s outage (a line per attempt; at most %d each): %s"
                       % (name, outage_s, allowed_reminders,
                          ", ".join("%s x%d" % kv for kv in sorted(repeated.items()))))
        if len(noisy) > budget:
            out.append("%s: %d warn/error lines (besides the access log) during the outage, allowed %d "
                       "(store_unavailable + reminders + %d): %s; first: %s"
                       % (name, len(noisy), budget, slack,
                          ", ".join("%s x%d" % kv for kv in sorted(tally.items(), key=lambda kv: -kv[1])),
                          noisy[0]["_line"][:200]))
    return out


def check_all(violations, header=""):
    """Raises with every violation, or returns."""
    violations = [v for v in violations if v]
    check(not violations, (header + "\n" if header else "") + "\n".join("  - " + v for v in violations))


# --- figures -------------------------------------------------------------------

def log_timeline(events, record, since, worker=None):
    """'store_unavailable +0.27 s, store_available +5.31 s' for the store_*
    lines (of one worker), in seconds after the monotonic moment `since`."""
    out = []
    for e in events:
        if not e.get("event", "").startswith("store_") or (worker and e.get("worker") != worker):
            continue
        m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z", e.get("ts", ""))
        if not m:
            continue
        wall = calendar.timegm(tuple(int(g) for g in m.groups()[:6])) + float(m.group(7) or 0)
        out.append("%s %+.2f s" % (e["event"], wall - record.wall_origin - (since - record.origin)))
    return ", ".join(out) or "no store lines"


def timing_summary(record, start, end, kinds=("create", "poll", "cancel", "wait")):
    """'create: 40 (503 x38, 202 x2) max 0.41 s p50 0.01 s; ...' for the
    answers asked in [start, end)."""
    parts = []
    for kind in kinds:
        mine = [a for a in record.of(kind, start=start, end=end) if a.t1 is not None]
        if not mine:
            continue
        tally = {}
        for a in mine:
            key = a.status if a.status is not None else "none"
            tally[key] = tally.get(key, 0) + 1
        times = [a.elapsed for a in mine]
        parts.append("%s %d (%s) max %.2f s p50 %.3f s" % (
            kind, len(mine), ", ".join("%s x%d" % (k, v) for k, v in sorted(tally.items(), key=str)),
            max(times), harness.pct(times, 0.5)))
    return "; ".join(parts) or "no answers"
