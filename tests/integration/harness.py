"""Black-box harness: starts real stacks (deploy/run-stack.sh: spawn-fcgi +
worker + nginx) on free loopback ports and talks HTTPS to them.

Design notes
- Every stack lives in its own prefix under BUILD/integration/<name>, with its
  own config, certificate, logs and ports, so a destructive test (killing the
  worker, reloading a config) cannot disturb another test's stack. Prefixes are
  kept after the run for post-mortems and wiped at the start of the next.
- TLS is verified for real: each client context trusts only the stack's own
  generated certificate and checks the host name (the cert carries
  IP:127.0.0.1 and DNS:localhost).
- nginx rate-limits per client address. Loopback is the whole of 127.0.0.0/8,
  so each request binds a fresh source address by default: tests behave like
  many clients and only the rate-limit test, which pins one address on
  purpose, ever meets a 429. That keeps the shipped limits under test instead
  of a relaxed test-only copy.
- Failures carry the exact request and answer, because they are read by
  whoever fixes the worker, not by this harness.
"""

import http.client
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")

# The seed's vocabulary (shared/reference/original-zookeeper.conf), kept here
# so the tests do not depend on the shipped zookeeper.conf being right.
ANIMALS = ["aardvarks", "alpacas", "bisons", "crocodiles", "elks", "gorillas", "hippos",
           "koalas", "kangaroos", "lions", "pandas", "tigers", "unicorns", "zebras"]
VERBS = ["cry", "eat", "drink", "feel", "laugh", "run", "sing", "sleep", "smile"]
ADJECTIVES = ["alert", "ambitious", "aggressive", "angry", "awesome", "bulky", "calm",
              "candid", "clumsy", "cool", "determined", "nervous", "hungry", "sleepy",
              "sluggish", "thirsty"]
ADVERBS = ["adventurously", "beautifully", "brilliantly", "carefully", "foolishly",
           "lazily", "properly", "randomly", "strictly", "tidily", "wildly"]

LOOPBACK = "127.0.0.1"  # operator endpoints let only this address in without credentials
MIN_SECONDS = 0.3
MAX_SECONDS = 0.8


class TestFailure(AssertionError):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def config_text(animals=None, min_seconds=MIN_SECONDS, max_seconds=MAX_SECONDS,
                state_dir="/nonexistent", extra=""):
    """A complete config in the contract's INI format."""
    def section(name, words):
        return "[%s]\n%s\n\n" % (name, "\n".join(words))
    return ("# integration test config, written by tests/integration/harness.py\n"
            + section("animals", animals or ANIMALS)
            + section("verbs", VERBS)
            + section("adjectives", ADJECTIVES)
            + section("adverbs", ADVERBS)
            + "[workload]\nmin_seconds = %s\nmax_seconds = %s\n\n" % (min_seconds, max_seconds)
            + "[service]\nacceptor_threads = 8\npool_threads = 2\nmax_jobs = 100000\n"
              "queue_capacity = 4096\nresult_ttl = 3600\nlog_level = info\n\n"
            + "[store]\ndir = %s\ncommit_interval_ms = 2\n" % state_dir
            + extra)


def sentence_errors(sentence, animal):
    """Why a survey result is not '<Adjective> <animal> <verb> <adverb>'."""
    if not isinstance(sentence, str):
        return ["result is %r, not a string" % (sentence,)]
    words = sentence.split(" ")
    if len(words) != 4:
        return ["%r has %d words, want 4" % (sentence, len(words))]
    adj, ani, verb, adv = words
    errs = []
    if not adj[:1].isupper():
        errs.append("%r: first letter not capitalised" % sentence)
    if adj[:1].lower() + adj[1:] not in ADJECTIVES:
        errs.append("%r: %r is not a configured adjective" % (sentence, adj))
    if ani != animal:
        errs.append("%r: second word %r is not the animal %r" % (sentence, ani, animal))
    if verb not in VERBS:
        errs.append("%r: %r is not a configured verb" % (sentence, verb))
    if adv not in ADVERBS:
        errs.append("%r: %r is not a configured adverb" % (sentence, adv))
    return errs


# --- source addresses ----------------------------------------------------

