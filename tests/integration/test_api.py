"""The API's happy paths on the shared stack: the seed's session, the POST
form with the job resource, and cancellation."""

import time
import uuid as uuidlib

from harness import (ANIMALS, CANCEL_SEEN_WITHIN_S, MAX_SECONDS, MIN_SECONDS, UUID_RE, Client, check,
                     check_problem, json_ctype, poll_until_done, rfc3339_seconds, sentence_errors)
from registry import test

STATE_ORDER = {"queued": 0, "running": 1, "done": 2, "cancelled": 2}


def start_survey(client, animal, method="GET"):
    r = client.request(method, "/animals/" + animal)
    want = 200 if method == "GET" else 202
    check(r.status == want, "want %d: %s" % (want, r.describe()))
    json_ctype(r)
    job_id = r.json()
    check(isinstance(job_id, str) and UUID_RE.match(job_id),
          "body is not a UUID JSON string: %s" % r.describe())
    check(r.header("Location") == "/query/" + job_id,
          "Location %r, want /query/%s: %s" % (r.header("Location"), job_id, r.describe()))
    return job_id


def check_pending(r):
    check(r.status == 202, "want 202 while running: " + r.describe())
    check(r.json() == "...", 'body %r, want "...": %s' % (r.body, r.describe()))
    ra = r.header("Retry-After")
    check(ra is not None and ra.isdigit() and int(ra) >= 1,
          "Retry-After %r, want whole seconds >= 1: %s" % (ra, r.describe()))


@test
def seed_session_list_start_poll_sentence(env):
    c = Client(env.main)
    r = c.request("GET", "/animals")
    check(r.status == 200, "want 200: " + r.describe())
    json_ctype(r)
    check(r.json() == ANIMALS, "GET /animals = %r, want the config's animals in order %r"
          % (r.json(), ANIMALS))

    job_id = start_survey(c, "bisons")
    final, pending = poll_until_done(c, job_id, MAX_SECONDS + 5)
    check(pending, "the first poll, right after the start, was already %d: %s"
          % (final.status, final.describe()))
    for p in pending:
        check_pending(p)
    check(final.status == 200, "want 200 when done: " + final.describe())
    json_ctype(final)
    errs = sentence_errors(final.json(), "bisons")
    check(not errs, "; ".join(errs))
    again = c.request("GET", "/query/" + job_id)
    check(again.status == 200 and again.json() == final.json(),
          "query is not idempotent: first %r, then %s" % (final.json(), again.describe()))
    env.note("%d x 202 then 200 %s" % (len(pending), final.json()))


def link_href(link):
    """The contract leaves a link's shape open: a plain path, or an object
    with href (and method)."""
    return link.get("href") if isinstance(link, dict) else link


def check_job_snapshot(r, job_id, animal):
    check(r.status == 200, "want 200: " + r.describe())
    json_ctype(r)
    job = r.json()
    keys = {"id", "animal", "state", "created", "started", "finished", "progress",
            "seconds_left", "result", "links"}
    check(isinstance(job, dict) and keys <= set(job), "missing fields %s: %s"
          % (sorted(keys - set(job or {})), r.describe()))
    check(job["id"] == job_id, "id %r, want %s" % (job["id"], job_id))
    check(job["animal"] == animal, "animal %r, want %r" % (job["animal"], animal))
    state = job["state"]
    check(state in STATE_ORDER, "state %r is not one of %s" % (state, sorted(STATE_ORDER)))
    created = rfc3339_seconds(job["created"], "created", r)
    started = finished = None
    if state == "queued":
        check(job["started"] is None, "queued but started=%r: %s" % (job["started"], r.describe()))
    else:
        started = rfc3339_seconds(job["started"], "started", r)
        check(started >= created - 0.001, "started before created: " + r.describe())
    if state in ("done", "cancelled"):
        finished = rfc3339_seconds(job["finished"], "finished", r)
    else:
        check(job["finished"] is None, "%s but finished=%r: %s" % (state, job["finished"], r.describe()))
    p = job["progress"]
    check(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1,
          "progress %r not within 0..1: %s" % (p, r.describe()))
    s = job["seconds_left"]
    check(isinstance(s, (int, float)) and not isinstance(s, bool) and s >= 0,
          "seconds_left %r is not a number >= 0: %s" % (s, r.describe()))
    if state == "done":
        check(p == 1, "done but progress %r: %s" % (p, r.describe()))
        check(s == 0, "done but seconds_left %r: %s" % (s, r.describe()))
        errs = sentence_errors(job["result"], animal)
        check(not errs, "result: " + "; ".join(errs))
    else:
        check(job["result"] is None, "%s but result=%r" % (state, job["result"]))
    links = job["links"]
    check(isinstance(links, dict), "links is not an object: " + r.describe())
    check(link_href(links.get("self")) == "/jobs/" + job_id, "links.self %r" % links.get("self"))
    check(link_href(links.get("query")) == "/query/" + job_id, "links.query %r" % links.get("query"))
    if state in ("queued", "running"):
        cancel = links.get("cancel")
        check(link_href(cancel) == "/query/" + job_id,
              "%s job: links.cancel %r, want /query/%s" % (state, cancel, job_id))
        check(not isinstance(cancel, dict) or cancel.get("method", "DELETE") == "DELETE",
              "links.cancel method %r, want DELETE" % (cancel,))
    else:
        check(links.get("cancel") is None, "%s job still offers cancel: %s" % (state, r.describe()))
    return job, created, started, finished


