// The API handlers, called directly with a JobPool on a ManualClock (a
// LocalRig: the real CommitPipeline over MemoryDriver, whose gate holds a
// write in flight and whose commits can fail): status codes, headers
// (Location, Retry-After, Allow), content types and bodies.

#include "api/api.h"

#include <doctest/doctest.h>

#include "../support/json_doc.h"
#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../support/pool_fixture.h"
#include "../support/wait.h"

using namespace zk;
using test::parse_json;
using http::Response;
using test::t0;
using test::wait_until;
using api::Api;

namespace {

std::string header(const Response& r, const std::string& name)
{
    const std::string* v = r.find_header(name);
    return v ? *v : "<none>";
}

// A JSON answer: status, content type, and the parsed body.
rapidjson::Document json(const Response& r, int status)
{
    CAPTURE(r.body);
    CHECK(r.status == status);
    CHECK(r.content_type == "application/json");
    return parse_json(r.body);
}

// A problem answer with the given status and type slug; returns the detail.
std::string problem(const Response& r, int status, const std::string& slug)
{
    CAPTURE(r.body);
    CHECK(r.status == status);
    CHECK(r.content_type == "application/problem+json");
    const auto d = parse_json(r.body);
    CHECK(std::string(d["type"].GetString()) == "/problems/" + slug);
    CHECK(d["status"].GetInt() == status);
    CHECK(d.HasMember("title"));
    return d["detail"].GetString();
}

test::RigOptions with_rules(Rules rules)
{
    test::RigOptions o;
    o.rules = std::move(rules);
    return o;
}

struct Fixture {
    explicit Fixture(Rules rules = test::test_rules()) : rig(with_rules(std::move(rules))), api(pool, clock, metrics) {}

    // Starts a survey (its creator begins it before answering).
    std::string started(const char* animal = "bisons")
    {
        const Response r = api.start_survey(animal, Api::SurveyForm::post);
        REQUIRE(r.status == 202);
        const std::string id = parse_json(r.body).GetString();
        REQUIRE(pool.find(*JobId::parse(id)).job->state == JobState::running);
        return id;
    }
    // No pool task queued or running: counters caught up with the table.
    bool idle()
    {
        return wait_until([&] {
            const PoolStats s = pool.stats();
            return s.pool_busy == 0 && s.pool_queue_depth == 0;
        });
    }
    Job job(const std::string& id) { return *pool.find(*JobId::parse(id)).job; }
    void finish(const std::string& id)
    {
        clock.advance(std::max<Millis>(0, job(id).deadline_ms - clock.now_ms()));
        pool.wake();
        REQUIRE(wait_until([&] { return job(id).state == JobState::done; }));
        REQUIRE(idle());
    }
    // Makes the store unavailable: commits fail, and one creation finds out.
    void store_down()
    {
        rig.fail_commits(true);
        REQUIRE(pool.create("bisons").error == CreateError::store_failed);
        REQUIRE_FALSE(rig.store.available());
    }

    test::LocalRig rig;
    ManualClock& clock = rig.clock;
    JobPool& pool = rig.pool;
    api::Metrics metrics;
    api::Api api;
};

}  // namespace

TEST_CASE("GET /animals: the configured animals in config order")
{
    Fixture f;
    const auto d = json(f.api.list_animals(), 200);
    REQUIRE(d.IsArray());
    REQUIRE(d.Size() == 3);
    CHECK(std::string(d[0].GetString()) == "bisons");
    CHECK(std::string(d[1].GetString()) == "elks");
    CHECK(std::string(d[2].GetString()) == "koalas");
}

TEST_CASE("GET /animals follows a reconfiguration")
{
    Fixture f;
    Rules next = test::test_rules();
    next.vocabulary = std::make_shared<const Vocabulary>(std::vector<std::string>{"owls"}, std::vector<std::string>{"grey"},
                                                         std::vector<std::string>{"hoot"}, std::vector<std::string>{"softly"});
    CHECK(f.api.list_animals().body == "[\"bisons\",\"elks\",\"koalas\"]");  // rendered and kept
    f.pool.reconfigure(next);
    CHECK(f.api.list_animals().body == "[\"owls\"]");
    CHECK(f.api.list_animals().body == "[\"owls\"]");
}

