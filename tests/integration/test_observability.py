"""What the operator endpoints promise, on the shared stack: /healthz counters
and version, /metrics checked by promtool and by exact deltas, the /jobs
listing's pages and filters, and request ids through nginx's and the worker's logs.

/healthz and /metrics describe the worker that answers. On several workers
(PostgreSQL) nginx sends each request to another, so the counts here are
read from every worker's own socket and summed: one worker or three, the
sums must tell the same story. The one thing that differs by design, a
worker's memory holding finished answers it read from the database
(jobs.held), is in docs/contract.md."""

import datetime
import math
import os
import re
import shutil
import subprocess
import time
import urllib.parse

from harness import (LOOPBACK, MAX_SECONDS, MIN_SECONDS, RFC3339_UTC_RE, Client, check, check_problem,
                     create_noting_worker, each_worker, fcgi, health_response, json_ctype, poll_until_done,
                     problem_errors, request, wait_cancel_seen, worker_healths)
from registry import test
from test_api import start_survey


# --- helpers -----------------------------------------------------------------

def operator(st):
    """A keep-alive client from loopback; one address, so the tests here stay
    well under nginx's 50 r/s read zone."""
    return Client(st, src=LOOPBACK)


def get_ok(client, path):
    r = client.request("GET", path)
    check(r.status == 200, "want 200: " + r.describe())
    return r


def health(client):
    r = health_response(client)
    json_ctype(r)
    return r.json()


def in_flight(jobs):
    return jobs["queued"] + jobs["running"]


def summed_jobs(st):
    """/healthz jobs{queued,running,held} of every worker, summed."""
    total = {"queued": 0, "running": 0, "held": 0}
    for h in worker_healths(st):
        for k in total:
            total[k] += h["jobs"][k]
    return total


def wait_idle(st, timeout=MAX_SECONDS + 3):
    """Waits until no worker has a survey queued or running, so counts taken
    next change only by what the caller does. Returns the summed jobs."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = summed_jobs(st)
        if in_flight(jobs) == 0:
            return jobs
        check(time.monotonic() < deadline, "surveys still in flight after %.0f s: %r" % (timeout, jobs))
        time.sleep(0.05)


def create_jobs(st, animal, count):
    """Starts count surveys over one connection; ids oldest first."""
    c = Client(st)
    try:
        return [start_survey(c, animal, method="POST") for _ in range(count)]
    finally:
        c.close()


def finish_jobs(st, ids):
    c = Client(st)
    for job_id in ids:
        final, _ = poll_until_done(c, job_id, MAX_SECONDS + 5)
        check(final.status == 200, "want 200 when done: " + final.describe())
    c.close()


def process_start_time(pid):
    """Unix time the process started, from /proc (boot time + start ticks)."""
    with open("/proc/stat") as f:
        btime = int(re.search(r"^btime (\d+)$", f.read(), re.M).group(1))
    with open("/proc/%d/stat" % pid) as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def logfmt(line):
    """key=value pairs of a logfmt line (the worker's and nginx's format);
    quoted values are unescaped."""
    out = {}
    for key, quoted, bare in re.findall(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', line):
        out[key] = re.sub(r"\\(.)", r"\1", quoted) if quoted else bare
    return out


# --- /healthz ----------------------------------------------------------------

def version_file(env):
    with open(os.path.join(env.repo, "VERSION")) as f:
        return f.read().strip()


def check_health_body(st, n, h, version):
    """Worker n's /healthz body: its fields, backend, name and version."""
    check(set(h) == {"status", "version", "uptime_seconds", "jobs", "store", "backend", "worker"}
          and set(h["jobs"]) == {"queued", "running", "held"},
          "/healthz fields %r, want status, version, uptime_seconds, jobs{queued,running,held}, store, backend, worker"
          % h)
    check(h["backend"] == st.backend, "/healthz backend %r, want %s" % (h["backend"], st.backend))
    name, pid = st.worker_name(n), st.worker_pid(n)
    if name is None:
        check(h["worker"].rsplit(":", 1)[-1] == str(pid), "/healthz worker %r, want host:pid by default" % h["worker"])
    else:
        check(h["worker"] == name, "/healthz worker %r, want %r (run-stack.sh's --worker-name)" % (h["worker"], name))
    check(h["status"] == "ok" and h["store"] == "ok", "healthy stack but /healthz %r" % h)
    check(h["version"] == version, "version: /healthz %r, VERSION file %r" % (h["version"], version))
    # Uptime counts from the worker's start, not from the request or nginx.
    age = time.time() - process_start_time(pid)
    check(abs(h["uptime_seconds"] - age) < 2.0,
          "uptime_seconds %r, but worker %d (pid %d) is %.1f s old" % (h["uptime_seconds"], n, pid, age))


