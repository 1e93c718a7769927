// RemoteWatches: deadline checks with their retries, the periodic check of
// every entry, counting watchers per id, and the armed-timer bookkeeping.

#include "domain/remote_watches.h"

#include <doctest/doctest.h>

#include <algorithm>

using namespace zk;

namespace {

constexpr Millis t0 = 1'700'000'000'000;

RemoteTiming timing()
{
    RemoteTiming t;
    t.settle_ms = 5;
    t.retry_ms = 10;
    t.retries = 2;
    t.period_ms = 1000;
    return t;
}

bool has(const std::vector<JobId>& ids, const JobId& id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); }

}  // namespace

TEST_SUITE("remote_watches") {

TEST_CASE("remote watches: a deadline check comes settle_ms after the deadline, then the retries, then none")
{
    RemoteWatches w(timing());
    const JobId a = JobId::generate(t0);
    CHECK(w.add(a, t0 + 100, t0) == t0 + 105);
    CHECK(w.take_due(t0 + 104).empty());
    CHECK(w.take_due(t0 + 105) == std::vector<JobId>{a});
    CHECK(w.rearm() == t0 + 115);                 // first retry
    CHECK(w.take_due(t0 + 115) == std::vector<JobId>{a});
    CHECK(w.rearm() == t0 + 135);                 // doubled
    CHECK(w.take_due(t0 + 135) == std::vector<JobId>{a});
    CHECK(w.rearm() == t0 + 1000);                // retries spent: the periodic check only
    CHECK(w.take_due(t0 + 999).empty());
    CHECK(w.size() == 1);
}

TEST_CASE("remote watches: the periodic check takes every entry at once, whatever its deadline")
{
    RemoteWatches w(timing());
    const JobId a = JobId::generate(t0), b = JobId::generate(t0 + 1);
    w.add(a, t0 + 50'000, t0);
    w.add(b, 0, t0 + 10);  // deadline unknown: periodic only
    const auto due = w.take_due(t0 + 1000);
    CHECK(due.size() == 2);
    CHECK(has(due, a));
    CHECK(has(due, b));
    CHECK(w.take_due(t0 + 1999).empty());
    CHECK(w.take_due(t0 + 2000).size() == 2);
}

TEST_CASE("remote watches: a deadline already past is due at once")
{
    RemoteWatches w(timing());
    const JobId a = JobId::generate(t0);
    CHECK(w.add(a, t0 - 500, t0) == t0);
    CHECK(w.take_due(t0) == std::vector<JobId>{a});
}

TEST_CASE("remote watches: watchers of one id are counted; the entry goes with the last")
{
    RemoteWatches w(timing());
    const JobId a = JobId::generate(t0);
    w.add(a, t0 + 100, t0);
    w.add(a, t0 + 100, t0);  // a duplicate id: one entry, one check
    CHECK(w.size() == 1);
    CHECK(w.take_due(t0 + 105) == std::vector<JobId>{a});
    w.release(a);
    CHECK(w.size() == 1);
    w.release(a);
    CHECK(w.size() == 0);
    CHECK_FALSE(w.rearm());
    CHECK(w.take_due(t0 + 5000).empty());
    w.release(a);  // unknown: nothing happens
    w.add(a, 0, t0);
    w.add(a, 0, t0);
    w.release(a, 2);  // a fire of two watchers
    CHECK(w.size() == 0);
}

TEST_CASE("remote watches: add() asks for a timer only when it is sooner than the armed one")
{
    RemoteWatches w(timing());
    const JobId a = JobId::generate(t0), b = JobId::generate(t0 + 1), c = JobId::generate(t0 + 2);
    CHECK(w.add(a, t0 + 500, t0) == t0 + 505);
    CHECK_FALSE(w.add(b, t0 + 800, t0));       // later: the armed timer comes first
    CHECK(w.add(c, t0 + 100, t0) == t0 + 105);  // sooner
    w.take_due(t0 + 105);                        // the timer fired: none armed
    CHECK(w.add(JobId::generate(t0 + 3), t0 + 900, t0 + 105) == t0 + 115);  // c's retry is next
}

}  // TEST_SUITE
