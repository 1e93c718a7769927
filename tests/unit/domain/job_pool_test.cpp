// The job pool's rules, tested once and run against every backend
// (support/pool_fixture.h): LocalRig (LocalLedger on the CommitPipeline over
// MemoryDriver), SharedRig (SharedLedger on a shared in-memory database) and
// PgRig (SharedLedger on PostgreSQL). A test runs on
//   - every rig when it needs no knob (ALL_RIGS),
//   - the two memory rigs when it holds commits at the gate or fails them
//     (MEMORY_RIGS),
//   - the shared rigs when it is about several workers (SHARED_RIGS),
//   - SharedRig alone when it steers the cancel feed or the reads.
// Time is a ManualClock the test moves. Nothing is asserted after a fixed
// sleep: a test waits (bounded) for the event it expects — a state, a
// counter, a callback, a commit at the gate, a thread about to block on the
// store (util::BlockingHook) — and checks what must hold once it happened.

#include "domain/job_pool.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "domain/record_mapping.h"
#include "support/capture_stderr.h"
#include "support/pool_fixture.h"
#include "support/wait.h"
#include "util/blocking.h"
#include "util/log.h"

using namespace zk;
using storage::RecordState;
using storage::WriteKind;
using test::LocalRig;
using test::PgRig;
using test::RigOptions;
using test::SharedRig;
using test::test_rules;
using test::wait_until;

TYPE_TO_STRING_AS("local", LocalRig);
TYPE_TO_STRING_AS("shared", SharedRig);
TYPE_TO_STRING_AS("postgresql", PgRig);

#define ALL_RIGS LocalRig, SharedRig, PgRig
#define MEMORY_RIGS LocalRig, SharedRig
#define SHARED_RIGS SharedRig, PgRig

namespace {

using namespace std::chrono_literals;

template <class R>
Job create_ok(R& f, const char* animal = "bisons", const std::optional<IdempotencyKey>& key = std::nullopt)
{
    const Created c = f.pool.create(animal, key);
    REQUIRE(c.error == CreateError::none);
    REQUIRE(c.job);
    return *c.job;
}

// No timer task queued or running.
bool idle(const JobPool& pool)
{
    return wait_until([&] {
        const PoolStats s = pool.stats();
        return s.pool_busy == 0 && s.pool_queue_depth == 0;
    });
}

bool stats_reach(const JobPool& pool, const std::function<bool(const PoolStats&)>& pred)
{
    return wait_until([&] { return pred(pool.stats()); });
}

bool reaches(JobPool& pool, const JobId& id, JobState state)
{
    return wait_until([&] {
        const auto f = pool.find(id);
        return f.job && f.job->state == state;
    });
}

// Moves time to the job's deadline and waits for its completion to be stored.
template <class R>
bool completes(R& f, const Job& j)
{
    f.move_to(j.deadline_ms);
    return reaches(f.pool, j.id, JobState::done) &&
           wait_until([&] {
               const auto row = f.row(j.id);
               return row && row->state == RecordState::done;
           });
}

JobState state_of(JobPool& pool, const JobId& id)
{
    const auto found = pool.find(id);
    REQUIRE(found.status == LookupStatus::found);
    return found.job->state;
}

// A thread joined however the test ends; `unblock` (opening a gate) runs first.
class Background {
public:
    Background(std::function<void()> body, std::function<void()> unblock)
        : unblock_(std::move(unblock)), thread_(std::move(body))
    {
    }
    ~Background() { join(); }
    void join()
    {
        if (!thread_.joinable()) return;
        if (unblock_) unblock_();
        thread_.join();
    }

private:
    std::function<void()> unblock_;
    std::thread thread_;
};

// A cancel on a thread of its own that says when it is about to wait on the store.
template <class R>
struct Canceller {
    explicit Canceller(R& f, const JobId& id)
        : thread(
              [&f, this, id] {
                  const util::BlockingHook hook([this] { ++blocked; });
                  outcome = f.pool.cancel(id);
                  answered = true;
              },
              [&f] { f.open_gate(); })
    {
    }
    bool waiting() { return wait_until([&] { return blocked.load() >= 1; }); }

    std::atomic<int> blocked{0};
    std::atomic<bool> answered{false};
    CancelOutcome outcome = CancelOutcome::unknown;
    Background thread;  // last: started once the rest exists
};

// A survey another worker created (and runs), written to the shared database.
storage::JobRecord others(test::SharedDatabase& db, Millis now, const char* animal = "koalas", Millis in = 1000,
                          const IdempotencyKey& key = {})
{
    storage::JobRecord r;
    r.id = JobId::generate(now).bytes();
    r.animal = animal;
    r.state = RecordState::running;
    r.created_ms = r.started_ms = now;
    r.deadline_ms = now + in;
    r.duration_ms = static_cast<std::int32_t>(in);
    r.idem_scope = key.scope;
    r.idem_key = key.key;
    REQUIRE(db.write_as_other(WriteKind::create, r));
    return r;
}

// Another worker's finish of a job (a completion with its sentence, or a cancel).
bool finish_as_other(test::SharedDatabase& db, storage::JobRecord r, RecordState state, Millis at)
{
    r.state = state;
    r.finished_ms = at;
    if (state == RecordState::done) r.result = survey_sentence(JobId(r.id), r.animal, *test::small_vocabulary());
    return db.write_as_other(WriteKind::finish, r);
}

storage::JobRecord record_of(const Job& j) { return to_record(j); }

}  // namespace

// ===========================================================================
// Creation
// ===========================================================================

TEST_CASE_TEMPLATE("pool creation: answered once stored, running with started = created", R, ALL_RIGS)
{
    R f;
    const Millis now = f.clock.now_ms();
    const Job j = create_ok(f, "bisons");
    CHECK(j.animal == "bisons");
    CHECK(j.state == JobState::running);
    CHECK(j.created_ms == now);
    CHECK(j.started_ms == now);
    CHECK(j.id.created_ms() == now);
    CHECK(j.duration_ms == survey_duration(j.id, Workload{10'000, 20'000}));
    CHECK(j.deadline_ms == now + j.duration_ms);
    CHECK(j.finished_ms == 0);
    CHECK(j.result.empty());
    CHECK_FALSE(j.writing);

    const auto row = f.row(j.id);  // answered once stored
    REQUIRE(row);
    CHECK(row->state == RecordState::running);
    CHECK(row->started_ms == now);
    CHECK(row->deadline_ms == j.deadline_ms);
    CHECK(row->animal == "bisons");

    const auto found = f.pool.find(j.id);
    REQUIRE(found.status == LookupStatus::found);
    CHECK(found.job->state == JobState::running);
    CHECK(found.job->started_ms == now);
    const PoolStats s = f.pool.stats();
    CHECK(s.created_total == 1);
    CHECK(s.running == 1);
    CHECK(s.queued == 0);
    CHECK(s.held == 1);
    CHECK(s.timers == 1);  // its completion
}

TEST_CASE_TEMPLATE("pool creation: queued while its write is in flight; answered when it settles", R, MEMORY_RIGS)
{
    R f;
    f.close_gate();
    Created created;
    Background creator([&] { created = f.pool.create("elks"); }, [&] { f.open_gate(); });
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));
    const auto id = f.in_flight();
    REQUIRE(id);

    const auto found = f.pool.find(*id);
    REQUIRE(found.status == LookupStatus::found);
    CHECK(found.job->state == JobState::queued);
    CHECK(found.job->started_ms == 0);
    CHECK(found.job->writing == JobState::running);
    PoolStats s = f.pool.stats();
    CHECK(s.queued == 1);
    CHECK(s.running == 0);
    CHECK(s.created_total == 0);  // not before it is stored
    CHECK_FALSE(f.row(*id));

    f.open_gate();
    creator.join();
    REQUIRE(created.job);
    CHECK(created.job->id == *id);
    CHECK(created.job->state == JobState::running);
    CHECK(created.job->started_ms == created.job->created_ms);
    s = f.pool.stats();
    CHECK(s.queued == 0);
    CHECK(s.running == 1);
    CHECK(s.created_total == 1);
}

TEST_CASE_TEMPLATE("pool creation: an unknown animal is refused and nothing is held", R, ALL_RIGS)
{
    R f;
    for (const char* name : {"owls", "Bisons", "bisons ", ""}) {
        CAPTURE(name);
        const Created c = f.pool.create(name);
        CHECK(c.error == CreateError::unknown_animal);
        CHECK_FALSE(c.job);
    }
    const PoolStats s = f.pool.stats();
    CHECK(s.created_total == 0);
    CHECK(s.held == 0);
}

