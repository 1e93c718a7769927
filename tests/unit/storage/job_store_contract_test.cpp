// The JobStore contract, written once and run against every backend (SQLite,
// the in-memory driver, PostgreSQL): round trips, each WriteKind's rule, the
// outcome of every write (no coalescing), the settled callbacks, waits and
// their deadlines, group commit, the writer's stats, interrupt(), and a
// backend that goes away and comes back without a restart. Each backend is a
// fixture below with the same few verbs. Backend-only cases:
// sqlite_driver_test.cpp, postgres_driver_test.cpp.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../support/memory_driver.h"
#include "../support/pg_test_db.h"
#include "../support/store_records.h"
#include "../support/wait.h"
#include "storage/commit_pipeline.h"
#include "storage/store_factory.h"
#include "util/blocking.h"

using zk::storage::Durability;
using zk::storage::JobRecord;
using zk::storage::JobStore;
using zk::storage::RecordState;
using zk::storage::WriteKind;
using zk::test::bucket_at;
using zk::test::count_of;
using zk::test::describe;
using zk::test::finished_record;
using zk::test::Held;
using zk::test::in;
using zk::test::load_all;
using zk::test::make_id;
using zk::test::make_record;
using zk::test::put_wait;
using zk::test::queued_record;
using zk::test::Settlements;
using namespace std::chrono_literals;
constexpr auto by_caller = JobStore::Committer::caller;
constexpr auto by_writer = JobStore::Committer::writer;

namespace {

// How long a test lets the writer take to reconnect once the fault is gone.
constexpr auto recovery_limit = 10s;

// Each backend fixture opens a store on fresh storage of its own and
// reopens it; hold() keeps commits waiting (until released, or `limit`);
// break_store() makes commits and reconnects fail as if the database were
// gone, mend_store() ends that.
struct SqliteBackend {
    zk::test::TempDir tmp;
    std::unique_ptr<zk::test::NoFileWrites> no_writes;

    std::unique_ptr<JobStore> open(std::chrono::milliseconds interval = 0ms,
                                   std::chrono::milliseconds statement_timeout = 5s) const
    {
        auto o = zk::storage::sqlite_options(tmp.str(), interval);
        o.reconnect_interval = 50ms;
        o.statement_timeout = statement_timeout;  // the longest wait for another connection's lock
        return zk::storage::open_store(o);
    }
    // A second connection holding the write lock: a commit waits in SQLite's
    // busy handler (5 s at most, so `limit` stays below it).
    std::unique_ptr<Held> hold(std::chrono::milliseconds limit = 3s) const
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open((tmp.str() + "/jobs.db").c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
        return std::make_unique<Held>(
            [db] {
                sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
                sqlite3_close(db);
            },
            limit);
    }
    // SQLite cannot tell that a commit waits for the lock: give the writer a
    // moment. The tests' assertions hold whether or not it got there.
    bool await_blocked(int) const
    {
        std::this_thread::sleep_for(100ms);
        return true;
    }
    // As a full disk: no write reaches the file, the probe's included.
    void break_store() { no_writes = std::make_unique<zk::test::NoFileWrites>(); }
    void mend_store() { no_writes.reset(); }
};

struct MemoryBackend {
    std::shared_ptr<zk::test::MemoryDriver::Disk> disk = std::make_shared<zk::test::MemoryDriver::Disk>();
    std::unique_ptr<JobStore> open(std::chrono::milliseconds interval = 0ms,
                                   std::chrono::milliseconds statement_timeout = 1h) const
    {
        return std::make_unique<zk::storage::CommitPipeline>(
            std::make_unique<zk::test::MemoryDriver>(disk, 50ms, statement_timeout), interval);
    }
    std::unique_ptr<Held> hold(std::chrono::milliseconds limit = 3s) const
    {
        disk->close_gate();
        return std::make_unique<Held>([d = disk] { d->open_gate(); }, limit);
    }
    bool await_blocked(int n) const { return disk->await_at_gate(n); }
    void break_store() const
    {
        disk->set([](zk::test::MemoryDriver::Disk& d) { d.fail_commits = true; });
    }
    void mend_store() const
    {
        disk->set([](zk::test::MemoryDriver::Disk& d) { d.fail_commits = false; });
    }
};

// A schema of its own in the test cluster (support/pg_test_db.h), reached
// through a proxy that can cut the store's connections and refuse new ones.
struct PostgresBackend {
    zk::test::PgTestSchema schema;
    zk::test::PgProxy proxy;
    std::unique_ptr<JobStore> open(std::chrono::milliseconds interval = 0ms,
                                   std::chrono::milliseconds statement_timeout = 10s) const
    {
        zk::storage::StoreOptions o;
        o.backend = zk::storage::Backend::postgresql;
        o.url = proxy.conninfo(schema.conninfo());
        o.commit_interval = interval;
        o.read_connections = 2;
        o.statement_timeout = statement_timeout;
        o.connect_timeout = 2s;
        o.reconnect_interval = 50ms;
        return zk::storage::open_store(o);
    }
    // A transaction locking the table against writes (reads go on).
    std::unique_ptr<Held> hold(std::chrono::milliseconds limit = 3s) const
    {
        auto s = std::make_shared<zk::test::PgSession>(schema.conninfo());
        REQUIRE(s->exec("BEGIN").empty());
        REQUIRE(s->exec("LOCK TABLE jobs IN EXCLUSIVE MODE").empty());
        return std::make_unique<Held>([s] { s->exec("ROLLBACK"); }, limit);
    }
    bool await_blocked(int n) const
    {
        return zk::test::wait_until([&] { return schema.sessions("wait_event_type = 'Lock'") >= n; }, 5000ms);
    }
    void break_store()
    {
        proxy.refuse();
        proxy.cut();
    }
    void mend_store() { proxy.pass(); }
};

#define STORE_BACKENDS SqliteBackend, MemoryBackend, PostgresBackend

template <class B>
std::vector<JobRecord> reopen_and_load(const B& backend)
{
    const auto store = backend.open();
    return load_all(*store);
}

// Writes until the store says it is unavailable (a database found gone may
// take one failed commit, or two when the first only lost its connection);
// false if it never does.
bool write_until_unavailable(JobStore& store, std::uint64_t first_id)
{
    for (std::uint64_t n = first_id; n < first_id + 5 && store.available(); ++n) {
        const auto outcome = put_wait(store, WriteKind::create, queued_record(n));
        if (outcome == Durability::committed) return false;  // the fault did not take
    }
    return !store.available();
}

}  // namespace

