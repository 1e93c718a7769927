// JobPool: creation, lookup, cancellation, timer-driven completion, expiry,
// reconfiguration, stats, shutdown, back-pressure, persistence through the
// JobStore interface and restore at start. Time is a ManualClock moved by the
// test; after moving it the test calls wake() and then polls (bounded) for the
// change, never asserting after a fixed sleep.

#include "domain/job_pool.h"
#include "util/log.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../support/capture_stderr.h"
#include "../support/memory_job_store.h"
#include "../support/pool_fixture.h"
#include "../support/wait.h"

using namespace zk;
using test::MemoryJobStore;
using test::t0;
using test::test_rules;
using test::test_shape;
using test::wait_until;
using storage::RecordState;

namespace {

JobState state_of(JobPool& pool, const JobId& id)
{
    auto found = pool.find(id);
    REQUIRE(found.status == LookupStatus::found);
    return found.job->state;
}

// True once no pool task is queued or running. Tasks update the table first
// and the counters and timers after, so a test that saw a task's change in
// the table waits for this before reading stats.
bool idle(const JobPool& pool)
{
    return wait_until([&] {
        const PoolStats s = pool.stats();
        return s.pool_busy == 0 && s.pool_queue_depth == 0;
    });
}

bool reaches(JobPool& pool, const JobId& id, JobState state)
{
    return wait_until([&] {
        auto f = pool.find(id);
        return f.job && f.job->state == state;
    }) && idle(pool);
}

bool expires(JobPool& pool, const JobId& id)
{
    return wait_until([&] { return pool.find(id).status == LookupStatus::expired; }) && idle(pool);
}

// Moves time to the job's deadline and waits for the completion.
bool complete(JobPool& pool, ManualClock& clock, const Job& job)
{
    clock.advance(std::max<Millis>(0, job.deadline_ms - clock.now_ms()));
    pool.wake();
    return reaches(pool, job.id, JobState::done);
}

storage::JobRecord record(const JobId& id, RecordState state, Millis created, Millis deadline, Millis started = 0,
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

std::vector<RecordState> put_states(const std::vector<MemoryJobStore::Write>& writes)
{
    std::vector<RecordState> out;
    for (const auto& w : writes)
        if (!w.erase) out.push_back(w.state);
    return out;
}

}  // namespace

TEST_CASE("create: an unknown animal is refused and nothing is held")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    for (const char* name : {"owls", "Bisons", "bisons ", ""}) {
        CAPTURE(name);
        const Created c = pool.create(name);
        CHECK(c.error == CreateError::unknown_animal);
        CHECK_FALSE(c.job.has_value());
    }
    const PoolStats s = pool.stats();
    CHECK(s.created_total == 0);
    CHECK(s.held == 0);
}

TEST_CASE("create: a new job is stored queued, then begun by its creator with its planned duration")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules(10'000, 20'000));
    pool.start();
    const Created c = pool.create("bisons");
    REQUIRE(c.error == CreateError::none);
    REQUIRE(c.job);
    const Job& j = *c.job;
    CHECK(j.animal == "bisons");
    CHECK(j.state == JobState::running);  // the snapshot create answers
    CHECK(j.created_ms == t0);
    CHECK(j.started_ms == t0);
    CHECK(j.id.created_ms() == t0);
    CHECK(j.duration_ms == survey_duration(j.id, Workload{10'000, 20'000}));
    CHECK(j.deadline_ms == t0 + j.duration_ms);
    CHECK(j.finished_ms == 0);
    CHECK(j.result.empty());
    // One row write, queued, waited for; the start is not written (see begin()).
    CHECK(put_states(store.writes_for(j.id.bytes())) == std::vector<RecordState>{RecordState::queued});
    CHECK(store.max_waited() == store.writes_for(j.id.bytes()).back().seq);

    const Job held = *pool.find(j.id).job;
    CHECK(held.state == JobState::running);
    CHECK(held.started_ms == t0);
    CHECK(held.deadline_ms == j.deadline_ms);
    const PoolStats s = pool.stats();
    CHECK(s.running == 1);
    CHECK(s.queued == 0);
    CHECK(s.timers == 1);  // its completion
}

TEST_CASE("completion: nothing before the deadline, the sentence at it")
{
    ManualClock clock(t0);
    const Rules rules = test_rules();
    JobPool pool(clock, nullptr, test_shape(), rules);
    pool.start();
    const Job j = *pool.create("koalas").job;
    REQUIRE(reaches(pool, j.id, JobState::running));

    clock.advance(j.duration_ms - 1);
    pool.wake();
    // The timer thread looks at the clock every 5 ms: give it several looks.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(state_of(pool, j.id) == JobState::running);

    clock.advance(1);
    pool.wake();
    REQUIRE(reaches(pool, j.id, JobState::done));
    const Job done = *pool.find(j.id).job;
    CHECK(done.result == survey_sentence(j.id, "koalas", *rules.vocabulary));
    CHECK(done.finished_ms == j.deadline_ms);
    CHECK(done.progress(clock.now_ms()) == doctest::Approx(1.0));
    const PoolStats s = pool.stats();
    CHECK(s.completed_total == 1);
    CHECK(s.running == 0);
    CHECK(s.queued == 0);
    CHECK(s.held == 1);
    CHECK(s.survey_seconds.cumulative.back() == 1);
    CHECK(s.survey_seconds.sum == doctest::Approx(j.duration_ms / 1000.0));
    CHECK(s.completion_lag_seconds.cumulative.back() == 1);
}

