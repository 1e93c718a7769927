"""The benchmark's second ceiling: the FastCGI hop with a free worker.

nginx's `return 200` (bench.py's first ceiling) says what TLS, HTTP and wrk
cost; it leaves out what any FastCGI application costs nginx (the upstream
connection, the params it builds, the records it parses) and the least an
application must do itself. This ceiling adds both and nothing else: the
same nginx, TLS, connections and wrk script, in front of bench/fcgi_ceiling.cpp
(fcgi-ceiling), a libfcgi responder that answers each scenario with the bytes
the worker answered it with.

- The answers: captured from the running worker over its FastCGI socket (the
  same request nginx would send, with a REQUEST_ID of nginx's length), one
  file per answer. fcgi-ceiling sends the file back with the request's own
  REQUEST_ID in X-Request-Id, as the worker does, so the bytes nginx reads
  have the worker's size, headers included. A Location header (a creation's)
  is pointed at the hop's own poll, padded to its length: mix.lua follows it.
- nginx: the shipped nginx/upstream.conf.in block under another name and
  socket (same keepalive, max_fails), and one exact location per answer with
  the real location's limit_req zone (rates raised as for every scenario)
  and, for polls, its waiting-poll `if`; fastcgi_param, keep_conn and
  timeouts are the server-level ones every real location inherits.
- The responder: started by spawn-fcgi like the worker (-n, same user and
  socket mode as run-stack.sh), in the libfcgi loop chosen by bench.py's
  --hop-loop (see fcgi_ceiling.cpp for the two loops and docs/performance.md
  for which is used and why).
- Variants: "fcgi" (libfcgi's C API, as the worker uses it) and "fcgi++"
  (the same through fcgio.h's fcgi_streambuf), each with its own socket,
  upstream and location prefix, so one run can measure both. "NAME@N" runs
  that variant with N threads instead of --hop-threads ("fcgi,fcgi@2"
  measures one thread against two in the same rounds). "fcgi-min" is an
  experiment: the hop with only the 5 params the worker reads.
"""

import os
import re
import subprocess
import time

import fcgi_client
import harness

REQUEST_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # nginx's $request_id: 32 hex digits

VARIANTS = {
    "fcgi": {"args": [], "label": "FastCGI hop"},
    "fcgi++": {"args": ["--streams"], "label": "fcgi++ hop"},
    # An experiment, not a ceiling: the hop with only the params the worker
    # reads (its locations set their own fastcgi_param list, which replaces
    # the inherited 22), for what nginx and libfcgi spend on the others.
    "fcgi-min": {"args": [], "label": "FastCGI hop, 5 params",
                 "params": [("REQUEST_METHOD", "$request_method"), ("REQUEST_URI", "$request_uri"),
                            ("REQUEST_ID", "$request_id"), ("ZK_CLIENT_SCOPE", "$remote_addr"),
                            ("HTTP_PROXY", '""')]},
}

# Each answer's real location (nginx/zookeeper-locations.conf): its limit_req
# zone, and whether it carries the waiting-poll rewrite.
LOCATIONS = {"animals": ("zk_read", False), "create": ("zk_create", False),
             "poll-running": ("zk_read", True), "poll-done": ("zk_read", True)}


class HopError(Exception):
    pass


def parse_variant(spec):
    """("fcgi++", 2) for "fcgi++@2", ("fcgi", None) for "fcgi"; None if bad."""
    name, at, threads = spec.partition("@")
    if name not in VARIANTS or (at and not (threads.isdigit() and int(threads) > 0)):
        return None
    return name, int(threads) if at else None


def upstream_text(template_path, hop):
    """The shipped upstream block (nginx/upstream.conf.in), renamed and
    pointed at the hop responder's socket."""
    with open(template_path) as f:
        text = f.read()
    m = re.search(r"^upstream zookeeper_fcgi \{.*?^\}", text, re.M | re.S)
    if not m or "@SOCKET@" not in m.group(0):
        raise HopError("%s: no upstream zookeeper_fcgi block with @SOCKET@; update fcgi_hop.py" % template_path)
    block = m.group(0).replace("zookeeper_fcgi", hop.upstream).replace("@SOCKET@", hop.socket)
    return "# bench only: the %s responder (bench/fcgi_hop.py)\n%s\n" % (hop.variant, block)