@test
def observability_healthz_counts_and_version(env):
    st = env.main
    op = operator(st)
    idle = wait_idle(st)
    want = version_file(env)
    cli = subprocess.run([env.bin, "--version"], capture_output=True, text=True, timeout=5).stdout.split()
    check(cli[-1:] == [want], "version: VERSION file %r, --version %r" % (want, cli))
    first = worker_healths(st)
    for n, h in zip(st.worker_numbers(), first):
        check_health_body(st, n, h, want)
    through = health(op)  # through nginx: one of them, whichever it is
    check(through["worker"] in {h["worker"] for h in first}, "/healthz through nginx names %r, the workers %r"
          % (through["worker"], [h["worker"] for h in first]))

    ids = create_jobs(st, "hippos", 4)
    busy = summed_jobs(st)  # surveys last >= MIN_SECONDS, far longer than 4 creations
    check(in_flight(busy) == 4 and busy["held"] == idle["held"] + 4,
          "after 4 creations on an idle stack: /healthz jobs (all workers) %r, before %r" % (busy, idle))
    finish_jobs(st, ids)
    done = wait_idle(st, timeout=2)
    # Finished surveys stay held until their TTL by the worker that ran them,
    # and by any other that has read one since (docs/contract.md).
    check(idle["held"] + 4 <= done["held"] <= idle["held"] + 4 * st.workers,
          "finished surveys must stay held until their TTL: before %r, after %r (%d worker(s))"
          % (idle, done, st.workers))
    last = worker_healths(st)
    for n, before, after in zip(st.worker_numbers(), first, last):
        check(after["uptime_seconds"] > before["uptime_seconds"],
              "worker %d: uptime_seconds did not grow: %r, %r" % (n, before["uptime_seconds"], after["uptime_seconds"]))
    env.note("jobs on %d worker(s) %r -> %r -> %r" % (st.workers, idle, busy, done))


# --- /metrics ----------------------------------------------------------------

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")


class Scrape:
    """One /metrics answer, parsed: TYPE per family and every sample."""

    def __init__(self, resp):
        self.resp = resp
        self.text = resp.body.decode("utf-8")
        self.types, self.samples = {}, []
        for line in self.text.split("\n"):
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(None, 3)
                self.types[name] = kind
            elif line and not line.startswith("#"):
                m = SAMPLE_RE.match(line)
                check(m, "unparsable metrics line %r" % line)
                labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
                self.samples.append((m.group(1), labels, float(m.group(3))))

    def value(self, name, **labels):
        """The sample's value, 0 if absent (counters start unrendered)."""
        return sum(v for n, l, v in self.samples if n == name and all(l.get(k) == x for k, x in labels.items()))


def scrape(client):
    return Scrape(get_ok(client, "/metrics"))


class Scrapes:
    """Every worker's /metrics, read from its socket; value() is the sum."""

    def __init__(self, st):
        answers = each_worker(st, "GET", "/metrics")
        for a in answers:
            check(a.status == 200, "want 200: " + a.describe())
        self.parts = [Scrape(a) for a in answers]

    def value(self, name, **labels):
        return sum(p.value(name, **labels) for p in self.parts)


