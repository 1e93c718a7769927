"""SQLite store faults (issue 18, "SQLite where it applies"): one worker on
its SQLite store, under creation, poll, cancel and waiting-poll load through
nginx (fault_load), its /healthz asked on its socket four times a second.

- disk full: the state folder is a small tmpfs (mounted before the stack
  starts, so the worker's files live on it), filled with a file under load
  for FULL_S, then the file is removed;
- folder read-only: a read-only bind mount over the live state folder
  (mount --bind D D; mount -o remount,bind,ro D) under load, then unmounted.

Both assert: every answer within ANSWER_BOUND_S, 202 or 503 problem+json with
Retry-After for creations, never nginx's 502/504, never a hang; while the
fault lasts, once the worker has refused a write, /healthz is 503; after it is
removed, creations are acknowledged again within RECOVERY_BOUND_S and
/healthz is 200, without a restart (same pid); nothing acknowledged is lost
and no answer changes its mind; the log says store_unavailable and
store_available once each, with no per-attempt lines.

What a read-only folder can do to a running SQLite store, measured here
(root, kernel 6.x): nothing. The worker keeps jobs.db, -wal and -shm open;
a read-only mount over the folder does not reach descriptors opened through
the mount below it, so every commit still lands (on the files below), and
making the worker's own mount read-only is refused while it holds files open
for writing ("mount: ...: mount point is busy", EBUSY). The only read-only
that reaches open files is ext4's emergency remount after an error
(errors=remount-ro), which cannot be undone without unmounting, that is
without stopping the worker. So the read-only test checks that the mount is
in force (a write as the worker's user fails with EROFS) and that the
service stays correct; it cannot fail on a worker that only writes through
descriptors it already holds, and says so in its note.
"""

import errno
import os
import subprocess
import time

import cluster
import fault_load as fl
import harness
from harness import check, config_text
from registry import test

# No statement_timeout on SQLite: a full disk or a read-only file fails a
# write at once. The PostgreSQL suite's default bound (5 s + 1 s) is kept.
ANSWER_BOUND_S = 6.0
# The store retries a failed one every second (the driver's reconnect
# interval, reconnect_interval_ms's default), + 2 s as for PostgreSQL.
RECOVERY_BOUND_S = 1.0 + 2.0
# After the worker refused a write it must say so in /healthz by its next answer;
# scheduling on 2 shared cores.
DETECT_S = 0.5
FULL_S = 5.0
READ_ONLY_S = 5.0
WARM_S = 2.0
TAIL_S = 2.0
TMPFS_SIZE = "32m"      # room for the WAL the warm-up writes (4m filled up by itself)
LOG_SLACK = 3           # as in test_db_faults: the failure that revealed it, named once
MIN_S, MAX_S = 1.5, 3.0
WORKER = "worker-1"


def mounted_under(path):
    """Mount points at or below path, deepest first."""
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return sorted({p for p in points if p == path or p.startswith(path + "/")}, key=len, reverse=True)


def unmount_all(path):
    """Unmounts everything at or below path (repeated: a bind over a tmpfs
    shows twice); failures are named."""
    left = []
    for _ in range(4):
        left = mounted_under(path)
        if not left:
            return
        for p in left:
            subprocess.run(["umount", p], capture_output=True, text=True)
    check(not mounted_under(path), "still mounted under %s: %r" % (path, mounted_under(path)))


def run_mount(*args):
    out = subprocess.run(["mount"] + list(args), capture_output=True, text=True, timeout=20)
    check(out.returncode == 0, "mount %s: exit %d: %s" % (" ".join(args), out.returncode, out.stderr.strip()))


def sqlite_stack(env, name):
    """A stack whose state folder exists (for a mount) but is not started."""
    d = os.path.join(env.work_dir, name)
    if os.path.isdir(d):
        unmount_all(d)  # left by an interrupted run
    st = env.new_stack(name)
    st.write_config(config_text(min_seconds=MIN_S, max_seconds=MAX_S, state_dir=os.path.join(st.dir, "state")))
    os.makedirs(os.path.join(st.dir, "state"), exist_ok=True)
    st.after_stop.append(lambda: unmount_all(st.dir))  # also on the watchdog's teardown
    return st


def write_as_worker(path):
    """Creates a file as the worker's user (www-data when root); the errno
    name on failure, None on success."""
    cmd = ["runuser", "-u", "www-data", "--"] if os.geteuid() == 0 else []
    out = subprocess.run(cmd + ["sh", "-c", 'echo x > "$1"', "sh", path], capture_output=True, text=True)
    if out.returncode == 0:
        os.unlink(path)
        return None
    return out.stderr.strip()


