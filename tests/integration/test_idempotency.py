"""Idempotency-Key on POST /animals/{animal}, over HTTPS through nginx: the
first creation, its replay (same id and Location, Idempotent-Replayed), a
different animal (422), bad keys (400), no key (a new survey each time), a
repeat while the first is still being stored (409 with Retry-After, at
once), a replay after kill -9 and a restart of the workers, and two clients
(two source addresses, so two scopes) with one key getting two surveys.

On several workers the first and its repeats land on different workers
(nginx round-robins per request): a key holds across workers."""

import signal
import threading
import time
import uuid as uuidlib

from harness import (UUID_RE, Client, check, check_problem, config_text, fresh_addr, kill_workers, problem_errors,
                     request)
from registry import test

REPLAY_HEADER = "Idempotent-Replayed"


def post(target, animal, key=None, src=None):
    headers = {} if key is None else {"Idempotency-Key": key}
    if isinstance(target, Client):
        return target.request("POST", "/animals/" + animal, headers=headers)
    return request(target, "POST", "/animals/" + animal, headers=headers, src=src)


def created(r, what):
    check(r.status == 202, "%s: want 202: %s" % (what, r.describe()))
    job = r.json()
    check(isinstance(job, str) and UUID_RE.match(job), "%s: body is not a job id: %s" % (what, r.describe()))
    check(r.header("Location") == "/query/" + job, "%s: Location: %s" % (what, r.describe()))
    return job


def check_first(r, what):
    job = created(r, what)
    check(r.header(REPLAY_HEADER) is None, "%s: a first creation is marked replayed: %s" % (what, r.describe()))
    return job


def check_replay(r, job, what):
    check(created(r, what) == job, "%s: replay answered another job: %s, want %s" % (what, r.describe(), job))
    check(r.header(REPLAY_HEADER) == "true", "%s: %s: %r, want 'true'" % (what, REPLAY_HEADER, r.header(REPLAY_HEADER)))


@test
def idempotency_key_replays_the_first_creation(env):
    st = env.main
    src = fresh_addr()
    key = str(uuidlib.uuid4())
    job = check_first(post(st, "zebras", key, src=src), "first")
    check_replay(post(st, "zebras", key, src=src), job, "repeat")
    check_replay(post(st, "zebras", '"%s"' % key, src=src), job, "repeat as an sf-string")
    r = request(st, "GET", "/jobs/" + job, src=src)
    check(r.status == 200 and r.json()["animal"] == "zebras", "the replayed job: " + r.describe())


@test
def idempotency_key_with_another_animal_is_422(env):
    st = env.main
    src = fresh_addr()
    key = str(uuidlib.uuid4())
    check_first(post(st, "zebras", key, src=src), "first")
    r = post(st, "lions", key, src=src)
    check(r.status == 422, "same key, another animal: want 422: " + r.describe())
    check_problem(r, 422)
    check(r.json()["type"] == "/problems/idempotency-key-reused", r.describe())


@test
def idempotency_key_invalid_is_400(env):
    st = env.main
    for bad, what in (("", "empty"), ("k" * 256, "256 characters"), ('"open', "an unterminated sf-string"),
                      ("caf\u00e9", "not ASCII")):
        r = post(st, "zebras", bad.encode("utf-8") if what == "not ASCII" else bad)
        check(r.status == 400, "%s key: want 400: %s" % (what, r.describe()))
        check_problem(r, 400)
        check("Idempotency-Key" in r.json()["detail"], "%s key: the detail names no header: %s" % (what, r.describe()))
    created(post(st, "zebras", "k" * 255), "a 255-character key")


@test
def idempotency_no_key_starts_a_new_survey_each_time(env):
    st = env.main
    c = Client(st)
    try:
        jobs = {check_first(post(c, "zebras"), "no key %d" % i) for i in range(3)}
    finally:
        c.close()
    check(len(jobs) == 3, "three creations without a key from one client made %d surveys" % len(jobs))


