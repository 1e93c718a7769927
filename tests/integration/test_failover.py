"""The database fails over under load (issue 21): three workers behind nginx
on a Patroni cluster (run-stack.sh --ha: deploy/ha-cluster.sh, one etcd, a
primary and a synchronous standby; Patroni's loop_wait 1 s, ttl 10 s), with
creation, poll, cancel and waiting-poll load from several clients through
nginx (fault_load.Load) and every worker's /healthz asked on its socket
(fault_load.HealthWatch).

- (a) the leader's postmaster killed with kill -9: Patroni promotes the
  synchronous standby (primary_start_timeout 0);
- (b) `patronictl switchover` to the synchronous standby;
- (c) the synchronous standby's node killed (its Patroni, then its
  postmaster, kill -9, so that nothing restarts it): the primary degrades to
  asynchronous (synchronous_mode_strict off) and keeps answering, without
  hanging; the node is started again afterwards.

In each case (fault_load's checks, all violations reported at once):
- every answer comes within the workers' statement_timeout (5 s) + 1 s, with
  a status its request allows: during the window 503 problem+json with
  Retry-After; never nginx's 502 or 504, never a hang;
- nothing acknowledged is lost and no answer changes its mind: afterwards
  every acknowledged survey answers 200 with one sentence, or 410, on every
  worker, as it answered before (a 204 cancel stays 410, a sentence stays);
- full service is back within 15 s of the fault: every worker acknowledges a
  creation straight on its socket by then, the last degraded answer through
  nginx comes by then; and no worker was restarted (same pids).
The window (first to last degraded answer through nginx: a 503, a failure, a
slow answer; 409 and 410 are answers) and the time to the first 202
creation after it are printed as notes, with what /healthz said.

The cases share one stack and one Patroni cluster (its first start, initdb
and a base backup, is most of the cost); each starts from a healthy cluster:
a leader and a synchronous standby streaming from it, every worker's store
up. The last test stops the stack and checks that nothing of the cluster is
left (etcd, Patroni, PostgreSQL).
"""

import os
import signal
import subprocess
import time

import cluster
import fault_load as fl
import harness
from harness import check
from registry import test

WORKERS = 3
# Survey length: short enough that surveys finish (and are verified) within
# a case, long enough that cancels and waits meet running ones.
MIN_S, MAX_S = 1, 2
RESCUE_AFTER_MS, SWEEP_INTERVAL_MS = 2000, 500
# The bound: full service back within 15 s of the fault.
WINDOW_BOUND_S = 15.0
# Every answer within the workers' statement_timeout_ms (5000) + 1 s.
ANSWER_BOUND_S = 6.0
WAIT_S = 5                # waiting polls' ?wait=
WARM_S = 2.0              # load before the fault
TAIL_S = 3.0              # clean answers after the window before the load stops
MIN_AFTER_S = 5.0         # load after the fault at least this long (a dying primary may still commit at first)
SETTLE_SLACK_S = 1.5
READY_TIMEOUT_S = 180     # the stack's first start: initdb, a base backup, three workers


# --- the shared stack ----------------------------------------------------------

