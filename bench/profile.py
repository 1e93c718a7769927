#!/usr/bin/env python3
"""Where a request's CPU goes, for GET /animals and for survey creation.
Started by bench/profile.sh; writes BUILD/bench/profile/ and prints a summary.

Two views, because this machine has no hardware counters (perf falls back
to the cpu-clock timer) and other work runs beside the benchmark:
- perf: the bench's throughput stack (bench.py's Throughput: rate limits
  raised, store on) under wrk -c32; `perf record -a` samples every process,
  so the report splits the time between wrk, nginx, the worker and the
  kernel work each does, then lists each one's hottest symbols.
- strace -c: system calls per request, by name, for the worker and nginx.
- callgrind: the worker alone under valgrind, driven through its FastCGI
  socket by fcgi-flood with the params nginx sends (--nginx-params: 22 of
  them, not the 6 the worker reads, since libfcgi parses and stores every
  one). Two runs differ only in N more requests; their
  difference per function, over N, is instructions per request, exact and
  repeatable (kernel time is not counted; syscalls show as libc wrappers).
  (callgrind_control's zero/dump would be simpler, but vgdb's ptrace
  invocation hung the worker on this VM.)
- callgrind of the FastCGI hop's responder (bench/fcgi_ceiling.cpp, with
  --ceiling-bin) answering GET /animals with the worker's answer, once
  through libfcgi's C API and once through fcgi++ (fcgio.h): what the least
  a libfcgi application does costs, and what the C++ streams add to it.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import fcgi_hop  # noqa: E402
import harness  # noqa: E402  (bench put tests/integration on the path)


def sh(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw).stdout


def perf_report(data, extra, limit):
    out = sh(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
              "--percent-limit", str(limit)] + extra)
    return [line for line in out.split("\n") if line.strip() and not line.startswith("#")]


def perf_view(t, opts, out_dir, name, target):
    data = os.path.join(out_dir, "perf-%s.data" % name)
    rec = subprocess.Popen(["perf", "record", "-a", "-F", "999", "-o", data, "--", "sleep", str(opts.duration)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = bench.run_wrk(t.stack, opts, target, opts.connections, opts.duration, bench.CpuMeter(t.stack))
    rec.wait()
    lines = ["## perf, %s: wrk -c%d for %d s: %.0f req/s, CPU us/request %s"
             % (name, opts.connections, opts.duration, r["rps"],
                {k: round(v, 1) for k, v in r["cpu_us_per_req"].items()}),
             "", "Samples by process:", ""]
    lines += perf_report(data, ["--sort", "comm"], 1)
    for comm in ("zookeeper-fcgi", "nginx", "wrk"):
        rel = ["--comm", comm, "--percentage", "relative"]
        lines += ["", "%s, hottest symbols (share of its own samples; [k] kernel, [.] user):" % comm, ""]
        lines += perf_report(data, rel + ["--sort", "sym"], 0.5)[:opts.top]
    return lines


def tids(pid):
    return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))


def strace_view(t, opts, out_dir, name, target):
    """System calls per request, by name, for the worker and for nginx's
    workers: strace -c on every thread during a short wrk run. strace slows
    what it traces, so only the counts mean anything, not the rate."""
    master = t.stack.nginx_pid()
    groups = {"worker": tids(t.stack.worker_pid()), "nginx": bench.children(master)}
    procs = {}
    for who, ids in groups.items():
        path = os.path.join(out_dir, "strace-%s-%s.txt" % (name, who))
        cmd = ["strace", "-c", "-f", "-o", path]
        for i in ids:
            cmd += ["-p", str(i)]
        procs[who] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path)
    time.sleep(1)  # attached
    r = bench.run_wrk(t.stack, opts, target, opts.connections, 3)
    for p, _ in procs.values():
        p.send_signal(signal.SIGINT)
        p.wait(30)
    n = max(1, r["requests"])
    lines = ["## system calls per request, %s (strace -c during wrk -c%d, %d requests)"
             % (name, opts.connections, n), ""]
    for who, (_, path) in procs.items():
        with open(path) as f:
            rows = re.findall(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", f.read(), re.M)
        calls = sorted(((int(c), sc) for c, sc in rows if sc != "total"), reverse=True)
        total = sum(c for c, _ in calls)
        lines.append("- %s: %.1f per request: %s" % (who, total / n, ", ".join(
            "%s %.2f" % (sc, c / n) for c, sc in calls if c / n >= 0.01)))
    return lines + [""]


def callgrind_view(env, opts, out_dir, flood):
    """Instructions per request, by function: two runs of the worker under
    callgrind that differ only in N more requests, subtracted."""
    def worker(d):
        conf = os.path.join(d, "zookeeper.conf")
        os.makedirs(os.path.join(d, "state"))
        with open(conf, "w") as f:
            f.write(bench.worker_config({("workload", "min_seconds"): 10, ("workload", "max_seconds"): 20}))
        return [env.bin, "--config", conf, "--state-dir", os.path.join(d, "state")]
    lines = []
    for name, method, uris in (("GET /animals", "GET", ["/animals"]),
                               ("POST /animals/{animal}", "POST", ["/animals/" + a for a in harness.ANIMALS])):
        tag = method.lower()
        base = callgrind_run(out_dir, flood, "%s-base" % tag, worker, method, uris, 0)
        more = callgrind_run(out_dir, flood, "%s-more" % tag, worker, method, uris, opts.requests)
        lines += difference(base, more, name, opts)
    return lines


def callgrind_hop_view(env, opts, out_dir, flood):
    """The FastCGI hop's responder (bench/fcgi_ceiling.cpp) answering GET
    /animals with the worker's answer, through libfcgi's C API and through
    fcgi++ (fcgio.h): instructions per request, as for the worker."""
    answer = capture_animals(env, out_dir)
    lines = []
    for variant in ("fcgi", "fcgi++"):
        # As bench.py runs it (one thread in the epoll loop; the accept loop
        # needs one per fcgi-flood connection, and 4 more).
        r = fcgi_hop.Responder(opts.ceiling_bin, variant, out_dir, opts.hop_loop, 1 if opts.hop_loop == "epoll" else 8)

        def hop(_d, r=r):
            return [r.binary, "--loop", r.loop, "--threads", str(r.threads)] + r.args + ["animals=" + answer]
        tag = "hop-%s" % r.file_tag
        uris = [r.prefix + "animals"]
        base = callgrind_run(out_dir, flood, tag + "-base", hop, "GET", uris, 0)
        more = callgrind_run(out_dir, flood, tag + "-more", hop, "GET", uris, opts.requests)
        lines += difference(base, more, "the FastCGI hop's responder (%s, %s loop), GET /animals"
                            % (variant, opts.hop_loop), opts)
    return lines


def capture_animals(env, out_dir):
    """The worker's raw answer to GET /animals (a plain worker, no valgrind)."""
    d = os.path.join(out_dir, "callgrind", "capture")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "state"))
    conf, sock = os.path.join(d, "zookeeper.conf"), os.path.join(d, "zk.sock")
    with open(conf, "w") as f:
        f.write(bench.worker_config({}))
    with open(os.path.join(d, "worker.log"), "w") as log:
        p = subprocess.Popen(["spawn-fcgi", "-n", "-s", sock, "-M", "0600", "--", env.bin, "--config", conf,
                              "--state-dir", os.path.join(d, "state")],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_socket(p, sock, d)
        path = os.path.join(d, "animals.answer")
        with open(path, "wb") as f:
            f.write(fcgi_hop.capture(sock, "GET", "/animals"))
        return path
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)


