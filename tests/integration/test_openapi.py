"""docs/openapi.json against the live stack, both ways, so neither can drift.

Design notes
- Forward: every documented path + method + status is provoked for real and
  the answer is checked against its description: status, media type,
  required headers (X-Request-Id, Location, Retry-After, Allow,
  WWW-Authenticate) and the JSON body against its schema. How to provoke
  each status lives in provoke() below; a status documented without a way
  to provoke it fails the last test, so the document cannot promise what
  nobody checks.
- Backward: the worker's own metrics name its routes (every route label of
  the request-duration histogram is rendered, used or not), and each path
  names its label in x-metrics-route: a route added to the worker without
  a description fails. For every described path, the methods the worker or
  nginx accept (the Allow of a 405) must be exactly the documented ones,
  and a list of plausible undocumented paths must all be 404.
- Statuses that need a broken stack get one of their own: "store" (the
  store's writes held from outside, so a keyed creation waits in its commit
  and its repeat is 409, then the store down: 503 from /healthz, starts and
  cancels; harness.STORES says how on each backend) and "down"
  (every worker stopped, so nginx times out with 504, then killed, so
  nginx answers 502). Everything else runs on the shared stack.
- Schemas are checked by a small validator for the JSON Schema subset the
  document uses ($ref, type, enum, const, pattern, bounds, items,
  properties, required, additionalProperties, oneOf); the document's own
  test fails on any keyword outside it, so nothing is silently skipped.
"""

import json
import os
import re
import signal
import threading
import time
import uuid as uuidlib

import harness
from harness import LOOPBACK, Client, check, config_text, create_survey, fresh_addr, poll_until_done, request
from registry import test

DOC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "openapi.json")
METHODS = ("get", "head", "post", "delete")
OPERATOR_PATHS = {"/jobs", "/healthz", "/metrics"}
SCHEMA_KEYWORDS = {"$ref", "type", "enum", "const", "pattern", "minimum", "maximum", "minLength",
                   "items", "properties", "required", "additionalProperties", "oneOf", "format",
                   "description", "examples", "default"}
# Paths a service like this might plausibly answer; none is documented, so
# each must be 404 (plus the stack's own files, which must never be served).
UNDOCUMENTED = ["/index.html", "/favicon.ico", "/robots.txt", "/api", "/v1/animals", "/animals/",
                "/animals/bisons/x", "/query", "/query/", "/jobs/", "/job", "/health", "/status",
                "/metrics/", "/healthz/", "/openapi.yaml", "/docs", "/web/app.js", "/ui/app.js",
                "/app.css", "/style.js", "/.zk-problem", "/nginx.conf", "/zookeeper.conf",
                "/tls/key.pem", "/web/index.html", "/state/jobs.db", "/logs/access.log"]

_state = {"checked": set(), "jobs": {}}


# --- the document ----------------------------------------------------------

def load_doc():
    if "doc" not in _state:
        with open(DOC_PATH) as f:
            _state["doc"] = json.load(f)
    return _state["doc"]


def resolve(doc, node):
    """Follows $ref chains to the node they name."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        check(ref.startswith("#/"), "only local $refs are used, got %r" % ref)
        target = doc
        for part in ref[2:].split("/"):
            check(isinstance(target, dict) and part in target, "unresolvable $ref %r" % ref)
            target = target[part]
        node = target
        seen += 1
        check(seen < 20, "$ref loop at %r" % ref)
    return node


def operations(doc):
    """(path template, method, operation) for every documented operation."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def documented_statuses(doc):
    return {(path, method, status) for path, method, op in operations(doc) for status in op["responses"]}


def template_regex(template):
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")


def match_template(doc, path):
    """The documented template a concrete path (no query) falls under, or None.
    Concrete templates win over templated ones, as OpenAPI says."""
    if path in doc["paths"]:
        return path
    for template in doc["paths"]:
        if "{" in template and template_regex(template).match(path):
            return template
    return None


# --- JSON Schema subset ----------------------------------------------------

TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list,
         "object": dict, "null": type(None)}


def type_ok(value, name):
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, TYPES[name])


def short_repr(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def schema_errors(doc, schema, value, where="body"):
    schema = resolve(doc, schema)
    errs = []
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not schema_errors(doc, s, value, where)]
        if len(matching) != 1:
            errs.append("%s: %s matches %d of oneOf, want 1" % (where, short_repr(value), len(matching)))
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(type_ok(value, n) for n in names):
            return errs + ["%s: %s is not %s" % (where, short_repr(value), "/".join(names))]
    if "const" in schema and value != schema["const"]:
        errs.append("%s: %s, want %r" % (where, short_repr(value), schema["const"]))
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: %s not in %r" % (where, short_repr(value), schema["enum"]))
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append("%s: %r does not match %s" % (where, value, schema["pattern"]))
        if len(value) < schema.get("minLength", 0):
            errs.append("%s: %r shorter than %d" % (where, value, schema["minLength"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: %r < minimum %r" % (where, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: %r > maximum %r" % (where, value, schema["maximum"]))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errs += schema_errors(doc, schema["items"], item, "%s[%d]" % (where, i))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errs.append("%s: lacks %r" % (where, key))
        for key, item in value.items():
            if key in props:
                errs += schema_errors(doc, props[key], item, "%s.%s" % (where, key))
            elif schema.get("additionalProperties") is False:
                errs.append("%s: undocumented property %r" % (where, key))
    return errs


def walk_schemas(doc, node, where, out):
    """Every schema keyword outside SCHEMA_KEYWORDS, anywhere in node."""
    if not isinstance(node, dict):
        return
    for key in node:
        if key not in SCHEMA_KEYWORDS:
            out.append("%s: schema keyword %r is not checked by this test" % (where, key))
    for key in ("items",):
        if key in node:
            walk_schemas(doc, node[key], where + "." + key, out)
    for key, sub in node.get("properties", {}).items():
        walk_schemas(doc, sub, where + ".properties." + key, out)
    for i, sub in enumerate(node.get("oneOf", [])):
        walk_schemas(doc, sub, "%s.oneOf[%d]" % (where, i), out)


# --- checking one answer against the document -------------------------------

def conformance_errors(doc, resp, template, method, want):
    """Why resp is not what the document says `method template` answers with
    status `want`."""
    errs = []
    if resp.status != want:
        return ["status %d, want %d" % (resp.status, want)]
    op = doc["paths"][template].get(method)
    if op is None:
        return ["%s %s is not documented" % (method.upper(), template)]
    described = op["responses"].get(str(resp.status))
    if described is None:
        return ["status %d is not documented for %s %s" % (resp.status, method.upper(), template)]
    described = resolve(doc, described)
    for name, header in described.get("headers", {}).items():
        header = resolve(doc, header)
        value = resp.header(name)
        if value is None:
            if header.get("required"):
                errs.append("lacks header %s" % name)
            continue
        number = header["schema"].get("type") == "integer" and value.isdigit()
        errs += schema_errors(doc, header["schema"], int(value) if number else value, name)
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip().lower()
    content = described.get("content")
    if content is None:
        if resp.body:
            errs.append("has a body, but none is documented")
        return errs
    if ctype not in content:
        # HEAD answers carry the GET's type; the document lists it on the GET.
        get = doc["paths"][template].get("get")
        alt = resolve(doc, get["responses"].get(str(resp.status), {})) if get else {}
        if resp.method != "HEAD" or ctype not in alt.get("content", {}):
            errs.append("Content-Type %r, documented %s" % (resp.header("Content-Type"), sorted(content)))
    if resp.method == "HEAD" or not (ctype.endswith("json") and ctype in content):
        return errs
    try:
        body = json.loads(resp.body.decode("utf-8"))
    except ValueError:
        return errs + ["body is not JSON: %r" % resp.body[:100]]
    schema = content[ctype].get("schema")
    if schema is not None:
        errs += schema_errors(doc, schema, body)
    return errs


def verify(doc, resp, template, method, want, fails):
    errs = conformance_errors(doc, resp, template, method, want)
    if errs:
        fails.append("%s %s [%s]: %s\n        %s" % (method.upper(), template, want, "; ".join(errs),
                                                     resp.describe()))
    else:
        _state["checked"].add((template, method, str(want)))


# --- surveys in known states on a stack -------------------------------------

def job_in(stack, state):
    """A survey of the shared stack (0.3-0.8 s workload) in `state`, cached
    for done and cancelled; a running one is always new."""
    if state == "running":
        return create_survey(stack)
    if state not in _state["jobs"]:
        job = create_survey(stack)
        if state == "done":
            final, _ = poll_until_done(Client(stack), job, harness.MAX_SECONDS + 5)
            check(final.status == 200, "setup: " + final.describe())
        else:
            r = request(stack, "DELETE", "/query/" + job)
            check(r.status == 204, "setup: " + r.describe())
            harness.wait_cancel_seen(stack, job, time.monotonic())  # by every worker (docs/contract.md)
        _state["jobs"][state] = job
    return _state["jobs"][state]


def concrete(template):
    """A harmless concrete path: no survey is started, no id exists."""
    return (template.replace("{animal}", "dodos")
            .replace("{id}", str(uuidlib.uuid4())))


def src_for(template):
    return LOOPBACK if template in OPERATOR_PATHS else None


def hammer(stack, method, path):
    """One address, one kept connection, as fast as it goes: the first 429."""
    c = Client(stack, timeout=5)
    try:
        for _ in range(600):
            r = c.request(method.upper(), path)
            if r.status == 429:
                return r
        return r
    finally:
        c.close()


# --- provoking each status ----------------------------------------------------

def provoke(stack, template, method, status):
    """The answer to a request made to get `status` from `method template` on
    the shared stack; None for statuses other tests provoke."""
    m = method.upper()
    src = src_for(template)
    if status in ("405", "502", "503", "504"):
        return None  # the tests named after them, on stacks of their own or per path
    if status == "429":
        return hammer(stack, method, concrete(template))
    if status == "401":
        return request(stack, m, template)  # a fresh 127.x address, not LOOPBACK
    if status == "414":
        path = concrete(template)
        return request(stack, m, path + ("&" if "?" in path else "?") + "pad=" + "x" * 3000, src=src)
    if status == "413":
        return request(stack, m, concrete(template), body=b"x" * 2048,
                       headers={"Content-Type": "application/octet-stream"})
    if template == "/animals/{animal}" and status == "422":
        key = {"Idempotency-Key": "openapi-422-" + method}
        src = fresh_addr()  # the key's scope: one client's address
        first = request(stack, m, "/animals/bisons", headers=key, src=src)
        check(first.status in (200, 202), "setup: " + first.describe())
        return request(stack, m, "/animals/elks", headers=key, src=src)
    if template == "/animals/{animal}" and status == "409":
        return None  # openapi_503_when_the_store_fails: a creation stuck in its commit
    if template == "/animals/{animal}":
        path = {"200": "/animals/bisons", "202": "/animals/bisons", "400": "/animals/%2F",
                "404": "/animals/dodos"}[status]
        return request(stack, m, path)
    if template in ("/query/{id}", "/jobs/{id}"):
        prefix = template.split("{")[0]
        if status == "400":
            return request(stack, m, prefix + "not-a-uuid")
        if status == "404":
            return request(stack, m, concrete(template))
        state = {("get", "200"): "done", ("head", "200"): "done", ("get", "202"): "running",
                 ("head", "202"): "running", ("get", "410"): "cancelled", ("head", "410"): "cancelled",
                 ("delete", "204"): "running", ("delete", "409"): "done"}.get((method, status))
        if template == "/jobs/{id}" and status == "200":
            state = "done"
        check(state is not None, "no way to provoke %s %s %s" % (m, template, status))
        return request(stack, m, prefix + job_in(stack, state))
    if template == "/jobs" and status == "400":
        return request(stack, m, "/jobs?state=sleeping", src=src)
    if status == "200":
        return request(stack, m, template, src=src)
    return None


@test
def openapi_document_is_well_formed(env):
    doc = load_doc()
    errs = []
    if doc.get("openapi") != "3.1.0":
        errs.append("openapi is %r, want 3.1.0" % doc.get("openapi"))
    ids = [op.get("operationId") for _, _, op in operations(doc)]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if None in ids or dupes:
        errs.append("operationIds missing or repeated: %s" % dupes)
    for path, item in doc["paths"].items():
        params = [resolve(doc, p) for p in item.get("parameters", [])]
        declared = {p["name"] for p in params if p["in"] == "path"}
        used = set(re.findall(r"\{([^}]+)\}", path))
        if declared != used:
            errs.append("%s: path parameters %s declared, %s in the template" % (path, sorted(declared), sorted(used)))
        if "{" not in path and "x-metrics-route" not in item and not item.get("get", {}).get("tags") == ["dashboard"]:
            errs.append("%s: a worker path without x-metrics-route" % path)
    for path, method, op in operations(doc):
        if not op.get("responses"):
            errs.append("%s %s: no responses" % (method.upper(), path))
        for status, r in op.get("responses", {}).items():
            try:
                r = resolve(doc, r)
            except AssertionError as e:
                errs.append("%s %s %s: %s" % (method.upper(), path, status, e))
                continue
            if not re.match(r"^[1-5]\d\d$", status) or not r.get("description"):
                errs.append("%s %s %s: bad status key or no description" % (method.upper(), path, status))
            for name, h in r.get("headers", {}).items():
                resolve(doc, h)
            for media, c in r.get("content", {}).items():
                if "schema" in c:
                    walk_schemas(doc, resolve(doc, c["schema"]), "%s %s %s %s" % (method, path, status, media), errs)
    for name, s in doc["components"]["schemas"].items():
        walk_schemas(doc, s, "schemas." + name, errs)
    # Every $ref anywhere resolves.
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for v in node.values():
                yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)
    for ref in set(refs(doc)):
        try:
            resolve(doc, {"$ref": ref})
        except AssertionError as e:
            errs.append(str(e))
    check(not errs, "\n".join(errs))
    env.note("%d paths, %d operations, %d documented statuses"
             % (len(doc["paths"]), len(ids), len(documented_statuses(doc))))


@test
def openapi_statuses_on_the_shared_stack(env):
    doc = load_doc()
    fails, count = [], 0
    for template, method, status in sorted(documented_statuses(doc)):
        try:
            resp = provoke(env.main, template, method, status)
        except AssertionError as e:
            fails.append("%s %s [%s]: %s" % (method.upper(), template, status, e))
            continue
        if resp is None:
            continue
        count += 1
        verify(doc, resp, template, method, int(status), fails)
    check(not fails, "%d of %d answers differ from docs/openapi.json:\n%s" % (len(fails), count, "\n".join(fails)))
    env.note("%d answers match the document" % count)


@test
def openapi_methods_match_allow(env):
    """Per documented path: every other method is 405 and its Allow lists
    exactly the documented methods (nginx's own 405 for methods it never
    forwards lists what it forwards)."""
    doc = load_doc()
    fails = []
    for template, item in doc["paths"].items():
        documented = {m for m in METHODS if m in item}
        path = concrete(template)
        for m in METHODS + ("put", "options", "patch"):
            if m in documented:
                continue
            r = request(env.main, m.upper(), path, src=src_for(template))
            allow = {a.strip().lower() for a in (r.header("Allow") or "").split(",") if a.strip()}
            if m in METHODS and allow != documented:
                fails.append("%s %s: Allow %r, documented methods %s"
                             % (m.upper(), template, r.header("Allow"), sorted(documented)))
            elif m not in METHODS and not allow <= set(METHODS):
                fails.append("%s %s: Allow %r lists methods nginx never forwards" % (m.upper(), template, r.header("Allow")))
            for op_method in documented:
                if "405" in item[op_method]["responses"]:
                    errs = conformance_errors(doc, r, template, op_method, 405)
                    if errs:
                        fails.append("%s %s: %s\n        %s" % (m.upper(), template, "; ".join(errs), r.describe()))
                    else:
                        _state["checked"].add((template, op_method, "405"))
    check(not fails, "\n".join(fails))


@test
def openapi_every_worker_route_is_documented(env):
    doc = load_doc()
    r = request(env.main, "GET", "/metrics", src=LOOPBACK)
    check(r.status == 200, r.describe())
    live = set(re.findall(r'^zookeeper_http_request_duration_seconds_count\{route="([^"]+)"\}',
                          r.body.decode(), re.M)) - {"none"}
    described = {item["x-metrics-route"] for item in doc["paths"].values() if "x-metrics-route" in item}
    check(live, "no route labels in /metrics:\n" + r.body.decode()[:500])
    check(live == described, "the worker's routes (metrics labels) %s, documented %s: undocumented %s, "
          "gone %s" % (sorted(live), sorted(described), sorted(live - described), sorted(described - live)))
    h = request(env.main, "GET", "/healthz", src=LOOPBACK)
    check(h.status == 200 and h.json().get("version") == doc["info"]["version"],
          "info.version %r, the worker says %s" % (doc["info"]["version"], h.describe()))
    fails = []
    for path in UNDOCUMENTED:
        check(match_template(doc, path) is None or path.endswith("/"), "%s is documented" % path)
        for m in ("GET", "HEAD", "POST", "DELETE"):
            a = request(env.main, m, path)
            if a.status not in (400, 404):
                fails.append("undocumented %s %s answered: %s" % (m, path, a.describe()))
    check(not fails, "\n".join(fails))
    env.note("worker routes %s all documented; %d other paths are 404" % (sorted(live), len(UNDOCUMENTED)))


@test
def openapi_503_when_the_store_fails(env):
    doc = load_doc()
    st = env.new_stack("openapi-store")
    st.write_config(config_text(min_seconds=60, max_seconds=60, state_dir=os.path.join(st.dir, "state")))
    fails = []
    with st.start():
        running = create_survey(st)
        # The writes held: the creation waits in its commit, and a repeat
        # of it with its Idempotency-Key is told 409, by either form.
        key, src, answers = {"Idempotency-Key": "openapi-409"}, fresh_addr(), {}

        def stuck():
            answers["first"] = request(st, "POST", "/animals/bisons", headers=key, src=src, timeout=20)

        creator = threading.Thread(target=stuck, daemon=True)
        with st.store.hold_writes():
            creator.start()
            time.sleep(0.5)  # well inside the store's 5 s timeout
            for method in ("post", "get"):
                try:  # a 409 is at once; a repeat made to wait for the first is not one
                    r = request(st, method.upper(), "/animals/bisons", headers=key, src=src, timeout=3)
                except AssertionError as e:
                    fails.append("%s /animals/{animal} [409]: %s" % (method.upper(), e))
                    continue
                verify(doc, r, "/animals/{animal}", method, 409, fails)
        creator.join(20)
        check("first" in answers, "the stuck creation never answered")
        # The store down (SQLite: a commit failed past the busy timeout and
        # the lock still held; PostgreSQL: the database stopped).
        with st.store.down():
            for template, method, path in (("/animals/{animal}", "post", "/animals/bisons"),
                                           ("/animals/{animal}", "get", "/animals/bisons"),
                                           ("/query/{id}", "delete", "/query/" + running),
                                           ("/healthz", "get", "/healthz"), ("/healthz", "head", "/healthz")):
                r = request(st, method.upper(), path, src=src_for(template))
                verify(doc, r, template, method, 503, fails)
    check(not fails, "\n".join(fails))


@test
def openapi_504_and_502_when_the_worker_hangs_or_dies(env):
    """Stopped, the workers take connections but never answer: nginx gives
    up after fastcgi_read_timeout (10 s) with 504. Killed: 502 at once."""
    doc = load_doc()
    targets = sorted((t, m) for t, m, s in documented_statuses(doc) if s == "504")
    check(targets == sorted((t, m) for t, m, s in documented_statuses(doc) if s == "502"),
          "502 and 504 should be documented on the same operations")
    fails = []
    with env.new_stack("openapi-down", shim=True).start() as st:
        pids = st.worker_pids()
        for pid in pids:  # every worker: nginx would send the request to one still answering
            os.kill(pid, signal.SIGSTOP)
        answers = {}

        def one(t, m):
            try:
                answers[(t, m)] = request(st, m.upper(), concrete(t), src=src_for(t), timeout=20)
            except AssertionError as e:
                answers[(t, m)] = e

        try:
            threads = [threading.Thread(target=one, args=tm, daemon=True) for tm in targets]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(25)
            waited = time.monotonic() - t0
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)  # a stopped process dies of it too
                try:
                    os.kill(pid, signal.SIGCONT)  # only in case: its parent may have reaped it already
                except ProcessLookupError:
                    pass
        for n in st.worker_numbers():
            check(st.shim_exit(timeout=5, n=n) is not None, "the stopped worker %d survived SIGKILL" % n)
        for (t, m), a in sorted(answers.items()):
            if isinstance(a, AssertionError):
                fails.append("504 %s %s: %s" % (m.upper(), t, a))
            else:
                verify(doc, a, t, m, 504, fails)
        for t, m in targets:
            verify(doc, request(st, m.upper(), concrete(t), src=src_for(t)), t, m, 502, fails)
    check(not fails, "\n".join(fails))
    env.note("%d operations: 504 after %.1f s, then 502" % (len(targets), waited))


