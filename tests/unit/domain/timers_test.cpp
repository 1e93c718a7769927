// Timers: the timer thread hands each due timer to the pool's threads (never
// runs it itself), earliest first; a timer is due at its time on the
// ManualClock and not a millisecond before; a full queue makes the timer
// thread wait (nothing due is dropped); wake() and a sooner arm() make it
// look at the clock at once; stop() runs what was handed over and joins.
// Handlers that must stay busy wait at a Gate the test opens.

#include "domain/timers.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "../support/wait.h"

using namespace zk;
using namespace std::chrono_literals;
using test::wait_until;

namespace {

constexpr Millis t0 = 1'700'000'000'000;

class Gate {
public:
    void wait()
    {
        std::unique_lock lock(mutex_);
        ++waiting_;
        cv_.wait(lock, [&] { return open_; });
        --waiting_;
    }
    void open()
    {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }
    int waiting()
    {
        std::lock_guard lock(mutex_);
        return waiting_;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
    int waiting_ = 0;
};

// What the handler saw: every timer, in the order run, and on which thread.
struct Fired {
    void add(const Timer& t)
    {
        std::lock_guard lock(mutex);
        timers.push_back(t);
        threads.push_back(std::this_thread::get_id());
    }
    std::size_t count()
    {
        std::lock_guard lock(mutex);
        return timers.size();
    }
    std::vector<Timer> all()
    {
        std::lock_guard lock(mutex);
        return timers;
    }

    std::mutex mutex;
    std::vector<Timer> timers;
    std::vector<std::thread::id> threads;
};

// Opens the gate when the test ends, however it ends, before the Timers
// declared ahead of it stop (and wait for the handlers held there).
struct Opens {
    Gate& gate;
    ~Opens() { gate.open(); }
};

TimerShape shape(std::size_t threads = 1, std::size_t capacity = 16, Millis max_wait_ms = 5)
{
    TimerShape s;
    s.threads = threads;
    s.queue_capacity = capacity;
    s.max_wait_ms = max_wait_ms;
    return s;
}

Timer at(Millis when, TimerKind kind = TimerKind::complete, Millis id_time = t0)
{
    return Timer{when, JobId::generate(id_time), kind};
}

}  // namespace

TEST_CASE("timers: a due timer runs on a pool thread with what it was armed with")
{
    ManualClock clock(t0);
    Fired fired;
    Timers timers(clock, shape(), [&](const Timer& t) { fired.add(t); });
    timers.start();
    const Timer t = at(t0, TimerKind::expire);
    timers.arm(t);
    REQUIRE(wait_until([&] { return fired.count() == 1; }));
    const auto all = fired.all();
    CHECK(all[0].at == t.at);
    CHECK(all[0].job == t.job);
    CHECK(all[0].kind == TimerKind::expire);
    CHECK(fired.threads[0] != std::this_thread::get_id());
    CHECK(wait_until([&] { return timers.size() == 0; }));
    timers.stop();
}

TEST_CASE("timers: due at its time on the clock, not a millisecond before; earliest first")
{
    ManualClock clock(t0);
    Fired fired;
    Timers timers(clock, shape(1), [&](const Timer& t) { fired.add(t); });
    timers.start();
    const Timer later = at(t0 + 101, TimerKind::complete, t0 + 1);
    const Timer first = at(t0 + 100, TimerKind::complete, t0 + 2);
    const Timer second = at(t0 + 100, TimerKind::expire, t0 + 3);  // same time: ordered by job id
    timers.arm(later);
    timers.arm(second);
    timers.arm(first);
    CHECK(timers.size() == 3);

    clock.advance(100);
    timers.wake();
    REQUIRE(wait_until([&] { return fired.count() == 2; }));
    // That pass saw t0 + 100: `later` was not due, and is still armed.
    CHECK(timers.size() == 1);
    const auto two = fired.all();
    CHECK(two[0].job == first.job);
    CHECK(two[1].job == second.job);

    clock.advance(1);
    timers.wake();
    REQUIRE(wait_until([&] { return fired.count() == 3; }));
    CHECK(fired.all()[2].job == later.job);
    CHECK(timers.size() == 0);
    timers.stop();
}

TEST_CASE("timers: wake() and a sooner arm() make the timer thread look at once, whatever its wait")
{
    ManualClock clock(t0);
    Fired fired;
    constexpr Millis hour = 3'600'000;
    Timers timers(clock, shape(1, 16, hour), [&](const Timer& t) { fired.add(t); });  // it may sleep an hour
    timers.start();
    timers.arm(at(t0 + 100 * hour));  // the thread now sleeps as long as it may
    timers.arm(at(t0));               // sooner, and due: arm() wakes it
    REQUIRE(wait_until([&] { return fired.count() == 1; }));
    for (int round = 1; round <= 20; ++round) {
        timers.arm(at(clock.now_ms() + hour));  // the thread sleeps an hour (real) for it
        clock.advance(hour);
        timers.wake();  // only wake() makes it look before then
        REQUIRE(wait_until([&] { return fired.count() == static_cast<std::size_t>(round + 1); }));
    }
    CHECK(timers.size() == 1);  // the one 100 hours away
    timers.stop();
}

TEST_CASE("timers: a full queue makes the timer thread wait; every due timer still runs, in order")
{
    ManualClock clock(t0);
    Gate gate;
    Fired fired;
    Timers timers(clock, shape(1, 1), [&](const Timer& t) {
        fired.add(t);
        gate.wait();
    });
    const Opens opens{gate};
    std::vector<Timer> armed;
    for (int i = 0; i < 5; ++i) {
        armed.push_back(at(t0, TimerKind::complete, t0 + i));
        timers.arm(armed.back());
    }
    timers.start();  // its first pass takes all five
    // One runs (held at the gate), one waits in the queue, and the timer
    // thread holds the other three it took, waiting for room.
    REQUIRE(wait_until([&] { return gate.waiting() == 1 && timers.queue_depth() == 1 && timers.size() == 0; }));
    CHECK(timers.busy() == 1);
    CHECK(fired.count() == 1);
    gate.open();
    REQUIRE(wait_until([&] { return fired.count() == 5; }));
    const auto all = fired.all();
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].job == armed[i].job);
    timers.stop();
    CHECK(timers.queue_depth() == 0);
    CHECK(timers.busy() == 0);
}

