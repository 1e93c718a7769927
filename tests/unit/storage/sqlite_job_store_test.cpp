// Unit tests for SqliteJobStore: round trips, group-commit semantics
// (coalescing, waiting, closing, the writer's stats), refusal of bad stores, and a crash without
// close() in a forked child. Each test works in its own temporary directory.

#include "storage/sqlite_job_store.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/wait.h"
#include "util/blocking.h"

namespace fs = std::filesystem;
using zk::storage::JobRecord;
using zk::storage::JobStore;
constexpr auto by_caller = JobStore::Committer::caller;
constexpr auto by_writer = JobStore::Committer::writer;
using zk::storage::RecordState;
using zk::storage::SqliteJobStore;
using zk::storage::StoreError;
using namespace std::chrono_literals;

namespace {

struct TempDir {
    fs::path path;
    TempDir()
    {
        char tmpl[] = "/tmp/zk-store-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir()
    {
        std::error_code ec;
        fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path, ec);
    }
    std::string str(const char* sub = "state") const { return (path / sub).string(); }
};

// Ids whose byte order is n's order, like UUIDv7s created one after another.
std::array<unsigned char, 16> make_id(std::uint64_t n)
{
    std::array<unsigned char, 16> id{};
    for (int i = 0; i < 8; ++i) id[static_cast<std::size_t>(i)] = static_cast<unsigned char>(n >> (56 - 8 * i));
    id[8] = 0x7a;
    id[15] = static_cast<unsigned char>(n * 31);
    return id;
}

JobRecord make_record(std::uint64_t n)
{
    JobRecord r;
    r.id = make_id(n);
    r.animal = "aardvarks";
    r.state = static_cast<RecordState>(n % 4);
    r.created_ms = 1'700'000'000'000 + static_cast<std::int64_t>(n);
    r.started_ms = r.created_ms + 1;
    r.deadline_ms = r.created_ms + 15'000;
    r.finished_ms = r.state == RecordState::done ? r.deadline_ms : 0;
    r.duration_ms = 15'000;
    r.result = r.state == RecordState::done ? "Thirsty aardvarks sing carefully" : "";
    return r;
}

std::string describe(const JobRecord& r)
{
    std::string s;
    for (unsigned char c : r.id) s += std::to_string(c) + ".";
    return s + " " + r.animal + " " + std::to_string(static_cast<int>(r.state)) + " " +
           std::to_string(r.created_ms) + " " + std::to_string(r.started_ms) + " " + std::to_string(r.deadline_ms) +
           " " + std::to_string(r.finished_ms) + " " + std::to_string(r.duration_ms) + " [" + r.result + "]";
}

std::vector<JobRecord> load_all(JobStore& store)
{
    std::vector<JobRecord> rows;
    store.load([&](JobRecord&& r) { rows.push_back(std::move(r)); });
    return rows;
}

std::vector<JobRecord> reopen_and_load(const std::string& dir)
{
    SqliteJobStore store(dir, 0ms);
    return load_all(store);
}

// Runs SQL on the store's file through a connection of the test's own.
void raw_exec(const std::string& dir, const std::string& sql)
{
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((dir + "/jobs.db").c_str(), &db) == SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO(sql, ": ", err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

void write_file(const std::string& path, const std::string& bytes, std::streamoff at = 0, bool truncate = true)
{
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out | (truncate ? std::ios::trunc : std::ios::openmode{}));
    if (!f) f.open(path, std::ios::binary | std::ios::out);
    f.seekp(at);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
}

std::string open_error(const std::string& dir)
{
    try {
        SqliteJobStore store(dir, 0ms);
    } catch (const StoreError& e) {
        return e.what();
    }
    return "";
}

// The count of a histogram snapshot (its +Inf bucket), and the cumulative
// count at an upper bound it has.
std::uint64_t count_of(const zk::Histogram::Snapshot& h) { return h.cumulative.empty() ? 0 : h.cumulative.back(); }
std::uint64_t bucket_at(const zk::Histogram::Snapshot& h, double le)
{
    const auto at = std::find(h.bounds.begin(), h.bounds.end(), le);
    REQUIRE(at != h.bounds.end());
    return h.cumulative[static_cast<std::size_t>(at - h.bounds.begin())];
}

}  // namespace

TEST_SUITE("sqlite_job_store") {

TEST_CASE("sqlite_job_store: every field round-trips")
{
    TempDir tmp;
    JobRecord r;
    r.id = make_id(0xfedcba9876543210ULL);
    r.id[15] = 0;  // a zero byte inside the blob
    r.animal = "gnus \xc3\xa9 ' \" ;";
    r.state = RecordState::cancelled;
    r.created_ms = std::numeric_limits<std::int64_t>::max();
    r.started_ms = std::numeric_limits<std::int64_t>::min();
    r.deadline_ms = -1;
    r.finished_ms = 1'700'000'123'456;
    r.duration_ms = std::numeric_limits<std::int32_t>::min();
    r.result = std::string("with\0nul and \n newline", 22);
    {
        SqliteJobStore store(tmp.str(), 0ms);
        CHECK(store.wait_durable(store.put(r, by_caller)));
        const auto rows = load_all(store);
        REQUIRE(rows.size() == 1);
        CHECK(describe(rows[0]) == describe(r));
    }
    const auto rows = reopen_and_load(tmp.str());
    REQUIRE(rows.size() == 1);
    CHECK(describe(rows[0]) == describe(r));
    CHECK(rows[0].result.size() == 22);
}

TEST_CASE("sqlite_job_store: a later put overwrites, erase removes")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    JobRecord r = make_record(1);
    CHECK(store.wait_durable(store.put(r, by_caller)));
    CHECK(store.wait_durable(store.put(make_record(2), by_caller)));
    r.state = RecordState::done;
    r.result = "Sleepy aardvarks dance slowly";
    CHECK(store.wait_durable(store.put(r, by_caller)));
    auto rows = load_all(store);
    REQUIRE(rows.size() == 2);
    CHECK(describe(rows[0]) == describe(r));

    CHECK(store.wait_durable(store.erase(r.id)));
    CHECK(store.wait_durable(store.erase(make_id(999))));  // unknown id: not an error
    rows = load_all(store);
    REQUIRE(rows.size() == 1);
    CHECK(describe(rows[0]) == describe(make_record(2)));
    CHECK(store.healthy());
}

TEST_CASE("sqlite_job_store: reopening after close keeps everything, in id order")
{
    TempDir tmp;
    std::vector<std::uint64_t> ns(2000);
    std::iota(ns.begin(), ns.end(), 1);
    std::shuffle(ns.begin(), ns.end(), std::mt19937(7));
    {
        SqliteJobStore store(tmp.str(), 0ms);
        for (auto n : ns) store.put(make_record(n), by_writer);
        store.close();
        store.close();  // idempotent
    }
    CHECK_FALSE(fs::exists(tmp.str() + "/jobs.db-wal"));  // a clean close checkpoints
    const auto rows = reopen_and_load(tmp.str());
    REQUIRE(rows.size() == ns.size());
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(describe(rows[i]) == describe(make_record(i + 1)));
}

TEST_CASE("sqlite_job_store: concurrent puts are all durable once waited for")
{
    TempDir tmp;
    constexpr int threads = 8, per_thread = 500;
    SqliteJobStore store(tmp.str(), 1ms);
    std::vector<int> failures(threads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                const auto n = static_cast<std::uint64_t>(t * per_thread + i);
                if (!store.wait_durable(store.put(make_record(n), by_caller))) ++failures[static_cast<std::size_t>(t)];
            }
        });
    }
    for (auto& th : pool) th.join();
    CHECK(std::count(failures.begin(), failures.end(), 0) == threads);
    store.close();
    CHECK(reopen_and_load(tmp.str()).size() == threads * per_thread);
}

