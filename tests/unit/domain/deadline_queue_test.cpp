// DeadlineQueue: earliest first, only what is due, and ties kept apart.

#include "domain/deadline_queue.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

using zk::DeadlineQueue;
using zk::JobId;
using zk::Timer;
using zk::TimerKind;

namespace {

JobId id_n(unsigned char n)
{
    JobId::Bytes b{};
    b[15] = n;
    return JobId(b);
}

}  // namespace

TEST_CASE("an empty queue pops nothing")
{
    DeadlineQueue q;
    CHECK(q.empty());
    CHECK(q.size() == 0);
    std::vector<Timer> out;
    q.pop_due(1'000'000, out);
    CHECK(out.empty());
}

TEST_CASE("next_at is the earliest deadline whatever the insertion order")
{
    DeadlineQueue q;
    q.add({300, id_n(1), TimerKind::complete});
    q.add({100, id_n(2), TimerKind::expire});
    q.add({200, id_n(3), TimerKind::complete});
    CHECK(q.size() == 3);
    CHECK(q.next_at() == 100);
}

TEST_CASE("pop_due takes only timers at or before now, earliest first, and appends")
{
    DeadlineQueue q;
    for (int at : {500, 100, 400, 200, 300}) q.add({at, id_n(static_cast<unsigned char>(at / 100)), TimerKind::complete});
    std::vector<Timer> out{{7, id_n(99), TimerKind::expire}};  // already there: kept
    q.pop_due(99, out);
    CHECK(out.size() == 1);
    q.pop_due(300, out);  // 300 is due: "at <= now"
    REQUIRE(out.size() == 4);
    CHECK(out[0].at == 7);
    CHECK(out[1].at == 100);
    CHECK(out[2].at == 200);
    CHECK(out[3].at == 300);
    CHECK(q.size() == 2);
    CHECK(q.next_at() == 400);
    out.clear();
    q.pop_due(1000, out);
    CHECK(out.size() == 2);
    CHECK(q.empty());
}

TEST_CASE("equal deadlines never collide and fire in id order")
{
    DeadlineQueue q;
    for (unsigned char n : {5, 3, 9, 1, 7}) q.add({100, id_n(n), TimerKind::complete});
    // The same job may hold a completion and an expiry timer at one instant.
    q.add({100, id_n(3), TimerKind::expire});
    CHECK(q.size() == 6);
    std::vector<Timer> out;
    q.pop_due(100, out);
    REQUIRE(out.size() == 6);
    std::vector<unsigned char> order;
    for (const Timer& t : out) order.push_back(t.job.bytes()[15]);
    CHECK(order == std::vector<unsigned char>{1, 3, 3, 5, 7, 9});
    CHECK(std::count_if(out.begin(), out.end(), [](const Timer& t) { return t.kind == TimerKind::expire; }) == 1);
}

TEST_CASE("many random timers come out sorted")
{
    DeadlineQueue q;
    unsigned x = 12345;
    for (int i = 0; i < 2000; ++i) {
        x = x * 1103515245u + 12345u;
        q.add({static_cast<zk::Millis>(x % 5000), JobId::generate(1), TimerKind::complete});
    }
    std::vector<Timer> out;
    q.pop_due(5000, out);
    REQUIRE(out.size() == 2000);
    CHECK(std::is_sorted(out.begin(), out.end(), [](const Timer& a, const Timer& b) {
        return a.at != b.at ? a.at < b.at : a.job < b.job;
    }));
}