@test
def idempotency_two_clients_one_key_two_surveys(env):
    st = env.main
    key = str(uuidlib.uuid4())
    a, b = fresh_addr(), fresh_addr()
    job_a = check_first(post(st, "zebras", key, src=a), "client A")
    job_b = check_first(post(st, "zebras", key, src=b), "client B, same key")
    check(job_a != job_b, "two clients with one key share job %s: a key must not reveal another's job" % job_a)
    check_replay(post(st, "zebras", key, src=a), job_a, "client A again")
    check_replay(post(st, "zebras", key, src=b), job_b, "client B again")
    # A client cannot claim another's scope: its headers reach the worker as
    # HTTP_*, never as nginx's ZK_CLIENT_SCOPE.
    r = request(st, "POST", "/animals/zebras", src=fresh_addr(),
                headers={"Idempotency-Key": key, "ZK-Client-Scope": a, "ZK_CLIENT_SCOPE": a})
    check(created(r, "client C naming A's scope") not in (job_a, job_b),
          "a client naming another's scope in a header got its job: " + r.describe())


def describe(answer):
    return answer.describe() if hasattr(answer, "describe") else str(answer)


@test
def idempotency_repeat_while_the_first_is_stored_is_409_at_once(env):
    """The store's writes held from outside: the first creation waits in its
    commit; a repeat with its key, by either form, is told 409 with
    Retry-After at once (not made to wait, not a second survey); once the
    writes go on, the first answers 202 and a repeat replays it."""
    st = env.main
    src = fresh_addr()
    key = str(uuidlib.uuid4())
    answers = {}

    def send(name, method):
        try:
            answers[name] = request(st, method, "/animals/zebras", headers={"Idempotency-Key": key}, src=src,
                                    timeout=15)
        except Exception as e:  # reported by the test, which finds no answer
            answers[name] = AssertionError("%s /animals/zebras: %s: %s" % (method, type(e).__name__, e))

    first = threading.Thread(target=send, args=("first", "POST"), daemon=True)
    repeats = [threading.Thread(target=send, args=(m, m), daemon=True) for m in ("POST", "GET")]
    with st.store.hold_writes():
        first.start()
        time.sleep(0.5)  # the first is in its commit, well inside the store's 5 s timeout
        if not first.is_alive():
            check(False, "the first creation did not wait for the held store: %s" % describe(answers.get("first")))
        for t in repeats:
            t.start()
        for t in repeats:
            t.join(1.5)  # a 409 is at once; a repeat still waiting is answered once the writes go on
    for t in [first] + repeats:
        t.join(15)
    check(set(answers) == {"first", "POST", "GET"}, "no answer to %s" % sorted({"first", "POST", "GET"} - set(answers)))
    failed = [describe(a) for a in answers.values() if isinstance(a, AssertionError)]
    check(not failed, "\n".join(failed))
    fails = []
    for method in ("POST", "GET"):
        r = answers[method]
        errs = [] if r.status == 409 else ["want 409"]
        errs += problem_errors(r, 409) if r.status == 409 else []
        ra = r.header("Retry-After")
        if not (ra and ra.isdigit() and int(ra) >= 1):
            errs.append("no Retry-After")
        if r.elapsed >= 1.0:
            errs.append("answered after %.2f s: it waited for the first" % r.elapsed)
        if errs:
            fails.append("a repeat while the first was being stored: %s: %s" % ("; ".join(errs), r.describe()))
    check(not fails, "\n".join(fails))
    job = check_first(answers["first"], "the first, once the store's writes went on")
    check_replay(post(st, "zebras", key, src=src), job, "a repeat once the first was stored")


@test
def idempotency_replay_after_kill9_and_restart(env):
    st = env.new_stack("idempotency-kill9", shim=True)
    st.write_config(config_text(state_dir=st.dir + "/state"))
    with st.start():
        src = fresh_addr()
        key = str(uuidlib.uuid4())
        job = check_first(post(st, "zebras", key, src=src), "before the kill")
        exits = kill_workers(st, signal.SIGKILL)
        check(all(ex is not None and ex[0] == 128 + signal.SIGKILL for ex in exits),
              "kill -9 of every worker: exits %r" % (exits,))
        st.spawn_workers()
        check_replay(post(st, "zebras", key, src=src), job, "after kill -9 and restart")
        r = post(st, "lions", key, src=src)
        check(r.status == 422, "after restart, another animal: want 422: " + r.describe())
