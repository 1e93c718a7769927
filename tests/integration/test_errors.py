"""Refusals, from nginx or the worker: every error status is
application/problem+json with type/title/status/detail matching the status;
bad input is a 4xx and never a 5xx, a hang, or a leaked file. Each test runs
all its cases and reports every one that failed, not just the first."""

import http.client
import re
import subprocess
import ssl
import time
import uuid as uuidlib

from harness import (UUID_RE, TestFailure, check, problem_errors, raw_request, request,
                     short)
from registry import test

NOT_FOUND = {404}
REFUSED = {400, 404}


def known_job(env):
    """A real job id, so 405 tests hit a path that exists."""
    if not hasattr(env, "_known_job"):
        r = request(env.main, "POST", "/animals/zebras")
        check(r.status == 202 and UUID_RE.match(str(r.json())), "setup: " + r.describe())
        env._known_job = r.json()
    return env._known_job


def case_errors(r, allowed, allow_methods=None, forbid_method=None):
    errs = []
    if r.status not in allowed:
        errs.append("status %d, want %s" % (r.status, "/".join(map(str, sorted(allowed)))))
    if r.status >= 400:
        errs += problem_errors(r)
    if b"root:x:0:0" in r.body or b"PRIVATE KEY" in r.body:
        errs.append("answer leaks a file")
    if r.header("Set-Cookie") is not None or r.header("X-Injected") is not None:
        errs.append("a header came from the request path (CR/LF injection)")
    # User text is echoed truncated, so a long path makes no long answer.
    if r.status >= 400 and len(r.body) > 1024:
        errs.append("error body of %d bytes: user text echoed untruncated?" % len(r.body))
    if r.status in (200, 202) and r.path.startswith("/animals/"):
        body = r.json() if r.body else None
        if not (isinstance(body, str) and UUID_RE.match(body)):
            errs.append("2xx survey start without a UUID body")
    if allow_methods is not None and r.status == 405:
        allow = r.header("Allow")
        if allow is None:
            errs.append("405 without Allow")
        else:
            listed = {m.strip() for m in allow.split(",")}
            if not set(allow_methods) <= listed:
                errs.append("Allow %r lacks %s" % (allow, sorted(set(allow_methods) - listed)))
            if forbid_method and forbid_method in listed:
                errs.append("Allow %r lists the refused method %s" % (allow, forbid_method))
    return errs


def run_cases(env, cases):
    """cases: dicts with method, path, allowed, and optionally body, headers,
    allow (methods Allow must list). Fails with every failing case."""
    fails, seen = [], []
    for c in cases:
        try:
            r = request(env.main, c["method"], c["path"], body=c.get("body"), headers=c.get("headers"))
        except TestFailure as e:
            fails.append(str(e))
            continue
        seen.append("%s %s -> %d" % (c["method"], short(c["path"], 60), r.status))
        errs = case_errors(r, c["allowed"], c.get("allow"), c["method"] if c.get("allow") else None)
        if errs:
            fails.append("%s\n        %s" % (r.describe(), "; ".join(errs)))
    check(not fails, "%d of %d cases failed:\n%s" % (len(fails), len(cases), "\n".join(fails)))
    return seen


def case(method, path, allowed, **kw):
    d = {"method": method, "path": path, "allowed": set(allowed)}
    d.update(kw)
    return d


@test
def errors_unknown_animal_and_paths(env):
    run_cases(env, [
        case("GET", "/animals/dodos", NOT_FOUND),
        case("POST", "/animals/dodos", NOT_FOUND),
        case("GET", "/animals/Bisons", NOT_FOUND),       # names are case-sensitive
        case("GET", "/animals/bisons/extra", NOT_FOUND),
        case("GET", "/animals/", NOT_FOUND),
        case("GET", "/zoo", NOT_FOUND),
        case("GET", "/animalsx", NOT_FOUND),
        case("GET", "/query", NOT_FOUND),
        case("GET", "/query/", REFUSED),
        case("GET", "/jobs/", REFUSED),
        # The stack's own files must not be served from its prefix.
        case("GET", "/nginx.conf", NOT_FOUND),
        case("GET", "/tls/key.pem", NOT_FOUND),
        case("GET", "/zookeeper.conf", NOT_FOUND),
        case("GET", "/.zk-problem", NOT_FOUND),
        case("HEAD", "/nope", NOT_FOUND),
    ])


