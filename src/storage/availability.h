// Whether the store's database answers, as the last round trips found, and
// the log of its changes: one line when it becomes unavailable, one when it
// comes back, and at most one reminder every `remind_every` while it stays down.
// The one place that knows; the read pool fails fast on it while it is down.
//
// Thread-safe. mutex_ is a leaf: nothing is called under it but the clock
// (log lines are written after it is released). up() and epoch() are atomics
// read without it, on every borrow from the pool. Reports from several
// threads race benignly: the state follows the last one (a round trip that
// began before an outage and succeeds after it was reported brings the store
// back up until the next failure says otherwise).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace zk::storage {

class Availability {
public:
    using Now = std::function<std::chrono::steady_clock::time_point()>;  // injectable for tests

    // store: how log lines name it (the database, without a password).
    explicit Availability(std::string store, std::chrono::milliseconds remind_every = std::chrono::seconds(10),
                          Now now = {});

    void failed(std::string_view why);  // a round trip or a connect failed for want of the database
    void succeeded();                   // a round trip was answered
    bool up() const { return up_.load(std::memory_order_acquire); }
    std::uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }  // +1 each time it comes back up
    std::string reason() const;  // the last failure, while down; empty while up

private:
    using TimePoint = std::chrono::steady_clock::time_point;

    const std::string store_;
    const std::chrono::milliseconds remind_every_;
    const Now now_;

    std::atomic<bool> up_{true};            // written under mutex_
    std::atomic<std::uint64_t> epoch_{0};  // written under mutex_
    mutable std::mutex mutex_;
    std::string reason_;       // guarded by mutex_
    TimePoint down_since_{};   // guarded by mutex_
    TimePoint reminded_at_{};  // guarded by mutex_: the last warn line while down
};

}  // namespace zk::storage