_addr_counter = itertools.count(1)
_addr_lock = threading.Lock()


def fresh_addr():
    """A loopback address no other request of this run has used."""
    with _addr_lock:
        n = next(_addr_counter)
    # 127.10.0.1 upwards; last octet 1..250 keeps clear of .0 and .255.
    n, last = divmod(n - 1, 250)
    n, third = divmod(n, 256)
    return "127.%d.%d.%d" % (10 + n, third, last + 1)


def free_ports(count):
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --- HTTP ----------------------------------------------------------------

class Response:
    def __init__(self, method, path, status, reason, headers, body, elapsed):
        self.method, self.path = method, path
        self.status, self.reason = status, reason
        self.headers = headers          # list of (name, value), as received
        self.body = body
        self.elapsed = elapsed

    def header(self, name):
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def describe(self):
        body = self.body[:300].decode("utf-8", "replace")
        extra = ""
        for h in ("Content-Type", "Location", "Retry-After", "Allow"):
            v = self.header(h)
            if v is not None:
                extra += " %s: %s;" % (h, v)
        return "%s %s -> %d%s body=%r" % (self.method, short(self.path), self.status, extra, body)


def short(path, limit=120):
    return path if len(path) <= limit else "%s...(%d chars)" % (path[:limit], len(path))


class Client:
    """One keep-alive HTTPS connection from one source address."""

    def __init__(self, stack, src=None, timeout=10.0, hostname="127.0.0.1"):
        self.stack = stack
        self.src = src or fresh_addr()
        self.timeout = timeout
        self.hostname = hostname
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPSConnection(
            self.hostname, self.stack.https_port, context=self.stack.tls_context(),
            timeout=self.timeout, source_address=(self.src, 0))

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self._connect()
        hdrs = {"Host": "localhost"}
        hdrs.update(headers or {})
        if body is None and method in ("POST",):
            hdrs.setdefault("Content-Length", "0")
        start = time.monotonic()
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            r = self.conn.getresponse()
            data = r.read()
        except Exception as e:
            self.close()
            raise TestFailure("%s %s: no answer: %s: %s" % (method, short(path), type(e).__name__, e))
        resp = Response(method, path, r.status, r.reason, r.getheaders(), data,
                        time.monotonic() - start)
        if r.will_close:
            self.close()
        return resp

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def request(stack, method, path, body=None, headers=None, src=None, timeout=10.0):
    """One request on its own connection and (by default) its own address."""
    c = Client(stack, src=src, timeout=timeout)
    try:
        return c.request(method, path, body=body, headers=headers)
    finally:
        c.close()


def _send(target, method, path, src=None, timeout=10.0):
    """On a Client, over its connection; on a Stack, on a connection of its own."""
    if isinstance(target, Client):
        return target.request(method, path)
    return request(target, method, path, src=src, timeout=timeout)


def json_ctype(resp):
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip().lower()
    check(ctype == "application/json", "%s: Content-Type %r, want application/json"
          % (resp.describe(), resp.header("Content-Type")))


def create_survey(target, animal="zebras", what="setup", src=None, timeout=10.0):
    """POST /animals/{animal} on a Stack or a Client; checks the 202 (a
    failure reads "<what>: <the answer>") and returns the job's id."""
    r = _send(target, "POST", "/animals/" + animal, src=src, timeout=timeout)
    check(r.status == 202, "%s: %s" % (what, r.describe()))
    return r.json()


def health_response(target, src=LOOPBACK, timeout=10.0):
    """GET /healthz, checked to be 200. On a Stack from LOOPBACK (operator
    endpoints are loopback-only); a Client must be from loopback already."""
    r = _send(target, "GET", "/healthz", src=src, timeout=timeout)
    check(r.status == 200, "GET /healthz: " + r.describe())
    return r


def read_health(target, src=LOOPBACK, timeout=10.0):
    """The /healthz body (see health_response)."""
    return health_response(target, src=src, timeout=timeout).json()


def answer_complete(reply):
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    return bool(m) and len(body) >= int(m.group(1))


