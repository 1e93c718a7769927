// A fixed set of worker threads over a bounded task queue. A full queue makes
// the producer (the job pool's timer thread) wait: due work is never dropped,
// and the queue never grows past its capacity.
// stop() runs what is already queued, then joins every thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace zk {

class ThreadPool {
public:
    using Task = std::function<void()>;

    ThreadPool(std::size_t threads, std::size_t capacity);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // Waits for room; false only when the pool is stopping.
    bool submit(Task task);
    void stop();

    std::size_t queue_depth() const;
    std::size_t busy() const;

private:
    void work();
    static void run(Task& task) noexcept;

    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable has_task_;   // signalled on push and on stop
    std::condition_variable has_room_;   // signalled on pop and on stop
    std::deque<Task> queue_;             // guarded by mutex_
    std::size_t busy_ = 0;               // guarded by mutex_
    bool stopping_ = false;              // guarded by mutex_
    std::vector<std::thread> threads_;
};

}  // namespace zk
