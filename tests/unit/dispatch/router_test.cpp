// The router: every route with every method (405 + the exact Allow list),
// percent-decoding and what it refuses (400), length limits (414), unknown
// paths (404) and query strings.

#include "dispatch/router.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

using namespace zk::dispatch;
using zk::http::Response;

namespace {


// The error answer, checked to be problem+json with the given status and type.
Response refused(std::string_view method, std::string_view uri, int status, const std::string& slug)
{
    auto r = route(method, uri);
    CAPTURE(method);
    CAPTURE(uri);
    REQUIRE(std::holds_alternative<Response>(r));
    Response resp = std::get<Response>(r);
    CHECK(resp.status == status);
    CHECK(resp.content_type == "application/problem+json");
    rapidjson::Document d;
    d.Parse(resp.body.c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["type"].GetString()) == "/problems/" + slug);
    CHECK(d["status"].GetInt() == status);
    return resp;
}

RouteMatch routed(std::string_view method, std::string_view uri)
{
    auto r = route(method, uri);
    CAPTURE(method);
    CAPTURE(uri);
    if (auto* error = std::get_if<Response>(&r)) FAIL("refused with " << error->status << ": " << error->body);
    return std::get<RouteMatch>(r);
}

struct Case {
    const char* uri;
    const char* label;
    const char* param;
    const char* allow;
};

const char* const id = "018bcfe5-6800-7abc-8def-0123456789ab";

const std::vector<Case> cases = {
    {"/animals", "animals", "", "GET, HEAD"},
    {"/animals/bisons", "animal", "bisons", "GET, POST"},
    {"/query/018bcfe5-6800-7abc-8def-0123456789ab", "query", id, "GET, HEAD, DELETE"},
    {"/jobs/018bcfe5-6800-7abc-8def-0123456789ab", "job", id, "GET, HEAD"},
    {"/jobs", "jobs", "", "GET, HEAD"},
    {"/healthz", "healthz", "", "GET, HEAD"},
    {"/metrics", "metrics", "", "GET, HEAD"},
};

bool listed(const std::string& allow, const std::string& method)
{
    std::string::size_type at = 0;
    for (;;) {
        const auto comma = allow.find(", ", at);
        if (allow.substr(at, comma - at) == method) return true;
        if (comma == std::string::npos) return false;
        at = comma + 2;
    }
}

}  // namespace

TEST_CASE("every route with every method: allowed ones route, others get 405 with the exact Allow")
{
    const std::vector<std::string> methods = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                                              "TRACE", "CONNECT", "get", "Get", "", "BREW", "GET "};
    for (const Case& c : cases)
        for (const std::string& m : methods) {
            CAPTURE(c.uri);
            CAPTURE(m);
            if (listed(c.allow, m)) {
                const RouteMatch r = routed(m, c.uri);
                CHECK(r.route->label == c.label);
                CHECK(r.param == c.param);
                CHECK(r.query.empty());
            } else {
                const Response r = refused(m, c.uri, 405, "method-not-allowed");
                REQUIRE(r.find_header("Allow") != nullptr);
                CHECK(*r.find_header("Allow") == c.allow);
            }
        }
}

TEST_CASE("HEAD is allowed only where GET is safe")
{
    CHECK(routed("HEAD", "/animals").route->label == "animals");
    CHECK(routed("HEAD", "/query/x").route->label == "query");
    // GET /animals/{animal} starts a survey: HEAD must not.
    CHECK(*refused("HEAD", "/animals/bisons", 405, "method-not-allowed").find_header("Allow") == "GET, POST");
}

TEST_CASE("the 405 detail names the method, quoted and sanitised")
{
    const Response r = refused("BR\r\nEW", "/animals", 405, "method-not-allowed");
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    CHECK(std::string(d["detail"].GetString()) == "'BR??EW' is not allowed here; allowed: GET, HEAD");
}

TEST_CASE("path segments are percent-decoded once, in either hex case")
{
    CHECK(routed("GET", "/animals/bi%73ons").param == "bisons");
    CHECK(routed("GET", "/animals/bi%73%6Fns").param == "bisons");
    CHECK(routed("GET", "/animals/%62%69%73%6f%6e%73").param == "bisons");
    CHECK(routed("GET", "/%61nimals").route->label == "animals");  // the route name is matched decoded
    CHECK(routed("GET", "/animals/red%20deer").param == "red deer");
    CHECK(routed("GET", "/animals/%252F").param == "%2F");  // decoded once, not twice
    CHECK(routed("GET", "/animals/caf%C3%A9").param == "caf\xc3\xa9");
    CHECK(routed("GET", "/animals/...").param == "...");  // three dots is a name, not a dot segment
    CHECK(routed("GET", "/animals/.hidden").param == ".hidden");
}

TEST_CASE("encoded '/', NUL and control characters are refused with 400")
{
    for (const char* uri : {"/animals/bi%2Fsons", "/animals/bi%2fsons", "/animals/%2F", "/animals/bi%00sons",
                            "/animals/%0d%0a", "/animals/%7F", "/query/%09", "/animals/bi\x01sons", "/an\x7fimals"}) {
        CAPTURE(uri);
        refused("GET", uri, 400, "bad-path");
    }
}

TEST_CASE("malformed percent-escapes are refused with 400")
{
    for (const char* uri : {"/animals/%zz", "/animals/%g0", "/animals/%0g", "/animals/bisons%", "/animals/bisons%4",
                            "/animals/%", "/animals/%%41", "/%", "/animals%2"}) {
        CAPTURE(uri);
        refused("GET", uri, 400, "bad-path");
    }
}