TEST_SUITE("job_store_contract") {

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("job store: every field round-trips", B, STORE_BACKENDS)
{
    B backend;
    JobRecord r;
    r.id = make_id(0xfedcba9876543210ULL);
    r.id[15] = 0;  // a zero byte inside the id
    r.animal = "gnus \xc3\xa9 ' \" ;";
    r.state = RecordState::cancelled;
    r.created_ms = std::numeric_limits<std::int64_t>::max();
    r.started_ms = std::numeric_limits<std::int64_t>::min();
    r.deadline_ms = -1;
    r.finished_ms = 1'700'000'123'456;
    r.duration_ms = std::numeric_limits<std::int32_t>::min();
    for (int b = 0; b < 256; ++b) r.result.push_back(static_cast<char>(b));  // every byte, NUL and invalid UTF-8 included
    r.result += std::string("with\0nul and \n newline", 22);
    r.idem_scope = "user:o'brien";
    r.idem_key = "\"quoted\" key ~ 255";
    JobRecord keyless = make_record(5);  // stored with NULL keys, read back empty
    {
        const auto store = backend.open();
        CHECK(put_wait(*store, WriteKind::create, r) == Durability::committed);
        CHECK(put_wait(*store, WriteKind::create, keyless) == Durability::committed);
        const auto rows = load_all(*store);
        REQUIRE(rows.size() == 2);
        CHECK(describe(rows[0]) == describe(keyless));
        CHECK(describe(rows[1]) == describe(r));
    }
    const auto rows = reopen_and_load(backend);
    REQUIRE(rows.size() == 2);
    CHECK(describe(rows[1]) == describe(r));
    CHECK(rows[1].result == r.result);
    CHECK(rows[1].result.size() == 256 + 22);
    CHECK(rows[0].idem_scope.empty());
    CHECK(rows[0].idem_key.empty());
}

TEST_CASE_TEMPLATE("job store: reopening after close keeps everything, in id order", B, STORE_BACKENDS)
{
    B backend;
    std::vector<std::uint64_t> ns(2000);
    std::iota(ns.begin(), ns.end(), 1);
    std::shuffle(ns.begin(), ns.end(), std::mt19937(7));
    {
        const auto store = backend.open();
        for (auto n : ns) REQUIRE(store->put(WriteKind::create, make_record(n), by_writer));
        store->close();
        store->close();  // idempotent
    }
    const auto rows = reopen_and_load(backend);
    REQUIRE(rows.size() == ns.size());
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(describe(rows[i]) == describe(make_record(i + 1)));
}

TEST_CASE_TEMPLATE("job store: load reads a snapshot while commits run", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    for (std::uint64_t n = 0; n < 1000; ++n) REQUIRE(store->put(WriteKind::create, make_record(n), by_writer));
    CHECK(put_wait(*store, WriteKind::create, make_record(1000)) == Durability::committed);
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (std::uint64_t n = 2000; !stop; ++n) put_wait(*store, WriteKind::create, make_record(n));
    });
    for (int i = 0; i < 5; ++i) CHECK(load_all(*store).size() >= 1001);
    stop = true;
    writer.join();
    CHECK(store->available());
}