def find_promtool(env):
    for path in (os.path.join(env.repo, "build", "tools", "promtool"),
                 os.path.join(env.build, "tools", "promtool"), shutil.which("promtool")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def histogram_errors(s, name):
    """Why family `name` is not a well-formed histogram in scrape s."""
    errs, series = [], {}
    for n, labels, v in s.samples:
        if n in (name + "_bucket", name + "_sum", name + "_count"):
            key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            series.setdefault(key, {"buckets": []})
            if n.endswith("_bucket"):
                series[key]["buckets"].append((float(labels["le"]), v))
            else:
                series[key][n[len(name) + 1:]] = v
    if not series:
        return ["%s: no _bucket/_sum/_count samples" % name]
    for key, h in series.items():
        les = [le for le, _ in h["buckets"]]
        counts = [c for _, c in h["buckets"]]
        if not les or les[-1] != math.inf or les != sorted(les):
            errs.append("%s%s: bucket bounds %r, want ascending up to +Inf" % (name, dict(key), les))
        if counts != sorted(counts):
            errs.append("%s%s: bucket counts not cumulative %r" % (name, dict(key), counts))
        if "count" not in h or "sum" not in h or (counts and counts[-1] != h["count"]):
            errs.append("%s%s: _count %r / _sum %r, +Inf bucket %r"
                        % (name, dict(key), h.get("count"), h.get("sum"), counts[-1:]))
    return errs


# The families the issue names, with their types (and a label each must carry).
FAMILIES = [
    ("zookeeper_http_requests_total", "counter", {"route", "status"}),
    ("zookeeper_http_request_duration_seconds", "histogram", {"route"}),
    ("zookeeper_jobs_created_total", "counter", set()),
    ("zookeeper_jobs_completed_total", "counter", set()),
    ("zookeeper_jobs_cancelled_total", "counter", set()),
    ("zookeeper_jobs_expired_total", "counter", set()),
    ("zookeeper_jobs", "gauge", {"state"}),
    ("zookeeper_survey_duration_seconds", "histogram", set()),
    ("zookeeper_pool_queue_depth", "gauge", set()),
    ("zookeeper_pool_busy_threads", "gauge", set()),
    ("process_start_time_seconds", "gauge", set()),
]


def family_errors(s):
    errs = []
    for name, kind, labels in FAMILIES:
        if s.types.get(name) != kind:
            errs.append("%s: TYPE %r, want %s" % (name, s.types.get(name), kind))
            continue
        if kind == "histogram":
            errs += histogram_errors(s, name)
            continue
        present = [l for n, l, _ in s.samples if n == name]
        if not present or any(not labels <= set(l) for l in present):
            errs.append("%s: samples %r, each with labels %s" % (name, present, sorted(labels)))
    return errs


def traffic(st, job_ids):
    """Requests whose counts the scrapes around it must show exactly. The
    cancel goes to the worker after the one that created the survey (the
    same one when there is one): a creator that hears of a cancel only from
    the database, as it does whenever nginx sends the cancel elsewhere."""
    for _ in range(5):
        check(request(st, "GET", "/animals").status == 200, "GET /animals failed")
    for _ in range(2):
        check_problem(request(st, "GET", "/animals/dodos"), 404)
    first, creator = create_noting_worker(st, st, "crocodiles")
    job_ids += [first] + create_jobs(st, "crocodiles", 2)
    for job_id in job_ids:
        check(request(st, "GET", "/query/" + job_id).status == 202, "a fresh survey is not pending")
    r = fcgi(st.socket_path(creator % st.workers + 1), "DELETE", "/query/" + first)
    check(r.status == 204, "cancel: " + r.describe())
    # Every worker has heard of it (within the cancel feed's bound,
    # docs/contract.md) before the counts are read: /jobs is not counted here.
    wait_cancel_seen(st, first, time.monotonic())


def check_exposition(env, s):
    """Media type, promtool's verdict, and the families with their types."""
    promtool = find_promtool(env)
    check(promtool, "promtool not found in %s/build/tools nor on PATH: run deploy/install-deps.sh "
          "(it unpacks Debian's prometheus package there)" % env.repo)
    ctype = s.resp.header("Content-Type") or ""
    params = [p.strip() for p in ctype.split(";")]
    check(params[0] == "text/plain" and "version=0.0.4" in params,
          "Content-Type %r, want text/plain; version=0.0.4" % ctype)
    lint = subprocess.run([promtool, "check", "metrics"], input=s.resp.body, capture_output=True, timeout=20)
    check(lint.returncode == 0, "promtool check metrics exited %d:\n%s" % (
        lint.returncode, (lint.stdout + lint.stderr).decode("utf-8", "replace")[:2000]))
    errs = family_errors(s)
    check(not errs, "metric families:\n" + "\n".join(errs))
    return promtool


def check_traffic_counted(before, after, workers):
    """Exactly traffic()'s requests, and the first scrapes (one per worker),
    between the two."""
    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)
    requests = "zookeeper_http_requests_total"
    got = {"animals 200": delta(requests, route="animals", status="200"),
           "animals durations": delta("zookeeper_http_request_duration_seconds_count", route="animals"),
           "animal 404": delta(requests, route="animal", status="404"),
           "animal 202": delta(requests, route="animal", status="202"),
           "query, any status": delta(requests, route="query"),
           "metrics 200": delta(requests, route="metrics", status="200"),
           "created": delta("zookeeper_jobs_created_total"),
           "cancelled": delta("zookeeper_jobs_cancelled_total"),
           "in flight": sum(after.value("zookeeper_jobs", state=s) for s in ("queued", "running"))}
    want = {"animals 200": 5, "animals durations": 5, "animal 404": 2, "animal 202": 3, "query, any status": 4,
            "metrics 200": workers, "created": 3, "cancelled": 1, "in flight": 2}
    wrong = sorted(k for k in want if got[k] != want[k])
    return ["between two scrapes (all workers): %s" % ", ".join("%s %r, want %r" % (k, got[k], want[k]) for k in wrong)
            ] if wrong else []


