// The PostgreSQL driver's own cases, beyond the shared contract suite:
// refusing a bad or unreachable database at start-up, two workers migrating
// at once, a newer schema, conditional writes (a finished job never
// changes), the shared reads (fetch, list with its keyset cursor, rescue,
// purge, the clock), a lost connection recovered without a restart, and a
// statement timeout that bounds a read held up by a lock.

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "../support/pg_test_db.h"
#include "../support/store_records.h"
#include "../support/wait.h"
#include "storage/postgres_schema.h"
#include "storage/shared_store.h"
#include "storage/store_factory.h"

using zk::storage::JobRecord;
using zk::storage::JobStore;
using zk::storage::RecordState;
using zk::storage::StoreError;
using zk::test::make_id;
using zk::test::make_record;
using zk::test::PgTestSchema;
using namespace std::chrono_literals;
constexpr auto by_caller = JobStore::Committer::caller;

namespace {

zk::storage::StoreOptions pg_options(const std::string& url)
{
    zk::storage::StoreOptions o;
    o.backend = zk::storage::Backend::postgresql;
    o.url = url;
    o.read_connections = 2;
    o.statement_timeout = 5s;
    o.connect_timeout = 2s;
    o.reconnect_interval = 100ms;
    return o;
}

JobRecord unfinished(std::uint64_t n, std::int64_t deadline_ms)
{
    JobRecord r = make_record(n * 4 + 1);  // make_record's state cycles; 4k+1 is running
    r.state = RecordState::running;
    r.deadline_ms = deadline_ms;
    return r;
}

std::string open_error(const zk::storage::StoreOptions& o)
{
    try {
        zk::storage::open_store(o);
    } catch (const StoreError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_SUITE("postgres_driver") {

TEST_CASE("postgres: a bad connection string and an unreachable database are refused with the reason")
{
    CHECK(open_error(pg_options("nonsense = = here")).find("bad connection string") != std::string::npos);
    const std::string e = open_error(pg_options("host=/nonexistent-zk dbname=zookeeper connect_timeout=1"));
    CHECK(e.find("cannot connect") != std::string::npos);
    CHECK(e.find("host=/nonexistent-zk") != std::string::npos);  // names the database
    CHECK(open_error(pg_options("host=/nonexistent-zk password=s3cret")).find("s3cret") == std::string::npos);
}

TEST_CASE("postgres: two workers starting at once on an empty database migrate it once")
{
    PgTestSchema schema;
    auto open = [&] { return zk::storage::open_store(pg_options(schema.conninfo())); };
    auto a = std::async(std::launch::async, open);
    auto b = std::async(std::launch::async, open);
    auto sa = a.get();
    auto sb = b.get();
    CHECK(sa->wait_durable(sa->put(make_record(1), by_caller)));
    CHECK(sb->wait_durable(sb->put(make_record(2), by_caller)));
    CHECK(zk::test::load_all(*sa).size() == 2);
    PGconn* c = PQconnectdb(schema.conninfo().c_str());
    PGresult* r = PQexec(c, "SELECT count(*), max(version) FROM zookeeper_schema");
    CHECK(std::string(PQgetvalue(r, 0, 0)) == "1");
    CHECK(std::string(PQgetvalue(r, 0, 1)) == std::to_string(zk::storage::pg::migrations.size()));
    PQclear(r);
    PQfinish(c);
}

TEST_CASE("postgres: a schema newer than this build is refused")
{
    PgTestSchema schema;
    { zk::storage::open_store(pg_options(schema.conninfo())); }
    REQUIRE(schema.exec("UPDATE zookeeper_schema SET version = 99").empty());
    CHECK(open_error(pg_options(schema.conninfo())).find("schema version 99 is newer") != std::string::npos);
}

TEST_CASE("postgres: a finished job never changes, and the waiter is told its write was skipped")
{
    PgTestSchema schema;
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    JobRecord r = unfinished(1, 1000);
    CHECK(store->wait(store->put(r, by_caller)) == JobStore::Durability::committed);
    JobRecord done = r;
    done.state = RecordState::done;
    done.result = "Sleepy aardvarks dance slowly";
    done.finished_ms = 2000;
    CHECK(store->wait(store->put(done, by_caller)) == JobStore::Durability::committed);
    JobRecord cancel = r;
    cancel.state = RecordState::cancelled;
    cancel.finished_ms = 3000;
    CHECK(store->wait(store->put(cancel, by_caller)) == JobStore::Durability::skipped);
    std::optional<JobRecord> now;
    REQUIRE(store->shared()->fetch(r.id, now));
    REQUIRE(now);
    CHECK(now->state == RecordState::done);
    CHECK(now->result == done.result);
}

TEST_CASE("postgres: fetch_many reads several jobs in one statement, leaving out unknown ids")
{
    PgTestSchema schema;
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    const JobRecord running = unfinished(1, 1000);
    JobRecord done = unfinished(2, 1000);
    done.state = RecordState::done;
    done.result = "Calm elks sleep wildly";
    REQUIRE(store->wait_durable(store->put(running, by_caller)));
    REQUIRE(store->wait_durable(store->put(done, by_caller)));
    std::vector<JobRecord> rows;
    REQUIRE(store->shared()->fetch_many({running.id, done.id, make_id(99)}, rows));
    REQUIRE(rows.size() == 2);
    std::sort(rows.begin(), rows.end(), [](const JobRecord& a, const JobRecord& b) { return a.id < b.id; });
    CHECK(rows[0].id == running.id);
    CHECK(rows[0].state == RecordState::running);
    CHECK(rows[1].state == RecordState::done);
    CHECK(rows[1].result == done.result);
    REQUIRE(store->shared()->fetch_many({make_id(98)}, rows));  // none known: no rows, no error
    CHECK(rows.empty());
    REQUIRE(store->shared()->fetch_many({}, rows));
    CHECK(rows.empty());
}

TEST_CASE("postgres: list pages newest first with a keyset cursor and filters")
{
    PgTestSchema schema;
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    for (std::uint64_t n = 1; n <= 10; ++n) store->put(make_record(n), JobStore::Committer::writer);
    REQUIRE(store->wait_durable(store->put(make_record(11), by_caller)));
    zk::storage::ListQuery q;
    q.limit = 4;
    std::vector<JobRecord> page;
    REQUIRE(store->shared()->list(q, page));
    REQUIRE(page.size() == 4);
    CHECK(page[0].id == make_id(11));
    q.before = page.back().id;
    REQUIRE(store->shared()->list(q, page));
    CHECK(page[0].id == make_id(7));
    q = {};
    q.state = RecordState::done;  // make_record(n) is done when n % 4 == 2
    REQUIRE(store->shared()->list(q, page));
    CHECK(page.size() == 3);
    q = {};
    q.animal = "zebras";
    REQUIRE(store->shared()->list(q, page));
    CHECK(page.empty());
}

TEST_CASE("postgres: rescue completes only late unfinished jobs; purge deletes only old finished ones")
{
    PgTestSchema schema;
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    const JobRecord late = unfinished(1, 1000), early = unfinished(2, 5000);
    JobRecord cancelled = unfinished(3, 500);
    cancelled.state = RecordState::cancelled;
    cancelled.finished_ms = 400;
    for (const JobRecord* r : std::initializer_list<const JobRecord*>{&late, &early, &cancelled}) REQUIRE(store->wait_durable(store->put(*r, by_caller)));
    int finished_calls = 0;
    const auto rescued = store->shared()->rescue(2000, 100, [&](JobRecord& r) {
        ++finished_calls;
        r.state = RecordState::done;
        r.finished_ms = 2000;
        r.result = "Rescued " + r.animal;
    });
    REQUIRE(rescued);
    CHECK(*rescued == 1);
    CHECK(finished_calls == 1);
    std::optional<JobRecord> got;
    REQUIRE(store->shared()->fetch(late.id, got));
    CHECK((got && got->state == RecordState::done && got->result == "Rescued aardvarks"));
    REQUIRE(store->shared()->fetch(early.id, got));
    CHECK((got && got->state == RecordState::running));
    const auto purged = store->shared()->purge(1000, 100);  // finished before 1000: the cancelled one
    REQUIRE(purged);
    CHECK(*purged == 1);
    REQUIRE(store->shared()->fetch(cancelled.id, got));
    CHECK_FALSE(got);
    const auto now = store->shared()->now_ms();
    REQUIRE(now);
    const auto local = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    CHECK(std::abs(*now - local) < 5000);  // the same machine's clock, give or take
}

TEST_CASE("postgres: a lost connection fails its batch, then the store recovers by itself")
{
    PgTestSchema schema;
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    REQUIRE(store->wait_durable(store->put(make_record(1), by_caller)));
    // Every connection of ours to this database, the committing one included.
    REQUIRE(schema.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = 'zookeeper' AND pid <> pg_backend_pid()")
                .empty());
    CHECK_FALSE(store->wait_durable(store->put(make_record(2), by_caller)));
    CHECK_FALSE(store->healthy());
    CHECK_FALSE(store->wait_durable(store->put(make_record(3), by_caller)));  // refused while down
    CHECK(zk::test::wait_until([&] { return store->healthy(); }, 5s));
    CHECK(store->wait_durable(store->put(make_record(4), by_caller)));
    std::optional<JobRecord> got;
    REQUIRE(store->shared()->fetch(make_id(4), got));  // the read pool reconnected too
    CHECK(got.has_value());
}

TEST_CASE("postgres: a read held up by a lock gives up at the statement timeout")
{
    PgTestSchema schema;
    auto o = pg_options(schema.conninfo());
    o.statement_timeout = 300ms;
    const auto store = zk::storage::open_store(o);
    REQUIRE(store->wait_durable(store->put(make_record(1), by_caller)));
    PGconn* locker = PQconnectdb(schema.conninfo().c_str());
    PQclear(PQexec(locker, "BEGIN"));
    PGresult* lr = PQexec(locker, "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE");
    REQUIRE(PQresultStatus(lr) == PGRES_COMMAND_OK);
    PQclear(lr);
    std::optional<JobRecord> got;
    const auto begun = std::chrono::steady_clock::now();
    CHECK_FALSE(store->shared()->fetch(make_id(1), got));
    const auto took = std::chrono::steady_clock::now() - begun;
    CHECK(took >= 250ms);
    CHECK(took < 3s);
    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);
    CHECK(store->shared()->fetch(make_id(1), got));
    CHECK(got.has_value());
}

}  // TEST_SUITE
