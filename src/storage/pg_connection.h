// One libpq connection: connects with a bounded timeout, runs statements with
// text parameters, and reports failures as values (the server's or libpq's
// message). Used by one thread at a time; the owner decides when to reconnect.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace zk::storage::pg {

// A statement's result; empty (ok() false) when the statement failed.
class Result {
public:
    Result() = default;
    explicit Result(pg_result* r);
    bool ok() const { return ok_; }
    int rows() const;
    int affected() const;  // rows an INSERT/UPDATE/DELETE touched
    bool null(int row, int col) const;
    std::string_view text(int row, int col) const;
    long long integer(int row, int col) const;  // 0 when NULL or not a number
    const std::string& error() const { return error_; }

private:
    struct Clear {
        void operator()(pg_result* r) const;
    };
    std::unique_ptr<pg_result, Clear> r_;
    bool ok_ = false;
    std::string error_;
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
    explicit Connection(std::string conninfo);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Blocking; bounded by connect_timeout (which open_options() puts in the
    // conninfo). False with the reason in error.
    bool connect(std::string& error);
    bool connected() const;
    void drop();

    Result exec(const char* sql);
    Result exec(const char* sql, const Params& params);
    // Server-side prepared statements, by name: parsed and planned once per
    // connection (prepare again after every connect()).
    bool prepare(const char* name, const char* sql, std::string& error);
    Result exec_prepared(const char* name, const Params& params);

    // Pipelined: sends every statement, then one Sync, and reads all the
    // results in one round trip. The statements between two Syncs form one
    // implicit transaction (all or nothing). results gets one Result per
    // statement; false when the round trip itself failed.
    struct Statement {
        const char* prepared;  // a name given to prepare()
        Params params;
    };
    bool pipeline(const std::vector<Statement>& statements, std::vector<Result>& results, std::string& error);

    const std::string& conninfo() const { return conninfo_; }
    std::string last_error() const;

private:
    std::string conninfo_;
    pg_conn* conn_ = nullptr;
};

// What a connection string names, without the password: for log lines and
// start-up errors.
std::string describe(const std::string& conninfo);
// Checks a connection string's syntax without connecting; empty when valid.
std::string check_conninfo(const std::string& conninfo);

}  // namespace zk::storage::pg
