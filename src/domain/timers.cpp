// The timer thread: sleep until the earliest timer (or max_wait), hand what
// is due to the pool, repeat.

#include "domain/timers.h"

#include <algorithm>
#include <chrono>

namespace zk {

Timers::Timers(const Clock& clock, TimerShape shape, Handler handler)
    : clock_(clock), shape_(shape), handler_(std::move(handler)), pool_(shape.threads, shape.queue_capacity)
{
}

Timers::~Timers() { stop(); }

void Timers::start() { thread_ = std::thread([this] { run(); }); }

void Timers::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    pool_.stop();  // runs what was handed over, then joins
}

void Timers::arm(const Timer& timer)
{
    bool sooner = false;
    {
        std::lock_guard lock(mutex_);
        sooner = queue_.empty() || timer.at < queue_.next_at();
        queue_.add(timer);
    }
    if (sooner) cv_.notify_one();
}

void Timers::wake()
{
    // Passing through the mutex puts this call either before the timer
    // thread's next clock read or after it has started waiting; a bare
    // notify between those two points would be lost.
    { std::lock_guard lock(mutex_); }
    cv_.notify_all();
}

std::size_t Timers::size() const
{
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void Timers::run()
{
    std::vector<Timer> due;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        const Millis now = clock_.now_ms();
        due.clear();
        queue_.pop_due(now, due);
        if (due.empty()) {
            Millis wait = shape_.max_wait_ms;
            if (!queue_.empty()) wait = std::clamp<Millis>(queue_.next_at() - now, 1, wait);
            cv_.wait_for(lock, std::chrono::milliseconds(wait));
            continue;
        }
        lock.unlock();
        // Blocking submit: due work waits for room rather than being dropped.
        for (const Timer& t : due)
            if (!pool_.submit([this, t] { handler_(t); })) break;
        lock.lock();
    }
}

}  // namespace zk