// ---------------------------------------------------------------------------
// Each WriteKind's rule
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("job store: a creation is skipped when its id is taken, or its key in its scope", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    JobRecord first = queued_record(1);
    first.idem_scope = "10.0.0.1";
    first.idem_key = "order-1";
    REQUIRE(put_wait(*store, WriteKind::create, first) == Durability::committed);

    JobRecord same_id = queued_record(1);
    same_id.animal = "zebras";
    CHECK(put_wait(*store, WriteKind::create, same_id) == Durability::skipped);

    JobRecord same_key = queued_record(2);
    same_key.idem_scope = first.idem_scope;
    same_key.idem_key = first.idem_key;
    CHECK(put_wait(*store, WriteKind::create, same_key) == Durability::skipped);

    JobRecord other_scope = queued_record(3);
    other_scope.idem_scope = "10.0.0.2";
    other_scope.idem_key = first.idem_key;
    CHECK(put_wait(*store, WriteKind::create, other_scope) == Durability::committed);

    // Jobs created without a key never clash with one another.
    CHECK(put_wait(*store, WriteKind::create, queued_record(4)) == Durability::committed);
    CHECK(put_wait(*store, WriteKind::create, queued_record(5)) == Durability::committed);

    const auto rows = load_all(*store);
    REQUIRE(rows.size() == 4);
    CHECK(describe(rows[0]) == describe(first));  // untouched by the skipped creations
    CHECK(rows[1].id == make_id(3));
    CHECK(rows[2].id == make_id(4));
    CHECK(rows[3].id == make_id(5));

    // Once the keyed job is erased its key is free again.
    REQUIRE(put_wait(*store, WriteKind::erase, first) == Durability::committed);
    CHECK(put_wait(*store, WriteKind::create, same_key) == Durability::committed);
}

TEST_CASE_TEMPLATE("job store: a finish writes state, started, finished and result over an unfinished job, and nothing else", B,
                   STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    JobRecord created = queued_record(1);
    created.idem_scope = "10.0.0.1";
    created.idem_key = "k";
    REQUIRE(put_wait(*store, WriteKind::create, created) == Durability::committed);

    JobRecord running = created;
    running.state = RecordState::running;
    running.started_ms = created.created_ms + 3;
    CHECK(put_wait(*store, WriteKind::finish, running) == Durability::committed);  // unfinished: still writable

    JobRecord done = finished_record(created, RecordState::done);
    // Columns a finish never writes, changed in the record: they must not land.
    done.animal = "zebras";
    done.created_ms = 1;
    done.deadline_ms = 2;
    done.duration_ms = 3;
    done.idem_scope = "elsewhere";
    done.idem_key = "other";
    CHECK(put_wait(*store, WriteKind::finish, done) == Durability::committed);

    JobRecord expected = created;
    expected.state = done.state;
    expected.started_ms = done.started_ms;
    expected.finished_ms = done.finished_ms;
    expected.result = done.result;
    auto rows = load_all(*store);
    REQUIRE(rows.size() == 1);
    CHECK(describe(rows[0]) == describe(expected));

    // Over a finished job: skipped, the job unchanged.
    JobRecord cancel = finished_record(created, RecordState::cancelled, 1'800'000'000'000);
    CHECK(put_wait(*store, WriteKind::finish, cancel) == Durability::skipped);
    CHECK(put_wait(*store, WriteKind::finish, done) == Durability::skipped);  // not even the same record again
    rows = load_all(*store);
    REQUIRE(rows.size() == 1);
    CHECK(describe(rows[0]) == describe(expected));
}