TEST_CASE("dot segments, plain or encoded, are refused with 400")
{
    for (const char* uri : {"/animals/..", "/animals/.", "/animals/%2e%2e", "/animals/%2E%2E", "/animals/.%2e",
                            "/animals/%2e", "/../animals", "/./animals", "/animals/../query/x", "/animals/bisons/.."}) {
        CAPTURE(uri);
        refused("GET", uri, 400, "bad-path");
    }
}

TEST_CASE("a target that is not an origin-form path is refused with 400")
{
    for (const char* uri : {"", "animals", "*", "http://localhost/animals", "?x=1"}) {
        CAPTURE(uri);
        refused("GET", uri, 400, "bad-path");
    }
}

TEST_CASE("request targets over 2048 bytes get 414, path and query together")
{
    const std::string at_limit = "/animals/" + std::string(max_uri_length - 9, 'a');
    REQUIRE(at_limit.size() == max_uri_length);
    CHECK(routed("GET", at_limit).param.size() == max_uri_length - 9);
    refused("GET", at_limit + "a", 414, "uri-too-long");
    refused("GET", "/animals?q=" + std::string(max_uri_length, 'x'), 414, "uri-too-long");
    refused("GET", "/animals/%zz" + std::string(5000, 'x'), 414, "uri-too-long");  // the limit is checked first
}

TEST_CASE("unknown paths, trailing slashes and empty parameters get 404")
{
    for (const char* uri : {"/", "//", "/nothing", "/ANIMALS", "/Animals/bisons", "/animal", "/animals/",
                            "/animals//", "//animals", "/animals/bisons/", "/animals/bisons/more", "/query",
                            "/query/", "/jobs/", "/jobs/a/b", "/healthz/", "/metrics/x", "/index.html"}) {
        CAPTURE(uri);
        refused("GET", uri, 404, "no-route");
    }
    // 404 wins over 405: an unknown path has no Allow to offer.
    CHECK(refused("DELETE", "/animals/", 404, "no-route").find_header("Allow") == nullptr);
}

TEST_CASE("the 404 detail echoes the path, quoted and cut short")
{
    const Response r = refused("GET", "/x\xc3\xa9y/" + std::string(100, 'z'), 404, "no-route");
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    const std::string detail = d["detail"].GetString();
    CHECK(detail.find("'/x??y/") != std::string::npos);
    CHECK(detail.find("...'") != std::string::npos);
    CHECK(detail.size() < 100);
}

TEST_CASE("the query string does not change the route and is decoded into parameters")
{
    const RouteMatch a = routed("GET", "/animals?format=json");
    CHECK(a.route->label == "animals");
    REQUIRE(a.query.size() == 1);
    CHECK(a.query[0] == std::pair<std::string, std::string>{"format", "json"});
    CHECK(routed("GET", "/animals/bisons?x=1").param == "bisons");
    CHECK(routed("GET", "/animals?").query.empty());
    CHECK(routed("GET", "/animals/bisons?a/b=../..").param == "bisons");  // the query is not a path

    const RouteMatch j = routed("GET", "/jobs?state=done&animal=red+deer&&limit=5&flag&x=%41%2f%3D");
    REQUIRE(j.query.size() == 5);
    CHECK(j.query[0] == std::pair<std::string, std::string>{"state", "done"});
    CHECK(j.query[1] == std::pair<std::string, std::string>{"animal", "red deer"});
    CHECK(j.query[2] == std::pair<std::string, std::string>{"limit", "5"});
    CHECK(j.query[3] == std::pair<std::string, std::string>{"flag", ""});
    CHECK(j.query[4] == std::pair<std::string, std::string>{"x", "A/="});
}

TEST_CASE("an undecodable query string gets 400 bad-parameter")
{
    for (const char* uri : {"/jobs?limit=%zz", "/jobs?%", "/jobs?a=%0a", "/jobs?a%00=1", "/animals?x=%7f"}) {
        CAPTURE(uri);
        refused("GET", uri, 400, "bad-parameter");
    }
}

TEST_CASE("decode_segment")
{
    std::string out = "left over";
    CHECK(decode_segment("", out));
    CHECK(out.empty());
    CHECK(decode_segment("plain", out));
    CHECK(out == "plain");
    CHECK(decode_segment("%41%62%2F%2f%00", out));
    CHECK(out == std::string("Ab//\0", 5));
    CHECK(decode_segment("a+b", out));
    CHECK(out == "a+b");  // '+' is only a space in queries
    for (const char* bad : {"%", "%4", "a%", "%4g", "%g4", "%%", "%-1"}) {
        CAPTURE(bad);
        CHECK_FALSE(decode_segment(bad, out));
    }
}

TEST_CASE("decode_query")
{
    CHECK(decode_query("")->empty());
    CHECK(decode_query("&&&")->empty());
    const auto q = decode_query("a=1&b=x%20y&c=p+q&a=2&=v&k=");
    REQUIRE(q);
    REQUIRE(q->size() == 6);
    CHECK((*q)[0] == std::pair<std::string, std::string>{"a", "1"});
    CHECK((*q)[1] == std::pair<std::string, std::string>{"b", "x y"});
    CHECK((*q)[2] == std::pair<std::string, std::string>{"c", "p q"});
    CHECK((*q)[3] == std::pair<std::string, std::string>{"a", "2"});  // repeats kept, in order
    CHECK((*q)[4] == std::pair<std::string, std::string>{"", "v"});
    CHECK((*q)[5] == std::pair<std::string, std::string>{"k", ""});
    CHECK(decode_query("a=b=c")->at(0).second == "b=c");
    CHECK_FALSE(decode_query("a=%zz").has_value());
    CHECK_FALSE(decode_query("a=%0d%0a").has_value());
    CHECK_FALSE(decode_query("a\x01=1").has_value());
    CHECK_FALSE(decode_query("a=%7F").has_value());
}
