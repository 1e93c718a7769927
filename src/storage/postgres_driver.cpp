// PostgresDriver: connecting and migrating, pipelined batch commits, and the
// shared store's reads and sweeps.

#include "storage/postgres_driver.h"

#include <algorithm>
#include <cstdio>

#include "storage/job_store.h"
#include "storage/postgres_schema.h"
#include "util/log.h"

namespace zk::storage {

namespace {

// Statements per round trip: bounded so that a large batch never fills both
// socket buffers at once (blocking pipeline mode would then deadlock).
constexpr std::size_t chunk_size = 256;

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

bool read_row(const pg::Result& r, int row, JobRecord& out)
{
    const long long state = r.integer(row, 2);
    if (!parse_uuid(r.text(row, 0), out.id) || state < 0 || state > static_cast<int>(RecordState::cancelled))
        return false;
    out.animal = std::string(r.text(row, 1));
    out.state = static_cast<RecordState>(state);
    out.created_ms = r.integer(row, 3);
    out.started_ms = r.integer(row, 4);
    out.deadline_ms = r.integer(row, 5);
    out.finished_ms = r.integer(row, 6);
    out.duration_ms = static_cast<std::int32_t>(r.integer(row, 7));
    out.idem_scope = std::string(r.text(row, 9));
    out.idem_key = std::string(r.text(row, 10));
    return parse_bytea(r.text(row, 8), out.result);
}

bool read_rows(const pg::Result& r, std::vector<JobRecord>& out)
{
    out.clear();
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
        JobRecord rec;
        if (!read_row(r, i, rec)) return false;
        out.push_back(std::move(rec));
    }
    return true;
}

pg::Params put_params(const JobRecord& r)
{
    pg::Params p;
    p.add(uuid_text(r.id)).add(r.animal).add(static_cast<long long>(r.state)).add(r.created_ms);
    p.add(r.started_ms).add(r.deadline_ms).add(r.finished_ms).add(static_cast<long long>(r.duration_ms));
    p.add(bytea_text(r.result));
    return p;
}

// A keyed creation may clash with another job's key, which zk_put would
// raise as an error; later writes of the job leave the key as it is.
pg::Connection::Statement statement_for(const Write& w)
{
    if (w.erase) return {"zk_erase", pg::Params().add(uuid_text(w.record.id))};
    const JobRecord& r = w.record;
    pg::Params p = put_params(r);
    if (r.idem_key.empty()) p.null().null();
    else p.add(r.idem_scope).add(r.idem_key);
    const bool keyed_creation = !r.idem_key.empty() && r.state == RecordState::queued;
    return {keyed_creation ? "zk_create_keyed" : "zk_put", std::move(p)};
}

// Ours go first: what the operator wrote in the string wins.
std::string with_connect_timeout(const PostgresOptions& o)
{
    const std::string t = std::to_string(o.connect_timeout.count());
    const bool uri = o.conninfo.rfind("postgresql://", 0) == 0 || o.conninfo.rfind("postgres://", 0) == 0;
    if (!uri) return "connect_timeout=" + t + " fallback_application_name=zookeeper " + o.conninfo;
    // A URI cannot be prefixed; its query string takes the same settings.
    const char sep = o.conninfo.find('?') == std::string::npos ? '?' : '&';
    return o.conninfo + sep + "connect_timeout=" + t + "&fallback_application_name=zookeeper";
}

// Every new connection: the statement timeout (a SET, so that an `options`
// the operator gave in the string still applies), then the statements.
pg::Pool::Prepare session_setup(std::chrono::milliseconds statement_timeout)
{
    const std::string set = "SET statement_timeout = " + std::to_string(statement_timeout.count());
    return [set](pg::Connection& c, std::string& error) {
        if (pg::Result r = c.exec(set.c_str()); !r.ok()) {
            error = "cannot set statement_timeout: " + r.error();
            return false;
        }
        for (const auto& s : pg::statements)
            if (!c.prepare(s.name, s.sql, error)) return false;
        return true;
    };
}

}  // namespace

PostgresDriver::PostgresDriver(PostgresOptions options)
    : options_(std::move(options)),
      conninfo_(with_connect_timeout(options_)),
      where_(pg::describe(options_.conninfo)),
      setup_(session_setup(options_.statement_timeout)),
      commit_conn_(conninfo_),
      pool_(conninfo_, options_.read_connections, options_.statement_timeout, options_.retry_after, setup_)
{
    if (const std::string bad = pg::check_conninfo(options_.conninfo); !bad.empty())
        throw StoreError("job store postgresql: bad connection string: " + bad);
    std::string error;
    if (!commit_conn_.connect(error))
        throw StoreError("job store postgresql (" + where_ + "): cannot connect: " + error);
    migrate();
    if (!setup_(commit_conn_, error)) throw StoreError("job store postgresql (" + where_ + "): " + error);
}