TEST_CASE_TEMPLATE("job store: a finish of a missing job is skipped; a late write never brings a purged job back", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    const JobRecord never = queued_record(7);
    CHECK(put_wait(*store, WriteKind::finish, finished_record(never, RecordState::done)) == Durability::skipped);

    const JobRecord job = queued_record(8);
    REQUIRE(put_wait(*store, WriteKind::create, job) == Durability::committed);
    REQUIRE(put_wait(*store, WriteKind::finish, finished_record(job, RecordState::done)) == Durability::committed);
    REQUIRE(put_wait(*store, WriteKind::erase, job) == Durability::committed);  // its result expired
    CHECK(put_wait(*store, WriteKind::finish, finished_record(job, RecordState::cancelled)) == Durability::skipped);
    CHECK(load_all(*store).empty());
    store->close();
    CHECK(reopen_and_load(backend).empty());
}

TEST_CASE_TEMPLATE("job store: erase removes a job; erasing an unknown id is not an error", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(2)) == Durability::committed);
    JobRecord only_the_id;
    only_the_id.id = make_id(1);  // an erase reads the id alone
    CHECK(put_wait(*store, WriteKind::erase, only_the_id) == Durability::committed);
    CHECK(put_wait(*store, WriteKind::erase, queued_record(999)) == Durability::committed);
    const auto rows = load_all(*store);
    REQUIRE(rows.size() == 1);
    CHECK(describe(rows[0]) == describe(queued_record(2)));
    CHECK(store->available());
}

// Replaces "within one batch the last write to an id wins": nothing is
// coalesced any more, so each write of a batch meets its own rule.
TEST_CASE_TEMPLATE("job store: within one batch each write of an id has its own outcome", B, STORE_BACKENDS)
{
    B backend;
    Settlements settled;
    const auto store = backend.open(1h);  // the writer gathers until close(): one batch
    JobRecord first = queued_record(1);
    JobRecord second = queued_record(1);
    second.animal = "zebras";
    REQUIRE(store->put(WriteKind::create, first, by_writer, settled.callback(0)));
    REQUIRE(store->put(WriteKind::create, second, by_writer, settled.callback(1)));
    REQUIRE(store->put(WriteKind::erase, queued_record(2), by_writer, settled.callback(2)));   // erase, then create: present
    REQUIRE(store->put(WriteKind::create, queued_record(2), by_writer, settled.callback(3)));
    REQUIRE(store->put(WriteKind::create, queued_record(3), by_writer, settled.callback(4)));  // create, then erase: gone
    REQUIRE(store->put(WriteKind::erase, queued_record(3), by_writer, settled.callback(5)));
    store->close();
    CHECK(count_of(store->stats()->batch_operations) == 1);
    CHECK(settled.tags() == std::vector<int>{0, 1, 2, 3, 4, 5});
    CHECK(settled.outcome(0) == Durability::committed);
    CHECK(settled.outcome(1) == Durability::skipped);
    for (int tag : {2, 3, 4, 5}) CHECK(settled.outcome(tag) == Durability::committed);
    const auto rows = reopen_and_load(backend);
    REQUIRE(rows.size() == 2);
    CHECK(describe(rows[0]) == describe(first));
    CHECK(describe(rows[1]) == describe(queued_record(2)));
}

TEST_CASE_TEMPLATE("job store: a cancel and a completion of one job in one batch: the first wins, the second is skipped", B,
                   STORE_BACKENDS)
{
    B backend;
    const JobRecord job = queued_record(1);
    const JobRecord done = finished_record(job, RecordState::done, 1'700'000'050'000);
    const JobRecord cancelled = finished_record(job, RecordState::cancelled, 1'700'000'040'000);
    {
        const auto store = backend.open();
        REQUIRE(put_wait(*store, WriteKind::create, job) == Durability::committed);
    }
    bool cancel_first = false;
    SUBCASE("the completion first") { cancel_first = false; }
    SUBCASE("the cancel first") { cancel_first = true; }
    CAPTURE(cancel_first);
    const JobRecord& a = cancel_first ? cancelled : done;
    const JobRecord& b = cancel_first ? done : cancelled;
    Settlements settled;
    const auto store = backend.open(1h);  // one batch, at close()
    REQUIRE(store->put(WriteKind::finish, a, by_writer, settled.callback(0)));
    REQUIRE(store->put(WriteKind::finish, b, by_writer, settled.callback(1)));
    store->close();
    CHECK(count_of(store->stats()->batch_operations) == 1);
    CHECK(settled.outcome(0) == Durability::committed);
    CHECK(settled.outcome(1) == Durability::skipped);
    const auto rows = reopen_and_load(backend);
    REQUIRE(rows.size() == 1);
    CHECK(describe(rows[0]) == describe(a));
}