TEST_CASE_TEMPLATE("pool creation: refused while the store is unavailable, and no job is left behind", R, MEMORY_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1);  // one slot: a creation left behind would hold it
    R f(o);
    f.fail_commits(true);
    const Created failed = f.pool.create("bisons");  // its commit fails: the store goes down
    CHECK(failed.error == CreateError::store_failed);
    CHECK_FALSE(failed.job);
    CHECK_FALSE(f.store.available());
    PoolStats s = f.pool.stats();
    CHECK_FALSE(s.store_healthy);
    CHECK(s.held == 0);
    CHECK(s.queued == 0);
    CHECK(s.running == 0);
    CHECK(s.created_total == 0);
    CHECK(f.rows() == 0);

    // While it is down a creation is refused before anything is written.
    CHECK(f.pool.create("bisons").error == CreateError::store_failed);
    CHECK(f.pool.stats().held == 0);

    f.fail_commits(false);
    REQUIRE(wait_until([&] { return f.store.available(); }));  // the writer reconnected
    CHECK(create_ok(f).state == JobState::running);  // and the one slot is free
}

TEST_CASE_TEMPLATE("pool creation: a keyed repeat replays; another animal is key_reused; another scope is new", R, ALL_RIGS)
{
    R f;
    const IdempotencyKey key{"10.0.0.1", "k1"};
    const Created first = f.pool.create("elks", key);
    REQUIRE(first.job);
    CHECK_FALSE(first.replayed);
    const Created again = f.pool.create("elks", key);
    REQUIRE(again.job);
    CHECK(again.replayed);
    CHECK(again.job->id == first.job->id);
    CHECK(again.job->state == JobState::running);
    CHECK(f.pool.stats().created_total == 1);
    CHECK(f.pool.stats().held == 1);

    CHECK(f.pool.create("bisons", key).error == CreateError::key_reused);
    CHECK(f.pool.create("gnus", key).error == CreateError::key_reused);  // before the animal is checked
    CHECK(create_ok(f, "elks").id != first.job->id);                     // no key: a new survey
    const Created other = f.pool.create("elks", IdempotencyKey{"10.0.0.2", "k1"});
    REQUIRE(other.job);
    CHECK_FALSE(other.replayed);
    CHECK(other.job->id != first.job->id);
    CHECK(f.pool.stats().created_total == 3);
}

TEST_CASE_TEMPLATE("pool creation: a keyed repeat while the first is in flight is key_in_flight", R, MEMORY_RIGS)
{
    R f;
    const IdempotencyKey key{"", "slow"};
    f.close_gate();
    Created first;
    Background creator([&] { first = f.pool.create("elks", key); }, [&] { f.open_gate(); });
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));
    CHECK(f.pool.create("elks", key).error == CreateError::key_in_flight);
    CHECK(f.pool.create("bisons", key).error == CreateError::key_reused);  // a mismatch is told at once
    f.open_gate();
    creator.join();
    REQUIRE(first.job);
    const Created again = f.pool.create("elks", key);
    CHECK(again.replayed);
    REQUIRE(again.job);
    CHECK(again.job->id == first.job->id);
}

TEST_CASE_TEMPLATE("pool creation: a replay is answered before the store's health and max_jobs are asked", R, MEMORY_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1);
    R f(o);
    const Job first = create_ok(f, "elks", IdempotencyKey{"", "a"});
    CHECK(f.pool.create("elks", IdempotencyKey{"", "a"}).replayed);  // at the limit: still answered
    CHECK(f.pool.create("elks", IdempotencyKey{"", "b"}).error == CreateError::too_many_jobs);

    f.fail_commits(true);
    CHECK(f.pool.cancel(first.id) == CancelOutcome::store_failed);  // the store goes down
    REQUIRE_FALSE(f.store.available());
    const Created replay = f.pool.create("elks", IdempotencyKey{"", "a"});
    CHECK(replay.error == CreateError::none);
    CHECK(replay.replayed);
    REQUIRE(replay.job);
    CHECK(replay.job->id == first.id);
    CHECK(f.pool.create("elks", IdempotencyKey{"", "b"}).error == CreateError::store_failed);

    f.fail_commits(false);
    REQUIRE(wait_until([&] { return f.store.available(); }));
    REQUIRE(f.pool.cancel(first.id) == CancelOutcome::cancelled);
    const Created b = f.pool.create("elks", IdempotencyKey{"", "b"});  // the refused one did not keep "b"
    REQUIRE(b.job);
    CHECK_FALSE(b.replayed);
}

TEST_CASE("pool creation: a key another worker created replays here; unanswered reads are 503 <shared>")
{
    SharedRig f;
    const IdempotencyKey key{"10.0.0.7", "k"};
    const auto r = others(*f.db, f.clock.now_ms(), "koalas", 1000, key);
    const Created c = f.pool.create("koalas", key);
    CHECK(c.replayed);
    REQUIRE(c.job);
    CHECK(c.job->id == JobId(r.id));
    CHECK(c.job->state == JobState::running);
    CHECK(f.pool.create("elks", key).error == CreateError::key_reused);
    CHECK(f.pool.stats().created_total == 0);
    f.db->fail_reads(true);
    CHECK(f.pool.create("koalas", IdempotencyKey{"10.0.0.7", "k2"}).error == CreateError::store_failed);
    CHECK(f.pool.stats().held == 1);  // the copy only
}

TEST_CASE_TEMPLATE("pool creation: two workers, one key: the second is answered with the first's job", R, SHARED_RIGS)
{
    R a;
    auto b = a.peer();
    const IdempotencyKey key{"10.0.0.1", "shared"};
    const Job first = create_ok(a, "elks", key);
    const Created second = b->pool.create("elks", key);
    CHECK(second.replayed);
    REQUIRE(second.job);
    CHECK(second.job->id == first.id);
    CHECK(b->pool.create("koalas", key).error == CreateError::key_reused);
    CHECK(b->pool.stats().created_total == 0);
    CHECK(b->pool.stats().running == 0);  // not its own survey
}

// A put() that throws (CommitPipeline's may: std::bad_alloc) inside
// create(): the exception reaches the dispatcher, which answers 500. It must
// leave nothing behind. create() takes the max_jobs room (counters_.admit)
// and claims the key before store_new(), and nothing gives them back when
// put() throws: each such creation leaks a room for good, and a keyed one
// leaves its key claimed and uncommitted, so every retry is key_in_flight.
TEST_CASE("pool creation: a store whose put throws leaves nothing behind: no job, no room, no key <local>")
{
    ManualClock clock(test::t0);
    auto disk = std::make_shared<test::MemoryDriver::Disk>();
    test::ThrowingStore store(disk);
    LocalLedger ledger(store);
    JobPool pool(clock, store, ledger, test::test_shape(), test_rules(10'000, 20'000, 2));
    pool.start();
    store.throwing = true;
    CHECK_THROWS_AS(pool.create("bisons"), std::runtime_error);
    CHECK_THROWS_AS(pool.create("bisons", IdempotencyKey{"", "k"}), std::runtime_error);
    store.throwing = false;
    const PoolStats s = pool.stats();
    CHECK(s.held == 0);
    CHECK(s.queued == 0);
    CHECK(s.created_total == 0);
    const Created retry = pool.create("bisons", IdempotencyKey{"", "k"});
    CAPTURE(static_cast<int>(retry.error));  // 6: key_in_flight, 2: too_many_jobs
    CHECK(retry.error == CreateError::none);  // the key is free (not key_in_flight), and so is a room
    CHECK_FALSE(retry.replayed);
    CHECK(pool.create("bisons").error == CreateError::none);  // and the other room
    pool.stop();
    store.close();
}

TEST_CASE_TEMPLATE("pool creation: refused once stopped; lookups still answer; never started stops cleanly", R, ALL_RIGS)
{
    R f;
    const Job j = create_ok(f);
    f.pool.stop();
    f.pool.stop();
    const Created c = f.pool.create("bisons");
    CHECK(c.error == CreateError::stopping);
    CHECK_FALSE(c.job);
    CHECK(f.pool.find(j.id).status == LookupStatus::found);
    CHECK(f.pool.cancel(j.id) == CancelOutcome::cancelled);  // the store still takes it

    RigOptions idle_rig;
    idle_rig.start = false;
    R never(idle_rig);
    never.pool.stop();
    CHECK(never.pool.create("bisons").error == CreateError::stopping);
}