PostgresDriver::~PostgresDriver() = default;

// One transaction under an advisory lock: a second worker starting at the
// same moment waits for it and then finds the schema current.
void PostgresDriver::migrate()
{
    auto fail = [&](const std::string& what, const pg::Result& r) {
        commit_conn_.exec("ROLLBACK");
        throw StoreError("job store postgresql (" + where_ + "): " + what + ": " + r.error());
    };
    pg::Result r = commit_conn_.exec("BEGIN");
    if (!r.ok()) fail("BEGIN failed", r);
    r = commit_conn_.exec("SELECT pg_advisory_xact_lock($1)", pg::Params().add(pg::migration_lock_key));
    if (!r.ok()) fail("cannot take the migration lock", r);
    r = commit_conn_.exec("CREATE TABLE IF NOT EXISTS zookeeper_schema (version integer NOT NULL)");
    if (!r.ok()) fail("cannot create zookeeper_schema", r);
    r = commit_conn_.exec("SELECT coalesce(max(version), 0) FROM zookeeper_schema");
    if (!r.ok()) fail("cannot read the schema version", r);
    const long long version = r.integer(0, 0);
    const auto known = static_cast<long long>(pg::migrations.size());
    if (version > known) {
        commit_conn_.exec("ROLLBACK");
        throw StoreError("job store postgresql (" + where_ + "): schema version " + std::to_string(version) +
                         " is newer than this build's " + std::to_string(known) + "; refusing to use it");
    }
    for (long long v = version; v < known; ++v) {
        r = commit_conn_.exec(pg::migrations[static_cast<std::size_t>(v)]);
        if (!r.ok()) fail("migration " + std::to_string(v + 1) + " failed", r);
        log::info("store_migrated").kv("backend", "postgresql").kv("version", v + 1);
    }
    if (version < known) {
        r = commit_conn_.exec("DELETE FROM zookeeper_schema");
        if (r.ok()) r = commit_conn_.exec("INSERT INTO zookeeper_schema VALUES ($1)", pg::Params().add(known));
        if (!r.ok()) fail("cannot record the schema version", r);
    }
    r = commit_conn_.exec("COMMIT");
    if (!r.ok()) fail("COMMIT of the migration failed", r);
}

bool PostgresDriver::connect_commit(std::string& error)
{
    return commit_conn_.connect(error) && setup_(commit_conn_, error);
}

// Page by page through the read pool. A worker does not restore from a
// shared store (JobPool reads it per request instead); tools and tests do.
void PostgresDriver::load(const std::function<void(JobRecord&&)>& visit)
{
    constexpr long long page = 10'000;
    std::optional<RecordId> after;
    for (;;) {
        std::vector<JobRecord> rows;
        std::string error;
        const bool ok = pool_.with(
            [&](pg::Connection& c) {
                pg::Params p;
                if (after) p.add(uuid_text(*after));
                else p.null();
                pg::Result r = c.exec_prepared("zk_scan", p.add(page));
                if (!r.ok()) error = r.error();
                return r.ok() && read_rows(r, rows);
            },
            error);
        if (!ok) throw StoreError("job store postgresql (" + where_ + "): reading jobs failed: " + error);
        for (JobRecord& r : rows) {
            after = r.id;
            visit(std::move(r));
        }
        if (static_cast<long long>(rows.size()) < page) return;
    }
}

void PostgresDriver::close()
{
    commit_conn_.drop();
}

bool PostgresDriver::reconnect()
{
    std::string error;
    if (connect_commit(error)) {
        log::info("store_reconnected").kv("backend", "postgresql").kv("db", where_);
        return true;
    }
    log::warn("store_reconnect_failed").kv("backend", "postgresql").kv("error", error);
    return false;
}

bool PostgresDriver::commit(std::span<const Write* const> writes)
{
    if (!commit_conn_.connected()) {
        log::error("store_commit_failed").kv("backend", "postgresql").kv("error", "not connected");
        return false;
    }
    for (std::size_t from = 0; from < writes.size(); from += chunk_size)
        if (!apply_chunk(writes.subspan(from, std::min(chunk_size, writes.size() - from)))) return false;
    return true;
}