TEST_CASE("start_survey: GET answers 200, POST 202, both with the id and Location")
{
    Fixture f;
    for (const auto form : {Api::SurveyForm::get, Api::SurveyForm::post}) {
        const Response r = f.api.start_survey("bisons", form);
        const auto d = json(r, form == Api::SurveyForm::post ? 202 : 200);
        REQUIRE(d.IsString());
        const auto id = JobId::parse(d.GetString());
        REQUIRE(id);
        CHECK(id->created_ms() == t0);
        CHECK(header(r, "Location") == "/query/" + id->str());
        CHECK(r.created_job == id->str());  // for the request's log line
        CHECK(f.pool.find(*id).status == LookupStatus::found);
    }
    CHECK(f.pool.stats().created_total == 2);
}

TEST_CASE("start_survey: an unknown animal is 404 with the name quoted")
{
    Fixture f;
    const std::string detail = problem(f.api.start_survey("Bisons", Api::SurveyForm::post), 404, "unknown-animal");
    CHECK(detail == "there is no animal 'Bisons'; see /animals");
    const std::string odd = problem(f.api.start_survey("x\r\ny" + std::string(100, 'z'), Api::SurveyForm::get), 404, "unknown-animal");
    CHECK(odd.find("'x??y") != std::string::npos);
    CHECK(odd.find('\n') == std::string::npos);
    CHECK(odd.find("...'") != std::string::npos);
    CHECK(f.pool.stats().created_total == 0);
}

TEST_CASE("start_survey: limits answer 503 with Retry-After")
{
    Fixture f(test::test_rules(10'000, 20'000, 1));
    REQUIRE(f.api.start_survey("bisons", Api::SurveyForm::post).status == 202);
    const Response r = f.api.start_survey("bisons", Api::SurveyForm::post);
    problem(r, 503, "too-many-jobs");
    CHECK(header(r, "Retry-After") == std::to_string(api::busy_retry_after_seconds));
    CHECK(std::stoi(header(r, "Retry-After")) >= 1);
    CHECK(r.find_header("Location") == nullptr);

    f.pool.stop();
    const Response s = f.api.start_survey("bisons", Api::SurveyForm::post);
    problem(s, 503, "shutting-down");
    CHECK(header(s, "Retry-After") == "2");
}

TEST_CASE("start_survey and cancel: a store that cannot commit is 503 store-failed")
{
    Fixture f;
    const std::string id = f.started();
    f.rig.fail_commits(true);
    const Response cancelled_first = f.api.cancel(id);  // its commit fails: the store goes down
    problem(cancelled_first, 503, "store-failed");
    const Response created = f.api.start_survey("bisons", Api::SurveyForm::post);
    problem(created, 503, "store-failed");
    CHECK(header(created, "Retry-After") == "2");
    const Response cancelled = f.api.cancel(id);
    problem(cancelled, 503, "store-failed");
    CHECK(header(cancelled, "Retry-After") == "2");
}

TEST_CASE("poll: 202 \"...\" with Retry-After in whole seconds left, at least 1")
{
    Fixture f;
    const std::string id = f.started();
    const Job j = f.job(id);
    Response r = f.api.poll(id);
    CHECK(std::string(json(r, 202).GetString()) == "...");
    CHECK(header(r, "Retry-After") == std::to_string((j.duration_ms + 999) / 1000));

    f.clock.advance(j.duration_ms - 1001);  // 1001 ms left → 2 s
    CHECK(header(f.api.poll(id), "Retry-After") == "2");
    f.clock.advance(1);  // exactly 1000 ms left → 1 s
    CHECK(header(f.api.poll(id), "Retry-After") == "1");
    f.clock.advance(999);  // 1 ms left → still 1 s
    r = f.api.poll(id);
    CHECK(r.status == 202);
    CHECK(header(r, "Retry-After") == "1");
}