// ---------------------------------------------------------------------------
// Outcomes, callbacks and waits
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("job store: each callback runs once, in queue order, before its waiter wakes", B, STORE_BACKENDS)
{
    B backend;
    Settlements settled;  // outlives the store, whose threads call it
    const auto store = backend.open();
    constexpr int n = 40;
    std::vector<JobStore::Seq> seqs;
    // Ids in descending order: the driver gets them sorted the other way.
    for (int i = 0; i < n; ++i) {
        const auto kind = i % 10 == 9 ? WriteKind::finish : WriteKind::create;  // finishes of unknown jobs: skipped
        const auto seq = store->put(kind, queued_record(static_cast<std::uint64_t>(1000 - i)),
                                    i % 2 ? by_writer : by_caller, settled.callback(i));
        REQUIRE(seq);
        seqs.push_back(*seq);
    }
    // Each waiter notes how many callbacks had run as it woke.
    std::vector<std::future<std::pair<Durability, std::size_t>>> waiters;
    for (int i = 0; i < n; i += 7)
        waiters.push_back(std::async(std::launch::async, [&, i] {
            const Durability d = store->wait(seqs[static_cast<std::size_t>(i)], in(10s));
            return std::make_pair(d, settled.size());
        }));
    for (std::size_t k = 0; k < waiters.size(); ++k) {
        const int i = static_cast<int>(k) * 7;
        const auto [outcome, seen] = waiters[k].get();
        INFO("write ", i);
        CHECK(outcome == (i % 10 == 9 ? Durability::skipped : Durability::committed));
        CHECK(seen >= static_cast<std::size_t>(i + 1));  // its own callback, and those queued before it, had run
    }
    store->close();
    std::vector<int> expected(n);
    std::iota(expected.begin(), expected.end(), 0);
    CHECK(settled.tags() == expected);  // once each, in queue order
    for (int i = 0; i < n; ++i) CHECK(settled.outcome(i) == (i % 10 == 9 ? Durability::skipped : Durability::committed));
}

TEST_CASE_TEMPLATE("job store: writes failed behind a failed commit get their callbacks too, once, in order", B, STORE_BACKENDS)
{
    B backend;
    Settlements settled;  // outlives the store, whose threads call it
    const auto store = backend.open();
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    std::optional<JobStore::Seq> a, b, c;
    {
        auto held = backend.hold();
        a = store->put(WriteKind::create, queued_record(2), by_writer, settled.callback(0));
        REQUIRE(a);
        REQUIRE(backend.await_blocked(1));  // a's commit is in flight
        b = store->put(WriteKind::create, queued_record(3), by_caller, settled.callback(1));
        c = store->put(WriteKind::finish, finished_record(queued_record(1), RecordState::done), by_writer,
                       settled.callback(2));
        REQUIRE((b && c));
        backend.break_store();
        held->release();
        REQUIRE(settled.await(3));
        CHECK_FALSE(held->released_by_watchdog());
    }
    const auto b_outcome = store->wait(*b, in(5s));
    const bool down = zk::test::wait_until([&] { return !store->available(); }, 5000ms);
    const auto refused = store->put(WriteKind::create, queued_record(9), by_caller, settled.callback(3));
    backend.mend_store();
    CHECK(settled.tags() == std::vector<int>{0, 1, 2});
    for (int tag : {0, 1, 2}) CHECK(settled.outcome(tag) == Durability::failed);
    CHECK(b_outcome == Durability::failed);
    CHECK(down);
    CHECK_FALSE(refused);
    REQUIRE(zk::test::wait_until([&] { return store->available(); }, recovery_limit));
    CHECK(put_wait(*store, WriteKind::create, queued_record(4)) == Durability::committed);
    store->close();
    CHECK(settled.size() == 3);  // the refused write's callback never ran
}

