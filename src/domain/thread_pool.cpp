// The bounded worker pool behind survey completions and expiries.

#include "domain/thread_pool.h"

#include <stdexcept>

#include "util/log.h"

namespace zk {

ThreadPool::ThreadPool(std::size_t threads, std::size_t capacity) : capacity_(capacity)
{
    if (threads == 0 || capacity == 0) throw std::invalid_argument("thread pool needs threads and capacity");
    try {
        for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
    } catch (...) {
        stop();  // join the threads that did start
        throw;
    }
}

ThreadPool::~ThreadPool() { stop(); }

bool ThreadPool::submit(Task task)
{
    {
        std::unique_lock lock(mutex_);
        has_room_.wait(lock, [&] { return stopping_ || queue_.size() < capacity_; });
        if (stopping_) return false;
        queue_.push_back(std::move(task));
    }
    has_task_.notify_one();
    return true;
}

void ThreadPool::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    has_task_.notify_all();
    has_room_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

std::size_t ThreadPool::queue_depth() const
{
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::size_t ThreadPool::busy() const
{
    std::lock_guard lock(mutex_);
    return busy_;
}

// A task that throws (a store write failing with bad_alloc, say) is our bug,
// but it must not end the thread or, through std::terminate, the process.
void ThreadPool::run(Task& task) noexcept
{
    try {
        task();
    } catch (const std::exception& e) {
        log::error("task_failed").kv("what", e.what());
    } catch (...) {
        log::error("task_failed").kv("what", "unknown exception");
    }
}

void ThreadPool::work()
{
    for (;;) {
        Task task;
        {
            std::unique_lock lock(mutex_);
            has_task_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping and drained
            task = std::move(queue_.front());
            queue_.pop_front();
            ++busy_;
        }
        has_room_.notify_one();
        run(task);
        std::lock_guard lock(mutex_);
        --busy_;
    }
}

}  // namespace zk