TEST_CASE("sqlite_job_store: load reads a snapshot while the writer commits")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    for (std::uint64_t n = 0; n < 1000; ++n) store.put(make_record(n), by_writer);
    CHECK(store.wait_durable(store.put(make_record(1000), by_caller)));
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (std::uint64_t n = 2000; !stop; ++n) store.wait_durable(store.put(make_record(n), by_caller));
    });
    for (int i = 0; i < 5; ++i) CHECK(load_all(store).size() >= 1001);
    stop = true;
    writer.join();
    CHECK(store.healthy());
}

TEST_CASE("sqlite_job_store: within one batch the last write to an id wins")
{
    TempDir tmp;
    // A long interval: the writer gathers until close(), so all is one batch.
    SqliteJobStore store(tmp.str(), 1h);
    JobRecord a = make_record(1);
    store.put(a, by_writer);
    store.put(make_record(2), by_writer);
    a.state = RecordState::done;
    a.result = "Brave aardvarks sing loudly";
    store.put(a, by_writer);
    store.erase(make_record(2).id);  // put then erase: gone
    store.erase(make_record(3).id);  // erase then put: present
    const auto last = store.put(make_record(3), by_writer);
    store.close();
    CHECK(store.wait_durable(last));
    const auto rows = reopen_and_load(tmp.str());
    REQUIRE(rows.size() == 2);
    CHECK(describe(rows[0]) == describe(a));
    CHECK(describe(rows[1]) == describe(make_record(3)));
}

