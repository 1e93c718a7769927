#!/usr/bin/env python3
"""zookeeper benchmark: the real stack over HTTPS, measured against two
ceilings in the same run: nginx's own `return 200`, and the FastCGI hop with
a free worker. Started by bench/run.sh.

Design
- Stacks are started by deploy/run-stack.sh through the integration
  harness (tests/integration/harness.py), in private prefixes under
  BUILD/bench/: the same nginx, TLS, spawn-fcgi and worker as `make run`.
- Rate limits are raised by rendering a copy of nginx/ into BUILD/bench/nginx
  (run-stack.sh --nginx-dir): every limit_req_zone rate becomes 1000000r/s
  and every burst 1000000, so the zones are still looked up and accounted on
  every request but never refuse one (wrk sends everything from 127.0.0.1).
  The same copy's zookeeper-locations.conf includes PREFIX/bench-ceiling.conf,
  where the ceiling lives. The shipped files are never touched.
- The ceiling: for every answer a scenario gets, a location
  `= /bench-ceiling/<name>` answering `return 200` with a body of exactly
  the worker's answer's size (measured on the running stack, then nginx is
  reloaded). It is measured with the same wrk options and the same Lua script
  as the scenario, so wrk's own cost is the same on both sides; the ratio
  scenario/ceiling is what compares across machines.
- The second ceiling, the FastCGI hop with a free worker (bench/fcgi_hop.py):
  the same nginx, with the real locations' FastCGI config, in front of
  bench/fcgi_ceiling.cpp, a libfcgi responder answering each scenario with
  the worker's own answer, byte for byte but for its request id. Its ratio
  says how much of what nginx and wrk leave the worker actually costs.
  --hops fcgi,fcgi++ measures the same responder through fcgio.h's streams
  as a third side (issue 19's fcgi++ figure).
- Each (scenario, connections): one warm-up of each side (each ceiling, the
  scenario), then REPEATS rounds of one run per side, interleaved so a
  change in background load hits all; medians are reported.
- The CPU each side used (utime + stime of the worker, of nginx's processes
  and of wrk, over the run) divided by the requests answered: on a 2-core
  machine throughput is bounded by the sum, so this says what bounds a ratio.
- Latency at a fixed load: wrk keeps every connection busy, so its p99 is
  the queueing of a saturated machine (by Little's law the mean latency at
  32 connections is 32 / throughput, and the ceiling's throughput is twice
  ours). For the p99 a user sees, the GET scenarios are also run with
  bench/paced.lua: each of the 32 connections pauses after every answer, so
  that together they offer LATENCY_LOAD (0.5) of the scenario's own median
  throughput; the ceiling gets the same pause. A late answer delays that
  connection's next request rather than counting it late (coordinated
  omission), so the p99 is a lower bound; at this load a close one.
- Surveys: the finished one is created with a 0.2 s workload, the running
  one after a SIGHUP to 86400 s (the most the config takes), and the creation
  and mix scenarios run with the shipped 10-20 s after another SIGHUP.
- Capacity: its own stack (shim=True so the worker can be restarted under
  nginx). Surveys are created through the FastCGI socket by fcgi-flood (nginx
  and wrk would spend minutes of CPU on TLS for a million requests). While
  they are created the workload range is moved by SIGHUP every second so
  that every deadline falls into one window of CAPACITY_WINDOW seconds after
  the last creation: the completions then arrive as one burst. RSS comes from
  /proc/PID/status; the completion lag from the worker's histogram on
  /metrics (read over the FastCGI socket, as loopback needs no credentials).
  Then the worker is stopped and started again on the stored jobs, and the
  time until /healthz answers is the start-up time.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import fcgi_client  # noqa: E402
import fcgi_hop  # noqa: E402
import harness  # noqa: E402

RATE = "1000000r/s"
BURST = 1000000
CEILING_PREFIX = "/bench-ceiling/"
LONG_WORKLOAD_S = 86400  # the config's maximum
TICK = os.sysconf("SC_CLK_TCK")
CPU_KEYS = ("worker", "db", "hop", "nginx", "client")
SWITCH_KEYS = ("worker", "hop", "nginx", "client")


class BenchError(Exception):
    pass


class Env:
    """What harness.Stack needs from its environment."""

    def __init__(self, bin_path, work_dir):
        self.bin = bin_path
        self.repo = REPO
        self.here = os.path.join(REPO, "tests", "integration")  # worker-shim.sh
        self.work_dir = work_dir


# --- configuration ---------------------------------------------------------

def worker_config(overrides):
    """The shipped zookeeper.conf with {(section, key): value} replaced."""
    section, out, seen = None, [], set()
    with open(os.path.join(REPO, "zookeeper.conf")) as f:
        for line in f.read().split("\n"):
            m = re.match(r"\s*\[(\w+)\]", line)
            if m:
                section = m.group(1)
            m = re.match(r"\s*(\w+)\s*=", line)
            if m and (section, m.group(1)) in overrides:
                key = (section, m.group(1))
                line = "%s = %s" % (key[1], overrides[key])
                seen.add(key)
            out.append(line)
    missing = set(overrides) - seen
    if missing:
        raise BenchError("zookeeper.conf lacks %s" % sorted(missing))
    return "\n".join(out)


def substitute(path, pattern, repl, expect_min):
    with open(path) as f:
        text, n = re.subn(pattern, repl, f.read())
    if n < expect_min:
        raise BenchError("%s: %d match(es) of %r, expected at least %d; update bench.py"
                         % (path, n, pattern, expect_min))
    with open(path, "w") as f:
        f.write(text)


def nginx_variant(dst, ceiling_conf, hops):
    """nginx/ copied to dst with the limits raised, the ceilings' locations
    included at server level and the hops' upstreams at http level."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(os.path.join(REPO, "nginx"), dst)
    substitute(os.path.join(dst, "zookeeper-http.conf.in"), r"rate=\d+r/[sm]", "rate=" + RATE, 2)
    for name in ("zookeeper-locations.conf", "zookeeper-operator.conf.in"):
        substitute(os.path.join(dst, name), r"burst=\d+", "burst=%d" % BURST, 1)
    with open(os.path.join(dst, "zookeeper-locations.conf"), "a") as f:
        f.write("\n# bench only: the ceilings, written by bench/bench.py\ninclude %s;\n" % ceiling_conf)
    with open(ceiling_conf, "w") as f:
        f.write("# filled in by bench/bench.py once the answers' sizes are known\n")
    template = os.path.join(REPO, "nginx", "upstream.conf.in")
    with open(os.path.join(dst, "zookeeper-http.conf.in"), "a") as f:
        f.write("\n# bench only: the FastCGI hop's responders (bench/fcgi_hop.py)\n")
        for hop in hops:
            f.write(fcgi_hop.upstream_text(template, hop))


