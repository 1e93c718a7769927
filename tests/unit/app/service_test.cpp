// The config → job pool conversions of the service wiring.

#include "app/service.h"

#include <doctest/doctest.h>

#include "../support/repo_path.h"

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

TEST_CASE("shape_from: pool threads and queue capacity; the timer wait keeps its default")
{
    const PoolShape s = app::shape_from(sample());
    CHECK(s.threads == 3);
    CHECK(s.queue_capacity == 17);
    CHECK(s.timer_max_wait_ms == PoolShape{}.timer_max_wait_ms);
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
    CHECK(s.threads == 2);
    CHECK(s.queue_capacity == 4096);
}
