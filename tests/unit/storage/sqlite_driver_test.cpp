// The SQLite backend's own cases, beyond the contract suite
// (job_store_contract_test.cpp): the clean close's checkpoint and sync(), a
// crash without close() in a forked child, the directory lock, refusal of bad
// files, and recovery: a failed commit makes the store unavailable until a
// reconnect's probe write succeeds (a trigger, a full "disk", a lock held past
// the busy timeout), and interrupt() during a commit. Each test works in its
// own temporary directory, through open_store or the driver itself.

#include "storage/sqlite_driver.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/store_records.h"
#include "../support/wait.h"
#include "storage/commit_pipeline.h"
#include "storage/store_factory.h"

namespace fs = std::filesystem;
using zk::storage::Durability;
using zk::storage::JobRecord;
using zk::storage::JobStore;
using zk::storage::StoreError;
using zk::storage::WriteKind;
using zk::test::describe;
using zk::test::in;
using zk::test::load_all;
using zk::test::make_record;
using zk::test::put_wait;
using zk::test::queued_record;
using zk::test::TempDir;
using namespace std::chrono_literals;
constexpr auto by_caller = JobStore::Committer::caller;
constexpr auto by_writer = JobStore::Committer::writer;

namespace {

std::unique_ptr<JobStore> open(const std::string& dir, std::chrono::milliseconds interval = 0ms)
{
    auto o = zk::storage::sqlite_options(dir, interval);
    o.reconnect_interval = 50ms;
    return zk::storage::open_store(o);
}

std::vector<JobRecord> reopen_and_load(const std::string& dir)
{
    const auto store = open(dir);
    return load_all(*store);
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
        const auto store = open(dir);
    } catch (const StoreError& e) {
        return e.what();
    }
    return "";
}