TEST_CASE("sqlite_job_store: a full batch is committed before the interval ends")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 1h);
    JobStore::Seq last = 0;
    for (std::uint64_t n = 0; n < 256; ++n) last = store.put(make_record(n), by_writer);
    CHECK(store.wait_durable(last));  // would hang for an hour if gathering ignored the size
}

TEST_CASE("sqlite_job_store: wait_durable after close")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    CHECK(store.wait_durable(0));
    const auto before = store.put(make_record(1), by_writer);
    store.close();
    CHECK(store.wait_durable(before));
    const auto after = store.put(make_record(2), by_writer);  // not queued: the writer is gone
    CHECK_FALSE(store.wait_durable(after));
    CHECK_FALSE(store.wait_durable(store.erase(make_id(1))));
    CHECK(store.healthy());
    CHECK(reopen_and_load(tmp.str()).size() == 1);
}

TEST_CASE("sqlite_job_store: a failed commit makes the store unhealthy")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    CHECK(store.wait_durable(store.put(make_record(1), by_caller)));
    raw_exec(tmp.str(), "CREATE TRIGGER no_insert BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'injected'); END");
    const auto seq = store.put(make_record(2), by_writer);
    CHECK_FALSE(store.wait_durable(seq));
    CHECK_FALSE(store.healthy());
    CHECK_FALSE(store.wait_durable(store.put(make_record(3), by_caller)));
    CHECK(store.wait_durable(seq - 1));  // what was committed stays committed
    store.close();
    CHECK_FALSE(store.healthy());
}

TEST_CASE("sqlite_job_store: stats count one batch per commit, of writes waited for one by one")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    auto s = store.stats();
    REQUIRE(s);
    CHECK(count_of(s->commit_seconds) == 0);
    CHECK(count_of(s->batch_operations) == 0);
    // Each write is alone in the queue when the writer looks: a batch each.
    constexpr std::uint64_t n = 10;
    for (std::uint64_t i = 0; i < n; ++i) CHECK(store.wait_durable(i % 2 ? store.erase(make_id(i - 1)) : store.put(make_record(i), by_writer)));
    s = store.stats();
    CHECK(count_of(s->commit_seconds) == n);
    CHECK(count_of(s->batch_operations) == n);
    CHECK(bucket_at(s->batch_operations, 1) == n);
    CHECK(s->batch_operations.sum == doctest::Approx(n));
    CHECK(s->commit_seconds.sum > 0);
    CHECK(bucket_at(s->commit_seconds, 5) == n);  // the busy timeout bounds a commit that succeeds
}

TEST_CASE("sqlite_job_store: a waiting caller commits everything queued before it, in one batch")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    // Caller-committed writes wake no thread: they wait for the first caller.
    store.put(make_record(1), by_caller);
    store.put(make_record(2), by_caller);
    const auto last = store.put(make_record(3), by_caller);
    CHECK(count_of(store.stats()->batch_operations) == 0);
    REQUIRE(store.wait_durable(last));
    const auto s = store.stats();
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(3));
}

