// The JobStore contract, written once and run against every backend: round
// trips, group-commit semantics (coalescing, waiting, closing), the writer's
// stats and a failed commit. Each backend is a fixture below. Backend-only
// cases: sqlite_driver_test.cpp, postgres_driver_test.cpp.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
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

using zk::storage::JobRecord;
using zk::storage::JobStore;
using zk::storage::RecordState;
using zk::test::bucket_at;
using zk::test::count_of;
using zk::test::describe;
using zk::test::load_all;
using zk::test::make_id;
using zk::test::make_record;
using namespace std::chrono_literals;
constexpr auto by_caller = JobStore::Committer::caller;
constexpr auto by_writer = JobStore::Committer::writer;

namespace {

// Each backend fixture opens a store on its own fresh storage, reopens the
// same storage, and can make every later commit fail.
struct SqliteBackend {
    zk::test::TempDir tmp;
    std::unique_ptr<JobStore> open(std::chrono::milliseconds interval = 0ms) const
    {
        return zk::storage::open_store(zk::storage::sqlite_options(tmp.str(), interval));
    }
    // A trigger that aborts every insert, installed through a second connection.
    void break_commits() const
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open((tmp.str() + "/jobs.db").c_str(), &db) == SQLITE_OK);
        const int rc = sqlite3_exec(
            db, "CREATE TRIGGER no_insert BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'injected'); END", nullptr,
            nullptr, nullptr);
        sqlite3_close(db);
        REQUIRE(rc == SQLITE_OK);
    }
};

struct MemoryBackend {
    std::shared_ptr<zk::test::MemoryDriver::Disk> disk = std::make_shared<zk::test::MemoryDriver::Disk>();
    std::unique_ptr<JobStore> open(std::chrono::milliseconds interval = 0ms) const
    {
        return std::make_unique<zk::storage::CommitPipeline>(std::make_unique<zk::test::MemoryDriver>(disk), interval);
    }
    void break_commits() const
    {
        std::lock_guard lock(disk->mutex);
        disk->fail_commits = true;
    }
};

// A schema of its own in the test cluster (support/pg_test_db.h). Reconnects
// are put off past any test's length, so a failed commit stays failed here as
// with the others; postgres_driver_test.cpp covers the recovery.
struct PostgresBackend {
    zk::test::PgTestSchema schema;
    std::unique_ptr<JobStore> open(std::chrono::milliseconds interval = 0ms) const
    {
        zk::storage::StoreOptions o;
        o.backend = zk::storage::Backend::postgresql;
        o.url = schema.conninfo();
        o.commit_interval = interval;
        o.read_connections = 2;
        o.statement_timeout = 10s;
        o.connect_timeout = 5s;
        o.reconnect_interval = 1h;
        return zk::storage::open_store(o);
    }
    // A trigger that aborts every insert and update.
    void break_commits() const
    {
        const std::string s = schema.name();
        REQUIRE(schema.exec("CREATE FUNCTION " + s + ".zk_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                            "$$BEGIN RAISE EXCEPTION 'injected'; END$$")
                    .empty());
        REQUIRE(schema.exec("CREATE TRIGGER no_write BEFORE INSERT OR UPDATE ON " + s +
                            ".jobs FOR EACH ROW EXECUTE FUNCTION " + s + ".zk_refuse()")
                    .empty());
    }
};

#define STORE_BACKENDS SqliteBackend, MemoryBackend, PostgresBackend

template <class B>
std::vector<JobRecord> reopen_and_load(const B& backend)
{
    const auto store = backend.open();
    return load_all(*store);
}

}  // namespace

TEST_SUITE("job_store_contract") {

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
    r.result = std::string("with\0nul and \n newline", 22);
    r.idem_scope = "user:o'brien";
    r.idem_key = "\"quoted\" key ~ 255";
    {
        const auto store = backend.open();
        CHECK(store->wait_durable(store->put(r, by_caller)));
        const auto rows = load_all(*store);
        REQUIRE(rows.size() == 1);
        CHECK(describe(rows[0]) == describe(r));
    }
    const auto rows = reopen_and_load(backend);
    REQUIRE(rows.size() == 1);
    CHECK(describe(rows[0]) == describe(r));
    CHECK(rows[0].result.size() == 22);
}

