// The one-pass param reader against FCGX_GetParam's meaning: first entry of a
// name wins, absent differs from empty, names match whole (no prefixes, no
// HTTP_* look-alikes), entries without '=' are skipped.

#include "transport/fcgi_params.h"

#include <doctest/doctest.h>

#include <vector>

using zk::transport::request_from_params;

namespace {

zk::http::Request read(std::vector<const char*> params)
{
    params.push_back(nullptr);
    return request_from_params(params.data());
}

}  // namespace

TEST_CASE("the params nginx sends become the request")
{
    const auto r = read({"FCGI_ROLE=RESPONDER", "QUERY_STRING=a=b", "REQUEST_METHOD=POST", "CONTENT_TYPE=",
                         "REQUEST_URI=/animals/elks?a=b", "DOCUMENT_URI=/animals/elks", "HTTP_HOST=localhost",
                         "REQUEST_ID=0f1e2d3c4b5a69788796a5b4c3d2e1f0", "ZK_CLIENT_SCOPE=127.0.0.1",
                         "HTTP_IDEMPOTENCY_KEY=k-1", "HTTP_PROXY="});
    CHECK(r.method == "POST");
    CHECK(r.uri == "/animals/elks?a=b");
    CHECK(r.request_id == "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    CHECK(r.client_scope == "127.0.0.1");
    REQUIRE(r.idempotency_key.has_value());
    CHECK(*r.idempotency_key == "k-1");
}

TEST_CASE("an absent Idempotency-Key differs from an empty one")
{
    CHECK_FALSE(read({"REQUEST_METHOD=GET"}).idempotency_key.has_value());
    const auto empty = read({"HTTP_IDEMPOTENCY_KEY="});
    REQUIRE(empty.idempotency_key.has_value());
    CHECK(empty.idempotency_key->empty());
}

TEST_CASE("the first entry of a name wins, as with FCGX_GetParam")
{
    const auto r = read({"REQUEST_URI=/first", "REQUEST_URI=/second", "HTTP_IDEMPOTENCY_KEY=a",
                         "HTTP_IDEMPOTENCY_KEY=b", "REQUEST_ID=1", "REQUEST_ID=2"});
    CHECK(r.uri == "/first");
    CHECK(*r.idempotency_key == "a");
    CHECK(r.request_id == "1");
}

TEST_CASE("names match whole: prefixes, longer names and client headers do not count")
{
    const auto r = read({"REQUEST_URI_X=/no", "REQUEST=/no", "HTTP_ZK_CLIENT_SCOPE=10.0.0.9", "HTTP_REQUEST_ID=forged",
                         "REQUEST_METHODGET", "request_method=get", "=value"});
    CHECK(r.uri.empty());
    CHECK(r.client_scope.empty());
    CHECK(r.request_id.empty());
    CHECK(r.method.empty());
    CHECK_FALSE(r.idempotency_key.has_value());
}

TEST_CASE("a value may hold '=' and anything after the first one belongs to it")
{
    CHECK(read({"REQUEST_URI=/q?a=b=c"}).uri == "/q?a=b=c");
}

TEST_CASE("no params at all is an empty request")
{
    CHECK(read({}).method.empty());
    CHECK(request_from_params(nullptr).uri.empty());
}