@test
def post_form_and_job_resource(env):
    c = Client(env.main)
    job_id = start_survey(c, "elks", method="POST")
    states, last_progress = [], -1.0
    deadline = time.monotonic() + MAX_SECONDS + 5
    while True:
        r = c.request("GET", "/jobs/" + job_id)
        job, created, started, finished = check_job_snapshot(r, job_id, "elks")
        if states and STATE_ORDER[job["state"]] < STATE_ORDER[states[-1]]:
            check(False, "state went back: %s -> %s" % (" -> ".join(states), job["state"]))
        if not states or states[-1] != job["state"]:
            states.append(job["state"])
        check(job["progress"] >= last_progress, "progress went back from %r to %r"
              % (last_progress, job["progress"]))
        last_progress = job["progress"]
        if job["state"] == "done":
            break
        check(job["state"] != "cancelled", "job cancelled by itself: " + r.describe())
        check(time.monotonic() < deadline, "not done after %.1f s: %s" % (MAX_SECONDS + 5, r.describe()))
        time.sleep(0.05)
    check(states[0] in ("queued", "running"), "first state seen was %r" % states[0])
    ran = finished - started
    check(MIN_SECONDS - 0.05 <= ran <= MAX_SECONDS + 0.3,
          "ran %.3f s (started %s, finished %s), want %.1f..%.1f s"
          % (ran, job["started"], job["finished"], MIN_SECONDS, MAX_SECONDS))
    q = c.request("GET", "/query/" + job_id)
    check(q.status == 200 and q.json() == job["result"],
          "/query disagrees with /jobs result %r: %s" % (job["result"], q.describe()))
    env.note("states %s, ran %.2f s: %s" % (" -> ".join(states), ran, job["result"]))


def read_after_cancel(c, path, t_204, shows_cancel, shows_running):
    """The first answer to GET path that shows the cancel. On several
    workers a read through another one may still show the survey running
    for CANCEL_SEEN_WITHIN_S after the 204 (docs/contract.md); never longer,
    never anything else."""
    while True:
        r = c.request("GET", path)
        if shows_cancel(r):
            return r
        waited = time.monotonic() - t_204
        check(shows_running(r) and waited < CANCEL_SEEN_WITHIN_S,
              "%.3f s after the cancel's 204: %s" % (waited, r.describe()))
        time.sleep(0.01)


def job_state(r):
    return r.json().get("state") if r.status == 200 else None


@test
def cancel_semantics(env):
    c = Client(env.main)
    job_id = start_survey(c, "lions", method="POST")
    r = c.request("DELETE", "/query/" + job_id)
    t_204 = time.monotonic()
    check(r.status == 204, "cancel: want 204: " + r.describe())
    check(r.body == b"", "204 with a body: " + r.describe())
    r = read_after_cancel(c, "/query/" + job_id, t_204, lambda r: r.status != 202,
                          lambda r: r.status == 202 and r.body == b'"..."')
    check_problem(r, 410)
    r = read_after_cancel(c, "/jobs/" + job_id, t_204, lambda r: job_state(r) not in ("queued", "running"),
                          lambda r: job_state(r) in ("queued", "running"))
    job, _, _, finished = check_job_snapshot(r, job_id, "lions")
    check(job["state"] == "cancelled", "state after cancel %r: %s" % (job["state"], r.describe()))
    r = c.request("DELETE", "/query/" + job_id)
    check(r.status == 204, "second cancel: want 204: " + r.describe())

    done_id = start_survey(c, "koalas")
    final, _ = poll_until_done(c, done_id, MAX_SECONDS + 5)
    check(final.status == 200, "want 200 when done: " + final.describe())
    r = c.request("DELETE", "/query/" + done_id)
    check_problem(r, 409)
    r = c.request("GET", "/query/" + done_id)
    check(r.status == 200 and r.json() == final.json(),
          "a refused cancel changed the result: " + r.describe())

    for unknown in (str(uuidlib.uuid4()), "01890a5d-ac96-774b-bcce-b302099a8057"):
        for method, path in (("GET", "/query/"), ("DELETE", "/query/"), ("GET", "/jobs/")):
            check_problem(c.request(method, path + unknown), 404)
    for method, path in (("GET", "/query/"), ("DELETE", "/query/"), ("GET", "/jobs/")):
        check_problem(c.request(method, path + "not-a-uuid"), 400)
