// Problem answers (RFC 9457): the catalogue, the JSON body, and how user text
// is echoed.

#include "http/problem.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <set>
#include <string>

using namespace zk::http;

namespace {

constexpr ProblemKind all_kinds[] = {
    ProblemKind::bad_path,       ProblemKind::bad_job_id,     ProblemKind::bad_parameter,
    ProblemKind::uri_too_long,   ProblemKind::no_route,       ProblemKind::unknown_animal,
    ProblemKind::unknown_job,    ProblemKind::result_expired, ProblemKind::method_not_allowed,
    ProblemKind::job_cancelled,  ProblemKind::job_finished,   ProblemKind::too_many_jobs,
    ProblemKind::shutting_down,  ProblemKind::store_failed,   ProblemKind::internal,
};

rapidjson::Document parse(const std::string& body)
{
    rapidjson::Document d;
    d.Parse(body.c_str(), body.size());
    REQUIRE_FALSE(d.HasParseError());
    REQUIRE(d.IsObject());
    return d;
}

}  // namespace

TEST_CASE("each kind has its documented status")
{
    CHECK(info(ProblemKind::bad_path).status == 400);
    CHECK(info(ProblemKind::bad_job_id).status == 400);
    CHECK(info(ProblemKind::bad_parameter).status == 400);
    CHECK(info(ProblemKind::uri_too_long).status == 414);
    CHECK(info(ProblemKind::no_route).status == 404);
    CHECK(info(ProblemKind::unknown_animal).status == 404);
    CHECK(info(ProblemKind::unknown_job).status == 404);
    CHECK(info(ProblemKind::result_expired).status == 404);
    CHECK(info(ProblemKind::method_not_allowed).status == 405);
    CHECK(info(ProblemKind::job_cancelled).status == 410);
    CHECK(info(ProblemKind::job_finished).status == 409);
    CHECK(info(ProblemKind::too_many_jobs).status == 503);
    CHECK(info(ProblemKind::shutting_down).status == 503);
    CHECK(info(ProblemKind::store_failed).status == 503);
    CHECK(info(ProblemKind::internal).status == 500);
}

TEST_CASE("causes line up with status classes; slugs and titles are unique")
{
    std::set<std::string> slugs, titles;
    for (ProblemKind k : all_kinds) {
        const ProblemInfo& p = info(k);
        CAPTURE(p.slug);
        slugs.insert(p.slug);
        titles.insert(p.title);
        CHECK(std::string(p.title).size() > 3);
        if (p.status < 500) CHECK((p.cause == Cause::bad_input || p.cause == Cause::job_state));
        else CHECK((p.cause == Cause::limit || p.cause == Cause::unavailable || p.cause == Cause::our_bug));
        CHECK(static_cast<int>(p.kind) == static_cast<int>(k));  // the catalogue is indexed by kind
        for (char c : std::string(p.slug)) CHECK(((c >= 'a' && c <= 'z') || c == '-'));
    }
    CHECK(slugs.size() == std::size(all_kinds));
    CHECK(titles.size() == std::size(all_kinds));
    CHECK(info(ProblemKind::internal).cause == Cause::our_bug);
    CHECK(info(ProblemKind::too_many_jobs).cause == Cause::limit);
    CHECK(info(ProblemKind::job_cancelled).cause == Cause::job_state);
    // A failed store is a dependency gone, not a bug of ours.
    CHECK(info(ProblemKind::store_failed).cause == Cause::unavailable);
}

TEST_CASE("problem() marks its answer with the kind's cause, for the request log")
{
    for (ProblemKind k : all_kinds) {
        const Response r = problem(k, "x");
        REQUIRE(r.cause);
        CHECK(*r.cause == info(k).cause);
    }
    CHECK(std::string(to_string(Cause::unavailable)) == "unavailable");
    CHECK(std::string(to_string(Cause::our_bug)) == "our_bug");
}

TEST_CASE("problem() renders type, title, status and detail as problem+json")
{
    for (ProblemKind k : all_kinds) {
        const ProblemInfo& p = info(k);
        const Response r = problem(k, "what happened");
        CAPTURE(p.slug);
        CHECK(r.status == p.status);
        CHECK(r.content_type == "application/problem+json");
        CHECK(r.headers.empty());
        const auto d = parse(r.body);
        CHECK(d.MemberCount() == 4);
        CHECK(std::string(d["type"].GetString()) == std::string("/problems/") + p.slug);
        CHECK(std::string(d["title"].GetString()) == p.title);
        CHECK(d["status"].GetInt() == p.status);
        CHECK(std::string(d["detail"].GetString()) == "what happened");
    }
    CHECK(parse(problem(ProblemKind::unknown_job, "x").body)["type"].GetString() == std::string("/problems/unknown-job"));
}

TEST_CASE("details with quotes, backslashes and control characters stay valid JSON")
{
    const std::string detail = "a \"quoted\" \\ path\nwith\ttabs and \x01 bytes";
    const auto d = parse(problem(ProblemKind::bad_path, detail).body);
    CHECK(std::string(d["detail"].GetString()) == detail);
    CHECK(std::string(parse(problem(ProblemKind::internal, "").body)["detail"].GetString()).empty());
}

TEST_CASE("quote_user_text wraps, replaces control and non-ASCII bytes, and cuts at 64")
{
    CHECK(quote_user_text("bisons") == "'bisons'");
    CHECK(quote_user_text("") == "''");
    CHECK(quote_user_text("a\r\nb") == "'a??b'");
    CHECK(quote_user_text(std::string("nul\0x", 5)) == "'nul?x'");
    CHECK(quote_user_text("del\x7f") == "'del?'");
    CHECK(quote_user_text("caf\xc3\xa9") == "'caf?" "?'");  // the result is always ASCII
    const std::string s64(64, 'x');
    CHECK(quote_user_text(s64) == "'" + s64 + "'");
    CHECK(quote_user_text(s64 + "y") == "'" + s64 + "...'");
    CHECK(quote_user_text(std::string(10'000, 'z')).size() == 64 + 5);
}
