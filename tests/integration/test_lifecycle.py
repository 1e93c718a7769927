"""Signals and supervision, each on a stack of its own: SIGTERM drains and
exits 0 within 2 s, a dead worker turns into 502 problem+json, SIGHUP reloads
(and survives a broken config), run-stack.sh stops cleanly and restarts over
a crashed run's leftovers."""

import os
import signal
import socket
import threading
import time

from harness import (ANIMALS, MAX_SECONDS, Client, TestFailure, check, check_problem, config_text,
                     create_survey, kill_worker, pid_alive, poll_until_done, problem_errors, request,
                     sentence_errors, wait_dead)
from registry import test


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
        pid = st.worker_pid()
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
        os.kill(pid, signal.SIGTERM)
        ex = st.shim_exit(timeout=5)
        for t in threads:
            t.join(12)
        check(ex is not None, "the worker did not exit within 5 s of SIGTERM")
        status, t_exit = ex
        check(status == 0, "the worker exited with status %d after SIGTERM, want 0\n%s"
              % (status, st.log_tail()))
        check(t_exit - t_term <= 2.0, "the worker took %.2f s to exit after SIGTERM (limit 2 s)"
              % (t_exit - t_term))
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
        env.note("exited %d after %.2f s; burst answers %s" % (status, t_exit - t_term, tally))


@test
def sigint_exits_0_within_2s(env):
    with env.new_stack("sigint", shim=True).start() as st:
        t_int = time.time()
        os.kill(st.worker_pid(), signal.SIGINT)
        ex = st.shim_exit(timeout=5)
        check(ex is not None, "the worker did not exit within 5 s of SIGINT")
        check(ex[0] == 0, "the worker exited with status %d after SIGINT, want 0" % ex[0])
        check(ex[1] - t_int <= 2.0, "the worker took %.2f s to exit after SIGINT" % (ex[1] - t_int))


@test
def worker_killed_nginx_answers_502(env):
    with env.new_stack("sigkill", shim=True).start() as st:
        check(kill_worker(st, signal.SIGKILL, timeout=3) is not None, "the worker survived SIGKILL?")
        check_worker_unavailable(st)


@test
def sighup_reloads_config_and_keeps_old_on_error(env):
    st = env.new_stack("sighup")
    state = os.path.join(st.dir, "state")
    with st.start():
        pid = st.worker_pid()
        st.write_config(config_text(animals=ANIMALS + ["yaks"], state_dir=state))
        os.kill(pid, signal.SIGHUP)
        want = ANIMALS + ["yaks"]
        deadline, got = time.monotonic() + 3, None
        while time.monotonic() < deadline:
            got = request(st, "GET", "/animals").json()
            if got == want:
                break
            time.sleep(0.1)
        check(got == want, "3 s after SIGHUP with yaks added, GET /animals = %r" % got)
        c = Client(st)
        r = c.request("GET", "/animals/yaks")
        check(r.status == 200, "the new animal cannot be surveyed: " + r.describe())
        final, _ = poll_until_done(c, r.json(), MAX_SECONDS + 5)
        errs = sentence_errors(final.json(), "yaks") if final.status == 200 else [final.describe()]
        check(not errs, "; ".join(errs))

        mark = len(st.log_text())
        broken = config_text(animals=ANIMALS + ["yaks", "bisons"], state_dir=state)
        st.write_config(broken.replace("min_seconds = 0.3", "min_seconds = oops"))
        os.kill(pid, signal.SIGHUP)
        time.sleep(1.0)
        check(pid_alive(pid), "the worker died on SIGHUP with a broken config\n" + st.log_tail())
        r = request(st, "GET", "/animals")
        check(r.status == 200 and r.json() == want,
              "after a broken config's SIGHUP the old config is not served: " + r.describe())
        logged = st.log_text()[mark:]
        conf = os.path.realpath(st.conf)  # run-stack.sh hands the worker a resolved path
        check(conf in logged, "no log line names %s after the failed reload:\n%s"
              % (conf, st.log_tail()))

        st.write_config(config_text(state_dir=state))
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and got != ANIMALS:
            got = request(st, "GET", "/animals").json()
            time.sleep(0.1)
        check(got == ANIMALS, "a good config after a failed reload is not picked up: %r" % got)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@test
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
    worker, nginx = st.worker_pid(), st.nginx_pid()
    t0 = time.monotonic()
    rc = st.stop()
    check(rc == 0, "run-stack.sh exited %r on SIGTERM, want 0\n%s" % (rc, st.log_tail()))
    check(time.monotonic() - t0 < 8, "stopping took %.1f s" % (time.monotonic() - t0))
    check(wait_dead(worker, 1) and wait_dead(nginx, 1), "worker or nginx outlived run-stack.sh")
    check(not os.path.exists(os.path.join(st.dir, "zookeeper.sock")), "socket left behind")

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
