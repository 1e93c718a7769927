// The dispatcher: requests routed to the right handler with the right method,
// router errors passed through, the one exception boundary (500 problem+json
// and a log line), the request log line, and request metrics.

#include "dispatch/dispatcher.h"

#include <doctest/doctest.h>

#include "../support/json_doc.h"
#include <rapidjson/document.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "../support/capture_stderr.h"
#include "../support/pool_fixture.h"
#include "../support/wait.h"
#include "api/routes.h"
#include "util/log.h"

using namespace zk;
using test::parse_json;
using http::Request;
using http::Response;
using test::CaptureStderr;
using test::t0;

namespace {

struct Fixture {
    Fixture() : metrics(), api(pool, clock, metrics), dispatcher(api, metrics) { pool.start(); }
    ~Fixture()
    {
        log::set_level(log::Level::info);
        pool.stop();
        store.close();
    }
    void fail_commits()
    {
        std::lock_guard lock(disk->mutex);
        disk->fail_commits = true;
    }

    // Dispatches with the request log captured (and kept out of the test output).
    Response call(const std::string& method, const std::string& uri, const std::string& request_id = "req-1")
    {
        CaptureStderr capture;
        Response r = dispatcher.dispatch(Request{method, uri, request_id, std::nullopt, {}});
        log_text = capture.text();
        return r;
    }

    ManualClock clock{t0};
    std::shared_ptr<test::MemoryDriver::Disk> disk = std::make_shared<test::MemoryDriver::Disk>();
    test::ThrowingStore store{disk};
    LocalLedger ledger{store};
    JobPool pool{clock, store, ledger, test::test_shape(), test::test_rules()};
    api::Metrics metrics;
    api::Api api;
    dispatch::Dispatcher dispatcher;
    std::string log_text;
};

std::string type_of(const Response& r)
{
    CHECK(r.content_type == "application/problem+json");
    return parse_json(r.body)["type"].GetString();
}

}  // namespace

TEST_CASE("each route reaches its handler")
{
    Fixture f;
    CHECK(f.call("GET", "/animals").body == "[\"bisons\",\"elks\",\"koalas\"]");
    CHECK(f.call("HEAD", "/animals").status == 200);

    const Response get = f.call("GET", "/animals/bisons");
    CHECK(get.status == 200);
    const Response post = f.call("POST", "/animals/elks?ignored=1");
    CHECK(post.status == 202);
    const std::string id = parse_json(post.body).GetString();
    CHECK(*post.find_header("Location") == "/query/" + id);

    CHECK(f.call("GET", "/query/" + id).status == 202);
    CHECK(f.call("HEAD", "/query/" + id).status == 202);
    const Response job = f.call("GET", "/jobs/" + id);
    CHECK(job.status == 200);
    CHECK(std::string(parse_json(job.body)["animal"].GetString()) == "elks");
    CHECK(parse_json(f.call("GET", "/jobs?animal=elks").body)["jobs"].Size() == 1);
    CHECK(f.call("GET", "/healthz").status == 200);
    CHECK(f.call("GET", "/metrics").content_type.rfind("text/plain", 0) == 0);

    // DELETE on /query/{id} cancels; GET on it polls.
    CHECK(f.call("DELETE", "/query/" + id).status == 204);
    CHECK(f.call("GET", "/query/" + id).status == 410);
    CHECK(f.pool.stats().created_total == 2);
}

TEST_CASE("path parameters arrive decoded")
{
    Fixture f;
    CHECK(f.call("POST", "/animals/bi%73ons").status == 202);
    CHECK(type_of(f.call("POST", "/animals/Bisons")) == "/problems/unknown-animal");
    const std::string id = parse_json(f.call("POST", "/animals/koalas").body).GetString();
    std::string encoded = id;
    encoded.replace(8, 1, "%2d");  // the first '-'
    CHECK(f.call("GET", "/query/" + encoded).status == 202);
}

TEST_CASE("router errors pass through untouched")
{
    Fixture f;
    const Response r405 = f.call("PUT", "/animals");
    CHECK(r405.status == 405);
    CHECK(*r405.find_header("Allow") == "GET, HEAD");
    CHECK(type_of(r405) == "/problems/method-not-allowed");
    CHECK(f.call("GET", "/nowhere").status == 404);
    CHECK(f.call("GET", "/animals/%2F").status == 400);
    CHECK(f.call("GET", "/" + std::string(3000, 'a')).status == 414);
    CHECK(type_of(f.call("GET", "/query/nope")) == "/problems/bad-job-id");
    CHECK(f.pool.stats().created_total == 0);
}

TEST_CASE("a handler that throws becomes a 500 problem naming the request id, and is logged")
{
    Fixture f;
    f.store.throwing = true;  // JobPool::create writes through put()
    const Response r = f.call("POST", "/animals/bisons", "abc123");
    CHECK(r.status == 500);
    CHECK(type_of(r) == "/problems/internal");
    const auto d = parse_json(r.body);
    CHECK(d["status"].GetInt() == 500);
    CHECK(std::string(d["detail"].GetString()) == "the request failed; it is logged as abc123");
    CHECK(std::string(d["detail"].GetString()).find("put refused") == std::string::npos);  // no internals leak
    CHECK(f.log_text.find("level=error event=handler_failed id=abc123 what=\"memory store: put refused\"") !=
          std::string::npos);
    // The request line is an error too: the problem's cause is our bug.
    CHECK(f.log_text.find("level=error event=request id=abc123 method=POST path=/animals/bisons status=500") !=
          std::string::npos);
    CHECK(f.log_text.find(" cause=our_bug") != std::string::npos);

    // The service keeps answering.
    f.store.throwing = false;
    CHECK(f.call("GET", "/animals").status == 200);
    CHECK(f.call("POST", "/animals/bisons").status == 202);  // and creating: nothing was left half-made
    CHECK(f.pool.stats().created_total == 1);
}