def raw_request(stack, data, src=None, timeout=10.0):
    """Sends bytes as they are over TLS (for what http.client refuses to send)
    and returns (status, headers dict lowercased, body bytes)."""
    ctx = stack.tls_context()
    with socket.create_connection(("127.0.0.1", stack.https_port), timeout=timeout,
                                  source_address=(src or fresh_addr(), 0)) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(data)
            reply = b""
            # Stop at the end of the first answer: after refusing a request
            # nginx may linger for the body it never got, up to 5 s.
            while not answer_complete(reply):
                try:
                    b = s.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not b:
                    break
                reply += b
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/\d\.\d (\d{3})", lines[0]) if lines else None
    if not m:
        raise TestFailure("raw request %r: unparsable answer %r" % (data[:80], reply[:200]))
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body


def problem_errors(resp, status=None):
    """Why resp is not an RFC 9457 problem (per the contract) for its status."""
    errs = []
    if status is not None and resp.status != status:
        errs.append("status %d, want %d" % (resp.status, status))
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/problem+json":
        errs.append("Content-Type %r, want application/problem+json" % resp.header("Content-Type"))
    if resp.method == "HEAD":
        return errs
    try:
        body = resp.json()
    except ValueError:
        return errs + ["body is not JSON"]
    if not isinstance(body, dict):
        return errs + ["body is not a JSON object"]
    for key in ("type", "title", "status", "detail"):
        if key not in body:
            errs.append("body lacks %r" % key)
    t = body.get("type")
    if "type" in body and not (t == "about:blank" or (isinstance(t, str) and t.startswith("/problems/"))):
        errs.append("type %r is neither about:blank nor /problems/<slug>" % (t,))
    if "title" in body and not (isinstance(body["title"], str) and body["title"]):
        errs.append("title %r is not a non-empty string" % (body["title"],))
    if "status" in body and body["status"] != resp.status:
        errs.append("body status %r differs from HTTP status %d" % (body["status"], resp.status))
    if "detail" in body and not isinstance(body["detail"], str):
        errs.append("detail %r is not a string" % (body["detail"],))
    return errs


def check_problem(resp, status=None):
    errs = problem_errors(resp, status)
    check(not errs, "%s: %s" % (resp.describe(), "; ".join(errs)))


# --- stacks --------------------------------------------------------------

_live_stacks = set()
_live_lock = threading.Lock()


def stop_all_stacks():
    with _live_lock:
        stacks = list(_live_stacks)
    for s in stacks:
        s.stop()


class StackError(TestFailure):
    pass