def fill(path):
    """Writes zeros to path until the disk is full; returns its size."""
    with open(path, "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            check(e.errno == errno.ENOSPC, "filling %s: %s" % (path, e))
    return os.path.getsize(path)


class SqliteRun:
    def __init__(self, env, st):
        self.env, self.st = env, st
        self.workers = {WORKER: st.socket_path()}
        self.pid = st.worker_pid()
        self.rec = fl.Record()
        self.watch = fl.HealthWatch(self.rec, self.workers, ANSWER_BOUND_S).start()
        self.load = fl.Load(st, self.rec, ANSWER_BOUND_S, creators=3, pollers=2, cancellers=1, waiters=1).start()
        self.log_from = None

    def checks(self, t_fault, t_removed, recovered, need_refusal=True):
        rec = self.rec
        v = fl.answer_violations(rec, ANSWER_BOUND_S)
        refused = [a for a in rec.of("create", start=t_fault, end=t_removed) if a.status == 503]
        if need_refusal and not refused:
            v.append("no creation was refused 503 while the fault lasted: the load did not meet it (%s)"
                     % fl.timing_summary(rec, t_fault, t_removed, kinds=("create",)))
        if refused:
            # From the first refusal the worker knows: /healthz says so until the fault is gone.
            v += fl.health_violations(rec, self.workers, refused[0].t1, t_removed, DETECT_S, RECOVERY_BOUND_S)
            v += fl.recovery_violations(recovered, RECOVERY_BOUND_S)
        else:
            v += fl.health_violations(rec, self.workers, t_removed, t_removed, 0, RECOVERY_BOUND_S)
        if not harness.pid_alive(self.pid) or self.st.worker_pid() != self.pid:
            v.append("the worker (pid %d) was restarted or died" % self.pid)
        states, minds = fl.final_states(rec)
        v += minds
        last = max((a.t1 for a in rec.acked.values()), default=time.monotonic())
        time.sleep(max(0.0, last + MAX_S + 1.0 - time.monotonic()))  # every survey past its deadline
        after, counts = fl.verify_afterwards(rec, self.workers, states, timeout=ANSWER_BOUND_S + 2)
        v += after
        events = cluster.log_events(self.st, self.log_from, worker=WORKER)
        outage_s = t_removed - t_fault + (recovered.get(WORKER) or RECOVERY_BOUND_S)
        v += fl.log_violations(events, [WORKER], 1 if refused else 0, outage_s, LOG_SLACK)
        self.env.note("%d surveys acknowledged (%d done, %d cancelled afterwards)"
                      % (len(rec.acked), counts["done"], counts["cancelled"]))
        self.env.note("during the fault: %s" % fl.timing_summary(rec, t_fault, t_removed))
        self.env.note("after it: %s" % fl.timing_summary(rec, t_removed, time.monotonic()))
        self.env.note("creations acknowledged again %s after the fault was removed (at %+.2f s); first refusal "
                      "%s; store log lines: %s" % (
                          "never" if recovered.get(WORKER) is None else "%.2f s" % recovered[WORKER],
                          t_removed - t_fault,
                          "%+.2f s" % (refused[0].t1 - t_fault) if refused else "none",
                          fl.log_timeline(events, rec, t_fault)))
        return v

    def close(self):
        for stop in (self.load.stop, self.watch.stop):
            try:
                stop()
            except harness.TestFailure:
                pass


@test
def sqlite_disk_full_answers_503_then_recovers_without_restart_losing_nothing(env):
    st = sqlite_stack(env, "store-disk-full")
    state = os.path.join(st.dir, "state")
    run = None
    try:
        run_mount("-t", "tmpfs", "-o", "size=%s,mode=0750" % TMPFS_SIZE, "tmpfs", state)
        st.start()
        run = SqliteRun(env, st)
        time.sleep(WARM_S)
        run.log_from = cluster.log_offset(st)
        t_fault = run.rec.mark("fault")
        filler = os.path.join(state, "filler")
        size = fill(filler)
        time.sleep(FULL_S)
        os.unlink(filler)
        t_removed = run.rec.mark("back")
        recovered = fl.probe_creations(run.rec, run.workers, t_removed, RECOVERY_BOUND_S + 3, ANSWER_BOUND_S)
        time.sleep(TAIL_S)
        run.close()
        env.note("a %s tmpfs filled (a %.1f MiB file) for %.1f s" % (TMPFS_SIZE, size / 1048576.0,
                                                                     t_removed - t_fault))
        fl.check_all(run.checks(t_fault, t_removed, recovered))
    finally:
        if run:
            run.close()
        st.stop()                     # and unmounts (after_stop)
        check(not mounted_under(st.dir), "left mounted: %r" % mounted_under(st.dir))


@test
def sqlite_state_dir_read_only_keeps_answering_and_loses_nothing(env):
    st = sqlite_stack(env, "store-read-only")
    state = os.path.realpath(os.path.join(st.dir, "state"))
    run = None
    try:
        st.start()
        run = SqliteRun(env, st)
        time.sleep(WARM_S)
        run.log_from = cluster.log_offset(st)
        t_fault = run.rec.mark("fault")
        run_mount("--bind", state, state)
        run_mount("-o", "remount,bind,ro", state)
        refused = write_as_worker(os.path.join(state, "probe"))
        check(refused and "Read-only file system" in refused,
              "the read-only mount over %s is not in force: a write as the worker's user gave %r" % (state, refused))
        time.sleep(READ_ONLY_S)
        unmount_all(state)
        t_removed = run.rec.mark("back")
        recovered = fl.probe_creations(run.rec, run.workers, t_removed, RECOVERY_BOUND_S + 3, ANSWER_BOUND_S)
        time.sleep(TAIL_S)
        run.close()
        during = run.rec.of("create", start=t_fault, end=t_removed)
        env.note("read-only for %.1f s (a new file as www-data: %r); creations meanwhile: %s"
                 % (t_removed - t_fault, refused, fl.timing_summary(run.rec, t_fault, t_removed, kinds=("create",))))
        if during and all(a.status == 202 for a in during):
            env.note("the fault did not reach the worker: it writes through descriptors opened before the mount "
                     "(see this module's docstring)")
        fl.check_all(run.checks(t_fault, t_removed, recovered, need_refusal=False))
    finally:
        if run:
            run.close()
        st.stop()                     # and unmounts (after_stop)
        check(not mounted_under(st.dir), "left mounted: %r" % mounted_under(st.dir))
