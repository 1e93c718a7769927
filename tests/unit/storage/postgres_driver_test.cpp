// The PostgreSQL driver's own cases, beyond the shared contract suite, all
// against the real test cluster: refusing a bad connection string at
// start-up, opening degraded while the database does not answer (and
// migrating once it does), two workers migrating at once, a newer schema, the statements
// made from the column table (every column as stored, NULL keys, bytea),
// conditional writes, the shared reads (fetch, list with its keyset cursor,
// rescue of 1000+ rows in one call, purge, the clock), faults (the commit
// connection terminated idle or mid-batch, a frozen server, a read held up by
// a lock) and the cancel feed (delivery across stores, resumed after each
// reconnection, listening() while it cannot connect).

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/capture_stderr.h"
#include "../support/pg_test_db.h"
#include "../support/store_records.h"
#include "../support/wait.h"
#include "storage/job_record.h"
#include "storage/postgres_schema.h"
#include "storage/shared_store.h"
#include "storage/store_factory.h"

using zk::storage::Durability;
using zk::storage::JobRecord;
using zk::storage::JobStore;
using zk::storage::RecordId;
using zk::storage::RecordState;
using zk::storage::StoreError;
using zk::storage::WriteKind;
using zk::test::describe;
using zk::test::finished_record;
using zk::test::in;
using zk::test::make_id;
using zk::test::make_record;
using zk::test::PgProxy;
using zk::test::PgSession;
using zk::test::PgTestSchema;
using zk::test::put_wait;
using zk::test::queued_record;
using zk::test::Settlements;
using namespace std::chrono_literals;
constexpr auto by_caller = JobStore::Committer::caller;
constexpr auto by_writer = JobStore::Committer::writer;

namespace {

zk::storage::StoreOptions pg_options(const std::string& url)
{
    zk::storage::StoreOptions o;
    o.backend = zk::storage::Backend::postgresql;
    o.url = url;
    o.read_connections = 2;
    o.statement_timeout = 5s;
    o.connect_timeout = 2s;
    o.reconnect_interval = 50ms;
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

std::string hex(const unsigned char* p, std::size_t n)
{
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        s.push_back(digits[p[i] >> 4]);
        s.push_back(digits[p[i] & 15]);
    }
    return s;
}
std::string hex(const std::string& bytes) { return hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()); }

// The uuid's text form, as PostgreSQL prints it.
std::string uuid_text(const RecordId& id)
{
    const std::string h = hex(id.data(), id.size());
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

// What a store's cancel feed delivered, in order, and how often it resumed.
class FeedLog {
public:
    zk::storage::CancelFeed feed()
    {
        return {[this](const RecordId& id, std::int64_t finished_ms) {
                    {
                        std::lock_guard lock(mutex_);
                        cancels_.emplace_back(id, finished_ms);
                        events_.push_back("cancel");
                    }
                    changed_.notify_all();
                },
                [this] {
                    {
                        std::lock_guard lock(mutex_);
                        ++resumed_;
                        events_.push_back("resumed");
                    }
                    changed_.notify_all();
                }};
    }
    std::vector<std::pair<RecordId, std::int64_t>> cancels() const
    {
        std::lock_guard lock(mutex_);
        return cancels_;
    }
    std::vector<std::string> events() const
    {
        std::lock_guard lock(mutex_);
        return events_;
    }
    int resumed() const
    {
        std::lock_guard lock(mutex_);
        return resumed_;
    }
    bool await_cancels(std::size_t n, std::chrono::milliseconds limit = 5s) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return cancels_.size() >= n; });
    }
    bool await_resumed(int n, std::chrono::milliseconds limit = 5s) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return resumed_ >= n; });
    }

private:
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<std::pair<RecordId, std::int64_t>> cancels_;
    std::vector<std::string> events_;
    int resumed_ = 0;
};

