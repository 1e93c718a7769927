// The pool's clockwork: one thread watches every timer (a survey's deadline,
// its result's expiry, the ledger's re-reads) and hands each due one to a
// small bounded ThreadPool. Nothing due is dropped: when the pool's queue is
// full the timer thread waits for room. No survey owns a thread.
// Threads and locks: docs/concurrency.md (mutex_ is taken holding no other lock).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "domain/clock.h"
#include "domain/deadline_queue.h"
#include "domain/thread_pool.h"

namespace zk {

struct TimerShape {
    std::size_t threads = 0;         // pool threads that run due timers
    std::size_t queue_capacity = 0;  // due timers that may wait for a thread
    // The timer thread re-reads the clock at least this often, so a wall
    // clock step is noticed and tests can move a ManualClock.
    Millis max_wait_ms = 250;
};

class Timers {
public:
    using Handler = std::function<void(const Timer&)>;

    // `handler` runs each due timer on a pool thread.
    Timers(const Clock& clock, TimerShape shape, Handler handler);
    ~Timers();
    Timers(const Timers&) = delete;
    Timers& operator=(const Timers&) = delete;

    void start();
    // No more firing; due work already handed over still runs; joins. Idempotent.
    void stop();

    // Adds a timer; wakes the timer thread if it fires sooner than any other.
    void arm(const Timer& timer);
    // Makes the timer thread look at the clock now (a test moved it).
    void wake();

    std::size_t size() const;
    std::size_t threads() const { return shape_.threads; }
    std::size_t queue_depth() const { return pool_.queue_depth(); }
    std::size_t busy() const { return pool_.busy(); }

private:
    void run();

    const Clock& clock_;
    const TimerShape shape_;
    const Handler handler_;
    ThreadPool pool_;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    DeadlineQueue queue_;    // guarded by mutex_
    bool stopping_ = false;  // guarded by mutex_
    std::thread thread_;
};

}  // namespace zk
