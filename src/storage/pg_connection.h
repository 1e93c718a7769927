// One libpq connection whose every wait is bounded: connecting, statements
// and pipelines run non-blocking, each waiting in poll() on its socket until a
// deadline or an Interrupt. Failures are values, sorted by what the owner must
// do next (Failure). Used by one thread at a time; the owner reconnects.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace zk::storage::pg {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// Shutdown's way to end every wait on the database at once: an eventfd that,
// once fired, stays readable; each Connection sharing it polls it beside its
// socket. fire() is safe from any thread. The constructor throws
// std::system_error if no eventfd can be had (at start-up only).
class Interrupt {
public:
    Interrupt();
    ~Interrupt();
    Interrupt(const Interrupt&) = delete;
    Interrupt& operator=(const Interrupt&) = delete;

    void fire();
    bool fired() const { return fired_.load(std::memory_order_acquire); }
    int fd() const { return fd_; }

private:
    int fd_;
    std::atomic<bool> fired_{false};
};

// Why the last call on a connection failed.
enum class Failure {
    none,
    statement,    // the server refused this statement (constraint, timeout behind a lock, ...): the connection is fine
    lost,         // the connection broke or the server closed it (class 08, 57P01/57P02/57P03, EOF), or none was made
    timeout,      // no answer before the deadline
    interrupted,  // the Interrupt fired
    read_only,    // the server is a standby or read-only (SQLSTATE 25006, "in recovery"): a reconnect must find the primary
};
std::string_view name(Failure f);

// A statement's result; empty (ok() false) when the statement failed. The
// error is one line.
class Result {
public:
    Result() = default;
    explicit Result(pg_result* r);
    static Result failure(std::string error);  // no result from the server at all
    bool ok() const { return ok_; }
    int rows() const;
    int affected() const;  // rows an INSERT/UPDATE/DELETE touched
    bool null(int row, int col) const;
    std::string_view text(int row, int col) const;
    long long integer(int row, int col) const;  // 0 when NULL or not a number
    const std::string& error() const { return error_; }
    std::string_view sqlstate() const { return sqlstate_; }  // empty without a server error

private:
    struct Clear {
        void operator()(pg_result* r) const;
    };
    std::unique_ptr<pg_result, Clear> r_;
    bool ok_ = false;
    std::string error_;
    std::string sqlstate_;
};

// A parameter list, all sent as text (NULL when absent).
struct Params {
    std::vector<std::string> values;
    std::vector<bool> is_null;
    Params& add(std::string v);
    Params& add(long long v) { return add(std::to_string(v)); }
    Params& null();
};

class Connection {
public:
    // conninfo: a libpq connection string or URI. Does not connect.
    // interrupt: polled beside the socket in every wait (may be null).
    explicit Connection(std::string conninfo, const Interrupt* interrupt = nullptr);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Connects by PQconnectStart/PQconnectPoll until `deadline`, then puts
    // the connection in non-blocking mode. Several hosts are tried in turn,
    // each for at most the string's connect_timeout (libpq itself ignores it
    // when polled), so a hung first host does not hide a live second one;
    // target_session_attrs applies to each. False with the reason in error.
    // Not bounded: a host *name*'s DNS lookup, which libpq makes blocking
    // (the resolver's own timeouts apply); hostaddr or an address avoids it.
    bool connect(Deadline deadline, std::string& error);
    bool connected() const;
    // Without waiting: false if the server ended the session while it was
    // idle (its goodbye is waiting on the socket); the connection is then
    // dropped. An idle connection otherwise has nothing to read.
    bool alive();
    void drop();

    // One statement (exec without params may hold several; the first error
    // or else the last result is returned).
    Result exec(const char* sql, Deadline deadline);
    Result exec(const char* sql, const Params& params, Deadline deadline);
    // Server-side prepared statements, by name: parsed and planned once per
    // connection (prepare again after every connect()).
    bool prepare(const char* name, const char* sql, Deadline deadline, std::string& error);
    Result exec_prepared(const char* name, const Params& params, Deadline deadline);

    // Every statement, then one Sync, in one round trip: one implicit
    // transaction (all or nothing). No size limit: sending and reading are
    // interleaved (non-blocking), so a batch larger than both socket buffers
    // never deadlocks. True when a result came back for every statement
    // (results then has one per statement, in order; a failed one fails the
    // rest, and error and last_failure() tell the first); false when the
    // round trip itself failed.
    struct Statement {
        const char* prepared;  // a name given to prepare()
        Params params;
    };
    bool pipeline(const std::vector<Statement>& statements, std::vector<Result>& results, Deadline deadline,
                  std::string& error);

    // After LISTEN: waits until `deadline` for notifications and appends
    // their payloads (none when the deadline passed first). False when the
    // connection failed; last_failure() says how.
    bool notifications(Deadline deadline, std::vector<std::string>& payloads);

    // Of the last call. Any failure but `statement` leaves the connection
    // dropped (connected() false), so the owner reconnects.
    Failure last_failure() const { return failure_; }
    // The last failed call's reason, one line (empty after a success).
    const std::string& last_error() const { return error_; }
    const std::string& conninfo() const { return conninfo_; }

private:
    enum class Ready { yes, timeout, interrupted, failed };

    void begin_call();
    bool ready_to_send(Deadline deadline);
    bool fail(Failure why, std::string error);  // always false
    bool give_up(Ready r, std::string_view waiting_for);
    Failure classify(const Result& r) const;
    Ready wait_for(int socket, short events, Deadline deadline, short* revents = nullptr) const;
    bool attempt(const char* const* keywords, const char* const* values, Deadline deadline, std::string& error);
    bool flush(Deadline deadline);
    bool consume(Deadline deadline, short events);
    Result collect(Deadline deadline);
    Result finish(int sent, Deadline deadline);
    template <class Send>
    Result call(Deadline deadline, Send send);
    bool send_pipeline(const std::vector<Statement>& statements, Deadline deadline);
    bool read_pipeline(std::vector<Result>& results, Deadline deadline);
    std::string waited() const;

    const std::string conninfo_;
    const Interrupt* const interrupt_;
    pg_conn* conn_ = nullptr;
    Failure failure_ = Failure::none;
    std::string error_;
    Clock::time_point call_started_{};
};

// What a connection string names, without the password: for log lines and
// start-up errors.
std::string describe(const std::string& conninfo);
// Checks a connection string's syntax without connecting; empty when valid.
std::string check_conninfo(const std::string& conninfo);

}  // namespace zk::storage::pg