def ceiling_conf_text(sizes, hops):
    out = ["# bench only: nginx answering by itself with bodies of the worker's answers' sizes"]
    for name, size in sorted(sizes.items()):
        out.append("location = %s%s {\n    default_type application/json;\n    return 200 '%s';\n}"
                   % (CEILING_PREFIX, name, "x" * size))
    for hop in hops:
        out.append(fcgi_hop.locations_text(hop, sizes, BURST))
    return "\n".join(out) + "\n"


# --- processes ---------------------------------------------------------------

def proc_cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError("no %s for pid %d" % (field, pid))


def context_switches(pid):
    """Voluntary + involuntary switches of every thread of pid."""
    total = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def worker_pids(stack):
    """Every worker of the stack (several on PostgreSQL: run-stack.sh writes
    zookeeper-fcgi-N.pid for the second and later ones)."""
    pids = [stack.worker_pid()]
    for name in sorted(os.listdir(stack.dir)):
        m = re.match(r"zookeeper-fcgi-(\d+)\.pid$", name)
        if m:
            with open(os.path.join(stack.dir, name)) as f:
                pids.append(int(f.read().strip()))
    return pids


def database_pids(stack):
    """The stack's throwaway PostgreSQL cluster: the postmaster and its
    backends; with --ha both nodes' (the standby's walreceiver and startup
    process apply every commit) and not Patroni's or etcd's."""
    pids = []
    for data in ("pg/data", "ha/n1/data", "ha/n2/data"):
        try:
            with open(os.path.join(stack.dir, data, "postmaster.pid")) as f:
                master = int(f.readline().strip())
        except (OSError, ValueError):
            continue
        pids += [master] + children(master)
    return pids


class CpuMeter:
    """CPU seconds and context switches of the worker, of the FastCGI hop's
    responders, of nginx (master and workers) and of finished child
    processes (wrk) between start() and stop()."""

    def __init__(self, stack, hops=()):
        self.stack = stack
        self.hops = hops

    def _sample(self):
        master = self.stack.nginx_pid()
        nginx = [master] + children(master)
        workers = worker_pids(self.stack)
        db = database_pids(self.stack)
        hops = [p for p in (h.pid() for h in self.hops) if p]
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"worker": sum(proc_cpu_ticks(p) for p in workers) / TICK,
                "db": sum(proc_cpu_ticks(p) for p in db) / TICK,
                "hop": sum(proc_cpu_ticks(p) for p in hops) / TICK,
                "nginx": sum(proc_cpu_ticks(p) for p in nginx) / TICK,
                "client": kids.ru_utime + kids.ru_stime,
                "cs_worker": sum(context_switches(p) for p in workers),
                "cs_hop": sum(context_switches(p) for p in hops),
                "cs_nginx": sum(context_switches(p) for p in nginx),
                "cs_client": kids.ru_nvcsw + kids.ru_nivcsw}

    def start(self):
        self.t0 = self._sample()

    def stop(self):
        t1 = self._sample()
        return {k: t1[k] - self.t0[k] for k in t1}


