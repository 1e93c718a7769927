// JSON bodies: strings, arrays and the job object, read back with RapidJSON.

#include "api/json.h"

#include <doctest/doctest.h>

#include "../support/json_doc.h"
#include <rapidjson/document.h>

#include <string>
#include <vector>

using namespace zk;
using test::parse_json;

namespace {

constexpr Millis t0 = 1'700'000'000'000;  // 2023-11-14T22:13:20.000Z

Job job(JobState state)
{
    Job j;
    j.id = *JobId::parse("018bcfe5-6800-7abc-8def-0123456789ab");
    j.animal = "bisons";
    j.state = state;
    j.created_ms = t0;
    j.duration_ms = 10'000;
    j.deadline_ms = t0 + 10'000;
    if (state != JobState::queued) j.started_ms = t0 + 5;
    if (state == JobState::done) {
        j.finished_ms = t0 + 10'000;
        j.result = "Calm bisons sing wildly";
    }
    if (state == JobState::cancelled) j.finished_ms = t0 + 2'500;
    return j;
}

}  // namespace

TEST_CASE("json_string escapes what JSON requires and nothing is lost")
{
    for (const std::string& s : {std::string(""), std::string("..."), std::string("say \"hi\" \\ now"),
                                std::string("line\nbreak\ttab\x01"), std::string("caf\xc3\xa9"),
                                std::string("nul\0inside", 10)}) {
        const std::string text = api::json_string(s);
        CAPTURE(text);
        const auto d = parse_json(text);
        REQUIRE(d.IsString());
        CHECK(std::string(d.GetString(), d.GetStringLength()) == s);
    }
    CHECK(api::json_string("...") == "\"...\"");
    CHECK(api::json_string("a\"b") == "\"a\\\"b\"");
}

TEST_CASE("json_array keeps order")
{
    CHECK(api::json_array({}) == "[]");
    CHECK(api::json_array({"aardvarks", "zebras", "bisons"}) == "[\"aardvarks\",\"zebras\",\"bisons\"]");
    const auto d = parse_json(api::json_array({"a\"b", "c"}));
    REQUIRE(d.IsArray());
    CHECK(std::string(d[0].GetString()) == "a\"b");
}

TEST_CASE("job_json: a queued job")
{
    const auto d = parse_json(api::job_json(job(JobState::queued), t0 + 2'500));
    REQUIRE(d.IsObject());
    CHECK(std::string(d["id"].GetString()) == "018bcfe5-6800-7abc-8def-0123456789ab");
    CHECK(std::string(d["animal"].GetString()) == "bisons");
    CHECK(std::string(d["state"].GetString()) == "queued");
    CHECK(std::string(d["created"].GetString()) == "2023-11-14T22:13:20.000Z");
    CHECK(d["started"].IsNull());
    CHECK(std::string(d["deadline"].GetString()) == "2023-11-14T22:13:30.000Z");
    CHECK(d["finished"].IsNull());
    CHECK(d["duration_seconds"].GetDouble() == doctest::Approx(10.0));
    CHECK(d["progress"].GetDouble() == doctest::Approx(0.25));
    CHECK(d["seconds_left"].GetDouble() == doctest::Approx(7.5));
    CHECK(d["result"].IsNull());
    const auto& links = d["links"];
    CHECK(std::string(links["self"]["href"].GetString()) == "/jobs/018bcfe5-6800-7abc-8def-0123456789ab");
    CHECK(std::string(links["self"]["method"].GetString()) == "GET");
    CHECK(std::string(links["query"]["href"].GetString()) == "/query/018bcfe5-6800-7abc-8def-0123456789ab");
    CHECK(std::string(links["query"]["method"].GetString()) == "GET");
    CHECK(std::string(links["cancel"]["href"].GetString()) == "/query/018bcfe5-6800-7abc-8def-0123456789ab");
    CHECK(std::string(links["cancel"]["method"].GetString()) == "DELETE");
}

TEST_CASE("job_json: a running job shows when it started; progress is rounded to 3 places")
{
    const auto d = parse_json(api::job_json(job(JobState::running), t0 + 3'333));
    CHECK(std::string(d["state"].GetString()) == "running");
    CHECK(std::string(d["started"].GetString()) == "2023-11-14T22:13:20.005Z");
    CHECK(d["progress"].GetDouble() == 0.333);
    CHECK(d["seconds_left"].GetDouble() == doctest::Approx(6.667));
    CHECK(d["links"].HasMember("cancel"));
    // Overdue but not yet completed: capped, never negative.
    const auto late = parse_json(api::job_json(job(JobState::running), t0 + 60'000));
    CHECK(late["progress"].GetDouble() == 1.0);
    CHECK(late["seconds_left"].GetDouble() == 0.0);
}

TEST_CASE("job_json: a done job has its result and no cancel link")
{
    const auto d = parse_json(api::job_json(job(JobState::done), t0 + 99'000));
    CHECK(std::string(d["state"].GetString()) == "done");
    CHECK(std::string(d["result"].GetString()) == "Calm bisons sing wildly");
    CHECK(std::string(d["finished"].GetString()) == "2023-11-14T22:13:30.000Z");
    CHECK(d["progress"].GetDouble() == 1.0);
    CHECK(d["seconds_left"].GetDouble() == 0.0);
    CHECK_FALSE(d["links"].HasMember("cancel"));
    CHECK(d["links"].HasMember("self"));
    CHECK(d["links"].HasMember("query"));
}

TEST_CASE("job_json: a cancelled job keeps the progress it had and shows no result")
{
    const auto d = parse_json(api::job_json(job(JobState::cancelled), t0 + 99'000));
    CHECK(std::string(d["state"].GetString()) == "cancelled");
    CHECK(d["result"].IsNull());
    CHECK(std::string(d["finished"].GetString()) == "2023-11-14T22:13:22.500Z");
    CHECK(d["progress"].GetDouble() == 0.25);
    CHECK(d["seconds_left"].GetDouble() == 0.0);
    CHECK_FALSE(d["links"].HasMember("cancel"));
}

TEST_CASE("job_json: a result that needs escaping stays valid JSON")
{
    Job j = job(JobState::done);
    j.result = "Odd \"bisons\" sing\\n";
    const auto d = parse_json(api::job_json(j, t0));
    CHECK(std::string(d["result"].GetString()) == j.result);
}