TEST_CASE_TEMPLATE("pool stop: waits for its last write to settle (the store's outcome, not a guess)", R, MEMORY_RIGS)
{
    R f;
    const Job j = create_ok(f);
    f.close_gate();
    f.move_to(j.deadline_ms);
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));  // the completion, in flight
    std::atomic<int> blocked{0};
    std::atomic<bool> stopped{false};
    Background stopper(
        [&] {
            const util::BlockingHook hook([&] { ++blocked; });
            f.pool.stop();
            stopped = true;
        },
        [&] { f.open_gate(); });
    REQUIRE(wait_until([&] { return blocked.load() == 1; }));  // waiting on the store for it
    CHECK_FALSE(stopped);
    f.open_gate();
    stopper.join();
    CHECK(f.row(j.id)->state == RecordState::done);
    CHECK(f.pool.stats().completed_total == 1);
    CHECK(f.pool.create("elks").error == CreateError::stopping);
}

// ===========================================================================
// Lookup
// ===========================================================================

TEST_CASE_TEMPLATE("pool lookup: an id nobody holds is unknown, or expired when older than the TTL", R, ALL_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1000, 5'000);
    R f(o);
    const Millis now = f.clock.now_ms();
    CHECK(f.pool.find(JobId::generate(now)).status == LookupStatus::unknown);
    CHECK(f.pool.find(JobId::generate(now - 5'000)).status == LookupStatus::unknown);  // exactly the TTL
    const Lookup old = f.pool.find(JobId::generate(now - 5'001));
    CHECK(old.status == LookupStatus::expired);
    CHECK_FALSE(old.job);
    CHECK(f.pool.find(JobId::generate(now + 60'000)).status == LookupStatus::unknown);  // from the future
    // Not a v7 id: no creation time, so never "expired".
    CHECK(f.pool.find(*JobId::parse("123e4567-e89b-42d3-a456-426614174000")).status == LookupStatus::unknown);
    CHECK(f.pool.find(JobId{}).status == LookupStatus::unknown);
    CHECK(f.pool.stats().held == 0);
}

TEST_CASE("pool lookup: a store that does not answer makes a lookup unavailable, not unknown <shared>")
{
    SharedRig f;
    const Job j = create_ok(f);
    f.db->drop_feed();  // the copy is no longer vouched for
    f.db->fail_reads(true);
    CHECK(f.pool.find(j.id).status == LookupStatus::unavailable);
    CHECK(f.pool.find(JobId::generate(f.clock.now_ms())).status == LookupStatus::unavailable);
    CHECK(f.pool.cancel(j.id) == CancelOutcome::store_failed);
    CHECK_FALSE(f.pool.list(JobFilter{}));
    f.db->fail_reads(false);
    CHECK(state_of(f.pool, j.id) == JobState::running);
    CHECK(f.pool.list(JobFilter{}).value().size() == 1);
}

TEST_CASE_TEMPLATE("pool lookup: every worker gives the same state, started and deadline", R, SHARED_RIGS)
{
    R a;
    auto b = a.peer();
    const Job j = create_ok(a, "koalas");
    const auto seen = b->pool.find(j.id);
    REQUIRE(seen.status == LookupStatus::found);
    CHECK(seen.job->state == JobState::running);
    CHECK(seen.job->started_ms == j.started_ms);
    CHECK(seen.job->deadline_ms == j.deadline_ms);
    CHECK(seen.job->animal == "koalas");
    CHECK_FALSE(seen.job->owned);
    REQUIRE(a.pool.cancel(j.id) == CancelOutcome::cancelled);
    a.deliver_feed();
    REQUIRE(wait_until([&] { return b->pool.find(j.id).job->state == JobState::cancelled; }));
    CHECK(b->pool.find(j.id).job->finished_ms == a.pool.find(j.id).job->finished_ms);
}

// ===========================================================================
// Cancel
// ===========================================================================

TEST_CASE_TEMPLATE("pool cancel: running → cancelled once stored; again → already_cancelled; done, unknown", R, ALL_RIGS)
{
    R f;
    const Millis now = f.clock.now_ms();
    const Job j = create_ok(f);
    f.advance(3000);
    CHECK(f.pool.cancel(j.id) == CancelOutcome::cancelled);
    const auto row = f.row(j.id);
    REQUIRE(row);
    CHECK(row->state == RecordState::cancelled);
    CHECK(row->finished_ms == now + 3000);
    const Job c = *f.pool.find(j.id).job;
    CHECK(c.state == JobState::cancelled);
    CHECK(c.finished_ms == now + 3000);
    CHECK(c.result.empty());
    CHECK(f.pool.cancel(j.id) == CancelOutcome::already_cancelled);

    const Job d = create_ok(f);
    REQUIRE(completes(f, d));
    CHECK(f.pool.cancel(d.id) == CancelOutcome::already_done);
    CHECK(state_of(f.pool, d.id) == JobState::done);
    CHECK(f.pool.cancel(JobId::generate(f.clock.now_ms())) == CancelOutcome::unknown);

    // The deadline of the cancelled one passed with the clock: nothing completed it.
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.completed_total == 1; }));
    const PoolStats s = f.pool.stats();
    CHECK(s.cancelled_total == 1);
    CHECK(s.running == 0);
    CHECK(state_of(f.pool, j.id) == JobState::cancelled);
}

TEST_CASE_TEMPLATE("pool cancel: waits out the creation's write in flight, then cancels", R, MEMORY_RIGS)
{
    R f;
    f.close_gate();
    Created created;
    Background creator([&] { created = f.pool.create("bisons"); }, [&] { f.open_gate(); });
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));
    const auto id = f.in_flight();
    REQUIRE(id);

    Canceller<R> cancel(f, *id);
    REQUIRE(cancel.waiting());  // on the store, for the creation's write
    const Job held = *f.pool.find(*id).job;
    CHECK(held.state == JobState::queued);
    CHECK(held.writing == JobState::running);  // still the creation's: no second write in flight
    CHECK(f.at_gate() == 1);

    f.open_gate();
    creator.join();
    cancel.thread.join();
    REQUIRE(created.job);  // answered (its snapshot may already show the cancel: both woke at once)
    CHECK(created.job->id == *id);
    CHECK(cancel.outcome == CancelOutcome::cancelled);
    const Job c = *f.pool.find(*id).job;
    CHECK(c.state == JobState::cancelled);
    CHECK(c.started_ms == c.created_ms);
    CHECK(f.row(*id)->state == RecordState::cancelled);
    const PoolStats s = f.pool.stats();
    CHECK(s.created_total == 1);
    CHECK(s.cancelled_total == 1);
    CHECK(s.queued == 0);
    CHECK(s.running == 0);
}

TEST_CASE_TEMPLATE("pool cancel: a completion in flight wins; the cancel learns already_done", R, MEMORY_RIGS)
{
    R f;
    const Job j = create_ok(f);
    f.close_gate();
    f.move_to(j.deadline_ms);
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));  // the completion, held
    CHECK(f.pool.find(j.id).job->writing == JobState::done);

    Canceller<R> cancel(f, j.id);
    REQUIRE(cancel.waiting());
    CHECK_FALSE(cancel.answered);
    f.open_gate();
    cancel.thread.join();
    CHECK(cancel.outcome == CancelOutcome::already_done);
    CHECK(state_of(f.pool, j.id) == JobState::done);
    CHECK(f.row(j.id)->state == RecordState::done);
    const PoolStats s = f.pool.stats();
    CHECK(s.completed_total == 1);
    CHECK(s.cancelled_total == 0);
}

TEST_CASE_TEMPLATE("pool cancel: a cancel in flight wins; the deadline then writes nothing", R, MEMORY_RIGS)
{
    R f;
    const Job j = create_ok(f);
    f.close_gate();
    Canceller<R> cancel(f, j.id);
    REQUIRE(cancel.waiting());
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));  // the cancel, held

    f.move_to(j.deadline_ms);
    // The completion timer fired and its task ran, finding the cancel in flight.
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.timers == 0; }));
    REQUIRE(idle(f.pool));
    const Job held = *f.pool.find(j.id).job;
    CHECK(held.state == JobState::running);  // memory follows the store: not cancelled before it is stored
    CHECK(held.writing == JobState::cancelled);
    CHECK(f.at_gate() == 1);

    f.open_gate();
    cancel.thread.join();
    CHECK(cancel.outcome == CancelOutcome::cancelled);
    CHECK(state_of(f.pool, j.id) == JobState::cancelled);
    CHECK(f.row(j.id)->state == RecordState::cancelled);
    const PoolStats s = f.pool.stats();
    CHECK(s.cancelled_total == 1);
    CHECK(s.completed_total == 0);
    CHECK(s.timers == 1);  // its expiry; no completion was armed again
}