@test
def errors_wrong_method_405_with_allow(env):
    job = known_job(env)
    run_cases(env, [
        case("DELETE", "/animals", {405}, allow=["GET"]),
        case("POST", "/animals", {405}, allow=["GET"]),
        case("DELETE", "/animals/bisons", {405}, allow=["GET", "POST"]),
        case("POST", "/query/" + job, {405}, allow=["GET", "DELETE"]),
        case("POST", "/jobs/" + job, {405}, allow=["GET"]),
    ])


@test
def errors_odd_methods(env):
    job = known_job(env)
    cases = []
    for method in ("PUT", "PATCH", "TRACE", "OPTIONS", "CONNECT", "PROPFIND", "FROBNICATE"):
        for path in ("/animals", "/animals/bisons", "/query/" + job, "/nowhere"):
            cases.append(case(method, path, {405}, allow=[]))
    run_cases(env, cases)
    fails = []
    for data in (b"get /animals HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 b"G\xc3\x89T /animals HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"):
        status, headers, body = raw_request(env.main, data)
        if not (400 <= status < 500 and headers.get("content-type") == "application/problem+json"):
            fails.append("%r -> %d %s %r" % (data[:20], status, headers.get("content-type"), body[:100]))
    check(not fails, "malformed methods:\n" + "\n".join(fails))


@test
def errors_percent_encoded_paths(env):
    # Decoding escapes in a name is the worker's call (the contract is
    # silent): it may serve bi%73ons as bisons or refuse it, but clearly.
    seen = run_cases(env, [
        case("GET", "/animals/bi%73ons", {200, 400, 404}),
        case("GET", "/animals/%62%69%73%6F%6E%73", {200, 400, 404}),
        case("GET", "/animals/%2e%2e/x", REFUSED),
        case("GET", "/animals/%2e%2e%2fetc%2fpasswd", REFUSED),
        case("GET", "/animals/bis%2Fons", REFUSED),
        case("GET", "/animals/%00", REFUSED),
        case("GET", "/animals/bisons%00", REFUSED),
        case("GET", "/animals/%zz", REFUSED),
        case("GET", "/animals/bisons%", REFUSED),
        case("GET", "/animals/%ff%fe", REFUSED),
        case("GET", "/animals/%C3%A9l%C3%A9phants", REFUSED),
        case("GET", "/query/%30%31%38%39", REFUSED),
        case("GET", "/animals/bisons%20", REFUSED),
        case("GET", "/animals/bi+sons", REFUSED),
        case("GET", "/animals/x%0d%0aSet-Cookie:%20a=b", REFUSED),
        case("GET", "/query/x%0aX-Injected:%201", REFUSED),
        case("GET", "/animals?x=%0d%0aX-Injected:%201", {200, 400}),
    ])
    env.note("; ".join(seen[:2]))


@test
def errors_query_string_is_not_part_of_the_path(env):
    run_cases(env, [
        case("GET", "/animals?pretty=1", {200}),
        case("GET", "/animals/bisons?x=1", {200}),
        case("GET", "/animals/dodos?x=1", NOT_FOUND),
    ])


@test
def errors_traversal_attempts(env):
    seen = run_cases(env, [
        case("GET", "/animals/../etc/passwd", REFUSED),
        case("GET", "/animals/../../../../etc/passwd", REFUSED),
        case("GET", "/animals/..%2f..%2fetc%2fpasswd", REFUSED),
        case("GET", "/query/..%2f..", REFUSED),
        case("GET", "/query/../../etc/passwd", REFUSED),
        case("GET", "/jobs/..%2F..%2Fnginx.conf", REFUSED),
        case("GET", "/jobs/../tls/key.pem", REFUSED),
        case("GET", "/animals/bisons/..", REFUSED),
        case("GET", "/animals/bisons/../../query", REFUSED),
        case("GET", "/animals/.%2e/.%2e/etc/passwd", REFUSED),
        case("GET", "/animals/..\\..\\etc\\passwd", REFUSED),
        # nginx normalises these before matching a location, but forwards the
        # raw URI: the worker may route it or refuse it, never fail on it.
        case("GET", "//animals", {200, 400, 404}),
        case("GET", "/animals/./bisons", {200, 400, 404}),
        case("GET", "/animals//bisons", {200, 400, 404}),
    ])
    env.note("; ".join(seen[-3:]))


@test
def errors_overlong_paths(env):
    run_cases(env, [
        case("GET", "/animals/" + "a" * 10000, {414}),
        case("GET", "/" + "x" * 7000, {404, 414}),
        case("GET", "/animals/" + "a" * 4000, {400, 404, 414}),
        case("GET", "/animals/" + "b" * 300, {400, 404, 414}),
        case("GET", "/animals/" + "c" * 2000, {400, 404, 414}),
        case("GET", "/query/" + "0" * 5000, {400, 404, 414}),
        case("GET", "/jobs/" + str(uuidlib.uuid4()) * 100, {400, 404, 414}),
        case("GET", "/animals?" + "q=1&" * 1500, {200, 400, 414}),
        case("GET", "/animals/" + "/".join(["bisons"] * 900), {400, 404, 414}),
    ])
    fails = []
    status, headers, body = raw_request(
        env.main, b"GET /animals HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 9000
        + b"\r\nConnection: close\r\n\r\n")
    if status not in (400, 431) or headers.get("content-type") != "application/problem+json":
        fails.append("9000-byte header -> %d %s %r" % (status, headers.get("content-type"), body[:100]))
    check(not fails, "\n".join(fails))


@test
def errors_bad_uuids(env):
    job = known_job(env)
    bad = ["123", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", job.replace("-", ""), job + "0",
           job[:-1], "urn:uuid:" + job, "%7B" + job + "%7D", job.replace("a", "g", 1) if "a" in job
           else "g" + job[1:], " " + job, job + "%20", "-" * 36, job.replace("-", "_")]
    cases = []
    for b in bad:
        b = b.replace(" ", "%20")
        cases += [case("GET", "/query/" + b, {400}), case("DELETE", "/query/" + b, {400}),
                  case("GET", "/jobs/" + b, {400})]
    # The contract's parser takes either case, so an upper-case id is the same job.
    cases.append(case("GET", "/query/" + job.upper(), {200, 202}))
    cases.append(case("GET", "/query/" + job + "/", REFUSED))
    run_cases(env, cases)


@test
def errors_body_too_large_413(env):
    run_cases(env, [
        case("POST", "/animals/bisons", {413}, body=b"x" * 4096,
             headers={"Content-Type": "application/x-www-form-urlencoded"}),
        case("POST", "/animals/bisons", {413}, body=b"{}" * 600000,
             headers={"Content-Type": "application/json"}),
    ])
    status, headers, body = raw_request(
        env.main, b"POST /animals/bisons HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n"
        b"Connection: close\r\n\r\n")
    check(status == 413 and headers.get("content-type") == "application/problem+json",
          "Content-Length: 100000000 without a body -> %d %s %r"
          % (status, headers.get("content-type"), body[:100]))


@test
def errors_body_too_large_413_over_http2(env):
    # Browsers speak HTTP/2, where nginx once fell back to its HTML 413 page
    # (the error page's redirect met the size check again). http.client has
    # no HTTP/2, so curl sends these.
    fails = []
    for size in (1025, 100000):
        out = subprocess.run(
            ["curl", "-s", "--http2", "--cacert", env.main.cert, "-X", "POST",
             "--data-binary", "@-", "-o", "/dev/null",
             "-w", "%{http_version} %{http_code} %{content_type}",
             "https://localhost:%d/animals/bisons" % env.main.https_port],
            input=b"x" * size, capture_output=True, timeout=10).stdout.decode()
        if out != "2 413 application/problem+json":
            fails.append("%d bytes -> %r" % (size, out))
    check(not fails, "\n".join(fails))


@test
def errors_malformed_requests(env):
    fails = []
    for data, allowed in (
            (b"GET /animals HTTP/3.0\r\nHost: localhost\r\n\r\n", (400, 505)),
            (b"GET /animals HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n", (400,)),
            (b"GET /animals HTTP/1.1\r\nConnection: close\r\n\r\n", (400,)),
            (b"GET animals HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", (400,)),
            (b"POST /animals/bisons HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n"
             b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", (400,)),
            (b"POST /animals/bisons HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n"
             b"Connection: close\r\n\r\n", (400,))):
        status, headers, body = raw_request(env.main, data)
        if status not in allowed or headers.get("content-type") != "application/problem+json":
            fails.append("%r -> %d %s %r" % (data.split(b"\r\n")[0], status,
                                             headers.get("content-type"), body[:100]))
    check(not fails, "\n".join(fails))


SECURITY_HEADERS = {
    "Strict-Transport-Security": re.compile(r"^max-age=\d{7,}"),
    "X-Content-Type-Options": re.compile(r"^nosniff$"),
    "X-Frame-Options": re.compile(r"^DENY$"),
    "Referrer-Policy": re.compile(r"^no-referrer$"),
    "Content-Security-Policy": re.compile(r"default-src 'none'"),
    "Cache-Control": re.compile(r"^no-store$"),
    "X-Request-Id": re.compile(r"^[0-9a-f]{32}$"),
    "Server": re.compile(r"^nginx$"),
}


@test
def security_headers_on_every_answer(env):
    job = known_job(env)
    fails, ids = [], set()
    for method, path in (("GET", "/animals"), ("GET", "/query/" + job), ("GET", "/animals/dodos"),
                         ("GET", "/nowhere"), ("PUT", "/animals"), ("DELETE", "/animals"),
                         ("GET", "/query/xyz"), ("GET", "/animals/%00")):
        r = request(env.main, method, path)
        for name, pattern in SECURITY_HEADERS.items():
            values = r.header_all(name)
            if len(values) != 1 or not pattern.search(values[0]):
                fails.append("%s %s -> %d: %s: %r" % (method, path, r.status, name, values))
        ids.add(r.header("X-Request-Id"))
    check(len(ids) == 8, "X-Request-Id values repeat: %r" % ids)
    check(not fails, "\n".join(fails))


@test
def request_id_reaches_the_worker_log(env):
    # nginx adds X-Request-Id itself only when the worker did not echo it, so
    # the worker's log is where the contract's REQUEST_ID echo shows.
    r = request(env.main, "GET", "/animals")
    rid = r.header("X-Request-Id")
    check(rid, "no X-Request-Id: " + r.describe())
    deadline = time.monotonic() + 2
    while rid not in env.main.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [l for l in env.main.log_text().split("\n") if rid in l]
    check(lines, "the worker logged no line with id=%s (REQUEST_ID from nginx)" % rid)
    line = lines[0]
    for field in ("level=", "method=GET", "path=/animals", "status=200", "dur_us=", "ts="):
        check(field in line, "worker log line lacks %r: %s" % (field, line))
    check("id=" + rid in line, "worker log line lacks id=%s: %s" % (rid, line))


@test
def https_only_redirect_and_tls_versions(env):
    st = env.main
    c = http.client.HTTPConnection("127.0.0.1", st.http_port, timeout=5)
    c.request("GET", "/animals?x=1")
    r = c.getresponse()
    r.read()
    c.close()
    want = "https://127.0.0.1:%d/animals?x=1" % st.https_port
    check(r.status == 301 and r.getheader("Location") == want,
          "plain HTTP: %d Location %r, want 301 to %s" % (r.status, r.getheader("Location"), want))

    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=st.cert)
        ctx.minimum_version = ctx.maximum_version = version
        c = http.client.HTTPSConnection("localhost", st.https_port, context=ctx, timeout=5)
        try:
            c.request("GET", "/animals")
            status = c.getresponse().status
            check(c.sock.version() == version.name.replace("v1_", "v1."),
                  "negotiated %s, want %s" % (c.sock.version(), version.name))
        except (OSError, ssl.SSLError) as e:
            raise TestFailure("%s handshake with host name localhost failed: %s" % (version.name, e))
        finally:
            c.close()
        check(status == 200, "%s: GET /animals -> %d" % (version.name, status))
    # The harness's verification is real: the system CAs do not know this cert.
    c = http.client.HTTPSConnection("127.0.0.1", st.https_port,
                                    context=ssl.create_default_context(), timeout=5)
    try:
        c.request("GET", "/animals")
        raise TestFailure("an unknown self-signed certificate was accepted")
    except ssl.SSLCertVerificationError:
        pass
    finally:
        c.close()