def ha(st, cmd, *args, timeout=120):
    return subprocess.run([os.path.join(st.env.repo, "deploy", "ha-cluster.sh"), cmd, ha_dir(st)] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def ha_out(st, cmd, *args, timeout=120):
    out = ha(st, cmd, *args, timeout=timeout)
    check(out.returncode == 0, "ha-cluster.sh %s %s: exit %d: %s%s"
          % (cmd, " ".join(args), out.returncode, out.stdout, out.stderr))
    return out.stdout.strip()


def ha_dir(st):
    return os.path.join(os.path.realpath(st.dir), "ha")


_shared = {"stack": None, "error": None}


def ha_stack(env):
    """run-stack.sh --store postgresql --workers 3 --ha, started once. Patroni,
    etcd and PostgreSQL run detached (their own sessions), out of reach of
    the kill of run-stack.sh's process group when a stop times out: every
    stop ends with ha-cluster.sh stop, which leaves nothing."""
    if _shared["error"]:
        raise harness.StackError("the HA stack failed to start earlier: " + _shared["error"])
    if _shared["stack"] is None:
        st = env.new_stack("failover")
        st.write_config(cluster.cluster_config(st.dir, MIN_S, MAX_S, "rescue_after_ms = %d\nsweep_interval_ms = %d\n"
                                               % (RESCUE_AFTER_MS, SWEEP_INTERVAL_MS)))
        st.run_args += ["--store", "postgresql", "--workers", str(WORKERS), "--ha"]
        st.workers = WORKERS
        st.after_stop.append(lambda: ha(st, "stop"))
        try:
            st.start(ready_timeout=READY_TIMEOUT_S)
        except harness.TestFailure as e:
            _shared["error"] = str(e).split("\n")[0]
            raise
        _shared["stack"] = st
    return _shared["stack"]


def workers_of(st):
    return {cluster.worker_name(n): s for n, s in enumerate(cluster.sockets(st), 1)}


def healthy_start(st, timeout=90):
    """A leader, a synchronous standby streaming from it, every worker's store
    up. Returns (leader, sync)."""
    out = ha(st, "wait", str(timeout), timeout=timeout + 30)
    check(out.returncode == 0, "the Patroni cluster is not healthy before the case: %s%s" % (out.stdout, out.stderr))
    deadline = time.monotonic() + 30
    for name, sock in workers_of(st).items():
        while True:
            try:
                if cluster.fcgi(sock, "GET", "/healthz", timeout=5).status == 200:
                    break
            except OSError:
                pass
            check(time.monotonic() < deadline, "%s's /healthz not 200 30 s after the cluster is healthy" % name)
            time.sleep(0.2)
    return ha_out(st, "leader"), ha_out(st, "sync")


def role_is(st, role, want, describe=False):
    """Whether Patroni's `role` (leader, sync) is `want` ('' for none); with
    describe, the violation saying it is not."""
    out = ha(st, role, timeout=10)
    got = out.stdout.strip() if out.returncode == 0 else ""
    if not describe:
        return got == want
    return None if got == want else "%s is %r %.0f s after the fault, want %r" % (
        role, got or None, WINDOW_BOUND_S + TAIL_S, want or None)


def promoted(st, leader, sync, describe=False):
    """(a), (b): the synchronous standby leads."""
    return role_is(st, "leader", sync, describe)


# --- one case ------------------------------------------------------------------------

def degraded(a):
    return a.status is None or a.status >= 500 or a.elapsed > ANSWER_BOUND_S + (WAIT_S if a.kind == "wait" else 0)


def service_back(rec, now):
    """Nothing degraded answered through nginx for TAIL_S, and creations
    acknowledged within the last second."""
    answers = rec.of(via="nginx")
    last_bad = max((a.t1 for a in answers if degraded(a)), default=None)
    last_202 = max((a.t1 for a in answers if a.kind == "create" and a.status == 202), default=None)
    return (last_bad is None or now - last_bad >= TAIL_S) and last_202 is not None and now - last_202 < 1.0


def window_note(rec, t_fault):
    """The window's figures, and the violation if it outlasts the bound."""
    answers = [a for a in rec.of(via="nginx") if a.t1 is not None]
    bad = [a for a in answers if degraded(a)]
    first = min((a.t1 for a in bad), default=None)
    last = max((a.t1 for a in bad), default=None)
    since = t_fault if first is None else first
    created = min((a.t1 for a in answers if a.kind == "create" and a.status == 202 and a.t1 >= since), default=None)
    if first is None:
        text = "no degraded answer through nginx"
    else:
        text = ("degraded answers through nginx from +%.2f s to +%.2f s after the fault (window %.2f s)"
                % (first - t_fault, last - t_fault, last - first))
    text += ("; first 202 creation after it at +%.2f s" % (created - t_fault) if created is not None
             else "; no 202 creation after it")
    v = []
    if last is not None and last - t_fault > WINDOW_BOUND_S:
        v.append("a degraded answer %.2f s after the fault (bound %.0f s)" % (last - t_fault, WINDOW_BOUND_S))
    return text, v


def health_note(rec, workers, t_fault):
    parts = []
    for w in workers:
        mine = rec.of("health", via=w, start=t_fault)
        down = [a for a in mine if a.status == 503]
        if not down:
            parts.append("%s 200 throughout" % w)
            continue
        up = [a for a in mine if a.status == 200 and a.t0 > down[-1].t0]
        parts.append("%s 503 from +%.2f s to +%.2f s%s" % (w, down[0].t1 - t_fault, down[-1].t1 - t_fault,
                                                          "" if up else ", not 200 again"))
    return "/healthz: " + "; ".join(parts)


def run_case(env, name, fault, settled, after):
    """Load, the fault (t_fault: when it began), load until Patroni has done
    its part (settled(st, leader, sync)) and service is back, then creations
    straight to each worker; then after(st, leader, sync) (returns
    violations) and every check."""
    st = ha_stack(env)
    leader, sync = healthy_start(st)
    workers = workers_of(st)
    pids = cluster.worker_pids(st)
    rec = fl.Record()
    watch = fl.HealthWatch(rec, workers, ANSWER_BOUND_S).start()
    load = fl.Load(st, rec, ANSWER_BOUND_S, creators=3, pollers=3, cancellers=1, waiters=1, wait_s=WAIT_S).start()
    v = []
    try:
        time.sleep(WARM_S)
        t_fault = rec.mark("fault")
        fault(st, leader, sync)
        deadline = t_fault + WINDOW_BOUND_S + TAIL_S
        done = False
        while time.monotonic() < deadline:
            done = done or settled(st, leader, sync)
            now = time.monotonic()
            if done and now - t_fault >= MIN_AFTER_S and service_back(rec, now):
                break
            time.sleep(0.2)
        if not done:
            v.append(settled(st, leader, sync, describe=True))
        load.stop()
        recovered = fl.probe_creations(rec, workers, t_fault, WINDOW_BOUND_S, ANSWER_BOUND_S)
    finally:
        load.stop()
        watch.stop()
    t_end = time.monotonic()
    v += fl.answer_violations(rec, ANSWER_BOUND_S, wait_s=WAIT_S)
    v += fl.recovery_violations(recovered, WINDOW_BOUND_S)
    window, late = window_note(rec, t_fault)
    v += late
    v += after(st, leader, sync) or []
    now = cluster.worker_pids(st)
    v += ["%s restarted: pid %d, now %d" % (cluster.worker_name(n), pids[n], now[n]) for n in pids if now[n] != pids[n]]
    states, minds = fl.final_states(rec)  # a 202 within the cancel feed's 0.5 s of a 204 is allowed
    v += minds
    last = max((a.t1 for a in rec.acked.values()), default=time.monotonic())
    time.sleep(max(0.0, last + MAX_S + (RESCUE_AFTER_MS + SWEEP_INTERVAL_MS) / 1000.0 + SETTLE_SLACK_S
                   - time.monotonic()))
    afterwards, counts = fl.verify_afterwards(rec, workers, states, timeout=ANSWER_BOUND_S + 2)
    v += afterwards
    env.note("%s: %s" % (name, window))
    env.note("%s: after the load, a creation straight on each worker acknowledged at: %s" % (name, ", ".join(
        "%s %s" % (w, "never" if t is None else "+%.2f s" % t) for w, t in sorted(recovered.items()))))
    env.note("%s: %s" % (name, fl.timing_summary(rec, t_fault, t_end)))
    env.note("%s: %s" % (name, health_note(rec, workers, t_fault)))
    env.note("%s: %d surveys acknowledged (%d done, %d cancelled afterwards), none lost"
             % (name, len(rec.acked), counts["done"], counts["cancelled"]) if not afterwards else
             "%s: %d surveys acknowledged" % (name, len(rec.acked)))
    fl.check_all(v, "%s: leader %s, sync standby %s before the fault" % (name, leader, sync))


def pid_file(st, name):
    with open(os.path.join(ha_dir(st), name + ".pid")) as f:
        return int(f.read().strip())


# --- the cases -------------------------------------------------------------------------

@test
def failover_a_leader_postmaster_kill9_promotes_the_sync_standby_nothing_acknowledged_lost(env):
    def fault(st, leader, sync):
        os.kill(int(ha_out(st, "pid", leader)), signal.SIGKILL)

    run_case(env, "(a) kill -9 of the leader's postmaster", fault, promoted, lambda *_: [])


@test
def failover_b_patronictl_switchover_nothing_acknowledged_lost(env):
    def fault(st, leader, sync):
        out = ha(st, "patronictl", "switchover", "--leader", leader, "--candidate", sync, "--force", timeout=60)
        check(out.returncode == 0, "patronictl switchover: %s%s" % (out.stdout, out.stderr))

    run_case(env, "(b) patronictl switchover", fault, promoted, lambda *_: [])


@test
def failover_c_sync_standby_killed_the_primary_goes_on_alone_without_hanging(env):
    def fault(st, leader, sync):
        # The whole node: its Patroni first, or it would start PostgreSQL again at once.
        os.kill(pid_file(st, "patroni-" + sync), signal.SIGKILL)
        os.kill(int(ha_out(st, "pid", sync)), signal.SIGKILL)

    def alone(st, leader, sync, describe=False):
        """The leader has dropped its synchronous standby."""
        return role_is(st, "sync", "", describe)

    def after(st, leader, sync):
        v = [role_is(st, "leader", leader, describe=True)]
        # Alone, the primary names no synchronous standby: it commits asynchronously.
        port = ha_out(st, "url").split("port=")[1].split()[0].split(",")[int(leader[1:]) - 1]
        out = subprocess.run(["runuser", "-u", "postgres", "--", cluster.PGBIN + "/psql", "-h",
                              os.path.join(ha_dir(st), leader, "sock"), "-p", port, "-d", "postgres", "-qAtc",
                              "SHOW synchronous_standby_names"], capture_output=True, text=True, timeout=20)
        if out.returncode != 0 or out.stdout.strip() != "":
            v.append("the primary alone still names a synchronous standby: %r %s" % (out.stdout, out.stderr))
        else:
            env.note("(c) while the standby was down the primary's synchronous_standby_names was '' (asynchronous)")
        # The node comes back as the sync standby (ha-cluster.sh start starts what is not running).
        ha_out(st, "start", timeout=150)
        return v

    run_case(env, "(c) the sync standby's node killed", fault, alone, after)


@test
def failover_stack_stops_leaving_no_etcd_patroni_or_postgres(env):
    st = _shared["stack"] or ha_stack(env)
    where = ha_dir(st)
    t0 = time.monotonic()
    st.stop(timeout=90)
    _shared["stack"] = None
    took = time.monotonic() - t0
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % pid)
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if cwd == where or cwd.startswith(where + "/") or where in cmd:
            left.append("%s %s" % (pid, cmd[:120]))
    check(not left, "processes left after the stack stopped: %s" % left)
    env.note("stack with its Patroni cluster stopped in %.1f s; nothing left" % took)