TEST_CASE_TEMPLATE("pool cancel: a failed cancel leaves the job as it was", R, MEMORY_RIGS)
{
    R f;
    const Job j = create_ok(f);
    f.fail_commits(true);
    CHECK(f.pool.cancel(j.id) == CancelOutcome::store_failed);
    const Job held = *f.pool.find(j.id).job;
    CHECK(held.state == JobState::running);
    CHECK_FALSE(held.writing);
    CHECK(f.row(j.id)->state == RecordState::running);
    PoolStats s = f.pool.stats();
    CHECK(s.cancelled_total == 0);
    CHECK(s.running == 1);

    f.fail_commits(false);
    REQUIRE(wait_until([&] { return f.store.available(); }));
    CHECK(f.pool.cancel(j.id) == CancelOutcome::cancelled);
    s = f.pool.stats();
    CHECK(s.cancelled_total == 1);
    CHECK(s.running == 0);
}

TEST_CASE("pool cancel: another worker's completion wins over ours in flight; the cancel learns already_done <shared>")
{
    SharedRig f;
    const Job j = create_ok(f, "koalas");
    f.close_gate();
    Canceller<SharedRig> cancel(f, j.id);
    REQUIRE(cancel.waiting());
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));
    REQUIRE(finish_as_other(*f.db, record_of(j), RecordState::done, j.deadline_ms));  // a sweep's rescue, say
    f.open_gate();
    cancel.thread.join();
    CHECK(cancel.outcome == CancelOutcome::already_done);
    const Job seen = *f.pool.find(j.id).job;
    CHECK(seen.state == JobState::done);
    CHECK(seen.result == survey_sentence(j.id, "koalas", *test::small_vocabulary()));
    const PoolStats s = f.pool.stats();
    CHECK(s.cancelled_total == 0);
    CHECK(s.completed_total == 0);  // not completed here
    CHECK(s.running == 0);          // and no longer ours to count
}

TEST_CASE("pool cancel: another worker's cancel wins over our completion; the job leaves our counts <shared>")
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1);
    SharedRig f(o);
    const Job j = create_ok(f);
    std::atomic<int> fired{0};
    REQUIRE(f.pool.watch(j.id, [&] { ++fired; }, j.deadline_ms));
    f.close_gate();
    f.move_to(j.deadline_ms);
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));  // our completion, held
    REQUIRE(finish_as_other(*f.db, record_of(j), RecordState::cancelled, j.deadline_ms - 1));
    f.open_gate();  // ours is skipped
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.running == 0; }));
    REQUIRE(wait_until([&] { return fired == 1; }));  // its waiter reads the truth
    const auto reads = f.db->reads().fetch;
    CHECK(state_of(f.pool, j.id) == JobState::cancelled);
    CHECK(f.db->reads().fetch == reads + 1);  // the skipped copy vouched for nothing
    const PoolStats s = f.pool.stats();
    CHECK(s.completed_total == 0);
    CHECK(s.cancelled_total == 0);
    CHECK(create_ok(f).state == JobState::running);  // its room is free
}

// ===========================================================================
// Completion
// ===========================================================================

TEST_CASE_TEMPLATE("pool completion: nothing before the deadline; done with the sentence once stored", R, ALL_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 10'000);  // every survey 10 s
    R f(o);
    const Job early = create_ok(f, "koalas");
    f.advance(1);
    const Job late = create_ok(f, "elks");  // due 1 ms after `early`
    REQUIRE(late.deadline_ms == early.deadline_ms + 1);

    f.move_to(early.deadline_ms);
    REQUIRE(completes(f, early));
    REQUIRE(idle(f.pool));
    // That pass of the timers saw `late` not yet due: no write, its timer kept.
    const Job waiting = *f.pool.find(late.id).job;
    CHECK(waiting.state == JobState::running);
    CHECK_FALSE(waiting.writing);
    CHECK(f.pool.stats().timers == 2);  // early's expiry, late's completion

    const Job done = *f.pool.find(early.id).job;
    CHECK(done.result == survey_sentence(early.id, "koalas", *test::small_vocabulary()));
    CHECK(done.finished_ms == early.deadline_ms);
    CHECK(done.progress(f.clock.now_ms()) == doctest::Approx(1.0));
    const auto row = f.row(early.id);
    REQUIRE(row);
    CHECK(row->result == done.result);
    CHECK(row->finished_ms == early.deadline_ms);

    f.advance(1);
    REQUIRE(completes(f, late));
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.completed_total == 2; }));
    const PoolStats s = f.pool.stats();
    CHECK(s.running == 0);
    CHECK(s.queued == 0);
    CHECK(s.survey_seconds.cumulative.back() == 2);
    CHECK(s.survey_seconds.sum == doctest::Approx(20.0));
    CHECK(s.completion_lag_seconds.cumulative.back() == 2);
}

TEST_CASE_TEMPLATE("pool completion: a survey whose deadline passed long ago completes at once", R, ALL_RIGS)
{
    R f;
    const Job j = create_ok(f);
    f.advance(10 * 60'000);
    CHECK(reaches(f.pool, j.id, JobState::done));
}

TEST_CASE_TEMPLATE("pool completion: one the store refuses is retried after retry_ms and lands; counted once stored", R, MEMORY_RIGS)
{
    R f;
    const Job j = create_ok(f);
    f.fail_commits(true);
    f.move_to(j.deadline_ms);
    // Its write failed, and the retry is armed (the completion timer was taken first).
    REQUIRE(wait_until([&] { return !f.store.available(); }));
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.timers == 1 && s.pool_busy == 0; }));
    CHECK(state_of(f.pool, j.id) == JobState::running);
    CHECK(f.row(j.id)->state == RecordState::running);
    CHECK(f.pool.stats().completed_total == 0);

    f.fail_commits(false);
    REQUIRE(wait_until([&] { return f.store.available(); }));
    f.advance(20);  // retry_ms
    REQUIRE(reaches(f.pool, j.id, JobState::done));
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.completed_total == 1; }));
    CHECK(f.row(j.id)->state == RecordState::done);
    CHECK(f.pool.find(j.id).job->finished_ms == j.deadline_ms + 20);
}

TEST_CASE_TEMPLATE("pool completion: while the store is down a completion is not even queued, and retried", R, MEMORY_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 10'000, 1000, 5'000);
    R f(o);
    const Job j = create_ok(f);
    f.advance(5'000);
    const Job c = create_ok(f);
    REQUIRE(f.pool.cancel(c.id) == CancelOutcome::cancelled);  // its expiry is due with j's completion
    f.fail_commits(true);
    CHECK(f.pool.create("elks").error == CreateError::store_failed);  // takes the store down
    REQUIRE_FALSE(f.store.available());
    f.move_to(j.deadline_ms);
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.held == 1; }));  // c expired: the pass ran
    REQUIRE(idle(f.pool));
    CHECK(f.pool.stats().timers == 2);             // j's retry, c's old completion
    CHECK_FALSE(f.pool.find(j.id).job->writing);  // refused: nothing in flight
    f.fail_commits(false);
    REQUIRE(wait_until([&] { return f.store.available(); }));
    f.advance(20);
    CHECK(reaches(f.pool, j.id, JobState::done));
}

// ===========================================================================
// Expiry
// ===========================================================================

TEST_CASE_TEMPLATE("pool expiry: memory forgets a finished job after the TTL", R, ALL_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 10'000, 1000, 5'000);  // both due together: no completion timer outlives them
    R f(o);
    const Millis start = f.clock.now_ms();
    const Job done = create_ok(f, "bisons");
    const Job cancelled = create_ok(f, "elks");
    REQUIRE(f.pool.cancel(cancelled.id) == CancelOutcome::cancelled);
    f.move_to(start + 5'000);  // the cancelled one's TTL
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.held == 1; }));
    REQUIRE(completes(f, done));
    f.move_to(done.deadline_ms + 5'000);
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.held == 0 && s.timers == 0; }));
    CHECK(f.pool.stats().completed_total == 1);
}

TEST_CASE("pool expiry: one worker erases an expired result's row and counts it; lookups say expired <local>")
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1000, 5'000);
    LocalRig f(o);
    const Job j = create_ok(f);
    REQUIRE(completes(f, j));
    f.advance(5'000);
    REQUIRE(wait_until([&] { return !f.row(j.id); }));
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.expired_total == 1 && s.held == 0; }));
    CHECK(f.pool.find(j.id).status == LookupStatus::expired);
    CHECK(f.pool.cancel(j.id) == CancelOutcome::unknown);
}

