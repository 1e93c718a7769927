// SharedLedger: several workers on one database, which is the truth. What it
// vouches for (a finished copy always; an unfinished one only while the
// cancel feed listens, in the feed's current session, and another worker's
// only before its deadline), how a read is stamped (not vouched for when the
// feed resumed or delivered a cancel during it), what its reads answer,
// and what it tells the pool (LedgerEvents) of cancels, re-reads and sweeps.
// Over a SharedMemoryDriver used directly as the SharedStore.

#include "domain/shared_ledger.h"

#include <doctest/doctest.h>

#include <memory>
#include <mutex>
#include <vector>

#include "../support/pool_fixture.h"
#include "../support/shared_memory_driver.h"
#include "../support/wait.h"
#include "domain/record_mapping.h"

using namespace zk;
using storage::RecordState;
using storage::WriteKind;
using test::wait_until;

namespace {

constexpr Millis t0 = test::t0;

// What the ledger told the pool.
class Events final : public LedgerEvents {
public:
    void learned(const Ledger::Fetched& read) override
    {
        std::lock_guard lock(mutex);
        learned_jobs.push_back(read.job);
        learned_epochs.push_back(read.epoch);
    }
    void cancelled_elsewhere(const JobId& id, Millis finished_ms) override
    {
        std::lock_guard lock(mutex);
        cancels.emplace_back(id, finished_ms);
    }
    void vanished(const JobId& id) override
    {
        std::lock_guard lock(mutex);
        gone.push_back(id);
    }
    void arm_recheck(Millis at) override
    {
        std::lock_guard lock(mutex);
        rechecks.push_back(at);
    }
    void swept(std::size_t rescued, std::size_t expired) override
    {
        std::lock_guard lock(mutex);
        sweeps.emplace_back(rescued, expired);
    }
    std::shared_ptr<const Rules> rules() const override { return rules_; }

    template <class T>
    T get(const T& field)
    {
        std::lock_guard lock(mutex);
        return field;
    }

    std::mutex mutex;
    std::vector<Job> learned_jobs;
    std::vector<std::uint64_t> learned_epochs;
    std::vector<std::pair<JobId, Millis>> cancels;
    std::vector<JobId> gone;
    std::vector<Millis> rechecks;
    std::vector<std::pair<std::size_t, std::size_t>> sweeps;

private:
    std::shared_ptr<const Rules> rules_ = std::make_shared<const Rules>(test::test_rules());
};

struct Fixture {
    explicit Fixture(SharedShape shape = test::test_shared_shape()) : ledger(driver, cluster, shape) {}
    ~Fixture() { ledger.stop(); }

    void start() { ledger.start(events); }
    // A job written to the database (another worker's, or ours: the ledger cannot tell).
    Job stored(Millis created, JobState state = JobState::running, bool owned = false)
    {
        Job j;
        j.id = JobId::generate(created);
        j.animal = "koalas";
        j.state = state;
        j.created_ms = j.started_ms = created;
        j.deadline_ms = created + 1'000;
        j.duration_ms = 1'000;
        if (j.finished()) j.finished_ms = created + 500;
        REQUIRE(db->write_as_other(WriteKind::create, to_record(j)));
        j.owned = owned;
        return j;
    }

    ManualClock clock{t0};
    ClusterClock cluster{clock};
    std::shared_ptr<test::SharedDatabase> db = std::make_shared<test::SharedDatabase>();
    test::SharedMemoryDriver driver{db};
    Events events;
    SharedLedger ledger;
};

}  // namespace

