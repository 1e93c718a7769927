// libpq behind values and deadlines. Every call sends without blocking
// (the connection is in non-blocking mode) and then waits in poll() on the
// socket and the Interrupt's eventfd until the deadline: PQgetResult is only
// called once PQisBusy says it will not block. A call that times out drops
// the connection rather than cancelling: PQcancel opens a blocking
// connection of its own to the same server, which is what just failed to
// answer; the server's statement_timeout ends the statement on its side.

#include "storage/pg_connection.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <system_error>

#include "util/log.h"

namespace zk::storage::pg {

namespace {

// SQLSTATEs that mean the session is gone (class 08 is connection_exception).
constexpr std::string_view connection_exception_class = "08";
constexpr std::string_view admin_shutdown = "57P01";
constexpr std::string_view crash_shutdown = "57P02";
constexpr std::string_view cannot_connect_now = "57P03";
// A write on a standby or in a read-only session.
constexpr std::string_view read_only_sql_transaction = "25006";
// Statements queued in a pipeline between two flushes: a few KB, sent in one
// write while the socket takes them.
constexpr std::size_t statements_per_flush = 128;
// libpq treats a connect_timeout under 2 s as 2 s; the per-host cap does too.
constexpr int min_connect_timeout_s = 2;

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

bool mentions_recovery(std::string_view error) { return error.find("recovery") != std::string_view::npos; }

// A connect refused by target_session_attrs ("session is read-only",
// "server is in hot standby mode").
bool mentions_read_only(std::string_view error)
{
    return error.find("read-only") != std::string_view::npos || error.find("hot standby") != std::string_view::npos;
}

// Drops the connection if a call unwinds half way (an allocation failing
// between two sends): libpq's state is then unknown.
class DropOnUnwind {
public:
    explicit DropOnUnwind(Connection& c) : c_(&c) {}
    ~DropOnUnwind()
    {
        if (c_) c_->drop();
    }
    DropOnUnwind(const DropOnUnwind&) = delete;
    DropOnUnwind& operator=(const DropOnUnwind&) = delete;
    void release() { c_ = nullptr; }

private:
    Connection* c_;
};

}  // namespace

// ---- Interrupt ----

Interrupt::Interrupt() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot create the interrupt eventfd");
}

Interrupt::~Interrupt() { ::close(fd_); }

// Nobody reads the eventfd, so it stays readable for every later poll.
void Interrupt::fire()
{
    fired_.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
}

std::string_view name(Failure f)
{
    switch (f) {
    case Failure::none: return "none";
    case Failure::statement: return "statement";
    case Failure::lost: return "lost";
    case Failure::timeout: return "timeout";
    case Failure::interrupted: return "interrupted";
    case Failure::read_only: return "read_only";
    }
    return "unknown";
}

// ---- Result and Params ----

void Result::Clear::operator()(pg_result* r) const { PQclear(r); }

Result::Result(pg_result* r) : r_(r)
{
    const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    ok_ = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (ok_) return;
    if (status == PGRES_PIPELINE_ABORTED) error_ = "not run: an earlier statement of the pipeline failed";
    else error_ = r ? trimmed(PQresultErrorMessage(r)) : "no result (connection lost)";
    if (const char* s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr) sqlstate_ = s;
}

Result Result::failure(std::string error)
{
    Result r;
    r.error_ = std::move(error);
    return r;
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

// ---- Connecting ----

namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

std::vector<std::string> split_list(const std::string& s)
{
    std::vector<std::string> out;
    std::size_t from = 0;
    for (std::size_t comma; (comma = s.find(',', from)) != std::string::npos; from = comma + 1)
        out.push_back(s.substr(from, comma - from));
    out.push_back(s.substr(from));
    return out;
}

// libpq ignores connect_timeout when polled, so a string naming several
// hosts is split here: each host is tried in turn, capped by the string's
// connect_timeout, with the other options (target_session_attrs included).
struct ConnectPlan {
    std::vector<Options> hosts;        // one set of options per attempt
    std::chrono::seconds per_host{0};  // 0: only the call's deadline
};

std::chrono::seconds per_host_cap(const char* connect_timeout)
{
    int s = 0;
    std::from_chars(connect_timeout, connect_timeout + std::strlen(connect_timeout), s);
    return std::chrono::seconds(s > 0 ? std::max(s, min_connect_timeout_s) : 0);
}

// host, hostaddr and port lists of one length (or a single port) are split;
// anything else goes to libpq whole (which reports a mismatch), and so does
// prefer-standby, which must see every host before it chooses.
ConnectPlan plan_connect(PQconninfoOption* opts)
{
    Options common;
    std::string host, hostaddr, port, attrs;
    ConnectPlan plan;
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
        if (!o->val) continue;
        const std::string_view k = o->keyword;
        if (k == "host") host = o->val;
        else if (k == "hostaddr") hostaddr = o->val;
        else if (k == "port") port = o->val;
        else common.emplace_back(k, o->val);
        if (k == "target_session_attrs") attrs = o->val;
        if (k == "connect_timeout") plan.per_host = per_host_cap(o->val);
    }
    const auto hosts = host.empty() ? std::vector<std::string>{} : split_list(host);
    const auto addrs = hostaddr.empty() ? std::vector<std::string>{} : split_list(hostaddr);
    const auto ports = port.empty() ? std::vector<std::string>{} : split_list(port);
    const std::size_t n = std::max(hosts.size(), addrs.size());
    const bool split = n > 1 && (hosts.empty() || hosts.size() == n) && (addrs.empty() || addrs.size() == n) &&
                       (ports.size() <= 1 || ports.size() == n) && attrs != "prefer-standby";
    auto add = [&](const std::string& h, const std::string& a, const std::string& p) {
        Options set = common;
        if (!h.empty()) set.emplace_back("host", h);
        if (!a.empty()) set.emplace_back("hostaddr", a);
        if (!p.empty()) set.emplace_back("port", p);
        plan.hosts.push_back(std::move(set));
    };
    if (!split) add(host, hostaddr, port);
    for (std::size_t i = 0; split && i < n; ++i)
        add(hosts.empty() ? "" : hosts[i], addrs.empty() ? "" : addrs[i],
            ports.empty() ? "" : ports[ports.size() == 1 ? 0 : i]);
    return plan;
}

