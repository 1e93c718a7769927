// JobPool with a shared store (several workers on one database): waiting
// polls on a job this worker does not run wake at its completion (read at
// the deadline, retried, then every period), a cancel through another worker
// ends them at the next periodic check, a job that is gone answers them, a
// database that does not answer keeps them, the last watcher leaving drops
// the remote watch, and an own completion wakes its waiters only once its
// write is durable. The real CommitPipeline runs over SharedMemoryDriver;
// time is a ManualClock (RemoteTiming in manual milliseconds).

#include "domain/job_pool.h"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "../support/pool_fixture.h"
#include "../support/shared_memory_driver.h"
#include "../support/wait.h"
#include "storage/commit_pipeline.h"

using namespace zk;
using storage::RecordState;
using test::t0;
using test::wait_until;

namespace {

constexpr Millis deadline_in = 1000;  // of the surveys "another worker" runs
constexpr Millis period = 5000;

PoolShape shared_shape()
{
    PoolShape s = test::test_shape();
    s.remote.settle_ms = 5;
    s.remote.retry_ms = 10;
    s.remote.retries = 2;
    s.remote.period_ms = period;
    return s;
}

struct Cluster {
    ManualClock clock{t0};
    test::SharedMemoryDriver* db;  // owned by store
    storage::CommitPipeline store;
    JobPool pool;

    explicit Cluster(std::chrono::milliseconds commit_delay = {})
        : db(new test::SharedMemoryDriver),
          store((db->set_commit_delay(commit_delay), std::unique_ptr<storage::Driver>(db)),
                std::chrono::milliseconds(0)),
          pool(clock, &store, shared_shape(), test::test_rules(20'000, 20'000))
    {
        pool.start();
    }
    ~Cluster()
    {
        pool.stop();
        store.close();
    }

    // A survey another worker created and runs.
    storage::JobRecord others(RecordState state = RecordState::running)
    {
        storage::JobRecord r;
        r.id = JobId::generate(clock.now_ms()).bytes();
        r.animal = "koalas";
        r.state = state;
        r.created_ms = r.started_ms = clock.now_ms();
        r.deadline_ms = clock.now_ms() + deadline_in;
        r.duration_ms = static_cast<std::int32_t>(deadline_in);
        db->write_as_other(r);
        return r;
    }
    void finish_as_other(storage::JobRecord r, RecordState state)
    {
        r.state = state;
        r.finished_ms = clock.now_ms();
        if (state == RecordState::done) r.result = "Calm koalas sleep carefully";
        db->write_as_other(r);
    }
    void move_to(Millis at)
    {
        clock.advance(at - clock.now_ms());
        pool.wake();
    }
    // Lets the timer thread and the pool run with the clock where it is.
    static void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }
};

}  // namespace

