"""Every worker tells the same story (issue 19, item 2).

On PostgreSQL several workers share one database and nginx round-robins
each request to the next one; on SQLite there is one worker. The same test
bodies hold for both:

- requests through nginx land on every worker, never twice in a row on one
  (so the suites run through nginx really exercise every worker);
- one survey read from every worker's own socket gives the same state,
  created, started, deadline, duration and links, and the same progress and
  seconds left to within the time between the reads: while it runs, once it
  is cancelled through another worker (the canceller at once, every other
  within the cancel feed's 0.5 s), and once it is done; through nginx,
  one request after another, the same; the /jobs state filters list it under
  the state every worker gives;
- by the end of the run, every worker of the shared stack has served its
  share of the suites' requests.
"""

import json
import time

import harness
from harness import LOOPBACK, Client, check, create_noting_worker, each_worker, fcgi, request, rfc3339_seconds
from registry import test

# The fields a survey's every reader must agree on exactly, and those that
# move with the clock (compared to within the time between the reads).
SAME = ("id", "animal", "state", "created", "started", "deadline", "finished", "duration_seconds", "result", "links")
SURVEY_SECONDS = 3.0
CLOCK_SLACK = 0.005  # each worker's clock is measured against the database's (docs/cluster.md)


@test
def consistency_requests_through_nginx_land_on_every_worker(env):
    st = env.main
    names = [h["worker"] for h in harness.worker_healths(st)]
    check(len(set(names)) == st.workers, "%d workers, names %r" % (st.workers, names))
    c = Client(st, src=LOOPBACK)  # /healthz is the operators', loopback only
    try:
        seen = []
        for _ in range(3 * st.workers):
            r = c.request("GET", "/healthz")
            check(r.status == 200, "GET /healthz: " + r.describe())
            seen.append(r.json()["worker"])
    finally:
        c.close()
    check(set(seen) == set(names), "one kept connection, %d requests, answered by %r; the workers are %r"
          % (len(seen), sorted(set(seen)), names))
    twice = [i for i in range(1, len(seen)) if seen[i] == seen[i - 1] and st.workers > 1]
    check(not twice, "consecutive requests on one connection landed on one worker (round-robin expected): %r" % seen)
    env.note("%d requests over one connection: %s" % (len(seen), " ".join(seen)))


def jobs_everywhere(st, uuid):
    """GET /jobs/{uuid} from every worker's socket: ([job, ...], seconds
    from the first request to the last answer)."""
    t0 = time.time()
    answers = each_worker(st, "GET", "/jobs/" + uuid)
    for a in answers:
        check(a.status == 200, "GET /jobs: " + a.describe())
    return [a.json() for a in answers], answers[-1].at - t0, answers


def agreement_errors(jobs, spread_s, labels):
    """Why the readers (labels[i] read jobs[i], all within spread_s) disagree."""
    errs = []
    ref = jobs[0]
    for label, job in zip(labels[1:], jobs[1:]):
        for key in SAME:
            if job.get(key) != ref.get(key):
                errs.append("%s: %s %r, %s says %r" % (key, label, job.get(key), labels[0], ref.get(key)))
    duration = max(ref["duration_seconds"], 0.001)
    progress = [j["progress"] for j in jobs]
    if max(progress) - min(progress) > (spread_s + CLOCK_SLACK) / duration + 0.001:
        errs.append("progress %r within %.3f s of each other" % (progress, spread_s))
    left = [j["seconds_left"] for j in jobs]
    if max(left) - min(left) > spread_s + CLOCK_SLACK + 0.001:
        errs.append("seconds_left %r within %.3f s of each other" % (left, spread_s))
    return errs


def check_agreement(st, uuid, state, when):
    """Every worker's socket, then as many requests through nginx on one
    connection (each to the next worker), agree on the survey; returns it."""
    jobs, spread, answers = jobs_everywhere(st, uuid)
    labels = ["worker %d" % n for n in st.worker_numbers()]
    errs = agreement_errors(jobs, spread, labels)
    check(not errs, "%s, read from every worker's socket within %.3f s:\n%s\n%s"
          % (when, spread, "\n".join(errs), "\n".join(a.describe() for a in answers)))
    c = Client(st)
    try:
        t0 = time.time()
        through = [c.request("GET", "/jobs/" + uuid) for _ in st.worker_numbers()]
        spread = time.time() - t0
    finally:
        c.close()
    for r in through:
        check(r.status == 200, "GET /jobs through nginx: " + r.describe())
    errs = agreement_errors([r.json() for r in through], spread, ["answer %d" % i for i in range(1, len(through) + 1)])
    check(not errs, "%s, read %d times through nginx within %.3f s:\n%s\n%s"
          % (when, len(through), spread, "\n".join(errs), "\n".join(r.describe() for r in through)))
    job = jobs[0]
    check(job["state"] == state, "%s: state %r, want %r: %s" % (when, job["state"], state, answers[0].describe()))
    if state != "queued":
        rfc3339_seconds(job["started"], "%s: started" % when, answers[0])
    links = job["links"] if isinstance(job["links"], dict) else {}
    check(("cancel" in links and links["cancel"] is not None) == (state in ("queued", "running")),
          "%s: links %r for a %s survey" % (when, job["links"], state))
    return job