TEST_CASE("a job whose deadline passed long ago completes at once")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    const Job j = *pool.create("elks").job;
    REQUIRE(reaches(pool, j.id, JobState::running));
    clock.advance(10 * 60'000);
    pool.wake();
    CHECK(reaches(pool, j.id, JobState::done));
}

TEST_CASE("wake() makes the timer thread look at the clock even with a long timer wait")
{
    ManualClock clock(t0);
    PoolShape shape = test_shape();
    shape.timer_max_wait_ms = 3'600'000;  // only wake() can make it look
    JobPool pool(clock, nullptr, shape, test_rules());
    pool.start();
    for (int round = 0; round < 20; ++round) {
        const Job j = *pool.create("elks").job;
        REQUIRE(reaches(pool, j.id, JobState::running));
        clock.advance(j.duration_ms);
        pool.wake();
        CHECK(reaches(pool, j.id, JobState::done));
    }
}

TEST_CASE("max_jobs counts queued and running surveys")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules(10'000, 20'000, 2));
    pool.start();
    const Job a = *pool.create("bisons").job;
    const Job b = *pool.create("elks").job;
    const Created c = pool.create("koalas");
    CHECK(c.error == CreateError::too_many_jobs);
    CHECK_FALSE(c.job);
    CHECK(pool.stats().created_total == 2);

    // A completion frees a slot; finished jobs do not count.
    REQUIRE(reaches(pool, a.id, JobState::running));
    REQUIRE(complete(pool, clock, a));
    const bool b_done = b.deadline_ms <= a.deadline_ms;  // then the same clock move completed it
    if (b_done) REQUIRE(reaches(pool, b.id, JobState::done));
    const Created d = pool.create("koalas");
    REQUIRE(d.error == CreateError::none);
    if (b_done) REQUIRE(pool.create("koalas").error == CreateError::none);
    CHECK(pool.create("koalas").error == CreateError::too_many_jobs);

    // So does a cancellation.
    REQUIRE(pool.cancel(d.job->id) == CancelOutcome::cancelled);
    CHECK(pool.create("koalas").error == CreateError::none);
    CHECK(pool.create("koalas").error == CreateError::too_many_jobs);
}

TEST_CASE("cancel: running → cancelled; twice → already_cancelled; the deadline then does nothing")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    const Job j = *pool.create("bisons").job;
    REQUIRE(reaches(pool, j.id, JobState::running));
    clock.advance(3000);
    CHECK(pool.cancel(j.id) == CancelOutcome::cancelled);
    const Job c = *pool.find(j.id).job;
    CHECK(c.state == JobState::cancelled);
    CHECK(c.finished_ms == t0 + 3000);
    CHECK(c.result.empty());
    CHECK(pool.cancel(j.id) == CancelOutcome::already_cancelled);

    clock.advance(j.duration_ms);
    pool.wake();
    // The completion timer fires (one timer left: the expiry) and finds the job cancelled.
    REQUIRE(wait_until([&] {
        const PoolStats s = pool.stats();
        return s.timers == 1 && s.pool_busy == 0 && s.pool_queue_depth == 0;
    }));
    CHECK(state_of(pool, j.id) == JobState::cancelled);
    const PoolStats s = pool.stats();
    CHECK(s.completed_total == 0);
    CHECK(s.cancelled_total == 1);
    CHECK(s.running == 0);
    CHECK(s.queued == 0);
}

TEST_CASE("cancel: done → already_done, unknown → unknown")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    const Job j = *pool.create("bisons").job;
    REQUIRE(reaches(pool, j.id, JobState::running));
    REQUIRE(complete(pool, clock, j));
    CHECK(pool.cancel(j.id) == CancelOutcome::already_done);
    CHECK(state_of(pool, j.id) == JobState::done);
    CHECK(pool.cancel(JobId::generate(clock.now_ms())) == CancelOutcome::unknown);
    CHECK(pool.stats().cancelled_total == 0);
}

TEST_CASE("cancel: a job still queued (its creation not yet durable) is cancelled and never begins")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules());
    pool.start();
    store.hold_durability();  // the creator parks in wait_durable; this thread does not
    Created created;
    std::thread creator([&] { created = pool.create("bisons"); });
    REQUIRE(wait_until([&] { return store.held() == 1; }));
    JobFilter queued;
    queued.state = JobState::queued;
    const std::vector<Job> jobs = pool.list(queued).value();
    REQUIRE(jobs.size() == 1);
    CHECK(pool.stats().queued == 1);
    CHECK(pool.cancel(jobs[0].id) == CancelOutcome::cancelled);
    CHECK(pool.stats().queued == 0);
    store.release_durability();
    creator.join();
    REQUIRE(created.error == CreateError::none);  // its row was stored before the cancel's
    CHECK(created.job->state == JobState::queued);  // never begun
    const Job c = *pool.find(jobs[0].id).job;
    CHECK(c.state == JobState::cancelled);
    CHECK(c.started_ms == 0);
    const PoolStats s = pool.stats();
    CHECK(s.queued == 0);
    CHECK(s.running == 0);
    CHECK(s.cancelled_total == 1);
    CHECK(s.timers == 1);  // its expiry; no completion was armed
    CHECK(put_states(store.writes_for(c.id.bytes())) ==
          std::vector<RecordState>{RecordState::queued, RecordState::cancelled});
}

