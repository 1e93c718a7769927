// A bounded set of PostgreSQL connections for the reads that request and
// pool threads make (a poll of a job held elsewhere, /jobs, the sweep). A
// caller borrows one for one use, under a deadline, and gives it back by RAII.
// While Availability says the database is down the pool fails at once and
// never connects: only the store's writer probes a down database.
//
// Lock order: mutex_ is a leaf; nothing blocks while holding it (connecting
// and statements happen outside it, on the borrowed slot, which belongs to
// its borrower alone). Availability's own mutex is taken without mutex_.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/availability.h"
#include "storage/pg_connection.h"

namespace zk::storage::pg {

struct PoolTimeouts {
    std::chrono::milliseconds borrow;     // longest wait for a free connection
    std::chrono::milliseconds statement;  // client-side deadline for one use (the server's statement_timeout plus a margin)
    std::chrono::milliseconds connect;    // deadline for a new connection, prepare included
};

class Pool {
public:
    // prepare: run on every new connection (session settings, prepared
    // statements) before its deadline, the connect deadline; false with a
    // reason fails the connection.
    using Prepare = std::function<bool(Connection&, Deadline, std::string&)>;

    Pool(std::string conninfo, std::size_t size, PoolTimeouts timeouts, Prepare prepare, const Interrupt* interrupt,
         Availability& availability);

    // Runs use(connection, deadline) on a connected connection; its
    // statements must pass `deadline` on. False (with error set) when no
    // connection could be had in time or the database is down; use's own
    // return value otherwise. A connection that came back broken is dropped.
    // `use` must be safe to repeat: when a reused connection turns out lost
    // (the server ended an idle session), it runs once more on a new one.
    // Availability hears of it: an answer (a refused statement included)
    // is succeeded(); a failed connect, a fresh connection lost, or any
    // timeout (the server's statement_timeout would have answered first) is
    // failed(). An interrupt or a read-only answer tells it nothing.
    bool with(const std::function<bool(Connection&, Deadline)>& use, std::string& error);

private:
    struct Slot {
        std::unique_ptr<Connection> conn;
        std::uint64_t epoch = 0;  // Availability's epoch when it connected
    };
    class Lease;
    std::optional<std::size_t> borrow(std::string& error);
    void give_back(std::size_t slot);
    bool connect(Slot& slot, std::string& error);
    bool run(Slot& slot, const std::function<bool(Connection&, Deadline)>& use, bool fresh, std::string& error);
    bool down(std::string& error) const;

    const std::string conninfo_;
    const PoolTimeouts timeouts_;
    const Prepare prepare_;
    Availability& availability_;

    mutable std::mutex mutex_;
    std::condition_variable returned_;
    std::vector<Slot> slots_;        // which slot is lent is guarded by mutex_; a lent slot is its borrower's
    std::vector<std::size_t> free_;  // guarded by mutex_
};

}  // namespace zk::storage::pg
