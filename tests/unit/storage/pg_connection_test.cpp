// pg::Connection against a real PostgreSQL (make unit's throwaway cluster),
// no mock of libpq: a frozen backend (SIGSTOP) and a listener that never
// answers are bounded by the call's deadline, an Interrupt ends a wait from
// another thread, failures are sorted by kind (statement, lost, timeout,
// interrupted, read_only), multi-host strings skip a hung host, and a
// pipeline far larger than both socket buffers completes as one transaction.

#include "storage/pg_connection.h"

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../support/pg_test_db.h"
#include "../support/wait.h"

using namespace zk::storage::pg;
using zk::test::PgTestSchema;
using namespace std::chrono_literals;

namespace {

// Scheduling slack on a loaded 2-core machine (and under sanitizers): a
// bounded wait must end within its deadline plus this.
constexpr auto slack = 1000ms;
constexpr auto connect_time = 5s;    // for connections expected to succeed
constexpr auto statement_time = 5s;  // for statements expected to succeed

Deadline in(Clock::duration d) { return Clock::now() + d; }

std::chrono::milliseconds since(Clock::time_point start)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

void connect_or_fail(Connection& c)
{
    std::string error;
    REQUIRE_MESSAGE(c.connect(in(connect_time), error), error);
}

int backend_pid(Connection& c)
{
    const Result r = c.exec("SELECT pg_backend_pid()", in(statement_time));
    REQUIRE_MESSAGE(r.ok(), r.error());
    return static_cast<int>(r.integer(0, 0));
}

void exec_ok(Connection& c, const char* sql)
{
    const Result r = c.exec(sql, in(statement_time));
    REQUIRE_MESSAGE(r.ok(), sql, ": ", r.error());
}

// SIGSTOPs one backend for the life of the object: what a hung server or a
// network partition looks like to its client. SIGCONT whatever happens.
class Frozen {
public:
    explicit Frozen(int pid) : pid_(pid) { REQUIRE(::kill(pid_, SIGSTOP) == 0); }
    ~Frozen() { ::kill(pid_, SIGCONT); }
    Frozen(const Frozen&) = delete;
    Frozen& operator=(const Frozen&) = delete;

private:
    int pid_;
};

// A unix socket named like PostgreSQL's that the kernel accepts connections
// on (into the backlog) but nobody ever answers: a server hung at the
// handshake.
class SilentListener {
public:
    static constexpr int port = 5999;
    SilentListener()
    {
        char dir[] = "/tmp/zk-silent-XXXXXX";
        REQUIRE(::mkdtemp(dir));
        dir_ = dir;
        path_ = dir_ + "/.s.PGSQL." + std::to_string(port);
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
    const std::string& dir() const { return dir_; }
    std::string conninfo() const { return "host=" + dir_ + " port=" + std::to_string(port) + " dbname=zookeeper"; }

private:
    static constexpr int backlog = 16;
    std::string dir_, path_;
    int fd_ = -1;
};

// One option of the test cluster's connection string (host, port, ...).
std::string url_option(const char* keyword)
{
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(zk::test::pg_test_url().c_str(), &err);
    REQUIRE(opts);
    std::string value;
    for (PQconninfoOption* o = opts; o->keyword; ++o)
        if (std::strcmp(o->keyword, keyword) == 0 && o->val) value = o->val;
    PQconninfoFree(opts);
    return value;
}

// Ends a session from outside, as an operator's pg_terminate_backend does,
// and waits until the server has let it go.
void terminate(int pid)
{
    const std::string p = std::to_string(pid);
    REQUIRE(zk::test::pg_exec(zk::test::pg_test_url(), "SELECT pg_terminate_backend(" + p + ")").empty());
    PGconn* c = PQconnectdb(zk::test::pg_test_url().c_str());
    const std::string sql = "SELECT 1 FROM pg_stat_activity WHERE pid = " + p;
    CHECK(zk::test::wait_until([&] {
        PGresult* r = PQexec(c, sql.c_str());
        const bool gone = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0;
        PQclear(r);
        return gone;
    }));
    PQfinish(c);
}

std::vector<Connection::Statement> inserts(int n, const std::string& pad)
{
    std::vector<Connection::Statement> s;
    s.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) s.push_back({"ins", Params().add(i).add(pad)});
    return s;
}

}  // namespace