def wait_socket(p, sock, d):
    deadline = time.monotonic() + 60
    while not (os.path.exists(sock) and harness.unix_socket_accepts(sock)):
        if p.poll() is not None or time.monotonic() > deadline:
            raise bench.BenchError("the program under test did not start; see %s/worker.log" % d)
        time.sleep(0.2)


def callgrind_run(out_dir, flood, tag, argv_for, method, uris, extra, warm=200):
    """argv_for(folder)'s program alone under valgrind (spawn-fcgi as
    run-stack.sh starts the worker, without nginx and without run-stack's
    kill after a 5 s grace, which would lose the dump written at exit): warm
    requests, `extra` more, SIGTERM."""
    d = os.path.join(out_dir, "callgrind", tag)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    sock, dump = os.path.join(d, "zk.sock"), os.path.join(d, "callgrind.out")
    argv = argv_for(d)
    with open(os.path.join(d, "worker.log"), "w") as log:
        p = subprocess.Popen(["spawn-fcgi", "-n", "-s", sock, "-M", "0600", "--", shutil.which("valgrind"), "--tool=callgrind",
                              "--quiet", "--callgrind-out-file=" + dump] + argv,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_socket(p, sock, d)
        flood_run(flood, sock, method, uris, warm)
        if extra:
            flood_run(flood, sock, method, uris, extra)
        time.sleep(1)  # the pool and the store writer finish this batch's work
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(300)
    if not os.path.exists(dump):
        raise bench.BenchError("callgrind wrote no %s; see %s/worker.log" % (dump, d))
    return dump


FLOOD_PARAMS = ["--nginx-params"]  # main() empties it for --few-params


def flood_run(flood, sock, method, uris, count):
    out = sh([flood, "--socket", sock, "--count", str(count), "--connections", "4", "--method", method]
             + FLOOD_PARAMS + uris, timeout=900)
    if '"ok":%d,' % count not in out:
        raise bench.BenchError("fcgi-flood under callgrind: " + out)


def costs(dump, inclusive):
    """(total, {function: instructions}); callgrind_annotate splits a function
    by the file its inlined code came from."""
    out = sh(["callgrind_annotate", "--inclusive=%s" % ("yes" if inclusive else "no"), "--auto=no",
              "--tree=none", "--threshold=100", dump])
    total = re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", out, re.M)
    per_fn = {}
    for ir, where in re.findall(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)$", out, re.M):
        if "PROGRAM TOTALS" in where:
            continue
        m = re.match(r"^(?:[^:\s]*:)?(.*?)(?: \[([^\]]+)\])?$", where)
        fn = m.group(1)
        if m.group(2) and fn.startswith("0x"):  # no symbol: name the library
            fn = "%s in %s" % (fn, os.path.basename(m.group(2)))
        ir = int(ir.replace(",", ""))
        # Self costs of the parts add up; inclusive ones overlap (a part's
        # calls are counted in the part that contains it), so take the largest.
        per_fn[fn] = max(per_fn.get(fn, 0), ir) if inclusive else per_fn.get(fn, 0) + ir
    return int(total.group(1).replace(",", "")), per_fn


def difference(base, more, name, opts):
    n = opts.requests
    lines = []
    for inclusive in (True, False):
        tb, b = costs(base, inclusive)
        tm, m = costs(more, inclusive)
        per_req = (tm - tb) / n
        diff = sorted(((m.get(fn, 0) - b.get(fn, 0)) / n, fn) for fn in set(m) | set(b))
        if inclusive:
            lines += ["", "## callgrind, %s: %s instructions per request (all threads; %d requests with %s over a "
                      "200-request warm-up, minus the same run without them)"
                      % (name, "{:,.0f}".format(per_req), n, "nginx's 22 params" if FLOOD_PARAMS else "6 params")]
        lines += ["", "%s, per request:" % ("Inclusive" if inclusive else "Self"), ""]
        for ir, fn in reversed(diff[-opts.top:]):
            lines.append("%10s  %5.1f%%  %s" % ("{:,.0f}".format(ir), 100.0 * ir / per_req, short(fn)))
    return lines


def short(fn, width=150):
    fn = re.sub(r"std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string", fn)
    return fn if len(fn) <= width else fn[:width] + "..."


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--flood", required=True)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--requests", type=int, default=2000, help="requests per callgrind measurement")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--log-level", default="info")
    # What bench.Throughput reads besides: the shipped single SQLite worker.
    ap.set_defaults(store="sqlite", workers=1, ha=False, service=[], hops=[])
    ap.add_argument("--skip-perf", action="store_true")
    ap.add_argument("--skip-strace", action="store_true")
    ap.add_argument("--skip-callgrind", action="store_true")
    ap.add_argument("--few-params", action="store_true",
                    help="callgrind's requests carry fcgi-flood's 6 params, not nginx's 22")
    ap.add_argument("--ceiling-bin", help="fcgi-ceiling: adds its callgrind view (C API and fcgi++)")
    ap.add_argument("--hop-loop", default="epoll", choices=["epoll", "accept"])
    opts = ap.parse_args()
    if opts.few_params:
        FLOOD_PARAMS.clear()
    work = os.path.join(os.path.abspath(opts.build), "bench")
    out_dir = os.path.join(work, "profile")
    os.makedirs(out_dir, exist_ok=True)
    os.chmod(work, 0o755)
    os.chmod(out_dir, 0o755)
    env = bench.Env(os.path.abspath(opts.bin), work)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    lines = ["# zookeeper profile (%s)" % bench.machine(opts)["date"], "",
             "perf: without hardware counters (this VM has none) it samples on the cpu-clock timer, and in a"
             " paravirtualised guest kernel time often lands on the point where interrupts are re-enabled"
             " (pvm_irq_enable) or on the libc wrapper of the system call that entered the kernel (read, write,"
             " poll): read those as time spent in the kernel for that process. The system call counts and"
             " bench.py's CPU per request cover the kernel side; callgrind the user side, exactly.", ""]
    try:
        if not (opts.skip_perf and opts.skip_strace):
            t = bench.Throughput(env, opts)
            t.start()
            try:
                _, running, _ = t.prepare_surveys()
                animals = ["/animals/" + a for a in harness.ANIMALS]
                for name, target in (("GET-animals", ("/animals", None, ())),
                                     ("POST-create", ("/", "create.lua", animals)),
                                     ("GET-query-running", ("/query/" + running, None, ()))):
                    if not opts.skip_perf:
                        t.settle(print)
                        lines += perf_view(t, opts, out_dir, name, target) + [""]
                    if not opts.skip_strace:
                        t.settle(print)
                        lines += strace_view(t, opts, out_dir, name, target)
            finally:
                t.stack.stop()
        if not opts.skip_callgrind:
            lines += callgrind_view(env, opts, out_dir, os.path.abspath(opts.flood))
            if opts.ceiling_bin:
                opts.ceiling_bin = os.path.abspath(opts.ceiling_bin)
                lines += callgrind_hop_view(env, opts, out_dir, os.path.abspath(opts.flood))
    finally:
        harness.stop_all_stacks()
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "profile.md"), "w") as f:
        f.write(text)
    print(text)
    print("written: %s" % os.path.join(out_dir, "profile.md"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bench.BenchError as e:
        print("profile: %s" % e, file=sys.stderr)
        sys.exit(1)
