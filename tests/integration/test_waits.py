"""Waiting polls over HTTPS through nginx: GET /query/{id}?wait=S and
GET /jobs/{id}?wait=S answer at the survey's completion (not before its
deadline, answered at completion; its p99 is reported, the 20 ms target measured by the benchmark), on cancel, when S runs out, and at
SIGTERM (every waiter at once, exit within 2 s); thousands of waits hold no
thread; a client that hangs up frees its slot and leaks no descriptor; and
every nginx limit zone's 429 carries Retry-After.

On several workers (PostgreSQL) the waits land on every worker through
nginx, most for surveys another worker runs; what is measured on "the"
worker (threads, descriptors, memory, its exit at SIGTERM) is measured on
each, or summed over all.

Many waiters at once are driven with asyncio (one TLS connection each, each
from its own loopback address, as separate clients would be), not a thread
per waiter."""

import asyncio
import json
import os
import re
import signal
import ssl
import threading
import time

from harness import (Client, TestFailure, check, check_problem, config_text, create, deadline_of, fcgi, fresh_addr,
                     kill_workers, pct, request, threads_of)
from registry import test
from test_faults import fd_leaks, fd_listing, fd_profile, rss_kib, stack_with

# From the survey's deadline to the answer: far below the wait's own 10 s,
# so the answer is the completion's, not the timeout's. The 20 ms p99 target
# is measured by the benchmark (bench/waits.py), not asserted here: a timed
# assertion on 2 shared cores tests the machine's load, not the code.
WAKE_BOUND = 0.5
CONCURRENT_WAITS = 2000


def own_stack(env, name, min_seconds, max_seconds, service_extra=""):
    st = env.new_stack(name)
    text = config_text(state_dir=os.path.join(st.dir, "state"), min_seconds=min_seconds, max_seconds=max_seconds)
    text = text.replace("log_level = info\n", "log_level = info\n" + service_extra)
    st.write_config(text)
    return st.start()


# --- many waiters at once (asyncio) --------------------------------------

class Answer:
    def __init__(self, status, headers, body, at):
        self.status, self.headers, self.body, self.at = status, headers, body, at

    def describe(self):
        return "%d %r %r" % (self.status, self.headers, self.body[:200])