// The sessions of a store: its commit connection (the only one that inserts)
// and its cancel feed's listener.
constexpr const char* commit_session = "query LIKE 'INSERT INTO jobs%'";
constexpr const char* listener_session = "query IN ('LISTEN zookeeper_cancels', 'SELECT 1')";

}  // namespace

TEST_SUITE("postgres_driver") {

TEST_CASE("postgres: a bad connection string is refused with the reason, the password left out")
{
    CHECK(open_error(pg_options("nonsense = = here")).find("bad connection string") != std::string::npos);
    CHECK(open_error(pg_options("nonsense = = here password=s3cret")).find("s3cret") == std::string::npos);
}

// A worker restarted during an outage must rejoin by itself: it opens
// degraded and migrates on its first connect.
TEST_CASE("postgres: a database that does not answer at start opens the store unavailable, naming it; once it answers an empty schema is migrated and writes commit")
{
    PgTestSchema schema;
    PgProxy proxy;
    proxy.refuse();
    zk::test::CaptureStderr log;
    const auto store = zk::storage::open_store(pg_options(proxy.conninfo(schema.conninfo())));
    CHECK_FALSE(store->available());
    CHECK_FALSE(store->put(WriteKind::create, queued_record(1), by_caller, {}));  // refused at once
    std::optional<JobRecord> row;
    CHECK_FALSE(store->shared()->fetch(make_id(1), row));
    const std::string said = log.text();
    CHECK(said.find("event=store_unavailable") != std::string::npos);
    CHECK(said.find("zk-pgproxy") != std::string::npos);  // names the database: the proxy's socket folder
    PgSession db(schema.conninfo());
    CHECK(db.value("SELECT to_regclass('jobs') IS NULL") == "t");  // nothing made yet
    proxy.pass();
    REQUIRE(zk::test::wait_until([&] { return store->available(); }, 10s));
    CHECK(put_wait(*store, WriteKind::create, queued_record(2)) == Durability::committed);
    CHECK(store->shared()->fetch(queued_record(2).id, row));
    CHECK(row.has_value());
    CHECK(db.value("SELECT max(version) FROM zookeeper_schema") ==
          std::to_string(zk::storage::pg::migrations.size()));
}

TEST_CASE("postgres: two workers starting at once on an empty database migrate it once")
{
    PgTestSchema schema;
    auto open = [&] { return zk::storage::open_store(pg_options(schema.conninfo())); };
    auto a = std::async(std::launch::async, open);
    auto b = std::async(std::launch::async, open);
    auto sa = a.get();
    auto sb = b.get();
    CHECK(put_wait(*sa, WriteKind::create, make_record(1)) == Durability::committed);
    CHECK(put_wait(*sb, WriteKind::create, make_record(2)) == Durability::committed);
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
    CHECK(put_wait(*store, WriteKind::create, r) == Durability::committed);
    JobRecord done = r;
    done.state = RecordState::done;
    done.result = "Sleepy aardvarks dance slowly";
    done.finished_ms = 2000;
    CHECK(put_wait(*store, WriteKind::finish, done) == Durability::committed);
    JobRecord cancel = r;
    cancel.state = RecordState::cancelled;
    cancel.finished_ms = 3000;
    CHECK(put_wait(*store, WriteKind::finish, cancel) == Durability::skipped);  // zk_cancel, 0 rows
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
    REQUIRE(put_wait(*store, WriteKind::create, running) == Durability::committed);
    REQUIRE(put_wait(*store, WriteKind::create, done) == Durability::committed);
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
    for (std::uint64_t n = 1; n <= 10; ++n) REQUIRE(store->put(WriteKind::create, make_record(n), by_writer));
    REQUIRE(put_wait(*store, WriteKind::create, make_record(11)) == Durability::committed);
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
    for (const JobRecord* r : std::initializer_list<const JobRecord*>{&late, &early, &cancelled})
        REQUIRE(put_wait(*store, WriteKind::create, *r) == Durability::committed);
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

TEST_CASE("postgres: a read held up by a lock gives up at the statement timeout")
{
    PgTestSchema schema;
    auto o = pg_options(schema.conninfo());
    o.statement_timeout = 300ms;
    const auto store = zk::storage::open_store(o);
    REQUIRE(put_wait(*store, WriteKind::create, make_record(1)) == Durability::committed);
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

TEST_CASE("postgres: the statements made from the column table store every column as it is and read it back")
{
    PgTestSchema schema;
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    JobRecord keyed;
    keyed.id = make_id(0xfedcba9876543210ULL);
    keyed.animal = "gnus \xc3\xa9 ' \" ;";
    keyed.state = RecordState::running;
    keyed.created_ms = std::numeric_limits<std::int64_t>::max();
    keyed.started_ms = std::numeric_limits<std::int64_t>::min();
    keyed.deadline_ms = -1;
    keyed.finished_ms = 0;
    keyed.duration_ms = std::numeric_limits<std::int32_t>::min();
    for (int b = 255; b >= 0; --b) keyed.result.push_back(static_cast<char>(b));  // any bytes: bytea
    keyed.idem_scope = "user:o'brien";
    keyed.idem_key = "\"quoted\" key ~ 255";
    JobRecord keyless = queued_record(3);
    REQUIRE(put_wait(*store, WriteKind::create, keyed) == Durability::committed);
    REQUIRE(put_wait(*store, WriteKind::create, keyless) == Durability::committed);

    PgSession db(schema.conninfo());
    auto rows = db.rows("SELECT id::text, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms,"
                        " encode(result, 'hex'), idem_scope, idem_key FROM jobs ORDER BY id");
    REQUIRE(rows.size() == 2);
    const auto& k = rows[1];
    CHECK(k[0] == uuid_text(keyed.id));
    CHECK(k[1] == keyed.animal);
    CHECK(k[2] == "1");
    CHECK(k[3] == "9223372036854775807");
    CHECK(k[4] == "-9223372036854775808");
    CHECK(k[5] == "-1");
    CHECK(k[6] == "0");
    CHECK(k[7] == "-2147483648");
    CHECK(k[8] == hex(keyed.result));
    CHECK(k[9] == keyed.idem_scope);
    CHECK(k[10] == keyed.idem_key);
    const auto& n = rows[0];
    CHECK(n[0] == uuid_text(keyless.id));
    CHECK(n[8] == "");                 // an empty result is empty bytes, not NULL
    CHECK_FALSE(n[9].has_value());     // no key: NULL, so the unique index leaves the row out
    CHECK_FALSE(n[10].has_value());

    // Every read path gives the same records back.
    auto* shared = store->shared();
    std::optional<JobRecord> got;
    REQUIRE(shared->fetch(keyed.id, got));
    REQUIRE(got);
    CHECK(describe(*got) == describe(keyed));
    bool in_flight = true;
    REQUIRE(shared->fetch_key(keyed.idem_scope, keyed.idem_key, got, in_flight));
    REQUIRE(got);
    CHECK_FALSE(in_flight);
    CHECK(describe(*got) == describe(keyed));
    REQUIRE(shared->fetch_key("", "", got, in_flight));
    CHECK_FALSE(got);  // a keyless job is not found under an empty key
    CHECK_FALSE(in_flight);
    std::vector<JobRecord> many;
    REQUIRE(shared->fetch_many({keyless.id, keyed.id}, many));
    REQUIRE(many.size() == 2);
    std::vector<JobRecord> listed;
    REQUIRE(shared->list({}, listed));
    REQUIRE(listed.size() == 2);
    CHECK(describe(listed[0]) == describe(keyed));  // newest (largest id) first
    CHECK(describe(listed[1]) == describe(keyless));
    const auto loaded = zk::test::load_all(*store);
    REQUIRE(loaded.size() == 2);
    CHECK(describe(loaded[0]) == describe(keyless));
    CHECK(describe(loaded[1]) == describe(keyed));

    // zk_finish writes the columns a finish changes, and only those.
    JobRecord done = finished_record(keyed, RecordState::done, 42);
    done.result = std::string("\0\x01\xff\x80 ok", 7);
    done.animal = "zebras";
    done.idem_key = "changed";
    REQUIRE(put_wait(*store, WriteKind::finish, done) == Durability::committed);
    rows = db.rows("SELECT animal, state, started_ms, finished_ms, encode(result, 'hex'), idem_key FROM jobs WHERE id = '" +
                   uuid_text(keyed.id) + "'");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][0] == keyed.animal);
    CHECK(rows[0][1] == "2");
    CHECK(rows[0][2] == std::to_string(done.started_ms));
    CHECK(rows[0][3] == "42");
    CHECK(rows[0][4] == hex(done.result));
    CHECK(rows[0][5] == keyed.idem_key);

    // The insert names every column of the table, from the one list.
    const auto& statements = zk::storage::pg::statements();
    const auto create = std::find_if(statements.begin(), statements.end(), [](const auto& st) { return std::string(st.name) == "zk_create"; });
    REQUIRE(create != statements.end());
    CHECK(create->sql.find("(" + zk::storage::column_list() + ")") != std::string::npos);
}

// No batch was in flight when the session ended, so none may fail: the
// server said goodbye (FATAL 57P01) before the next batch was sent, and the
// driver's own comment promises to make such a connection anew before the batch.
TEST_CASE("postgres: a commit connection terminated while idle is replaced before the next batch; no write fails and the store never goes unavailable")
{
    PgTestSchema schema;
    zk::test::CaptureStderr log;
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    std::optional<JobRecord> got;
    REQUIRE(store->shared()->fetch(make_id(1), got));  // the read pool holds a connection too
    REQUIRE(schema.sessions(commit_session) == 1);
    REQUIRE(schema.terminate() >= 2);  // every session of the store, as a server restart would
    REQUIRE(zk::test::wait_until([&] { return schema.sessions() == 0; }, 5000ms));
    const auto next = put_wait(*store, WriteKind::create, queued_record(2));
    const bool available_between = store->available();
    const auto after = put_wait(*store, WriteKind::create, queued_record(3));
    log.restore();
    CHECK(next == Durability::committed);
    CHECK(available_between);
    CHECK(after == Durability::committed);  // at the latest, the batch after reconnects
    CHECK(store->available());
    CHECK(log.text().find("store_unavailable") == std::string::npos);
    REQUIRE(store->shared()->fetch(make_id(3), got));  // the read pool replaced its connection too
    CHECK(got.has_value());
}

TEST_CASE("postgres: a commit connection lost mid-batch fails that batch alone; the writes queued behind it commit on a new connection")
{
    PgTestSchema schema;
    zk::test::CaptureStderr log;
    Settlements settled;  // outlives the store, whose threads call it
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    PgSession locker(schema.conninfo());
    REQUIRE(locker.exec("BEGIN").empty());
    REQUIRE(locker.exec("LOCK TABLE jobs IN EXCLUSIVE MODE").empty());
    const auto a = store->put(WriteKind::create, queued_record(2), by_writer, settled.callback(0));
    REQUIRE(a);
    REQUIRE(zk::test::wait_until([&] { return schema.sessions("wait_event_type = 'Lock'") == 1; }, 5000ms));
    const auto b = store->put(WriteKind::create, queued_record(3), by_writer, settled.callback(1));
    const auto c = store->put(WriteKind::create, queued_record(4), by_caller, settled.callback(2));
    REQUIRE((b && c));
    REQUIRE(schema.terminate("wait_event_type = 'Lock'") == 1);  // the commit connection, waiting for the lock
    REQUIRE(settled.await(1));
    CHECK(settled.outcome(0) == Durability::failed);
    CHECK(locker.exec("ROLLBACK").empty());
    CHECK(store->wait(*c, in(10s)) == Durability::committed);
    REQUIRE(settled.await(3));
    CHECK(settled.tags() == std::vector<int>{0, 1, 2});
    CHECK(settled.outcome(1) == Durability::committed);
    CHECK(settled.outcome(2) == Durability::committed);
    CHECK(store->available());
    log.restore();
    CHECK(log.text().find("store_unavailable") == std::string::npos);
    PgSession db(schema.conninfo());
    CHECK(db.value("SELECT string_agg(substr(id::text, 15, 4), ',' ORDER BY id) FROM jobs") ==
          uuid_text(make_id(1)).substr(14, 4) + "," + uuid_text(make_id(3)).substr(14, 4) + "," +
              uuid_text(make_id(4)).substr(14, 4));
    CHECK(db.value("SELECT count(*) FROM jobs WHERE id = '" + uuid_text(make_id(2)) + "'") == "0");  // rolled back
}

TEST_CASE("postgres: against a frozen server a commit fails at its deadline and the store goes unavailable; it comes back once the server answers")
{
    PgTestSchema schema;
    PgProxy proxy;
    auto o = pg_options(proxy.conninfo(schema.conninfo()));
    o.statement_timeout = 300ms;
    o.connect_timeout = 1s;
    const auto store = zk::storage::open_store(o);
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    proxy.freeze();  // nothing passes either way: a SIGSTOPped server, a partition
    const auto begun = std::chrono::steady_clock::now();
    const auto outcome = put_wait(*store, WriteKind::create, queued_record(2));
    const auto took = std::chrono::steady_clock::now() - begun;
    CHECK(outcome == Durability::failed);
    CHECK(took >= 300ms);
    CHECK(took < 3s);  // the statement timeout plus deadline_margin
    CHECK_FALSE(store->available());
    CHECK_FALSE(store->put(WriteKind::create, queued_record(3), by_caller, {}));
    proxy.pass();
    REQUIRE(zk::test::wait_until([&] { return store->available(); }, 10s));
    CHECK(put_wait(*store, WriteKind::create, queued_record(4)) == Durability::committed);
}

TEST_CASE("postgres: rescue finishes 1500 overdue jobs in one call, and honours its limit")
{
    PgTestSchema schema;
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    auto create_overdue = [&](std::uint64_t from, std::uint64_t count) {
        std::optional<JobStore::Seq> last;
        for (std::uint64_t n = from; n < from + count; ++n)
            last = store->put(WriteKind::create, unfinished(n, 1000 + static_cast<std::int64_t>(n)), by_writer);
        REQUIRE(last);
        REQUIRE(store->wait(*last, in(30s)) == Durability::committed);
    };
    create_overdue(1, 1500);
    std::size_t calls = 0;
    const auto finish = [&](JobRecord& r) {
        ++calls;
        r.state = RecordState::done;
        r.finished_ms = 50'000;
        r.result = "Rescued " + r.animal;
    };
    const auto rescued = store->shared()->rescue(10'000, 5000, finish);
    REQUIRE(rescued);
    CHECK(*rescued == 1500);
    CHECK(calls == 1500);
    PgSession db(schema.conninfo());
    CHECK(db.value("SELECT count(*) FROM jobs WHERE state = 2 AND finished_ms = 50000 AND result = 'Rescued aardvarks'") == "1500");
    CHECK(store->shared()->rescue(10'000, 5000, finish) == std::optional<std::size_t>(0));

    create_overdue(5001, 1200);
    CHECK(store->shared()->rescue(10'000, 1000, finish) == std::optional<std::size_t>(1000));
    CHECK(store->shared()->rescue(10'000, 1000, finish) == std::optional<std::size_t>(200));
    CHECK(db.value("SELECT count(*) FROM jobs WHERE state < 2") == "0");
}

// Every worker sweeps: three sweepers over the same late rows, all with one
// deadline (ties), must share them out without waiting on one another's row
// locks or deadlocking (a deadlock costs deadlock_timeout, 1 s, and the pass).
TEST_CASE("postgres: three workers rescuing the same late rows at once finish each row once, and no pass fails")
{
    PgTestSchema schema;
    const auto writer = zk::storage::open_store(pg_options(schema.conninfo()));
    constexpr std::uint64_t rows = 3000;
    std::optional<JobStore::Seq> last;
    for (std::uint64_t n = 1; n <= rows; ++n) last = writer->put(WriteKind::create, unfinished(n * 7919 % 100'003, 1000), by_writer);
    REQUIRE(last);
    REQUIRE(writer->wait(*last, in(30s)) == Durability::committed);
    std::vector<std::unique_ptr<zk::storage::JobStore>> sweepers;
    for (int i = 0; i < 3; ++i) sweepers.push_back(zk::storage::open_store(pg_options(schema.conninfo())));
    std::atomic<std::size_t> computed{0}, finished{0}, failed{0};
    std::vector<std::thread> threads;
    for (auto& s : sweepers)
        threads.emplace_back([&, store = s.get()] {
            const auto finish = [&](JobRecord& r) {
                ++computed;
                r.state = RecordState::done;
                r.finished_ms = 50'000;
                r.result = "Rescued " + r.animal;
            };
            for (int idle = 0; idle < 2;) {
                const auto n = store->shared()->rescue(10'000, 200, finish);
                if (!n) ++failed;
                else if (*n == 0) ++idle;
                else finished += *n;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(failed.load() == 0);
    CHECK(finished.load() == rows);
    CHECK(computed.load() == rows);  // no row worked on by two sweepers
    PgSession db(schema.conninfo());
    CHECK(db.value("SELECT count(*) FROM jobs WHERE state = 2 AND result = 'Rescued aardvarks'") == std::to_string(rows));
}

TEST_CASE("postgres: a cancel committed through one store reaches another store's cancel feed with its id and finished_ms; completions and skipped cancels send nothing")
{
    PgTestSchema schema;
    FeedLog feed;  // outlives the stores, whose listener thread calls it
    const auto writer = zk::storage::open_store(pg_options(schema.conninfo()));
    const auto reader = zk::storage::open_store(pg_options(schema.conninfo()));
    CHECK_FALSE(reader->shared()->listening());  // before listen()
    reader->shared()->listen(feed.feed());
    REQUIRE(feed.await_resumed(1));
    CHECK(reader->shared()->listening());
    for (std::uint64_t n : {1, 2, 3}) REQUIRE(put_wait(*writer, WriteKind::create, queued_record(n)) == Durability::committed);
    REQUIRE(put_wait(*writer, WriteKind::finish, finished_record(queued_record(1), RecordState::cancelled, 1'700'000'000'111)) ==
            Durability::committed);
    REQUIRE(put_wait(*writer, WriteKind::finish, finished_record(queued_record(2), RecordState::done)) == Durability::committed);
    REQUIRE(put_wait(*writer, WriteKind::finish, finished_record(queued_record(2), RecordState::cancelled)) == Durability::skipped);
    REQUIRE(put_wait(*writer, WriteKind::finish, finished_record(queued_record(3), RecordState::cancelled, -7)) ==
            Durability::committed);
    // Notifications arrive in commit order: anything the completion or the
    // skipped cancel had sent would come before the last cancel.
    REQUIRE(feed.await_cancels(2));
    const auto cancels = feed.cancels();
    REQUIRE(cancels.size() == 2);
    CHECK(cancels[0].first == make_id(1));
    CHECK(cancels[0].second == 1'700'000'000'111);
    CHECK(cancels[1].first == make_id(3));
    CHECK(cancels[1].second == -7);
    CHECK(feed.events() == std::vector<std::string>{"resumed", "cancel", "cancel"});
}

TEST_CASE("postgres: the cancel feed resumes after its session is terminated, announcing it before the next cancel")
{
    PgTestSchema schema;
    FeedLog feed;  // outlives the store, whose listener thread calls it
    const auto store = zk::storage::open_store(pg_options(schema.conninfo()));
    store->shared()->listen(feed.feed());
    REQUIRE(feed.await_resumed(1));
    REQUIRE(zk::test::wait_until([&] { return schema.sessions(listener_session) == 1; }, 5000ms));
    REQUIRE(schema.terminate(listener_session) == 1);
    REQUIRE(feed.await_resumed(2));
    CHECK(store->shared()->listening());
    REQUIRE(put_wait(*store, WriteKind::create, queued_record(1)) == Durability::committed);
    REQUIRE(put_wait(*store, WriteKind::finish, finished_record(queued_record(1), RecordState::cancelled, 99)) ==
            Durability::committed);
    REQUIRE(feed.await_cancels(1));
    CHECK(feed.cancels()[0].first == make_id(1));
    CHECK(feed.cancels()[0].second == 99);
    CHECK(feed.events() == std::vector<std::string>{"resumed", "resumed", "cancel"});
}

TEST_CASE("postgres: listening() is false while the cancel feed cannot connect, and true again once it has resumed")
{
    PgTestSchema schema;
    PgProxy proxy;
    FeedLog feed;  // outlives the store, whose listener thread calls it
    const auto store = zk::storage::open_store(pg_options(proxy.conninfo(schema.conninfo())));
    store->shared()->listen(feed.feed());
    REQUIRE(feed.await_resumed(1));
    REQUIRE(store->shared()->listening());
    proxy.refuse();
    proxy.cut();
    REQUIRE(zk::test::wait_until([&] { return !store->shared()->listening(); }, 5000ms));
    const int attempts = proxy.accepted();
    REQUIRE(proxy.await_accepted(attempts + 2, 5000ms));  // two reconnects refused meanwhile
    CHECK_FALSE(store->shared()->listening());
    CHECK(feed.resumed() == 1);
    proxy.pass();
    REQUIRE(feed.await_resumed(2));
    CHECK(store->shared()->listening());
    const auto other = zk::storage::open_store(pg_options(schema.conninfo()));
    REQUIRE(put_wait(*other, WriteKind::create, queued_record(1)) == Durability::committed);
    REQUIRE(put_wait(*other, WriteKind::finish, finished_record(queued_record(1), RecordState::cancelled)) ==
            Durability::committed);
    CHECK(feed.await_cancels(1));
}

// CancelFeed has two callbacks; a caller interested in cancels alone leaves
// `resumed` empty, and the listener thread must not call an empty function
// (std::bad_function_call, then std::terminate). Run in a child, so that the
// failure is this test's, not the whole binary's.
TEST_CASE("postgres: a cancel feed without a resumed callback delivers cancels and brings nothing down")
{
    PgTestSchema schema;
    const std::string conninfo = schema.conninfo();
    std::fflush(nullptr);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // no doctest in here: just an exit status
        ::signal(SIGABRT, SIG_DFL);  // die of it, rather than report from here with doctest's handler
        try {
            const auto store = zk::storage::open_store(pg_options(conninfo));
            const auto other = zk::storage::open_store(pg_options(conninfo));
            std::atomic<int> cancels{0};
            zk::storage::CancelFeed only_cancels;
            only_cancels.cancelled = [&](const RecordId&, std::int64_t) { ++cancels; };
            store->shared()->listen(only_cancels);
            if (!zk::test::wait_until([&] { return store->shared()->listening(); }, 5000ms)) ::_exit(3);
            const JobRecord r = queued_record(1);
            if (put_wait(*other, WriteKind::create, r) != Durability::committed) ::_exit(4);
            if (put_wait(*other, WriteKind::finish, finished_record(r, RecordState::cancelled)) != Durability::committed)
                ::_exit(5);
            ::_exit(zk::test::wait_until([&] { return cancels > 0; }, 5000ms) ? 0 : 1);
        } catch (...) {
        }
        ::_exit(2);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("exit status ", WIFEXITED(status) ? WEXITSTATUS(status) : -1, ", signal ", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

}  // TEST_SUITE
