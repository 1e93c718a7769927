// pg::Pool against a real PostgreSQL: a slot comes back when `use` throws;
// a borrow waits at most `borrow`; while Availability says down it fails at
// once without connecting; connections from before an outage are replaced;
// an idle connection the server ended is retried once on a fresh one; a
// frozen server times a use out and marks the database down; a read-only
// answer drops the connection but not the database.

#include "storage/pg_pool.h"

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "../support/capture_stderr.h"
#include "../support/pg_test_db.h"
#include "../support/wait.h"
#include "util/blocking.h"

using namespace zk::storage::pg;
using zk::storage::Availability;
using zk::test::CaptureStderr;
using zk::test::PgTestSchema;
using namespace std::chrono_literals;

namespace {

constexpr auto slack = 1000ms;  // scheduling on a loaded 2-core machine, sanitizers
constexpr PoolTimeouts timeouts{500ms, 2000ms, 2000ms};

std::chrono::milliseconds since(Clock::time_point start)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// Counts new connections; optionally makes their sessions read-only.
struct CountingPrepare {
    std::atomic<int> calls{0};
    bool read_only = false;
    Pool::Prepare get()
    {
        return [this](Connection& c, Deadline deadline, std::string& error) {
            ++calls;
            if (!read_only) return true;
            const Result r = c.exec("SET default_transaction_read_only = on", deadline);
            error = r.error();
            return r.ok();
        };
    }
};

// The backend serving the pool's connection for one use.
int pid_of(Pool& pool)
{
    int pid = 0;
    std::string error;
    const bool ok = pool.with(
        [&](Connection& c, Deadline deadline) {
            const Result r = c.exec("SELECT pg_backend_pid()", deadline);
            pid = static_cast<int>(r.integer(0, 0));
            return r.ok();
        },
        error);
    REQUIRE_MESSAGE(ok, error);
    return pid;
}

// SIGSTOPs one backend for the life of the object; SIGCONT whatever happens.
class Frozen {
public:
    explicit Frozen(int pid) : pid_(pid) { REQUIRE(::kill(pid_, SIGSTOP) == 0); }
    ~Frozen() { ::kill(pid_, SIGCONT); }
    Frozen(const Frozen&) = delete;
    Frozen& operator=(const Frozen&) = delete;

private:
    int pid_;
};

// A unix socket named like PostgreSQL's that nobody ever answers on: a
// connect to it lasts its whole deadline (as pg_connection_test shows).
class SilentListener {
public:
    SilentListener()
    {
        char dir[] = "/tmp/zk-silent-XXXXXX";
        REQUIRE(::mkdtemp(dir));
        dir_ = dir;
        path_ = dir_ + "/.s.PGSQL.5999";
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, backlog) == 0);
    }
    ~SilentListener()
    {
        ::close(fd_);
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    SilentListener(const SilentListener&) = delete;
    SilentListener& operator=(const SilentListener&) = delete;
    std::string conninfo() const { return "host=" + dir_ + " port=5999 dbname=zookeeper"; }

private:
    static constexpr int backlog = 16;
    std::string dir_, path_;
    int fd_ = -1;
};

bool select_one(Pool& pool, std::string& error)
{
    return pool.with([](Connection& c, Deadline deadline) { return c.exec("SELECT 1", deadline).ok(); }, error);
}

}  // namespace