// expired_total counts deleted results. LocalLedger::expired() queues the
// erase, ignores whether the store took it, and answers true, so the pool
// counts a deletion that never happened.
TEST_CASE("pool expiry: an expiry whose erase the store refuses is not counted as deleted <local>")
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1000, 5'000);
    LocalRig f(o);
    const Job j = create_ok(f);
    REQUIRE(f.pool.cancel(j.id) == CancelOutcome::cancelled);
    f.fail_commits(true);
    CHECK(f.pool.create("elks").error == CreateError::store_failed);  // takes the store down
    REQUIRE_FALSE(f.store.available());
    f.advance(5'000);
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.held == 0; }));  // memory forgot it
    REQUIRE(idle(f.pool));
    CHECK(f.row(j.id));  // the row stays (the next start expires it again)
    CHECK(f.pool.stats().expired_total == 0);
}

TEST_CASE_TEMPLATE("pool expiry: with a shared store the row stays for the sweep; a lookup reads it", R, SHARED_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1000, 5'000);
    R f(o);
    const Job j = create_ok(f);
    REQUIRE(completes(f, j));
    f.advance(5'000);
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.held == 0; }));
    CHECK(f.row(j.id)->state == RecordState::done);
    CHECK(f.pool.stats().expired_total == 0);  // the sweep deletes and counts
    const auto again = f.pool.find(j.id);
    REQUIRE(again.status == LookupStatus::found);
    CHECK(again.job->state == JobState::done);
}

