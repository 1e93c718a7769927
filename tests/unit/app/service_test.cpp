// The config → job pool conversions of the service wiring.
//
// Not here: the reload itself (app/service.cpp's reload(), which applies
// max_wait_seconds and max_waiters and logs reload_needs_restart for each
// other changed setting). It lives in service.cpp's anonymous namespace and
// is reached only through run_service(), which wants a listening FastCGI
// socket on fd 0 and SIGHUP. What it decides from is tested below (which
// changed settings a reload applies and which it names); what it calls, where
// it lives (JobPool::set_max_waiters and reconfigure in the pool suite,
// WaitingPolls::set_max_wait_seconds in api/waiting_test.cpp).

#include "app/service.h"

#include <doctest/doctest.h>

#include <sys/resource.h>

#include "../support/repo_path.h"
#include "config/settings.h"
#include "storage/job_store.h"

using namespace zk;

namespace {

Config sample()
{
    Config c;
    c.animals = {"owls", "emus"};
    c.adjectives = {"grey"};
    c.verbs = {"hoot"};
    c.adverbs = {"softly", "loudly"};
    c.workload = {0.2, 0.5};
    c.service.pool_threads = 3;
    c.service.queue_capacity = 17;
    c.service.max_jobs = 99;
    c.service.result_ttl = 1.5;
    c.service.max_waiters = 321;
    c.service.worker_name = "w-7";
    c.store.statement_timeout_ms = 2000;
    c.store.reconnect_interval_ms = 750;
    return c;
}

}  // namespace

TEST_CASE("rules_from: the vocabulary, workload in ms, limits and TTL")
{
    const Rules r = app::rules_from(sample());
    REQUIRE(r.vocabulary);
    CHECK(r.vocabulary->animals() == std::vector<std::string>{"owls", "emus"});
    CHECK(r.vocabulary->adjectives() == std::vector<std::string>{"grey"});
    CHECK(r.vocabulary->verbs() == std::vector<std::string>{"hoot"});
    CHECK(r.vocabulary->adverbs() == std::vector<std::string>{"softly", "loudly"});
    CHECK(r.vocabulary->has_animal("emus"));
    CHECK(r.workload.min_ms == 200);
    CHECK(r.workload.max_ms == 500);
    CHECK(r.max_jobs == 99);
    CHECK(r.result_ttl_ms == 1500);
}

TEST_CASE("rules_from rounds seconds to the nearest millisecond")
{
    Config c = sample();
    c.workload = {0.0014, 0.0016};
    c.service.result_ttl = 0.001;
    const Rules r = app::rules_from(c);
    CHECK(r.workload.min_ms == 1);
    CHECK(r.workload.max_ms == 2);
    CHECK(r.result_ttl_ms == 1);
    c.workload = {86'400, 86'400};  // the largest the parser allows
    CHECK(app::rules_from(c).workload.max_ms == 86'400'000);
}

TEST_CASE("shape_from: timer threads and queue, the worker, waiters, store waits and retries")
{
    const PoolShape s = app::shape_from(sample());
    CHECK(s.timers.threads == 3);
    CHECK(s.timers.queue_capacity == 17);
    CHECK(s.timers.max_wait_ms == TimerShape{}.max_wait_ms);  // not configurable
    CHECK(s.worker == "w-7");
    CHECK(s.max_waiters == 321);
    // A store wait lasts the statement timeout plus the round trip's margin.
    CHECK(s.store_wait_ms == 2000 + storage::deadline_margin.count());
    CHECK(s.retry_ms == 750);  // a refused completion is tried again as often as the store reconnects
}

TEST_CASE("shape_from: max_waiters 0 takes half the descriptor limit")
{
    Config c = sample();
    c.service.max_waiters = 0;
    rlimit lim{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &lim) == 0);
    const std::size_t expected = lim.rlim_cur == RLIM_INFINITY ? PoolShape{}.max_waiters
                                                               : static_cast<std::size_t>(lim.rlim_cur) / 2;
    CHECK(app::shape_from(c).max_waiters == expected);
    CHECK(expected > 0);
}

TEST_CASE("the shipped config converts to the documented defaults")
{
    auto loaded = load_config(test::repo_path("zookeeper.conf"));
    REQUIRE(std::holds_alternative<Config>(loaded));
    const Config& c = std::get<Config>(loaded);
    const Rules r = app::rules_from(c);
    CHECK(r.workload.min_ms == 10'000);
    CHECK(r.workload.max_ms == 20'000);
    CHECK(r.max_jobs == 100'000);
    CHECK(r.result_ttl_ms == 3'600'000);
    CHECK(r.vocabulary->animals().size() == 14);
    const PoolShape s = app::shape_from(c);
    CHECK(s.timers.threads == 2);
    CHECK(s.timers.queue_capacity == 4096);
    CHECK(s.store_wait_ms == static_cast<Millis>(c.store.statement_timeout_ms) + storage::deadline_margin.count());
}

TEST_CASE("a reload applies the limits and names every other changed setting as needing a restart")
{
    Config before = default_config();
    const Config words = sample();
    before.animals = words.animals;
    before.adjectives = words.adjectives;
    before.verbs = words.verbs;
    before.adverbs = words.adverbs;
    Config after = before;
    after.service.max_wait_seconds = 10;
    after.service.max_waiters = 5;
    after.service.max_jobs = 7;
    after.service.queue_capacity = 9;
    after.service.worker_name = "renamed";
    after.store.url = "host=elsewhere";
    after.store.statement_timeout_ms = 900;
    std::vector<std::string> applied, restart;
    for (const Setting* s : changed_settings(before, after))
        (s->reloads ? applied : restart).push_back(std::string(s->section) + "." + std::string(s->key));
    CHECK(applied == std::vector<std::string>{"service.max_jobs", "service.max_wait_seconds", "service.max_waiters"});
    CHECK(restart == std::vector<std::string>{"service.queue_capacity", "service.worker_name", "store.url",
                                              "store.statement_timeout_ms"});
    CHECK(changed_settings(before, before).empty());
    // What the reload hands the pool and the waits.
    CHECK(app::shape_from(after).max_waiters == 5);
    CHECK(app::rules_from(after).max_jobs == 7);
}
