// A PostgreSQL schema of its own for one test: created in the database that
// ZK_TEST_PG_URL names (make unit starts a throwaway cluster and sets it),
// dropped afterwards. A test without the variable fails; it is never skipped.
#pragma once

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>

#include <unistd.h>

namespace zk::test {

inline std::string pg_test_url()
{
    const char* url = std::getenv("ZK_TEST_PG_URL");
    return url ? url : "";
}

// Runs one statement on a connection of its own; the server's message, or
// empty on success.
inline std::string pg_exec(const std::string& conninfo, const std::string& sql)
{
    PGconn* c = PQconnectdb(conninfo.c_str());
    std::string error;
    if (PQstatus(c) != CONNECTION_OK) {
        error = PQerrorMessage(c);
    } else {
        PGresult* r = PQexec(c, sql.c_str());
        const auto st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
        PQclear(r);
    }
    PQfinish(c);
    return error;
}

class PgTestSchema {
public:
    PgTestSchema()
    {
        static std::atomic<int> counter{0};
        url_ = pg_test_url();
        REQUIRE_MESSAGE(!url_.empty(), "ZK_TEST_PG_URL is not set: run the unit tests with make unit");
        name_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1'000'000);
        const std::string err = pg_exec(url_, "CREATE SCHEMA " + name_);
        REQUIRE_MESSAGE(err.empty(), err);
    }
    ~PgTestSchema() { pg_exec(url_, "DROP SCHEMA IF EXISTS " + name_ + " CASCADE"); }
    PgTestSchema(const PgTestSchema&) = delete;
    PgTestSchema& operator=(const PgTestSchema&) = delete;

    // The test database with this schema first on the search path.
    std::string conninfo() const { return url_ + " options='-c search_path=" + name_ + "'"; }
    const std::string& name() const { return name_; }
    std::string exec(const std::string& sql) const { return pg_exec(conninfo(), sql); }

private:
    std::string url_, name_;
};

}  // namespace zk::test