// A second connection holding SQLite's write lock (BEGIN IMMEDIATE) until
// release() or destruction.
class WriteLock {
public:
    explicit WriteLock(const std::string& dir)
    {
        REQUIRE(sqlite3_open((dir + "/jobs.db").c_str(), &db_) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    ~WriteLock() { release(); }
    WriteLock(const WriteLock&) = delete;
    WriteLock& operator=(const WriteLock&) = delete;
    void release()
    {
        std::lock_guard lock(mutex_);
        if (!db_) return;
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        sqlite3_close(db_);
        db_ = nullptr;
    }

private:
    std::mutex mutex_;
    sqlite3* db_ = nullptr;
};

// A reader of the store's file that keeps its WAL index mapped: while it is
// open, no other connection's close is the last one (which checkpoints), and
// a new connection opens without writing.
class WalReader {
public:
    explicit WalReader(const std::string& dir)
    {
        REQUIRE(sqlite3_open_v2((dir + "/jobs.db").c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db_, "SELECT count(*) FROM jobs", nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    ~WalReader() { sqlite3_close(db_); }
    WalReader(const WalReader&) = delete;
    WalReader& operator=(const WalReader&) = delete;

private:
    sqlite3* db_ = nullptr;
};

// The SQLite driver behind a pipeline, with its reconnects counted: a test
// can wait for the writer's attempts instead of sleeping through them.
class CountingDriver final : public zk::storage::Driver {
public:
    struct Counts {
        std::mutex mutex;
        std::condition_variable changed;
        int reconnects = 0, failed_reconnects = 0;
        bool await_reconnects(int n, std::chrono::milliseconds limit)
        {
            std::unique_lock lock(mutex);
            return changed.wait_for(lock, limit, [&] { return reconnects >= n; });
        }
        int failed() { std::lock_guard lock(mutex); return failed_reconnects; }
    };
    CountingDriver(std::unique_ptr<zk::storage::Driver> inner, std::shared_ptr<Counts> counts)
        : inner_(std::move(inner)), counts_(std::move(counts))
    {
    }
    std::string_view name() const override { return inner_->name(); }
    void load(const std::function<void(JobRecord&&)>& visit) override { inner_->load(visit); }
    bool commit(std::span<const zk::storage::Write* const> writes, std::string& error) override
    {
        return inner_->commit(writes, error);
    }
    bool sync() override { return inner_->sync(); }
    bool reconnect(std::string& error) override
    {
        const bool ok = inner_->reconnect(error);
        {
            std::lock_guard lock(counts_->mutex);
            ++counts_->reconnects;
            if (!ok) ++counts_->failed_reconnects;
        }
        counts_->changed.notify_all();
        return ok;
    }
    std::chrono::milliseconds reconnect_interval() const override { return inner_->reconnect_interval(); }
    zk::storage::Availability& availability() override { return inner_->availability(); }
    void interrupt() override { inner_->interrupt(); }
    void close() override { inner_->close(); }

private:
    std::unique_ptr<zk::storage::Driver> inner_;
    std::shared_ptr<Counts> counts_;
};

// One write for Driver::commit.
struct OneWrite {
    zk::storage::Write write;
    const zk::storage::Write* ptr = &write;
    explicit OneWrite(const JobRecord& r, WriteKind kind = WriteKind::create) : write{kind, r, false} {}
    std::span<const zk::storage::Write* const> span() const { return {&ptr, 1}; }
};

}  // namespace

TEST_SUITE("sqlite_driver") {

TEST_CASE("sqlite_driver: its name is sqlite")
{
    TempDir tmp;
    CHECK(zk::storage::open_sqlite_driver(tmp.str(), 50ms)->name() == "sqlite");
}

TEST_CASE("sqlite_driver: a clean close checkpoints and removes the WAL")
{
    TempDir tmp;
    {
        const auto store = open(tmp.str());
        for (std::uint64_t n = 0; n < 100; ++n) REQUIRE(store->put(WriteKind::create, make_record(n), by_writer));
        store->close();
    }
    CHECK_FALSE(fs::exists(tmp.str() + "/jobs.db-wal"));
    CHECK(reopen_and_load(tmp.str()).size() == 100);
}

TEST_CASE("sqlite_driver: writes waited for survive a crash without close")
{
    TempDir tmp;
    const std::string dir = tmp.str();
    std::fflush(nullptr);  // the child must not print our buffered output again
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // no doctest in here: just an exit status
        try {
            const auto store = open(dir, 2ms);
            std::optional<JobStore::Seq> last;
            for (std::uint64_t n = 0; n < 1000; ++n) last = store->put(WriteKind::create, make_record(n), by_writer);
            // Exits with the store open: no close(), no destructor, no checkpoint.
            ::_exit(last && store->wait(*last, in(30s)) == Durability::committed ? 0 : 1);
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

TEST_CASE("sqlite_driver: a second opener of the directory is refused")
{
    TempDir tmp;
    const auto store = open(tmp.str());
    const std::string err = open_error(tmp.str());
    CHECK(err.find("in use by another process") != std::string::npos);
    store->close();
    CHECK(open_error(tmp.str()).empty());  // close releases the lock
}

TEST_CASE("sqlite_driver: a garbage jobs.db is refused, naming the file")
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

TEST_CASE("sqlite_driver: a page overwritten inside the file is refused")
{
    TempDir tmp;
    {
        const auto store = open(tmp.str());
        for (std::uint64_t n = 0; n < 5000; ++n) REQUIRE(store->put(WriteKind::create, make_record(n), by_writer));
    }
    const auto size = fs::file_size(tmp.str() + "/jobs.db");
    REQUIRE(size > 20 * 4096);
    write_file(tmp.str() + "/jobs.db", std::string(4096, '\x5a'), static_cast<std::streamoff>(size / 2 / 4096 * 4096), false);
    const std::string err = open_error(tmp.str());
    INFO(err);
    CHECK(err.find(tmp.str() + "/jobs.db") != std::string::npos);
    CHECK(err.find("integrity check failed") != std::string::npos);
}

TEST_CASE("sqlite_driver: an unknown schema version is refused")
{
    TempDir tmp;
    open(tmp.str())->close();
    raw_exec(tmp.str(), "PRAGMA user_version = 99");
    const std::string err = open_error(tmp.str());
    CHECK(err.find("schema version 99 is unknown") != std::string::npos);
}

// Schema version 1 exactly as the first release wrote it, with one job.
constexpr const char* version_1_store =
    "CREATE TABLE jobs (id BLOB PRIMARY KEY NOT NULL, animal TEXT NOT NULL, state INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL, result TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO jobs VALUES (x'00112233445566778899aabbccddeeff', 'gnus', 2, 10, 11, 20, 20, 10, 'Calm gnus sleep');"
    "PRAGMA user_version = 1;";

TEST_CASE("sqlite_driver: idempotency: a version 1 store opens, migrates to 2 and keeps its jobs")
{
    TempDir tmp;
    fs::create_directories(tmp.str());
    raw_exec(tmp.str(), version_1_store);
    {
        const auto store = open(tmp.str());
        const auto rows = load_all(*store);
        REQUIRE(rows.size() == 1);
        CHECK(rows[0].animal == "gnus");
        CHECK(rows[0].result == "Calm gnus sleep");
        CHECK(rows[0].idem_key.empty());  // NULL reads as no key
        JobRecord keyed = make_record(7);
        keyed.idem_scope = "127.0.0.1";
        keyed.idem_key = "order-7";
        CHECK(put_wait(*store, WriteKind::create, keyed) == Durability::committed);
    }
    const auto rows = reopen_and_load(tmp.str());  // a second open finds version 2: no migration
    REQUIRE(rows.size() == 2);
    const auto keyed = std::find_if(rows.begin(), rows.end(), [](const JobRecord& r) { return !r.idem_key.empty(); });
    REQUIRE(keyed != rows.end());
    CHECK(keyed->idem_key == "order-7");
    CHECK(keyed->idem_scope == "127.0.0.1");
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((tmp.str() + "/jobs.db").c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int(s, 0) == 2);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

TEST_CASE("sqlite_driver: idempotency: scope and key are unique together; rows without a key never clash")
{
    TempDir tmp;
    open(tmp.str())->close();
    auto row = [](const std::string& id, const std::string& key) {
        return "INSERT INTO jobs VALUES (x'" + id + "', 'gnus', 0, 0, 0, 0, 0, 0, '', " + key + ")";
    };
    raw_exec(tmp.str(), row("00000000000000000000000000000001", "NULL, NULL"));
    raw_exec(tmp.str(), row("00000000000000000000000000000002", "NULL, NULL"));
    raw_exec(tmp.str(), row("00000000000000000000000000000003", "'a', 'k'"));
    raw_exec(tmp.str(), row("00000000000000000000000000000004", "'b', 'k'"));  // another scope
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((tmp.str() + "/jobs.db").c_str(), &db) == SQLITE_OK);
    const int rc = sqlite3_exec(db, row("00000000000000000000000000000005", "'a', 'k'").c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    CHECK(rc == SQLITE_CONSTRAINT);
}

TEST_CASE("sqlite_driver: a database of another program is refused")
{
    TempDir tmp;
    fs::create_directories(tmp.str());
    raw_exec(tmp.str(), "CREATE TABLE accounts (name TEXT)");
    CHECK(open_error(tmp.str()).find("not a job store") != std::string::npos);
}

TEST_CASE("sqlite_driver: an invalid row fails the load")
{
    TempDir tmp;
    open(tmp.str())->close();
    raw_exec(tmp.str(), "INSERT INTO jobs (id, animal, state, created_ms, started_ms, deadline_ms, finished_ms,"
                        " duration_ms, result) VALUES (x'00112233445566778899aabbccddeeff', 'gnus', 9, 0, 0, 0, 0, 0, '')");
    const auto store = open(tmp.str());
    CHECK_THROWS_AS(load_all(*store), StoreError);
}

TEST_CASE("sqlite_driver: an unusable directory is refused")
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

TEST_CASE("sqlite_driver: sync() checkpoints the WAL into the database file")
{
    TempDir tmp;
    const auto driver = zk::storage::open_sqlite_driver(tmp.str(), 50ms);
    const auto before = fs::file_size(tmp.str() + "/jobs.db");
    std::string error;
    for (std::uint64_t n = 0; n < 200; ++n) REQUIRE(driver->commit(OneWrite(make_record(n)).span(), error));
    CHECK(fs::file_size(tmp.str() + "/jobs.db-wal") > 0);
    CHECK(fs::file_size(tmp.str() + "/jobs.db") == before);  // the commits sit in the WAL
    CHECK(driver->sync());
    CHECK(fs::file_size(tmp.str() + "/jobs.db") > before);
    driver->close();
}

TEST_CASE("sqlite_driver: a failed commit makes the store unavailable; once the cause is gone it takes writes again, without a restart")
{
    TempDir tmp;
    const auto store = open(tmp.str());
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    raw_exec(tmp.str(), "CREATE TRIGGER no_insert BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'injected'); END");
    CHECK(put_wait(*store, WriteKind::create, queued_record(2)) == Durability::failed);
    // Unavailable now (a put is refused) or already reconnected: the probe
    // writes the header, which a trigger on jobs does not stop, so the store
    // comes back and the next insert fails again until the trigger goes.
    CHECK((!store->available() || put_wait(*store, WriteKind::create, queued_record(3)) != Durability::committed));
    raw_exec(tmp.str(), "DROP TRIGGER no_insert");
    REQUIRE(zk::test::wait_until([&] { return store->available(); }, 5000ms));
    CHECK(put_wait(*store, WriteKind::create, queued_record(4)) == Durability::committed);
    store->close();
    const auto rows = reopen_and_load(tmp.str());
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].id == queued_record(1).id);
    CHECK(rows[1].id == queued_record(4).id);
}

// Root ignores permissions, so a read-only directory or file proves nothing
// here; RLIMIT_FSIZE 0 fails every write(2) to a file, as a full disk does.
TEST_CASE("sqlite_driver: while no write reaches the file the probe fails too; the driver reconnects once it can")
{
    TempDir tmp;
    const auto driver = zk::storage::open_sqlite_driver(tmp.str(), 50ms);
    std::string error;
    REQUIRE(driver->commit(OneWrite(queued_record(1)).span(), error));
    // Another connection keeps the WAL index open, so the reconnect opens
    // and reads without writing, and what fails is the probe's commit.
    WalReader reader(tmp.str());
    bool committed, reconnected_while_full, up_while_full;
    std::string commit_error, reconnect_error;
    {
        zk::test::NoFileWrites full;
        committed = driver->commit(OneWrite(queued_record(2)).span(), commit_error);
        reconnected_while_full = driver->reconnect(reconnect_error);
        reconnected_while_full = reconnected_while_full || driver->reconnect(reconnect_error);
        up_while_full = driver->availability().up();
    }
    INFO("commit: ", commit_error, "; reconnect: ", reconnect_error);
    CHECK_FALSE(committed);
    CHECK(commit_error.find(tmp.str() + "/jobs.db") != std::string::npos);
    CHECK_FALSE(reconnected_while_full);
    CHECK(reconnect_error.find("disk I/O error") != std::string::npos);
    CHECK(reconnect_error.find("cannot") == std::string::npos);  // not the open or the first read: the probe's write
    CHECK_FALSE(up_while_full);
    CHECK_FALSE(driver->availability().reason().empty());
    std::string again;
    CHECK(driver->reconnect(again));
    CHECK(driver->availability().up());
    CHECK(driver->commit(OneWrite(queued_record(3)).span(), error));
    std::vector<JobRecord> rows;
    driver->load([&](JobRecord&& r) { rows.push_back(std::move(r)); });
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].id == queued_record(1).id);
    CHECK(rows[1].id == queued_record(3).id);
    driver->close();
}

TEST_CASE("sqlite_driver: while the disk takes no writes the store stays unavailable through the writer's reconnects, then recovers by itself")
{
    TempDir tmp;
    auto counts = std::make_shared<CountingDriver::Counts>();
    const auto store = std::make_unique<zk::storage::CommitPipeline>(
        std::make_unique<CountingDriver>(zk::storage::open_sqlite_driver(tmp.str(), 50ms), counts), 0ms);
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    WalReader reader(tmp.str());  // each reconnect then fails at its probe (see above)
    auto full = std::make_unique<zk::test::NoFileWrites>();
    const auto failed_write = put_wait(*store, WriteKind::create, queued_record(2));
    const bool attempts = counts->await_reconnects(3, 5000ms);
    const bool still_down = !store->available();
    const auto refused = store->put(WriteKind::create, queued_record(3), by_caller, {});
    full.reset();
    CHECK(failed_write == Durability::failed);
    CHECK(attempts);
    CHECK(counts->failed() >= 3);
    CHECK(still_down);
    CHECK_FALSE(refused);
    REQUIRE(zk::test::wait_until([&] { return store->available(); }, 5000ms));
    CHECK(put_wait(*store, WriteKind::create, queued_record(4)) == Durability::committed);
    store->close();
    CHECK(reopen_and_load(tmp.str()).size() == 2);
}

TEST_CASE("sqlite_driver: a lock held past the busy timeout makes the store unavailable; released, the store comes back")
{
    TempDir tmp;
    const auto store = open(tmp.str());
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    WriteLock lock(tmp.str());  // an operator's sqlite3 shell in a transaction, say
    const auto begun = std::chrono::steady_clock::now();
    CHECK(put_wait(*store, WriteKind::create, queued_record(2)) == Durability::failed);
    const auto took = std::chrono::steady_clock::now() - begun;
    CHECK(took >= 4500ms);  // the busy timeout (5 s) was waited out
    CHECK(took < 8s);
    CHECK_FALSE(store->available());
    lock.release();
    REQUIRE(zk::test::wait_until([&] { return store->available(); }, 10s));  // a probe may be waiting out the lock
    CHECK(put_wait(*store, WriteKind::create, queued_record(3)) == Durability::committed);
}

TEST_CASE("sqlite_driver: interrupt() ends a commit waiting for a lock at once, and that commit does not commit")
{
    TempDir tmp;
    const auto driver = zk::storage::open_sqlite_driver(tmp.str(), 50ms);
    WriteLock lock(tmp.str());
    const OneWrite w(queued_record(1));
    auto commit = std::async(std::launch::async, [&] {
        std::string error;
        return driver->commit(w.span(), error);
    });
    std::this_thread::sleep_for(200ms);  // into SQLite's busy handler (nothing shows it from outside)
    const auto begun = std::chrono::steady_clock::now();
    driver->interrupt();
    const bool ended = commit.wait_for(1s) == std::future_status::ready;
    lock.release();  // whatever the interrupt did, the commit can end now
    const bool committed = commit.get();
    CHECK(ended);
    CHECK_FALSE(committed);
    INFO("returned after ", std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count(), " s");
    std::vector<JobRecord> rows;
    driver->load([&](JobRecord&& r) { rows.push_back(std::move(r)); });
    CHECK(rows.empty());
    std::string error;
    CHECK_FALSE(driver->commit(OneWrite(queued_record(2)).span(), error));  // and every later commit fails at once
    CHECK(error.find("interrupted") != std::string::npos);
    driver->close();
}

TEST_CASE("sqlite_driver: a reconnect keeps the directory locked against a second worker")
{
    TempDir tmp;
    const auto driver = zk::storage::open_sqlite_driver(tmp.str(), 50ms);
    std::string error;
    REQUIRE(driver->reconnect(error));
    CHECK(open_error(tmp.str()).find("in use by another process") != std::string::npos);
    CHECK(driver->commit(OneWrite(queued_record(1)).span(), error));
    driver->close();
    CHECK(open_error(tmp.str()).empty());
}

}  // TEST_SUITE
