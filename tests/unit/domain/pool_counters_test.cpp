// PoolCounters: admission under max_jobs, the queued/running gauges of this
// worker's own unfinished surveys as jobs move, the room each frees when it
// finishes, is dropped or stops being ours, and the totals and histograms
// fill() hands to the pool's stats.

#include "domain/pool_counters.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "domain/job_pool.h"

using namespace zk;
using Place = PoolCounters::Place;

namespace {

Place ours(JobState s) { return {true, true, s}; }
Place copy(JobState s) { return {true, false, s}; }
const Place gone{};

PoolStats filled(const PoolCounters& c)
{
    PoolStats s;
    c.fill(s);
    return s;
}

}  // namespace

TEST_CASE("pool counters: admit() takes room up to max_jobs; unadmit() gives it back")
{
    PoolCounters c;
    CHECK(c.admit(2));
    CHECK(c.admit(2));
    CHECK_FALSE(c.admit(2));
    CHECK(c.admitted() == 2);  // a refusal takes nothing
    c.unadmit();
    CHECK(c.admit(2));
    CHECK_FALSE(c.admit(0));
    c.admit_restored();  // restored surveys are held whatever the limit
    CHECK(c.admitted() == 3);
    CHECK_FALSE(c.admit(3));
}

TEST_CASE("pool counters: gauges follow our own unfinished surveys; a finish frees the room")
{
    PoolCounters c;
    REQUIRE(c.admit(10));
    c.moved(gone, ours(JobState::queued));  // being created
    PoolStats s = filled(c);
    CHECK(s.queued == 1);
    CHECK(s.running == 0);
    CHECK(c.admitted() == 1);  // counted once: by admit(), not again by the move

    c.moved(ours(JobState::queued), ours(JobState::running));
    s = filled(c);
    CHECK(s.queued == 0);
    CHECK(s.running == 1);
    CHECK(c.admitted() == 1);

    c.moved(ours(JobState::running), ours(JobState::done));
    s = filled(c);
    CHECK(s.running == 0);
    CHECK(c.admitted() == 0);
    c.moved(ours(JobState::done), gone);  // its expiry: nothing more to free
    CHECK(c.admitted() == 0);
}

TEST_CASE("pool counters: a survey dropped, cancelled or no longer ours leaves the gauges and frees its room")
{
    PoolCounters c;
    for (int i = 0; i < 3; ++i) REQUIRE(c.admit(10));
    c.moved(gone, ours(JobState::queued));
    c.moved(gone, ours(JobState::running));
    c.moved(gone, ours(JobState::running));
    REQUIRE(c.admitted() == 3);

    c.moved(ours(JobState::queued), gone);  // its creation failed
    c.moved(ours(JobState::running), ours(JobState::cancelled));
    c.moved(ours(JobState::running), copy(JobState::running));  // another worker finished it first
    const PoolStats s = filled(c);
    CHECK(s.queued == 0);
    CHECK(s.running == 0);
    CHECK(c.admitted() == 0);
}

TEST_CASE("pool counters: copies of other workers' surveys are never counted")
{
    PoolCounters c;
    c.moved(gone, copy(JobState::running));
    c.moved(copy(JobState::running), copy(JobState::done));
    c.moved(copy(JobState::done), gone);
    const PoolStats s = filled(c);
    CHECK(s.queued == 0);
    CHECK(s.running == 0);
    CHECK(c.admitted() == 0);
    CHECK_FALSE(Place{}.unfinished_ours());
    CHECK(PoolCounters::place(Job{}).held);
}

TEST_CASE("pool counters: place() reads a held job's standing")
{
    Job j;
    j.owned = true;
    j.state = JobState::running;
    const Place p = PoolCounters::place(j);
    CHECK(p.held);
    CHECK(p.owned);
    CHECK(p.state == JobState::running);
    CHECK(p.unfinished_ours());
    j.state = JobState::cancelled;
    CHECK_FALSE(PoolCounters::place(j).unfinished_ours());
}

TEST_CASE("pool counters: totals and histograms as fill() reports them")
{
    PoolCounters c;
    Job done;
    done.created_ms = 1'000;
    done.deadline_ms = 11'000;
    c.created();
    c.created();
    c.completed(done, 11'250);  // 10.25 s after creation, 250 ms late
    c.cancelled();
    c.expired(3);
    c.rescued(2);
    Job early = done;
    c.completed(early, 10'000);  // before its deadline: no negative lag
    const PoolStats s = filled(c);
    CHECK(s.created_total == 2);
    CHECK(s.completed_total == 2);
    CHECK(s.cancelled_total == 1);
    CHECK(s.expired_total == 3);
    CHECK(s.rescued_total == 2);
    CHECK(s.survey_seconds.cumulative.back() == 2);
    CHECK(s.survey_seconds.sum == doctest::Approx(10.25 + 9.0));
    CHECK(s.completion_lag_seconds.cumulative.back() == 2);
    CHECK(s.completion_lag_seconds.sum == doctest::Approx(0.25));
}

TEST_CASE("pool counters: admission holds under contention")
{
    PoolCounters c;
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (c.admit(100)) {
                    ++admitted;
                    if (i % 2) {
                        c.unadmit();
                        --admitted;
                    }
                }
        });
    for (auto& t : threads) t.join();
    CHECK(c.admitted() == static_cast<std::size_t>(admitted.load()));
    CHECK(c.admitted() <= 100);
    CHECK(c.admitted() >= 96);  // full but for the rooms others held for a moment at the end
}