TEST_CASE_TEMPLATE("pool expiry: a TTL a reload lengthened keeps the result longer", R, ALL_RIGS)
{
    RigOptions o;
    o.rules = test_rules(5'000, 5'000, 1000, 5'000);
    R f(o);
    const Job j = create_ok(f);
    REQUIRE(f.pool.cancel(j.id) == CancelOutcome::cancelled);  // its expiry is due with the next one's completion
    const Job sentinel = create_ok(f);
    f.pool.reconfigure(test_rules(5'000, 5'000, 1000, 60'000));
    REQUIRE(completes(f, sentinel));  // that pass also ran j's expiry, which found the new TTL
    REQUIRE(idle(f.pool));
    PoolStats s = f.pool.stats();
    CHECK(s.held == 2);
    CHECK(s.timers == 2);  // j's expiry re-armed, the sentinel's
    f.advance(55'000);     // j's new TTL ends; the sentinel's 5 s later
    CHECK(stats_reach(f.pool, [](const PoolStats& x) { return x.held == 1; }));
    CHECK(f.pool.find(sentinel.id).job->state == JobState::done);  // still held
    f.advance(5'000);
    CHECK(stats_reach(f.pool, [](const PoolStats& x) { return x.held == 0; }));
}

// ===========================================================================
// Waiting
// ===========================================================================

TEST_CASE_TEMPLATE("pool waiting: a watch fires once, when the job is done and stored; at once when finished or unknown", R, ALL_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1000, 5'000);
    R f(o);
    const Job j = create_ok(f, "koalas");
    std::atomic<int> fired{0};
    std::atomic<int> seen_state{-1}, seen_row{-1};
    const auto token = f.pool.watch(
        j.id,
        [&] {
            const auto found = f.pool.find(j.id);  // outside the pool's locks: it may look
            seen_state = found.job ? static_cast<int>(found.job->state) : -2;
            const auto row = f.row(j.id);
            seen_row = row ? static_cast<int>(row->state) : -2;
            ++fired;
        },
        j.deadline_ms);
    REQUIRE(token);
    CHECK(f.pool.watching() == 1);
    f.move_to(j.deadline_ms);
    REQUIRE(wait_until([&] { return fired == 1; }));
    CHECK(seen_state == static_cast<int>(JobState::done));
    CHECK(seen_row == static_cast<int>(RecordState::done));
    CHECK(f.pool.watching() == 0);
    CHECK_FALSE(f.pool.unwatch(*token));

    int late = 0;
    REQUIRE(f.pool.watch(j.id, [&] { ++late; }, j.deadline_ms));  // already done: on this thread, now
    CHECK(late == 1);
    int unknown = 0;
    REQUIRE(f.pool.watch(JobId::generate(f.clock.now_ms()), [&] { ++unknown; }));
    CHECK(unknown == 1);

    f.advance(5'000);  // its expiry comes and goes: nobody fires again
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.held == 0; }));
    CHECK(fired == 1);
    CHECK(f.pool.watching() == 0);
}

TEST_CASE_TEMPLATE("pool waiting: a cancel fires the watch; unwatch stops one; max_waiters refuses", R, ALL_RIGS)
{
    RigOptions o;
    o.shape.max_waiters = 2;
    R f(o);
    const Job j = create_ok(f);
    std::atomic<int> cancelled{0}, removed{0};  // PostgreSQL's feed may fire it on its own thread
    REQUIRE(f.pool.watch(j.id, [&] { ++cancelled; }, j.deadline_ms));
    const auto token = f.pool.watch(j.id, [&] { ++removed; }, j.deadline_ms);
    REQUIRE(token);
    CHECK_FALSE(f.pool.watch(j.id, [] {}, j.deadline_ms));  // full
    CHECK(f.pool.unwatch(*token));
    CHECK(f.pool.watching() == 1);
    CHECK(f.pool.cancel(j.id) == CancelOutcome::cancelled);
    CHECK(wait_until([&] { return cancelled == 1; }));
    CHECK(f.pool.watching() == 0);
    CHECK(removed == 0);

    const Job k = create_ok(f);
    f.pool.set_max_waiters(0);  // a reload
    int refused = 0;
    CHECK_FALSE(f.pool.watch(k.id, [&] { ++refused; }, k.deadline_ms));
    CHECK(refused == 0);
}

TEST_CASE("pool waiting: another worker's cancel, delivered by the feed, ends a wait at once <shared>")
{
    SharedRig f;
    const Job j = create_ok(f);
    std::atomic<int> fired{0};
    REQUIRE(f.pool.watch(j.id, [&] { ++fired; }, j.deadline_ms));
    REQUIRE(finish_as_other(*f.db, record_of(j), RecordState::cancelled, f.clock.now_ms()));
    CHECK(fired == 0);  // the feed has not said so yet: only deliver() does
    CHECK(f.db->deliver() == 1);
    CHECK(fired == 1);  // on the feed's thread, before deliver() returned
    const auto reads = f.db->reads().fetch;
    CHECK(state_of(f.pool, j.id) == JobState::cancelled);
    CHECK(f.db->reads().fetch == reads);  // learned from the feed: no read
    const PoolStats s = f.pool.stats();
    CHECK(s.running == 0);
    CHECK(s.cancelled_total == 0);  // not cancelled here
}

TEST_CASE("pool waiting: another worker's cancel through PostgreSQL's feed ends a wait <postgresql>")
{
    PgRig f;
    auto other = f.peer();
    REQUIRE(wait_until([&] { return f.store.shared()->listening(); }, 5000ms));
    const Job j = create_ok(f);
    std::atomic<int> fired{0};
    REQUIRE(f.pool.watch(j.id, [&] { ++fired; }, j.deadline_ms));
    REQUIRE(other->pool.cancel(j.id) == CancelOutcome::cancelled);
    REQUIRE(wait_until([&] { return fired == 1; }, 5000ms));  // NOTIFY, not the periodic re-read
    CHECK(f.pool.find(j.id).job->state == JobState::cancelled);
    CHECK(stats_reach(f.pool, [](const PoolStats& s) { return s.running == 0; }));
}

namespace {

// A survey another worker runs, watched here.
struct Watched {
    explicit Watched(SharedRig& rig) : f(rig), r(others(*rig.db, rig.clock.now_ms()))
    {
        // As a waiting poll does: the lookup first (it holds a copy), then the watch.
        REQUIRE(state_of(f.pool, JobId(r.id)) == JobState::running);
        REQUIRE(f.pool.watch(JobId(r.id), [this] { ++fired; }, r.deadline_ms));
        REQUIRE(fired == 0);
    }
    bool read_at(int n) { return wait_until([&] { return f.db->reads().fetch_many >= n; }) && idle(f.pool); }

    SharedRig& f;
    storage::JobRecord r;
    std::atomic<int> fired{0};
};

}  // namespace

TEST_CASE("pool waiting: a watched job finished on another worker is found at its deadline <shared>")
{
    SharedRig f;
    Watched w(f);
    REQUIRE(finish_as_other(*f.db, w.r, RecordState::done, w.r.deadline_ms));
    f.move_to(w.r.deadline_ms + 5);  // the deadline check
    REQUIRE(wait_until([&] { return w.fired == 1; }));
    CHECK(f.db->reads().fetch_many == 1);  // one round trip
    const auto reads = f.db->reads().fetch;
    const auto found = f.pool.find(JobId(w.r.id));  // learned: answered from memory
    REQUIRE(found.job);
    CHECK(found.job->state == JobState::done);
    CHECK(f.db->reads().fetch == reads);
}

TEST_CASE("pool waiting: an owner a little late is found by the retries after the deadline <shared>")
{
    SharedRig f;
    Watched w(f);
    f.move_to(w.r.deadline_ms + 5);
    REQUIRE(w.read_at(1));
    CHECK(w.fired == 0);  // read before it finished
    REQUIRE(finish_as_other(*f.db, w.r, RecordState::done, w.r.deadline_ms + 7));
    f.move_to(w.r.deadline_ms + 15);  // the first retry
    REQUIRE(wait_until([&] { return w.fired == 1; }));
}

TEST_CASE("pool waiting: a cancel the feed missed is found by the periodic re-read <shared>")
{
    SharedRig f;
    const Millis start = f.clock.now_ms();
    const Job j = create_ok(f, "koalas");
    std::atomic<int> fired{0};
    REQUIRE(f.pool.watch(j.id, [&] { ++fired; }, j.deadline_ms));
    f.db->drop_feed();  // its notice is lost
    REQUIRE(finish_as_other(*f.db, record_of(j), RecordState::cancelled, start + 1));
    f.move_to(start + 5'000);  // the period
    REQUIRE(wait_until([&] { return fired == 1; }));
    CHECK(state_of(f.pool, j.id) == JobState::cancelled);
    CHECK(stats_reach(f.pool, [](const PoolStats& s) { return s.running == 0; }));
}

TEST_CASE("pool waiting: a watched job gone from the database answers its waiters <shared>")
{
    SharedRig f;
    Watched w(f);
    f.db->forget(w.r.id);
    f.move_to(w.r.deadline_ms + 5);
    REQUIRE(wait_until([&] { return w.fired == 1; }));
}

TEST_CASE("pool waiting: a database that does not answer keeps the watch; the next period finds it <shared>")
{
    SharedRig f;
    const Millis start = f.clock.now_ms();
    Watched w(f);
    f.db->fail_reads(true);
    REQUIRE(finish_as_other(*f.db, w.r, RecordState::done, w.r.deadline_ms));
    f.move_to(w.r.deadline_ms + 5);
    REQUIRE(w.read_at(1));
    CHECK(w.fired == 0);
    f.db->fail_reads(false);
    f.move_to(start + 5'000);
    REQUIRE(wait_until([&] { return w.fired == 1; }));
}

// ===========================================================================
// Counters
// ===========================================================================

TEST_CASE_TEMPLATE("pool counters: created, completed and cancelled count settled changes; gauges follow", R, ALL_RIGS)
{
    RigOptions o;
    o.shape = test::test_shape(3, 64);
    R f(o);
    std::vector<Job> jobs;
    for (int i = 0; i < 6; ++i) jobs.push_back(create_ok(f));
    PoolStats s = f.pool.stats();
    CHECK(s.created_total == 6);
    CHECK(s.running == 6);
    CHECK(s.queued == 0);
    CHECK(s.held == 6);
    CHECK(s.timers == 6);
    CHECK(s.pool_threads == 3);
    CHECK(s.store_healthy);

    REQUIRE(f.pool.cancel(jobs[0].id) == CancelOutcome::cancelled);
    REQUIRE(f.pool.cancel(jobs[1].id) == CancelOutcome::cancelled);
    s = f.pool.stats();
    CHECK(s.cancelled_total == 2);
    CHECK(s.running == 4);
    f.advance(20'000);
    REQUIRE(stats_reach(f.pool, [](const PoolStats& x) { return x.completed_total == 4; }));
    s = f.pool.stats();
    CHECK(s.running == 0);
    CHECK(s.cancelled_total == 2);
    CHECK(s.created_total == 6);
    CHECK(s.held == 6);
    CHECK(s.expired_total == 0);
}

TEST_CASE_TEMPLATE("pool counters: max_jobs counts creations in flight and frees on every finish", R, MEMORY_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 10'000, 2);
    R f(o);
    const Job a = create_ok(f);
    f.close_gate();
    Created b;
    Background creator([&] { b = f.pool.create("elks"); }, [&] { f.open_gate(); });
    REQUIRE(wait_until([&] { return f.at_gate() == 1; }));
    CHECK(f.pool.create("koalas").error == CreateError::too_many_jobs);  // b's room is taken
    f.open_gate();
    creator.join();
    REQUIRE(b.job);
    CHECK(f.pool.create("koalas").error == CreateError::too_many_jobs);

    REQUIRE(f.pool.cancel(a.id) == CancelOutcome::cancelled);  // a cancel frees one
    create_ok(f);
    CHECK(f.pool.create("koalas").error == CreateError::too_many_jobs);
    REQUIRE(completes(f, *b.job));  // so do completions (all three are due at once)
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.running == 0; }));
    create_ok(f);
    create_ok(f);
    CHECK(f.pool.create("koalas").error == CreateError::too_many_jobs);
}

TEST_CASE("pool counters: a job cancelled elsewhere leaves our counts and frees its room <shared>")
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1);
    SharedRig f(o);
    const Job a = create_ok(f);
    CHECK(f.pool.create("elks").error == CreateError::too_many_jobs);
    REQUIRE(finish_as_other(*f.db, record_of(a), RecordState::cancelled, f.clock.now_ms()));
    REQUIRE(f.db->deliver() == 1);
    const PoolStats s = f.pool.stats();
    CHECK(s.running == 0);
    CHECK(s.cancelled_total == 0);
    CHECK(create_ok(f).state == JobState::running);
}

// A cancel of ours that PostgreSQL's feed delivers (our own NOTIFY) before
// the commit's settled callback runs: the listener thread and the committer
// race. The copy is already cancelled when the callback looks, and
// settle_finish's early return skips counters_.cancelled().
TEST_CASE("pool counters: a cancel of ours the feed delivers before its write settles is counted once <shared>")
{
    SharedRig f;
    f.db->deliver_at_commit(true);
    const Job j = create_ok(f);
    REQUIRE(f.pool.cancel(j.id) == CancelOutcome::cancelled);
    CHECK(state_of(f.pool, j.id) == JobState::cancelled);
    const PoolStats s = f.pool.stats();
    CHECK(s.running == 0);
    CHECK(s.cancelled_total == 1);
}

// The same race for a completion: a read (here a lookup on a copy the feed no
// longer vouches for; in production also the remote re-read of a watched job)
// finds the done row after the commit and before its callback.
TEST_CASE("pool counters: a completion of ours read back before its write settles is counted once <shared>")
{
    SharedRig f;
    const Job j = create_ok(f);
    f.db->drop_feed();
    f.db->close_exit_gate();
    f.move_to(j.deadline_ms);
    REQUIRE(wait_until([&] { return f.db->waiting_at_exit() == 1; }));  // stored; not yet settled
    CHECK(state_of(f.pool, j.id) == JobState::done);                   // read from the store
    f.db->open_exit_gate();
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.running == 0; }));
    REQUIRE(wait_until([&] { return f.db->waiting_at_exit() == 0; }));
    // The callback ran on the writer before it committed anything else: make one more commit go through.
    REQUIRE(f.pool.cancel(create_ok(f).id) == CancelOutcome::cancelled);
    CHECK(f.pool.stats().completed_total == 1);
}

TEST_CASE("pool counters: a sweep's rescue and purge are counted where the sweep ran <shared>")
{
    RigOptions o;
    o.shared.sweep.interval_ms = 5;  // real ms: the sweeper's own thread
    o.shared.sweep.rescue_after_ms = 5'000;
    SharedRig f(o);
    const Millis start = f.clock.now_ms();
    const auto dead = others(*f.db, start, "koalas", 1000);  // its worker died
    storage::JobRecord old = others(*f.db, start, "elks", 10);
    REQUIRE(finish_as_other(*f.db, old, RecordState::done, start + 10));
    f.move_to(start + 1000 + 5'000);  // rescue_after past its deadline
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.rescued_total == 1; }));
    const auto row = f.row(JobId(dead.id));
    REQUIRE(row);
    CHECK(row->state == RecordState::done);
    CHECK(row->result == survey_sentence(JobId(dead.id), "koalas", *test::small_vocabulary()));
    CHECK(f.pool.find(JobId(dead.id)).job->result == row->result);

    f.move_to(start + 10 + 60'000 + 1);  // `old` finished a TTL ago
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.expired_total >= 1; }));
    CHECK_FALSE(f.row(JobId(old.id)));
    CHECK(f.pool.stats().completed_total == 0);
}

