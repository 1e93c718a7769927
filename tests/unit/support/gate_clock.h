// A manual clock that can hold back every thread but the test's own: while
// the gate is closed, now_ms() called from any other thread blocks. The job
// pool's workers read the clock first thing in begin(), before taking any
// lock, so closing the gate parks a worker at a known point and fills the
// pool deterministically (queue_full, cancelling a job still queued).
// Use it with a pool that was not start()ed: the timer thread reads the clock
// while holding the timer mutex and would block there.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "domain/clock.h"

namespace zk::test {

class GateClock final : public Clock {
public:
    explicit GateClock(Millis start) : now_(start), owner_(std::this_thread::get_id()) {}

    Millis now_ms() const override
    {
        if (std::this_thread::get_id() != owner_) {
            std::unique_lock lock(mutex_);
            ++blocked_;
            open_cv_.wait(lock, [&] { return open_; });
            --blocked_;
        }
        return now_.load();
    }

    void advance(Millis by) { now_ += by; }
    void close()
    {
        std::lock_guard lock(mutex_);
        open_ = false;
    }
    void open()
    {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        open_cv_.notify_all();
    }
    // Threads parked at the gate right now.
    int blocked() const
    {
        std::lock_guard lock(mutex_);
        return blocked_;
    }

private:
    std::atomic<Millis> now_;
    const std::thread::id owner_;
    mutable std::mutex mutex_;
    mutable std::condition_variable open_cv_;
    bool open_ = true;        // guarded by mutex_
    mutable int blocked_ = 0;  // guarded by mutex_
};

}  // namespace zk::test
