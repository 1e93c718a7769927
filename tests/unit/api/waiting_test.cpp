// Waiting polls at the api layer: the `wait` parameter, and the Park a
// still-running survey's answer carries (its subscription and late answer).

#include "api/waiting.h"

#include <doctest/doctest.h>

#include <atomic>

#include "../support/json_doc.h"
#include "../support/pool_fixture.h"
#include "../support/wait.h"
#include "http/park.h"

using namespace zk;
using http::Response;
using test::t0;
using test::wait_until;

namespace {

template <class Rig = test::LocalRig>
struct Fixture {
    Fixture() : api(pool, clock, metrics) {}
    std::string started() { return test::parse_json(api.start_survey("bisons", api::Api::SurveyForm::post).body).GetString(); }
    Job job(const std::string& id) { return *pool.find(*JobId::parse(id)).job; }

    Rig rig;
    ManualClock& clock = rig.clock;
    JobPool& pool = rig.pool;
    api::Metrics metrics;
    api::Api api;
    api::WaitingPolls waits{api, pool, 30};
};

}  // namespace

TEST_CASE("wait: without the parameter the answer is the plain poll's, never parked")
{
    Fixture<> f;
    const std::string id = f.started();
    const Response r = f.waits.poll(id, {{"other", "1"}});
    CHECK(r.status == 202);
    CHECK_FALSE(r.park);
    CHECK(r.body == f.api.poll(id).body);
}

TEST_CASE("wait: a bad value is a 400 naming wait and the allowed range")
{
    Fixture<> f;
    const std::string id = f.started();
    for (const char* bad : {"", "0", "31", "-1", "1.5", "abc", "99999999999"}) {
        CAPTURE(bad);
        const Response r = f.waits.poll(id, {{"wait", bad}});
        CHECK(r.status == 400);
        CHECK(r.content_type == "application/problem+json");
        CHECK(r.body.find("wait must be a whole number of seconds from 1 to 30") != std::string::npos);
    }
    CHECK(f.waits.show(id, {{"wait", "5"}, {"wait", "6"}}).status == 400);
}

TEST_CASE("wait: a running survey's answer is today's 202 holding a Park of that length")
{
    Fixture<> f;
    const std::string id = f.started();
    const Response r = f.waits.poll(id, {{"wait", "7"}});
    CHECK(r.status == 202);
    CHECK(r.find_header("Retry-After"));
    REQUIRE(r.park);
    CHECK(r.park->wait == std::chrono::seconds(7));
    CHECK(r.park->answer().status == 202);

    std::atomic<int> woken{0};
    const auto token = r.park->subscribe([&] { ++woken; });
    REQUIRE(token);
    f.clock.advance(f.job(id).deadline_ms - f.clock.now_ms());
    f.pool.wake();
    REQUIRE(wait_until([&] { return woken == 1; }));
    const Response late = r.park->answer();
    CHECK(late.status == 200);
    CHECK(late.body == f.api.poll(id).body);
}

TEST_CASE("wait: done, cancelled, unknown and malformed ids answer at once")
{
    Fixture<> f;
    const std::string id = f.started();
    REQUIRE(f.pool.cancel(*JobId::parse(id)) == CancelOutcome::cancelled);
    const Response cancelled = f.waits.poll(id, {{"wait", "5"}});
    CHECK(cancelled.status == 410);
    CHECK_FALSE(cancelled.park);
    CHECK_FALSE(f.waits.show(id, {{"wait", "5"}}).park);
    CHECK(f.waits.poll("nope", {{"wait", "5"}}).status == 400);
    const Response unknown = f.waits.poll(JobId::generate(t0).str(), {{"wait", "5"}});
    CHECK(unknown.status == 404);
    CHECK_FALSE(unknown.park);
}

TEST_CASE("wait: GET /jobs/{id}?wait= parks and answers the job view; unsubscribing stops the wake-up")
{
    Fixture<> f;
    const std::string id = f.started();
    const Response r = f.waits.show(id, {{"wait", "30"}});
    CHECK(r.status == 200);
    REQUIRE(r.park);
    int woken = 0;
    const auto token = r.park->subscribe([&] { ++woken; });
    REQUIRE(token);
    r.park->unsubscribe(*token);
    REQUIRE(f.pool.cancel(*JobId::parse(id)) == CancelOutcome::cancelled);
    CHECK(woken == 0);
    CHECK(test::parse_json(r.park->answer().body)["state"].GetString() == std::string("cancelled"));
}

// waiting.cpp decides from one lookup: a survey that finishes after it (and
// before the transport subscribes) is seen by the subscription, which wakes
// at once, so the late answer is the sentence, not a stale 202.
TEST_CASE("wait: a survey finishing between the lookup and the subscription is answered at once")
{
    Fixture<> f;
    const std::string id = f.started();
    const Response r = f.waits.poll(id, {{"wait", "30"}});
    REQUIRE(r.status == 202);
    REQUIRE(r.park);
    f.clock.advance(f.job(id).deadline_ms - f.clock.now_ms());
    f.pool.wake();
    REQUIRE(wait_until([&] { return f.job(id).state == JobState::done; }));
    int woken = 0;
    const auto token = r.park->subscribe([&] { ++woken; });
    CHECK(woken == 1);  // on the subscribing thread, before subscribe returned
    const Response late = r.park->answer();
    CHECK(late.status == 200);
    CHECK(late.body == f.api.poll(id).body);
    if (token) CHECK_FALSE(f.pool.unwatch(*token));  // nothing left to take back
    CHECK(f.pool.watching() == 0);
}

TEST_CASE("wait: max_wait_seconds follows a reload for waits asked from then on")
{
    Fixture<> f;
    const std::string id = f.started();
    f.waits.set_max_wait_seconds(5);
    CHECK(f.waits.poll(id, {{"wait", "6"}}).status == 400);
    const Response r = f.waits.poll(id, {{"wait", "5"}});
    REQUIRE(r.park);
    CHECK(r.park->wait == std::chrono::seconds(5));
}

TEST_CASE("wait: on a shared store a wait on another worker's survey wakes at its completion there")
{
    Fixture<test::SharedRig> f;
    test::SharedRig other({}, f.rig.db);
    const Created made = other.pool.create("koalas");
    REQUIRE(made.job);
    const std::string id = made.job->id.str();
    const Response r = f.waits.poll(id, {{"wait", "30"}});
    CHECK(r.status == 202);
    REQUIRE(r.park);
    std::atomic<int> woken{0};
    REQUIRE(r.park->subscribe([&] { ++woken; }));
    CHECK(woken == 0);
    other.clock.advance(made.job->deadline_ms - other.clock.now_ms());  // the other worker completes it
    other.pool.wake();
    REQUIRE(wait_until([&] { return other.row(made.job->id)->state == storage::RecordState::done; }));
    f.clock.advance(made.job->deadline_ms + 5 - f.clock.now_ms());  // this one looks at the deadline
    f.pool.wake();
    REQUIRE(wait_until([&] { return woken == 1; }));
    CHECK(r.park->answer().status == 200);
}