TEST_CASE("sqlite_job_store: wait_durable tells the thread's owner once before it commits or waits, not after")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    int told = 0;
    const zk::util::BlockingHook hook([&] { ++told; });
    const auto seq = store.put(make_record(1), by_caller);
    REQUIRE(store.wait_durable(seq));
    CHECK(told == 1);
    REQUIRE(store.wait_durable(seq));  // already durable: nothing to wait for
    CHECK(told == 1);
}

TEST_CASE("sqlite_job_store: a caller-committed write nobody waits for is still committed")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    store.put(make_record(1), by_caller);  // as if its caller failed before waiting
    // The writer sweeps writes left queued once they are a sync interval old.
    CHECK(zk::test::wait_until([&] { return count_of(store.stats()->batch_operations) == 1; }, 5000ms));
    store.close();
    SqliteJobStore reopened(tmp.str(), 0ms);
    int rows = 0;
    reopened.load([&](JobRecord&&) { ++rows; });
    CHECK(rows == 1);
}

TEST_CASE("sqlite_job_store: stats count a gathered batch once, with all its writes")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 1h);  // gathers until the batch is full (256)
    JobStore::Seq last = 0;
    for (std::uint64_t n = 0; n < 256; ++n) last = store.put(make_record(n % 200), by_writer);  // coalesced writes count too
    REQUIRE(store.wait_durable(last));
    const auto s = store.stats();
    CHECK(count_of(s->commit_seconds) == 1);
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(bucket_at(s->batch_operations, 128) == 0);
    CHECK(bucket_at(s->batch_operations, 256) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(256));
}

TEST_CASE("sqlite_job_store: under concurrent writers the batches add up to every write")
{
    TempDir tmp;
    constexpr int threads = 8, per_thread = 300;
    SqliteJobStore store(tmp.str(), 0ms);
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                if (!store.wait_durable(store.put(make_record(static_cast<std::uint64_t>(t * per_thread + i)), by_caller))) ++failures;
        });
    // Scrapes race the writer, as /metrics does; TSan checks they are clean.
    std::thread scraper([&] {
        for (int i = 0; i < 200; ++i) {
            const auto s = store.stats();
            CHECK(std::is_sorted(s->batch_operations.cumulative.begin(), s->batch_operations.cumulative.end()));
        }
    });
    for (auto& w : writers) w.join();
    scraper.join();
    CHECK(failures == 0);
    const auto s = store.stats();
    const auto batches = count_of(s->batch_operations);
    CHECK(count_of(s->commit_seconds) == batches);
    CHECK(batches >= 1);
    CHECK(batches <= threads * per_thread);
    CHECK(s->batch_operations.sum == doctest::Approx(threads * per_thread));
    store.close();
    CHECK(count_of(store.stats()->commit_seconds) == batches);  // still readable after close, nothing more
}

TEST_CASE("sqlite_job_store: a failed commit is not counted as a batch")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    CHECK(store.wait_durable(store.put(make_record(1), by_caller)));
    raw_exec(tmp.str(), "CREATE TRIGGER no_insert BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'injected'); END");
    CHECK_FALSE(store.wait_durable(store.put(make_record(2), by_caller)));
    const auto s = store.stats();
    CHECK(count_of(s->commit_seconds) == 1);
    CHECK(count_of(s->batch_operations) == 1);
    CHECK(s->batch_operations.sum == doctest::Approx(1));
}

TEST_CASE("sqlite_job_store: writes waited for survive a crash without close")
{
    TempDir tmp;
    const std::string dir = tmp.str();
    std::fflush(nullptr);  // the child must not print our buffered output again
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // no doctest in here: just an exit status
        try {
            SqliteJobStore store(dir, 2ms);
            JobStore::Seq last = 0;
            for (std::uint64_t n = 0; n < 1000; ++n) last = store.put(make_record(n), by_writer);
            // Exits with the store open: no close(), no destructor, no checkpoint.
            ::_exit(store.wait_durable(last) ? 0 : 1);
        } catch (...) {
        }
        ::_exit(2);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    CHECK(fs::exists(dir + "/jobs.db-wal"));  // the child did not close cleanly
    const auto rows = reopen_and_load(dir);
    REQUIRE(rows.size() == 1000);
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(describe(rows[i]) == describe(make_record(i)));
}