TEST_SUITE("pg_connection") {

TEST_CASE("pg connection: statements, parameters, prepared statements; a refused statement keeps the connection")
{
    PgTestSchema schema;
    Connection c(schema.conninfo());
    CHECK_FALSE(c.connected());
    connect_or_fail(c);
    CHECK(c.connected());
    Result r = c.exec("SELECT $1::int + 1", Params().add(41), in(statement_time));
    REQUIRE(r.ok());
    CHECK(r.integer(0, 0) == 42);
    CHECK(c.last_failure() == Failure::none);
    r = c.exec("SELECT 1; SELECT 2", in(statement_time));  // several statements: the last result
    CHECK(r.integer(0, 0) == 2);
    r = c.exec("SELEC 1", in(statement_time));
    CHECK_FALSE(r.ok());
    CHECK(r.sqlstate() == "42601");  // syntax_error
    CHECK(r.error().find('\n') == std::string::npos);
    CHECK(c.last_failure() == Failure::statement);
    CHECK(c.connected());
    std::string error;
    REQUIRE_MESSAGE(c.prepare("twice", "SELECT 2 * $1::int", in(statement_time), error), error);
    r = c.exec_prepared("twice", Params().add(21), in(statement_time));
    CHECK(r.integer(0, 0) == 42);
    CHECK_FALSE(c.prepare("bad", "SELECT nonsense FROM nowhere", in(statement_time), error));
    CHECK(error.find("cannot prepare bad") != std::string::npos);
    CHECK(c.connected());
}

TEST_CASE("pg connection: not connected, or a deadline already passed, fails before anything is sent")
{
    PgTestSchema schema;
    Connection c(schema.conninfo());
    CHECK_FALSE(c.exec("SELECT 1", in(statement_time)).ok());
    CHECK(c.last_failure() == Failure::lost);
    connect_or_fail(c);
    exec_ok(c, "CREATE TABLE t (x int)");
    const Result r = c.exec("INSERT INTO t VALUES (1)", Clock::now() - 1ms);
    CHECK_FALSE(r.ok());
    CHECK(c.last_failure() == Failure::timeout);
    CHECK_FALSE(c.connected());
    connect_or_fail(c);
    CHECK(c.exec("SELECT count(*) FROM t", in(statement_time)).integer(0, 0) == 0);  // it never ran
}

TEST_CASE("pg connection: a frozen backend makes exec time out at its deadline and drops the connection")
{
    PgTestSchema schema;
    Connection c(schema.conninfo());
    connect_or_fail(c);
    constexpr auto deadline = 500ms;
    std::chrono::milliseconds took{};
    {
        Frozen frozen(backend_pid(c));
        const auto start = Clock::now();
        const Result r = c.exec("SELECT 1", in(deadline));
        took = since(start);
        CHECK_FALSE(r.ok());
        CHECK(r.error().find("no answer from the database in") != std::string::npos);
    }
    MESSAGE("exec on a frozen backend, deadline ", deadline.count(), " ms: returned after ", took.count(), " ms");
    CHECK(c.last_failure() == Failure::timeout);
    CHECK(took >= deadline);
    CHECK(took < deadline + slack);
    CHECK_FALSE(c.connected());
    connect_or_fail(c);  // the owner reconnects
    exec_ok(c, "SELECT 1");
}

TEST_CASE("pg connection: a frozen backend bounds a pipeline that fills the socket buffers")
{
    PgTestSchema schema;
    Connection c(schema.conninfo());
    connect_or_fail(c);
    exec_ok(c, "CREATE TABLE t (id int PRIMARY KEY, pad text)");
    std::string error;
    REQUIRE(c.prepare("ins", "INSERT INTO t VALUES ($1, $2)", in(statement_time), error));
    const auto statements = inserts(20'000, std::string(100, 'x'));  // about 3 MB to send
    std::vector<Result> results;
    constexpr auto deadline = 500ms;
    std::chrono::milliseconds took{};
    {
        Frozen frozen(backend_pid(c));
        const auto start = Clock::now();
        CHECK_FALSE(c.pipeline(statements, results, in(deadline), error));
        took = since(start);
    }
    MESSAGE("20 000-statement pipeline on a frozen backend, deadline ", deadline.count(), " ms: returned after ",
            took.count(), " ms");
    CHECK(c.last_failure() == Failure::timeout);
    CHECK(took < deadline + slack);
    CHECK_FALSE(c.connected());
}

TEST_CASE("pg connection: a listener that never answers bounds connect() by its deadline")
{
    SilentListener silent;
    for (const std::string extra : {"", " connect_timeout=30"}) {  // libpq's own cap is longer than ours
        CAPTURE(extra);
        Connection c(silent.conninfo() + extra);
        constexpr auto deadline = 500ms;
        std::string error;
        const auto start = Clock::now();
        CHECK_FALSE(c.connect(in(deadline), error));
        const auto took = since(start);
        MESSAGE("connect to a silent listener, deadline ", deadline.count(), " ms: returned after ", took.count(),
                " ms");
        CHECK(c.last_failure() == Failure::timeout);
        CHECK(error.find("no connection in") != std::string::npos);
        CHECK(took >= deadline);
        CHECK(took < deadline + slack);
        CHECK_FALSE(c.connected());
    }
}

TEST_CASE("pg connection: a multi-host string skips a refusing host at once and a hung one after connect_timeout")
{
    SilentListener silent;
    const std::string host = url_option("host"), port = url_option("port");
    const std::string rest = " dbname=zookeeper user=" + url_option("user") + " target_session_attrs=read-write";
    {
        Connection c("host=/nonexistent-zk," + host + " port=" + port + rest);
        const auto start = Clock::now();
        connect_or_fail(c);
        CHECK(since(start) < slack);
        exec_ok(c, "SELECT 1");
    }
    // libpq ignores connect_timeout when polled: without a cap of our own
    // the hung first host would take the whole deadline.
    constexpr auto cap = 2s;  // libpq's smallest connect_timeout
    Connection c("host=" + silent.dir() + "," + host + " port=" + std::to_string(SilentListener::port) + "," + port +
                 " connect_timeout=2" + rest);
    std::string error;
    const auto start = Clock::now();
    REQUIRE_MESSAGE(c.connect(in(10s), error), error);
    const auto took = since(start);
    MESSAGE("hung first host, connect_timeout=2: connected to the second after ", took.count(), " ms");
    CHECK(took >= cap);
    CHECK(took < cap + slack);
    exec_ok(c, "SELECT 1");
}

TEST_CASE("pg connection: target_session_attrs=read-write refuses a read-only server as read_only")
{
    Connection c(zk::test::pg_test_url() + " options='-c default_transaction_read_only=on'" +
                 " target_session_attrs=read-write");
    std::string error;
    CHECK_FALSE(c.connect(in(connect_time), error));
    CHECK(c.last_failure() == Failure::read_only);
    CHECK(error.find("read-only") != std::string::npos);
    CHECK(error.find('\n') == std::string::npos);
}

TEST_CASE("pg connection: a write in a read-only session fails as read_only and drops the connection")
{
    PgTestSchema schema;
    Connection c(schema.conninfo());
    connect_or_fail(c);
    exec_ok(c, "CREATE TABLE t (x int)");
    exec_ok(c, "SET default_transaction_read_only = on");
    const Result r = c.exec("INSERT INTO t VALUES (1)", in(statement_time));
    CHECK_FALSE(r.ok());
    CHECK(r.sqlstate() == "25006");
    CHECK(c.last_failure() == Failure::read_only);
    CHECK_FALSE(c.connected());
}

TEST_CASE("pg connection: Interrupt::fire from another thread ends an exec on a frozen backend at once")
{
    PgTestSchema schema;
    Interrupt interrupt;
    Connection c(schema.conninfo(), &interrupt);
    connect_or_fail(c);
    constexpr auto fire_after = 200ms;
    std::chrono::milliseconds took{};
    {
        Frozen frozen(backend_pid(c));
        std::thread firer([&] {
            std::this_thread::sleep_for(fire_after);
            interrupt.fire();
        });
        const auto start = Clock::now();
        const Result r = c.exec("SELECT 1", in(30s));
        took = since(start);
        firer.join();
        CHECK_FALSE(r.ok());
    }
    MESSAGE("exec on a frozen backend, interrupted after ", fire_after.count(), " ms: returned after ", took.count(),
            " ms (deadline 30 s)");
    CHECK(c.last_failure() == Failure::interrupted);
    CHECK(took < fire_after + slack);
    CHECK_FALSE(c.connected());
    CHECK(interrupt.fired());
    // It stays fired: every later wait ends at once, a connect included.
    std::string error;
    const auto start = Clock::now();
    CHECK_FALSE(c.connect(in(connect_time), error));
    CHECK(c.last_failure() == Failure::interrupted);
    CHECK(since(start) < slack);
}

TEST_CASE("pg connection: a session the server ended fails the next call as lost")
{
    PgTestSchema schema;
    Connection c(schema.conninfo());
    connect_or_fail(c);
    terminate(backend_pid(c));
    const Result r = c.exec("SELECT 1", in(statement_time));
    CHECK_FALSE(r.ok());
    CHECK(c.last_failure() == Failure::lost);
    CHECK_FALSE(c.connected());
    CHECK(r.error().find('\n') == std::string::npos);
}

TEST_CASE("pg connection: a pipeline of 20 000 statements, larger than both socket buffers, completes")
{
    PgTestSchema schema;
    Connection c(schema.conninfo());
    connect_or_fail(c);
    exec_ok(c, "CREATE TABLE t (id int PRIMARY KEY, pad text)");
    std::string error;
    REQUIRE(c.prepare("ins", "INSERT INTO t VALUES ($1, $2) RETURNING pad", in(statement_time), error));
    // About 3 MB each way (each row comes back): a unix socket buffers a few
    // hundred KB, so sending everything before reading would deadlock.
    constexpr int n = 20'000;
    const auto statements = inserts(n, std::string(100, 'x'));
    std::vector<Result> results;
    const auto start = Clock::now();
    REQUIRE_MESSAGE(c.pipeline(statements, results, in(60s), error), error);
    MESSAGE("20 000-statement pipeline: ", since(start).count(), " ms");
    CHECK(c.last_failure() == Failure::none);
    REQUIRE(results.size() == n);
    CHECK(std::all_of(results.begin(), results.end(), [](const Result& r) { return r.ok() && r.rows() == 1; }));
    CHECK(c.exec("SELECT count(*) FROM t", in(statement_time)).integer(0, 0) == n);
}

TEST_CASE("pg connection: a failing statement in a pipeline fails its whole implicit transaction")
{
    PgTestSchema schema;
    Connection c(schema.conninfo());
    connect_or_fail(c);
    exec_ok(c, "CREATE TABLE t (id int PRIMARY KEY, pad text)");
    std::string error;
    REQUIRE(c.prepare("ins", "INSERT INTO t VALUES ($1, $2)", in(statement_time), error));
    auto statements = inserts(1000, "x");
    statements[500].params = Params().add(7).add("a duplicate of statement 7");
    std::vector<Result> results;
    REQUIRE(c.pipeline(statements, results, in(30s), error));  // every result came back
    REQUIRE(results.size() == statements.size());
    CHECK(results[499].ok());
    CHECK(results[500].sqlstate() == "23505");  // unique_violation
    CHECK_FALSE(results[501].ok());             // not run
    CHECK(c.last_failure() == Failure::statement);
    CHECK(error.find("duplicate key") != std::string::npos);
    CHECK(c.connected());
    CHECK(c.exec("SELECT count(*) FROM t", in(statement_time)).integer(0, 0) == 0);  // nothing committed
    REQUIRE(c.pipeline(inserts(3, "y"), results, in(statement_time), error));      // usable afterwards
    CHECK(c.exec("SELECT count(*) FROM t", in(statement_time)).integer(0, 0) == 3);
}

}  // TEST_SUITE
