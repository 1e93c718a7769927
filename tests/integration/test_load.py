"""Load on the shared stack: the rate limit, 200 concurrent surveys, and the
keep-alive trap (kept FastCGI connections must not pin worker threads)."""

import os
import socket
import statistics
import threading
import time

import fcgi_client

from harness import (ANIMALS, MAX_SECONDS, MIN_SECONDS, Client, TestFailure, check, check_problem,
                     config_text, create_survey, fresh_addr, pct, request, rfc3339_seconds, sentence_errors)
import registry
from registry import test

registry.module_backends(__name__, only="sqlite",
                         why="nginx's limits and one worker's threads, seats and max_jobs (per worker on PostgreSQL); "
                             "outside the contract suites, run once for CI time")


@test
def rate_limit_429_per_address_and_recovery(env):
    # An unknown animal goes through the creation zone without creating jobs.
    c = Client(env.main, src=fresh_addr())
    statuses = []
    for _ in range(60):
        r = c.request("GET", "/animals/dodos")
        statuses.append(r.status)
        if r.status == 429:
            check_problem(r, 429)
            check(r.header("Retry-After") is not None, "429 without Retry-After: " + r.describe())
        else:
            check(r.status == 404, "want 404 or 429: " + r.describe())
    passed, limited = statuses.count(404), statuses.count(429)
    check(limited > 0, "60 rapid survey starts from one address were never limited")
    check(passed >= 10, "only %d of 60 passed before the limit: the burst is too small" % passed)

    other = request(env.main, "GET", "/animals/dodos")
    check(other.status == 404, "another address is limited too: " + other.describe())
    reader = Client(env.main, src=fresh_addr())
    reads = [reader.request("GET", "/animals").status for _ in range(60)]
    check(reads.count(200) == 60, "60 rapid reads from one address: %s (reads are the lenient zone)"
          % sorted(set(reads)))

    time.sleep(2.2)
    r = c.request("GET", "/animals/dodos")
    check(r.status == 404, "after 2 s the limited address is still refused: " + r.describe())
    env.note("%d passed, %d limited of 60 starts; 60/60 reads passed" % (passed, limited))


def survey_to_the_end(env, i, go, results):
    animal = ANIMALS[i % len(ANIMALS)]
    c = Client(env.main, timeout=20)
    try:
        go.wait()
        t0 = time.monotonic()
        r = c.request("GET", "/animals/" + animal)
        if r.status != 200:
            raise TestFailure("start: " + r.describe())
        job_id = r.json()
        created = time.monotonic()
        time.sleep(MIN_SECONDS)
        while True:
            q = c.request("GET", "/query/" + job_id)
            if q.status == 200:
                break
            if q.status != 202:
                raise TestFailure("poll: " + q.describe())
            if time.monotonic() - created > MAX_SECONDS + 10:
                raise TestFailure("still running after %.1f s: %s" % (MAX_SECONDS + 10, q.describe()))
            time.sleep(0.1)
        done = time.monotonic()
        j = c.request("GET", "/jobs/" + job_id)
        if j.status != 200:
            raise TestFailure("job: " + j.describe())
        results[i] = {"animal": animal, "id": job_id, "sentence": q.json(), "start_s": created - t0,
                      "seen_done_s": done - created, "job": j.json(), "resp": j}
    except TestFailure as e:
        results[i] = {"error": str(e)}
    except Exception as e:  # a thread must always leave a verdict
        results[i] = {"error": "%s: %s" % (type(e).__name__, e)}
    finally:
        c.close()