TEST_CASE("sqlite_job_store: a second opener of the directory is refused")
{
    TempDir tmp;
    SqliteJobStore store(tmp.str(), 0ms);
    const std::string err = open_error(tmp.str());
    CHECK(err.find("in use by another process") != std::string::npos);
    store.close();
    CHECK(open_error(tmp.str()).empty());  // close releases the lock
}

TEST_CASE("sqlite_job_store: a garbage jobs.db is refused, naming the file")
{
    TempDir tmp;
    fs::create_directories(tmp.str());
    std::string garbage(8192, '\0');
    for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 7 + 3);
    write_file(tmp.str() + "/jobs.db", garbage);
    const std::string err = open_error(tmp.str());
    CHECK(err.find(tmp.str() + "/jobs.db") != std::string::npos);
    CHECK(err.find("not a database") != std::string::npos);
    std::ifstream f(tmp.str() + "/jobs.db", std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(f), {}) == garbage);  // left untouched
}

TEST_CASE("sqlite_job_store: a page overwritten inside the file is refused")
{
    TempDir tmp;
    {
        SqliteJobStore store(tmp.str(), 0ms);
        for (std::uint64_t n = 0; n < 5000; ++n) store.put(make_record(n), by_writer);
    }
    const auto size = fs::file_size(tmp.str() + "/jobs.db");
    REQUIRE(size > 20 * 4096);
    write_file(tmp.str() + "/jobs.db", std::string(4096, '\x5a'), static_cast<std::streamoff>(size / 2 / 4096 * 4096), false);
    const std::string err = open_error(tmp.str());
    INFO(err);
    CHECK(err.find(tmp.str() + "/jobs.db") != std::string::npos);
    CHECK(err.find("integrity check failed") != std::string::npos);
}

TEST_CASE("sqlite_job_store: an unknown schema version is refused")
{
    TempDir tmp;
    SqliteJobStore(tmp.str(), 0ms).close();
    raw_exec(tmp.str(), "PRAGMA user_version = 99");
    const std::string err = open_error(tmp.str());
    CHECK(err.find("schema version 99 is unknown") != std::string::npos);
}

TEST_CASE("sqlite_job_store: a database of another program is refused")
{
    TempDir tmp;
    fs::create_directories(tmp.str());
    raw_exec(tmp.str(), "CREATE TABLE accounts (name TEXT)");
    CHECK(open_error(tmp.str()).find("not a job store") != std::string::npos);
}

TEST_CASE("sqlite_job_store: an invalid row fails the load")
{
    TempDir tmp;
    SqliteJobStore(tmp.str(), 0ms).close();
    raw_exec(tmp.str(), "INSERT INTO jobs VALUES (x'00112233445566778899aabbccddeeff', 'gnus', 9, 0, 0, 0, 0, 0, '')");
    SqliteJobStore store(tmp.str(), 0ms);
    CHECK_THROWS_AS(load_all(store), StoreError);
}

TEST_CASE("sqlite_job_store: an unusable directory is refused")
{
    TempDir tmp;
    SUBCASE("the directory is a file")
    {
        write_file(tmp.str(), "x");
        CHECK(open_error(tmp.str()).find("cannot create directory") != std::string::npos);
    }
    SUBCASE("jobs.db is a directory")
    {
        fs::create_directories(tmp.str() + "/jobs.db");
        CHECK(open_error(tmp.str()).find("cannot open") != std::string::npos);
    }
    SUBCASE("the directory is unreadable")
    {
        fs::create_directories(tmp.str());
        fs::permissions(tmp.str(), fs::perms::none);
        if (::geteuid() != 0) {
            CHECK_FALSE(open_error(tmp.str()).empty());
            return;
        }
        // root ignores permissions: try as nobody in a child.
        std::fflush(nullptr);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
            ::_exit(open_error(tmp.str()).find(tmp.str()) != std::string::npos ? 0 : 1);
        }
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
}

}  // TEST_SUITE