TEST_CASE("shared ledger: nothing unfinished is vouched for before the feed listens; a finished copy always is")
{
    Fixture f;
    CHECK(f.ledger.epoch() == 0);
    Job mine = f.stored(t0, JobState::running, true);
    CHECK_FALSE(f.ledger.vouches(mine, t0));
    mine.seen_in = 0;
    CHECK_FALSE(f.ledger.vouches(mine, t0));
    Job done = f.stored(t0 + 1, JobState::done);
    CHECK(f.ledger.vouches(done, t0 + 100'000));
}

TEST_CASE("shared ledger: a copy is vouched for while the feed listens and it belongs to the feed's session")
{
    Fixture f;
    f.start();
    REQUIRE(f.ledger.epoch() == 1);  // listen() announced the first session
    Job mine = f.stored(t0, JobState::running, true);
    mine.seen_in = f.ledger.epoch();
    CHECK(f.ledger.vouches(mine, t0));
    CHECK(f.ledger.vouches(mine, mine.deadline_ms - 1));
    // Ours too, past its deadline: our completion write may have failed with
    // an unknown outcome and landed all the same (a failover), so the truth
    // is read rather than a 202 given after another worker's 200.
    CHECK_FALSE(f.ledger.vouches(mine, mine.deadline_ms));
    Job stale = mine;
    stale.seen_in = 0;  // e.g. its completion was skipped
    CHECK_FALSE(f.ledger.vouches(stale, t0));

    Job theirs = f.stored(t0 + 1);
    theirs.seen_in = f.ledger.epoch();
    CHECK(f.ledger.vouches(theirs, theirs.deadline_ms - 1));
    CHECK_FALSE(f.ledger.vouches(theirs, theirs.deadline_ms));  // its owner completes it then

    f.db->drop_feed();
    CHECK_FALSE(f.ledger.vouches(mine, t0));
    f.db->resume_feed();
    CHECK(f.ledger.epoch() == 2);
    CHECK_FALSE(f.ledger.vouches(mine, t0));  // of the old session: it may have missed a cancel
    mine.seen_in = 2;
    CHECK(f.ledger.vouches(mine, t0));
}

TEST_CASE("shared ledger: a read is stamped with its epoch, or 0 when the feed resumed or delivered a cancel during it")
{
    Fixture f;
    f.start();
    const Job j = f.stored(t0);
    Ledger::Fetched read = f.ledger.fetch(j.id);
    CHECK(read.epoch == 1);
    CHECK(f.ledger.stamp(read) == 1);

    read = f.ledger.fetch(j.id);
    const Job other = f.stored(t0 + 1);
    Job cancelled = other;
    cancelled.state = JobState::cancelled;
    cancelled.finished_ms = t0 + 2;
    REQUIRE(f.db->write_as_other(WriteKind::finish, to_record(cancelled)));
    REQUIRE(f.db->deliver() == 1);  // a cancel (of any job) after the read began
    CHECK(f.ledger.stamp(read) == 0);
    CHECK(f.ledger.stamp(f.ledger.fetch(j.id)) == 1);

    read = f.ledger.fetch(j.id);
    f.db->drop_feed();
    f.db->resume_feed();
    CHECK(f.ledger.stamp(read) == 0);
    CHECK(f.ledger.stamp(f.ledger.fetch(j.id)) == 2);
}

TEST_CASE("shared ledger: fetch and fetch_key answer found, absent or unavailable")
{
    Fixture f;
    f.start();
    Job keyed;
    keyed.id = JobId::generate(t0);
    keyed.animal = "elks";
    keyed.state = JobState::running;
    keyed.created_ms = keyed.started_ms = t0;
    keyed.deadline_ms = t0 + 1'000;
    keyed.idem_scope = "10.0.0.1";
    keyed.idem_key = "k";
    REQUIRE(f.db->write_as_other(WriteKind::create, to_record(keyed)));

    auto found = f.ledger.fetch(keyed.id);
    REQUIRE(found.status == Ledger::Fetched::Status::found);
    CHECK(found.job.animal == "elks");
    CHECK(found.job.started_ms == t0);
    CHECK_FALSE(found.job.owned);
    CHECK(f.ledger.fetch(JobId::generate(t0)).status == Ledger::Fetched::Status::absent);

    found = f.ledger.fetch_key(IdempotencyKey{"10.0.0.1", "k"});
    REQUIRE(found.status == Ledger::Fetched::Status::found);
    CHECK(found.job.id == keyed.id);
    CHECK(f.ledger.fetch_key(IdempotencyKey{"10.0.0.2", "k"}).status == Ledger::Fetched::Status::absent);

    f.db->fail_reads(true);
    CHECK(f.ledger.fetch(keyed.id).status == Ledger::Fetched::Status::unavailable);
    CHECK(f.ledger.fetch_key(IdempotencyKey{"10.0.0.1", "k"}).status == Ledger::Fetched::Status::unavailable);
    CHECK(f.db->reads().fetch == 3);
    CHECK(f.db->reads().fetch_key == 3);
}

TEST_CASE("shared ledger: list reads the database with the filter's state, animal, cursor and limit")
{
    Fixture f;
    std::vector<Job> jobs;
    for (int i = 0; i < 6; ++i) jobs.push_back(f.stored(t0 + i, i == 2 ? JobState::done : JobState::running));
    const JobTable nothing_held;
    JobFilter filter;
    filter.limit = 10;
    auto listed = f.ledger.list(filter, nothing_held).value();
    REQUIRE(listed.size() == 6);
    CHECK(listed[0].id == jobs[5].id);
    filter.state = JobState::running;
    filter.before = jobs[4].id;
    filter.limit = 2;
    listed = f.ledger.list(filter, nothing_held).value();
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].id == jobs[3].id);
    CHECK(listed[1].id == jobs[1].id);  // jobs[2] is done
    filter = {};
    filter.limit = 10;
    filter.animal = "elks";
    CHECK(f.ledger.list(filter, nothing_held).value().empty());
    f.db->fail_reads(true);
    CHECK_FALSE(f.ledger.list(filter, nothing_held));
}

TEST_CASE("shared ledger: an expired copy's row is left to the sweep")
{
    Fixture f;
    const Job done = f.stored(t0, JobState::done);
    CHECK_FALSE(f.ledger.expired(done));
    CHECK(f.db->row(done.id.bytes()));
}

