// A bounded set of PostgreSQL connections for the reads that request and
// pool threads make (a poll of a job held elsewhere, /jobs, the sweep). A
// caller borrows one for one statement; when all are lent it waits, at most
// `wait`, saying util::will_block() first so its seat goes to a standby.
// While the database is unreachable the pool fails fast: after a failed
// connect nobody tries again for `retry_after`, so a dead database costs a
// request a 503, not a connect timeout.
// Lock order: mutex_ is a leaf; nothing blocks while holding it (connecting
// happens outside it, on the borrowed slot).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/pg_connection.h"

namespace zk::storage::pg {

class Pool {
public:
    using Clock = std::chrono::steady_clock;
    // prepare: run on every new connection (prepared statements); false
    // with a reason fails the connection.
    using Prepare = std::function<bool(Connection&, std::string&)>;

    Pool(std::string conninfo, std::size_t size, std::chrono::milliseconds wait,
         std::chrono::milliseconds retry_after, Prepare prepare);

    // Runs use(connection) on a connected connection. False (with error set)
    // when none could be had in time or the database is down; use's own
    // return value otherwise. A connection that use() left broken is dropped.
    bool with(const std::function<bool(Connection&)>& use, std::string& error);

    // True until a connect fails; again after a connect succeeds.
    bool reachable() const;

private:
    struct Slot {
        std::unique_ptr<Connection> conn;
    };
    std::optional<std::size_t> borrow(std::string& error);
    void give_back(std::size_t slot);
    bool ensure_connected(Connection& c, std::string& error);

    const std::string conninfo_;
    const std::chrono::milliseconds wait_;
    const std::chrono::milliseconds retry_after_;
    const Prepare prepare_;

    mutable std::mutex mutex_;
    std::condition_variable returned_;
    std::vector<Slot> slots_;        // guarded by mutex_ (which slot is lent; a lent slot is its borrower's)
    std::vector<std::size_t> free_;  // guarded by mutex_
    Clock::time_point down_until_{};  // guarded by mutex_
    std::string down_reason_;         // guarded by mutex_
};

}  // namespace zk::storage::pg
