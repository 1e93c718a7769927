// The watch registry: fired once per watch, removable by token, bounded.

#include "domain/watch_registry.h"

#include <doctest/doctest.h>

#include "../support/pool_fixture.h"

using namespace zk;

TEST_CASE("watch registry wait: fire() calls every watch on that job once, and only those")
{
    WatchRegistry r(10);
    const JobId a = JobId::generate(test::t0), b = JobId::generate(test::t0 + 1);
    int fa = 0, fb = 0;
    REQUIRE(r.add(a, [&] { ++fa; }));
    REQUIRE(r.add(a, [&] { ++fa; }));
    REQUIRE(r.add(b, [&] { ++fb; }));
    r.fire(a);
    r.fire(a);
    CHECK(fa == 2);
    CHECK(fb == 0);
    CHECK(r.size() == 1);
}

TEST_CASE("watch registry wait: a removed watch never fires; remove() says whether it was there")
{
    WatchRegistry r(10);
    const JobId a = JobId::generate(test::t0);
    int fired = 0;
    const auto t = r.add(a, [&] { ++fired; });
    REQUIRE(t);
    CHECK(r.remove(*t));
    CHECK_FALSE(r.remove(*t));
    r.fire(a);
    r.fire_one(*t);
    CHECK(fired == 0);
    CHECK(r.size() == 0);
}

TEST_CASE("watch registry wait: beyond its capacity add() refuses until a watch leaves")
{
    WatchRegistry r(2);
    const JobId a = JobId::generate(test::t0);
    const auto t1 = r.add(a, [] {});
    REQUIRE(r.add(a, [] {}));
    CHECK_FALSE(r.add(a, [] {}));
    r.remove(*t1);
    CHECK(r.add(a, [] {}));
}