// Regression: create() put the job in the table, then queued its first write
// outside the shard lock. A cancel in that gap queued its cancelled row first;
// the creation's queued row followed and won (the store keeps each id's last
// write), so after a restart the survey ran again although the cancel had
// been answered. The creator is parked between the two here.
TEST_CASE("a cancel racing a creation's first write stays cancelled after a restart")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    auto pool = std::make_unique<JobPool>(clock, &store, test_shape(), test_rules());
    pool->start();
    store.park_next_put(RecordState::queued);
    Created created;
    std::thread creator([&] { created = pool->create("bisons"); });
    REQUIRE(wait_until([&] { return store.parked() == 1; }));
    const JobId id(store.parked_id());
    std::atomic<bool> answered{false};
    CancelOutcome outcome = CancelOutcome::unknown;
    std::thread canceller([&] {
        outcome = pool->cancel(id);
        answered = true;
    });
    // The buggy order lets the cancel finish now; the fixed one holds it on
    // the shard lock until the creation's write is queued, and this times out.
    wait_until([&] { return answered.load(); }, std::chrono::milliseconds(200));
    store.release_puts();
    creator.join();
    canceller.join();
    REQUIRE(created.error == CreateError::none);
    REQUIRE(outcome == CancelOutcome::cancelled);
    CHECK(put_states(store.writes_for(id.bytes())).back() == RecordState::cancelled);
    pool.reset();  // a restart on the same store
    JobPool restarted(clock, &store, test_shape(), test_rules());
    restarted.start();
    CHECK(state_of(restarted, id) == JobState::cancelled);
}

TEST_CASE("a full pool queue makes the timer wait: every due completion still runs")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(1, 1), test_rules(1'000, 2'000));
    pool.start();
    std::vector<Job> jobs;
    for (int i = 0; i < 50; ++i) jobs.push_back(*pool.create("elks").job);
    clock.advance(2'000);  // all 50 due at once, for one thread and one queue slot
    pool.wake();
    for (const Job& j : jobs) CHECK(reaches(pool, j.id, JobState::done));
    const PoolStats s = pool.stats();
    CHECK(s.completed_total == 50);
    CHECK(s.running == 0);
}