def check_completions(before, done, count):
    completed = done.value("zookeeper_jobs_completed_total") - before.value("zookeeper_jobs_completed_total")
    timed = (done.value("zookeeper_survey_duration_seconds_count")
             - before.value("zookeeper_survey_duration_seconds_count"))
    secs = (done.value("zookeeper_survey_duration_seconds_sum")
            - before.value("zookeeper_survey_duration_seconds_sum"))
    low, high = count * MIN_SECONDS - 0.01, count * (MAX_SECONDS + 0.3)
    if completed == timed == count and low <= secs <= high:
        return []
    return ["after %d surveys finished (and one cancelled): completed +%d, survey durations +%d totalling %.3f s "
            "(want %.1f..%.1f)" % (count, completed, timed, secs, low, high)]


@test
def observability_metrics_promtool_and_exact_deltas(env):
    st = env.main
    wait_idle(st)  # completions counted below are then only this test's
    before = Scrapes(st)
    ids = []
    traffic(st, ids)
    after = Scrapes(st)
    for part in after.parts:
        promtool = check_exposition(env, part)
    fails = check_traffic_counted(before, after, st.workers)
    check_exposition(env, scrape(operator(st)))  # and through nginx
    finish_jobs(st, ids[1:])  # ids[0] was cancelled
    wait_idle(st)  # every worker has seen the end of every survey
    fails += check_completions(before, Scrapes(st), len(ids) - 1)
    check(not fails, "\n".join(fails))
    for n, part in zip(st.worker_numbers(), after.parts):
        started = part.value("process_start_time_seconds")
        proc = process_start_time(st.worker_pid(n))
        check(abs(started - proc) < 2.0, "worker %d: process_start_time_seconds %.3f, /proc says %.3f"
              % (n, started, proc))
    env.note("%s: ok on %d worker(s); %d families" % (os.path.relpath(promtool, env.repo), st.workers,
                                                       len(after.parts[0].types)))


@test
def observability_metrics_store_write_latency_and_batch_size(env):
    # The issue names these; the store's group commit is otherwise invisible.
    for worker, s in zip(env.main.worker_numbers(), Scrapes(env.main).parts):
        store = {n: t for n, t in s.types.items() if n.startswith("zookeeper_store_")}
        latency = [n for n, t in store.items() if t == "histogram" and n.endswith("_seconds")]
        batch = [n for n, t in store.items() if t == "histogram" and "batch" in n]
        check(latency and batch, "worker %d: /metrics has no store write latency histogram (zookeeper_store_*_seconds) "
              "and/or no batch size histogram (zookeeper_store_*batch*): store families are %r" % (worker, store))
        errs = [e for n in latency + batch for e in histogram_errors(s, n)]
        check(not errs, "\n".join(errs))


