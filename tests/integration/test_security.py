"""Security of the production deployment, black-box: the files `make install`
renders (nginx site, snippets, systemd unit) served by a real nginx.

Design notes
- Production files, not the dev ones: each stack runs `make install` with
  every directory variable pointed into its own prefix, then serves the
  installed sites-enabled/zookeeper under an http {} block that copies
  Debian 12's nginx.conf, which still enables TLSv1 and TLSv1.1. The site has
  to hold its own against that, as it must on a real host.
- The worker is started the way systemd starts it: the installed unit's own
  ExecStart (spawn-fcgi -n ...), as a uid of its own with www-data as primary
  group, no capabilities, no_new_privs and the unit's UMask, which is what
  DynamicUser= + Group=www-data give. So the socket's owner and mode are the
  unit's, not a test's guess. (make systemd-check proves it under systemd.)
- Two stacks. "worker": the real worker behind the site on 127.0.0.1 (TLS,
  headers, redirect, rate limit). "recorder": the site in a network namespace
  of its own, in front of tests/integration/fcgi_recorder.py instead of the
  worker, so a test sees exactly which requests reached the upstream and with
  which FastCGI params; a second namespace joined by a veth pair is the
  non-loopback operator client. Both namespaces are made here and removed
  afterwards; test traffic never leaves them or loopback, and nothing is
  added to the host's own network namespace, so no route can collide.
- Needs root (namespaces, www-data, another uid), as `make check` runs.
"""

import os
import pwd
import grp
import re
import secrets
import shlex
import shutil
import ssl
import subprocess
import threading
import time

import harness
from harness import check, check_problem, request, Client
from fcgi_recorder import Recorder
import registry
from registry import test

registry.module_backends(__name__, only="sqlite",
                         why="the production install's nginx, TLS, sandbox and socket: no store involved, once is enough")

WORKER_UID = 64999           # stands in for the unit's DynamicUser (systemd uses 61184..65519)
SERVER_ADDR = "198.18.0.1"   # RFC 2544 benchmarking range, inside our own namespaces only
CLIENT_ADDR = "198.18.0.2"
OPERATOR_USER = "operator"
HSTS_MIN_AGE = 31536000      # one year: what HSTS preload lists ask for

_state = {}
_state_lock = threading.Lock()


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 30)
    r = subprocess.run(cmd, **kw)
    if r.returncode != 0:
        out = (r.stdout or b"") + (r.stderr or b"")
        raise harness.StackError("%s exited %d:\n%s" % (
            " ".join(cmd), r.returncode, out.decode("utf-8", "replace")[-2000:]))
    return r


def need_root():
    check(os.geteuid() == 0, "the security tests need root (network namespaces, www-data)")


# --- the production files, installed into a prefix ---------------------------

def make_install(env, root, socket_path):
    """`make install` into root/...: the files production gets, with paths
    that point into root. Returns the installed files' paths."""
    paths = {
        "BINDIR": os.path.join(root, "bin"),
        "SYSCONFDIR": os.path.join(root, "etc"),
        "NGINXDIR": os.path.join(root, "etc", "nginx"),
        "UNITDIR": os.path.join(root, "lib", "systemd", "system"),
        "DATADIR": os.path.join(root, "share"),
        "ZK_LOGDIR": os.path.join(root, "logs"),
        "ZK_SOCKET": socket_path,
    }
    os.makedirs(paths["ZK_LOGDIR"], exist_ok=True)
    # -o: install the binary under test as it is, never rebuild it here.
    run(["make", "-s", "-C", env.repo, "-o", env.bin, "install", "BIN=" + env.bin]
        + ["%s=%s" % kv for kv in paths.items()], timeout=120)
    confdir = os.path.join(paths["SYSCONFDIR"], "zookeeper")
    return {
        "site": os.path.join(paths["NGINXDIR"], "sites-enabled", "zookeeper"),
        "unit": os.path.join(paths["UNITDIR"], "zookeeper.service"),
        "confdir": confdir,
        "cert": os.path.join(confdir, "tls", "zookeeper.crt"),
        "key": os.path.join(confdir, "tls", "zookeeper.key"),
        "htpasswd": os.path.join(confdir, "operators.htpasswd"),
        "logs": paths["ZK_LOGDIR"],
    }


def make_certificate(files, addrs):
    os.makedirs(os.path.dirname(files["cert"]), exist_ok=True)
    san = ",".join(["DNS:localhost"] + ["IP:" + a for a in addrs])
    run(["openssl", "req", "-x509", "-new", "-nodes", "-sha256", "-days", "2",
         "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-keyout", files["key"], "-out", files["cert"], "-subj", "/CN=localhost",
         "-addext", "subjectAltName=" + san])