// ===========================================================================
// The shared ledger's vouching, seen through the pool
// ===========================================================================

TEST_CASE("pool shared: a copy is not vouched for once the feed drops or resumes; the next find reads the store <shared>")
{
    SharedRig f;
    const Job j = create_ok(f);
    auto fetches = [&] { return f.db->reads().fetch; };
    int before = fetches();
    CHECK(state_of(f.pool, j.id) == JobState::running);
    CHECK(fetches() == before);  // vouched for: the feed is up and the copy of its session

    f.db->drop_feed();
    CHECK(state_of(f.pool, j.id) == JobState::running);
    CHECK(fetches() == before + 1);
    CHECK(state_of(f.pool, j.id) == JobState::running);
    CHECK(fetches() == before + 2);  // not while the feed is down

    f.db->resume_feed();  // a new session: what the old one missed is unknown
    CHECK(state_of(f.pool, j.id) == JobState::running);
    CHECK(fetches() == before + 3);
    CHECK(state_of(f.pool, j.id) == JobState::running);
    CHECK(fetches() == before + 3);  // that read belongs to the new session

    REQUIRE(f.pool.cancel(j.id) == CancelOutcome::cancelled);
    f.db->drop_feed();
    before = fetches();
    CHECK(state_of(f.pool, j.id) == JobState::cancelled);
    CHECK(fetches() == before);  // a finished copy is final
}

TEST_CASE("pool shared: a copy of another worker's survey is vouched for only until its deadline <shared>")
{
    SharedRig f;
    const auto r = others(*f.db, f.clock.now_ms(), "koalas", 1000);
    const JobId id(r.id);
    auto fetches = [&] { return f.db->reads().fetch; };
    CHECK(state_of(f.pool, id) == JobState::running);  // read, then held
    const int before = fetches();
    CHECK(state_of(f.pool, id) == JobState::running);
    CHECK(fetches() == before);
    REQUIRE(finish_as_other(*f.db, r, RecordState::done, r.deadline_ms));
    f.move_to(r.deadline_ms);  // its owner completes it now: the copy cannot know
    CHECK(state_of(f.pool, id) == JobState::done);
    CHECK(fetches() == before + 1);
}

// ===========================================================================
// Listing, reconfiguration, restore, logs, stress
// ===========================================================================

TEST_CASE_TEMPLATE("pool list: newest first, filtered, paged with before", R, ALL_RIGS)
{
    R f;
    std::vector<Job> jobs;
    for (int i = 0; i < 10; ++i) {
        jobs.push_back(create_ok(f, i % 2 ? "elks" : "bisons"));
        f.advance(1);
    }
    REQUIRE(f.pool.cancel(jobs[4].id) == CancelOutcome::cancelled);

    JobFilter all;
    all.limit = 100;
    auto listed = f.pool.list(all).value();
    REQUIRE(listed.size() == 10);
    for (std::size_t i = 0; i < 10; ++i) CHECK(listed[i].id == jobs[9 - i].id);

    JobFilter page;
    page.limit = 3;
    listed = f.pool.list(page).value();
    REQUIRE(listed.size() == 3);
    CHECK(listed[0].id == jobs[9].id);
    CHECK(listed[2].id == jobs[7].id);
    page.before = listed.back().id;
    listed = f.pool.list(page).value();
    REQUIRE(listed.size() == 3);
    CHECK(listed[0].id == jobs[6].id);

    JobFilter elks;
    elks.limit = 100;
    elks.animal = "elks";
    listed = f.pool.list(elks).value();
    CHECK(listed.size() == 5);
    CHECK(std::all_of(listed.begin(), listed.end(), [](const Job& j) { return j.animal == "elks"; }));

    JobFilter cancelled;
    cancelled.limit = 100;
    cancelled.state = JobState::cancelled;
    listed = f.pool.list(cancelled).value();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == jobs[4].id);
    JobFilter running;
    running.limit = 100;
    running.state = JobState::running;
    CHECK(f.pool.list(running).value().size() == 9);  // the "/jobs?state=running is always empty"

    JobFilter none;
    none.limit = 0;
    CHECK(f.pool.list(none).value().empty());
}

// JobFilter's default limit means "all matches" (domain/job_filter.h):
// SIZE_MAX. SharedLedger::list hands it on as ListQuery::limit, and the
// PostgreSQL driver binds it as a signed 64-bit LIMIT: -1, which the server
// refuses, so the listing fails as if the store did not answer.
TEST_CASE_TEMPLATE("pool list: without a limit every match is listed", R, ALL_RIGS)
{
    R f;
    for (int i = 0; i < 3; ++i) create_ok(f);
    const auto listed = f.pool.list(JobFilter{});
    REQUIRE(listed.has_value());
    CHECK(listed->size() == 3);
}

TEST_CASE_TEMPLATE("pool reconfigure: new animals and words apply to new surveys at once", R, ALL_RIGS)
{
    R f;
    CHECK(f.pool.create("owls").error == CreateError::unknown_animal);
    const auto before = f.pool.rules();
    Rules next = test_rules(200, 300, 7, 1234);
    next.vocabulary = std::make_shared<const Vocabulary>(std::vector<std::string>{"owls"}, std::vector<std::string>{"tiny"},
                                                         std::vector<std::string>{"hoot"}, std::vector<std::string>{"quietly"});
    f.pool.reconfigure(next);
    const auto after = f.pool.rules();
    CHECK(after != before);
    CHECK(after->max_jobs == 7);
    CHECK(after->result_ttl_ms == 1234);
    CHECK(before->vocabulary->has_animal("bisons"));  // the old rules stay intact for their holders

    CHECK(f.pool.create("bisons").error == CreateError::unknown_animal);
    const Job owl = create_ok(f, "owls");
    CHECK(owl.duration_ms >= 200);
    CHECK(owl.duration_ms <= 300);
    REQUIRE(completes(f, owl));
    CHECK(f.pool.find(owl.id).job->result == "Tiny owls hoot quietly");
}

namespace {

storage::JobRecord stored(const JobId& id, RecordState state, Millis created, Millis deadline, Millis started = 0,
                          Millis finished = 0, std::string result = "")
{
    storage::JobRecord r;
    r.id = id.bytes();
    r.animal = "elks";
    r.state = state;
    r.created_ms = created;
    r.started_ms = started;
    r.deadline_ms = deadline;
    r.finished_ms = finished;
    r.duration_ms = static_cast<std::int32_t>(deadline - created);
    r.result = std::move(result);
    return r;
}

}  // namespace

