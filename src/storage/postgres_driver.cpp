// PostgresDriver: connecting and migrating, pipelined batch commits under a
// deadline, the shared store's reads and sweeps, and the cancel feed.

#include "storage/postgres_driver.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

#include "storage/job_store.h"
#include "storage/postgres_schema.h"
#include "util/log.h"

namespace zk::storage {

namespace {

// Silence on the cancel feed after which a heartbeat proves its connection.
constexpr auto listen_heartbeat = std::chrono::seconds(2);
// load() reads this many rows per round trip.
constexpr long long scan_page = 10'000;

std::string uuid_text(const RecordId& id)
{
    static const char hex[] = "0123456789abcdef";
    std::string s;
    s.reserve(36);
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
        s.push_back(hex[id[i] >> 4]);
        s.push_back(hex[id[i] & 15]);
    }
    return s;
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool parse_uuid(std::string_view s, RecordId& id)
{
    std::size_t k = 0;
    for (std::size_t i = 0; i < s.size() && k < id.size() * 2; ++i) {
        if (s[i] == '-') continue;
        const int v = hex_digit(s[i]);
        if (v < 0) return false;
        id[k / 2] = static_cast<unsigned char>(k % 2 ? (id[k / 2] | v) : (v << 4));
        ++k;
    }
    return k == id.size() * 2;
}

// A uuid[] in its text form: {id,id,...}. Uuids need no quoting.
std::string uuid_array_text(const std::vector<RecordId>& ids)
{
    std::string s = "{";
    s.reserve(2 + ids.size() * 37);
    for (const RecordId& id : ids) {
        if (s.size() > 1) s.push_back(',');
        s += uuid_text(id);
    }
    s.push_back('}');
    return s;
}

// bytea in its text form: \x and two hex digits a byte.
std::string bytea_text(const std::string& bytes)
{
    static const char hex[] = "0123456789abcdef";
    std::string s = "\\x";
    s.reserve(2 + bytes.size() * 2);
    for (unsigned char c : bytes) {
        s.push_back(hex[c >> 4]);
        s.push_back(hex[c & 15]);
    }
    return s;
}

bool parse_bytea(std::string_view t, std::string& out)
{
    out.clear();
    if (t.size() < 2 || t[0] != '\\' || t[1] != 'x' || t.size() % 2) return false;
    for (std::size_t i = 2; i < t.size(); i += 2) {
        const int hi = hex_digit(t[i]), lo = hex_digit(t[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return true;
}

// Reads column i of a row selected with column_list() into its field.
struct RowReader {
    const pg::Result& r;
    int row;
    bool ok = true;
    void operator()(const Column&, std::size_t i, RecordId& v) { ok = ok && parse_uuid(r.text(row, col(i)), v); }
    void operator()(const Column& c, std::size_t i, std::string& v)
    {
        if (c.kind == ColumnKind::bytes) ok = ok && parse_bytea(r.text(row, col(i)), v);
        else v = std::string(r.text(row, col(i)));  // NULL reads as empty
    }
    void operator()(const Column&, std::size_t i, std::int64_t& v) { v = r.integer(row, col(i)); }
    void operator()(const Column&, std::size_t i, std::int32_t& v) { v = static_cast<std::int32_t>(r.integer(row, col(i))); }
    void operator()(const Column&, std::size_t i, RecordState& v)
    {
        const long long state = r.integer(row, col(i));
        ok = ok && state >= 0 && state <= static_cast<long long>(RecordState::cancelled);
        v = static_cast<RecordState>(state);
    }
    static int col(std::size_t i) { return static_cast<int>(i); }
};

bool read_rows(const pg::Result& r, std::vector<JobRecord>& out)
{
    out.clear();
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
        JobRecord rec;
        RowReader read{r, i};
        for_each_column(rec, read);
        if (!read.ok) return false;
        out.push_back(std::move(rec));
    }
    return true;
}

// The parameters of zk_create (every column) or of zk_finish and zk_cancel
// (the id, then the columns a finish writes), in column order, as text.
struct ParamWriter {
    pg::Params& p;
    bool finish_only;
    bool wanted(const Column& c) const { return binds(c, finish_only); }
    void operator()(const Column& c, std::size_t, const RecordId& v)
    {
        if (wanted(c)) p.add(uuid_text(v));
    }
    void operator()(const Column& c, std::size_t, const std::string& v)
    {
        if (!wanted(c)) return;
        if (c.null_when_empty && v.empty()) p.null();
        else p.add(c.kind == ColumnKind::bytes ? bytea_text(v) : v);
    }
    void operator()(const Column& c, std::size_t, std::int64_t v)
    {
        if (wanted(c)) p.add(static_cast<long long>(v));
    }
    void operator()(const Column& c, std::size_t, std::int32_t v)
    {
        if (wanted(c)) p.add(static_cast<long long>(v));
    }
    void operator()(const Column& c, std::size_t, RecordState v)
    {
        if (wanted(c)) p.add(static_cast<long long>(v));
    }
};

// An array literal's element: quoted, with " and \ escaped (so that no
// text can pass for NULL or break the array).
void append_element(std::string& out, std::string_view text)
{
    out.push_back('"');
    for (char c : text) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
}

pg::Connection::Statement statement_for(const Write& w)
{
    if (w.kind == WriteKind::erase) return {"zk_erase", pg::Params().add(uuid_text(w.record.id))};
    pg::Params p;
    ParamWriter write{p, w.kind == WriteKind::finish};
    for_each_column(w.record, write);
    if (w.kind == WriteKind::create) return {"zk_create", std::move(p)};
    return {w.record.state == RecordState::cancelled ? "zk_cancel" : "zk_finish", std::move(p)};
}

// Ours go first: what the operator wrote in the string wins.
std::string with_our_settings(const PostgresOptions& o)
{
    const std::string t = std::to_string(o.connect_timeout.count());
    const bool uri = o.conninfo.rfind("postgresql://", 0) == 0 || o.conninfo.rfind("postgres://", 0) == 0;
    if (!uri) return "connect_timeout=" + t + " fallback_application_name=zookeeper " + o.conninfo;
    // A URI cannot be prefixed; its query string takes the same settings.
    const char sep = o.conninfo.find('?') == std::string::npos ? '?' : '&';
    return o.conninfo + sep + "connect_timeout=" + t + "&fallback_application_name=zookeeper";
}

// Every new connection: the statement timeout (a SET, so that an `options`
// the operator gave in the string still applies). Statements are prepared
// as they are first used (ready()).
pg::Pool::Prepare session_setup(std::chrono::milliseconds statement_timeout)
{
    const std::string set = "SET statement_timeout = " + std::to_string(statement_timeout.count());
    return [set](pg::Connection& c, pg::Deadline deadline, std::string& error) {
        const pg::Result r = c.exec(set.c_str(), deadline);
        if (!r.ok()) error = "cannot set statement_timeout: " + r.error();
        return r.ok();
    };
}

// The commit connection prepares what a batch uses when it connects: a
// write's PREPARE parses the INSERT or UPDATE and so waits behind any lock
// on the table, which must never come between a batch and its first
// statement (zk_lock_keys, which tells a repeat on another worker that the
// key is being stored).
constexpr std::array<const char*, 5> batch_statements{"zk_lock_keys", "zk_create", "zk_finish", "zk_cancel",
                                                      "zk_erase"};

// Prepares those of the statements this session has not prepared yet.
bool ready(pg::Connection& c, const std::vector<pg::Connection::Statement>& statements, pg::Deadline deadline,
           std::string& error)
{
    for (const auto& st : statements) {
        if (c.prepared(st.prepared)) continue;
        const pg::Prepared* p = pg::find_statement(st.prepared);
        if (!p) {
            error = std::string("no statement ") + st.prepared;
            return false;
        }
        if (!c.prepare(p->name, p->sql.c_str(), deadline, error)) return false;
    }
    return true;
}

pg::Result run(pg::Connection& c, const char* name, const pg::Params& params, pg::Deadline deadline)
{
    std::string error;
    if (!ready(c, {{name, {}}}, deadline, error)) return pg::Result::failure(error);
    return c.exec_prepared(name, params, deadline);
}

// "<uuid> <finished_ms>", as zk_cancel notifies.
bool parse_cancel(std::string_view payload, RecordId& id, std::int64_t& finished_ms)
{
    const auto space = payload.find(' ');
    if (space == std::string_view::npos || !parse_uuid(payload.substr(0, space), id)) return false;
    const auto ms = payload.substr(space + 1);
    const auto [end, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), finished_ms);
    return ec == std::errc{} && end == ms.data() + ms.size();
}

}  // namespace

PostgresDriver::PostgresDriver(PostgresOptions options)
    : options_(std::move(options)),
      conninfo_(with_our_settings(options_)),
      where_(pg::describe(options_.conninfo)),
      availability_("postgresql (" + where_ + ")"),
      setup_(session_setup(options_.statement_timeout)),
      commit_conn_(conninfo_, &interrupt_),
      pool_(conninfo_, options_.read_connections,
            pg::PoolTimeouts{options_.statement_timeout, round_trip_timeout(options_.statement_timeout),
                             options_.connect_timeout},
            setup_, &interrupt_, availability_),
      listener_(conninfo_, pg::cancel_channel,
                pg::ListenerTiming{options_.connect_timeout, round_trip_timeout(options_.statement_timeout),
                                   listen_heartbeat, options_.reconnect_interval})
{
    if (const std::string bad = pg::check_conninfo(options_.conninfo); !bad.empty())
        throw StoreError("job store postgresql: bad connection string: " + bad);
    std::string error;
    if (!commit_conn_.connect(pg::Clock::now() + options_.connect_timeout, error)) {
        // Down for now, or never reachable: from here the two look alike. The
        // worker starts degraded (503 + Retry-After, /healthz 503, the reason
        // logged and repeated) and the pipeline's writer keeps reconnecting;
        // its first success migrates (connect_commit), so a worker restarted
        // during an outage rejoins without an operator.
        availability_.failed("cannot connect: " + error);
        return;
    }
    // The database answers: what fails now (a newer schema, a missing
    // privilege) is the operator's to fix, and refusing to start says so.
    if (!migrate(error) || !prepare_commit(pg::Clock::now() + options_.connect_timeout, error))
        throw StoreError("job store postgresql (" + where_ + "): " + error);
}

PostgresDriver::~PostgresDriver() { close(); }

pg::Deadline PostgresDriver::round_trip_deadline() const
{
    return pg::Clock::now() + round_trip_timeout(options_.statement_timeout);
}

// One transaction under an advisory lock: a second worker starting at the
// same moment waits for it and then finds the schema current. False with the
// reason, the transaction rolled back, when it cannot.
bool PostgresDriver::migrate(std::string& error)
{
    const auto deadline = pg::Clock::now() + options_.connect_timeout + options_.statement_timeout;
    auto fail = [&](const std::string& what, const std::string& why) {
        commit_conn_.exec("ROLLBACK", deadline);
        error = what + (why.empty() ? "" : ": " + why);
        return false;
    };
    pg::Result r = commit_conn_.exec("BEGIN", deadline);
    if (!r.ok()) return fail("BEGIN failed", r.error());
    r = commit_conn_.exec("SELECT pg_advisory_xact_lock($1)", pg::Params().add(pg::migration_lock_key), deadline);
    if (!r.ok()) return fail("cannot take the migration lock", r.error());
    r = commit_conn_.exec("CREATE TABLE IF NOT EXISTS zookeeper_schema (version integer NOT NULL)", deadline);
    if (!r.ok()) return fail("cannot create zookeeper_schema", r.error());
    r = commit_conn_.exec("SELECT coalesce(max(version), 0) FROM zookeeper_schema", deadline);
    if (!r.ok()) return fail("cannot read the schema version", r.error());
    const long long version = r.integer(0, 0);
    const auto known = static_cast<long long>(pg::migrations.size());
    if (version > known)
        return fail("schema version " + std::to_string(version) + " is newer than this build's " +
                        std::to_string(known) + "; refusing to use it",
                    "");
    for (long long v = version; v < known; ++v) {
        r = commit_conn_.exec(pg::migrations[static_cast<std::size_t>(v)], deadline);
        if (!r.ok()) return fail("migration " + std::to_string(v + 1) + " failed", r.error());
        log::info("store_migrated").kv("backend", "postgresql").kv("version", v + 1);
    }
    if (version < known) {
        r = commit_conn_.exec("DELETE FROM zookeeper_schema", deadline);
        if (r.ok()) r = commit_conn_.exec("INSERT INTO zookeeper_schema VALUES ($1)", pg::Params().add(known), deadline);
        if (!r.ok()) return fail("cannot record the schema version", r.error());
    }
    r = commit_conn_.exec("COMMIT", deadline);
    if (!r.ok()) return fail("COMMIT of the migration failed", r.error());
    migrated_ = true;
    return true;
}

// A worker that started degraded migrates here, on its first connect.
bool PostgresDriver::connect_commit(std::string& error)
{
    if (!commit_conn_.connect(pg::Clock::now() + options_.connect_timeout, error)) return false;
    if (migrated_ || migrate(error)) return prepare_commit(pg::Clock::now() + options_.connect_timeout, error);
    commit_conn_.drop();
    return false;
}

bool PostgresDriver::prepare_commit(pg::Deadline deadline, std::string& error)
{
    std::vector<pg::Connection::Statement> all;
    for (const char* name : batch_statements) all.push_back({name, {}});
    return setup_(commit_conn_, deadline, error) && ready(commit_conn_, all, deadline, error);
}

void PostgresDriver::close()
{
    listener_.stop();
    commit_conn_.drop();
}

bool PostgresDriver::reconnect(std::string& error)
{
    if (!connect_commit(error)) {
        availability_.failed(error);
        return false;
    }
    availability_.succeeded();
    return true;
}

// A connection the server ended (pg_terminate_backend, a restart, a failover
// to another primary) is made anew here, before the batch: only a connect
// that fails, or a round trip the database does not answer in time, makes the
// store unavailable. A batch whose connection broke mid-way fails (its
// outcome is unknown: the waiters answer 503); the next one reconnects.
bool PostgresDriver::commit(std::span<const Write* const> writes, std::string& error)
{
    if (!commit_conn_.alive() && !connect_commit(error)) {
        availability_.failed(error);
        return false;
    }
    plan(writes);
    const auto deadline = round_trip_deadline();
    // pipeline() is true once every result is in; a statement that failed
    // (and with it the transaction) is its last_failure().
    const bool ok = ready(commit_conn_, statements_, deadline, error) &&
                    commit_conn_.pipeline(statements_, results_, deadline, error) &&
                    commit_conn_.last_failure() == pg::Failure::none;
    if (!ok) {
        if (commit_conn_.last_failure() == pg::Failure::timeout) availability_.failed(error);
        return false;
    }
    availability_.succeeded();
    // A write that changed no row was skipped (WriteKind's rules).
    const std::size_t first = statements_.size() - writes.size();  // after zk_lock_keys, if any
    for (std::size_t i = 0; i < writes.size(); ++i)
        writes[i]->skipped = writes[i]->kind != WriteKind::erase && results_[first + i].affected() == 0;
    return true;
}

// The batch's statements, one per write in order, after zk_lock_keys when
// it holds keyed creations. Measured against one multi-row INSERT ... SELECT
// FROM unnest(...) of a batch's creations: pipelined single-row statements
// commit a batch of 4 in 0.53 ms against 0.80, and are level at 64
// (docs/performance.md), so the simpler form stays.
void PostgresDriver::plan(std::span<const Write* const> writes)
{
    statements_.clear();
    if (auto locks = lock_keys(writes)) statements_.push_back(std::move(*locks));
    for (const Write* w : writes) statements_.push_back(statement_for(*w));
}

// zk_lock_keys for the batch's keyed creations, if it has any.
std::optional<pg::Connection::Statement> PostgresDriver::lock_keys(std::span<const Write* const> writes) const
{
    std::string scopes = "{", keys = "{";
    for (const Write* w : writes) {
        if (w->kind != WriteKind::create || w->record.idem_key.empty()) continue;
        if (scopes.size() > 1) {
            scopes.push_back(',');
            keys.push_back(',');
        }
        append_element(scopes, w->record.idem_scope);
        append_element(keys, w->record.idem_key);
    }
    if (keys.size() == 1) return std::nullopt;
    return pg::Connection::Statement{"zk_lock_keys", pg::Params().add(scopes + "}").add(keys + "}")};
}

// Page by page through the read pool. A worker does not restore from a
// shared store (it reads per request instead); tools and tests do.
void PostgresDriver::load(const std::function<void(JobRecord&&)>& visit)
{
    std::optional<RecordId> after;
    for (;;) {
        pg::Params p;
        if (after) p.add(uuid_text(*after));
        else p.null();
        std::vector<JobRecord> rows;
        if (!read("zk_scan", p.add(scan_page), rows))
            throw StoreError("job store postgresql (" + where_ + "): reading jobs failed: " + availability_.reason());
        for (JobRecord& r : rows) {
            after = r.id;
            visit(std::move(r));
        }
        if (static_cast<long long>(rows.size()) < scan_page) return;
    }
}

// One prepared read through the pool. A failure has been reported to
// Availability by the pool; a row that cannot be a job is our bug or a
// foreign writer's, logged here.
bool PostgresDriver::read(const char* statement, const pg::Params& params, std::vector<JobRecord>& out)
{
    std::string error;
    bool bad_row = false;
    const bool ok = pool_.with(
        [&](pg::Connection& c, pg::Deadline deadline) {
            pg::Result r = run(c, statement, params, deadline);
            if (!r.ok()) return false;
            bad_row = !read_rows(r, out);
            return !bad_row;
        },
        error);
    if (bad_row) log::error("store_read_failed").kv("statement", statement).kv("error", "a row is not a job").kv("cause", "bug");
    return ok;
}

bool PostgresDriver::read_one(const char* statement, const pg::Params& params, std::optional<JobRecord>& out)
{
    std::vector<JobRecord> rows;
    if (!read(statement, params, rows)) return false;
    out.reset();
    if (!rows.empty()) out = std::move(rows.front());
    return true;
}

bool PostgresDriver::fetch(const RecordId& id, std::optional<JobRecord>& out)
{
    return read_one("zk_fetch", pg::Params().add(uuid_text(id)), out);
}

bool PostgresDriver::fetch_many(const std::vector<RecordId>& ids, std::vector<JobRecord>& out)
{
    out.clear();
    if (ids.empty()) return true;  // no round trip for nothing
    return read("zk_fetch_many", pg::Params().add(uuid_array_text(ids)), out);
}

// The row and, for when there is none, whether the key's lock is taken: one
// round trip, one implicit transaction (the try-lock is released at its end).
bool PostgresDriver::fetch_key(const std::string& scope, const std::string& key, std::optional<JobRecord>& out,
                               bool& in_flight)
{
    std::string error;
    return pool_.with(
        [&](pg::Connection& c, pg::Deadline deadline) {
            const std::vector<pg::Connection::Statement> reads{
                {"zk_fetch_key", pg::Params().add(scope).add(key)}, {"zk_key_in_flight", pg::Params().add(scope).add(key)}};
            std::vector<pg::Result> results;
            std::vector<JobRecord> rows;
            if (!ready(c, reads, deadline, error) || !c.pipeline(reads, results, deadline, error) || !results[0].ok() ||
                !results[1].ok())
                return false;
            if (!read_rows(results[0], rows)) return false;
            out.reset();
            if (!rows.empty()) out = std::move(rows.front());
            in_flight = !out && results[1].text(0, 0) == "t";
            return true;
        },
        error);
}

bool PostgresDriver::list(const ListQuery& q, std::vector<JobRecord>& out)
{
    pg::Params p;
    if (q.state) p.add(static_cast<long long>(*q.state));
    else p.null();
    if (q.animal) p.add(*q.animal);
    else p.null();
    if (q.before) p.add(uuid_text(*q.before));
    else p.null();
    // LIMIT NULL is no limit; a size_t past long long's range would bind negative.
    if (q.limit <= static_cast<std::size_t>(std::numeric_limits<long long>::max())) p.add(static_cast<long long>(q.limit));
    else p.null();
    return read("zk_list", p, out);
}

// One transaction in two round trips: the overdue rows this sweep claims
// (rows another worker's sweep holds are skipped), then their done records,
// each written only over an unfinished row (safe to repeat), and COMMIT. A
// transaction that fails half way is dropped with its connection (the server
// rolls it back; the next use connects anew).
std::optional<std::size_t> PostgresDriver::rescue(std::int64_t due_ms, std::size_t limit,
                                                  const std::function<void(JobRecord&)>& finish)
{
    std::size_t finished = 0;
    std::string error;
    const bool ok = pool_.with(
        [&](pg::Connection& c, pg::Deadline deadline) {
            finished = 0;
            const bool done = rescue_in(c, deadline, due_ms, limit, finish, finished, error);
            if (!done) c.drop();
            return done;
        },
        error);
    if (!ok) return std::nullopt;
    return finished;
}

bool PostgresDriver::rescue_in(pg::Connection& c, pg::Deadline deadline, std::int64_t due_ms, std::size_t limit,
                               const std::function<void(JobRecord&)>& finish, std::size_t& finished,
                               std::string& error)
{
    std::vector<pg::Connection::Statement> claim{
        {"zk_begin", {}}, {"zk_overdue", pg::Params().add(due_ms).add(static_cast<long long>(limit))}};
    std::vector<pg::Result> results;
    std::vector<JobRecord> overdue;
    if (!ready(c, claim, deadline, error) || !c.pipeline(claim, results, deadline, error) || !results[1].ok() ||
        !read_rows(results[1], overdue))
        return false;
    std::vector<pg::Connection::Statement> writes;
    writes.reserve(overdue.size() + 1);
    for (JobRecord& rec : overdue) {
        finish(rec);
        writes.push_back(statement_for(Write{WriteKind::finish, rec, false}));
    }
    writes.push_back({"zk_commit", {}});
    if (!ready(c, writes, deadline, error) || !c.pipeline(writes, results, deadline, error)) return false;
    for (const pg::Result& w : results) {
        if (!w.ok()) return false;
        finished += static_cast<std::size_t>(w.affected());
    }
    return true;
}

std::optional<std::size_t> PostgresDriver::purge(std::int64_t finished_before_ms, std::size_t limit)
{
    std::size_t purged = 0;
    std::string error;
    const bool ok = pool_.with(
        [&](pg::Connection& c, pg::Deadline deadline) {
            pg::Result r =
                run(c, "zk_purge", pg::Params().add(finished_before_ms).add(static_cast<long long>(limit)), deadline);
            purged = static_cast<std::size_t>(r.affected());
            return r.ok();
        },
        error);
    if (!ok) return std::nullopt;
    return purged;
}

std::optional<std::int64_t> PostgresDriver::now_ms()
{
    std::int64_t now = 0;
    std::string error;
    const bool ok = pool_.with(
        [&](pg::Connection& c, pg::Deadline deadline) {
            pg::Result r = run(c, "zk_now", pg::Params(), deadline);
            now = r.integer(0, 0);
            return r.ok() && r.rows() == 1;
        },
        error);
    if (!ok) return std::nullopt;
    return now;
}

void PostgresDriver::listen(CancelFeed feed)
{
    feed_ = std::move(feed);
    listener_.start(
        [this](std::string_view payload) {
            RecordId id{};
            std::int64_t finished_ms = 0;
            if (parse_cancel(payload, id, finished_ms)) {
                if (feed_.cancelled) feed_.cancelled(id, finished_ms);
            }
            else log::warn("cancel_feed_bad_payload").kv("payload", payload.substr(0, 80));
        },
        [this] {
            if (feed_.resumed) feed_.resumed();
        });
}

}  // namespace zk::storage