# Like the package's postinst: root:www-data 0640, SHA-512 crypt.
def make_htpasswd(files, password):
    hashed = run(["openssl", "passwd", "-6", "-stdin"], input=password.encode()).stdout
    with open(files["htpasswd"], "w") as f:
        f.write("%s:%s\n" % (OPERATOR_USER, hashed.decode().strip()))
    os.chown(files["htpasswd"], 0, grp.getgrnam("www-data").gr_gid)
    os.chmod(files["htpasswd"], 0o640)


def rewrite_listens(site_path, addrs, https_port, http_port):
    """Moves the site's production listens (80, 443, IPv4 and IPv6) to test
    addresses and ports; fails if the site no longer has exactly those."""
    with open(site_path) as f:
        text = f.read()
    swaps = [
        (r"^(\s*)listen 80;$", "".join("listen %s:%d; " % (a, http_port) for a in addrs)),
        (r"^(\s*)listen \[::\]:80;$", "# (IPv6 listen dropped for the test)"),
        (r"^(\s*)listen 443 ssl http2;$",
         "".join("listen %s:%d ssl http2; " % (a, https_port) for a in addrs)),
        (r"^(\s*)listen \[::\]:443 ssl http2;$", "# (IPv6 listen dropped for the test)"),
    ]
    for pattern, repl in swaps:
        text, n = re.subn(pattern, lambda m: m.group(1) + repl, text, flags=re.M)
        check(n == 1, "%s: expected one line matching %r, found %d" % (site_path, pattern, n))
    os.remove(site_path)  # the sites-enabled symlink; the copy replaces it
    with open(site_path, "w") as f:
        f.write(text)


def write_nginx_conf(root, files, control_port=None):
    """Debian 12's nginx.conf http {} settings around the installed site; a
    control server on control_port keeps Debian's TLS defaults, to prove the
    client here can still speak TLS 1.0 when a server allows it."""
    control = ""
    if control_port:
        control = """
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate     %s;
        ssl_certificate_key %s;
        ssl_ciphers         DEFAULT:@SECLEVEL=0;
        return 204;
    }""" % (control_port, files["cert"], files["key"])
    tmp = os.path.join(root, "tmp")
    os.makedirs(tmp, exist_ok=True)
    conf = """# written by tests/integration/test_security.py
%(user)s
daemon off;
master_process on;
worker_processes 2;
pid %(root)s/nginx.pid;
error_log %(logs)s/error.log info;
events { worker_connections 256; }
http {
    # As Debian 12's /etc/nginx/nginx.conf has them, TLSv1 and TLSv1.1 included.
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log %(logs)s/access.log;
    gzip on;
    client_body_temp_path %(tmp)s/client_body;
    fastcgi_temp_path %(tmp)s/fastcgi;
    proxy_temp_path %(tmp)s/proxy;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
    include %(sites)s/*;%(control)s
}
""" % {"user": "user www-data;", "root": root, "logs": files["logs"], "tmp": tmp,
       "sites": os.path.dirname(files["site"]), "control": control}
    path = os.path.join(root, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


# --- the worker, as the unit starts it ----------------------------------------

def unit_settings(unit_path):
    """The [Service] key=value lines of a unit file, continuations joined;
    repeated keys keep their last value."""
    with open(unit_path) as f:
        text = f.read().replace("\\\n", " ")
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


class UnitWorker:
    """The installed unit's ExecStart, run with the identity and umask the
    unit gives it, its /run and /var/lib paths moved into root."""

    def __init__(self, root, unit_path, socket_path):
        self.unit = unit_settings(unit_path)
        self.run_dir = os.path.dirname(socket_path)
        self.state_dir = os.path.join(root, "state")
        self.socket = socket_path
        self.argv = [a.replace("/run/zookeeper/zookeeper.sock", socket_path)
                     .replace("/var/lib/zookeeper", self.state_dir)
                     for a in shlex.split(self.unit["ExecStart"])]
        self.log_path = os.path.join(root, "worker.log")
        self.proc = None

    def start(self):
        gid = grp.getgrnam(self.unit["Group"]).gr_gid
        # RuntimeDirectory=/StateDirectory= with their modes, owned as systemd would.
        for path, mode in ((self.run_dir, self.unit["RuntimeDirectoryMode"]),
                           (self.state_dir, self.unit["StateDirectoryMode"])):
            os.makedirs(path, exist_ok=True)
            os.chown(path, WORKER_UID, gid)
            os.chmod(path, int(mode, 8))
        umask = int(self.unit["UMask"], 8)
        cmd = ["setpriv", "--reuid=%d" % WORKER_UID, "--regid=%d" % gid, "--clear-groups",
               "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"] + self.argv
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=lambda: os.umask(umask))
        deadline = time.monotonic() + 5
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise harness.StackError("worker (%s) did not create %s:\n%s" % (
                    " ".join(self.argv), self.socket, self.log_tail()))
            time.sleep(0.05)

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-1500:]
        except OSError:
            return ""

    def stop(self):
        if self.proc:
            harness.terminate(self.proc, 5)
            self.log.close()


