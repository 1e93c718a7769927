"""Signals and supervision, each on a stack of its own: SIGTERM drains and
exits 0 within 2 s, a dead worker turns into 502 problem+json, SIGHUP reloads
(and survives a broken config), run-stack.sh stops cleanly and restarts over
a crashed run's leftovers.

With several workers (PostgreSQL) the signal goes to every worker at once,
as systemctl stop/reload zookeeper.target does: while one still answers,
nginx sends the next request to it, so "the worker is gone" means all are."""

import os
import signal
import socket
import threading
import time

from harness import (ANIMALS, MAX_SECONDS, Client, TestFailure, check, check_problem, config_text,
                     create_survey, each_worker, kill_workers, pid_alive, poll_until_done, problem_errors, request,
                     sentence_errors, wait_dead)
from registry import test


def check_exits(exits, t_signal, signame):
    """Every worker exited 0 within 2 s of the signal; returns the slowest."""
    slowest = 0.0
    for n, ex in enumerate(exits, 1):
        check(ex is not None, "worker %d did not exit within 5 s of %s" % (n, signame))
        status, t_exit = ex
        check(status == 0, "worker %d exited with status %d after %s, want 0" % (n, status, signame))
        check(t_exit - t_signal <= 2.0, "worker %d took %.2f s to exit after %s (limit 2 s)"
              % (n, t_exit - t_signal, signame))
        slowest = max(slowest, t_exit - t_signal)
    return slowest


def animals_everywhere(st, want, timeout):
    """GET /animals from every worker's socket until each answers `want`;
    returns the last answers' bodies."""
    deadline = time.monotonic() + timeout
    while True:
        got = [a.json() if a.status == 200 else a.describe() for a in each_worker(st, "GET", "/animals")]
        if all(g == want for g in got) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def check_worker_unavailable(stack):
    for method, path in (("GET", "/animals"), ("POST", "/animals/bisons"),
                         ("GET", "/query/01890a5d-ac96-774b-bcce-b302099a8057")):
        r = request(stack, method, path, timeout=5)
        check_problem(r, 502)
        detail = r.json().get("detail", "")
        check("unavailable" in detail, "502 detail %r does not say the worker is unavailable" % detail)
        check(r.header("Retry-After") is not None, "502 without Retry-After: " + r.describe())
        check(r.elapsed < 3, "502 took %.1f s" % r.elapsed)


@test
def sigterm_drains_and_exits_0_within_2s(env):
    with env.new_stack("sigterm", shim=True).start() as st:
        warm = Client(st)
        job_id = create_survey(warm, "hippos")
        go = threading.Event()
        answers = [None] * 30
        paths = [("GET", "/animals"), ("POST", "/animals/bisons"), ("GET", "/query/" + job_id)]

        connected = threading.Semaphore(0)

        def one(i):
            method, path = paths[i % 3]
            # Connected and warm beforehand, so the burst is really in flight
            # when the signal lands, not still in TLS handshakes.
            c = Client(st, timeout=10)
            try:
                c.request("GET", "/animals")
            except TestFailure:
                pass
            connected.release()
            go.wait()
            try:
                answers[i] = c.request(method, path)
            except TestFailure as e:
                answers[i] = e
            finally:
                c.close()

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(30)]
        for t in threads:
            t.start()
        for _ in threads:
            connected.acquire(timeout=10)
        go.set()
        time.sleep(0.005)
        t_term = time.time()
        exits = kill_workers(st, signal.SIGTERM, 5)
        for t in threads:
            t.join(12)
        slowest = check_exits(exits, t_term, "SIGTERM")
        fails, tally = [], {}
        for a in answers:
            if a is None:
                fails.append("a request issued before SIGTERM hung (no answer in 10 s)")
            elif isinstance(a, Exception):
                fails.append(str(a))
            else:
                tally[a.status] = tally.get(a.status, 0) + 1
                if a.status == 502:
                    errs = problem_errors(a)
                    if errs:
                        fails.append(a.describe() + ": " + "; ".join(errs))
                elif not 200 <= a.status < 300:
                    fails.append("want 2xx or 502: " + a.describe())
        check(not fails, "\n".join(fails))
        check_worker_unavailable(st)
        env.note("%d worker(s) exited 0, the last after %.2f s; burst answers %s" % (len(exits), slowest, tally))


@test
def sigint_exits_0_within_2s(env):
    with env.new_stack("sigint", shim=True).start() as st:
        t_int = time.time()
        check_exits(kill_workers(st, signal.SIGINT, 5), t_int, "SIGINT")


@test
def worker_killed_nginx_answers_502(env):
    with env.new_stack("sigkill", shim=True).start() as st:
        exits = kill_workers(st, signal.SIGKILL, timeout=3)
        check(None not in exits, "a worker survived SIGKILL? %r" % exits)
        check_worker_unavailable(st)


