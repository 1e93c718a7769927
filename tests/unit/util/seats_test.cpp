// util/seats: at most N threads hold a seat; a thread without one stands by;
// a blocking holder frees its seat and wakes a standby only when no thread of
// the group is left running; open() releases every standby.
// A test that needs a standby to be standing by waits for the event itself:
// the thread asleep in the kernel on the seats' condition (its
// /proc/self/task/<tid>/syscall names futex), never a fixed sleep.

#include "util/seats.h"

#include <doctest/doctest.h>

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../support/wait.h"

using namespace std::chrono_literals;
using zk::util::Seat;
using zk::util::Seats;

namespace {

// The thread is asleep in futex(): in take(), waiting on the seats'
// condition (the only place a standby can sleep while the test holds no
// lock of the seats).
bool asleep(pid_t tid)
{
    std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
    std::string call;
    return in >> call && call == std::to_string(SYS_futex);
}

// A thread that stands by for a seat, and says when it got one.
struct Standby {
    explicit Standby(Seats& seats)
        : seats_(seats), thread([&seats, this] {
              Seat seat(seats);
              tid = ::gettid();
              seat.take();
              seated = seat.held();
              through = true;
          })
    {
    }
    ~Standby()
    {
        if (!thread.joinable()) return;
        seats_.open();  // however the test ended, nobody stays standing by
        thread.join();
    }
    bool standing_by() { return zk::test::wait_until([&] { return tid.load() != 0 && asleep(tid.load()); }, 5000ms); }

    Seats& seats_;
    std::atomic<pid_t> tid{0};
    std::atomic<bool> seated{false}, through{false};
    std::thread thread;  // last: started once the rest exists
};

}  // namespace

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
    Standby third(seats);
    REQUIRE(third.standing_by());  // no seat free: asleep in take()
    CHECK_FALSE(third.through.load());
    a.block();  // b still runs and will take work: no need to wake the standby
    CHECK(asleep(third.tid));
    a.resume();
    CHECK(a.try_take());  // the seat a freed is still free: the standby did not take it
    a.block();
    b.block();  // nobody left running
    CHECK(zk::test::wait_until([&] { return third.seated.load(); }, 5000ms));
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
    std::vector<std::unique_ptr<Standby>> standbys;
    for (int i = 0; i < 4; ++i) standbys.push_back(std::make_unique<Standby>(seats));
    for (auto& s : standbys) REQUIRE(s->standing_by());
    for (auto& s : standbys) CHECK_FALSE(s->through.load());
    seats.open();
    for (auto& s : standbys) {
        s->thread.join();
        CHECK(s->through.load());
        CHECK_FALSE(s->seated.load());  // let through without a seat: the group is told to stop
    }
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