TEST_CASE("shared ledger: the feed's cancels reach the pool with their time")
{
    Fixture f;
    f.start();
    const Job j = f.stored(t0);
    Job cancelled = j;
    cancelled.state = JobState::cancelled;
    cancelled.finished_ms = t0 + 77;
    REQUIRE(f.db->write_as_other(WriteKind::finish, to_record(cancelled)));
    CHECK(f.events.get(f.events.cancels).empty());  // not before the feed says so
    REQUIRE(f.db->deliver() == 1);
    const auto cancels = f.events.get(f.events.cancels);
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0].first == j.id);
    CHECK(cancels[0].second == t0 + 77);
}

TEST_CASE("shared ledger: a watch arms a re-read at its deadline; the re-read learns finished jobs and vanished ones")
{
    Fixture f;  // settle 5, retry 10 ×2, period 5000
    f.start();
    const Job done = f.stored(t0);
    const Job running = f.stored(t0 + 1);
    const Job purged = f.stored(t0 + 2);
    f.ledger.watched(done.id, done.deadline_ms);
    CHECK(f.events.get(f.events.rechecks) == std::vector<Millis>{done.deadline_ms + 5});
    f.ledger.watched(running.id, running.deadline_ms);  // later than the armed one: no new timer
    f.ledger.watched(purged.id, purged.deadline_ms);
    CHECK(f.events.get(f.events.rechecks).size() == 1);

    Job finished = done;
    finished.state = JobState::done;
    finished.finished_ms = done.deadline_ms;
    finished.result = "Calm koalas sing wildly";
    REQUIRE(f.db->write_as_other(WriteKind::finish, to_record(finished)));
    f.db->forget(purged.id.bytes());
    f.clock.advance(purged.deadline_ms + 5 - t0);  // all three are due
    f.ledger.recheck();
    CHECK(f.db->reads().fetch_many == 1);  // one round trip for all
    const auto learned = f.events.get(f.events.learned_jobs);
    REQUIRE(learned.size() == 1);
    CHECK(learned[0].id == done.id);
    CHECK(learned[0].result == "Calm koalas sing wildly");
    CHECK(f.events.get(f.events.learned_epochs)[0] == 1);
    CHECK(f.events.get(f.events.gone) == std::vector<JobId>{purged.id});
    CHECK(f.events.get(f.events.rechecks).size() == 2);  // re-armed for the retries
}

TEST_CASE("shared ledger: a re-read the database does not answer learns nothing and is tried again")
{
    Fixture f;
    f.start();
    const Job j = f.stored(t0);
    f.ledger.watched(j.id, j.deadline_ms);
    f.db->fail_reads(true);
    f.clock.advance(j.deadline_ms + 5 - t0);
    f.ledger.recheck();
    CHECK(f.db->reads().fetch_many == 1);
    CHECK(f.events.get(f.events.learned_jobs).empty());
    CHECK(f.events.get(f.events.gone).empty());
    const auto rechecks = f.events.get(f.events.rechecks);
    REQUIRE(rechecks.size() == 2);
    CHECK(rechecks.back() == j.deadline_ms + 5 + 10);  // the first retry
}

TEST_CASE("shared ledger: a feed that resumes re-reads the watched jobs at once; the last watcher's leaving ends it")
{
    Fixture f;
    f.start();
    const Job j = f.stored(t0);
    f.ledger.watched(j.id, j.deadline_ms);
    f.ledger.watched(j.id, j.deadline_ms);
    f.clock.advance(100);
    f.db->drop_feed();
    f.db->resume_feed();
    auto rechecks = f.events.get(f.events.rechecks);
    REQUIRE(rechecks.size() == 2);
    CHECK(rechecks.back() == t0 + 100);  // now: it may have missed a cancel
    f.ledger.unwatched(j.id, 1);
    f.ledger.unwatched(j.id, 1);
    f.db->drop_feed();
    f.db->resume_feed();
    CHECK(f.events.get(f.events.rechecks).size() == 2);  // nothing watched: nothing to re-read
}

TEST_CASE("shared ledger: its sweep finishes late surveys as their owner would and reports what it did")
{
    SharedShape shape = test::test_shared_shape();
    shape.sweep.interval_ms = 5;  // real ms
    shape.sweep.rescue_after_ms = 2'000;
    Fixture f(shape);
    const Job late = f.stored(t0);  // deadline t0 + 1000
    f.clock.advance(3'000);
    f.start();
    REQUIRE(wait_until([&] { return !f.events.get(f.events.sweeps).empty(); }));
    CHECK(f.events.get(f.events.sweeps)[0] == std::pair<std::size_t, std::size_t>{1, 0});
    const auto row = f.db->row(late.id.bytes());
    REQUIRE(row);
    CHECK(row->state == RecordState::done);
    CHECK(row->finished_ms == t0 + 3'000);
    CHECK(row->started_ms == t0);
    CHECK(row->result == survey_sentence(late.id, "koalas", *test::small_vocabulary()));
    f.ledger.stop();
    f.ledger.stop();  // idempotent
}
