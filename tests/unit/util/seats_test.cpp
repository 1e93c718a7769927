// util/seats: at most N threads hold a seat; a thread without one stands by;
// a blocking holder frees its seat and wakes a standby only when no thread of
// the group is left running; open() releases every standby.

#include "util/seats.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "../support/wait.h"

using namespace std::chrono_literals;
using zk::util::Seat;
using zk::util::Seats;

TEST_CASE("seats: try_take takes only a free seat")
{
    Seats seats(1);
    Seat a(seats), b(seats);
    CHECK(a.try_take());
    CHECK(a.try_take());  // already held: still one seat
    CHECK_FALSE(b.try_take());
    CHECK_FALSE(b.held());
    a.block();
    CHECK_FALSE(a.held());
    CHECK(b.try_take());
    a.resume();
    CHECK_FALSE(a.try_take());
}

TEST_CASE("seats: a standby is woken when the last running thread blocks, not before")
{
    Seats seats(2);
    Seat a(seats), b(seats);  // two running holders, played by this thread
    REQUIRE(a.try_take());
    REQUIRE(b.try_take());
    std::atomic<bool> seated{false};
    std::atomic<bool> standing{false};
    std::thread third([&] {
        Seat c(seats);
        standing = true;
        c.take();
        seated = c.held();
    });
    REQUIRE(zk::test::wait_until([&] { return standing.load(); }));
    std::this_thread::sleep_for(50ms);  // time to take a seat if it (wrongly) could
    CHECK_FALSE(seated.load());
    a.block();  // b still runs and will take work: no need to wake the standby
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(seated.load());
    b.block();  // nobody left running
    CHECK(zk::test::wait_until([&] { return seated.load(); }, 5000ms));
    third.join();
}

TEST_CASE("seats: a thread coming back from a block takes a seat a blocker freed")
{
    Seats seats(1);
    Seat a(seats), b(seats);
    REQUIRE(a.try_take());
    a.block();
    a.resume();
    CHECK(a.try_take());  // nobody took it meanwhile
    CHECK_FALSE(b.try_take());
}

TEST_CASE("seats: open() lets every standby through")
{
    Seats seats(1);
    Seat holder(seats);
    REQUIRE(holder.try_take());
    std::atomic<int> through{0};
    std::vector<std::thread> standbys;
    for (int i = 0; i < 4; ++i)
        standbys.emplace_back([&] {
            Seat s(seats);
            s.take();
            ++through;
        });
    std::this_thread::sleep_for(50ms);
    CHECK(through.load() == 0);
    seats.open();
    for (auto& t : standbys) t.join();
    CHECK(through.load() == 4);
}

TEST_CASE("seats: under contention never more than N holders, and nobody is left standing by")
{
    constexpr std::size_t n = 3;
    Seats seats(n);
    std::atomic<int> inside{0}, most{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            Seat seat(seats);
            for (int i = 0; i < 2000; ++i) {
                seat.resume();
                if (!seat.try_take()) seat.take();
                const int now = ++inside;
                int seen = most.load();
                while (now > seen && !most.compare_exchange_weak(seen, now)) {
                }
                --inside;
                if (i % 3 == 0) seat.block();  // as a creation waiting for its commit would
            }
        });
    for (auto& t : threads) t.join();  // a lost wake-up would hang here
    CHECK(most.load() >= 1);
    CHECK(most.load() <= static_cast<int>(n));
}