class Stack:
    """deploy/run-stack.sh in its own prefix, with its own config and ports.
    With shim=True the worker runs under tests/integration/worker-shim.sh,
    which keeps the FastCGI socket closed but the supervised pid alive after
    the real worker exits: run-stack.sh then keeps nginx up, so the test sees
    what nginx answers once the worker is gone, and the shim records the real
    worker's exit status and time."""

    def __init__(self, env, name, config=None, shim=False, run_args=()):
        self.env = env
        self.name = name
        # More run-stack.sh options (bench/ passes --nginx-dir).
        self.run_args = list(run_args)
        self.dir = os.path.join(env.work_dir, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "zookeeper.conf")
        self.write_config(config or config_text(state_dir=os.path.join(self.dir, "state")))
        self.https_port, self.http_port = free_ports(2)
        self.cert = os.path.join(self.dir, "tls", "cert.pem")
        self.log_path = os.path.join(self.dir, "stack.log")
        self.shim_dir = os.path.join(self.dir, "shim") if shim else None
        self.proc = None
        self.log = None
        self._ctx = None
        self.respawned = []  # workers started by spawn_worker(), oldest first
        # What run-stack.sh runs as the worker (None: env.bin), and more
        # environment for it: a wrapper that execs the real worker in place
        # (cluster.tag_worker_logs) keeps the worker's pid.
        self.bin_path = None
        self.extra_env = {}
        # Undo what a fault test did to the stack's surroundings, also when
        # the runner's watchdog tears the stack down mid-test: before_stop
        # (e.g. SIGCONT a frozen database, so it can be stopped) and
        # after_stop (e.g. unmount the state folder once nothing holds it).
        self.before_stop = []
        self.after_stop = []

    def write_config(self, text):
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.conf)  # the worker must never read half a file

    def start(self, ready_timeout=15.0):
        env = dict(os.environ)
        env.update(self.extra_env)
        bin_path = self.bin_path or self.env.bin
        if self.shim_dir:
            os.makedirs(self.shim_dir, exist_ok=True)
            if os.geteuid() == 0:
                pw = pwd.getpwnam("www-data")
                os.chown(self.shim_dir, pw.pw_uid, pw.pw_gid)
            env["ZK_SHIM_REAL_BIN"] = self.env.bin
            env["ZK_SHIM_DIR"] = self.shim_dir
            bin_path = os.path.join(self.env.here, "worker-shim.sh")
        cmd = [os.path.join(self.env.repo, "deploy", "run-stack.sh"),
               "--bin", bin_path, "--config", self.conf, "--prefix", self.dir,
               "--https-port", str(self.https_port), "--http-port", str(self.http_port)] + self.run_args
        if self.log is not None:
            self.log.close()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        with _live_lock:
            _live_stacks.add(self)
        try:
            self._wait_ready(ready_timeout)
        except TestFailure:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError("stack %s: run-stack.sh exited with %d before it was ready:\n%s"
                                 % (self.name, self.proc.returncode, self.log_tail()))
            if os.path.exists(self.cert):
                try:
                    r = request(self, "GET", "/animals", timeout=2.0)
                    if r.status == 200:
                        return
                    last = r.describe()
                except (TestFailure, OSError) as e:
                    last = str(e)
            time.sleep(0.1)
        raise StackError("stack %s not ready after %.0f s (last: %s):\n%s"
                         % (self.name, timeout, last, self.log_tail()))

    def tls_context(self):
        if self._ctx is None:
            ctx = ssl.create_default_context(cafile=self.cert)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._ctx = ctx
        return self._ctx

    def url_base(self):
        return "https://127.0.0.1:%d" % self.https_port

    def worker_pid(self):
        """The real worker's pid (the shim's child when shimmed; the newest
        spawn_worker() one after a restart)."""
        if self.respawned:
            return self.respawned[-1].pid
        path = (os.path.join(self.shim_dir, "worker.pid") if self.shim_dir
                else os.path.join(self.dir, "zookeeper-fcgi.pid"))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
        raise StackError("stack %s: no pid in %s" % (self.name, path))

    def nginx_pid(self):
        with open(os.path.join(self.dir, "nginx.pid")) as f:
            return int(f.read().strip())

    def shim_exit(self, timeout):
        """(status, unix time) the real worker exited with, or None."""
        path = os.path.join(self.shim_dir, "worker.exit")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    status, when = f.read().split()
                return int(status), float(when)
            except (OSError, ValueError):
                time.sleep(0.01)
        return None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=15):
        text = self.log_text().rstrip("\n").split("\n")
        return "\n".join("      | " + line for line in text[-lines:])

    # --- restarting the worker (fault tests) -----------------------------

    def socket_path(self):
        return os.path.join(os.path.realpath(self.dir), "zookeeper.sock")

    def spawn_command(self):
        """run-stack.sh's start_worker() command for this stack; systemd's
        ExecStart runs the same spawn-fcgi -n (with its own paths)."""
        if os.geteuid() == 0:
            opts = ["-u", "www-data", "-g", "www-data", "-U", "www-data", "-G", "www-data", "-M", "0660"]
        else:
            opts = ["-M", "0600"]
        real = os.path.realpath
        return (["spawn-fcgi", "-n", "-s", self.socket_path()] + opts
                + ["--", real(self.env.bin), "--config", real(self.conf),
                   "--state-dir", real(os.path.join(self.dir, "state"))])

    def spawn_worker(self, timeout=10.0):
        """Starts the worker again after the previous one died, as the
        deployment does (systemd Restart=on-failure reruns spawn-fcgi, which
        binds the socket anew). Needs shim=True, so that run-stack.sh kept
        nginx up when the first worker died. spawn-fcgi refuses a socket that
        still accepts, so this retries until the old listener is gone, then
        waits until the new socket accepts (requests queue in its backlog
        while the worker restores its jobs). Returns the Popen (spawn-fcgi -n
        execs the worker in place, so its pid is the worker's); stop() ends
        it with SIGTERM."""
        check(self.shim_dir is not None, "spawn_worker() needs a stack started with shim=True")
        deadline = time.monotonic() + timeout
        while True:
            p = subprocess.Popen(self.spawn_command(), stdin=subprocess.DEVNULL, stdout=self.log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
            # Ready once spawn-fcgi has exec'd the worker (it binds the socket
            # first, so an accepting socket alone could be a spawn-fcgi whose
            # exec is about to fail) and the socket accepts.
            while p.poll() is None and not (self._is_worker(p.pid) and unix_socket_accepts(self.socket_path())):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            if p.poll() is None:
                break
            if time.monotonic() > deadline:
                raise StackError("stack %s: spawn-fcgi kept failing (last status %d):\n%s"
                                 % (self.name, p.returncode, self.log_tail()))
            time.sleep(0.02)  # the old listener is still there
        self.respawned.append(p)
        check(unix_socket_accepts(self.socket_path()),
              "stack %s: the respawned worker's socket does not accept after %.0f s" % (self.name, timeout))
        return p

    def _is_worker(self, pid):
        try:
            return os.readlink("/proc/%d/exe" % pid).startswith(os.path.realpath(self.env.bin))
        except OSError:
            return False

    def _stop_respawned(self):
        for p in self.respawned:
            terminate(p, 5)

    def stop(self, timeout=10.0):
        """SIGTERM to run-stack.sh (as Ctrl-C would be); the whole session is
        killed if it does not finish in time. Returns run-stack's status."""
        if self.proc is None:
            self._run_hooks(self.after_stop)
            return None
        with _live_lock:
            _live_stacks.discard(self)
        self._run_hooks(self.before_stop)
        rc = terminate(self.proc, timeout, group=True)
        self._stop_respawned()
        if self.log is not None:
            self.log.close()
            self.log = None
        self._run_hooks(self.after_stop)
        return rc

    @staticmethod
    def _run_hooks(hooks):
        while hooks:
            try:
                hooks.pop(0)()
            except Exception as e:  # a teardown must go on; the test reports its own failure
                print("      teardown hook failed: %s" % e, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def unix_socket_accepts(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_dead(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def poll_until_done(client, uuid, deadline_s, interval=0.05):
    """Polls GET /query/{uuid}; returns (final response, list of 202 responses)."""
    pending = []
    deadline = time.monotonic() + deadline_s
    while True:
        r = client.request("GET", "/query/" + uuid)
        if r.status != 202:
            return r, pending
        pending.append(r)
        check(time.monotonic() < deadline,
              "GET /query/%s still 202 after %.1f s: %s" % (uuid, deadline_s, r.describe()))
        time.sleep(interval)


# --- processes ---------------------------------------------------------------

def terminate(proc, timeout=5.0, group=False):
    """SIGTERM to a subprocess.Popen that still runs, then up to `timeout`
    seconds for it to exit; SIGKILL (to its whole process group if `group`)
    and 5 s more if it does not. Returns its exit status."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if group:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            else:
                proc.kill()
            proc.wait(5)
    return proc.returncode


def kill_and_wait(proc, timeout=None):
    """Waits up to `timeout` seconds (None: not at all) for a Popen to exit;
    SIGKILL and reap it if it has not. Returns its exit status, or None if
    it had to be killed."""
    if timeout is not None:
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        return None
    return proc.returncode


def kill_worker(st, sig, timeout=5.0):
    """Sends sig to the stack's current worker and waits for it to exit.
    Returns (status as a shell reports it, unix time of the exit), or None if
    it did not exit in time."""
    if st.respawned:
        p = st.respawned[-1]
        os.kill(p.pid, sig)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return (128 - rc if rc < 0 else rc), time.time()
    os.kill(st.worker_pid(), sig)
    return st.shim_exit(timeout)


def pct(values, q):
    """The q-quantile of values (nearest rank), NaN for none."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def threads_of(pid):
    """The thread count of a process, from /proc (-1 if it has none)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1