# --- network namespaces --------------------------------------------------------

class Namespaces:
    """A server namespace (198.18.0.1) and a client namespace (198.18.0.2),
    joined by a veth pair, each with its own loopback up."""

    def __init__(self):
        tag = "%d" % os.getpid()
        self.server, self.client = "zk-sec-s" + tag, "zk-sec-c" + tag
        self.made = []

    @staticmethod
    def remove_stale():
        """Namespaces of an earlier run that was killed outright (its pid,
        the names' suffix, is gone); a live run's are left alone."""
        listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for name in re.findall(r"^(zk-sec-[sc](\d+))\b", listing, re.M):
            if not harness.pid_alive(int(name[1])):
                subprocess.run(["ip", "netns", "del", name[0]], capture_output=True)

    def start(self):
        self.remove_stale()
        for ns in (self.server, self.client):
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
        vs, vc = "zkvs%d" % (os.getpid() % 100000), "zkvc%d" % (os.getpid() % 100000)
        run(["ip", "link", "add", vs, "netns", self.server, "type", "veth",
             "peer", "name", vc, "netns", self.client])
        for ns, dev, addr in ((self.server, vs, SERVER_ADDR), (self.client, vc, CLIENT_ADDR)):
            run(["ip", "-n", ns, "addr", "add", addr + "/30", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return self

    def stop(self):
        # Deleting a namespace deletes the veth end in it, and with it the pair.
        while self.made:
            subprocess.run(["ip", "netns", "del", self.made.pop()], capture_output=True)


# --- stacks --------------------------------------------------------------------

class ProdStack:
    """The installed production site served by nginx (inside a namespace when
    netns is given), its upstream the unix socket at self.socket. Quacks like
    harness.Stack for harness.Client."""

    def __init__(self, env, name, addrs, netns=None, control=False):
        self.env = env
        self.dir = os.path.join(env.work_dir, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.netns = netns
        self.addrs = addrs
        self.socket = os.path.join(self.dir, "run", "zookeeper.sock")
        ports = harness.free_ports(3)
        self.https_port, self.http_port = ports[0], ports[1]
        self.control_port = ports[2] if control else None
        self.files = make_install(env, self.dir, self.socket)
        self.cert = self.files["cert"]
        self.password = secrets.token_urlsafe(12)
        make_certificate(self.files, ["127.0.0.1"] + [a for a in addrs if a != "127.0.0.1"])
        make_htpasswd(self.files, self.password)
        rewrite_listens(self.files["site"], addrs, self.https_port, self.http_port)
        self.conf = write_nginx_conf(self.dir, self.files, self.control_port)
        self.proc = None
        self._ctx = None

    def in_ns(self, cmd):
        return ["ip", "netns", "exec", self.netns] + cmd if self.netns else cmd

    def start_nginx(self):
        run(self.in_ns(["nginx", "-t", "-q", "-p", self.dir + "/", "-c", self.conf, "-e", "stderr"]))
        self.log = open(os.path.join(self.dir, "nginx.out"), "ab")
        self.proc = subprocess.Popen(
            self.in_ns(["nginx", "-p", self.dir + "/", "-c", self.conf, "-e", "stderr"]),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            status, _, _ = self.curl(self.netns, "https://127.0.0.1:%d/animals" % self.https_port)
            if status == 200:
                return self
            check(self.proc.poll() is None, "nginx exited %s; see %s/logs/error.log"
                  % (self.proc.returncode, self.dir))
            check(time.monotonic() < deadline, "stack %s not ready (last status %s)"
                  % (self.dir, status))
            time.sleep(0.1)

    def curl(self, ns, url, method="GET", headers=(), user=None, data=None):
        """One request with curl from namespace ns (None: here); returns
        (status or None, lowercased headers, body bytes)."""
        cmd = ["curl", "-sS", "-i", "--http1.1", "--max-time", "5", "--cacert", self.cert,
               "-X", method]
        for h in headers:
            cmd += ["-H", h]
        if user:
            cmd += ["-u", user]
        if data is not None:
            cmd += ["--data-binary", "@-"]
        cmd.append(url)
        if ns:
            cmd = ["ip", "netns", "exec", ns] + cmd
        r = subprocess.run(cmd, input=data, capture_output=True, timeout=15)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/[\d.]+ (\d{3})", lines[0])
        if not m:
            return None, {}, r.stderr
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return int(m.group(1)), hdrs, body

    def tls_context(self):
        if self._ctx is None:
            self._ctx = ssl.create_default_context(cafile=self.cert)
        return self._ctx

    def stop(self):
        if self.proc:
            harness.terminate(self.proc, 5)
            self.log.close()
            self.proc = None


class Teardown:
    """Registered with the harness, so an aborted run cleans up too; parts
    stop in the order given."""

    def __init__(self, parts):
        self.parts = parts
        with harness._live_lock:
            harness._live_stacks.add(self)

    def stop(self):
        with harness._live_lock:
            harness._live_stacks.discard(self)
        while self.parts:
            try:
                self.parts.pop(0).stop()
            except Exception as e:  # keep going: the namespaces must go too
                print("security teardown: %s: %s" % (type(e).__name__, e))


def shared(key, build):
    """Builds a stack once per run and hands it to every test; a failed build
    is torn down at once and its error repeated to later tests."""
    with _state_lock:
        if key not in _state:
            need_root()
            parts = []
            teardown = Teardown(parts)
            try:
                _state[key] = build(parts)
            except Exception as e:
                teardown.stop()
                _state[key] = e
                raise
        value = _state[key]
    if isinstance(value, Exception):
        raise harness.StackError("stack %s failed to start earlier: %s"
                                 % (key, str(value).split("\n")[0]))
    return value


def worker_stack(env):
    """The production site on 127.0.0.1 in front of the real worker."""
    def build(parts):
        stack = ProdStack(env, "security-worker", ["127.0.0.1"], control=True)
        worker = UnitWorker(stack.dir, stack.files["unit"], stack.socket)
        parts += [stack, worker]  # nginx stops first, then the worker
        worker.start()
        stack.start_nginx()
        return stack, worker
    return shared("worker", build)


def recorder_stack(env):
    """The production site inside its own namespace, on its loopback and on
    SERVER_ADDR, in front of the FastCGI recorder."""
    def build(parts):
        ns = Namespaces()
        parts.append(ns)
        ns.start()
        stack = ProdStack(env, "security-recorder", ["127.0.0.1", SERVER_ADDR],
                          netns=ns.server)
        parts.insert(0, stack)
        os.makedirs(os.path.dirname(stack.socket), exist_ok=True)
        os.chmod(os.path.dirname(stack.socket), 0o755)
        rec = Recorder(stack.socket).start()
        parts.insert(1, rec)
        stack.start_nginx()
        return stack, rec, ns
    return shared("recorder", build)


# --- tests -----------------------------------------------------------------------

def stat_line(path):
    st = os.stat(path)
    return "%d:%s %o" % (st.st_uid, grp.getgrgid(st.st_gid).gr_name, st.st_mode & 0o7777)


def connect_as(user, path):
    """Whether `user` may connect to the unix socket at path (EACCES or not)."""
    py = "/usr/bin/python3"
    check(os.path.exists(py), "%s is needed to connect as another user" % py)
    pw = pwd.getpwnam(user)
    code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n sys.exit(13)\n")
    r = subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                        "--init-groups", py, "-c", code, path], capture_output=True, timeout=10)
    check(r.returncode in (0, 13), "connect probe as %s failed: %r" % (user, r.stderr[-300:]))
    return r.returncode == 0


@test
def security_socket_owner_and_mode(env):
    stack, worker = worker_stack(env)
    sock, run_dir = stat_line(worker.socket), stat_line(worker.run_dir)
    env.note("unit's ExecStart: " + " ".join(worker.argv[:8]) + " ...")
    env.note("socket %s, directory %s" % (sock, run_dir))
    check(sock == "%d:www-data 660" % WORKER_UID,
          "socket is %s, want <worker uid %d>:www-data 660" % (sock, WORKER_UID))
    check(run_dir == "%d:www-data 750" % WORKER_UID,
          "runtime directory is %s, want %d:www-data 750" % (run_dir, WORKER_UID))
    check(connect_as("www-data", worker.socket), "www-data (nginx) cannot connect to the socket")
    check(not connect_as("nobody", worker.socket), "nobody can connect to the socket")


def s_client(port, version, cafile, seclevel0):
    cmd = ["openssl", "s_client", "-brief", "-connect", "127.0.0.1:%d" % port,
           "-servername", "localhost", "-" + version, "-CAfile", cafile, "-verify_return_error"]
    if seclevel0:
        # Without this the client's own OpenSSL would refuse TLS 1.0/1.1 and
        # a "refused" result would prove nothing about the server.
        cmd += ["-cipher", "DEFAULT:@SECLEVEL=0"]
    r = subprocess.run(cmd, input=b"", capture_output=True, timeout=10)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    m = re.search(r"^Protocol version: (\S+)", out, re.M)
    return m.group(1) if (m and r.returncode == 0) else None, out


@test
def security_tls_1_0_and_1_1_refused(env):
    stack, _ = worker_stack(env)
    for version, name in (("tls1", "TLSv1"), ("tls1_1", "TLSv1.1")):
        control, out = s_client(stack.control_port, version, stack.cert, True)
        check(control == name, "control server with Debian's defaults did not speak %s, so this "
              "client cannot test it:\n%s" % (name, out[-600:]))
        got, out = s_client(stack.https_port, version, stack.cert, True)
        check(got is None, "site accepted %s (Debian's http-level default leaked in)" % name)
        check("protocol version" in out or "no protocols available" in out,
              "%s refused, but not for the protocol version:\n%s" % (name, out[-600:]))
    env.note("TLSv1 and TLSv1.1 refused (alert protocol version); a control server allows both")


@test
def security_tls_1_2_and_1_3_accepted(env):
    stack, _ = worker_stack(env)
    for version, name in (("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")):
        got, out = s_client(stack.https_port, version, stack.cert, False)
        check(got == name, "%s handshake with certificate verification failed:\n%s"
              % (name, out[-600:]))


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}


def header_errors(resp):
    errs = []
    hsts = resp.header("Strict-Transport-Security") or ""
    m = re.match(r"max-age=(\d+)", hsts)
    if not m or int(m.group(1)) < HSTS_MIN_AGE:
        errs.append("Strict-Transport-Security %r, want max-age >= %d" % (hsts, HSTS_MIN_AGE))
    for name, want in SECURITY_HEADERS.items():
        if resp.header(name) != want:
            errs.append("%s: %r, want %r" % (name, resp.header(name), want))
    if "default-src 'none'" not in (resp.header("Content-Security-Policy") or ""):
        errs.append("Content-Security-Policy %r" % resp.header("Content-Security-Policy"))
    if resp.header("Server") != "nginx":
        errs.append("Server %r, want plain 'nginx' (no version)" % resp.header("Server"))
    return errs


@test
def security_hsts_and_headers(env):
    stack, _ = worker_stack(env)
    # The worker's own answer, and one nginx writes itself (headers need `always`).
    for method, path in (("GET", "/animals"), ("PUT", "/animals"), ("GET", "/no/such/path")):
        r = request(stack, method, path)
        errs = header_errors(r)
        check(not errs, "%s: %s" % (r.describe(), "; ".join(errs)))


@test
def security_plain_http_redirected(env):
    stack, _ = worker_stack(env)
    status, hdrs, _ = stack.curl(None, "http://127.0.0.1:%d/animals?x=1" % stack.http_port,
                                 headers=["Host: localhost"])
    check(status == 301 and hdrs.get("location") == "https://localhost/animals?x=1",
          "plain HTTP got %s Location %r, want 301 https://localhost/animals?x=1"
          % (status, hdrs.get("location")))


@test
def security_rate_limit_429_then_recovers(env):
    stack, _ = worker_stack(env)
    c = Client(stack)  # one source address: one client to nginx
    limited = None
    try:
        for _ in range(60):
            r = c.request("POST", "/animals/no-such-animal")
            if r.status == 429:
                limited = r
                break
        check(limited is not None, "60 quick POSTs from one address never got 429")
        check_problem(limited, 429)
        check(limited.header("Retry-After") is not None, "429 without Retry-After")
        other = request(stack, "POST", "/animals/no-such-animal")
        check(other.status != 429, "another address is limited too: %s" % other.describe())
        time.sleep(2.5)  # the create zone refills its burst at 10 r/s
        r = c.request("POST", "/animals/no-such-animal")
        check(r.status != 429, "still limited 2.5 s later: %s" % r.describe())
    finally:
        c.close()


def recorded(rec):
    return len(rec.requests)


@test
def security_methods_outside_api_refused(env):
    stack, rec, _ = recorder_stack(env)
    base = "https://127.0.0.1:%d" % stack.https_port
    before = recorded(rec)
    for method in ("PUT", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "FOO"):
        for path in ("/animals", "/query/00000000-0000-0000-0000-000000000000"):
            status, hdrs, body = stack.curl(stack.netns, base + path, method=method)
            check(status == 405, "%s %s -> %s, want 405" % (method, path, status))
            check(hdrs.get("content-type") == "application/problem+json",
                  "%s %s -> Content-Type %r" % (method, path, hdrs.get("content-type")))
    check(recorded(rec) == before, "a refused method reached the upstream: %r"
          % rec.requests[before:])


@test
def security_body_over_limit_413(env):
    stack, rec, _ = recorder_stack(env)
    before = recorded(rec)
    status, hdrs, body = stack.curl(stack.netns, "https://127.0.0.1:%d/animals/lions"
                                    % stack.https_port, method="POST", data=b"x" * 4096)
    check(status == 413 and hdrs.get("content-type") == "application/problem+json",
          "POST with 4 KiB body -> %s %r %r" % (status, hdrs.get("content-type"), body[:200]))
    check(recorded(rec) == before, "the oversized request reached the upstream")


@test
def security_proxy_header_never_reaches_worker(env):
    stack, rec, _ = recorder_stack(env)
    before = recorded(rec)
    status, _, _ = stack.curl(stack.netns, "https://127.0.0.1:%d/animals" % stack.https_port,
                              headers=["Proxy: http://attacker.invalid:3128",
                                       "X-Zk-Probe: seen"])
    check(status == 200 and recorded(rec) == before + 1, "request did not reach the recorder")
    params = rec.requests[-1]
    # The control: other headers do arrive as HTTP_*, so a leak would show.
    check(params.get("HTTP_X_ZK_PROBE") == "seen", "headers do not reach the upstream at all: %r"
          % sorted(params))
    check(params.get("HTTP_PROXY", "") == "", "HTTP_PROXY reached the worker: %r"
          % params.get("HTTP_PROXY"))
    leaked = [k for k, v in params.items() if "attacker.invalid" in v]
    check(not leaked, "the Proxy header's value arrived as %s" % leaked)


@test
def security_operator_endpoints(env):
    stack, rec, ns = recorder_stack(env)
    remote = "https://%s:%d" % (SERVER_ADDR, stack.https_port)
    local = "https://127.0.0.1:%d" % stack.https_port
    good = "%s:%s" % (OPERATOR_USER, stack.password)
    status, _, _ = stack.curl(ns.client, remote + "/animals")
    check(status == 200, "public /animals from %s -> %s, want 200 (network path broken?)"
          % (CLIENT_ADDR, status))
    for path in ("/jobs", "/metrics", "/healthz"):
        before = recorded(rec)
        status, hdrs, body = stack.curl(ns.client, remote + path)
        check(status == 401, "%s from %s without credentials -> %s, want 401"
              % (path, CLIENT_ADDR, status))
        check(hdrs.get("www-authenticate", "").startswith("Basic"),
              "401 without a Basic challenge: %r" % hdrs)
        check(hdrs.get("content-type") == "application/problem+json",
              "401 Content-Type %r, want application/problem+json" % hdrs.get("content-type"))
        status, _, _ = stack.curl(ns.client, remote + path, user=OPERATOR_USER + ":wrong")
        check(status == 401, "%s with a wrong password -> %s, want 401" % (path, status))
        check(recorded(rec) == before, "%s: a refused request reached the upstream" % path)
        status, _, _ = stack.curl(ns.client, remote + path, user=good)
        check(status == 200 and recorded(rec) == before + 1
              and rec.requests[-1].get("ZK_CLIENT_SCOPE") == CLIENT_ADDR,
              "%s from %s with credentials -> %s, not passed to the upstream" % (path, CLIENT_ADDR, status))
        status, _, _ = stack.curl(ns.server, local + path)
        check(status == 200 and recorded(rec) == before + 2,
              "%s from loopback without credentials -> %s, want 200" % (path, status))
    env.note("from %s: 401 without or with wrong credentials, 200 with; loopback: 200" % CLIENT_ADDR)