@test
def concurrent_200_surveys_finish_in_their_window(env):
    n = 200
    results = [None] * n
    go = threading.Event()
    threads = [threading.Thread(target=survey_to_the_end, args=(env, i, go, results), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    go.set()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    fails = []
    if any(t.is_alive() for t in threads):
        fails.append("%d threads still waiting after 60 s" % sum(t.is_alive() for t in threads))
    ok = [r for r in results if r and "error" not in r]
    errors = [r["error"] for r in results if r and "error" in r]
    fails += errors[:10]
    if len(errors) > 10:
        fails.append("... and %d more errors" % (len(errors) - 10))
    ids = [r["id"] for r in ok]
    if len(set(ids)) != len(ids):
        fails.append("duplicate job ids among %d" % len(ids))
    server_late, queued = [], []
    for r in ok:
        errs = sentence_errors(r["sentence"], r["animal"])
        if errs:
            fails.append("; ".join(errs))
        job, resp = r["job"], r["resp"]
        try:
            created = rfc3339_seconds(job.get("created"), "created", resp)
            started = rfc3339_seconds(job.get("started"), "started", resp)
            finished = rfc3339_seconds(job.get("finished"), "finished", resp)
        except TestFailure as e:
            fails.append(str(e))
            continue
        # The deadline is creation + duration; a survey begins once its
        # creation is stored, so `started` trails `created` by that commit.
        ran = finished - created
        if not MIN_SECONDS - 0.002 <= ran <= MAX_SECONDS + 0.3:
            fails.append("%s ran %.3f s from its creation, want %.1f..%.1f"
                         % (r["id"], ran, MIN_SECONDS, MAX_SECONDS))
        if not created <= started <= finished:
            fails.append("%s created %.3f, started %.3f, finished %.3f: out of order"
                         % (r["id"], created, started, finished))
        queued.append(started - created)
        if r["seen_done_s"] > MAX_SECONDS + 5:
            fails.append("%s seen done only %.1f s after its start" % (r["id"], r["seen_done_s"]))
        server_late.append(finished - created)
    if len(ok) != n and not errors:
        fails.append("only %d of %d surveys reported" % (len(ok), n))
    check(not fails, "%d of %d surveys ok:\n%s" % (len(ok), n, "\n".join(fails[:25])))
    env.note("start latency p50 %.3f s max %.3f s; created->started max %.3f s; created->finished p50 %.3f s "
             "max %.3f s; seen done max %.2f s" % (
                 pct([r["start_s"] for r in ok], 0.5), max(r["start_s"] for r in ok), max(queued),
                 pct(server_late, 0.5), max(server_late), max(r["seen_done_s"] for r in ok)))


def keepalive_poller(target, path, stop, out, pause=0.02):
    """Polls over one kept-alive HTTPS connection, from its own address (the
    read zone allows 50 r/s per address), until stop is set. target: the
    test env (its shared stack) or a Stack."""
    c = Client(getattr(target, "main", target), src=fresh_addr(), timeout=10)
    try:
        while not stop.is_set():
            r = c.request("GET", path)
            out.append((r.status, r.elapsed))
            time.sleep(pause)
    except TestFailure as e:
        out.append(("error", str(e)))
    finally:
        c.close()


def slow_body_sender(env, out, pause=0.25, size=12):
    """A client that trickles its request body; nginx buffers bodies, so the
    worker should never see (nor wait for) this connection until it is whole."""
    try:
        ctx = env.main.tls_context()
        with socket.create_connection(("127.0.0.1", env.main.https_port), timeout=10,
                                      source_address=(fresh_addr(), 0)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"POST /animals/bisons HTTP/1.1\r\nHost: localhost\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n" % size)
                for _ in range(size):
                    time.sleep(pause)
                    s.sendall(b"x")
                reply = b""
                while b"\r\n" not in reply:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
        out.append(int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/") else ("error", reply[:80]))
    except Exception as e:
        out.append(("error", "%s: %s" % (type(e).__name__, e)))


@test
def keepalive_trap_other_locations_stay_fast(env):
    c = Client(env.main)
    job_id = create_survey(c, "pandas")
    stop = threading.Event()
    polls = [[] for _ in range(6)]
    slow = []
    threads = [threading.Thread(target=keepalive_poller, args=(env, "/query/" + job_id, stop, polls[i]),
                                daemon=True) for i in range(6)]
    threads += [threading.Thread(target=slow_body_sender, args=(env, slow), daemon=True)
                for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    probes, fails = [], []
    for i in range(30):
        path = "/animals" if i % 3 else "/jobs/" + job_id
        try:
            r = request(env.main, "GET", path)
            probes.append(r.elapsed)
            if r.status != 200:
                fails.append("probe " + r.describe())
        except TestFailure as e:
            fails.append("probe: %s" % e)
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(15)
    for i, p in enumerate(polls):
        bad = [x for x in p if x[0] not in (200, 202)]  # the job may still be running
        if not p or bad:
            fails.append("keep-alive client %d: %d requests, failures %r" % (i, len(p), bad[:3]))
    if len(slow) != 6 or any(not isinstance(s, int) or s >= 500 for s in slow):
        fails.append("slow-body clients answered %r, want 6 non-5xx answers" % slow)
    if probes and max(probes) >= 2.0:
        fails.append("slowest probe took %.2f s (bound 2 s)" % max(probes))
    check(not fails, "\n".join(fails))
    lat = [x[1] for p in polls for x in p]
    env.note("probes p50 %.1f ms max %.1f ms; %d keep-alive polls p50 %.1f ms max %.1f ms; "
             "slow bodies answered %s" % (statistics.median(probes) * 1e3, max(probes) * 1e3, len(lat),
                                         statistics.median(lat) * 1e3, max(lat) * 1e3, slow))


@test
def kept_connections_beyond_the_thread_count_starve_nothing(env):
    """The keep-alive trap, head on: a worker with 2 threads holding more
    idle kept connections than threads. With libfcgi's own accept loop each
    kept connection pinned a thread, and every other request waited for
    nginx's 10 s timeout. Here 8 kept connections sit idle on the socket
    while requests go through nginx (which keeps its own, up to 128 per
    nginx worker), and then each of the 8 is used again."""
    st = env.new_stack("keepalive-2-threads")
    st.write_config(config_text(state_dir=os.path.join(st.dir, "state"))
                    .replace("acceptor_threads = 8", "acceptor_threads = 2"))
    with st.start():
        job_id = Client(st).request("POST", "/animals/pandas").json()
        idle = [fcgi_client.Connection(st.socket_path(), timeout=5) for _ in range(8)]
        try:
            fails = ["kept connection %d: first request -> %d" % (i, status)
                     for i, c in enumerate(idle) for status, _, _ in [c.request("GET", "/animals")] if status != 200]
            stop, polls = threading.Event(), [[] for _ in range(8)]
            clients = [threading.Thread(target=keepalive_poller, args=(st, "/query/" + job_id, stop, out),
                                        daemon=True) for out in polls]
            for t in clients:
                t.start()
            probes = []
            for i in range(20):
                r = request(st, "GET", "/animals" if i % 2 else "/jobs/" + job_id, timeout=5)
                probes.append(r.elapsed)
                if r.status != 200:
                    fails.append("probe " + r.describe())
            stop.set()
            for t in clients:
                t.join(15)
            fails += ["nginx client %d: %d polls, failures %r" % (i, len(p), [x for x in p if x[0] not in (200, 202)][:3])
                      for i, p in enumerate(polls) if not p or any(x[0] not in (200, 202) for x in p)]
            fails += ["kept connection %d: second request -> %d" % (i, status)
                      for i, c in enumerate(idle) for status, _, _ in [c.request("GET", "/animals")] if status != 200]
        finally:
            for c in idle:
                c.close()
        if probes and max(probes) >= 1.0:
            fails.append("slowest probe took %.2f s (bound 1 s)" % max(probes))
        check(not fails, "\n".join(fails))
        env.note("2 worker threads, 8 idle kept connections: %d probes max %.1f ms, %d polls over nginx"
                 % (len(probes), max(probes) * 1e3, sum(map(len, polls))))


@test
def a_blocked_thread_hands_its_seat_to_a_standby(env):
    """awake_acceptors = 1 of acceptor_threads = 2: the one awake thread
    blocks, first on a peer that never finishes its request, then in a
    creation whose commit waits for a write lock held by an operator's
    sqlite3. Either way it must give its seat up, so the standby thread
    answers a GET through nginx at once. Without the hand-over the GET waits
    for the block to end: 2 s for the peer, as long as the lock for the
    creation (held here for 3 s, inside the store's 5 s busy timeout)."""
    st = env.new_stack("seats-1-of-2")
    st.write_config(config_text(state_dir=os.path.join(st.dir, "state"))
                    .replace("acceptor_threads = 8", "acceptor_threads = 2\nawake_acceptors = 1"))
    fails = []
    with st.start():
        check(request(st, "GET", "/animals").status == 200, "the stack does not answer")
        slow = fcgi_client.connect(st.socket_path(), timeout=5)
        try:
            slow.sendall(fcgi_client.begin() + fcgi_client.record(fcgi_client.PARAMS, 1, b"\x01\x01ab"))
            time.sleep(0.2)  # the awake thread now waits for the rest of it
            r = request(st, "GET", "/animals", timeout=10)
            if r.status != 200 or r.elapsed >= 1.0:
                fails.append("GET during a slow peer: %s after %.2f s" % (r.describe(), r.elapsed))
        finally:
            slow.close()
        created = {}
        creator = threading.Thread(target=lambda: created.update(r=request(st, "POST", "/animals/elks", timeout=20)))
        with st.store.hold_writes():  # the write lock; the worker's commit now waits
            creator.start()
            time.sleep(0.3)
            r = request(st, "GET", "/animals", timeout=10)
            if r.status != 200 or r.elapsed >= 1.0:
                fails.append("GET during a commit held up by a lock: %s after %.2f s" % (r.describe(), r.elapsed))
            if not creator.is_alive():
                fails.append("the creation did not wait for the lock: %s" % created["r"].describe())
            time.sleep(max(0.0, 3.0 - 0.3 - r.elapsed))
        creator.join(20)
        c = created.get("r")
        if c is None or c.status != 202:
            fails.append("creation after the lock was released: %s" % (c.describe() if c else "no answer"))
        check(not fails, "\n".join(fails))
        env.note("1 of 2 threads awake: GETs answered while it waited on a slow peer and on a locked store")


@test
def limits_max_jobs_503_and_result_ttl_404(env):
    """Over max_jobs a start is refused with 503 + Retry-After (the contract's
    overflow answer, never a wait); finished surveys stop counting; a result
    older than result_ttl is gone (404)."""
    st = env.new_stack("limits")
    text = config_text(state_dir=os.path.join(st.dir, "state"))
    text = text.replace("max_jobs = 100000", "max_jobs = 3").replace("result_ttl = 3600", "result_ttl = 1")
    st.write_config(text)
    with st.start():
        c = Client(st)
        ids = []
        for _ in range(3):
            r = c.request("POST", "/animals/tigers")
            check(r.status == 202, "start within max_jobs: " + r.describe())
            ids.append(r.json())
        r = c.request("POST", "/animals/tigers")
        check_problem(r, 503)
        ra = r.header("Retry-After")
        check(ra is not None and ra.isdigit() and int(ra) >= 1, "503 Retry-After %r: %s" % (ra, r.describe()))
        time.sleep(MAX_SECONDS + 0.3)
        done = c.request("GET", "/query/" + ids[0])
        check(done.status == 200, "not done after max_seconds: " + done.describe())
        r = c.request("POST", "/animals/tigers")
        check(r.status == 202, "finished surveys still count against max_jobs: " + r.describe())
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            gone = c.request("GET", "/query/" + ids[0])
            if gone.status != 200:
                break
            time.sleep(0.2)
        check_problem(gone, 404)
        env.note("503 with Retry-After %s; result expired after ttl" % ra)