TEST_CASE("pool restore: stored jobs resume where they were <local>")
{
    const Millis now = test::t0;
    const JobId queued = JobId::generate(now - 5000), overdue = JobId::generate(now - 4000),
                running = JobId::generate(now - 3000), done = JobId::generate(now - 2000),
                cancelled = JobId::generate(now - 1500);
    auto disk = std::make_shared<test::MemoryDriver::Disk>();
    for (const auto& r : {stored(queued, RecordState::queued, now - 5000, now + 10'000),  // an older version's
                          stored(overdue, RecordState::running, now - 4000, now - 1, now - 4000),
                          stored(running, RecordState::running, now - 3000, now + 9'000, now - 3000),
                          stored(done, RecordState::done, now - 2000, now - 1000, now - 2000, now - 1000, "Calm elks sing wildly"),
                          stored(cancelled, RecordState::cancelled, now - 1500, now + 9'000, now - 1500, now - 1200)})
        disk->rows[r.id] = r;
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 3, 10'000);
    LocalRig f(o, disk);

    const Job begun = *f.pool.find(queued).job;  // a queued row began at its creation
    CHECK(begun.state == JobState::running);
    CHECK(begun.started_ms == now - 5000);
    CHECK(begun.deadline_ms == now + 10'000);
    REQUIRE(reaches(f.pool, overdue, JobState::done));  // completes at once
    CHECK(f.pool.find(overdue).job->result == survey_sentence(overdue, "elks", *test::small_vocabulary()));
    CHECK(state_of(f.pool, running) == JobState::running);
    CHECK(f.pool.find(done).job->result == "Calm elks sing wildly");
    CHECK(state_of(f.pool, cancelled) == JobState::cancelled);
    CHECK(f.pool.cancel(done) == CancelOutcome::already_done);
    CHECK(f.pool.cancel(cancelled) == CancelOutcome::already_cancelled);

    // Restored unfinished jobs hold max_jobs rooms: 3 allowed, 2 running.
    REQUIRE(stats_reach(f.pool, [](const PoolStats& s) { return s.running == 2; }));
    CHECK(f.pool.create("elks").error == CreateError::none);
    CHECK(f.pool.create("elks").error == CreateError::too_many_jobs);

    // Finished jobs expire a TTL after they finished, not after the restart.
    f.advance(10'000 - 1200);
    REQUIRE(wait_until([&] { return f.pool.find(cancelled).status != LookupStatus::found; }));
    CHECK(f.pool.find(done).status == LookupStatus::found);
    f.advance(200);
    REQUIRE(wait_until([&] { return f.pool.find(done).status != LookupStatus::found; }));
    REQUIRE(wait_until([&] { return !f.row(done) && !f.row(cancelled); }));
    REQUIRE(reaches(f.pool, running, JobState::done));  // at its stored deadline
}

TEST_CASE("pool restore: a cancel and a key survive a restart <local>")
{
    auto disk = std::make_shared<test::MemoryDriver::Disk>();
    JobId cancelled, keyed;
    {
        LocalRig first({}, disk);
        cancelled = create_ok(first).id;
        REQUIRE(first.pool.cancel(cancelled) == CancelOutcome::cancelled);
        keyed = create_ok(first, "elks", IdempotencyKey{"10.0.0.1", "k"}).id;
    }
    LocalRig again({}, disk);
    CHECK(state_of(again.pool, cancelled) == JobState::cancelled);
    const Created replay = again.pool.create("elks", IdempotencyKey{"10.0.0.1", "k"});
    CHECK(replay.replayed);
    REQUIRE(replay.job);
    CHECK(replay.job->id == keyed);
    CHECK(again.pool.stats().running == 1);
}

TEST_CASE("pool restore: more stored surveys than the timer queue holds start without a deadlock <local>")
{
    auto disk = std::make_shared<test::MemoryDriver::Disk>();
    std::vector<JobId> ids;
    for (int i = 0; i < 20; ++i) {
        ids.push_back(JobId::generate(test::t0 - 100 + i));
        const auto r = stored(ids.back(), RecordState::running, test::t0 - 100 + i, test::t0 - 1, test::t0 - 100 + i);
        disk->rows[r.id] = r;
    }
    RigOptions o;
    o.shape = test::test_shape(1, 1);
    LocalRig f(o, disk);  // all overdue: due at once, for one thread and one queue slot
    for (const JobId& id : ids) CHECK(reaches(f.pool, id, JobState::done));
    CHECK(stats_reach(f.pool, [](const PoolStats& s) { return s.completed_total == 20; }));
}

TEST_CASE_TEMPLATE("pool logs: a cancel at info; creation, completion and expiry at debug", R, MEMORY_RIGS)
{
    RigOptions o;
    o.rules = test_rules(10'000, 20'000, 1000, 5'000);
    R f(o);
    std::string at_info, at_debug;
    test::CaptureStderr capture;
    const Job quiet = create_ok(f, "bisons");
    REQUIRE(completes(f, quiet));
    const Job cancelled = create_ok(f, "elks");
    REQUIRE(f.pool.cancel(cancelled.id) == CancelOutcome::cancelled);
    at_info = capture.text();
    CHECK(at_info.find("event=job_cancelled job=" + cancelled.id.str()) != std::string::npos);
    CHECK(at_info.find("job_finished") == std::string::npos);  // one line per survey is debug

    log::set_level(log::Level::debug);
    const Job done = create_ok(f, "koalas");
    REQUIRE(completes(f, done));
    f.advance(5'000);
    // Each line is written after the change it tells of: wait for all of them
    // before the level goes back up.
    REQUIRE(wait_until([&] {
        const std::string text = capture.text();
        for (const char* event : {"job_started", "job_finished", "job_expired"})
            if (text.find(std::string("event=") + event + " job=" + done.id.str()) == std::string::npos) return false;
        return true;
    }));
    log::set_level(log::Level::info);
    at_debug = capture.text().substr(at_info.size());
    for (const char* event : {"job_started", "job_finished", "job_expired"})
        CHECK_MESSAGE(at_debug.find(std::string("event=") + event + " job=" + done.id.str()) != std::string::npos,
                      event << " missing in: " << at_debug);
}

TEST_CASE_TEMPLATE("pool stats: the worker, the backend and whether it is shared", R, ALL_RIGS)
{
    R f;
    const PoolStats s = f.pool.stats();
    CHECK(s.worker == "test-worker");
    CHECK(s.started_ms == f.start_ms);
    CHECK(s.store_healthy);
    CHECK(s.store.has_value());  // the pipeline's figures
    const bool local = std::is_same_v<R, LocalRig>;
    CHECK(s.shared == !local);
    CHECK(s.backend == (local ? "memory" : std::is_same_v<R, SharedRig> ? "memory-shared" : "postgresql"));
}

TEST_CASE_TEMPLATE("pool stress: concurrent create, poll and cancel keep states forward and counts consistent", R, MEMORY_RIGS)
{
    RigOptions o;
    o.shape = test::test_shape(2, 4096);
    o.rules = test_rules(100, 500, 1'000'000, 10'000'000);
    R f(o);
    constexpr int clients = 4, per_client = 200;
    std::atomic<bool> clients_done{false};
    std::atomic<int> created{0}, cancelled{0}, regressions{0}, bad_stats{0};
    std::vector<std::vector<JobId>> ids(clients);
    auto rank = [](JobState s) { return s == JobState::queued ? 0 : s == JobState::running ? 1 : 2; };

    const test::CaptureStderr quiet;  // a line per cancel
    std::thread ticker([&] {  // time moves while clients work; stats stay sane throughout
        while (!clients_done) {
            f.advance(7);
            const PoolStats s = f.pool.stats();
            if (s.queued > clients * per_client || s.running > clients * per_client) ++bad_stats;  // a wrapped gauge
            std::this_thread::sleep_for(200us);
        }
    });
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
            std::mt19937 rng(static_cast<unsigned>(c));
            std::map<JobId, JobState> seen;
            auto& mine = ids[static_cast<std::size_t>(c)];
            for (int i = 0; i < per_client; ++i) {
                const Created made = f.pool.create(i % 2 ? "bisons" : "koalas");
                if (made.job) {
                    ++created;
                    mine.push_back(made.job->id);
                    seen[made.job->id] = JobState::queued;
                }
                if (mine.empty()) continue;
                const JobId pick = mine[rng() % mine.size()];
                const auto found = f.pool.find(pick);
                if (found.status != LookupStatus::found) ++regressions;  // nothing expires here
                else {
                    const JobState now = found.job->state;
                    const JobState was = seen[pick];
                    if (rank(now) < rank(was) || (was == JobState::cancelled && now != was) ||
                        (was == JobState::done && now != was))
                        ++regressions;
                    seen[pick] = now;
                }
                if (rng() % 3 == 0 && f.pool.cancel(pick) == CancelOutcome::cancelled) {
                    ++cancelled;
                    seen[pick] = JobState::cancelled;
                }
            }
        });
    for (auto& t : threads) t.join();
    clients_done = true;
    ticker.join();

    f.advance(1000);  // past every deadline
    REQUIRE(wait_until([&] {
        const PoolStats s = f.pool.stats();
        return s.queued == 0 && s.running == 0 && s.completed_total + s.cancelled_total == s.created_total;
    }, 20'000ms));
    const PoolStats s = f.pool.stats();
    CHECK(regressions == 0);
    CHECK(bad_stats == 0);
    CHECK(created == clients * per_client);
    CHECK(s.created_total == static_cast<std::uint64_t>(created));
    CHECK(s.cancelled_total == static_cast<std::uint64_t>(cancelled));
    CHECK(s.held == static_cast<std::size_t>(created));
    CHECK(s.expired_total == 0);
    std::size_t done = 0, gone = 0;
    for (const auto& list : ids)
        for (const JobId& id : list) {
            const auto found = f.pool.find(id);
            REQUIRE(found.job);
            CHECK(found.job->finished());
            if (found.job->state == JobState::done) ++done;
            else ++gone;
            const auto row = f.row(id);  // the store agrees with memory
            REQUIRE(row);
            CHECK(static_cast<int>(row->state) == static_cast<int>(found.job->state));
        }
    CHECK(done == s.completed_total);
    CHECK(gone == s.cancelled_total);
}