// The host an attempt went to, for the error of a multi-host string.
std::string host_of(const Options& options)
{
    for (const auto& [k, v] : options)
        if (k == "host" || k == "hostaddr") return v;
    return "(default host)";
}

}  // namespace

Connection::Connection(std::string conninfo, const Interrupt* interrupt)
    : conninfo_(std::move(conninfo)), interrupt_(interrupt)
{
}

Connection::~Connection() { drop(); }

bool Connection::connect(Deadline deadline, std::string& error)
{
    drop();
    begin_call();
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo_.c_str(), &err);
    if (!opts) {
        fail(Failure::lost, "bad connection string: " + (err ? trimmed(err) : std::string("out of memory")));
        PQfreemem(err);
        error = error_;
        return false;
    }
    const ConnectPlan plan = plan_connect(opts);
    PQconninfoFree(opts);
    std::string errors;
    for (const Options& options : plan.hosts) {
        std::vector<const char*> keywords, values;
        for (const auto& [k, v] : options) {
            keywords.push_back(k.c_str());
            values.push_back(v.c_str());
        }
        keywords.push_back(nullptr);
        values.push_back(nullptr);
        const Deadline until = plan.per_host.count() > 0 ? std::min(deadline, Clock::now() + plan.per_host) : deadline;
        std::string why;
        if (attempt(keywords.data(), values.data(), until, why)) return true;
        errors.append(errors.empty() ? "" : "; ").append(plan.hosts.size() > 1 ? host_of(options) + ": " : "");
        errors.append(why);
        if (failure_ == Failure::interrupted || Clock::now() >= deadline) break;
    }
    fail(failure_, errors);
    error = error_;
    return false;
}

// One host: PQconnectPoll driven by poll() until `deadline`; the connection
// is then made non-blocking. On failure failure_ says why, error the message.
bool Connection::attempt(const char* const* keywords, const char* const* values, Deadline deadline,
                         std::string& error)
{
    conn_ = PQconnectStartParams(keywords, values, 0);
    auto status = PGRES_POLLING_WRITING;  // libpq's documented first state
    auto pending = [&] { return status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED; };
    while (conn_ && PQstatus(conn_) != CONNECTION_BAD && pending()) {
        const Ready r = wait_for(PQsocket(conn_), status == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (r != Ready::yes) {
            give_up(r, "connection");
            error = error_;
            return false;
        }
        status = PQconnectPoll(conn_);
    }
    if (conn_ && status == PGRES_POLLING_OK && PQsetnonblocking(conn_, 1) == 0) {
        PQsetNoticeProcessor(conn_, log_notice, nullptr);
        return true;
    }
    error = conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory";
    return fail(mentions_read_only(error) ? Failure::read_only : Failure::lost, error);
}

bool Connection::connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

// The server's goodbye (an error message, then the end of the stream) may
// take two reads to see; a few rounds tell it from stray messages.
bool Connection::alive()
{
    constexpr int max_reads = 4;
    for (int i = 0; i < max_reads && connected(); ++i) {
        pollfd p{PQsocket(conn_), POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) return true;  // nothing to read: idle and alive
        if (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK) drop();
    }
    return connected();
}

// Non-blocking, so PQfinish's goodbye message never waits for a frozen server.
void Connection::drop()
{
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
}

// ---- Waiting ----

void Connection::begin_call()
{
    failure_ = Failure::none;
    error_.clear();
    call_started_ = Clock::now();
}

bool Connection::fail(Failure why, std::string error)
{
    failure_ = why;
    error_ = std::move(error);
    if (why != Failure::statement) drop();
    return false;
}

// A wait that ended without the socket being ready.
bool Connection::give_up(Ready r, std::string_view waiting_for)
{
    if (r == Ready::timeout) return fail(Failure::timeout, "no " + std::string(waiting_for) + " in " + waited());
    if (r == Ready::interrupted) return fail(Failure::interrupted, "interrupted (shutting down) after " + waited());
    return fail(Failure::lost, "cannot wait for the database's socket");
}

std::string Connection::waited() const
{
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - call_started_);
    return std::to_string(ms.count()) + " ms";
}