def locations_text(hop, names, burst):
    out = ["# bench only: the %s (bench/fcgi_hop.py)" % hop.label]
    params = "".join("    fastcgi_param %s %s;\n" % kv for kv in hop.params)
    for name in sorted(names):
        zone, waits = LOCATIONS[name]
        # Never true under wrk (no ?wait=); evaluated like the real one.
        wait = "    if ($zk_waiting) {\n        return 404;\n    }\n" if waits else ""
        out.append("location = %s%s {\n%s    limit_req zone=%s burst=%d nodelay;\n%s    fastcgi_pass %s;\n}"
                   % (hop.prefix, name, wait, zone, burst, params, hop.upstream))
    return "\n".join(out) + "\n"


def capture(socket_path, method, uri):
    """The worker's answer to one request, as the raw STDOUT stream
    (CGI headers, blank line, body)."""
    s = fcgi_client.connect(socket_path, 10.0)
    try:
        s.sendall(fcgi_client.request_bytes(method, uri, params={"REQUEST_ID": REQUEST_ID}))
        stdout = b""
        while True:
            _, rtype, _, body = fcgi_client.read_record(s)
            if rtype == fcgi_client.STDOUT:
                stdout += body
            elif rtype == fcgi_client.END_REQUEST:
                return stdout
    finally:
        s.close()


def for_hop(answer, prefix):
    """A captured answer for one hop: a Location points at that hop's poll,
    padded with a query to the original length (nginx's exact location
    ignores the query; fcgi-ceiling strips it)."""
    def repl(m):
        target = prefix + "poll-running"
        value = m.group(2).decode()
        if len(target) + 1 < len(value):
            target += "?" + "p" * (len(value) - len(target) - 1)
        return m.group(1) + target.encode()
    return re.sub(rb"(?im)^(location: *)([^\r\n]*)", repl, answer)


class Responder:
    """One fcgi-ceiling under spawn-fcgi, serving `answers` ({name: raw
    answer}) for `variant` ("fcgi", "fcgi++", "NAME@N") on its own socket in
    `directory`, with its own nginx upstream and location prefix."""

    def __init__(self, binary, variant, directory, loop, threads):
        name, own_threads = parse_variant(variant)
        self.binary, self.variant, self.dir = binary, variant, directory
        self.loop, self.threads = loop, own_threads or threads
        self.args = VARIANTS[name]["args"]
        self.params = VARIANTS[name].get("params", [])
        tag = variant.replace("+", "p").replace("@", "-")  # fcgipp-2
        self.file_tag = tag
        self.prefix = "/bench-%s/" % tag
        self.upstream = "zk_bench_%s" % tag.replace("-", "_")
        self.label = VARIANTS[name]["label"] + (" (%d threads)" % own_threads if own_threads else "")
        self.socket = os.path.join(directory, "fcgi-ceiling-%s.sock" % tag)
        self.proc = None
        self.log = None

    def start(self, answers):
        os.makedirs(self.dir, exist_ok=True)
        files = []
        for name, raw in sorted(answers.items()):
            path = os.path.join(self.dir, "%s-%s.answer" % (self.file_tag, name))
            with open(path, "wb") as f:
                f.write(for_hop(raw, self.prefix))
            os.chmod(path, 0o644)
            files.append("%s=%s" % (name, path))
        if os.geteuid() == 0:  # as run-stack.sh starts the worker
            opts = ["-u", "www-data", "-g", "www-data", "-U", "www-data", "-G", "www-data", "-M", "0660"]
        else:
            opts = ["-M", "0600"]
        cmd = (["spawn-fcgi", "-n", "-s", self.socket] + opts + ["--", self.binary, "--loop", self.loop,
               "--threads", str(self.threads)] + self.args + files)
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.log = open(os.path.join(self.dir, "fcgi-ceiling-%s.log" % self.file_tag), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.socket) and harness.unix_socket_accepts(self.socket)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise HopError("fcgi-ceiling (%s) did not start: %s" % (self.variant, " ".join(cmd)))
            time.sleep(0.05)
        return self

    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def stop(self):
        if self.proc is not None:
            harness.terminate(self.proc, 5)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None
