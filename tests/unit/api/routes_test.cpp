// The route table: one label per row, one row per pattern, every listed
// method answered by a handler, HEAD only beside GET, and the Allow header
// spelled from the rows.

#include "api/routes.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <utility>

using namespace zk::api;

TEST_CASE("route table: every row has a unique label, none of them the unrouted one")
{
    std::set<std::string_view> labels;
    for (const Route& r : routes()) {
        CAPTURE(r.label);
        CHECK_FALSE(r.label.empty());
        CHECK(r.label != unrouted_label);
        CHECK(labels.insert(r.label).second);
    }
}

TEST_CASE("route table: one row per pattern, each with a handled method and no method twice")
{
    std::set<std::pair<std::string_view, bool>> patterns;
    for (const Route& r : routes()) {
        CAPTURE(r.label);
        CHECK(patterns.insert({r.segment, r.has_param}).second);
        std::set<std::string_view> methods;
        for (const Verb& v : r.verbs) {
            const bool unused = v.handler == nullptr;
            CHECK(v.method.empty() == unused);  // a slot is used or empty, not half
            if (v.handler) CHECK(methods.insert(v.method).second);
        }
        CHECK_FALSE(methods.empty());
        if (methods.count("HEAD")) CHECK(methods.count("GET"));  // HEAD is a GET without the body
    }
}

TEST_CASE("route table: find() matches methods exactly and allow() lists them in row order")
{
    const Route* query = nullptr;
    for (const Route& r : routes())
        if (r.label == "query") query = &r;
    REQUIRE(query);
    CHECK(query->allow() == "GET, HEAD, DELETE");
    REQUIRE(query->find("DELETE"));
    // Function pointers compared outside CHECK: doctest cannot print them.
    const bool own_delete = query->find("DELETE")->handler != query->find("GET")->handler;
    const bool head_is_get = query->find("HEAD")->handler == query->find("GET")->handler;
    CHECK(own_delete);
    CHECK(head_is_get);
    CHECK(query->find("delete") == nullptr);
    CHECK(query->find("") == nullptr);  // an empty slot is no method
}

TEST_CASE("route table: GET /animals/{animal} creates, so it has no HEAD")
{
    for (const Route& r : routes())
        if (r.label == "animal") CHECK(r.allow() == "GET, POST");
}
