// ThreadPool: runs what it accepts, makes a producer wait while full, refuses
// when stopping, drains on stop, and joins every thread. A worker is held at a
// gate the test controls, so "full" is reached deterministically.

#include "domain/thread_pool.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../support/capture_stderr.h"
#include "../support/wait.h"

using zk::ThreadPool;
using zk::test::wait_until;

namespace {

// Tasks that call wait() park until open() is called.
class Gate {
public:
    void wait()
    {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return open_; });
    }
    void open()
    {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

}  // namespace

TEST_CASE("a pool needs at least one thread and room for one task")
{
    CHECK_THROWS_AS(ThreadPool(0, 1), std::invalid_argument);
    CHECK_THROWS_AS(ThreadPool(1, 0), std::invalid_argument);
    CHECK_NOTHROW(ThreadPool(1, 1));
}

TEST_CASE("every accepted task runs, and stop drains the queue first")
{
    std::atomic<int> ran{0};
    int accepted = 0;
    {
        ThreadPool pool(3, 1000);
        for (int i = 0; i < 1000; ++i) accepted += pool.submit([&] { ++ran; }) ? 1 : 0;
        pool.stop();
        CHECK(ran == accepted);
    }
    CHECK(accepted == 1000);
}

TEST_CASE("submit waits for room, then runs the task")
{
    ThreadPool pool(1, 1);
    Gate gate;
    std::atomic<int> ran{0};
    REQUIRE(pool.submit([&] { gate.wait(); }));
    REQUIRE(wait_until([&] { return pool.busy() == 1; }));
    REQUIRE(pool.submit([&] { ++ran; }));  // takes the one slot
    CHECK(pool.queue_depth() == 1);
    auto waiting = std::async(std::launch::async, [&] { return pool.submit([&] { ++ran; }); });
    // It cannot return while the worker is held and the slot taken.
    CHECK(waiting.wait_for(std::chrono::milliseconds(30)) == std::future_status::timeout);
    CHECK(pool.queue_depth() == 1);  // it waits outside the queue, which never grows
    gate.open();
    CHECK(waiting.get());
    pool.stop();
    CHECK(ran == 2);
}

TEST_CASE("a stopped pool refuses work; stop is idempotent")
{
    ThreadPool pool(2, 4);
    pool.stop();
    CHECK_FALSE(pool.submit([] {}));
    pool.stop();  // joined threads are not joined again
    CHECK(pool.busy() == 0);
}

TEST_CASE("stop releases a submit waiting for room; queued work still runs")
{
    auto pool = std::make_unique<ThreadPool>(1, 1);
    Gate gate;
    std::atomic<int> ran{0};
    REQUIRE(pool->submit([&] { gate.wait(); }));
    REQUIRE(wait_until([&] { return pool->busy() == 1; }));
    REQUIRE(pool->submit([&] { ++ran; }));
    auto waiting = std::async(std::launch::async, [&] { return pool->submit([&] { ran += 100; }); });
    CHECK(waiting.wait_for(std::chrono::milliseconds(20)) == std::future_status::timeout);
    // stop() joins the held worker, so it runs on its own thread until the gate opens.
    auto stopping = std::async(std::launch::async, [&] { pool->stop(); });
    CHECK(waiting.wait_for(std::chrono::seconds(2)) == std::future_status::ready);
    CHECK_FALSE(waiting.get());
    gate.open();
    stopping.get();
    CHECK(ran == 1);  // the queued task ran, the refused one did not
}

TEST_CASE("busy and queue_depth report the pool's load")
{
    ThreadPool pool(2, 10);
    Gate gate;
    for (int i = 0; i < 5; ++i) REQUIRE(pool.submit([&] { gate.wait(); }));
    REQUIRE(wait_until([&] { return pool.busy() == 2; }));
    CHECK(pool.queue_depth() == 3);
    gate.open();
    REQUIRE(wait_until([&] { return pool.busy() == 0 && pool.queue_depth() == 0; }));
}

TEST_CASE("concurrent producers on a small queue: every task runs once")
{
    std::atomic<int> ran{0}, accepted{0};
    {
        ThreadPool pool(2, 8);
        std::vector<std::thread> producers;
        for (int p = 0; p < 4; ++p)
            producers.emplace_back([&] {
                for (int i = 0; i < 2000; ++i)
                    if (pool.submit([&] { ++ran; })) ++accepted;
            });
        for (auto& t : producers) t.join();
        CHECK(pool.queue_depth() <= 8);
        pool.stop();
    }
    CHECK(accepted == 8000);
    CHECK(ran == 8000);
}

TEST_CASE("the destructor drains and joins")
{
    std::atomic<int> ran{0};
    {
        ThreadPool pool(1, 100);
        for (int i = 0; i < 100; ++i) REQUIRE(pool.submit([&] { ++ran; }));
    }
    CHECK(ran == 100);
}

TEST_CASE("a task that throws is logged; the thread lives on and runs the next task")
{
    std::atomic<int> ran{0};
    std::string logged;
    {
        zk::test::CaptureStderr capture;
        ThreadPool pool(1, 8);
        REQUIRE(pool.submit([] { throw std::runtime_error("boom"); }));
        REQUIRE(pool.submit([] { throw 42; }));
        REQUIRE(pool.submit([&] { ++ran; }));
        pool.stop();
        CHECK(pool.busy() == 0);
        logged = capture.text();
    }
    CHECK(ran == 1);
    CHECK(logged.find("event=task_failed what=boom") != std::string::npos);
    CHECK(logged.find("event=task_failed what=\"unknown exception\"") != std::string::npos);
}
