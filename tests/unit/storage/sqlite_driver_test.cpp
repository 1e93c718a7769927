// The SQLite backend's own cases, beyond the contract suite
// (job_store_contract_test.cpp): the clean close's checkpoint, a crash without
// close() in a forked child, the directory lock, and refusal of bad files.
// Each test opens the store through open_store, in its own temporary directory.

#include "storage/sqlite_driver.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/store_records.h"
#include "storage/store_factory.h"

namespace fs = std::filesystem;
using zk::storage::JobRecord;
using zk::storage::JobStore;
using zk::storage::StoreError;
using zk::test::describe;
using zk::test::load_all;
using zk::test::make_record;
using zk::test::TempDir;
using namespace std::chrono_literals;
constexpr auto by_writer = JobStore::Committer::writer;

namespace {

std::unique_ptr<JobStore> open(const std::string& dir, std::chrono::milliseconds interval = 0ms)
{
    return zk::storage::open_store(zk::storage::sqlite_options(dir, interval));
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

}  // namespace

TEST_SUITE("sqlite_driver") {

TEST_CASE("sqlite_driver: its name is sqlite")
{
    TempDir tmp;
    CHECK(zk::storage::open_sqlite_driver(tmp.str())->name() == "sqlite");
}

TEST_CASE("sqlite_driver: a clean close checkpoints and removes the WAL")
{
    TempDir tmp;
    {
        const auto store = open(tmp.str());
        for (std::uint64_t n = 0; n < 100; ++n) store->put(make_record(n), by_writer);
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
            JobStore::Seq last = 0;
            for (std::uint64_t n = 0; n < 1000; ++n) last = store->put(make_record(n), by_writer);
            // Exits with the store open: no close(), no destructor, no checkpoint.
            ::_exit(store->wait_durable(last) ? 0 : 1);
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
        for (std::uint64_t n = 0; n < 5000; ++n) store->put(make_record(n), by_writer);
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
        CHECK(store->wait_durable(store->put(keyed, JobStore::Committer::caller)));
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

}  // TEST_SUITE
