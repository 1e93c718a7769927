// CommitPipeline's own duties, seen from the driver's side (a MemoryDriver
// records what reaches it): batches sorted by id with every write kept, the
// periodic sync after commits, what a failed commit fails and what it
// leaves alone, the writer's reconnects, the settled callbacks (thread,
// order, exactly once), interrupt() and one close. The JobStore behaviour
// every backend shares is in job_store_contract_test.cpp.

#include "storage/commit_pipeline.h"

#include <doctest/doctest.h>

#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../support/memory_driver.h"
#include "../support/store_records.h"
#include "../support/wait.h"

using zk::storage::CommitPipeline;
using zk::storage::Durability;
using zk::storage::JobStore;
using zk::storage::RecordState;
using zk::storage::WriteKind;
using zk::test::finished_record;
using zk::test::in;
using zk::test::make_id;
using zk::test::MemoryDriver;
using zk::test::queued_record;
using zk::test::Settlements;
using namespace std::chrono_literals;
constexpr auto by_caller = JobStore::Committer::caller;
constexpr auto by_writer = JobStore::Committer::writer;

namespace {

struct Fixture {
    std::shared_ptr<MemoryDriver::Disk> disk = std::make_shared<MemoryDriver::Disk>();
    std::unique_ptr<JobStore> open(std::chrono::milliseconds interval = 0ms,
                                         std::chrono::milliseconds reconnect_interval = 20ms)
    {
        return std::make_unique<CommitPipeline>(std::make_unique<MemoryDriver>(disk, reconnect_interval), interval);
    }
    std::vector<std::vector<zk::storage::Write>> batches() const
    {
        return disk->get([](const MemoryDriver::Disk& d) { return d.batches; });
    }
    int syncs() const { return disk->get([](const MemoryDriver::Disk& d) { return d.syncs; }); }
    int closes() const { return disk->get([](const MemoryDriver::Disk& d) { return d.closes; }); }
    int reconnects() const { return disk->get([](const MemoryDriver::Disk& d) { return d.reconnects; }); }
    int failed_commits() const { return disk->get([](const MemoryDriver::Disk& d) { return d.failed_commits; }); }
    // Closes the gate and queues a writer's write of record n, whose commit
    // then waits there: the writer holds the commit token until open_gate().
    JobStore::Seq commit_held_at_gate(JobStore& store, std::uint64_t n, JobStore::Settled settled)
    {
        disk->close_gate();
        const auto seq = store.put(WriteKind::create, queued_record(n), by_writer, std::move(settled));
        REQUIRE(seq);
        REQUIRE(disk->await_at_gate(1));
        return *seq;
    }
};

}  // namespace