TEST_CASE_TEMPLATE("job store: a wait gives up at its deadline while the commit is held; the callback comes later", B, STORE_BACKENDS)
{
    B backend;
    Settlements settled;  // outlives the store, whose threads call it
    const auto store = backend.open();
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    auto held = backend.hold();
    const auto seq = store->put(WriteKind::create, queued_record(2), by_writer, settled.callback(0));
    REQUIRE(seq);
    REQUIRE(backend.await_blocked(1));
    const auto begun = std::chrono::steady_clock::now();
    CHECK(store->wait(*seq, begun + 300ms) == Durability::failed);
    const auto took = std::chrono::steady_clock::now() - begun;
    CHECK(took >= 300ms);
    CHECK(took < 1500ms);
    CHECK(settled.size() == 0);  // its outcome is not known yet
    held->release();
    REQUIRE(settled.await(1));
    CHECK(settled.outcome(0) == Durability::committed);
    CHECK(store->wait(*seq, in(5s)) == Durability::committed);  // known now
    CHECK_FALSE(held->released_by_watchdog());
}

// A caller that finds no commit running commits the queue itself (the
// leader): its wait ends when that commit does, and every backend bounds a
// commit by the store's statement timeout (a lock held past it fails the
// statement). A follower's own deadline is the case above.
TEST_CASE_TEMPLATE("job store: a wait that leads the commit ends within the statement timeout", B, STORE_BACKENDS)
{
    B backend;
    Settlements settled;  // outlives the store, whose threads call it
    constexpr auto statement_timeout = 300ms;
    const auto store = backend.open(0ms, statement_timeout);
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    auto held = backend.hold(3s);
    const auto seq = store->put(WriteKind::create, queued_record(2), by_caller, settled.callback(0));
    REQUIRE(seq);
    const auto begun = std::chrono::steady_clock::now();
    const Durability outcome = store->wait(*seq, begun + 10s);  // its own deadline is not what ends it
    const auto took = std::chrono::steady_clock::now() - begun;
    CHECK(outcome == Durability::failed);
    CHECK(took >= statement_timeout);
    CHECK(took < statement_timeout + zk::storage::deadline_margin + 700ms);
    CHECK_FALSE(held->released_by_watchdog());
    held->release();
    REQUIRE(settled.await(1));
    CHECK(settled.outcome(0) == Durability::failed);
}

TEST_CASE_TEMPLATE("job store: interrupt ends every wait at once, the committing caller's too; then writes are refused", B,
                   STORE_BACKENDS)
{
    B backend;
    Settlements settled;  // outlives the store, whose threads call it
    const auto store = backend.open();
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    auto held = backend.hold(4s);
    const auto leading = store->put(WriteKind::create, queued_record(2), by_caller, settled.callback(0));
    REQUIRE(leading);
    auto leader = std::async(std::launch::async, [&] { return store->wait(*leading, in(30s)); });
    REQUIRE(backend.await_blocked(1));  // the leader's commit is in flight
    const auto behind = store->put(WriteKind::create, queued_record(3), by_caller, settled.callback(1));
    REQUIRE(behind);
    auto follower = std::async(std::launch::async, [&] { return store->wait(*behind, in(30s)); });
    const auto begun = std::chrono::steady_clock::now();
    store->interrupt();
    const bool follower_done = follower.wait_for(1500ms) == std::future_status::ready;
    const bool leader_done = leader.wait_for(1500ms) == std::future_status::ready;
    CHECK(follower_done);
    CHECK(leader_done);
    held->release();
    CHECK(follower.get() == Durability::failed);
    CHECK(leader.get() == Durability::failed);
    INFO("took ", std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count(), " s");
    CHECK_FALSE(store->put(WriteKind::create, queued_record(4), by_caller, settled.callback(2)));
    REQUIRE(settled.await(2));
    CHECK(settled.outcome(0) == Durability::failed);
    CHECK(settled.outcome(1) == Durability::failed);
    store->close();
    CHECK(settled.size() == 2);
}

