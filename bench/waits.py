#!/usr/bin/env python3
"""zookeeper benchmark, waiting polls: what a finished survey costs a client
that waits (one GET /query/{id}?wait=30) against one that polls every
Retry-After, and how 10,000 waiting requests at once cost the worker.

usage: bench/waits.py [--bin build/zookeeper-fcgi] [--build build]
       [--surveys 200] [--waiters 10000]

Design
- Scenarios over HTTPS through nginx with the shipped limits (each client
  from its own loopback address, as separate clients would be), one stack
  per scenario, surveys of 3-5 s, all created first, then one asyncio client
  per survey. Per finished survey: the requests it took and the CPU (utime +
  stime) of the worker and nginx's processes over the scenario.
- Capacity: straight on the worker's FastCGI socket (nginx's per-address
  limits and TLS would dominate), WAITERS unix connections each with one
  GET /query/{id}?wait=30 on one of 100 surveys of 15-16 s. Once all are
  parked (the worker holds a descriptor each): threads and RSS of the worker
  against before; then the wake latency of each answer after its survey's
  deadline (p50/p99, all answers arrive as one burst).
Writes BUILD/bench/waits.md and prints it.
"""

import argparse
import asyncio
import calendar
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import fcgi_client as fc  # noqa: E402
import harness  # noqa: E402
from harness import pct, threads_of  # noqa: E402
from bench import Env, children, proc_cpu_ticks, rss_kb  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CAPACITY_SURVEYS = 100


def stack(env, name, min_s, max_s, service=""):
    st = harness.Stack(env, name)
    text = harness.config_text(state_dir=os.path.join(st.dir, "state"), min_seconds=min_s, max_seconds=max_s)
    st.write_config(text.replace("log_level = info\n", "log_level = warn\n" + service))
    return st.start()


def stack_cpu(st):
    master = st.nginx_pid()
    return sum(proc_cpu_ticks(p) for p in [st.worker_pid()] + children(master)) / TICKS


# --- scenarios over HTTPS ------------------------------------------------------

async def get(st, path, src):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", st.https_port, ssl=st.tls_context(), server_hostname="127.0.0.1", local_addr=(src, 0))
    writer.write(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path).encode())
    data = await reader.read()
    writer.close()
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    retry = next((int(l.split(":", 1)[1]) for l in head[1:] if l.lower().startswith("retry-after:")), 1)
    return status, retry


async def polling_client(st, uuid):
    src, n = harness.fresh_addr(), 0
    while True:
        status, retry = await get(st, "/query/" + uuid, src)
        n += 1
        if status != 202:
            return n, status, time.time()
        await asyncio.sleep(retry)


async def waiting_client(st, uuid):
    src, n = harness.fresh_addr(), 0
    while True:
        status, _ = await get(st, "/query/%s?wait=30" % uuid, src)
        n += 1
        if status != 202:
            return n, status, time.time()


def scenario(env, name, client, surveys):
    st = stack(env, "waits-" + client.__name__, 3, 5)
    try:
        jobs = [harness.request(st, "POST", "/animals/koalas").json() for _ in range(surveys)]
        deadlines = [unix_seconds(harness.request(st, "GET", "/jobs/" + u).json()["deadline"]) for u in jobs]
        cpu0, t0 = stack_cpu(st), time.monotonic()

        async def run():
            return await asyncio.gather(*(client(st, u) for u in jobs))

        results = asyncio.run(run())
        cpu, wall = stack_cpu(st) - cpu0, time.monotonic() - t0
        done = sum(1 for _, s, _ in results if s == 200)
        requests = sum(n for n, _, _ in results)
        seen = [at - d for (_, _, at), d in zip(results, deadlines)]
        return {"name": name, "surveys": done, "requests_per_survey": requests / max(done, 1),
                "seen_mean_ms": sum(seen) * 1000 / len(seen), "seen_p99_ms": pct(seen, 0.99) * 1000,
                "cpu_ms_per_survey": cpu * 1000 / max(done, 1), "seconds": wall}
    finally:
        st.stop()


# --- capacity on the FastCGI socket ----------------------------------------------

def fcgi_call(path, method, uri):
    s = fc.connect(path, timeout=10)
    try:
        s.sendall(fc.request_bytes(method, uri))
        status, _, body, _ = fc.read_answer(s)
        return status, body
    finally:
        s.close()


