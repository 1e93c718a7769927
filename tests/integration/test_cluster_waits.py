"""Waiting polls across workers: two workers on one PostgreSQL database
(run-stack.sh --store postgresql --workers 2), each request sent straight to
one worker's FastCGI socket. A `?wait=` poll parked on worker 2 for a survey
worker 1 runs answers 200 with the sentence just after the survey's deadline
(not before it); a cancel through worker 1 ends a wait parked on worker 2
with 410 within a second."""

import threading
import time

import cluster
import registry
from cluster import Answer, fcgi
from harness import check, create, deadline_of, sentence_errors
from registry import test

registry.module_backends(__name__, only="postgresql", why="a wait on one worker for another's survey")

# After the deadline: the re-checks at deadline + 5, 10, 20 ... ms answer it;
# the periodic one (500 ms) alone would not, so this tells them apart without
# timing the machine (measured lags: docs/waiting-polls.md).
WAKE_LIMIT = 0.400
CANCEL_LIMIT = 1.0    # the contract; the cancel feed takes ms, its fallback (the 500 ms re-check) one round trip more
SURVEYS = 10


def two_workers(env, name, min_seconds, max_seconds):
    """A started two-worker stack and its two workers' sockets."""
    st = cluster.cluster(env, name, workers=2, min_s=min_seconds, max_s=max_seconds)
    return (st,) + tuple(cluster.sockets(st))


def park(sock, uri, out, key):
    """A waiting poll in its own thread; its answer lands in out[key]."""
    def run():
        try:
            out[key] = fcgi(sock, "GET", uri, timeout=15.0)
        except Exception as e:  # reported by the caller, which finds no Answer
            out[key] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def lags_of(jobs, deadlines, answers, worker):
    """Seconds from each survey's deadline to its 200, checked."""
    lags = []
    for u in jobs:
        a = answers.get(u)
        check(isinstance(a, Answer), "the wait on %s for %s failed: %r" % (worker, u, a))
        check(a.status == 200, "the wait on %s for %s: %s" % (worker, u, a.describe()))
        sentence = a.json()
        check(not sentence_errors(sentence, "koalas"), "not a sentence: " + a.describe())
        lags.append(a.at - deadlines[u])
    return sorted(lags)


@test
def cluster_wait_on_another_worker_answers_just_after_the_deadline(env):
    st, w1, w2 = two_workers(env, "cluster-waits-done", 2, 3)
    with st:
        jobs = [create(w1) for _ in range(SURVEYS)]
        deadlines = {u: deadline_of(w1, u) for u in jobs}
        # Worker 2 does not run them; worker 1 does (its waiters are woken
        # once the completion is durable, since their answer reads it).
        remote, local = {}, {}
        threads = [park(w2, "/query/%s?wait=10" % u, remote, u) for u in jobs]
        threads += [park(w1, "/query/%s?wait=10" % u, local, u) for u in jobs]
        for t in threads:
            t.join(15)
        for worker, answers in (("worker 2", remote), ("worker 1", local)):
            lags = lags_of(jobs, deadlines, answers, worker)
            env.note("%s woke for worker 1's surveys: after the deadline min %.1f ms, p50 %.1f ms, max %.1f ms"
                     % (worker, lags[0] * 1000, lags[len(lags) // 2] * 1000, lags[-1] * 1000))
            # The deadline is read at ms precision and both workers share a clock.
            check(lags[0] >= -0.002, "%s answered %.1f ms before a deadline" % (worker, -lags[0] * 1000))
            check(lags[-1] <= WAKE_LIMIT, "%s answered %.1f ms after a deadline (limit %.0f ms)"
                  % (worker, lags[-1] * 1000, WAKE_LIMIT * 1000))


@test
def cluster_cancel_through_one_worker_ends_a_wait_on_the_other_within_1s(env):
    st, w1, w2 = two_workers(env, "cluster-waits-cancel", 20, 20)
    with st:
        uuid = create(w1)
        answers = {}
        t = park(w2, "/query/%s?wait=10" % uuid, answers, "wait")
        time.sleep(0.7)  # parked, and between two periodic re-checks on average
        check("wait" not in answers, "the wait ended before the cancel: %r" % answers.get("wait"))
        cancelled_at = time.time()
        r = fcgi(w1, "DELETE", "/query/" + uuid, timeout=5.0)
        check(r.status in (200, 202, 204), "DELETE through worker 1: " + r.describe())
        t.join(5)
        a = answers.get("wait")
        check(isinstance(a, Answer), "the wait on worker 2 failed: %r" % (a,))
        check(a.status == 410, "the wait on worker 2 after the cancel: " + a.describe())
        took = a.at - cancelled_at
        env.note("a cancel through worker 1 ended the wait on worker 2 after %.0f ms" % (took * 1000))
        check(took <= CANCEL_LIMIT, "the wait ended %.0f ms after the cancel (limit 1 s)" % (took * 1000))
