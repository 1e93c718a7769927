// libpq behind values: results that free themselves, text parameters, and
// one pipelined round trip for a batch of statements.

#include "storage/pg_connection.h"

#include <libpq-fe.h>

#include <charconv>
#include <cstring>

#include "util/log.h"

namespace zk::storage::pg {

namespace {

std::string trimmed(const char* message)
{
    std::string m = message ? message : "";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    for (char& c : m)
        if (c == '\n' || c == '\t') c = ' ';
    return m.empty() ? "unknown error" : m;
}

// The server's notices (NOTICE: relation already exists, ...) would go to
// stderr unformatted; they are only of interest when debugging.
void log_notice(void*, const char* message)
{
    if (log::enabled(log::Level::debug)) log::debug("store_notice").kv("message", trimmed(message));
}

struct ParamArrays {
    std::vector<const char*> values;
    explicit ParamArrays(const Params& p)
    {
        values.reserve(p.values.size());
        for (std::size_t i = 0; i < p.values.size(); ++i) values.push_back(p.is_null[i] ? nullptr : p.values[i].c_str());
    }
    int count() const { return static_cast<int>(values.size()); }
    const char* const* data() const { return values.empty() ? nullptr : values.data(); }
};

}  // namespace

void Result::Clear::operator()(pg_result* r) const { PQclear(r); }

Result::Result(pg_result* r) : r_(r)
{
    const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    ok_ = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (!ok_) error_ = r ? trimmed(PQresultErrorMessage(r)) : "no result (connection lost)";
}

int Result::rows() const { return r_ ? PQntuples(r_.get()) : 0; }

int Result::affected() const
{
    if (!r_) return 0;
    const char* n = PQcmdTuples(r_.get());
    int v = 0;
    std::from_chars(n, n + std::strlen(n), v);
    return v;
}

bool Result::null(int row, int col) const { return !r_ || PQgetisnull(r_.get(), row, col); }

std::string_view Result::text(int row, int col) const
{
    if (null(row, col)) return {};
    return {PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
}

long long Result::integer(int row, int col) const
{
    const auto t = text(row, col);
    long long v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
}

Params& Params::add(std::string v)
{
    values.push_back(std::move(v));
    is_null.push_back(false);
    return *this;
}

Params& Params::null()
{
    values.emplace_back();
    is_null.push_back(true);
    return *this;
}

Connection::Connection(std::string conninfo) : conninfo_(std::move(conninfo)) {}

Connection::~Connection() { drop(); }

bool Connection::connect(std::string& error)
{
    drop();
    conn_ = PQconnectdb(conninfo_.c_str());
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) {
        PQsetNoticeProcessor(conn_, log_notice, nullptr);
        return true;
    }
    error = conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory";
    drop();
    return false;
}

bool Connection::connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

void Connection::drop()
{
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
}

std::string Connection::last_error() const { return conn_ ? trimmed(PQerrorMessage(conn_)) : "not connected"; }

Result Connection::exec(const char* sql)
{
    if (!conn_) return Result();
    return Result(PQexec(conn_, sql));
}

Result Connection::exec(const char* sql, const Params& params)
{
    if (!conn_) return Result();
    const ParamArrays a(params);
    return Result(PQexecParams(conn_, sql, a.count(), nullptr, a.data(), nullptr, nullptr, 0));
}

bool Connection::prepare(const char* name, const char* sql, std::string& error)
{
    Result r = conn_ ? Result(PQprepare(conn_, name, sql, 0, nullptr)) : Result();
    if (!r.ok()) error = std::string("cannot prepare ") + name + ": " + (conn_ ? r.error() : "not connected");
    return r.ok();
}

Result Connection::exec_prepared(const char* name, const Params& params)
{
    if (!conn_) return Result();
    const ParamArrays a(params);
    return Result(PQexecPrepared(conn_, name, a.count(), a.data(), nullptr, nullptr, 0));
}

// Blocking pipeline mode: fine while the statements fit the socket buffers,
// which the caller ensures by bounding how many it sends per round trip.
bool Connection::pipeline(const std::vector<Statement>& statements, std::vector<Result>& results, std::string& error)
{
    results.clear();
    if (!conn_ || PQenterPipelineMode(conn_) != 1) {
        error = conn_ ? last_error() : "not connected";
        return false;
    }
    bool sent = true;
    for (const Statement& s : statements) {
        const ParamArrays a(s.params);
        if (!PQsendQueryPrepared(conn_, s.prepared, a.count(), a.data(), nullptr, nullptr, 0)) {
            sent = false;
            break;
        }
    }
    if (!sent || !PQpipelineSync(conn_)) {
        error = last_error();
        PQexitPipelineMode(conn_);
        return false;
    }
    // Each statement's result is followed by a NULL; the Sync's result ends it.
    for (;;) {
        PGresult* r = PQgetResult(conn_);
        if (!r) {
            if (PQstatus(conn_) != CONNECTION_OK) break;
            continue;
        }
        const auto status = PQresultStatus(r);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        results.emplace_back(r);
    }
    const bool complete = results.size() == statements.size();
    if (!complete) error = last_error();
    PQexitPipelineMode(conn_);
    return complete;
}

std::string describe(const std::string& conninfo)
{
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (!opts) {
        PQfreemem(err);
        return "(unparsable connection string)";
    }
    std::string out;
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
        if (!o->val || !*o->val) continue;
        const std::string_view k = o->keyword;
        if (k == "host" || k == "hostaddr" || k == "port" || k == "dbname" || k == "user")
            out.append(out.empty() ? "" : " ").append(k).append("=").append(o->val);
    }
    PQconninfoFree(opts);
    return out.empty() ? "(libpq defaults)" : out;
}

std::string check_conninfo(const std::string& conninfo)
{
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (opts) {
        PQconninfoFree(opts);
        return {};
    }
    std::string why = err ? trimmed(err) : "cannot be parsed";
    PQfreemem(err);
    return why;
}

}  // namespace zk::storage::pg