TEST_CASE_TEMPLATE("job store: wait after close", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    CHECK(store->wait(0, in(1s)) == Durability::committed);  // nothing to wait for
    const auto before = store->put(WriteKind::create, queued_record(1), by_writer);
    const auto skipped = store->put(WriteKind::create, queued_record(1), by_writer);
    REQUIRE((before && skipped));
    store->close();
    CHECK(store->wait(*before, in(1s)) == Durability::committed);
    CHECK(store->wait(*skipped, in(1s)) == Durability::skipped);
    CHECK_FALSE(store->put(WriteKind::create, queued_record(2), by_writer));  // not queued: the writer is gone
    CHECK_FALSE(store->put(WriteKind::erase, queued_record(1), by_caller));
    CHECK(store->available());
    CHECK(reopen_and_load(backend).size() == 1);
}

// ---------------------------------------------------------------------------
// A backend that goes away
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("job store: while the backend is gone writes are refused; once it is back they are taken again, without a restart",
                   B, STORE_BACKENDS)
{
    B backend;
    Settlements settled;  // outlives the store, whose threads call it
    const auto store = backend.open();
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    backend.break_store();
    const bool unavailable = write_until_unavailable(*store, 100);
    const auto refused = store->put(WriteKind::create, queued_record(2), by_caller, settled.callback(0));
    const auto refused_by_writer = store->put(WriteKind::create, queued_record(3), by_writer, settled.callback(1));
    backend.mend_store();  // assertions after: a file-size fault would hide their output
    CHECK(unavailable);
    CHECK_FALSE(refused);
    CHECK_FALSE(refused_by_writer);
    REQUIRE(zk::test::wait_until([&] { return store->available(); }, recovery_limit));
    CHECK(put_wait(*store, WriteKind::create, queued_record(2)) == Durability::committed);
    store->close();
    CHECK(settled.size() == 0);
    const auto rows = reopen_and_load(backend);
    REQUIRE(rows.size() >= 2);  // a failed write's outcome is unknown, so it may be there too
    CHECK(describe(rows.front()) == describe(queued_record(1)));  // what was committed stays committed
    CHECK(std::any_of(rows.begin(), rows.end(), [](const JobRecord& r) { return r.id == make_id(2); }));
}

TEST_CASE_TEMPLATE("job store: a failed commit is not counted as a batch", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    backend.break_store();
    const auto outcome = put_wait(*store, WriteKind::create, queued_record(2));
    const auto s = store->stats();
    backend.mend_store();
    CHECK(outcome == Durability::failed);
    CHECK(count_of(s->commit_seconds) == 1);
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(1));
}

// ---------------------------------------------------------------------------
// Group commit and the writer's figures
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("job store: concurrent puts are all durable once waited for", B, STORE_BACKENDS)
{
    B backend;
    constexpr int threads = 8, per_thread = 500;
    const auto store = backend.open(1ms);
    std::vector<int> failures(threads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                const auto n = static_cast<std::uint64_t>(t * per_thread + i);
                if (put_wait(*store, WriteKind::create, make_record(n)) != Durability::committed)
                    ++failures[static_cast<std::size_t>(t)];
            }
        });
    }
    for (auto& th : pool) th.join();
    CHECK(std::count(failures.begin(), failures.end(), 0) == threads);
    store->close();
    CHECK(reopen_and_load(backend).size() == threads * per_thread);
}

TEST_CASE_TEMPLATE("job store: a full batch is committed before the interval ends", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open(1h);
    std::optional<JobStore::Seq> last;
    for (std::uint64_t n = 0; n < 256; ++n) last = store->put(WriteKind::create, make_record(n), by_writer);
    REQUIRE(last);
    CHECK(store->wait(*last, in(10s)) == Durability::committed);  // would wait an hour if gathering ignored the size
}

TEST_CASE_TEMPLATE("job store: stats count one batch per commit, of writes waited for one by one", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    auto s = store->stats();
    REQUIRE(s);
    CHECK(count_of(s->commit_seconds) == 0);
    CHECK(count_of(s->batch_operations) == 0);
    // Each write is alone in the queue when the writer looks: a batch each.
    constexpr std::uint64_t n = 10;
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto seq = i % 2 ? store->put(WriteKind::erase, make_record(i - 1), by_writer)
                               : store->put(WriteKind::create, make_record(i), by_writer);
        REQUIRE(seq);
        CHECK(store->wait(*seq, in(10s)) == Durability::committed);
    }
    s = store->stats();
    CHECK(count_of(s->commit_seconds) == n);
    CHECK(count_of(s->batch_operations) == n);
    CHECK(bucket_at(s->batch_operations, 1) == n);
    CHECK(s->batch_operations.sum == doctest::Approx(n));
    CHECK(bucket_at(s->commit_seconds, 5) == n);  // the largest bound holds a commit that succeeds
}