TEST_SUITE("commit_pipeline") {

// Replaces coalescing (an id's last write alone reached the driver): every
// write now has a rule and an outcome of its own.
TEST_CASE("commit_pipeline: every write of a batch reaches the driver, sorted by id, each id's in queue order, each with its own outcome")
{
    Fixture f;
    Settlements settled;
    const auto store = f.open(1h);  // one batch, gathered until close
    const auto job3 = queued_record(3), job1 = queued_record(1), job2 = queued_record(2);
    REQUIRE(store->put(WriteKind::create, job3, by_writer, settled.callback(0)));
    REQUIRE(store->put(WriteKind::create, job1, by_writer, settled.callback(1)));
    REQUIRE(store->put(WriteKind::finish, finished_record(job3, RecordState::done), by_writer, settled.callback(2)));
    REQUIRE(store->put(WriteKind::finish, finished_record(job3, RecordState::cancelled), by_writer, settled.callback(3)));
    REQUIRE(store->put(WriteKind::erase, job2, by_writer, settled.callback(4)));
    REQUIRE(store->put(WriteKind::create, job2, by_writer, settled.callback(5)));
    REQUIRE(store->put(WriteKind::create, job1, by_writer, settled.callback(6)));  // its id is taken by then
    store->close();

    const auto batches = f.batches();
    REQUIRE(batches.size() == 1);
    const auto& b = batches[0];
    REQUIRE(b.size() == 7);
    const std::vector<std::pair<WriteKind, MemoryDriver::Id>> expected{
        {WriteKind::create, make_id(1)}, {WriteKind::create, make_id(1)}, {WriteKind::erase, make_id(2)},
        {WriteKind::create, make_id(2)}, {WriteKind::create, make_id(3)}, {WriteKind::finish, make_id(3)},
        {WriteKind::finish, make_id(3)}};
    for (std::size_t i = 0; i < b.size(); ++i) {
        INFO("write ", i);
        CHECK(b[i].kind == expected[i].first);
        CHECK(b[i].record.id == expected[i].second);
    }
    CHECK(b[5].record.state == RecordState::done);  // id 3's two finishes, in the order queued
    CHECK(b[6].record.state == RecordState::cancelled);

    // Callbacks in queue order (not the driver's), each with its write's outcome.
    CHECK(settled.tags() == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
    CHECK(settled.outcome(0) == Durability::committed);
    CHECK(settled.outcome(1) == Durability::committed);
    CHECK(settled.outcome(2) == Durability::committed);
    CHECK(settled.outcome(3) == Durability::skipped);  // the job was finished by the write before it
    CHECK(settled.outcome(4) == Durability::committed);
    CHECK(settled.outcome(5) == Durability::committed);
    CHECK(settled.outcome(6) == Durability::skipped);
    const auto s = store->stats();
    CHECK(zk::test::count_of(s->batch_operations) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(7));
}

TEST_CASE("commit_pipeline: a commit is followed by one sync within the sync interval")
{
    Fixture f;
    const auto store = f.open();
    CHECK(f.syncs() == 0);
    REQUIRE(zk::test::put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    CHECK(zk::test::wait_until([&] { return f.syncs() == 1; }, 5000ms));
    store->close();
    CHECK(f.syncs() == 1);  // nothing committed since: nothing more to sync
}

TEST_CASE("commit_pipeline: a commit that finds the database gone fails what is queued behind it, refuses writes, and the writer reconnects until it can")
{
    Fixture f;
    Settlements settled;
    const auto store = f.open(0ms, 50ms);
    REQUIRE(zk::test::put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    f.commit_held_at_gate(*store, 2, settled.callback(0));
    const auto b = store->put(WriteKind::create, queued_record(3), by_caller, settled.callback(1));
    const auto c = store->put(WriteKind::create, queued_record(4), by_writer, settled.callback(2));
    REQUIRE((b && c));
    f.disk->set([](MemoryDriver::Disk& d) { d.fail_commits = true; });
    f.disk->open_gate();

    REQUIRE(settled.await(3));
    CHECK(settled.tags() == std::vector<int>{0, 1, 2});
    for (int tag : {0, 1, 2}) CHECK(settled.outcome(tag) == Durability::failed);
    CHECK(store->wait(*b, in(5s)) == Durability::failed);
    CHECK(store->wait(*c, in(5s)) == Durability::failed);
    CHECK(f.failed_commits() == 1);  // b and c never reached the driver
    CHECK_FALSE(store->available());
    CHECK_FALSE(store->put(WriteKind::create, queued_record(5), by_caller, settled.callback(3)));

    // The writer tries once per reconnect interval, and only the writer.
    REQUIRE(zk::test::wait_until([&] { return f.reconnects() >= 3; }, 5000ms));
    const auto times = f.disk->get([](const MemoryDriver::Disk& d) { return d.reconnect_times; });
    for (std::size_t i = 1; i < times.size(); ++i) CHECK(times[i] - times[i - 1] >= 45ms);
    CHECK_FALSE(store->available());
    CHECK(f.batches().size() == 1);

    f.disk->set([](MemoryDriver::Disk& d) { d.fail_commits = false; });
    REQUIRE(zk::test::wait_until([&] { return store->available(); }, 5000ms));
    const auto d = store->put(WriteKind::create, queued_record(6), by_caller, settled.callback(4));
    REQUIRE(d);
    CHECK(store->wait(*d, in(5s)) == Durability::committed);
    const auto batches = f.batches();
    REQUIRE(batches.size() == 2);
    REQUIRE(batches[1].size() == 1);
    CHECK(batches[1][0].record.id == make_id(6));
    store->close();
    CHECK(settled.tags() == std::vector<int>{0, 1, 2, 4});  // the refused write's callback never ran
}

TEST_CASE("commit_pipeline: a failed commit that leaves the database up fails only its own batch")
{
    Fixture f;
    Settlements settled;
    const auto store = f.open();
    f.commit_held_at_gate(*store, 1, settled.callback(0));
    const auto b = store->put(WriteKind::create, queued_record(2), by_caller, settled.callback(1));
    REQUIRE(b);
    f.disk->set([](MemoryDriver::Disk& d) { d.quiet_failures = 1; });  // a statement refused, say
    f.disk->open_gate();
    CHECK(store->wait(*b, in(5s)) == Durability::committed);
    REQUIRE(settled.await(2));
    CHECK(settled.outcome(0) == Durability::failed);
    CHECK(settled.outcome(1) == Durability::committed);
    CHECK(store->available());
    CHECK(f.reconnects() == 0);  // never went down
    REQUIRE(f.batches().size() == 1);
    CHECK(f.batches()[0][0].record.id == make_id(2));
}

TEST_CASE("commit_pipeline: a settled callback runs once, on the committing thread, before its waiter wakes")
{
    Fixture f;
    SUBCASE("the caller commits its own write")
    {
        Settlements settled;  // outlives the store, whose threads call it
        const auto store = f.open();
        const auto seq = store->put(WriteKind::create, queued_record(1), by_caller, settled.callback(1));
        REQUIRE(seq);
        CHECK(store->wait(*seq, in(5s)) == Durability::committed);
        const auto e = settled.entries();  // read as the waiter wakes: already there
        REQUIRE(e.size() == 1);
        CHECK(e[0].thread == std::this_thread::get_id());
        CHECK(store->wait(*seq, in(5s)) == Durability::committed);
        store->close();
        CHECK(settled.size() == 1);
    }
    SUBCASE("the writer commits it and another thread waits")
    {
        Settlements settled;  // outlives the store, whose threads call it
        const auto store = f.open();
        const auto seq = f.commit_held_at_gate(*store, 1, settled.callback(1));
        auto waiter = std::async(std::launch::async, [&] {
            const Durability d = store->wait(seq, in(10s));
            return std::make_pair(d, settled.size());  // what the waiter finds as it wakes
        });
        f.disk->open_gate();
        const auto [outcome, seen] = waiter.get();
        CHECK(outcome == Durability::committed);
        CHECK(seen == 1);
        const auto e = settled.entries();
        REQUIRE(e.size() == 1);
        CHECK(e[0].thread != std::this_thread::get_id());
        store->close();
        CHECK(settled.size() == 1);
    }
    SUBCASE("with a commit interval only the writer commits, even a caller's write")
    {
        Settlements settled;  // outlives the store, whose threads call it
        const auto store = f.open(5ms);
        const auto seq = store->put(WriteKind::create, queued_record(1), by_caller, settled.callback(1));
        REQUIRE(seq);
        CHECK(store->wait(*seq, in(5s)) == Durability::committed);
        const auto e = settled.entries();
        REQUIRE(e.size() == 1);
        CHECK(e[0].thread != std::this_thread::get_id());
    }
}

TEST_CASE("commit_pipeline: a callback may queue a write (it runs outside the lock), and one that throws stops no other")
{
    Fixture f;
    Settlements settled;  // outlives the store, whose threads call it
    const auto store = f.open();
    std::optional<JobStore::Seq> queued_inside;
    const auto first = store->put(WriteKind::create, queued_record(1), by_caller, [&](Durability) {
        queued_inside = store->put(WriteKind::finish, finished_record(queued_record(1), RecordState::done), by_writer,
                                   settled.callback(10));
        throw std::runtime_error("a callback's bug");
    });
    const auto second = store->put(WriteKind::create, queued_record(2), by_caller, settled.callback(2));
    REQUIRE((first && second));
    CHECK(store->wait(*second, in(5s)) == Durability::committed);
    CHECK(store->wait(*first, in(5s)) == Durability::committed);
    REQUIRE(queued_inside);
    CHECK(store->wait(*queued_inside, in(5s)) == Durability::committed);
    CHECK(settled.outcome(2) == Durability::committed);
    CHECK(settled.outcome(10) == Durability::committed);
    std::vector<zk::storage::JobRecord> rows;
    store->load([&](zk::storage::JobRecord&& r) { rows.push_back(std::move(r)); });
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].state == RecordState::done);
}

TEST_CASE("commit_pipeline: interrupt fails the commit in flight and ends every wait at once; later writes are refused")
{
    Fixture f;
    Settlements settled;
    const auto store = f.open();
    const auto a = f.commit_held_at_gate(*store, 1, settled.callback(0));
    const auto b = store->put(WriteKind::create, queued_record(2), by_caller, settled.callback(1));
    REQUIRE(b);
    auto wait_a = std::async(std::launch::async, [&] { return store->wait(a, in(30s)); });
    auto wait_b = std::async(std::launch::async, [&] { return store->wait(*b, in(30s)); });
    const auto begun = std::chrono::steady_clock::now();
    store->interrupt();
    REQUIRE(wait_a.wait_for(2s) == std::future_status::ready);
    REQUIRE(wait_b.wait_for(2s) == std::future_status::ready);
    CHECK(std::chrono::steady_clock::now() - begun < 2s);
    CHECK(wait_a.get() == Durability::failed);
    CHECK(wait_b.get() == Durability::failed);
    REQUIRE(settled.await(2));
    CHECK(settled.outcome(0) == Durability::failed);
    CHECK(settled.outcome(1) == Durability::failed);
    CHECK_FALSE(store->put(WriteKind::create, queued_record(3), by_caller, settled.callback(2)));
    store->close();
    CHECK(f.closes() == 1);
    CHECK(f.batches().empty());
    CHECK(settled.size() == 2);
}

// When a commit ends with writes queued, a waiter leads them at once. A
// follower that gave up at its deadline must not strand the writes queued
// behind it, nor leave them to the writer's sweep a second later.
TEST_CASE("commit_pipeline: a waiter that gives up while a commit runs strands no one: the next waiter leads the writes queued meanwhile")
{
    Fixture f;
    Settlements settled;
    const auto store = f.open();
    f.commit_held_at_gate(*store, 1, settled.callback(0));
    const auto b = store->put(WriteKind::create, queued_record(2), by_caller, settled.callback(1));
    const auto c = store->put(WriteKind::create, queued_record(3), by_caller, settled.callback(2));
    REQUIRE((b && c));
    auto wait_b = std::async(std::launch::async, [&] { return store->wait(*b, in(50ms)); });
    auto wait_c = std::async(std::launch::async, [&] {
        const Durability d = store->wait(*c, in(30s));
        return std::make_pair(d, std::this_thread::get_id());
    });
    CHECK(wait_b.get() == Durability::failed);  // its deadline: b itself stays queued
    f.disk->open_gate();
    const auto [outcome_c, c_thread] = wait_c.get();
    CHECK(outcome_c == Durability::committed);
    CHECK(store->wait(*b, in(5s)) == Durability::committed);
    const auto batches = f.batches();
    REQUIRE(batches.size() == 2);
    CHECK(batches[1].size() == 2);  // b and c in one batch, led by c ...
    for (const auto& e : settled.entries())
        if (e.tag != 0) CHECK(e.thread == c_thread);  // ... not swept up by the writer a second later
}

// Many callers at once, some with deadlines too short to be met: every wait
// with time to spare is told committed (a lost wake-up would leave it asleep
// until its deadline and report failed).
TEST_CASE("commit_pipeline: 24 callers writing and waiting at once, with impatient ones among them, all get their outcome")
{
    Fixture f;
    const auto store = f.open();
    constexpr int threads = 24, writes = 300;
    std::atomic<int> committed{0}, patient_failed{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t)
        callers.emplace_back([&, t] {
            const bool impatient = t % 4 == 0;
            for (int i = 0; i < writes; ++i) {
                const auto id = static_cast<std::uint64_t>(t * writes + i + 1);
                const auto seq = store->put(WriteKind::create, queued_record(id), by_caller, {});
                if (!seq) continue;
                const Durability d = store->wait(*seq, impatient ? in(0ms) : in(30s));
                if (d == Durability::committed) ++committed;
                else if (!impatient) ++patient_failed;
            }
        });
    for (auto& c : callers) c.join();
    CHECK(patient_failed.load() == 0);
    CHECK(committed.load() >= threads * writes * 3 / 4);
    store->close();
    std::size_t stored = 0;
    for (const auto& batch : f.batches()) stored += batch.size();
    CHECK(stored == static_cast<std::size_t>(threads * writes));  // the impatient ones' writes too
}

TEST_CASE("commit_pipeline: close commits what is queued, then closes the driver once")
{
    Fixture f;
    {
        const auto store = f.open();
        REQUIRE(store->put(WriteKind::create, queued_record(1), by_writer));
        REQUIRE(store->put(WriteKind::create, queued_record(2), by_caller));  // nobody waits for it
        store->close();
        CHECK(f.closes() == 1);
        std::size_t writes = 0;
        for (const auto& b : f.batches()) writes += b.size();
        CHECK(writes == 2);  // the queued writes went first
        store->close();
        CHECK_FALSE(store->put(WriteKind::create, queued_record(3), by_writer));  // the writer is gone
    }  // and the destructor
    CHECK(f.closes() == 1);
}

// A waiter reads its write's outcome from what the pipeline keeps of recent
// outcomes (the last 64 failed batches, the last 4096 skipped writes). A wait
// that comes later than that must not be told "committed" for a write that
// failed or was skipped: not knowing, failed is the only safe answer.
TEST_CASE("commit_pipeline: a late wait for a failed or skipped write is never told committed")
{
    Fixture f;
    const auto store = f.open();
    SUBCASE("failed, then 100 more failed commits")
    {
        f.disk->set([](MemoryDriver::Disk& d) { d.quiet_failures = 1000; });  // the database stays up
        const auto lost = store->put(WriteKind::create, queued_record(1), by_caller);
        REQUIRE(lost);
        REQUIRE(store->wait(*lost, in(5s)) == Durability::failed);
        for (std::uint64_t n = 2; n < 2 + 100; ++n)
            REQUIRE(zk::test::put_wait(*store, WriteKind::create, queued_record(n)) == Durability::failed);
        f.disk->set([](MemoryDriver::Disk& d) { d.quiet_failures = 0; });
        CHECK(f.batches().empty());  // nothing was ever committed
        CHECK(store->wait(*lost, in(5s)) == Durability::failed);
    }
    SUBCASE("skipped, then 5000 more skipped writes")
    {
        REQUIRE(zk::test::put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
        const auto dup = store->put(WriteKind::create, queued_record(1), by_caller);
        REQUIRE(dup);
        REQUIRE(store->wait(*dup, in(5s)) == Durability::skipped);
        std::optional<JobStore::Seq> last;
        for (int i = 0; i < 5000; ++i) last = store->put(WriteKind::create, queued_record(1), by_writer);
        REQUIRE(last);
        REQUIRE(store->wait(*last, in(10s)) == Durability::skipped);
        const Durability late = store->wait(*dup, in(5s));
        CHECK(late != Durability::committed);
    }
}

}  // TEST_SUITE