# --- /jobs -------------------------------------------------------------------

def job_page(client, path):
    r = get_ok(client, path)
    json_ctype(r)
    page = r.json()
    check(isinstance(page, dict) and set(page) == {"jobs", "next"}, "want {jobs, next}: " + r.describe())
    return page


def walk(client, first):
    """Follows `next` from the first page; returns the pages."""
    pages, path = [], first
    while path is not None:
        check(len(pages) < 1000, "more than 1000 pages from %s" % first)
        pages.append(job_page(client, path))
        path = pages[-1]["next"]
    return pages


def ids_of(pages):
    return [j["id"] for p in pages for j in p["jobs"]]


def check_next_link(page, query, limit):
    """`next` keeps the filters and continues after the page's last job."""
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(page["next"]).query)
    want = dict(urllib.parse.parse_qs(query), cursor=[page["jobs"][-1]["id"]])
    check(page["next"].startswith("/jobs?") and q == want,
          "next %r, want the query %r" % (page["next"], want))
    check(len(page["jobs"]) == limit, "a page with a next link holds %d jobs, want limit %d"
          % (len(page["jobs"]), limit))


def check_paging(op, query, reference):
    """Pages of about a fifth of the listing, walked by `next`, must be the
    reference listing exactly: no job twice, none left out."""
    limit = min(500, max(2, math.ceil(len(reference) / 5)))
    pages = walk(op, "/jobs?%s&limit=%d" % (query, limit))
    for p in pages[:-1]:
        check_next_link(p, "%s&limit=%d" % (query, limit), limit)
    check(ids_of(pages) == reference, "limit=%d pages give %d jobs (%d distinct), the single listing %d; "
          "missing %s, extra %s" % (limit, len(ids_of(pages)), len(set(ids_of(pages))), len(reference),
                                    sorted(set(reference) - set(ids_of(pages)))[:3],
                                    sorted(set(ids_of(pages)) - set(reference))[:3]))
    if len(reference) > 500:
        return len(pages), limit  # the edge cases below need limit = all of them
    # A last page exactly full has no next; one short of it has.
    exact = job_page(op, "/jobs?%s&limit=%d" % (query, len(reference)))
    check(exact["next"] is None, "limit = all %d jobs, yet next %r" % (len(reference), exact["next"]))
    short = walk(op, "/jobs?%s&limit=%d" % (query, len(reference) - 1))
    check([len(p["jobs"]) for p in short] == [len(reference) - 1, 1],
          "limit = all but one: page sizes %r" % [len(p["jobs"]) for p in short])
    return len(pages), limit


def check_state_filters(op, query, jobs):
    """Each state filter lists only that state, and every job already
    finished in `jobs` (finished states never change) under its state."""
    for state in ("queued", "running", "done", "cancelled"):
        listed = [j for p in walk(op, "/jobs?%s&state=%s&limit=500" % (query, state)) for j in p["jobs"]]
        wrong = [(j["id"], j["state"]) for j in listed if j["state"] != state]
        check(not wrong, "state=%s lists %r" % (state, wrong[:3]))
        if state in ("done", "cancelled"):
            missing = {j["id"] for j in jobs if j["state"] == state} - {j["id"] for j in listed}
            check(not missing, "state=%s leaves out %s jobs %s" % (state, state, sorted(missing)[:3]))


def check_newest_first(jobs, mine):
    """Ids (UUIDv7, time-ordered) strictly descending, creation times not
    ascending, and mine (oldest first) in reverse."""
    ids = [j["id"] for j in jobs]
    check(ids == sorted(set(ids), reverse=True), "not newest first (ids descending, no repeats): %r" % ids[:10])
    created = [datetime.datetime.fromisoformat(j["created"].replace("Z", "+00:00")) for j in jobs]
    check(created == sorted(created, reverse=True), "created times not descending: %r"
          % [j["created"] for j in jobs][:10])
    check([i for i in ids if i in mine] == mine[::-1],
          "my surveys in the listing %r, want newest first %r" % ([i for i in ids if i in mine], mine[::-1]))