async def read_answer_async(reader):
    stdout = b""
    while True:
        header = await reader.readexactly(8)
        _, rtype, _, length, padding = struct.unpack("!BBHHBx", header)
        body = await reader.readexactly(length + padding)
        if rtype == 6:
            stdout += body[:length]
        elif rtype == 3:
            return fc.parse_answer(stdout)[0]


async def fcgi_waiter(path, uri, parked):
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(fc.request_bytes("GET", uri))
    await writer.drain()
    parked.append(1)
    status = await read_answer_async(reader)
    at = time.time()
    writer.close()
    return status, at


def unix_seconds(rfc3339):
    """"2026-12-02T15:00:00.123Z" as seconds since the epoch."""
    whole, _, frac = rfc3339.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + (float("0." + frac) if frac else 0.0)


def capacity(env, waiters):
    st = stack(env, "waits-capacity", 15, 16, "max_waiters = %d\n" % (waiters + 1000))
    try:
        pid, sock = st.worker_pid(), st.socket_path()
        jobs = [json.loads(fcgi_call(sock, "POST", "/animals/koalas")[1]) for _ in range(CAPACITY_SURVEYS)]
        deadlines = {u: unix_seconds(json.loads(fcgi_call(sock, "GET", "/jobs/" + u)[1])["deadline"]) for u in jobs}
        fcgi_call(sock, "GET", "/query/%s?wait=1" % jobs[0])  # warm
        threads0, rss0 = threads_of(pid), rss_kb(pid)
        parked = []
        sample = {}

        async def run():
            tasks = [asyncio.ensure_future(fcgi_waiter(sock, "/query/%s?wait=30" % jobs[i % len(jobs)], parked))
                     for i in range(waiters)]
            while len(parked) < waiters:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            sample.update(threads=threads_of(pid), rss=rss_kb(pid), fds=len(os.listdir("/proc/%d/fd" % pid)))
            return await asyncio.gather(*tasks)

        answers = asyncio.run(run())
        lags = [at - deadlines[jobs[i % len(jobs)]] for i, (status, at) in enumerate(answers) if status == 200]
        return {"waiters": waiters, "threads_before": threads0, "threads": sample["threads"],
                "rss_before_kib": rss0, "rss_kib": sample["rss"], "fds": sample["fds"],
                "bytes_per_waiter": (sample["rss"] - rss0) * 1024.0 / waiters,
                "answered_200": len(lags), "lag_p50_ms": pct(lags, 0.5) * 1e3, "lag_p99_ms": pct(lags, 0.99) * 1e3,
                "lag_max_ms": max(lags) * 1e3 if lags else float("nan")}
    finally:
        st.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "zookeeper-fcgi"))
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--surveys", type=int, default=200)
    ap.add_argument("--waiters", type=int, default=10000)
    args = ap.parse_args()
    work = os.path.join(os.path.abspath(args.build), "bench")
    env = Env(os.path.abspath(args.bin), work)
    try:
        rows = [scenario(env, "polling every Retry-After", polling_client, args.surveys),
                scenario(env, "one waiting poll per survey", waiting_client, args.surveys)]
        cap = capacity(env, args.waiters)
    finally:
        harness.stop_all_stacks()
    lines = ["| scenario | surveys | requests per survey | CPU per survey (worker + nginx) "
             "| result seen after completion: mean, p99 |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %d | %.2f | %.2f ms | %.0f ms, %.0f ms |"
                     % (r["name"], r["surveys"], r["requests_per_survey"], r["cpu_ms_per_survey"],
                        r["seen_mean_ms"], r["seen_p99_ms"]))
    lines += ["", "%(waiters)d waiting requests on the worker's socket: threads %(threads_before)d -> %(threads)d, "
              "RSS %(rss_before_kib)d -> %(rss_kib)d KiB (%(bytes_per_waiter).0f bytes per waiter), %(fds)d fds; "
              "%(answered_200)d answered 200 at completion, lag after the deadline p50 %(lag_p50_ms).1f ms, "
              "p99 %(lag_p99_ms).1f ms, max %(lag_max_ms).1f ms" % cap]
    text = "\n".join(lines) + "\n"
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "waits.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
