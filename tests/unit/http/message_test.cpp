// Response values and reason phrases.

#include "http/message.h"

#include <doctest/doctest.h>

#include <string>

using zk::http::reason_phrase;
using zk::http::Response;

TEST_CASE("reason phrases for every status the service sends")
{
    CHECK(std::string(reason_phrase(200)) == "OK");
    CHECK(std::string(reason_phrase(202)) == "Accepted");
    CHECK(std::string(reason_phrase(204)) == "No Content");
    CHECK(std::string(reason_phrase(400)) == "Bad Request");
    CHECK(std::string(reason_phrase(404)) == "Not Found");
    CHECK(std::string(reason_phrase(405)) == "Method Not Allowed");
    CHECK(std::string(reason_phrase(409)) == "Conflict");
    CHECK(std::string(reason_phrase(410)) == "Gone");
    CHECK(std::string(reason_phrase(413)) == "Content Too Large");
    CHECK(std::string(reason_phrase(414)) == "URI Too Long");
    CHECK(std::string(reason_phrase(429)) == "Too Many Requests");
    CHECK(std::string(reason_phrase(500)) == "Internal Server Error");
    CHECK(std::string(reason_phrase(503)) == "Service Unavailable");
}

TEST_CASE("statuses the service never sends are 'Unknown'")
{
    for (int status : {0, 100, 201, 301, 418, 502, 999, -1}) CHECK(std::string(reason_phrase(status)) == "Unknown");
}

TEST_CASE("a default response is an empty 200 JSON answer")
{
    const Response r;
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/json");
    CHECK(r.headers.empty());
    CHECK(r.body.empty());
}

TEST_CASE("header() appends in order and chains; find_header answers the first match")
{
    Response r;
    r.header("Location", "/query/1").header("Retry-After", "2").header("Location", "/query/2");
    REQUIRE(r.headers.size() == 3);
    CHECK(r.headers[1].first == "Retry-After");
    REQUIRE(r.find_header("Location") != nullptr);
    CHECK(*r.find_header("Location") == "/query/1");
    CHECK(*r.find_header("Retry-After") == "2");
    CHECK(r.find_header("Allow") == nullptr);
    CHECK(r.find_header("location") == nullptr);  // names are matched exactly as the code writes them
}