# --- wrk ---------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(out):
    def grab(pattern, default=None):
        m = re.search(pattern, out, re.M)
        return m.groups() if m else default
    rps = grab(r"^Requests/sec:\s+([\d.]+)")
    if not rps:
        raise BenchError("wrk printed no Requests/sec:\n" + out)
    lat = {q: float(v) * UNITS[u] for q, v, u in
           re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    errors = [int(x) for x in grab(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                                   ("0", "0", "0", "0"))]
    return {"rps": float(rps[0]), "requests": int(grab(r"^\s+(\d+) requests in", ("0",))[0]),
            "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "non2xx": int(grab(r"Non-2xx or 3xx responses: (\d+)", ("0",))[0]),
            "errors": sum(errors)}


def run_wrk(stack, opts, target, conns, seconds, meter=None):
    """One wrk run; target is (path, script or None, script args)."""
    path, script, args = target
    threads = min(opts.threads, conns)
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", "%ds" % seconds, "--latency",
           "--timeout", "5s"]
    if script:
        cmd += ["-s", os.path.join(HERE, script)]
    cmd.append("https://127.0.0.1:%d%s" % (stack.https_port, path))
    if args:
        cmd += ["--"] + list(args)
    if meter:
        meter.start()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=seconds + 60)
    cpu = meter.stop() if meter else None
    if p.returncode != 0:
        raise BenchError("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    result = parse_wrk(p.stdout)
    if cpu and result["requests"]:
        n = result["requests"]
        result["cpu_us_per_req"] = {k: cpu[k] * 1e6 / n for k in CPU_KEYS}
        result["switches_per_req"] = {k: cpu["cs_" + k] / n for k in SWITCH_KEYS}
    return result


# --- the throughput stack ---------------------------------------------------

class Throughput:
    def __init__(self, env, opts):
        self.env, self.opts = env, opts
        self.prefix = os.path.join(env.work_dir, "throughput")
        self.ceiling_conf = os.path.join(self.prefix, "bench-ceiling.conf")
        self.nginx_dir = os.path.join(env.work_dir, "nginx")
        self.stack = None
        # Outside the stack's folder, which harness.Stack empties when it starts.
        hop_dir = os.path.join(env.work_dir, "hop")
        self.hops = [fcgi_hop.Responder(opts.ceiling_bin, v, hop_dir, opts.hop_loop, opts.hop_threads)
                     for v in opts.hops]

    def config(self, min_s, max_s):
        return worker_config({
            ("workload", "min_seconds"): min_s, ("workload", "max_seconds"): max_s,
            # Creations at full speed must never meet the limit: 100000 in
            # flight is 5000/s at 20 s.
            ("service", "max_jobs"): 10000000,
            ("service", "log_level"): self.opts.log_level,
            ("store", "backend"): self.opts.store,
        } | {("service", k): v for k, v in self.opts.service})

    def start(self):
        self.stack = harness.Stack(self.env, "throughput", config=self.config(0.2, 0.2),
                                   run_args=["--nginx-dir", self.nginx_dir, "--store", self.opts.store,
                                             "--workers", str(self.opts.workers)] + (["--ha"] if self.opts.ha else []))
        nginx_variant(self.nginx_dir, self.ceiling_conf, self.hops)
        # A throwaway cluster's first start runs initdb (and with --ha a base backup).
        self.stack.start(ready_timeout=180 if self.opts.ha else 60 if self.opts.store == "postgresql" else 15)
        return self.stack

    def stop(self):
        for hop in self.hops:
            hop.stop()
        if self.stack:
            self.stack.stop(timeout=60)
            if self.opts.ha:  # detached from run-stack.sh's session: make sure they are gone
                subprocess.run([os.path.join(REPO, "deploy", "ha-cluster.sh"), "stop",
                                os.path.join(self.stack.dir, "ha")], timeout=120)

    def reload_workload(self, min_s, max_s, check):
        """SIGHUP with a new workload range; returns the first survey whose
        duration shows the new range is in force."""
        self.stack.write_config(self.config(min_s, max_s))
        for pid in worker_pids(self.stack):
            os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job_id = self.create()
            job = self.request("GET", "/jobs/" + job_id).json()
            if check(job["duration_seconds"]):
                return job_id
            time.sleep(0.1)
        raise BenchError("the worker did not take workload %s-%s s after SIGHUP" % (min_s, max_s))

    def request(self, method, path, want=None):
        r = harness.request(self.stack, method, path)
        if want is not None and r.status != want:
            raise BenchError("setup: %s, want %d" % (r.describe(), want))
        return r

    def create(self):
        return self.request("POST", "/animals/" + harness.ANIMALS[0], want=202).json()

    def prepare_surveys(self):
        """The finished survey, the running one, and the shipped workload back."""
        finished = self.create()
        time.sleep(0.5)
        done = self.request("GET", "/query/" + finished, want=200)
        running = self.reload_workload(LONG_WORKLOAD_S, LONG_WORKLOAD_S, lambda d: d > 1000)
        self.reload_workload(10, 20, lambda d: d <= 20)
        return finished, running, done

    def settle(self, log):
        """Waits until the surveys earlier scenarios started have completed
        (all but the long running one), so their completions do not load
        the next measurement."""
        deadline = time.monotonic() + 60
        while True:
            r = harness.request(self.stack, "GET", "/metrics", src="127.0.0.1")
            if r.status != 200:
                raise BenchError("settle: " + r.describe())
            left = parse_metrics(r.body.decode())["in_flight"] - 1
            if left <= 0:
                return
            if time.monotonic() > deadline:
                log("  (still %d surveys in flight after 60 s; measuring anyway)" % left)
                return
            time.sleep(0.5)

    def install_ceiling(self, finished, running):
        """Both ceilings: nginx's locations with bodies of the answers' sizes,
        and the hops' responders with the worker's answers themselves."""
        sizes = {
            "animals": len(self.request("GET", "/animals", want=200).body),
            "create": len(self.request("POST", "/animals/" + harness.ANIMALS[0], want=202).body),
            "poll-running": len(self.request("GET", "/query/" + running, want=202).body),
            "poll-done": len(self.request("GET", "/query/" + finished, want=200).body),
        }
        sock = self.stack.socket_path()
        answers = {"animals": fcgi_hop.capture(sock, "GET", "/animals"),
                   "create": fcgi_hop.capture(sock, "POST", "/animals/" + harness.ANIMALS[0]),
                   "poll-running": fcgi_hop.capture(sock, "GET", "/query/" + running),
                   "poll-done": fcgi_hop.capture(sock, "GET", "/query/" + finished)}
        for hop in self.hops:
            hop.start(answers)
        with open(self.ceiling_conf + ".tmp", "w") as f:
            f.write(ceiling_conf_text(sizes, self.hops))
        os.replace(self.ceiling_conf + ".tmp", self.ceiling_conf)
        os.kill(self.stack.nginx_pid(), signal.SIGHUP)
        deadline = time.monotonic() + 10
        want = {CEILING_PREFIX + n: (200, size) for n, size in sizes.items()}
        for hop in self.hops:
            want.update({hop.prefix + n: (202 if n in ("create", "poll-running") else 200, size)
                         for n, size in sizes.items()})
        while time.monotonic() < deadline:
            got = {path: self.request("POST" if path.endswith("/create") else "GET", path) for path in want}
            if all((r.status, len(r.body)) == want[p] for p, r in got.items()):
                return sizes
            time.sleep(0.1)
        raise BenchError("nginx did not serve the ceilings after a reload: %s; see %s/logs/error.log"
                         % ("; ".join("%s %s" % (p, r.describe()) for p, r in got.items()
                                      if (r.status, len(r.body)) != want[p]), self.prefix))


def scenarios(finished, running):
    """Each scenario's target, and its ceilings' targets as a function of
    a ceiling's location prefix."""
    animals = ["/animals/" + a for a in harness.ANIMALS]
    q = "/query/"
    return [
        {"name": "GET /animals", "target": 0.45, "latency": True, "p99_target_ms": 5.0,
         "run": ("/animals", None, ()), "ceiling": lambda c: (c + "animals", None, ())},
        {"name": "GET /query/{id} running", "target": 0.45, "latency": True,
         "run": (q + running, None, ()), "ceiling": lambda c: (c + "poll-running", None, ())},
        {"name": "GET /query/{id} done", "target": 0.45, "latency": True,
         "run": (q + finished, None, ()), "ceiling": lambda c: (c + "poll-done", None, ())},
        {"name": "POST /animals/{animal}", "target": 0.30,
         "run": ("/", "create.lua", animals), "ceiling": lambda c: ("/", "create.lua", [c + "create"])},
        {"name": "mix 1 create : 20 polls", "target": None,
         "run": ("/", "mix.lua", [q + running] + animals),
         "ceiling": lambda c: ("/", "mix.lua", [c + "poll-running", c + "create"])},
    ]


def median_of(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(runs):
    def medians(field):
        out = {}
        for k in (CPU_KEYS if field == "cpu_us_per_req" else SWITCH_KEYS):
            vals = [r[field][k] for r in runs if field in r and k in r[field]]
            out[k] = statistics.median(vals) if vals else None
        return out
    return {"rps": median_of(runs, "rps"), "p50_ms": median_of(runs, "p50_ms"),
            "p99_ms": median_of(runs, "p99_ms"), "non2xx": sum(r["non2xx"] for r in runs),
            "errors": sum(r["errors"] for r in runs), "cpu_us_per_req": medians("cpu_us_per_req"),
            "switches_per_req": medians("switches_per_req"), "runs": runs}


def measure(stack, opts, scenario, conns, log, hops=()):
    """The scenario and its ceilings: "ceiling" (nginx's return 200) and one
    side per hop ("fcgi", "fcgi++"), in turn, REPEATS rounds."""
    meter = CpuMeter(stack, hops)
    targets = {"ceiling": scenario["ceiling"](CEILING_PREFIX)}
    targets.update({hop.variant: scenario["ceiling"](hop.prefix) for hop in hops})
    targets["run"] = scenario["run"]
    for side, target in targets.items():
        if opts.warmup > 0:
            run_wrk(stack, opts, target, conns, opts.warmup)
    runs = {side: [] for side in targets}
    for i in range(opts.repeats):
        for side, target in targets.items():
            r = run_wrk(stack, opts, target, conns, opts.duration, meter)
            runs[side].append(r)
            log("  %-24s c=%-4d %-7s #%d %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  non2xx %d  errors %d"
                % (scenario["name"], conns, side, i + 1, r["rps"], r["p50_ms"] or 0, r["p99_ms"] or 0,
                   r["non2xx"], r["errors"]))
    s, c = summarise(runs["run"]), summarise(runs["ceiling"])
    out = {"scenario": scenario["name"], "connections": conns, "target": scenario["target"],
           "result": s, "ceiling": c, "ratio": s["rps"] / c["rps"] if c["rps"] else None,
           "hops": {}}
    for hop in hops:
        h = summarise(runs[hop.variant])
        out["hops"][hop.variant] = {"label": hop.label, "result": h,
                                    "ratio": s["rps"] / h["rps"] if h["rps"] else None,
                                    "of_ceiling": h["rps"] / c["rps"] if c["rps"] else None}
    if scenario.get("latency") and conns == opts.latency_connections and opts.latency_load > 0 and s["rps"]:
        out["fixed_rate"] = fixed_rate(stack, opts, scenario, conns, opts.latency_load * s["rps"], log)
        out["fixed_rate"]["p99_target_ms"] = scenario.get("p99_target_ms")
    return out


def fixed_rate(stack, opts, scenario, conns, rate, log):
    """Ceiling, then scenario, each connection pausing so that together they
    offer about `rate` (see the module's doc)."""
    pause_ms = max(1, round(conns * 1000.0 / rate))
    out = {"rate": rate, "load": opts.latency_load, "pause_ms": pause_ms}
    for side, path in (("ceiling", scenario["ceiling"](CEILING_PREFIX)[0]), ("run", scenario["run"][0])):
        target = (path, "paced.lua", [str(pause_ms)])
        if opts.warmup > 0:
            run_wrk(stack, opts, target, conns, opts.warmup)
        r = run_wrk(stack, opts, target, conns, opts.duration)
        out[side] = r
        log("  %-24s c=%-4d %-7s paced %d ms: %6.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non2xx %d  errors %d"
            % (scenario["name"], conns, side, pause_ms, r["rps"], r["p50_ms"] or 0, r["p99_ms"] or 0,
               r["non2xx"], r["errors"]))
    return out


def run_throughput(env, opts, log):
    t = Throughput(env, opts)
    try:
        stack = t.start()
        finished, running, done = t.prepare_surveys()
        sizes = t.install_ceiling(finished, running)
        log("stack up: https://127.0.0.1:%d, answer sizes %s, finished survey %s (%r), running %s; hops %s"
            % (stack.https_port, sizes, finished, done.json(), running,
               ", ".join("%s (%s loop, %d thread(s), pid %s)" % (h.variant, h.loop, h.threads, h.pid())
                         for h in t.hops) or "none"))
        results = []
        for sc in scenarios(finished, running):
            if opts.only and not any(o in sc["name"] for o in opts.only):
                continue
            for conns in opts.connections:
                t.settle(log)
                results.append(measure(stack, opts, sc, conns, log, t.hops))
        return results, sizes
    finally:
        t.stop()


# --- capacity ------------------------------------------------------------

def fcgi_get(socket_path, uri, timeout=30.0):
    """One request on its own connection: it pins no acceptor afterwards."""
    s = fcgi_client.connect(socket_path, timeout)
    try:
        s.sendall(fcgi_client.request_bytes("GET", uri))
        status, _, body, _ = fcgi_client.read_answer(s)
        return status, body.decode()
    finally:
        s.close()


def parse_metrics(text):
    m = {"lag": []}
    for line in text.split("\n"):
        b = re.match(r'zookeeper_survey_completion_lag_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if b:
            m["lag"].append((float(b.group(1)), int(b.group(2))))
        v = re.match(r'(zookeeper_jobs_completed_total|zookeeper_jobs_created_total|'
                     r'zookeeper_jobs\{state="(?:queued|running|finished)"\}) (\d+)', line)
        if v:
            m[v.group(1)] = int(v.group(2))
    m["in_flight"] = m.get('zookeeper_jobs{state="queued"}', 0) + m.get('zookeeper_jobs{state="running"}', 0)
    m["completed"] = m.get("zookeeper_jobs_completed_total", 0)
    return m


def quantile(buckets, q):
    """histogram_quantile() over cumulative (le, count) pairs: (estimate, bucket bound)."""
    total = buckets[-1][1] if buckets else 0
    if total == 0:
        return None, None
    rank, prev_le, prev_n = q * total, 0.0, 0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le, le
            return prev_le + (le - prev_le) * (rank - prev_n) / max(1, n - prev_n), le
        prev_le, prev_n = le, n
    return prev_le, float("inf")


class Capacity:
    def __init__(self, env, opts, flood_bin, log):
        self.env, self.opts, self.flood_bin, self.log = env, opts, flood_bin, log
        self.n = opts.capacity
        self.stack = None

    def config(self, min_s, max_s):
        return worker_config({
            ("workload", "min_seconds"): "%.3f" % min_s, ("workload", "max_seconds"): "%.3f" % max_s,
            # More acceptors than the shipped 8 so that the loader can have
            # many creations waiting on one group commit; each costs a thread
            # (counted in the baseline RSS), not memory per survey.
            ("service", "acceptor_threads"): self.opts.capacity_connections + 16,
            ("service", "max_jobs"): self.n * 2,
            ("service", "queue_capacity"): min(10000000, self.n),
            ("service", "log_level"): self.opts.log_level,
        })

    def metrics(self):
        status, body = fcgi_get(self.stack.socket_path(), "/metrics")
        if status != 200:
            raise BenchError("/metrics answered %d" % status)
        return parse_metrics(body)

    def reload(self, min_s, max_s):
        self.stack.write_config(self.config(min_s, max_s))
        os.kill(self.stack.worker_pid(), signal.SIGHUP)

    def flood(self, count, progress=False):
        cmd = [self.flood_bin, "--socket", self.stack.socket_path(), "--count", str(count),
               "--connections", str(self.opts.capacity_connections), "--method", "POST", "--retry-busy"]
        if progress:
            cmd.append("--progress")
        return subprocess.Popen(cmd + ["/animals/" + a for a in harness.ANIMALS],
                                stdout=subprocess.PIPE, text=True)

    @staticmethod
    def flood_result(p):
        out = p.communicate()[0]
        last = out.strip().split("\n")[-1]
        try:
            return json.loads(last)
        except ValueError:
            raise BenchError("fcgi-flood printed no result:\n" + out)

    def wait_until(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.metrics()
            if cond(m):
                return m
            time.sleep(0.5)
        raise BenchError("capacity: %s not reached in %.0f s" % (what, timeout))

    def run(self):
        self.stack = harness.Stack(self.env, "capacity", config=self.config(0.5, 1.0), shim=True)
        self.stack.start(ready_timeout=30)
        try:
            return self._run()
        finally:
            self.stack.stop(timeout=60)

    def _run(self):
        r = {"surveys": self.n}
        pid = self.stack.worker_pid()
        r["rss_start_kb"] = rss_kb(pid)
        # A warm-up that also measures the creation rate (0.5-1 s surveys).
        pre = max(5000, self.n // 50)
        warm = self.flood_result(self.flood(pre))
        self.wait_until(lambda m: m["in_flight"] == 0, 60, "warm-up surveys finished")
        r["warmup"] = {"surveys": pre, "rate": warm["rate"]}
        base = self.metrics()
        r["rss_before_kb"] = rss_kb(pid)
        create = self.create_in_flight(warm["rate"], base)
        r.update(create)
        self.complete(r, base, create["deadline_wall"])
        r["store_bytes"] = dir_bytes(os.path.join(self.stack.dir, "state"))
        r.update(self.restart())
        return r

    def create_in_flight(self, rate, base):
        window = self.opts.capacity_window
        est = self.n / max(rate, 1.0)
        start = time.time()
        d = start + 1.5 * est + 15  # every deadline in [d, d + window]
        self.log("capacity: creating %d surveys (about %.0f s at %.0f/s); deadlines %.0f-%.0f s from now"
                 % (self.n, est, rate, d - start, d + window - start))
        step = 1.0
        overran = 0
        self.reload(d - start, d + window - start)
        time.sleep(0.3)
        p = self.flood(self.n, progress=True)
        while p.poll() is None:
            t = time.time() + step / 2  # the middle of the next step
            lo = d - t
            if lo < 1:
                overran += 1
                lo = 1
            self.reload(lo, max(lo, d + window - t))
            time.sleep(step)
        res = self.flood_result(p)
        created_s = time.time() - start
        m = self.metrics()
        pid = self.stack.worker_pid()
        out = {"created": res["ok"], "create_seconds": created_s, "create_rate": res["ok"] / created_s,
               "create_status": res["status"], "create_errors": res["errors"],
               "in_flight": m["in_flight"], "rss_in_flight_kb": rss_kb(pid),
               "hwm_in_flight_kb": rss_kb(pid, "VmHWM"), "deadline_wall": d, "overran_steps": overran}
        self.log("capacity: %d created in %.1f s (%.0f/s, answers %s), %d in flight, RSS %.1f MB"
                 % (res["ok"], created_s, out["create_rate"], res["status"], m["in_flight"],
                    out["rss_in_flight_kb"] / 1024))
        return out

    def complete(self, r, base, d):
        window = self.opts.capacity_window
        wait = d - time.time() - 2
        if wait > 0:
            time.sleep(wait)
        target = base["completed"] + r["created"]
        samples = []
        deadline = time.monotonic() + window + 300
        while time.monotonic() < deadline:
            m = self.metrics()
            samples.append((time.time(), m["completed"], rss_kb(self.stack.worker_pid())))
            if m["completed"] >= target:
                break
            time.sleep(0.5)
        else:
            raise BenchError("capacity: %d of %d surveys completed %.0f s after the window"
                             % (m["completed"] - base["completed"], r["created"], window + 300))
        lag = [(le, n - b) for (le, n), (_, b) in zip(m["lag"], base["lag"])]
        first = next(t for t, c, _ in samples if c > base["completed"])
        r["complete_window_s"] = samples[-1][0] - min(first, d)
        r["complete_peak_rate"] = max((c2 - c1) / (t2 - t1) for (t1, c1, _), (t2, c2, _)
                                      in zip(samples, samples[1:])) if len(samples) > 1 else None
        r["lag_p50"], r["lag_p50_le"] = quantile(lag, 0.50)
        r["lag_p99"], r["lag_p99_le"] = quantile(lag, 0.99)
        r["lag_max_le"] = next((le for le, n in lag if n == lag[-1][1]), None)
        r["lag_buckets"] = lag
        r["rss_done_kb"] = rss_kb(self.stack.worker_pid())
        r["hwm_kb"] = rss_kb(self.stack.worker_pid(), "VmHWM")
        self.log("capacity: completed; lag p99 %.4f s (bucket <= %s s), RSS %.1f MB"
                 % (r["lag_p99"] or 0, r["lag_p99_le"], r["rss_done_kb"] / 1024))

    def restart(self):
        """Stop the worker, start it on the stored jobs, time until /healthz answers."""
        pid = self.stack.worker_pid()
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        if not harness.wait_dead(pid, 120):
            raise BenchError("capacity: the worker did not stop within 120 s of SIGTERM")
        stop_s = time.monotonic() - t0
        t0 = time.monotonic()
        self.stack.spawn_worker(timeout=30)
        status, body = fcgi_get(self.stack.socket_path(), "/healthz", timeout=600)
        start_s = time.monotonic() - t0
        if status != 200:
            raise BenchError("capacity: /healthz answered %d after the restart: %s" % (status, body))
        held = json.loads(body)
        pid = self.stack.worker_pid()
        self.log("capacity: stop %.2f s; start-up with the stored jobs %.2f s; RSS %.1f MB"
                 % (stop_s, start_s, rss_kb(pid) / 1024))
        return {"stop_seconds": stop_s, "startup_seconds": start_s, "healthz_after_restart": held,
                "rss_restarted_kb": rss_kb(pid)}


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


# --- report ----------------------------------------------------------------

def command_output(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
        return p.stdout.strip().split("\n")[0]
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine(opts):
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": "%d (%s)" % (os.cpu_count(), model),
        "kernel": platform.release(),
        "nginx": command_output(["nginx", "-v"]).replace("nginx version: ", ""),
        "libfcgi": command_output(["dpkg-query", "-W", "-f", "${Version}", "libfcgi0ldbl"]),
        "openssl": command_output(["openssl", "version"]),
        "wrk": command_output(["wrk", "-v"]).split(" [")[0],
        "worker": command_output([opts.bin, "--version"]),
        "commit": command_output(["git", "-C", REPO, "describe", "--always", "--dirty"]),
        "load_start": "%.2f %.2f %.2f" % os.getloadavg(),
    }


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def table(results):
    """Both ratios: to nginx's return 200 (the targets are set on it) and to
    the first hop measured (the FastCGI hop with a free worker)."""
    hop = next(iter(results[0]["hops"]), None) if results else None
    extra = " | %s req/s | ratio to it" % results[0]["hops"][hop]["label"] if hop else ""
    lines = ["| scenario | conns | req/s | p50 ms | p99 ms | non-2xx/3xx | errors | ceiling req/s | ceiling p99 ms"
             " | ratio | target%s |" % extra,
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|%s" % ("---:|---:|" if hop else "")]
    for r in results:
        s, c = r["result"], r["ceiling"]
        ok = "" if r["target"] is None or r["ratio"] is None else (" ok" if r["ratio"] >= r["target"] else " MISS")
        line = "| %s | %d | %s | %s | %s | %d | %d | %s | %s | %s | %s%s |" % (
            r["scenario"], r["connections"], fmt(s["rps"]), fmt(s["p50_ms"], "%.2f"), fmt(s["p99_ms"], "%.2f"),
            s["non2xx"], s["errors"], fmt(c["rps"]), fmt(c["p99_ms"], "%.2f"), fmt(r["ratio"], "%.2f"),
            fmt(r["target"], "%.2f"), ok)
        if hop:
            h = r["hops"][hop]
            line += " %s | %s |" % (fmt(h["result"]["rps"]), fmt(h["ratio"], "%.2f"))
        lines.append(line)
    return lines


def hop_table(results):
    """Each hop measured: its throughput against nginx's return 200, the
    scenario's against it, and where its CPU goes."""
    variants = list(results[0]["hops"]) if results else []
    if not variants:
        return []
    lines = ["| scenario | conns | hop | req/s | p50 ms | p99 ms | non-2xx/3xx | errors | hop / nginx ceiling"
             " | scenario / hop | CPU us/req: responder, nginx, wrk, total | switches/req: responder, nginx, wrk |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for v in variants:
            h = r["hops"][v]
            res, cpu, sw = h["result"], h["result"]["cpu_us_per_req"], h["result"]["switches_per_req"]
            tot = sum(cpu[k] for k in ("hop", "nginx", "client") if cpu.get(k) is not None)
            lines.append("| %s | %d | %s | %s | %s | %s | %d | %d | %s | %s | %s, %s, %s, %s | %s, %s, %s |" % (
                r["scenario"], r["connections"], v, fmt(res["rps"]), fmt(res["p50_ms"], "%.2f"),
                fmt(res["p99_ms"], "%.2f"), res["non2xx"], res["errors"], fmt(h["of_ceiling"], "%.2f"),
                fmt(h["ratio"], "%.2f"), fmt(cpu["hop"], "%.1f"), fmt(cpu["nginx"], "%.1f"), fmt(cpu["client"], "%.1f"),
                fmt(tot, "%.1f"), fmt(sw["hop"], "%.2f"), fmt(sw["nginx"], "%.2f"), fmt(sw["client"], "%.2f")))
    return lines


def latency_table(results):
    rows = [r for r in results if "fixed_rate" in r]
    if not rows:
        return []
    lines = ["| scenario | conns | pause ms | req/s (share of its throughput) | p50 ms | p99 ms | non-2xx/3xx"
             " | errors | ceiling req/s | ceiling p50 ms | ceiling p99 ms | p99 target |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        f = r["fixed_rate"]
        run, ceil, t = f["run"], f["ceiling"], f.get("p99_target_ms")
        ok = "-" if t is None else "< %.0f ms%s" % (t, " ok" if run["p99_ms"] < t else " MISS")
        lines.append("| %s | %d | %d | %.0f (%.2f) | %.2f | %.2f | %d | %d | %.0f | %.2f | %.2f | %s |" % (
            r["scenario"], r["connections"], f["pause_ms"], run["rps"], run["rps"] / r["result"]["rps"],
            run["p50_ms"], run["p99_ms"], run["non2xx"], run["errors"], ceil["rps"], ceil["p50_ms"],
            ceil["p99_ms"], ok))
    return lines


def cpu_table(results):
    lines = ["| scenario | conns | worker | database | nginx | wrk | total | ceiling: nginx | ceiling: wrk | ceiling total"
             " | switches/req worker, nginx, wrk | ceiling: nginx, wrk |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        s, c = r["result"]["cpu_us_per_req"], r["ceiling"]["cpu_us_per_req"]
        sw, cw = r["result"]["switches_per_req"], r["ceiling"]["switches_per_req"]
        tot = sum(s[k] for k in ("worker", "db", "nginx", "client") if s.get(k) is not None)
        ctot = sum(c[k] for k in ("nginx", "client") if c.get(k) is not None)
        lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s, %s, %s | %s, %s |" % (
            r["scenario"], r["connections"], fmt(s["worker"], "%.1f"), fmt(s.get("db"), "%.1f"), fmt(s["nginx"], "%.1f"),
            fmt(s["client"], "%.1f"), fmt(tot, "%.1f"), fmt(c["nginx"], "%.1f"), fmt(c["client"], "%.1f"),
            fmt(ctot, "%.1f"), fmt(sw["worker"], "%.2f"), fmt(sw["nginx"], "%.2f"), fmt(sw["client"], "%.2f"),
            fmt(cw["nginx"], "%.2f"), fmt(cw["client"], "%.2f")))
    return lines


def capacity_lines(c):
    mb = lambda kb: "%.1f MB" % (kb / 1024.0)  # noqa: E731
    per = (c["rss_in_flight_kb"] - c["rss_before_kb"]) * 1024.0 / max(1, c["in_flight"])
    return [
        "| measure | value |", "|---|---|",
        "| surveys created (fcgi-flood over the FastCGI socket) | %d in %.1f s (%.0f/s); answers %s; lost connections %d |"
        % (c["created"], c["create_seconds"], c["create_rate"], c["create_status"], c["create_errors"]),
        "| in flight at once (queued + running, /metrics) | %d |" % c["in_flight"],
        "| worker RSS at start / before (after %d warm-up surveys) | %s / %s |"
        % (c["warmup"]["surveys"], mb(c["rss_start_kb"]), mb(c["rss_before_kb"])),
        "| worker RSS with all in flight (VmHWM) | %s (%s) |" % (mb(c["rss_in_flight_kb"]), mb(c["hwm_in_flight_kb"])),
        "| RSS per survey in flight | %.0f bytes |" % per,
        "| worker RSS once all finished (results held for result_ttl; VmHWM) | %s (%s) |"
        % (mb(c["rss_done_kb"]), mb(c["hwm_kb"])),
        "| completions: window / peak rate | %.1f s / %s per s |" % (c["complete_window_s"], fmt(c["complete_peak_rate"])),
        "| completion lag p50 / p99 (interpolated; bucket) | %s s (<= %s) / %s s (<= %s) |"
        % (fmt(c["lag_p50"], "%.4f"), c["lag_p50_le"], fmt(c["lag_p99"], "%.4f"), c["lag_p99_le"]),
        "| largest lag (bucket bound) | <= %s s |" % c["lag_max_le"],
        "| store on disk (jobs.db + WAL) | %.1f MB |" % (c["store_bytes"] / 1e6),
        "| stop (SIGTERM to exit) with the jobs held | %.2f s |" % c["stop_seconds"],
        "| start-up with the stored jobs, until /healthz answers | %.2f s (RSS then %s) |"
        % (c["startup_seconds"], mb(c["rss_restarted_kb"])),
    ]


def report(opts, info, results, sizes, cap):
    out = ["# zookeeper benchmark", "",
           "%s; %s cores; kernel %s; nginx %s; libfcgi %s; %s; %s; worker %s (%s)." % (
               info["date"], info["cores"], info["kernel"], info["nginx"], info["libfcgi"], info["openssl"],
               info["wrk"], info["worker"], info["commit"]),
           "Load average %s at the start, %s at the end (other work on the machine skews every figure;"
           " the ratios less so)." % (info["load_start"], info["load_end"]), ""]
    if results:
        out += ["wrk -t%d, %d s runs after %d s warm-ups, median of %d. Ratio: the scenario's req/s over nginx's"
                " own `return 200` with a body of the same size, same TLS, same connections, same wrk script,"
                " measured in between. nginx's rate limits are raised for the run (rate=%s, burst=%d in a"
                " rendered copy of nginx/ under BUILD/bench/nginx); the worker has max_jobs raised so creations"
                " never meet it." % (opts.threads, opts.duration, opts.warmup, opts.repeats, RATE, BURST), "",
                "Store: %s, %d worker(s)%s." % (opts.store, opts.workers,
                                                ", PostgreSQL under Patroni with a synchronous standby (HA=1)"
                                                if opts.ha else ""), ""]
        out += table(results)
        out += ["", "Answer bodies (bytes): %s." % ", ".join("%s %d" % kv for kv in sorted(sizes.items())), "",
                "CPU per request, microseconds (utime + stime over the run / requests answered), and context"
                " switches per request (voluntary + involuntary, every thread). The machine has %d cores: a side"
                " cannot exceed cores / total CPU per request." % os.cpu_count(), ""]
        out += cpu_table(results)
        out.append("")
        hops = hop_table(results)
        if hops:
            out += ["The FastCGI hop with a free worker (bench/fcgi_hop.py): the same nginx, TLS, connections and"
                    " wrk script, through the real locations' FastCGI config to bench/fcgi_ceiling.cpp, a libfcgi"
                    " responder (%s loop, %d thread(s)) that answers with the worker's own answer to the scenario."
                    " fcgi: libfcgi's C API, as the worker uses it; fcgi++: the same through fcgio.h's"
                    " fcgi_streambuf. Measured in the same rounds as the scenario and nginx's ceiling. CPU per"
                    " request as above; \"responder\" is the hop's application." % (opts.hop_loop, opts.hop_threads),
                    ""] + hops + [""]
        lat = latency_table(results)
        if lat:
            out += ["Latency at a fixed load (wrk with bench/paced.lua: each connection pauses after every"
                    " answer, the same pause for the scenario and its ceiling, chosen so the %d connections offer"
                    " %.2f of the scenario's median throughput above; one %d s run per side after a warm-up)."
                    " wrk's p99 in the first table is the queueing of a saturated machine; this one is what a"
                    " client sees at a load the service carries." % (opts.latency_connections, opts.latency_load,
                                                                     opts.duration), ""] + lat + [""]
    if cap:
        out += ["## Capacity: %d surveys in flight" % cap["surveys"], ""] + capacity_lines(cap) + [""]
    return "\n".join(out)


# --- main ------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--flood", required=True, help="the fcgi-flood binary")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connections", default="32,256")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--only", action="append", default=[], help="scenarios whose name contains this")
    ap.add_argument("--store", default="sqlite", choices=["sqlite", "postgresql"], help="the throughput stack's backend")
    ap.add_argument("--workers", type=int, default=1, help="workers of the throughput stack (postgresql)")
    ap.add_argument("--ha", action="store_true",
                    help="postgresql under Patroni: a primary and a synchronous standby (deploy/ha-cluster.sh)")
    ap.add_argument("--capacity", type=int, default=1000000, help="surveys in flight; 0 skips")
    ap.add_argument("--capacity-window", type=float, default=20.0)
    ap.add_argument("--capacity-connections", type=int, default=48)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--log-level", default="info", help="the worker's log_level (shipped: info)")
    ap.add_argument("--service", default="", type=lambda s: [tuple(kv.split("=", 1)) for kv in s.split()],
                    help="[service] settings for the throughput scenarios, as 'key=value ...'")
    ap.add_argument("--latency-load", type=float, default=0.5,
                    help="fixed-load latency runs at this share of a GET scenario's throughput; 0 skips")
    ap.add_argument("--latency-connections", type=int, default=32)
    ap.add_argument("--ceiling-bin", help="the fcgi-ceiling binary (bench/fcgi_ceiling.cpp)")
    ap.add_argument("--hops", default="fcgi", type=lambda s: [v for v in s.split(",") if v],
                    help="FastCGI hops to measure as ceilings: fcgi, fcgi++ (comma-separated; empty: none)")
    ap.add_argument("--hop-loop", default="epoll", choices=["epoll", "accept"], help="fcgi-ceiling's loop")
    ap.add_argument("--hop-threads", type=int, default=0,
                    help="fcgi-ceiling's threads (0: 1 in the epoll loop; in the accept loop twice the most"
                         " connections, plus 16)")
    opts = ap.parse_args()
    opts.connections = [int(c) for c in opts.connections.split(",") if c]
    if opts.ha and opts.store != "postgresql":
        ap.error("--ha needs --store postgresql")
    opts.ceiling_bin = opts.ceiling_bin and os.path.abspath(opts.ceiling_bin)
    bad = [v for v in opts.hops if not fcgi_hop.parse_variant(v)]
    if bad or len(set(opts.hops)) != len(opts.hops) or (opts.hops and not opts.ceiling_bin):
        ap.error("--hops takes %s, each at most once, optionally as NAME@THREADS, and needs --ceiling-bin"
                 % ", ".join(fcgi_hop.VARIANTS))
    if opts.hop_loop == "epoll":
        opts.hop_threads = opts.hop_threads or 1
    elif opts.hop_threads <= 0:
        # libfcgi holds a thread per kept connection: nginx opens at most one
        # per request in flight (and keeps up to 128 per nginx worker).
        opts.hop_threads = 2 * max(opts.connections + [opts.latency_connections]) + 16
    return opts


def main():
    opts = parse_args()
    work = os.path.join(os.path.abspath(opts.build), "bench")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    # A copy, so a rebuild during the run cannot change what is measured.
    bin_copy = os.path.join(work, "zookeeper-fcgi")
    shutil.copy2(opts.bin, bin_copy)
    env = Env(bin_copy, work)

    def log(line):
        print(line, flush=True)

    def stop(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, stop)

    info = machine(opts)
    results, sizes, cap = [], {}, None
    try:
        if not opts.skip_throughput:
            results, sizes = run_throughput(env, opts, log)
        if opts.capacity > 0:
            cap = Capacity(env, opts, os.path.abspath(opts.flood), log).run()
    finally:
        harness.stop_all_stacks()
    info["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
    text = report(opts, info, results, sizes, cap)
    with open(os.path.join(work, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump({"machine": info, "options": vars(opts), "throughput": results, "sizes": sizes,
                   "capacity": cap}, f, indent=1, default=str)
    print("\n" + text)
    print("\nwritten: %s" % os.path.join(work, "results.md"))
    bad = sum(r["result"]["errors"] + r["result"]["non2xx"] for r in results)
    bad += sum(r["fixed_rate"]["run"]["errors"] + r["fixed_rate"]["run"]["non2xx"] for r in results if "fixed_rate" in r)
    if bad:
        print("bench: %d errors or error answers in the scenarios (see the table)" % bad, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