TEST_CASE_TEMPLATE("job store: a later put overwrites, erase removes", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    JobRecord r = make_record(1);
    CHECK(store->wait_durable(store->put(r, by_caller)));
    CHECK(store->wait_durable(store->put(make_record(2), by_caller)));
    r.state = RecordState::done;
    r.result = "Sleepy aardvarks dance slowly";
    CHECK(store->wait_durable(store->put(r, by_caller)));
    auto rows = load_all(*store);
    REQUIRE(rows.size() == 2);
    CHECK(describe(rows[0]) == describe(r));

    CHECK(store->wait_durable(store->erase(r.id)));
    CHECK(store->wait_durable(store->erase(make_id(999))));  // unknown id: not an error
    rows = load_all(*store);
    REQUIRE(rows.size() == 1);
    CHECK(describe(rows[0]) == describe(make_record(2)));
    CHECK(store->healthy());
}

TEST_CASE_TEMPLATE("job store: reopening after close keeps everything, in id order", B, STORE_BACKENDS)
{
    B backend;
    std::vector<std::uint64_t> ns(2000);
    std::iota(ns.begin(), ns.end(), 1);
    std::shuffle(ns.begin(), ns.end(), std::mt19937(7));
    {
        const auto store = backend.open();
        for (auto n : ns) store->put(make_record(n), by_writer);
        store->close();
        store->close();  // idempotent
    }
    const auto rows = reopen_and_load(backend);
    REQUIRE(rows.size() == ns.size());
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(describe(rows[i]) == describe(make_record(i + 1)));
}

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
                if (!store->wait_durable(store->put(make_record(n), by_caller))) ++failures[static_cast<std::size_t>(t)];
            }
        });
    }
    for (auto& th : pool) th.join();
    CHECK(std::count(failures.begin(), failures.end(), 0) == threads);
    store->close();
    CHECK(reopen_and_load(backend).size() == threads * per_thread);
}

TEST_CASE_TEMPLATE("job store: load reads a snapshot while commits run", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    for (std::uint64_t n = 0; n < 1000; ++n) store->put(make_record(n), by_writer);
    CHECK(store->wait_durable(store->put(make_record(1000), by_caller)));
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (std::uint64_t n = 2000; !stop; ++n) store->wait_durable(store->put(make_record(n), by_caller));
    });
    for (int i = 0; i < 5; ++i) CHECK(load_all(*store).size() >= 1001);
    stop = true;
    writer.join();
    CHECK(store->healthy());
}

TEST_CASE_TEMPLATE("job store: within one batch the last write to an id wins", B, STORE_BACKENDS)
{
    B backend;
    // A long interval: the writer gathers until close(), so all is one batch.
    const auto store = backend.open(1h);
    JobRecord a = make_record(1);
    store->put(a, by_writer);
    store->put(make_record(2), by_writer);
    a.state = RecordState::done;
    a.result = "Brave aardvarks sing loudly";
    store->put(a, by_writer);
    store->erase(make_record(2).id);  // put then erase: gone
    store->erase(make_record(3).id);  // erase then put: present
    const auto last = store->put(make_record(3), by_writer);
    store->close();
    CHECK(store->wait_durable(last));
    const auto rows = reopen_and_load(backend);
    REQUIRE(rows.size() == 2);
    CHECK(describe(rows[0]) == describe(a));
    CHECK(describe(rows[1]) == describe(make_record(3)));
}

TEST_CASE_TEMPLATE("job store: a full batch is committed before the interval ends", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open(1h);
    JobStore::Seq last = 0;
    for (std::uint64_t n = 0; n < 256; ++n) last = store->put(make_record(n), by_writer);
    CHECK(store->wait_durable(last));  // would hang for an hour if gathering ignored the size
}