@test
def observability_jobs_listing_pages_and_filters(env):
    op = operator(env.main)
    mine = create_jobs(env.main, "alpacas", 7)
    others = create_jobs(env.main, "aardvarks", 2)
    newest = job_page(op, "/jobs?limit=1")
    check([j["id"] for j in newest["jobs"]] == others[-1:], "limit=1 without filters: %r, want the newest "
          "job %s" % (ids_of([newest]), others[-1]))
    fresh_done = set(ids_of(walk(op, "/jobs?animal=alpacas&state=done&limit=500"))) & set(mine)
    check(not fresh_done, "surveys of >= %.1f s listed as done at once: %s" % (MIN_SECONDS, fresh_done))
    check(request(env.main, "DELETE", "/query/" + mine[2]).status == 204, "cancel failed")
    finish_jobs(env.main, mine[:2] + mine[3:])

    jobs = [j for p in walk(op, "/jobs?animal=alpacas&limit=500") for j in p["jobs"]]
    reference = [j["id"] for j in jobs]
    check(all(j["animal"] == "alpacas" for j in jobs) and not set(others) & set(reference),
          "animal=alpacas lists other animals: %r" % sorted({j["animal"] for j in jobs}))
    check_newest_first(jobs, mine)
    states = {j["id"]: j["state"] for j in jobs}
    check(states[mine[2]] == "cancelled" and all(states[i] == "done" for i in mine[:2] + mine[3:]),
          "states in the listing %r" % {i: states[i] for i in mine})

    pages, limit = check_paging(op, "animal=alpacas", reference)
    check_state_filters(op, "animal=alpacas", jobs)
    check(job_page(op, "/jobs?animal=dodos") == {"jobs": [], "next": None}, "animal=dodos is not an empty page")
    env.note("%d alpacas jobs in %d pages of %d" % (len(reference), pages, limit))


BAD_PARAMETERS = [("limit=0", "limit"), ("limit=abc", "limit"), ("limit=501", "limit"), ("limit=-1", "limit"),
                  ("limit=", "limit"), ("limit=2.5", "limit"), ("limit=99999999999999999999999", "limit"),
                  ("state=bogus", "state"), ("state=DONE", "state"), ("state=", "state"),
                  ("cursor=not-a-uuid", "cursor"), ("cursor=", "cursor"), ("frobnicate=1", "frobnicate"),
                  ("animal=bisons&limit=5&sort=asc", "sort"), ("cursor=%zz", None)]


UNSTORABLE = ["animal=%FF", "animal=%C3%28", "animal=bisons%00", "animal=%ED%A0%80", "state=%FF", "cursor=%FF",
              "limit=%FF", "%FF=1", "animal=%FF&state=done&limit=3"]


@test
def observability_jobs_listing_bad_parameters(env):
    op = operator(env.main)
    fails = []
    for query, names in BAD_PARAMETERS:
        r = op.request("GET", "/jobs?" + query)
        try:
            check_problem(r, 400)
            body = r.json()
            check(body["type"] == "/problems/bad-parameter",
                  "type %r, want /problems/bad-parameter" % body["type"])
            check(names is None or names in body["detail"], "detail %r does not name %r" % (body["detail"], names))
        except AssertionError as e:
            fails.append("GET /jobs?%s: %s" % (query, e))
    for query in ("limit=1", "limit=500", "state=done&animal=bisons&limit=3"):
        r = op.request("GET", "/jobs?" + query)
        if r.status != 200:
            fails.append("valid GET /jobs?%s: %s" % (query, r.describe()))
    # Bytes no store can hold (not UTF-8, NUL) in any parameter: bad input
    # is a 4xx problem or an empty page, never a 5xx, whatever the store.
    for query in UNSTORABLE:
        r = op.request("GET", "/jobs?" + query)
        empty = r.status == 200 and r.json() == {"jobs": [], "next": None}
        if not (empty or (400 <= r.status < 500 and not problem_errors(r))):
            fails.append("GET /jobs?%s: want a 4xx problem or an empty page: %s" % (query, r.describe()))
    check(not fails, "\n".join(fails))