TEST_CASE("timers: stop() runs what was handed over, fires nothing more, and joins; idempotent")
{
    ManualClock clock(t0);
    Gate gate;
    Fired fired;
    std::atomic<int> finished{0};
    Timers timers(clock, shape(1, 4), [&](const Timer& t) {
        fired.add(t);
        gate.wait();
        ++finished;
    });
    const Opens opens{gate};
    timers.arm(at(t0, TimerKind::complete, t0 + 1));
    timers.arm(at(t0, TimerKind::complete, t0 + 2));
    timers.arm(at(t0 + 1000));  // not due before the stop
    timers.start();
    REQUIRE(wait_until([&] { return gate.waiting() == 1 && timers.queue_depth() == 1; }));
    std::thread stopper([&] { timers.stop(); });
    // stop() waits for the task at the gate: open it, and stop() returns
    // once both handed-over timers ran.
    gate.open();
    stopper.join();
    CHECK(finished == 2);
    clock.advance(1000);
    timers.wake();
    timers.arm(at(t0));
    timers.stop();
    CHECK(fired.count() == 2);  // stop() joined: no thread is left that could fire them
    CHECK(timers.size() == 2);
}

TEST_CASE("timers: stop() without start() and a destructor after stop() are clean")
{
    ManualClock clock(t0);
    {
        Timers never(clock, shape(2), [](const Timer&) {});
        never.arm(at(t0));
        never.stop();
        CHECK(never.size() == 1);
    }
    {
        Timers once(clock, shape(2), [](const Timer&) {});
        once.start();
    }  // the destructor stops and joins
    Timers sized(clock, shape(3, 7), [](const Timer&) {});
    CHECK(sized.threads() == 3);
    CHECK(sized.queue_depth() == 0);
}