TEST_CASE("every request is logged once: id, method, path, status, duration")
{
    Fixture f;
    f.call("GET", "/animals", "r-42");
    CHECK(f.log_text.find(" level=info event=request id=r-42 method=GET path=/animals status=200 dur_us=") !=
          std::string::npos);
    CHECK(std::count(f.log_text.begin(), f.log_text.end(), '\n') == 1);
    f.call("GET", "/animals?x=1", "r-43");  // '=' would read as a new field: quoted
    CHECK(f.log_text.find("id=r-43 method=GET path=\"/animals?x=1\" status=200 dur_us=") != std::string::npos);
    CHECK(std::count(f.log_text.begin(), f.log_text.end(), '\n') == 1);

    // Client-controlled text is quoted so it cannot forge fields or lines.
    f.call("GET", "/a b\"c?d=\x01", "x y");
    CHECK(f.log_text.find("id=\"x y\" method=GET path=\"/a b\\\"c?d=\\x01\" status=404") != std::string::npos);
    CHECK(std::count(f.log_text.begin(), f.log_text.end(), '\n') == 1);

    // A creation names its job, so the job's id leads back to this line.
    const auto created = f.call("POST", "/animals/bisons", "r-44");
    REQUIRE(created.status == 202);
    CHECK(f.log_text.find("id=r-44 method=POST path=/animals/bisons status=202 dur_us=") != std::string::npos);
    CHECK(f.log_text.find(" job=" + created.created_job + "\n") != std::string::npos);
    CHECK(created.created_job.size() == 36);

    // The level follows the problem's cause: the client's mistakes are info.
    f.call("GET", "/nowhere");
    CHECK(f.log_text.find("level=info event=request") != std::string::npos);
    CHECK(f.log_text.find(" cause=bad_input") != std::string::npos);
}

TEST_CASE("requests are counted per route and status")
{
    Fixture f;
    f.call("GET", "/animals");
    f.call("GET", "/animals");
    f.call("POST", "/animals/owls");
    f.call("GET", "/nowhere");
    const std::string text = f.metrics.render(f.pool.stats());
    CHECK(text.find("zookeeper_http_requests_total{route=\"animals\",status=\"200\"} 2\n") != std::string::npos);
    CHECK(text.find("zookeeper_http_requests_total{route=\"animal\",status=\"404\"} 1\n") != std::string::npos);
    CHECK(text.find("zookeeper_http_requests_total{route=\"none\",status=\"404\"} 1\n") != std::string::npos);
    CHECK(text.find("zookeeper_http_request_duration_seconds_count{route=\"animals\"} 2\n") != std::string::npos);
}

TEST_CASE("a store that cannot commit is an unavailable dependency: a warning, not our bug")
{
    Fixture f;
    f.fail_commits();
    const Response r = f.call("POST", "/animals/bisons", "s-1");
    CHECK(r.status == 503);
    CHECK(type_of(r) == "/problems/store-failed");
    CHECK(f.log_text.find("level=warn event=request id=s-1 method=POST path=/animals/bisons status=503") !=
          std::string::npos);
    CHECK(f.log_text.find(" cause=unavailable") != std::string::npos);
}

TEST_CASE("GET /jobs?animal=%FF is a 400 problem, not a store failure")
{
    Fixture f;
    const Response r = f.call("GET", "/jobs?animal=%FF", "u-1");
    CHECK(r.status == 400);
    CHECK(type_of(r) == "/problems/bad-parameter");
    CHECK(f.log_text.find(" cause=bad_input") != std::string::npos);
    CHECK(f.call("GET", "/jobs?animal=%C3%A9").status == 200);  // UTF-8 that names no animal: an empty page
}

TEST_CASE("every row of the route table is reachable, and each method counts under the row's label")
{
    Fixture f;
    for (const api::Route& row : api::routes()) {
        const std::string uri = "/" + std::string(row.segment) + (row.has_param ? "/x" : "");
        for (const api::Verb& v : row.verbs) {
            if (!v.handler) continue;
            CAPTURE(uri);
            CAPTURE(v.method);
            const Response r = f.call(std::string(v.method), uri);
            // Neither 404 no-route nor 405: the router found the row and its method.
            CHECK(r.status != 405);
            if (r.content_type == "application/problem+json") CHECK(type_of(r) != "/problems/no-route");
        }
    }
    const std::string text = f.metrics.render(f.pool.stats());
    for (const api::Route& row : api::routes())
        CHECK_MESSAGE(text.find("zookeeper_http_requests_total{route=\"" + std::string(row.label) + "\"") != std::string::npos,
                      row.label);
    CHECK(text.find("route=\"none\",status") == std::string::npos);  // nothing went unrouted
}