# --- request ids in both logs ------------------------------------------------

def log_line(read, request_id, timeout=2.0):
    """The line of read()'s text carrying id=request_id (logs are written
    after the answer, so it may take a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in read().split("\n") if logfmt(l).get("id") == request_id]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def access_log(st):
    with open(os.path.join(st.dir, "logs", "access.log"), encoding="utf-8", errors="replace") as f:
        return f.read()


def both_logs_errors(st, r):
    """Why the worker's and nginx's lines for answer r do not tell the same
    story (id, method, path, status) with the timings an operator needs."""
    rid = r.header("X-Request-Id")
    if not rid:
        return ["no X-Request-Id: " + r.describe()]
    worker = log_line(st.log_text, rid)
    nginx = log_line(lambda: access_log(st), rid)
    if len(worker) != 1 or len(nginx) != 1:
        return ["id %s: %d worker lines, %d access log lines" % (rid, len(worker), len(nginx))]
    w, a = logfmt(worker[0]), logfmt(nginx[0])
    errs = []
    want = {"event": "request", "method": r.method, "path": r.path, "status": str(r.status)}
    if {k: w.get(k) for k in want} != want or not RFC3339_UTC_RE.match(w.get("ts", "")):
        errs.append("worker line %r, want %r and an RFC 3339 ts" % (worker[0], want))
    want = {"method": r.method, "uri": r.path, "status": str(r.status), "ustatus": str(r.status)}
    if {k: a.get(k) for k in want} != want:
        errs.append("access line %r, want %r" % (nginx[0], want))
    ms = re.compile(r"^\d+\.\d{3}$")
    if not (ms.match(a.get("rt", "")) and ms.match(a.get("urt", "")) and re.match(r"^\d+$", w.get("dur_us", ""))):
        return errs + ["rt %r, urt %r (seconds.millis), dur_us %r (integer)"
                       % (a.get("rt"), a.get("urt"), w.get("dur_us"))]
    # nginx's clock has millisecond steps: the worker's time fits inside the
    # upstream time, which fits inside the request time, to within one step.
    dur, urt, rt = int(w["dur_us"]) / 1e6, float(a["urt"]), float(a["rt"])
    if not dur <= urt + 0.0015 or not urt <= rt + 0.0015:
        errs.append("dur_us %s > urt %s or urt > rt %s: %s | %s"
                    % (w["dur_us"], a["urt"], a["rt"], worker[0], nginx[0]))
    return errs


@test
def observability_request_id_in_access_and_worker_logs(env):
    st = env.main
    c = Client(st)
    created = c.request("POST", "/animals/kangaroos")
    check(created.status == 202, "want 202: " + created.describe())
    job_id = created.json()
    answers = [created, c.request("GET", "/query/" + job_id), c.request("DELETE", "/query/" + job_id),
               c.request("GET", "/animals/dodos"), c.request("GET", "/jobs/" + job_id),
               operator(st).request("GET", "/jobs?animal=kangaroos&limit=2")]
    check([r.status for r in answers] == [202, 202, 204, 404, 200, 200],
          "statuses: %s" % "; ".join(r.describe() for r in answers))
    errs = [e for r in answers for e in both_logs_errors(st, r)]
    check(not errs, "\n".join(errs))

    # An answer nginx writes itself: logged by nginx alone, with no upstream.
    own = c.request("PUT", "/animals")
    rid = own.header("X-Request-Id")
    nginx = log_line(lambda: access_log(st), rid) if rid else []
    check(own.status == 405 and len(nginx) == 1, "PUT /animals: %s; access log lines %r" % (own.describe(), nginx))
    fields = logfmt(nginx[0])
    check(fields.get("status") == "405" and fields.get("urt") == "-" and fields.get("ustatus") == "-",
          "nginx's own 405 logged as %r" % nginx[0])
    check(not log_line(st.log_text, rid, timeout=0.2), "the worker logged a request nginx answered itself")
    # error_page turns the method into GET for its internal redirect; the
    # access log must still say what the client sent.
    check(fields.get("method") == "PUT",
          "PUT /animals is logged with method=%r: %s" % (fields.get("method"), nginx[0]))