// Until `socket` has one of `events`, the interrupt fires or the deadline
// passes. A hang-up or error counts as ready: libpq then reports it.
Connection::Ready Connection::wait_for(int socket, short events, Deadline deadline, short* revents) const
{
    if (socket < 0) return Ready::failed;
    pollfd fds[2] = {{socket, events, 0}, {interrupt_ ? interrupt_->fd() : -1, POLLIN, 0}};
    for (;;) {
        if (interrupt_ && interrupt_->fired()) return Ready::interrupted;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        const int n = ::poll(fds, 2, static_cast<int>(std::clamp<long long>(left, 0, INT_MAX)));
        if (n < 0 && errno != EINTR) return Ready::failed;
        if (n > 0 && fds[1].revents) return Ready::interrupted;
        if (n > 0 && fds[0].revents) {
            if (revents) *revents = fds[0].revents;
            return Ready::yes;
        }
        if (Clock::now() >= deadline) return Ready::timeout;
    }
}

// Waits for the socket, then reads what arrived into libpq's buffer.
bool Connection::consume(Deadline deadline, short events)
{
    short revents = 0;
    if (const Ready r = wait_for(PQsocket(conn_), events, deadline, &revents); r != Ready::yes)
        return give_up(r, "answer from the database");
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(conn_))
        return fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
    return true;
}

// Pushes out what libpq holds, reading meanwhile: the server may be blocked
// writing results to us, and stops reading until we do.
bool Connection::flush(Deadline deadline)
{
    for (;;) {
        const int left = PQflush(conn_);
        if (left == 0) return true;
        if (left < 0) return fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
        if (!consume(deadline, POLLIN | POLLOUT)) return false;
    }
}

bool Connection::notifications(Deadline deadline, std::vector<std::string>& payloads)
{
    begin_call();
    if (!conn_) return fail(Failure::lost, "not connected");
    auto take = [&] {
        while (PGnotify* n = PQnotifies(conn_)) {
            payloads.emplace_back(n->extra ? n->extra : "");
            PQfreemem(n);
        }
    };
    take();  // already in libpq's buffer
    if (!payloads.empty()) return true;
    const Ready r = wait_for(PQsocket(conn_), POLLIN, deadline);
    if (r == Ready::timeout) return true;
    if (r != Ready::yes) return give_up(r, "notification");
    if (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK)
        return fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
    take();
    return true;
}

// ---- Statements ----

// A server error sorted by what the owner must do.
Failure Connection::classify(const Result& r) const
{
    if (r.ok()) return Failure::none;
    const std::string_view s = r.sqlstate();
    if (s.starts_with(connection_exception_class) || s == admin_shutdown || s == crash_shutdown ||
        s == cannot_connect_now)
        return Failure::lost;
    if (!conn_ || PQstatus(conn_) == CONNECTION_BAD) return Failure::lost;
    if (s == read_only_sql_transaction || mentions_recovery(r.error())) return Failure::read_only;
    return Failure::statement;
}

// Every call starts here: not connected, interrupted or already late fails
// at once, before anything is sent (so its outcome is known: not run).
bool Connection::ready_to_send(Deadline deadline)
{
    begin_call();
    if (!conn_) return fail(Failure::lost, "not connected");
    if (interrupt_ && interrupt_->fired()) return fail(Failure::interrupted, "interrupted (shutting down)");
    if (Clock::now() >= deadline) return fail(Failure::timeout, "the deadline passed before the statement was sent");
    return true;
}

// The results of one statement (or of a multi-statement string): the first
// error, otherwise the last.
Result Connection::collect(Deadline deadline)
{
    Result kept;
    bool any = false;
    for (;;) {
        while (PQisBusy(conn_))
            if (!consume(deadline, POLLIN)) return Result::failure(error_);
        if (PQstatus(conn_) == CONNECTION_BAD) break;
        PGresult* r = PQgetResult(conn_);
        if (!r) break;
        Result next(r);
        if (!any || kept.ok()) kept = std::move(next);
        any = true;
    }
    if (!any) fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
    return any ? std::move(kept) : Result::failure(error_);
}