// One round trip, one implicit transaction (all or nothing). A failed
// statement aborts the chunk; the batch then fails as a whole, chunks
// before it included as far as waiters know (they were committed: a retry
// of those writes finds them and is skipped or applied again, harmlessly).
bool PostgresDriver::apply_chunk(std::span<const Write* const> chunk)
{
    statements_.clear();
    for (const Write* w : chunk) statements_.push_back(statement_for(*w));
    std::string error;
    bool ok = commit_conn_.pipeline(statements_, results_, error);
    for (const pg::Result& r : results_)
        if (!r.ok()) {
            ok = false;
            error = r.error();
        }
    if (!ok) {
        log::error("store_commit_failed").kv("backend", "postgresql").kv("error", error);
        commit_conn_.drop();  // reconnect() starts afresh, whatever state it was left in
        return false;
    }
    for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i]->skipped = !chunk[i]->erase && results_[i].affected() == 0;
    return true;
}

// One row or none, from a prepared single-row statement.
bool PostgresDriver::fetch_one(const char* statement, const pg::Params& params, std::optional<JobRecord>& out)
{
    std::string error;
    const bool ok = pool_.with(
        [&](pg::Connection& c) {
            pg::Result r = c.exec_prepared(statement, params);
            if (!r.ok()) {
                error = r.error();
                return false;
            }
            out.reset();
            if (r.rows() == 0) return true;
            JobRecord rec;
            if (!read_row(r, 0, rec)) return false;
            out = std::move(rec);
            return true;
        },
        error);
    if (!ok) log::warn("store_read_failed").kv("backend", "postgresql").kv("error", error.empty() ? "invalid row" : error);
    return ok;
}

bool PostgresDriver::fetch(const RecordId& id, std::optional<JobRecord>& out)
{
    return fetch_one("zk_fetch", pg::Params().add(uuid_text(id)), out);
}

bool PostgresDriver::fetch_many(const std::vector<RecordId>& ids, std::vector<JobRecord>& out)
{
    out.clear();
    if (ids.empty()) return true;  // no round trip for nothing
    std::string error;
    const bool ok = pool_.with(
        [&](pg::Connection& c) {
            pg::Result r = c.exec_prepared("zk_fetch_many", pg::Params().add(uuid_array_text(ids)));
            if (!r.ok()) error = r.error();
            return r.ok() && read_rows(r, out);
        },
        error);
    if (!ok)
        log::warn("store_read_failed").kv("backend", "postgresql").kv("error", error.empty() ? "invalid row" : error);
    return ok;
}

bool PostgresDriver::fetch_key(const std::string& scope, const std::string& key, std::optional<JobRecord>& out)
{
    return fetch_one("zk_fetch_key", pg::Params().add(scope).add(key), out);
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
    p.add(static_cast<long long>(q.limit));
    std::string error;
    const bool ok = pool_.with(
        [&](pg::Connection& c) {
            pg::Result r = c.exec_prepared("zk_list", p);
            return r.ok() && read_rows(r, out);
        },
        error);
    if (!ok) log::warn("store_read_failed").kv("backend", "postgresql").kv("error", error);
    return ok;
}

std::optional<std::size_t> PostgresDriver::rescue(std::int64_t due_ms, std::size_t limit,
                                                  const std::function<void(JobRecord&)>& finish)
{
    std::size_t finished = 0;
    std::string error;
    const bool ok = pool_.with(
        [&](pg::Connection& c) {
            pg::Result r = c.exec_prepared("zk_overdue", pg::Params().add(due_ms).add(static_cast<long long>(limit)));
            std::vector<JobRecord> overdue;
            if (!r.ok() || !read_rows(r, overdue)) return false;
            if (overdue.empty()) return true;
            std::vector<pg::Connection::Statement> writes;
            for (JobRecord& rec : overdue) {
                finish(rec);
                writes.push_back({"zk_put", put_params(rec).null().null()});  // keys stay as they are
            }
            std::vector<pg::Result> results;
            if (!c.pipeline(writes, results, error)) return false;
            for (const pg::Result& w : results) {
                if (!w.ok()) return false;
                finished += static_cast<std::size_t>(w.affected());
            }
            return true;
        },
        error);
    if (!ok) {
        log::warn("store_sweep_failed").kv("backend", "postgresql").kv("error", error);
        return std::nullopt;
    }
    return finished;
}

std::optional<std::size_t> PostgresDriver::purge(std::int64_t finished_before_ms, std::size_t limit)
{
    std::size_t purged = 0;
    std::string error;
    const bool ok = pool_.with(
        [&](pg::Connection& c) {
            pg::Result r =
                c.exec_prepared("zk_purge", pg::Params().add(finished_before_ms).add(static_cast<long long>(limit)));
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
        [&](pg::Connection& c) {
            pg::Result r = c.exec_prepared("zk_now", pg::Params());
            now = r.integer(0, 0);
            return r.ok() && r.rows() == 1;
        },
        error);
    if (!ok) return std::nullopt;
    return now;
}

bool PostgresDriver::reachable() const { return pool_.reachable(); }

}  // namespace zk::storage
