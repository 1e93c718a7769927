// Sweeper: each pass rescues the surveys at least rescue_after late (turned
// into their done records by the `finish` hook, written only over an
// unfinished row), purges those finished more than a TTL ago, batch by batch
// until none is left, reports what it did, and keeps the cluster clock's
// offset from the database's. Against the shared in-memory database.

#include "domain/sweeper.h"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../support/shared_memory_driver.h"
#include "domain/job_id.h"
#include "../support/wait.h"

using namespace zk;
using storage::JobRecord;
using storage::RecordState;
using storage::WriteKind;
using test::wait_until;
using namespace std::chrono_literals;

namespace {

constexpr Millis t0 = 1'700'000'000'000;
constexpr Millis ttl = 60'000;

struct Fixture {
    explicit Fixture(std::size_t batch = 100, Millis interval = 3'600'000)
        : sweeper(driver, cluster, SweepShape{interval, 2'000, batch}, hooks())
    {
    }

    Sweeper::Hooks hooks()
    {
        return {[this](JobRecord& r) {
                    ++finishes;
                    if (on_finish) on_finish(r);
                    r.state = RecordState::done;
                    r.finished_ms = cluster.now_ms();
                    r.result = "Calm koalas sing wildly";
                },
                [] { return ttl; },
                [this](std::size_t rescued, std::size_t purged) {
                    std::lock_guard lock(mutex);
                    swept.emplace_back(rescued, purged);
                }};
    }
    JobRecord row(std::uint64_t n, RecordState state, Millis deadline, Millis finished = 0)
    {
        JobRecord r;
        r.id = JobId::generate(t0 - 100'000 + static_cast<Millis>(n)).bytes();
        r.animal = "koalas";
        r.state = state;
        r.created_ms = r.started_ms = deadline - 1'000;
        r.deadline_ms = deadline;
        r.finished_ms = finished;
        REQUIRE(db->write_as_other(WriteKind::create, r));
        return r;
    }
    std::vector<std::pair<std::size_t, std::size_t>> reports()
    {
        std::lock_guard lock(mutex);
        return swept;
    }

    ManualClock local{t0};
    ClusterClock cluster{local};
    std::shared_ptr<test::SharedDatabase> db = std::make_shared<test::SharedDatabase>();
    test::SharedMemoryDriver driver{db};
    std::atomic<int> finishes{0};
    std::function<void(JobRecord&)> on_finish;
    std::mutex mutex;
    std::vector<std::pair<std::size_t, std::size_t>> swept;  // guarded by mutex
    Sweeper sweeper;  // last: its thread uses the rest
};

}  // namespace

TEST_CASE("sweeper: rescues the surveys at least rescue_after late, as done, and no others")
{
    Fixture f;
    const JobRecord late = f.row(1, RecordState::running, t0 - 2'000);      // exactly rescue_after late
    const JobRecord queued = f.row(2, RecordState::queued, t0 - 5'000);     // an older version's row
    const JobRecord on_time = f.row(3, RecordState::running, t0 - 1'999);   // its owner may still be at it
    const JobRecord cancelled = f.row(4, RecordState::cancelled, t0 - 9'000, t0 - 9'500);
    f.sweeper.sweep();
    CHECK(f.reports() == std::vector<std::pair<std::size_t, std::size_t>>{{2, 0}});
    for (const JobRecord& r : {late, queued}) {
        const auto now = f.db->row(r.id);
        REQUIRE(now);
        CHECK(now->state == RecordState::done);
        CHECK(now->finished_ms == t0);
        CHECK(now->result == "Calm koalas sing wildly");
    }
    CHECK(f.db->row(on_time.id)->state == RecordState::running);
    CHECK(f.db->row(cancelled.id)->state == RecordState::cancelled);
}

TEST_CASE("sweeper: a survey finished while the sweep finishes it is not overwritten nor counted")
{
    Fixture f;
    const JobRecord late = f.row(1, RecordState::running, t0 - 3'000);
    f.on_finish = [&](JobRecord& r) {  // its owner's completion commits first
        JobRecord cancelled = r;
        cancelled.state = RecordState::cancelled;
        cancelled.finished_ms = t0 - 1;
        REQUIRE(f.db->write_as_other(WriteKind::finish, cancelled));
    };
    f.sweeper.sweep();
    CHECK(f.finishes == 1);
    CHECK(f.db->row(late.id)->state == RecordState::cancelled);
    CHECK(f.reports().empty());  // nothing rescued, nothing purged: nothing reported
}

TEST_CASE("sweeper: purges what finished more than the TTL ago")
{
    Fixture f;
    const JobRecord old = f.row(1, RecordState::done, t0 - ttl - 10, t0 - ttl - 1);
    const JobRecord edge = f.row(2, RecordState::cancelled, t0 - ttl, t0 - ttl);  // exactly a TTL ago: kept
    const JobRecord fresh = f.row(3, RecordState::done, t0 - 100, t0 - 50);
    f.sweeper.sweep();
    CHECK(f.reports() == std::vector<std::pair<std::size_t, std::size_t>>{{0, 1}});
    CHECK_FALSE(f.db->row(old.id));
    CHECK(f.db->row(edge.id));
    CHECK(f.db->row(fresh.id));
}

TEST_CASE("sweeper: a backlog clears in one pass, a batch at a time")
{
    Fixture f(2);  // two rows per statement
    for (std::uint64_t n = 0; n < 5; ++n) f.row(n, RecordState::running, t0 - 10'000 + static_cast<Millis>(n));
    for (std::uint64_t n = 10; n < 15; ++n) f.row(n, RecordState::done, t0 - 2 * ttl, t0 - 2 * ttl + 1);
    f.sweeper.sweep();
    CHECK(f.reports() == std::vector<std::pair<std::size_t, std::size_t>>{{5, 5}});
    CHECK(f.finishes == 5);
    CHECK(f.db->size() == 5);  // the rescued ones, finished now
    CHECK(f.db->purges() == 3);  // 2 + 2 + 1
}

TEST_CASE("sweeper: a database that does not answer ends the pass with nothing done or reported")
{
    Fixture f;
    const JobRecord late = f.row(1, RecordState::running, t0 - 10'000);
    f.db->fail_reads(true);
    f.sweeper.sweep();
    CHECK(f.finishes == 0);
    CHECK(f.reports().empty());
    f.db->fail_reads(false);
    f.sweeper.sweep();  // the next pass does it
    CHECK(f.db->row(late.id)->state == RecordState::done);
}

TEST_CASE("sweeper: the cluster clock takes the database's offset; no answer keeps the last one")
{
    Fixture f;
    ManualClock database(t0 + 5'000);
    f.db->set_clock(&database);
    f.sweeper.sweep();
    CHECK(f.cluster.offset() == 5'000);
    CHECK(f.cluster.now_ms() == t0 + 5'000);
    // Now late by the database's clock: 5 s ahead of ours.
    const JobRecord late = f.row(1, RecordState::running, t0 + 3'000);
    f.sweeper.sweep();
    CHECK(f.db->row(late.id)->state == RecordState::done);
    CHECK(f.db->row(late.id)->finished_ms == t0 + 5'000);
    f.db->set_clock(nullptr);
    f.sweeper.sweep();
    CHECK(f.cluster.offset() == 5'000);
}

TEST_CASE("sweeper: start() sweeps at once and then every interval; stop() joins at once; idempotent")
{
    Fixture f(100, 3'600'000);  // an hour between passes
    f.row(1, RecordState::running, t0 - 10'000);
    f.sweeper.start();
    REQUIRE(wait_until([&] { return f.reports().size() == 1; }));
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
        f.sweeper.stop();  // wakes the hour-long wait
        stopped = true;
    });
    REQUIRE(wait_until([&] { return stopped.load(); }, 2000ms));  // else the test ends here (terminate)
    stopper.join();
    f.sweeper.stop();
    CHECK(f.reports().size() == 1);

    Fixture fast(100, 5);
    fast.sweeper.start();
    REQUIRE(wait_until([&] { return fast.db->purges() >= 3; }));  // a pass every 5 ms
    fast.sweeper.stop();
    const int after = fast.db->purges();
    fast.sweeper.stop();
    CHECK(fast.db->purges() == after);  // joined: no pass after stop() returned
}