TEST_CASE("poll: an overdue job not yet completed still says Retry-After: 1")
{
    Fixture f;
    const std::string id = f.started();
    f.pool.stop();  // no timer thread: the job stays running past its deadline
    f.clock.advance(60'000);
    const Response r = f.api.poll(id);
    CHECK(std::string(json(r, 202).GetString()) == "...");
    CHECK(header(r, "Retry-After") == "1");
}

TEST_CASE("poll: a queued job (its creation not yet stored) is answered like a running one")
{
    Fixture f;
    f.rig.close_gate();
    Response created;
    std::thread creator([&] { created = f.api.start_survey("bisons", Api::SurveyForm::post); });
    REQUIRE(wait_until([&] { return f.rig.at_gate() == 1; }));
    JobFilter queued;
    queued.state = JobState::queued;
    const std::vector<Job> jobs = f.pool.list(queued).value();
    REQUIRE(jobs.size() == 1);
    const Response r = f.api.poll(jobs[0].id.str());
    CHECK(std::string(json(r, 202).GetString()) == "...");
    CHECK(std::stoi(header(r, "Retry-After")) >= 10);
    CHECK(std::string(json(f.api.show_job(jobs[0].id.str()), 200)["state"].GetString()) == "queued");
    f.rig.open_gate();
    creator.join();
    CHECK(created.status == 202);
    CHECK(parse_json(created.body).GetString() == jobs[0].id.str());
}

TEST_CASE("poll: 200 with the sentence once done; 410 once cancelled")
{
    Fixture f;
    const std::string done = f.started("koalas");
    const std::string cancelled = f.started("elks");
    REQUIRE(f.api.cancel(cancelled).status == 204);
    f.finish(done);
    const Response r = f.api.poll(done);
    const auto d = json(r, 200);
    CHECK(std::string(d.GetString()) == survey_sentence(*JobId::parse(done), "koalas", *test::small_vocabulary()));
    CHECK(r.find_header("Retry-After") == nullptr);
    const std::string detail = problem(f.api.poll(cancelled), 410, "job-cancelled");
    CHECK(detail == "job " + cancelled + " was cancelled");
}

TEST_CASE("poll, show_job, cancel: malformed 400, unknown 404, expired 404")
{
    Fixture f(test::test_rules(10'000, 20'000, 100, 5'000));
    const std::string unknown = JobId::generate(t0).str();
    const std::string old = JobId::generate(t0 - 5'001).str();
    using Handler = Response (*)(Fixture&, const std::string&);
    const Handler handlers[] = {
        [](Fixture& x, const std::string& id) { return x.api.poll(id); },
        [](Fixture& x, const std::string& id) { return x.api.show_job(id); },
        [](Fixture& x, const std::string& id) { return x.api.cancel(id); },
    };
    for (Handler h : handlers) {
        CHECK(problem(h(f, "not-a-uuid"), 400, "bad-job-id") == "'not-a-uuid' is not a UUID");
        problem(h(f, "{" + unknown + "}"), 400, "bad-job-id");
        problem(h(f, unknown + "\n"), 400, "bad-job-id");
        CHECK(problem(h(f, unknown), 404, "unknown-job") == "no job " + unknown);
        // Upper case is accepted and answered in the canonical form.
        std::string upper = unknown;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        CHECK(problem(h(f, upper), 404, "unknown-job") == "no job " + unknown);
        CHECK(problem(h(f, old), 404, "result-expired").find("expired") != std::string::npos);
    }
}

TEST_CASE("a finished job expires after the TTL and then answers 404 result-expired")
{
    Fixture f(test::test_rules(10'000, 20'000, 100, 5'000));
    const std::string id = f.started();
    f.finish(id);
    REQUIRE(f.api.poll(id).status == 200);
    f.clock.advance(5'000);
    f.pool.wake();
    REQUIRE(wait_until([&] { return f.pool.find(*JobId::parse(id)).status == LookupStatus::expired; }));
    REQUIRE(f.idle());
    problem(f.api.poll(id), 404, "result-expired");
    problem(f.api.show_job(id), 404, "result-expired");
    problem(f.api.cancel(id), 404, "result-expired");
}

TEST_CASE("cancel: 204 for running and already cancelled, 409 once done")
{
    Fixture f;
    const std::string running = f.started();
    Response r = f.api.cancel(running);
    CHECK(r.status == 204);
    CHECK(r.body.empty());
    CHECK(r.headers.empty());
    CHECK(f.job(running).state == JobState::cancelled);
    CHECK(f.api.cancel(running).status == 204);  // idempotent

    const std::string done = f.started();
    f.finish(done);
    CHECK(problem(f.api.cancel(done), 409, "job-finished") == "job " + done + " is done and cannot be cancelled");
    CHECK(f.job(done).state == JobState::done);
}

TEST_CASE("show_job: the whole job as an object, through its life")
{
    Fixture f;
    const std::string id = f.started("elks");
    f.clock.advance(1000);
    auto d = json(f.api.show_job(id), 200);
    CHECK(std::string(d["id"].GetString()) == id);
    CHECK(std::string(d["animal"].GetString()) == "elks");
    CHECK(std::string(d["state"].GetString()) == "running");
    CHECK(std::string(d["created"].GetString()) == "2023-11-14T22:13:20.000Z");
    CHECK(std::string(d["started"].GetString()) == "2023-11-14T22:13:20.000Z");
    CHECK(d["finished"].IsNull());
    CHECK(d["result"].IsNull());
    const Job j = f.job(id);
    CHECK(d["seconds_left"].GetDouble() == doctest::Approx((j.duration_ms - 1000) / 1000.0));
    CHECK(d["progress"].GetDouble() > 0.0);
    CHECK(d["progress"].GetDouble() < 0.11);
    CHECK(std::string(d["links"]["self"]["href"].GetString()) == "/jobs/" + id);
    CHECK(std::string(d["links"]["query"]["href"].GetString()) == "/query/" + id);
    CHECK(std::string(d["links"]["cancel"]["method"].GetString()) == "DELETE");

    f.finish(id);
    d = json(f.api.show_job(id), 200);
    CHECK(std::string(d["state"].GetString()) == "done");
    CHECK(std::string(d["result"].GetString()) == f.job(id).result);
    CHECK(d["progress"].GetDouble() == 1.0);
    CHECK(d["seconds_left"].GetDouble() == 0.0);
    CHECK_FALSE(d["links"].HasMember("cancel"));
}

TEST_CASE("list_jobs: newest first, paged by cursor, filtered")
{
    Fixture f;
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(f.started(i == 2 ? "koalas" : "bisons"));
        f.clock.advance(1);
    }
    REQUIRE(f.api.cancel(ids[1]).status == 204);

    auto d = json(f.api.list_jobs({}), 200);
    REQUIRE(d["jobs"].Size() == 5);
    CHECK(std::string(d["jobs"][0]["id"].GetString()) == ids[4]);
    CHECK(d["next"].IsNull());

    d = json(f.api.list_jobs({{"limit", "2"}, {"animal", "bisons"}}), 200);
    REQUIRE(d["jobs"].Size() == 2);
    CHECK(std::string(d["jobs"][0]["id"].GetString()) == ids[4]);
    CHECK(std::string(d["jobs"][1]["id"].GetString()) == ids[3]);
    const std::string next = d["next"].GetString();
    CHECK(next == "/jobs?limit=2&animal=bisons&cursor=" + ids[3]);

    d = json(f.api.list_jobs({{"limit", "2"}, {"animal", "bisons"}, {"cursor", ids[3]}}), 200);
    REQUIRE(d["jobs"].Size() == 2);
    CHECK(std::string(d["jobs"][0]["id"].GetString()) == ids[1]);
    CHECK(std::string(d["jobs"][1]["id"].GetString()) == ids[0]);
    CHECK(d["next"].IsNull());  // exactly used up: no empty last page

    d = json(f.api.list_jobs({{"state", "cancelled"}}), 200);
    REQUIRE(d["jobs"].Size() == 1);
    CHECK(std::string(d["jobs"][0]["id"].GetString()) == ids[1]);
    d = json(f.api.list_jobs({{"animal", "koalas"}, {"state", "running"}}), 200);
    REQUIRE(d["jobs"].Size() == 1);
    CHECK(std::string(d["jobs"][0]["animal"].GetString()) == "koalas");
    CHECK(json(f.api.list_jobs({{"state", "done"}}), 200)["jobs"].Size() == 0);
}

TEST_CASE("list_jobs: bad parameters are 400 bad-parameter")
{
    Fixture f;
    const std::vector<http::QueryParams> bad = {
        {{"state", "finished"}}, {{"state", ""}},          {{"limit", "0"}},       {{"limit", "501"}},
        {{"limit", "-1"}},       {{"limit", "5x"}},        {{"limit", ""}},        {{"cursor", "nope"}},
        {{"cursor", ""}},        {{"sort", "asc"}},        {{"limit", "99999999999999999999999"}},
    };
    for (const auto& params : bad) {
        CAPTURE(params[0].first);
        CAPTURE(params[0].second);
        problem(f.api.list_jobs(params), 400, "bad-parameter");
    }
    CHECK(json(f.api.list_jobs({{"limit", "500"}}), 200)["jobs"].IsArray());
    CHECK(json(f.api.list_jobs({{"limit", "1"}}), 200)["jobs"].IsArray());
}

TEST_CASE("list_jobs: an animal filter that is not UTF-8 text is 400, on every backend")
{
    Fixture f;
    test::SharedRig shared;
    api::Metrics metrics;
    const Api on_shared(shared.pool, shared.clock, metrics);
    for (const std::string& bad : {std::string("\xFF"), std::string("bis\xC3"), std::string("\xC0\xAF"),
                                  std::string("\xED\xA0\x80"), std::string("a\0b", 3)}) {
        CAPTURE(bad);
        problem(f.api.list_jobs({{"animal", bad}}), 400, "bad-parameter");
        problem(on_shared.list_jobs({{"animal", bad}}), 400, "bad-parameter");
    }
    CHECK(shared.db->reads().list == 0);  // refused before the store was asked
    CHECK(json(f.api.list_jobs({{"animal", "\xC3\xA9lans"}}), 200)["jobs"].Size() == 0);  // well-formed: no match
}

TEST_CASE("list_jobs, poll, show_job: a store that does not answer is 503 store-failed with Retry-After")
{
    test::SharedRig shared;
    api::Metrics metrics;
    const Api on_shared(shared.pool, shared.clock, metrics);
    const Job j = *shared.pool.create("bisons").job;
    shared.db->drop_feed();  // the copy is not vouched for: lookups read the store
    shared.db->fail_reads(true);
    for (const Response& r : {on_shared.list_jobs({}), on_shared.poll(j.id.str()), on_shared.show_job(j.id.str())}) {
        problem(r, 503, "store-failed");
        CHECK(std::stoi(header(r, "Retry-After")) >= 1);
    }
}

TEST_CASE("poll and show_job answer a lookup already made, as it says")
{
    Fixture f;
    const std::string id = f.started("elks");
    const JobId job = *JobId::parse(id);
    const Lookup found = f.pool.find(job);
    CHECK(f.api.poll(job, found).body == f.api.poll(id).body);
    CHECK(f.api.show_job(job, found).body == f.api.show_job(id).body);
    // The answer is the lookup's, not the pool's now.
    REQUIRE(f.api.cancel(id).status == 204);
    CHECK(f.api.poll(job, found).status == 202);
    CHECK(f.api.poll(id).status == 410);
    problem(f.api.poll(job, Lookup{LookupStatus::unknown, std::nullopt}), 404, "unknown-job");
    problem(f.api.show_job(job, Lookup{LookupStatus::expired, std::nullopt}), 404, "result-expired");
    const Response unavailable = f.api.poll(job, Lookup{LookupStatus::unavailable, std::nullopt});
    problem(unavailable, 503, "store-failed");
    CHECK(header(unavailable, "Retry-After") == "2");
}

TEST_CASE("health: 200 ok with job counts; 503 when the store has failed")
{
    Fixture f;
    f.started();
    f.clock.advance(2'500);
    auto d = json(f.api.health(), 200);
    CHECK(std::string(d["status"].GetString()) == "ok");
    CHECK(std::string(d["store"].GetString()) == "ok");
    CHECK(d["jobs"]["running"].GetUint64() == 1);
    CHECK(d["jobs"]["queued"].GetUint64() == 0);
    CHECK(d["jobs"]["held"].GetUint64() == 1);
    CHECK(d["uptime_seconds"].GetDouble() == doctest::Approx(2.5));
    CHECK(d["version"].IsString());
    CHECK(std::string(d["backend"].GetString()) == "memory");
    CHECK(std::string(d["worker"].GetString()) == "test-worker");
    f.store_down();
    const Response r = f.api.health();
    d = json(r, 503);
    CHECK(std::string(d["status"].GetString()) == "unavailable");
    CHECK(std::string(d["store"].GetString()) == "failed");
}

TEST_CASE("metrics: Prometheus text with the job counters")
{
    Fixture f;
    f.started();
    const Response r = f.api.metrics();
    CHECK(r.status == 200);
    CHECK(r.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(r.body.find("# TYPE zookeeper_jobs_created_total counter\n") != std::string::npos);
    CHECK(r.body.find("\nzookeeper_jobs_created_total 1\n") != std::string::npos);
    CHECK(r.body.find("\nzookeeper_jobs{state=\"running\"} 1\n") != std::string::npos);
}

// PoolStats' queued and running count this worker's own unfinished surveys,
// while held counts every job in memory, copies of other workers' surveys
// too (job_pool.h). metrics.cpp renders zookeeper_jobs{state="finished"} as
// held - (queued + running), so on a shared store a copy of a survey still
// running on another worker is reported as finished.
TEST_CASE("metrics: a copy of a survey running on another worker is not counted as finished")
{
    test::SharedRig here;
    test::SharedRig there({}, here.db);
    const Created made = there.pool.create("koalas");
    REQUIRE(made.job);
    REQUIRE(here.pool.find(made.job->id).job->state == JobState::running);  // now held here, as a copy
    api::Metrics metrics;
    const Api on_here(here.pool, here.clock, metrics);
    const std::string text = on_here.metrics().body;
    CAPTURE(text);
    CHECK(text.find("\nzookeeper_jobs{state=\"finished\"} 0\n") != std::string::npos);
}

// --- Idempotency-Key --------------------------------------------------------

namespace {

http::Request keyed(std::string key, std::string scope = "127.0.0.1")
{
    http::Request r;
    r.method = "POST";
    r.idempotency_key = std::move(key);
    r.client_scope = std::move(scope);
    return r;
}

}  // namespace

TEST_CASE("POST /animals/{animal} with Idempotency-Key: a repeat answers the same job, Location and status, marked")
{
    Fixture f;
    const Response first = f.api.start_survey("bisons", Api::SurveyForm::post, keyed("k-1"));
    REQUIRE(first.status == 202);
    CHECK(header(first, "Idempotent-Replayed") == "<none>");
    CHECK_FALSE(first.created_job.empty());
    const Response again = f.api.start_survey("bisons", Api::SurveyForm::post, keyed("\"k-1\""));  // sf-string form
    CHECK(again.status == 202);
    CHECK(again.body == first.body);
    CHECK(header(again, "Location") == header(first, "Location"));
    CHECK(header(again, "Idempotent-Replayed") == "true");
    CHECK(again.created_job.empty());  // the log line names the job where it was created
    const Response by_get = f.api.start_survey("bisons", Api::SurveyForm::get, keyed("k-1"));  // GET honours it too
    CHECK(by_get.status == 200);
    CHECK(by_get.body == first.body);
    const Response elsewhere = f.api.start_survey("bisons", Api::SurveyForm::post, keyed("k-1", "10.9.9.9"));
    CHECK(elsewhere.body != first.body);
}

TEST_CASE("POST /animals/{animal} with Idempotency-Key: another animal is 422, a bad key 400 naming the header")
{
    Fixture f;
    REQUIRE(f.api.start_survey("bisons", Api::SurveyForm::post, keyed("k")).status == 202);
    const std::string reused = problem(f.api.start_survey("elks", Api::SurveyForm::post, keyed("k")), 422,
                                       "idempotency-key-reused");
    CHECK(reused.find("'elks'") != std::string::npos);
    const std::string bad = problem(f.api.start_survey("bisons", Api::SurveyForm::post, keyed("")), 400,
                                    "bad-idempotency-key");
    CHECK(bad.find("Idempotency-Key") == 0);
    problem(f.api.start_survey("bisons", Api::SurveyForm::post, keyed(std::string(256, 'k'))), 400,
            "bad-idempotency-key");
    CHECK(f.pool.stats().created_total == 1);
}

TEST_CASE("POST /animals/{animal} with Idempotency-Key: 409 with Retry-After while the first is being stored")
{
    Fixture f;
    f.rig.close_gate();
    Response first;
    std::thread creator([&] { first = f.api.start_survey("bisons", Api::SurveyForm::post, keyed("slow")); });
    REQUIRE(wait_until([&] { return f.rig.at_gate() == 1; }));
    const Response busy = f.api.start_survey("bisons", Api::SurveyForm::post, keyed("slow"));
    problem(busy, 409, "idempotency-key-in-flight");
    CHECK(header(busy, "Retry-After") == "1");
    f.rig.open_gate();
    creator.join();
    CHECK(first.status == 202);
}

TEST_CASE("POST /animals/{animal} with Idempotency-Key: a repeat is replayed while the store is down")
{
    Fixture f;
    const Response first = f.api.start_survey("bisons", Api::SurveyForm::post, keyed("k"));
    REQUIRE(first.status == 202);
    f.store_down();
    const Response again = f.api.start_survey("bisons", Api::SurveyForm::post, keyed("k"));
    CHECK(again.status == 202);
    CHECK(again.body == first.body);
    CHECK(header(again, "Idempotent-Replayed") == "true");
    problem(f.api.start_survey("bisons", Api::SurveyForm::post, keyed("other")), 503, "store-failed");
}