async def http_get(st, path, src, opened=None, hold=None):
    """GET over its own TLS connection; returns an Answer (at: wall time of
    its arrival). `opened` (a list) gets the writer once the request is sent;
    `hold` (an Event): close without reading once it is set (a hang-up)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", st.https_port, ssl=st.tls_context(), server_hostname="127.0.0.1", local_addr=(src, 0))
    writer.write(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path).encode())
    await writer.drain()
    if opened is not None:
        opened.append(writer)
    if hold is not None:
        await hold.wait()
        writer.transport.abort()
        return None
    data = await reader.read()
    at = time.time()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3})", lines[0] if lines else "")
    if not m:
        raise TestFailure("GET %s: unparsable answer %r" % (path, data[:200]))
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return Answer(int(m.group(1)), headers, body, at)


def total(measure, pids):
    """measure(pid) summed over the workers."""
    return sum(measure(p) for p in pids)


def run_async(coro, timeout):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


# --- the tests -----------------------------------------------------------

@test
def wait_bad_values_are_400_naming_wait_and_without_wait_nothing_changes(env):
    st = env.main
    uuid = create(st)
    for bad in ("0", "31", "1.5", "x", ""):
        r = request(st, "GET", "/query/%s?wait=%s" % (uuid, bad))
        check_problem(r, 400)
        detail = r.json().get("detail", "")
        check("wait" in detail and "1 to 30" in detail, "the 400 must name wait and 1 to 30: " + r.describe())
    r = request(st, "GET", "/query/" + uuid)
    check(r.status == 202 and r.header("Retry-After"), "a poll without wait: " + r.describe())
    check(r.elapsed < 0.5, "a poll without wait took %.3f s" % r.elapsed)


@test
def wait_answers_at_completion_not_before_the_deadline(env):
    st = own_stack(env, "waits-latency", 1.0, 2.0)
    try:
        surveys = 60
        jobs = [create(st) for _ in range(surveys)]
        deadlines = {u: deadline_of(st, u) for u in jobs}

        async def all_waits():
            tasks = [http_get(st, "/query/%s?wait=10" % u, fresh_addr()) for u in jobs]
            tasks += [http_get(st, "/jobs/%s?wait=10" % u, fresh_addr()) for u in jobs[:10]]
            return await asyncio.gather(*tasks)

        answers = run_async(all_waits(), 20)
        fails, lags = [], []
        for i, a in enumerate(answers):
            uuid = jobs[i % surveys] if i < surveys else jobs[i - surveys]
            lag = a.at - deadlines[uuid]
            lags.append(lag)
            if a.status != 200:
                fails.append("%s: %s" % (uuid, a.describe()))
            elif i >= surveys and json.loads(a.body)["state"] != "done":
                fails.append("/jobs/%s?wait: %s" % (uuid, a.describe()))
            if lag < 0:
                fails.append("%s answered %.3f s before its deadline" % (uuid, -lag))
        p50, p99 = pct(lags, 0.5), pct(lags, 0.99)
        env.note("%d waits: lag after the deadline p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                 % (len(lags), p50 * 1e3, p99 * 1e3, max(lags) * 1e3))
        if max(lags) > WAKE_BOUND:
            fails.append("an answer came %.1f ms after its deadline (bound %.0f ms)" % (max(lags) * 1e3, WAKE_BOUND * 1e3))
        check(not fails, "\n".join(fails[:10]))
    finally:
        st.stop()


@test
def wait_ends_at_cancel_and_at_its_own_timeout_with_202_and_retry_after(env):
    st = own_stack(env, "waits-cancel", 20, 20)
    try:
        uuid = create(st)

        async def cancel_later():
            waiter = asyncio.ensure_future(http_get(st, "/query/%s?wait=10" % uuid, fresh_addr()))
            await asyncio.sleep(0.5)
            t = time.time()
            await asyncio.get_running_loop().run_in_executor(None, lambda: request(st, "DELETE", "/query/" + uuid))
            return await waiter, t

        a, t_cancel = run_async(cancel_later(), 15)
        check(a.status == 410, "a waiting poll at cancel: " + a.describe())
        check(a.at - t_cancel < 1.0, "the wait ended %.3f s after the cancel" % (a.at - t_cancel))

        other = create(st)
        t0 = time.monotonic()
        r = request(st, "GET", "/query/%s?wait=1" % other, timeout=5)
        took = time.monotonic() - t0
        check(r.status == 202 and r.json() == "..." and r.header("Retry-After"), "at its timeout: " + r.describe())
        check(1.0 <= took < 1.5, "wait=1 answered after %.3f s" % took)
        r = request(st, "GET", "/jobs/%s?wait=1" % other, timeout=5)
        check(r.status == 200 and r.json()["state"] == "running", "/jobs?wait=1 at its timeout: " + r.describe())
        env.note("cancel ended the wait after %.1f ms; wait=1 timed out after %.3f s"
                 % ((a.at - t_cancel) * 1e3, took))
    finally:
        st.stop()


@test
def sigterm_answers_every_waiting_poll_at_once_and_exits_within_2s(env):
    st = stack_with(env, "waits-sigterm", min_seconds=20, max_seconds=20)
    st.start()
    try:
        jobs = [create(st) for _ in range(20)]
        waiters = 200

        async def waits_then_term():
            tasks = [asyncio.ensure_future(http_get(st, "/query/%s?wait=30" % jobs[i % len(jobs)], fresh_addr()))
                     for i in range(waiters)]
            await asyncio.sleep(1.5)  # all parked
            check(not any(t.done() for t in tasks), "a wait ended before SIGTERM")
            t = time.time()
            exits = await asyncio.get_running_loop().run_in_executor(
                None, lambda: kill_workers(st, signal.SIGTERM, 5))
            return await asyncio.gather(*tasks), t, exits

        # Every worker at once: nginx answers a wait on a worker that
        # stopped with the next worker's answer otherwise, not SIGTERM's.
        answers, t_term, exits = run_async(waits_then_term(), 20)
        check(None not in exits, "workers still running 5 s after SIGTERM: %s"
              % [n + 1 for n, ex in enumerate(exits) if ex is None])
        late = max(a.at for a in answers) - t_term
        bad = [a.describe() for a in answers if a.status != 202 or not a.headers.get("retry-after")]
        env.note("%d waiting polls answered within %.1f ms of SIGTERM; exits %s"
                 % (waiters, late * 1e3, ", ".join("%d after %.3f s" % (s, t - t_term) for s, t in exits)))
        check(not bad, "%d answers at SIGTERM not 202 with Retry-After: %s" % (len(bad), bad[:3]))
        check(late < 1.0, "the last waiting poll was answered %.3f s after SIGTERM" % late)
        for n, (status, t_exit) in enumerate(exits, 1):
            check(status == 0 and t_exit - t_term <= 2.0, "worker %d: exit %d after %.3f s (want 0 within 2 s)"
                  % (n, status, t_exit - t_term))
    finally:
        st.stop()


@test
def wait_2000_concurrent_hold_no_thread_and_end_at_once_on_cancel(env):
    st = own_stack(env, "waits-many", 30, 30)
    try:
        pids = st.worker_pids()
        jobs = [create(st) for _ in range(40)]
        for _ in pids:  # warm every worker: allocator pools, nginx connections
            request(st, "GET", "/query/%s?wait=1" % jobs[0])
        threads0, rss0 = total(threads_of, pids), total(rss_kib, pids)
        opened, answers = [], []

        async def many():
            tasks = []
            for i in range(CONCURRENT_WAITS):
                src = fresh_addr()  # zk_wait allows one waiting poll per client and survey
                tasks.append(asyncio.ensure_future(
                    http_get(st, "/query/%s?wait=30" % jobs[i % len(jobs)], src, opened)))
                if i % 100 == 99:
                    await asyncio.sleep(0)
            while len(opened) < CONCURRENT_WAITS:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            during = total(threads_of, pids), total(rss_kib, pids), total(lambda p: fd_profile(p)[0], pids)
            # Cancelling the surveys ends every wait (with 410) at once.
            t_cancel = time.time()
            for u in jobs:
                await asyncio.get_running_loop().run_in_executor(None, lambda u=u: request(st, "DELETE", "/query/" + u))
            answers.extend(await asyncio.gather(*tasks))
            answers.append(t_cancel)
            return during

        threads1, rss1, fds1 = run_async(many(), 90)
        t_cancel = answers.pop()
        bad = [a.describe() for a in answers if a.status != 410]
        ended = max(a.at for a in answers) - t_cancel
        per_waiter = (rss1 - rss0) * 1024.0 / CONCURRENT_WAITS
        env.note("%d waits on %d worker(s): threads %d -> %d, RSS %d -> %d KiB (%.0f bytes per waiting poll), "
                 "fds %d; all ended %.2f s after the cancels began"
                 % (CONCURRENT_WAITS, len(pids), threads0, threads1, rss0, rss1, per_waiter, fds1, ended))
        check(threads1 == threads0, "worker threads (all workers) %d -> %d with %d waits"
              % (threads0, threads1, CONCURRENT_WAITS))
        check(fds1 >= CONCURRENT_WAITS, "the workers held %d fds: the waits were not all parked" % fds1)
        check(not bad, "%d waits did not end 410 at the cancel: %s" % (len(bad), bad[:3]))
    finally:
        st.stop()


@test
def wait_client_hangup_frees_the_slot_and_leaks_no_descriptor(env):
    slots = 5  # per worker
    st = own_stack(env, "waits-hangup", 20, 20, "max_waiters = %d\n" % slots)
    try:
        pids = st.worker_pids()
        uuid = create(st)
        fds0 = [fd_profile(p) for p in pids]

        async def hang_up():
            hold, opened = asyncio.Event(), []
            tasks = [asyncio.ensure_future(http_get(st, "/query/%s?wait=30" % uuid, fresh_addr(), opened, hold))
                     for _ in range(slots * 4)]
            while len(opened) < len(tasks):
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)
            parked = total(lambda p: fd_profile(p)[0], pids)
            hold.set()
            await asyncio.gather(*tasks)
            return parked

        parked_fds = run_async(hang_up(), 20)
        # nginx closes its upstream connection at once; the worker closes its end.
        deadline = time.monotonic() + 5
        while True:
            fds1 = [fd_profile(p) for p in pids]
            leaked = sum(fd_leaks(before, after) for before, after in zip(fds0, fds1))
            if not leaked or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # Every slot is free again: a new wait parks (answers only at its
        # timeout), through nginx and on each worker's own socket.
        t0 = time.monotonic()
        r = request(st, "GET", "/query/%s?wait=1" % uuid, timeout=5)
        waited = time.monotonic() - t0
        direct = {}
        threads = [threading.Thread(target=lambda s=s: direct.__setitem__(s, fcgi(s, "GET", "/query/%s?wait=1" % uuid,
                                                                                   timeout=5)), daemon=True)
                   for s in st.sockets()]
        t1 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(6)
        unparked = [a.describe() for a in direct.values() if a.status != 202 or a.at - t1 < 1.0]
        check(len(direct) == len(threads) and not unparked,
              "after the hang-ups a wait on a worker's socket was not parked: %s" % (unparked or "no answer"))
        before, after = sum(f[0] for f in fds0), sum(f[0] for f in fds1)
        env.note("%d waits then hang-ups (max_waiters %d per worker, %d worker(s)): worker fds %d -> %d parked "
                 "-> %d after; leaked %d; a new wait then waited %.2f s"
                 % (slots * 4, slots, len(pids), before, parked_fds, after, leaked, waited))
        check(parked_fds >= before + slots, "only %d fds while %d waited: were they parked?" % (parked_fds, slots))
        # Open connections may grow (nginx keeps those whose wait was refused,
        # max_waiters being full); one whose peer is gone is a leak.
        check(not leaked,
              "after the hang-ups the workers hold %d fds (%d before), %d leaked\n%s"
              % (after, before, leaked, "\n".join(fd_listing(p) for p in pids)))
        check(r.status == 202 and waited >= 1.0, "after the hang-ups a wait was not parked (slot still taken?): "
              "%s after %.2f s" % (r.describe(), waited))
    finally:
        st.stop()


@test
def every_nginx_limit_zone_answers_429_with_retry_after(env):
    st = env.main
    uuid = create(st)
    # wait=0 goes through zk_wait like any waiting poll (nginx does not parse
    # it) and is answered 400 at once, so the burst is quick to exceed.
    cases = [("zk_read", "/animals"), ("zk_create", "/animals/dodos"), ("zk_wait", "/query/%s?wait=0" % uuid)]
    for zone, path in cases:
        c = Client(st, src=fresh_addr(), timeout=5)
        limited = None
        for _ in range(150):
            r = c.request("GET", path)
            if r.status == 429:
                limited = r
                break
        c.close()
        check(limited is not None, "%s: 150 rapid requests from one address never got 429" % zone)
        check_problem(limited, 429)
        ra = limited.header("Retry-After")
        check(ra and ra.isdigit() and int(ra) >= 1, "%s's 429 without Retry-After: %s" % (zone, limited.describe()))
    # Not here: zk_waiters (limit_conn, 1000 per address) would need 1000
    # surveys waited on from one address; its 429 goes through the same map.