TEST_CASE("expiry: a finished job is forgotten after result_ttl and then reads as expired")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules(10'000, 20'000, 1000, 5'000));
    pool.start();
    const Job done = *pool.create("bisons").job;
    const Job cancelled = *pool.create("elks").job;
    REQUIRE(reaches(pool, done.id, JobState::running));
    REQUIRE(pool.cancel(cancelled.id) == CancelOutcome::cancelled);
    REQUIRE(complete(pool, clock, done));

    clock.advance(4'999);  // the cancelled one's TTL ran out; done's has 1 ms left
    pool.wake();
    REQUIRE(expires(pool, cancelled.id));
    CHECK(pool.find(done.id).status == LookupStatus::found);

    clock.advance(1);
    pool.wake();
    REQUIRE(expires(pool, done.id));
    const PoolStats s = pool.stats();
    CHECK(s.expired_total == 2);
    CHECK(s.held == 0);
    CHECK(pool.cancel(done.id) == CancelOutcome::unknown);
    // Only the cancelled job's lazily-ignored completion timer may be left.
    CHECK(s.timers <= 1);
    clock.advance(20'000);
    pool.wake();
    CHECK(wait_until([&] { return pool.stats().timers == 0; }));
    CHECK(pool.stats().completed_total == 1);
}

TEST_CASE("find: ids never held read as expired only when older than the TTL")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules(10'000, 20'000, 1000, 5'000));
    pool.start();
    CHECK(pool.find(JobId::generate(t0)).status == LookupStatus::unknown);
    CHECK(pool.find(JobId::generate(t0 - 5'000)).status == LookupStatus::unknown);  // exactly the TTL
    CHECK(pool.find(JobId::generate(t0 - 5'001)).status == LookupStatus::expired);
    CHECK(pool.find(JobId::generate(t0 + 60'000)).status == LookupStatus::unknown);  // from the future
    CHECK_FALSE(pool.find(JobId::generate(t0 - 5'001)).job.has_value());
    // Not a v7 id: no creation time, so never "expired".
    CHECK(pool.find(*JobId::parse("123e4567-e89b-42d3-a456-426614174000")).status == LookupStatus::unknown);
    CHECK(pool.find(JobId{}).status == LookupStatus::unknown);
}

TEST_CASE("reconfigure: new animals and words apply to new surveys at once")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    CHECK(pool.create("owls").error == CreateError::unknown_animal);
    const auto before = pool.rules();

    Rules next = test_rules(200, 300, 7, 1234);
    next.vocabulary = std::make_shared<const Vocabulary>(std::vector<std::string>{"owls"}, std::vector<std::string>{"tiny"},
                                                         std::vector<std::string>{"hoot"}, std::vector<std::string>{"quietly"});
    pool.reconfigure(next);
    const auto after = pool.rules();
    CHECK(after != before);
    CHECK(after->max_jobs == 7);
    CHECK(after->result_ttl_ms == 1234);
    CHECK(before->vocabulary->has_animal("bisons"));  // the old rules stay intact for their holders

    CHECK(pool.create("bisons").error == CreateError::unknown_animal);
    const Created c = pool.create("owls");
    REQUIRE(c.error == CreateError::none);
    CHECK(c.job->duration_ms >= 200);
    CHECK(c.job->duration_ms <= 300);
    REQUIRE(reaches(pool, c.job->id, JobState::running));
    REQUIRE(complete(pool, clock, *c.job));
    CHECK(pool.find(c.job->id).job->result == "Tiny owls hoot quietly");
}

TEST_CASE("stats count every transition")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(3, 64), test_rules(10'000, 20'000, 1000, 30'000));
    pool.start();
    std::vector<Job> jobs;
    for (int i = 0; i < 6; ++i) jobs.push_back(*pool.create("bisons").job);
    for (const Job& j : jobs) REQUIRE(reaches(pool, j.id, JobState::running));
    PoolStats s = pool.stats();
    CHECK(s.created_total == 6);
    CHECK(s.running == 6);
    CHECK(s.queued == 0);
    CHECK(s.held == 6);
    CHECK(s.timers == 6);  // one completion timer each
    CHECK(s.pool_threads == 3);
    CHECK(s.store_healthy);

    REQUIRE(pool.cancel(jobs[0].id) == CancelOutcome::cancelled);
    REQUIRE(pool.cancel(jobs[1].id) == CancelOutcome::cancelled);
    clock.advance(20'000);
    pool.wake();
    for (std::size_t i = 2; i < jobs.size(); ++i) REQUIRE(reaches(pool, jobs[i].id, JobState::done));
    s = pool.stats();
    CHECK(s.completed_total == 4);
    CHECK(s.cancelled_total == 2);
    CHECK(s.running == 0);
    CHECK(s.expired_total == 0);  // the first TTL ends at t0 + 30 s
    CHECK(s.timers == 6);         // six expiry timers

    clock.advance(30'000);  // every TTL has run out
    pool.wake();
    REQUIRE(wait_until([&] { return pool.stats().held == 0; }));
    REQUIRE(idle(pool));
    s = pool.stats();
    CHECK(s.expired_total == 6);
    CHECK(s.created_total == 6);
    CHECK(s.timers == 0);
}

TEST_CASE("list: newest first, filtered, paged with before")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    std::vector<Job> jobs;
    for (int i = 0; i < 10; ++i) {
        jobs.push_back(*pool.create(i % 2 ? "elks" : "bisons").job);
        clock.advance(1);
    }
    for (const Job& j : jobs) REQUIRE(reaches(pool, j.id, JobState::running));
    REQUIRE(pool.cancel(jobs[4].id) == CancelOutcome::cancelled);

    JobFilter all;
    auto listed = pool.list(all).value();
    REQUIRE(listed.size() == 10);
    for (std::size_t i = 0; i < 10; ++i) CHECK(listed[i].id == jobs[9 - i].id);

    JobFilter page;
    page.limit = 3;
    listed = pool.list(page).value();
    REQUIRE(listed.size() == 3);
    CHECK(listed[0].id == jobs[9].id);
    CHECK(listed[2].id == jobs[7].id);
    page.before = listed.back().id;
    listed = pool.list(page).value();
    REQUIRE(listed.size() == 3);
    CHECK(listed[0].id == jobs[6].id);

    JobFilter elks;
    elks.animal = "elks";
    listed = pool.list(elks).value();
    CHECK(listed.size() == 5);
    CHECK(std::all_of(listed.begin(), listed.end(), [](const Job& j) { return j.animal == "elks"; }));

    JobFilter cancelled;
    cancelled.state = JobState::cancelled;
    listed = pool.list(cancelled).value();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == jobs[4].id);

    JobFilter none;
    none.limit = 0;
    CHECK(pool.list(none).value().empty());
}

TEST_CASE("stop is idempotent; afterwards creation answers stopping")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    const Job j = *pool.create("bisons").job;
    pool.stop();
    pool.stop();
    const Created c = pool.create("bisons");
    CHECK(c.error == CreateError::stopping);
    CHECK_FALSE(c.job);
    // Lookups and cancels still answer from memory.
    CHECK(pool.find(j.id).status == LookupStatus::found);
    CHECK(pool.cancel(j.id) == CancelOutcome::cancelled);
}

TEST_CASE("a pool never started stops cleanly")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.stop();
    CHECK(pool.create("bisons").error == CreateError::stopping);
}

TEST_CASE("persistence: every transition is written through the store, in order")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules(10'000, 20'000, 1000, 5'000));
    pool.start();
    const Job done = *pool.create("bisons").job;
    const Job cancelled = *pool.create("elks").job;
    // Creation is durable before it is acknowledged.
    CHECK(store.max_waited() >= store.writes_for(cancelled.id.bytes()).front().seq);
    REQUIRE(reaches(pool, done.id, JobState::running));
    REQUIRE(reaches(pool, cancelled.id, JobState::running));
    const auto waited_before_cancel = store.max_waited();
    REQUIRE(pool.cancel(cancelled.id) == CancelOutcome::cancelled);
    CHECK(store.max_waited() > waited_before_cancel);  // and so is cancellation
    REQUIRE(complete(pool, clock, done));

    auto rec = store.record(done.id.bytes());
    REQUIRE(rec);
    CHECK(rec->state == RecordState::done);
    CHECK(rec->result == pool.find(done.id).job->result);
    CHECK(rec->started_ms == t0);
    CHECK(rec->finished_ms == done.deadline_ms);
    CHECK(rec->deadline_ms == done.deadline_ms);
    CHECK(rec->duration_ms == done.duration_ms);
    CHECK(rec->animal == "bisons");

    clock.advance(5'000);
    pool.wake();
    REQUIRE(wait_until([&] { return pool.stats().held == 0; }));
    REQUIRE(idle(pool));
    for (const Job* j : {&done, &cancelled}) {
        const auto writes = store.writes_for(j->id.bytes());
        // Beginning is not written (the queued row holds the deadline already).
        REQUIRE(writes.size() == 3);
        const RecordState last = j == &done ? RecordState::done : RecordState::cancelled;
        CHECK(put_states(writes) == std::vector<RecordState>{RecordState::queued, last});
        CHECK(writes.back().erase);
        CHECK(std::is_sorted(writes.begin(), writes.end(), [](auto& a, auto& b) { return a.seq < b.seq; }));
    }
    CHECK(store.size() == 0);
}

TEST_CASE("persistence: a creation that cannot be made durable is refused and forgotten")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules(10'000, 20'000, 1));
    pool.start();
    store.set_durable(false);
    const Created c = pool.create("bisons");
    CHECK(c.error == CreateError::store_failed);
    CHECK_FALSE(c.job);
    const PoolStats s = pool.stats();
    CHECK(s.held == 0);  // nothing runs under an id the client never got
    CHECK(s.queued == 0);
    CHECK(s.created_total == 0);
    CHECK(store.size() == 0);  // its record was erased again
    store.set_durable(true);
    CHECK(pool.create("bisons").error == CreateError::none);  // and its max_jobs slot is free
}

TEST_CASE("persistence: an unhealthy store refuses creation up front; a failed cancel says so")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules());
    pool.start();
    const Job j = *pool.create("bisons").job;
    REQUIRE(reaches(pool, j.id, JobState::running));
    store.set_healthy(false);
    CHECK_FALSE(pool.stats().store_healthy);
    CHECK(pool.create("bisons").error == CreateError::store_failed);
    CHECK(store.size() == 1);
    store.set_durable(false);
    CHECK(pool.cancel(j.id) == CancelOutcome::store_failed);
}

TEST_CASE("restore: stored jobs resume where they were")
{
    // Written by an earlier run that stopped at t0 - 1000.
    const Millis now = t0;
    const JobId queued = JobId::generate(now - 5000), overdue = JobId::generate(now - 4000),
                running = JobId::generate(now - 3000), done = JobId::generate(now - 2000),
                cancelled = JobId::generate(now - 1500);
    MemoryJobStore store;
    store.seed(record(queued, RecordState::queued, now - 5000, now + 10'000));
    store.seed(record(overdue, RecordState::running, now - 4000, now - 1, now - 4000));
    store.seed(record(running, RecordState::running, now - 3000, now + 9'000, now - 3000));
    store.seed(record(done, RecordState::done, now - 2000, now - 1000, now - 2000, now - 1000, "Calm elks sing wildly"));
    store.seed(record(cancelled, RecordState::cancelled, now - 1500, now + 9'000, now - 1500, now - 1200));

    ManualClock clock(now);
    const Rules rules = test_rules(10'000, 20'000, 3, 10'000);
    JobPool pool(clock, &store, test_shape(), rules);
    pool.start();

    // queued → begun now; overdue → completes at once; running keeps its deadline.
    REQUIRE(reaches(pool, queued, JobState::running));
    CHECK(pool.find(queued).job->started_ms == now);
    CHECK(pool.find(queued).job->deadline_ms == now + 10'000);
    REQUIRE(reaches(pool, overdue, JobState::done));
    CHECK(pool.find(overdue).job->result == survey_sentence(overdue, "elks", *rules.vocabulary));
    CHECK(state_of(pool, running) == JobState::running);
    // Finished jobs are kept as they were.
    CHECK(pool.find(done).job->result == "Calm elks sing wildly");
    CHECK(state_of(pool, cancelled) == JobState::cancelled);
    CHECK(pool.cancel(done) == CancelOutcome::already_done);
    CHECK(pool.cancel(cancelled) == CancelOutcome::already_cancelled);

    // Restored unfinished jobs hold max_jobs slots: 3 allowed, 2 in flight.
    CHECK(pool.create("elks").error == CreateError::none);
    CHECK(pool.create("elks").error == CreateError::too_many_jobs);

    // Finished jobs expire TTL after they finished, not after the restart.
    clock.advance(10'000 - 1200);  // the cancelled one's TTL is over
    pool.wake();
    REQUIRE(expires(pool, cancelled));
    CHECK(pool.find(done).status == LookupStatus::found);
    clock.advance(200);  // and the done one's
    pool.wake();
    REQUIRE(expires(pool, done));
    CHECK_FALSE(store.record(done.bytes()).has_value());
    CHECK_FALSE(store.record(cancelled.bytes()).has_value());
    // The earlier run's running job completes at its stored deadline.
    REQUIRE(reaches(pool, running, JobState::done));
}

// Regression: restore() held the timer mutex while handing queued jobs to the
// workers with the blocking submit(); the workers' begin() needs that mutex
// (arm()), so more queued jobs than threads + queue slots deadlocked start().
TEST_CASE("restore deadlock: more queued jobs than the worker queue holds")
{
    auto store = std::make_unique<MemoryJobStore>();
    std::vector<JobId> ids;
    for (int i = 0; i < 20; ++i) {
        ids.push_back(JobId::generate(t0 - 100 + i));
        store->seed(record(ids.back(), RecordState::queued, t0 - 100 + i, t0 + 10'000));
    }
    auto clock = std::make_unique<ManualClock>(t0);
    auto pool = std::make_unique<JobPool>(*clock, store.get(), test_shape(1, 1), test_rules());
    std::atomic<bool> started{false};
    std::thread starter([&] {
        pool->start();
        started = true;
    });
    if (!wait_until([&] { return started.load(); }, std::chrono::milliseconds(5000))) {
        FAIL_CHECK("JobPool::start() deadlocked restoring 20 queued jobs with 1 thread and 1 queue slot");
        starter.detach();  // leaked on purpose: the pool cannot be stopped
        (void)pool.release();
        (void)store.release();
        (void)clock.release();
        return;
    }
    starter.join();
    for (const JobId& id : ids) CHECK(reaches(*pool, id, JobState::running));
}

// A store whose put() throws (the SQLite store: only std::bad_alloc) on a pool
// thread: ThreadPool logs the task's exception, and the pool keeps working.
TEST_CASE("a store exception on a pool thread is logged and the pool keeps working")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(1, 16), test_rules());
    pool.start();
    store.set_throw_on_put(true, RecordState::done);  // complete()'s write, on the worker
    const Job first = *pool.create("bisons").job;
    REQUIRE(reaches(pool, first.id, JobState::running));
    std::string logged;
    {
        test::CaptureStderr capture;
        clock.advance(first.deadline_ms - clock.now_ms());
        pool.wake();
        REQUIRE(wait_until([&] { return capture.text().find("task_failed") != std::string::npos; }));
        REQUIRE(idle(pool));
        logged = capture.text();
    }
    CHECK(logged.find("event=task_failed what=\"memory store: put refused\"") != std::string::npos);
    // The failed write left the job as it was, not done in memory only.
    CHECK(pool.find(first.id).job->state == JobState::running);
    store.set_throw_on_put(false);
    const Job next = *pool.create("elks").job;
    REQUIRE(reaches(pool, next.id, JobState::running));
    CHECK(complete(pool, clock, next));
}

// Regression: create() recorded the job (table, counters) before persisting
// it; a put() that threw left a queued job that never began and a max_jobs
// slot that was never given back.
TEST_CASE("a store exception during create leaves nothing behind")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules(10'000, 20'000, 1));
    pool.start();
    store.set_throw_on_put(true);
    CHECK_THROWS_AS(pool.create("bisons"), std::runtime_error);
    const PoolStats s = pool.stats();
    CHECK(s.held == 0);
    CHECK(s.queued == 0);
    CHECK(s.created_total == 0);
    store.set_throw_on_put(false);
    CHECK(pool.create("bisons").error == CreateError::none);  // the one slot is free
}

TEST_CASE("concurrent create, poll and cancel keep the counts consistent")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(2, 4096), test_rules(100, 500, 1'000'000, 10'000'000));
    pool.start();

    constexpr int clients = 4, per_client = 300;
    std::atomic<bool> clients_done{false};
    std::atomic<int> created{0}, cancelled{0}, regressions{0};
    std::vector<std::vector<JobId>> ids(clients);
    auto rank = [](JobState s) { return s == JobState::queued ? 0 : s == JobState::running ? 1 : 2; };

    std::atomic<int> bad_stats{0};
    std::thread ticker([&] {  // time moves while clients work; stats stay sane throughout
        while (!clients_done) {
            clock.advance(7);
            pool.wake();
            const PoolStats s = pool.stats();
            if (s.queued > clients * per_client || s.running > clients * per_client) ++bad_stats;  // a wrapped counter
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    });
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
            std::mt19937 rng(static_cast<unsigned>(c));
            std::map<JobId, JobState> seen;
            auto& mine = ids[static_cast<std::size_t>(c)];
            for (int i = 0; i < per_client; ++i) {
                const Created made = pool.create(i % 2 ? "bisons" : "koalas");
                if (made.job) {
                    ++created;
                    mine.push_back(made.job->id);
                    seen[made.job->id] = JobState::queued;
                }
                if (mine.empty()) continue;
                const JobId pick = mine[rng() % mine.size()];
                const auto found = pool.find(pick);
                if (found.status != LookupStatus::found) ++regressions;  // nothing expires here
                else {
                    const JobState now = found.job->state;
                    const JobState was = seen[pick];
                    // States only move forward; cancelled and done are final.
                    if (rank(now) < rank(was) || (was == JobState::cancelled && now != was) ||
                        (was == JobState::done && now != was))
                        ++regressions;
                    seen[pick] = now;
                }
                if (rng() % 3 == 0 && pool.cancel(pick) == CancelOutcome::cancelled) {
                    ++cancelled;
                    seen[pick] = JobState::cancelled;
                }
            }
        });
    for (auto& t : threads) t.join();
    clients_done = true;
    ticker.join();

    clock.advance(1000);  // past every deadline
    pool.wake();
    REQUIRE(wait_until([&] {
        const PoolStats s = pool.stats();
        return s.queued == 0 && s.running == 0;
    }, std::chrono::milliseconds(20'000)));
    REQUIRE(idle(pool));

    const PoolStats s = pool.stats();
    CHECK(regressions == 0);
    CHECK(bad_stats == 0);
    CHECK(created == clients * per_client);
    CHECK(s.created_total == static_cast<std::uint64_t>(created));
    CHECK(s.cancelled_total == static_cast<std::uint64_t>(cancelled));
    CHECK(s.completed_total + s.cancelled_total == s.created_total);
    CHECK(s.held == static_cast<std::size_t>(created));
    CHECK(s.expired_total == 0);
    std::size_t done = 0, gone = 0;
    for (const auto& list : ids)
        for (const JobId& id : list) {
            const auto f = pool.find(id);
            REQUIRE(f.job);
            CHECK(f.job->finished());
            if (f.job->state == JobState::done) ++done;
            else ++gone;
            const auto rec = store.record(id.bytes());  // the store agrees with memory
            REQUIRE(rec);
            CHECK(static_cast<int>(rec->state) == static_cast<int>(f.job->state));
        }
    CHECK(done == s.completed_total);
    CHECK(gone == s.cancelled_total);
}

TEST_CASE("lifecycle: each step is logged with the job id (cancel at info, the rest at debug)")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules());
    pool.start();
    std::string at_info, at_debug;
    {
        test::CaptureStderr capture;
        const Job quiet = *pool.create("bisons").job;
        REQUIRE(complete(pool, clock, quiet));
        const Job cancelled = *pool.create("elks").job;
        REQUIRE(pool.cancel(cancelled.id) == CancelOutcome::cancelled);
        at_info = capture.text();
        CHECK(at_info.find("event=job_cancelled job=" + cancelled.id.str() + " stored=yes") != std::string::npos);
        CHECK(at_info.find("job_completed") == std::string::npos);  // one line per survey is debug

        log::set_level(log::Level::debug);
        const Job done = *pool.create("koalas").job;
        REQUIRE(complete(pool, clock, done));
        clock.advance(test_rules().result_ttl_ms);
        pool.wake();
        REQUIRE(wait_until([&] { return pool.find(done.id).status == LookupStatus::expired; }));
        REQUIRE(idle(pool));
        log::set_level(log::Level::info);
        at_debug = capture.text().substr(at_info.size());
        for (const char* event : {"job_started", "job_completed", "job_expired"})
            CHECK_MESSAGE(at_debug.find(std::string("event=") + event + " job=" + done.id.str()) != std::string::npos,
                          event << " missing in: " << at_debug);
    }
}

TEST_CASE("watch (waiting polls): fires once at completion, not before; at once for a finished job")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    const Job j = *pool.create("koalas").job;
    std::atomic<int> fired{0};
    JobState seen = JobState::queued;
    const auto token = pool.watch(j.id, [&] {
        seen = pool.find(j.id).job->state;  // outside the pool's locks: it may look
        ++fired;
    });
    REQUIRE(token);
    CHECK(pool.watching() == 1);
    clock.advance(j.duration_ms - 1);
    pool.wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    CHECK(fired == 0);
    clock.advance(1);
    pool.wake();
    REQUIRE(wait_until([&] { return fired == 1; }));
    CHECK(seen == JobState::done);
    CHECK(pool.watching() == 0);
    CHECK_FALSE(pool.unwatch(*token));

    int late = 0;
    REQUIRE(pool.watch(j.id, [&] { ++late; }));  // already done: on this thread, now
    CHECK(late == 1);
}

TEST_CASE("watch (waiting polls): a cancel fires it; unwatch stops it; max_waiters bounds it")
{
    ManualClock clock(t0);
    PoolShape shape = test_shape();
    shape.max_waiters = 2;
    JobPool pool(clock, nullptr, shape, test_rules());
    pool.start();
    const Job j = *pool.create("elks").job;
    int cancelled = 0, removed = 0;
    REQUIRE(pool.watch(j.id, [&] { ++cancelled; }));
    const auto token = pool.watch(j.id, [&] { ++removed; });
    REQUIRE(token);
    CHECK_FALSE(pool.watch(j.id, [] {}));  // full
    CHECK(pool.unwatch(*token));
    CHECK(pool.cancel(j.id) == CancelOutcome::cancelled);
    CHECK(cancelled == 1);
    CHECK(removed == 0);
    int unknown = 0;
    REQUIRE(pool.watch(JobId::generate(t0), [&] { ++unknown; }));  // nothing to wait for
    CHECK(unknown == 1);
}

// --- Idempotency-Key (memory is the truth: no store, or SQLite) ------------

TEST_CASE("idempotency: a repeat with the same key and animal answers the first job, marked replayed")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    const IdempotencyKey key{"10.0.0.1", "k1"};
    const Created first = pool.create("elks", key);
    REQUIRE(first.job);
    CHECK_FALSE(first.replayed);
    const Created again = pool.create("elks", key);
    REQUIRE(again.job);
    CHECK(again.replayed);
    CHECK(again.job->id == first.job->id);
    CHECK(pool.stats().created_total == 1);
    CHECK(pool.stats().held == 1);
    // Without a key, or in another scope, every call is a new survey.
    CHECK(pool.create("elks").job->id != first.job->id);
    const Created other = pool.create("elks", IdempotencyKey{"10.0.0.2", "k1"});
    CHECK_FALSE(other.replayed);
    CHECK(other.job->id != first.job->id);
}

TEST_CASE("idempotency: the same key with another animal is key_reused, even an unknown animal")
{
    ManualClock clock(t0);
    JobPool pool(clock, nullptr, test_shape(), test_rules());
    pool.start();
    const IdempotencyKey key{"", "k"};
    REQUIRE(pool.create("elks", key).job);
    CHECK(pool.create("bisons", key).error == CreateError::key_reused);
    CHECK(pool.create("gnus", key).error == CreateError::key_reused);
    CHECK(pool.stats().created_total == 1);
}

TEST_CASE("idempotency: a replay is answered at max_jobs; a refused creation frees its key")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules(10'000, 20'000, 1));
    pool.start();
    const Created first = pool.create("elks", IdempotencyKey{"", "a"});
    REQUIRE(first.job);
    CHECK(pool.create("elks", IdempotencyKey{"", "a"}).replayed);             // at the limit: still answered
    CHECK(pool.create("elks", IdempotencyKey{"", "b"}).error == CreateError::too_many_jobs);
    REQUIRE(pool.cancel(first.job->id) == CancelOutcome::cancelled);
    store.set_durable(false);
    CHECK(pool.create("elks", IdempotencyKey{"", "b"}).error == CreateError::store_failed);
    store.set_durable(true);
    const Created b = pool.create("elks", IdempotencyKey{"", "b"});  // the failed one did not keep "b"
    REQUIRE(b.job);
    CHECK_FALSE(b.replayed);
}

TEST_CASE("idempotency: a repeat while the first creation is being made durable is key_in_flight")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobPool pool(clock, &store, test_shape(), test_rules());
    pool.start();
    const IdempotencyKey key{"", "slow"};
    store.hold_durability();
    Created first;
    std::thread creator([&] { first = pool.create("elks", key); });
    REQUIRE(wait_until([&] { return store.held() == 1; }));
    CHECK(pool.create("elks", key).error == CreateError::key_in_flight);
    CHECK(pool.create("bisons", key).error == CreateError::key_reused);  // a mismatch is told at once
    store.release_durability();
    creator.join();
    REQUIRE(first.job);
    const Created again = pool.create("elks", key);
    CHECK(again.replayed);
    CHECK(again.job->id == first.job->id);
}

TEST_CASE("idempotency: keys are restored from the store and released when the job expires")
{
    ManualClock clock(t0);
    MemoryJobStore store;
    JobId first_id;
    {
        JobPool pool(clock, &store, test_shape(), test_rules(10'000, 20'000, 1000, 5'000));
        pool.start();
        first_id = pool.create("elks", IdempotencyKey{"10.0.0.1", "k"}).job->id;
        pool.stop();
    }
    JobPool pool(clock, &store, test_shape(), test_rules(10'000, 20'000, 1000, 5'000));
    pool.start();  // a restart: the key comes back with its job
    const Created again = pool.create("elks", IdempotencyKey{"10.0.0.1", "k"});
    CHECK(again.replayed);
    CHECK(again.job->id == first_id);
    REQUIRE(complete(pool, clock, *again.job));
    clock.advance(5'000);
    pool.wake();
    REQUIRE(expires(pool, first_id));
    const Created fresh = pool.create("elks", IdempotencyKey{"10.0.0.1", "k"});  // kept as long as the result
    CHECK_FALSE(fresh.replayed);
    CHECK(fresh.job->id != first_id);
}