// After a PQsend*: flush, collect, sort the outcome.
Result Connection::finish(int sent, Deadline deadline)
{
    if (!sent) fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
    if (!sent || !flush(deadline)) return Result::failure(error_);
    Result r = collect(deadline);
    if (failure_ != Failure::none) return r;
    if (const Failure f = classify(r); f != Failure::none) fail(f, r.error());
    return r;
}

template <class Send>
Result Connection::call(Deadline deadline, Send send)
{
    if (!ready_to_send(deadline)) return Result::failure(error_);
    DropOnUnwind guard(*this);
    Result r = finish(send(), deadline);
    guard.release();
    return r;
}

Result Connection::exec(const char* sql, Deadline deadline)
{
    return call(deadline, [&] { return PQsendQuery(conn_, sql); });
}

Result Connection::exec(const char* sql, const Params& params, Deadline deadline)
{
    const ParamArrays a(params);
    return call(deadline,
                [&] { return PQsendQueryParams(conn_, sql, a.count(), nullptr, a.data(), nullptr, nullptr, 0); });
}

bool Connection::prepare(const char* name, const char* sql, Deadline deadline, std::string& error)
{
    const Result r = call(deadline, [&] { return PQsendPrepare(conn_, name, sql, 0, nullptr); });
    if (!r.ok()) error = std::string("cannot prepare ") + name + ": " + r.error();
    return r.ok();
}

Result Connection::exec_prepared(const char* name, const Params& params, Deadline deadline)
{
    const ParamArrays a(params);
    return call(deadline, [&] { return PQsendQueryPrepared(conn_, name, a.count(), a.data(), nullptr, nullptr, 0); });
}

// ---- Pipelines ----

// Queues the statements and the Sync, pushing them out every
// statements_per_flush while reading what comes back meanwhile (into
// libpq's buffer, parsed later). Without those flushes libpq's output buffer
// would grow by the whole batch, and it moves its unsent bytes up front on
// every send attempt the socket refuses: quadratic in the batch.
bool Connection::send_pipeline(const std::vector<Statement>& statements, Deadline deadline)
{
    if (PQenterPipelineMode(conn_) != 1) return fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
    for (std::size_t i = 0; i < statements.size(); ++i) {
        const ParamArrays a(statements[i].params);
        if (!PQsendQueryPrepared(conn_, statements[i].prepared, a.count(), a.data(), nullptr, nullptr, 0))
            return fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
        if ((i + 1) % statements_per_flush == 0 && !flush(deadline)) return false;
    }
    if (PQpipelineSync(conn_) != 1) return fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
    return true;
}

// Flushes and reads together until the Sync's result. Each statement's
// results end with a NULL; two NULLs in a row mean nothing more is coming.
bool Connection::read_pipeline(std::vector<Result>& results, Deadline deadline)
{
    bool flushed = false;
    int nulls = 0;
    for (;;) {
        if (!flushed) {
            const int left = PQflush(conn_);
            if (left < 0) return fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
            flushed = left == 0;
        }
        while (!PQisBusy(conn_)) {
            if (PQstatus(conn_) == CONNECTION_BAD) return fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
            PGresult* r = PQgetResult(conn_);
            if (!r && ++nulls > 1) return fail(Failure::lost, "the pipeline ended without its Sync");
            if (!r) continue;
            nulls = 0;
            if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                return true;
            }
            results.emplace_back(r);
        }
        if (!consume(deadline, flushed ? POLLIN : POLLIN | POLLOUT)) return false;
    }
}

bool Connection::pipeline(const std::vector<Statement>& statements, std::vector<Result>& results, Deadline deadline,
                          std::string& error)
{
    results.clear();
    if (!ready_to_send(deadline)) {
        error = error_;
        return false;
    }
    results.reserve(statements.size());
    DropOnUnwind guard(*this);
    if (send_pipeline(statements, deadline) && read_pipeline(results, deadline)) {
        if (results.size() != statements.size())
            fail(Failure::lost, "the pipeline returned " + std::to_string(results.size()) + " results for " +
                                    std::to_string(statements.size()) + " statements");
        else if (PQexitPipelineMode(conn_) != 1)
            fail(Failure::lost, trimmed(PQerrorMessage(conn_)));
    }
    guard.release();
    if (failure_ == Failure::none) {  // complete: the first failed statement, if any, is the outcome
        const auto failed = std::find_if(results.begin(), results.end(), [](const Result& r) { return !r.ok(); });
        if (failed != results.end()) fail(classify(*failed), failed->error());
        if (failed != results.end()) error = error_;
        return true;
    }
    error = error_;
    return false;
}

// ---- Connection strings ----

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