TEST_SUITE("pg_pool") {

TEST_CASE("pg pool: a use gets a connected connection and its deadline; the connection is reused")
{
    PgTestSchema schema;
    Availability availability("test");
    CountingPrepare prepare;
    Pool pool(schema.conninfo(), 2, timeouts, prepare.get(), nullptr, availability);
    std::string error;
    const bool ok = pool.with(
        [&](Connection& c, Deadline deadline) {
            CHECK(c.connected());
            CHECK(deadline > Clock::now() + timeouts.statement - slack);
            CHECK(deadline <= Clock::now() + timeouts.statement);
            return true;
        },
        error);
    CHECK(ok);
    CHECK(pid_of(pool) == pid_of(pool));
    CHECK(prepare.calls == 1);
    CHECK(availability.up());
}

TEST_CASE("pg pool: the slot comes back when use throws")
{
    PgTestSchema schema;
    Availability availability("test");
    CountingPrepare prepare;
    Pool pool(schema.conninfo(), 1, timeouts, prepare.get(), nullptr, availability);
    std::string error;
    CHECK_THROWS_AS(pool.with([](Connection&, Deadline) -> bool { throw std::runtime_error("use failed"); }, error),
                    std::runtime_error);
    const auto start = Clock::now();
    CHECK_MESSAGE(select_one(pool, error), error);  // a leaked slot would wait `borrow`, then fail
    CHECK(since(start) < timeouts.borrow);
}

TEST_CASE("pg pool: a borrow waits at most `borrow` while every connection is lent, saying will_block first")
{
    PgTestSchema schema;
    Availability availability("test");
    CountingPrepare prepare;
    Pool pool(schema.conninfo(), 1, timeouts, prepare.get(), nullptr, availability);
    std::atomic<bool> lent{false}, release{false};
    std::thread holder([&] {
        std::string e;
        pool.with(
            [&](Connection&, Deadline) {
                lent = true;
                while (!release) std::this_thread::sleep_for(1ms);
                return true;
            },
            e);
    });
    REQUIRE(zk::test::wait_until([&] { return lent.load(); }));
    int will_block = 0;
    std::string error;
    Clock::time_point start;
    bool ok = true;
    {
        zk::util::BlockingHook hook([&] { ++will_block; });
        start = Clock::now();
        ok = select_one(pool, error);
    }
    const auto took = since(start);
    release = true;
    holder.join();
    MESSAGE("borrow with every connection lent, borrow ", timeouts.borrow.count(), " ms: failed after ", took.count(),
            " ms");
    CHECK_FALSE(ok);
    CHECK(error.find("no database connection free within 500 ms") != std::string::npos);
    CHECK(took >= timeouts.borrow);
    CHECK(took < timeouts.borrow + slack);
    CHECK(will_block >= 1);
    CHECK(availability.up());  // a busy pool is not a down database
    CHECK(select_one(pool, error));
}

TEST_CASE("pg pool: while the database is down it fails at once, without trying to connect")
{
    SilentListener silent;  // any connect attempt would last timeouts.connect
    Availability availability("test");
    CountingPrepare prepare;
    Pool pool(silent.conninfo(), 1, timeouts, prepare.get(), nullptr, availability);
    availability.failed("frozen for the test");
    int uses = 0;
    std::string error;
    const auto start = Clock::now();
    CHECK_FALSE(pool.with(
        [&](Connection&, Deadline) {
            ++uses;
            return true;
        },
        error));
    const auto took = since(start);
    MESSAGE("with() while down: ", took.count(), " ms (connect timeout ", timeouts.connect.count(), " ms)");
    CHECK(took < timeouts.connect / 10);
    CHECK(uses == 0);
    CHECK(error.find("frozen for the test") != std::string::npos);
    // The control: once up, the same call does try, and waits the connect
    // deadline out; the failed connect marks the database down again.
    availability.succeeded();
    const auto tried = Clock::now();
    CHECK_FALSE(select_one(pool, error));
    const auto connect_took = since(tried);
    MESSAGE("with() while up against a silent listener: ", connect_took.count(), " ms");
    CHECK(connect_took >= timeouts.connect);
    CHECK(connect_took < timeouts.connect + slack);
    CHECK_FALSE(availability.up());
    CHECK(availability.reason().find("no connection in") != std::string::npos);
    CHECK(prepare.calls == 0);
}

TEST_CASE("pg pool: connections made before an outage are replaced when it ends")
{
    PgTestSchema schema;
    Availability availability("test");
    CountingPrepare prepare;
    Pool pool(schema.conninfo(), 1, timeouts, prepare.get(), nullptr, availability);
    const int before = pid_of(pool);
    CHECK(pid_of(pool) == before);  // reused while nothing happens
    availability.failed("an outage");
    availability.succeeded();
    const int after = pid_of(pool);
    CHECK(after != before);
    CHECK(prepare.calls == 2);
    CHECK(pid_of(pool) == after);
}

TEST_CASE("pg pool: an idle connection the server ended is retried once on a fresh one; the database stays up")
{
    PgTestSchema schema;
    CaptureStderr capture;
    Availability availability("test");
    CountingPrepare prepare;
    Pool pool(schema.conninfo(), 1, timeouts, prepare.get(), nullptr, availability);
    const int before = pid_of(pool);
    REQUIRE(schema.exec("SELECT pg_terminate_backend(" + std::to_string(before) + ")").empty());
    PGconn* watcher = PQconnectdb(schema.conninfo().c_str());
    const std::string gone_sql = "SELECT 1 FROM pg_stat_activity WHERE pid = " + std::to_string(before);
    REQUIRE(zk::test::wait_until([&] {
        PGresult* r = PQexec(watcher, gone_sql.c_str());
        const bool gone = PQntuples(r) == 0;
        PQclear(r);
        return gone;
    }));
    PQfinish(watcher);
    int uses = 0, after = 0;
    std::string error;
    const bool ok = pool.with(
        [&](Connection& c, Deadline deadline) {
            ++uses;
            const Result r = c.exec("SELECT pg_backend_pid()", deadline);
            after = static_cast<int>(r.integer(0, 0));
            return r.ok();
        },
        error);
    const std::string log = capture.text();
    capture.restore();
    CHECK_MESSAGE(ok, error);
    CHECK(uses == 2);
    CHECK(after != before);
    CHECK(after != 0);
    CHECK(availability.up());
    CHECK(availability.epoch() == 0);
    CHECK(log.find("store_unavailable") == std::string::npos);
}

TEST_CASE("pg pool: a frozen server times a use out at its deadline and marks the database down")
{
    PgTestSchema schema;
    Availability availability("test");
    CountingPrepare prepare;
    const PoolTimeouts quick{500ms, 500ms, 500ms};
    Pool pool(schema.conninfo(), 1, quick, prepare.get(), nullptr, availability);
    std::string error;
    std::chrono::milliseconds took{};
    {
        Frozen frozen(pid_of(pool));
        const auto start = Clock::now();
        CHECK_FALSE(select_one(pool, error));
        took = since(start);
        const auto again = Clock::now();
        CHECK_FALSE(select_one(pool, error));  // down now: at once
        CHECK(since(again) < quick.statement / 2);
    }
    MESSAGE("use on a frozen server, statement deadline ", quick.statement.count(), " ms: failed after ", took.count(),
            " ms");
    CHECK(took >= quick.statement);
    CHECK(took < quick.statement + slack);
    CHECK_FALSE(availability.up());
    CHECK(availability.reason().find("no answer from the database") != std::string::npos);
    availability.succeeded();  // as the store's writer does when its probe succeeds
    CHECK_MESSAGE(select_one(pool, error), error);
}

TEST_CASE("pg pool: a read-only answer drops the connection without marking the database down")
{
    PgTestSchema schema;
    REQUIRE(schema.exec("CREATE TABLE t (x int)").empty());
    Availability availability("test");
    CountingPrepare prepare;
    prepare.read_only = true;
    Pool pool(schema.conninfo(), 1, timeouts, prepare.get(), nullptr, availability);
    const int before = pid_of(pool);
    Failure failure = Failure::none;
    std::string error;
    CHECK_FALSE(pool.with(
        [&](Connection& c, Deadline deadline) {
            const bool ok = c.exec("INSERT INTO t VALUES (1)", deadline).ok();
            failure = c.last_failure();
            return ok;
        },
        error));
    CHECK(failure == Failure::read_only);
    CHECK(error.find("read-only") != std::string::npos);
    CHECK(availability.up());
    CHECK(pid_of(pool) != before);  // a new connection: after a failover it finds the primary
}

}  // TEST_SUITE