TEST_CASE_TEMPLATE("job store: wait_durable after close", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    CHECK(store->wait_durable(0));
    const auto before = store->put(make_record(1), by_writer);
    store->close();
    CHECK(store->wait_durable(before));
    const auto after = store->put(make_record(2), by_writer);  // not queued: the writer is gone
    CHECK_FALSE(store->wait_durable(after));
    CHECK_FALSE(store->wait_durable(store->erase(make_id(1))));
    CHECK(store->healthy());
    CHECK(reopen_and_load(backend).size() == 1);
}

TEST_CASE_TEMPLATE("job store: a failed commit makes the store unhealthy", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    CHECK(store->wait_durable(store->put(make_record(1), by_caller)));
    backend.break_commits();
    const auto seq = store->put(make_record(2), by_writer);
    CHECK_FALSE(store->wait_durable(seq));
    CHECK_FALSE(store->healthy());
    CHECK_FALSE(store->wait_durable(store->put(make_record(3), by_caller)));
    CHECK(store->wait_durable(seq - 1));  // what was committed stays committed
    store->close();
    CHECK_FALSE(store->healthy());
}

TEST_CASE_TEMPLATE("job store: a failed commit is not counted as a batch", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    CHECK(store->wait_durable(store->put(make_record(1), by_caller)));
    backend.break_commits();
    CHECK_FALSE(store->wait_durable(store->put(make_record(2), by_caller)));
    const auto s = store->stats();
    CHECK(count_of(s->commit_seconds) == 1);
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(1));
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
    for (std::uint64_t i = 0; i < n; ++i)
        CHECK(store->wait_durable(i % 2 ? store->erase(make_id(i - 1)) : store->put(make_record(i), by_writer)));
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
    store->put(make_record(1), by_caller);
    store->put(make_record(2), by_caller);
    const auto last = store->put(make_record(3), by_caller);
    CHECK(count_of(store->stats()->batch_operations) == 0);
    REQUIRE(store->wait_durable(last));
    const auto s = store->stats();
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(3));
}

TEST_CASE_TEMPLATE("job store: wait_durable tells the thread's owner once before it commits or waits, not after", B,
                   STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open();
    int told = 0;
    const zk::util::BlockingHook hook([&] { ++told; });
    const auto seq = store->put(make_record(1), by_caller);
    REQUIRE(store->wait_durable(seq));
    CHECK(told == 1);
    REQUIRE(store->wait_durable(seq));  // already durable: nothing to wait for
    CHECK(told == 1);
}

TEST_CASE_TEMPLATE("job store: a caller-committed write nobody waits for is still committed", B, STORE_BACKENDS)
{
    B backend;
    {
        const auto store = backend.open();
        store->put(make_record(1), by_caller);  // as if its caller failed before waiting
        // The writer sweeps writes left queued once they are a sync interval old.
        CHECK(zk::test::wait_until([&] { return count_of(store->stats()->batch_operations) == 1; }, 5000ms));
    }
    CHECK(reopen_and_load(backend).size() == 1);
}

TEST_CASE_TEMPLATE("job store: stats count a gathered batch once, with all its writes", B, STORE_BACKENDS)
{
    B backend;
    const auto store = backend.open(1h);  // gathers until the batch is full (256)
    JobStore::Seq last = 0;
    for (std::uint64_t n = 0; n < 256; ++n) last = store->put(make_record(n % 200), by_writer);  // coalesced writes count too
    REQUIRE(store->wait_durable(last));
    const auto s = store->stats();
    CHECK(count_of(s->commit_seconds) == 1);
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(bucket_at(s->batch_operations, 128) == 0);
    CHECK(bucket_at(s->batch_operations, 256) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(256));
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
                if (!store->wait_durable(store->put(make_record(static_cast<std::uint64_t>(t * per_thread + i)), by_caller)))
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

}  // TEST_SUITE