def listed_under(st, uuid, animal):
    """The state filters of /jobs through nginx that list the survey."""
    states = []
    for state in ("queued", "running", "done", "cancelled"):
        r = request(st, "GET", "/jobs?animal=%s&state=%s&limit=500" % (animal, state), src=LOOPBACK)
        check(r.status == 200, "GET /jobs: " + r.describe())
        if uuid in [j["id"] for j in r.json()["jobs"]]:
            states.append(state)
    return states


@test
def consistency_every_worker_gives_the_same_survey(env):
    st = env.new_stack("consistency")
    st.write_config(harness.config_text(min_seconds=SURVEY_SECONDS, max_seconds=SURVEY_SECONDS,
                                        state_dir=st.dir + "/state"))
    with st.start():
        running, creator = create_noting_worker(st, st, "lions")
        cancelled, _ = create_noting_worker(st, st, "lions")
        time.sleep(0.3)  # begun: a pool thread took each at once
        job = check_agreement(st, running, "running", "a running survey")
        check(0 < job["progress"] < 1, "a running survey's progress %r" % job["progress"])
        listed = listed_under(st, running, "lions")
        check(listed == ["running"], "/jobs?state= lists a running survey under %r, want ['running']" % listed)

        # Cancelled through the worker after its creator (on one worker: that
        # one), which says so at once; every other within the cancel feed's
        # bound (docs/contract.md).
        canceller = st.socket_path(creator % st.workers + 1)
        r = fcgi(canceller, "DELETE", "/query/" + cancelled)
        t_204 = time.monotonic()
        check(r.status == 204, "cancel: " + r.describe())
        r = fcgi(canceller, "GET", "/query/" + cancelled)
        check(r.status == 410, "the worker that took the cancel, at once: " + r.describe())
        took = harness.wait_cancel_seen(st, cancelled, t_204)
        job = check_agreement(st, cancelled, "cancelled", "a survey cancelled through another worker")
        rfc3339_seconds(job["finished"], "finished")
        listed = listed_under(st, cancelled, "lions")
        check(listed == ["cancelled"], "/jobs?state= lists a cancelled survey under %r" % listed)

        r = request(st, "GET", "/query/%s?wait=%d" % (running, SURVEY_SECONDS + 2), timeout=SURVEY_SECONDS + 5)
        check(r.status == 200, "waiting for the running survey: " + r.describe())
        job = check_agreement(st, running, "done", "a finished survey")
        check(job["result"] == json.loads(r.body), "/jobs result %r, /query said %r" % (job["result"], r.body))
        listed = listed_under(st, running, "lions")
        check(listed == ["done"], "/jobs?state= lists a finished survey under %r" % listed)
        env.note("%d worker(s) agree on a running, a cancelled and a finished survey (created on worker %d); "
                 "every worker said cancelled %.0f ms after the 204" % (st.workers, creator, took * 1e3))


@test
def consistency_every_worker_served_its_share_of_the_shared_stack(env):
    """By now the suites have sent the shared stack hundreds of requests
    through nginx: each worker answered at least a quarter of its share."""
    per_worker = []
    for a in each_worker(env.main, "GET", "/metrics"):
        check(a.status == 200, "GET /metrics: " + a.describe())
        total = 0.0
        for line in a.body.decode().split("\n"):
            if line.startswith("zookeeper_http_requests_total{"):
                total += float(line.rsplit(" ", 1)[1])
        per_worker.append(int(total))
    share = sum(per_worker) / len(per_worker)
    env.note("requests answered per worker: %r" % per_worker)
    check(min(per_worker) >= share / 4, "requests answered per worker %r: one served less than a quarter of its share"
          % per_worker)
