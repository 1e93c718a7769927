"""Idempotency-Key on POST /animals/{animal}, over HTTPS through nginx: the
first creation, its replay (same id and Location, Idempotent-Replayed), a
different animal (422), bad keys (400), no key (a new survey each time), a
replay after kill -9 and a restart of the worker, and two clients (two
source addresses, so two scopes) with one key getting two surveys."""

import signal
import uuid as uuidlib

from harness import UUID_RE, Client, check, check_problem, config_text, fresh_addr, kill_worker, request
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


@test
def idempotency_replay_after_kill9_and_restart(env):
    st = env.new_stack("idempotency-kill9", shim=True)
    st.write_config(config_text(state_dir=st.dir + "/state"))
    with st.start():
        src = fresh_addr()
        key = str(uuidlib.uuid4())
        job = check_first(post(st, "zebras", key, src=src), "before the kill")
        ex = kill_worker(st, signal.SIGKILL)
        check(ex is not None and ex[0] == 128 + signal.SIGKILL, "kill -9 of the worker: exit %r" % (ex,))
        st.spawn_worker()
        check_replay(post(st, "zebras", key, src=src), job, "after kill -9 and restart")
        r = post(st, "lions", key, src=src)
        check(r.status == 422, "after restart, another animal: want 422: " + r.describe())
