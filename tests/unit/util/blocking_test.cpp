// util/blocking: the per-thread hook that will_block() runs.

#include "util/blocking.h"

#include <doctest/doctest.h>

#include <thread>

using zk::util::BlockingHook;
using zk::util::will_block;

TEST_CASE("will_block: without a hook it does nothing")
{
    CHECK_NOTHROW(will_block());
    // Nor does it run a hook that was installed here and is gone.
    int calls = 0;
    { const BlockingHook hook([&] { ++calls; }); }
    CHECK_NOTHROW(will_block());
    CHECK(calls == 0);
}

TEST_CASE("will_block: runs the calling thread's hook, and only while it is installed")
{
    int calls = 0;
    {
        const BlockingHook hook([&] { ++calls; });
        will_block();
        will_block();
        CHECK(calls == 2);
    }
    will_block();
    CHECK(calls == 2);
}

TEST_CASE("will_block: a hook belongs to the thread that installed it")
{
    int mine = 0;
    const BlockingHook hook([&] { ++mine; });
    int theirs = 0;
    std::thread other([&] {
        const BlockingHook own([&] { ++theirs; });
        will_block();
    });
    other.join();
    std::thread bare([] { will_block(); });
    bare.join();
    CHECK(theirs == 1);
    CHECK(mine == 0);
}