TEST_SUITE("job_pool_shared") {

TEST_CASE("job pool shared wait: a survey another worker runs wakes its waiter at its completion, not before")
{
    Cluster c;
    const auto r = c.others();
    const JobId id(r.id);
    std::atomic<int> fired{0};
    REQUIRE(c.pool.watch(id, [&] { ++fired; }, r.deadline_ms));
    CHECK(c.pool.remote_watching() == 1);
    c.move_to(r.deadline_ms - 1);
    Cluster::settle();
    CHECK(fired == 0);
    c.finish_as_other(r, RecordState::done);
    const int reads = c.db->fetch_many_calls();
    c.move_to(r.deadline_ms + 5);
    REQUIRE(wait_until([&] { return fired == 1; }));
    CHECK(c.db->fetch_many_calls() == reads + 1);  // one round trip
    CHECK(c.pool.remote_watching() == 0);
    const auto found = c.pool.find(id);  // remembered: answered from memory
    REQUIRE(found.job);
    CHECK(found.job->state == JobState::done);
}

TEST_CASE("job pool shared wait: an owner a little late is found by the retries after the deadline")
{
    Cluster c;
    const auto r = c.others();
    std::atomic<int> fired{0};
    REQUIRE(c.pool.watch(JobId(r.id), [&] { ++fired; }, r.deadline_ms));
    c.move_to(r.deadline_ms + 5);
    REQUIRE(wait_until([&] { return c.db->fetch_many_calls() == 1; }));
    CHECK(fired == 0);
    c.finish_as_other(r, RecordState::done);
    c.move_to(r.deadline_ms + 15);  // the first retry
    REQUIRE(wait_until([&] { return fired == 1; }));
}

TEST_CASE("job pool shared wait: a cancel through another worker ends the wait at the next periodic check")
{
    Cluster c;
    const auto created = c.pool.create("koalas");  // our own survey this time
    REQUIRE(created.job);
    std::atomic<int> fired{0};
    REQUIRE(c.pool.watch(created.job->id, [&] { ++fired; }, created.job->deadline_ms));
    storage::JobRecord r;
    r.id = created.job->id.bytes();
    r.animal = "koalas";
    r.created_ms = created.job->created_ms;
    r.deadline_ms = created.job->deadline_ms;
    c.finish_as_other(r, RecordState::cancelled);
    c.move_to(t0 + period - 1);
    Cluster::settle();
    CHECK(fired == 0);
    c.move_to(t0 + period);
    REQUIRE(wait_until([&] { return fired == 1; }));
    CHECK(c.pool.find(created.job->id).job->state == JobState::cancelled);
    CHECK(wait_until([&] { return c.pool.stats().running == 0; }));  // it left our counts
}

TEST_CASE("job pool shared wait: a cancel through this worker wakes the waiter at once")
{
    Cluster c;
    const auto r = c.others();
    std::atomic<int> fired{0};
    REQUIRE(c.pool.watch(JobId(r.id), [&] { ++fired; }, r.deadline_ms));
    CHECK(c.pool.cancel(JobId(r.id)) == CancelOutcome::cancelled);
    CHECK(fired == 1);
    CHECK(c.pool.remote_watching() == 0);
}

TEST_CASE("job pool shared wait: a watch on a job held cancelled fires at once; one refused leaves no remote watch")
{
    Cluster c;
    const auto r = c.others();
    REQUIRE(c.pool.cancel(JobId(r.id)) == CancelOutcome::cancelled);
    int fired = 0;
    REQUIRE(c.pool.watch(JobId(r.id), [&] { ++fired; }, r.deadline_ms));
    CHECK(fired == 1);
    CHECK(c.pool.remote_watching() == 0);
    PoolShape tiny = shared_shape();
    tiny.max_waiters = 1;
    JobPool small(c.clock, &c.store, tiny, test::test_rules(20'000, 20'000));
    const auto other = c.others();
    REQUIRE(small.watch(JobId(other.id), [] {}, other.deadline_ms));
    CHECK_FALSE(small.watch(JobId(other.id), [] {}, other.deadline_ms));  // full
    CHECK(small.remote_watching() == 1);
    CHECK(small.watching() == 1);
}

TEST_CASE("job pool shared wait: a job that is gone from the database answers its waiters")
{
    Cluster c;
    const auto r = c.others();
    std::atomic<int> fired{0};
    REQUIRE(c.pool.watch(JobId(r.id), [&] { ++fired; }, r.deadline_ms));
    c.db->forget(r.id);
    c.move_to(r.deadline_ms + 5);
    REQUIRE(wait_until([&] { return fired == 1; }));
}

TEST_CASE("job pool shared wait: a database that does not answer keeps the watch; the next period finds it")
{
    Cluster c;
    const auto r = c.others();
    std::atomic<int> fired{0};
    REQUIRE(c.pool.watch(JobId(r.id), [&] { ++fired; }, r.deadline_ms));
    c.db->set_down(true);
    c.finish_as_other(r, RecordState::done);
    c.move_to(r.deadline_ms + 5);
    REQUIRE(wait_until([&] { return c.db->fetch_many_calls() >= 1; }));
    Cluster::settle();
    CHECK(fired == 0);
    CHECK(c.pool.remote_watching() == 1);
    c.db->set_down(false);
    c.move_to(t0 + period);
    REQUIRE(wait_until([&] { return fired == 1; }));
}

TEST_CASE("job pool shared wait: the last watcher leaving drops the remote watch, an earlier one does not")
{
    Cluster c;
    const auto r = c.others();
    const auto a = c.pool.watch(JobId(r.id), [] {}, r.deadline_ms);
    const auto b = c.pool.watch(JobId(r.id), [] {}, r.deadline_ms);
    REQUIRE((a && b));
    CHECK(c.pool.remote_watching() == 1);
    CHECK(c.pool.unwatch(*a));
    CHECK(c.pool.remote_watching() == 1);
    CHECK(c.pool.unwatch(*b));
    CHECK_FALSE(c.pool.unwatch(*b));
    CHECK(c.pool.remote_watching() == 0);
    CHECK(c.pool.watching() == 0);
}

TEST_CASE("job pool shared wait: an own completion wakes its waiter only once the write is durable")
{
    Cluster c(std::chrono::milliseconds(30));  // slow commits: a waiter woken early would see running
    const auto created = c.pool.create("koalas");
    REQUIRE(created.job);
    std::atomic<int> seen{-1};
    REQUIRE(c.pool.watch(created.job->id, [&] {
        const auto row = c.db->row(created.job->id.bytes());
        seen = row ? static_cast<int>(row->state) : -2;
    }, created.job->deadline_ms));
    c.move_to(created.job->deadline_ms);
    REQUIRE(wait_until([&] { return seen != -1; }));
    CHECK(seen == static_cast<int>(RecordState::done));
    CHECK(c.pool.find(created.job->id).job->state == JobState::done);
    CHECK(c.pool.remote_watching() == 0);
}

}  // TEST_SUITE