TEST_CASE_TEMPLATE("job store: a waiting caller commits everything queued before it, in one batch", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    // Caller-committed writes wake no thread: they wait for the first caller.
    REQUIRE(store->put(WriteKind::create, make_record(1), by_caller));
    REQUIRE(store->put(WriteKind::create, make_record(2), by_caller));
    const auto last = store->put(WriteKind::create, make_record(3), by_caller);
    REQUIRE(last);
    CHECK(count_of(store->stats()->batch_operations) == 0);
    REQUIRE(store->wait(*last, in(10s)) == Durability::committed);
    const auto s = store->stats();
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(3));
}

TEST_CASE_TEMPLATE("job store: wait tells the thread's owner once before it commits or waits, not after", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    int told = 0;
    const zk::util::BlockingHook hook([&] { ++told; });
    const auto seq = store->put(WriteKind::create, make_record(1), by_caller);
    REQUIRE(seq);
    REQUIRE(store->wait(*seq, in(10s)) == Durability::committed);
    CHECK(told == 1);
    REQUIRE(store->wait(*seq, in(10s)) == Durability::committed);  // already settled: nothing to wait for
    CHECK(told == 1);
}

TEST_CASE_TEMPLATE("job store: a caller-committed write nobody waits for is still committed", B, STORE_BACKENDS)
{
    B backend;
    Settlements settled;
    {
        const auto store = backend.open();
        REQUIRE(store->put(WriteKind::create, make_record(1), by_caller, settled.callback(0)));  // as if its caller failed before waiting
        // The writer sweeps writes left queued once they are a sync interval old.
        CHECK(settled.await(1, 5000ms));
        CHECK(count_of(store->stats()->batch_operations) == 1);
    }
    CHECK(settled.outcome(0) == Durability::committed);
    CHECK(reopen_and_load(backend).size() == 1);
}

TEST_CASE_TEMPLATE("job store: stats count a gathered batch once, with all its writes", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open(1h);  // gathers until the batch is full (256)
    std::optional<JobStore::Seq> last;
    // 56 of them create an id already created in the batch: skipped, but counted.
    for (std::uint64_t n = 0; n < 256; ++n) last = store->put(WriteKind::create, make_record(n % 200), by_writer);
    REQUIRE(last);
    REQUIRE(store->wait(*last, in(10s)) == Durability::skipped);
    const auto s = store->stats();
    CHECK(count_of(s->commit_seconds) == 1);
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(bucket_at(s->batch_operations, 128) == 0);
    CHECK(bucket_at(s->batch_operations, 256) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(256));
    CHECK(load_all(*store).size() == 200);
}

TEST_CASE_TEMPLATE("job store: under concurrent writers the batches add up to every write", B, STORE_BACKENDS)
{
    B backend;
    constexpr int threads = 8, per_thread = 300;
    const auto store = backend.open();
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                if (put_wait(*store, WriteKind::create, make_record(static_cast<std::uint64_t>(t * per_thread + i))) !=
                    Durability::committed)
                    ++failures;
        });
    // Scrapes race the writer, as /metrics does; TSan checks they are clean.
    std::thread scraper([&] {
        for (int i = 0; i < 200; ++i) {
            const auto s = store->stats();
            CHECK(std::is_sorted(s->batch_operations.cumulative.begin(), s->batch_operations.cumulative.end()));
        }
    });
    for (auto& w : writers) w.join();
    scraper.join();
    CHECK(failures == 0);
    const auto s = store->stats();
    const auto batches = count_of(s->batch_operations);
    CHECK(count_of(s->commit_seconds) == batches);
    CHECK(batches >= 1);
    CHECK(batches <= threads * per_thread);
    CHECK(s->batch_operations.sum == doctest::Approx(threads * per_thread));
    store->close();
    CHECK(count_of(store->stats()->commit_seconds) == batches);  // still readable after close, nothing more
}

TEST_CASE_TEMPLATE("job store: names its backend", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    const std::string name(store->backend());
    CHECK((name == "sqlite" || name == "memory" || name == "postgresql"));
    CHECK((store->shared() != nullptr) == (name == "postgresql"));
}

}  // TEST_SUITE