@test
def openapi_every_documented_status_was_checked(env):
    missing = sorted(documented_statuses(load_doc()) - _state["checked"])
    check(not missing, "documented but never provoked and checked (a test above failed, or "
          "provoke() lacks a way):\n" + "\n".join("%s %s %s" % (m.upper(), t, s) for t, m, s in missing))


@test
def openapi_wait_parameter_and_its_answers_match_the_document(env):
    """GET/HEAD /query/{id} and /jobs/{id} declare `wait` (1 to the worker's
    max_wait_seconds); a bad value's 400, a wait that ends at completion
    (200) and one that runs out (202) are the documented answers."""
    doc = load_doc()
    fails = []
    for template in ("/query/{id}", "/jobs/{id}"):
        for method in ("get", "head"):
            params = [resolve(doc, p) for p in doc["paths"][template][method].get("parameters", [])]
            wait = [p for p in params if p.get("name") == "wait" and p.get("in") == "query"]
            if not wait or wait[0]["schema"].get("minimum") != 1 or wait[0]["schema"].get("maximum") != 30:
                fails.append("%s %s: no wait parameter from 1 to 30 (the shipped max_wait_seconds)"
                             % (method.upper(), template))
    st = env.main
    for template in ("/query/{id}", "/jobs/{id}"):
        prefix = template.split("{")[0]
        job = create_survey(st)
        verify(doc, request(st, "GET", prefix + job + "?wait=31"), template, "get", 400, fails)
        verify(doc, request(st, "HEAD", prefix + job + "?wait=0"), template, "head", 400, fails)
        verify(doc, request(st, "GET", prefix + job + "?wait=5"), template, "get", 200, fails)
    # Timeouts (202) are checked against the document in test_waits.py's
    # stacks with long surveys; here a cancelled survey's wait answers 410.
    job = create_survey(st)
    request(st, "DELETE", "/query/" + job)
    verify(doc, request(st, "GET", "/query/%s?wait=5" % job), "/query/{id}", "get", 410, fails)
    check(not fails, "\n".join(fails))
