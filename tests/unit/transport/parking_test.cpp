// The parked set without sockets: every parked request is finished exactly
// once whichever of wake-up, timeout, hang-up and shutdown comes first, and a
// claim during arming is handed back rather than lost.

#include "transport/parking.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace zk::transport;
using namespace std::chrono_literals;

namespace {

const SteadyTime base{std::chrono::seconds(1000)};

Parked at(SteadyTime deadline, int fd = 7)
{
    Parked p;
    p.fd = fd;
    p.fcgi_id = 1;
    p.deadline = deadline;
    return p;
}

// Adds and activates with a subscription, as the transport does.
std::uint64_t parked(Parking& parking, SteadyTime deadline, int fd = 7)
{
    const auto id = parking.add(at(deadline, fd));
    REQUIRE(id);
    REQUIRE_FALSE(parking.activate(*id, 42));
    return *id;
}

}  // namespace

TEST_CASE("parking wait: a wake-up queues the request for ready() and rings once")
{
    int rings = 0;
    Parking parking([&] { ++rings; });
    const auto id = parked(parking, base + 5s);
    parking.wake(id);
    parking.wake(id);  // a second claim finds nothing
    CHECK(rings == 1);
    const auto ready = parking.ready();
    REQUIRE(ready.size() == 1);
    CHECK(ready[0].id == id);
    CHECK(ready[0].why == Wake::event);
    CHECK(ready[0].parked.subscription == 42u);
    CHECK(parking.size() == 0);
    CHECK_FALSE(parking.next_deadline());
    CHECK(parking.due(base + 10s).empty());
    CHECK_FALSE(parking.take(id, Wake::hangup));
}

TEST_CASE("parking wait: timers are keyed by deadline and id, so equal deadlines do not collide")
{
    Parking parking(nullptr);
    const auto a = parked(parking, base + 5s, 10);
    const auto b = parked(parking, base + 5s, 11);
    const auto c = parked(parking, base + 9s, 12);
    CHECK(parking.next_deadline() == base + 5s);
    CHECK(parking.due(base + 4999ms).empty());
    const auto due = parking.due(base + 5s);
    REQUIRE(due.size() == 2);
    CHECK(due[0].id == a);
    CHECK(due[1].id == b);
    CHECK(due[0].why == Wake::timeout);
    CHECK(parking.next_deadline() == base + 9s);
    parking.wake(c);
    CHECK_FALSE(parking.next_deadline());
}

TEST_CASE("parking wait: a hang-up takes the request; a later wake-up or timeout finds nothing")
{
    int rings = 0;
    Parking parking([&] { ++rings; });
    const auto id = parked(parking, base + 5s);
    const auto t = parking.take(id, Wake::hangup);
    REQUIRE(t);
    CHECK(t->why == Wake::hangup);
    CHECK(t->parked.fd == 7);
    parking.wake(id);
    CHECK(rings == 0);
    CHECK(parking.due(base + 1h).empty());
}

TEST_CASE("parking wait: a claim while arming is handed back by activate(), the first claim winning")
{
    int rings = 0;
    Parking parking([&] { ++rings; });
    const auto id = parking.add(at(base + 5s));
    REQUIRE(id);
    parking.wake(*id);  // the subscription fired before activate()
    CHECK_FALSE(parking.take(*id, Wake::hangup));
    CHECK(parking.due(base + 1h).empty());  // arming requests are left to their arming thread
    CHECK(rings == 0);
    const auto t = parking.activate(*id, 3);
    REQUIRE(t);
    CHECK(t->why == Wake::event);
    CHECK(t->parked.subscription == 3u);
    CHECK(parking.size() == 0);
}

TEST_CASE("parking wait: close() hands back parked and ready requests, refuses new ones, and ends arming ones")
{
    Parking parking([] {});
    const auto a = parked(parking, base + 5s, 10);
    const auto b = parked(parking, base + 6s, 11);
    const auto arming = parking.add(at(base + 7s, 12));
    REQUIRE(arming);
    parking.wake(b);
    const auto closed = parking.close();
    REQUIRE(closed.size() == 2);
    CHECK(closed[0].id == b);  // the ready one first, as it was woken
    CHECK(closed[0].why == Wake::event);
    CHECK(closed[1].id == a);
    CHECK(closed[1].why == Wake::shutdown);
    CHECK_FALSE(parking.add(at(base + 8s)));
    const auto t = parking.activate(*arming, 9);
    REQUIRE(t);
    CHECK(t->why == Wake::shutdown);
    CHECK(parking.size() == 0);
}

TEST_CASE("parking wait: racing claims from many threads finish each request exactly once")
{
    constexpr int requests = 2000;
    std::atomic<int> rings{0};
    Parking parking([&] { ++rings; });
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < requests; ++i) ids.push_back(parked(parking, base + std::chrono::milliseconds(i)));
    std::atomic<int> taken{0};
    std::vector<std::thread> threads;
    threads.emplace_back([&] { for (auto id : ids) parking.wake(id); });
    threads.emplace_back([&] { for (auto id : ids) if (parking.take(id, Wake::hangup)) ++taken; });
    threads.emplace_back([&] { taken += static_cast<int>(parking.due(base + 1h).size()); });
    for (auto& t : threads) t.join();
    taken += static_cast<int>(parking.ready().size());
    CHECK(taken == requests);
    CHECK(parking.size() == 0);
}