@test
def sighup_reloads_config_and_keeps_old_on_error(env):
    st = env.new_stack("sighup")
    state = os.path.join(st.dir, "state")
    with st.start():
        pids = st.worker_pids()
        st.write_config(config_text(animals=ANIMALS + ["yaks"], state_dir=state))
        for pid in pids:
            os.kill(pid, signal.SIGHUP)
        want = ANIMALS + ["yaks"]
        got = animals_everywhere(st, want, 3)
        check(all(g == want for g in got), "3 s after SIGHUP with yaks added, GET /animals on each worker = %r" % got)
        r = request(st, "GET", "/animals")
        check(r.status == 200 and r.json() == want, "after SIGHUP through nginx: " + r.describe())
        c = Client(st)
        r = c.request("GET", "/animals/yaks")
        check(r.status == 200, "the new animal cannot be surveyed: " + r.describe())
        final, _ = poll_until_done(c, r.json(), MAX_SECONDS + 5)
        errs = sentence_errors(final.json(), "yaks") if final.status == 200 else [final.describe()]
        check(not errs, "; ".join(errs))

        mark = len(st.log_text())
        broken = config_text(animals=ANIMALS + ["yaks", "bisons"], state_dir=state)
        st.write_config(broken.replace("min_seconds = 0.3", "min_seconds = oops"))
        for pid in pids:
            os.kill(pid, signal.SIGHUP)
        time.sleep(1.0)
        check(all(pid_alive(p) for p in pids), "a worker died on SIGHUP with a broken config\n" + st.log_tail())
        got = animals_everywhere(st, want, 0)
        check(all(g == want for g in got), "after a broken config's SIGHUP the old config is not served: %r" % got)
        logged = st.log_text()[mark:]
        conf = os.path.realpath(st.conf)  # run-stack.sh hands the worker a resolved path
        naming = [line for line in logged.split("\n") if conf in line]
        check(len(naming) >= len(pids), "%d log line(s) name %s after the failed reload of %d worker(s):\n%s"
              % (len(naming), conf, len(pids), st.log_tail()))

        st.write_config(config_text(state_dir=state))
        for pid in pids:
            os.kill(pid, signal.SIGHUP)
        got = animals_everywhere(st, ANIMALS, 3)
        check(all(g == ANIMALS for g in got), "a good config after a failed reload is not picked up: %r" % got)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@test(only="sqlite", why="the only worker dying stops nginx; several are restarted instead "
                         "(cluster_polls_through_nginx_see_no_5xx_while_a_worker_is_killed_and_restarted)")
def run_stack_stops_nginx_when_worker_dies(env):
    with env.new_stack("supervise").start() as st:
        worker, nginx = st.worker_pid(), st.nginx_pid()
        os.kill(worker, signal.SIGKILL)
        try:
            rc = st.proc.wait(8)
        except Exception:
            raise TestFailure("run-stack.sh still running 8 s after the worker died\n" + st.log_tail())
        check(rc != 0, "run-stack.sh exited 0 after its worker was killed")
        check(wait_dead(nginx, 2), "nginx (pid %d) outlived run-stack.sh" % nginx)
        check(not port_open(st.https_port), "port %d still accepts connections" % st.https_port)
        env.note("run-stack.sh exited %d" % rc)


@test
def run_stack_stop_and_restart_over_a_crash(env):
    st = env.new_stack("restart")
    st.start()
    c = Client(st)
    job_id = create_survey(c, "gorillas")
    before, _ = poll_until_done(c, job_id, MAX_SECONDS + 5)
    c.close()
    workers, nginx = st.worker_pids(), st.nginx_pid()
    t0 = time.monotonic()
    rc = st.stop()
    check(rc == 0, "run-stack.sh exited %r on SIGTERM, want 0\n%s" % (rc, st.log_tail()))
    check(time.monotonic() - t0 < 8, "stopping took %.1f s" % (time.monotonic() - t0))
    check(all(wait_dead(w, 1) for w in workers) and wait_dead(nginx, 1), "a worker or nginx outlived run-stack.sh")
    check(not any(os.path.exists(s) for s in st.sockets()), "socket left behind")

    st.start()  # same prefix: re-rendered, certificate reused, store kept
    after = request(st, "GET", "/query/" + job_id)
    check(after.status == 200 and after.json() == before.json(),
          "a finished survey did not survive a clean restart: before %s, after %s"
          % (before.describe(), after.describe()))
    os.killpg(st.proc.pid, signal.SIGKILL)  # a crash: nothing cleans up
    st.proc.wait(5)
    check(os.path.exists(os.path.join(st.dir, "zookeeper.sock")), "expected a stale socket")
    st.start()
    r = request(st, "GET", "/animals")
    check(r.status == 200, "after restarting over a crash: " + r.describe())
    rc = st.stop()
    check(rc == 0, "second stop: run-stack.sh exited %r" % rc)
