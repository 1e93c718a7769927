// JobTable: put/get/erase/insert/update/upsert/for_each/size, and concurrent
// use from many threads (run under ThreadSanitizer by `make tsan`).

#include "domain/job_table.h"

#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using zk::Edit;
using zk::Job;
using zk::JobId;
using zk::JobState;
using zk::JobTable;

namespace {

Job job(const std::string& animal, zk::Millis created = 1'700'000'000'000)
{
    Job j;
    j.id = JobId::generate(created);
    j.animal = animal;
    j.created_ms = created;
    return j;
}

}  // namespace

TEST_CASE("get answers what put stored, as a copy")
{
    JobTable t;
    const Job a = job("bisons");
    t.put(a);
    auto got = t.get(a.id);
    REQUIRE(got);
    CHECK(got->id == a.id);
    CHECK(got->animal == "bisons");
    got->animal = "changed";  // a copy: the table is untouched
    CHECK(t.get(a.id)->animal == "bisons");
    CHECK_FALSE(t.get(JobId::generate(1)).has_value());
    CHECK(t.size() == 1);
}

TEST_CASE("put replaces a job with the same id")
{
    JobTable t;
    Job a = job("bisons");
    t.put(a);
    a.state = JobState::done;
    a.result = "Calm bisons sing wildly";
    t.put(a);
    CHECK(t.size() == 1);
    CHECK(t.get(a.id)->state == JobState::done);
    CHECK(t.get(a.id)->result == "Calm bisons sing wildly");
}

TEST_CASE("erase removes once")
{
    JobTable t;
    const Job a = job("bisons"), b = job("elks");
    t.put(a);
    t.put(b);
    CHECK(t.erase(a.id));
    CHECK_FALSE(t.erase(a.id));
    CHECK_FALSE(t.get(a.id).has_value());
    CHECK(t.get(b.id).has_value());
    CHECK(t.size() == 1);
}

TEST_CASE("update changes in place, erases on Edit::erase, and says whether the edit did anything")
{
    JobTable t;
    const Job a = job("bisons");
    t.put(a);
    CHECK(t.update(a.id, [](Job& j) {
        j.state = JobState::running;
        return Edit::changed;
    }));
    CHECK(t.get(a.id)->state == JobState::running);
    CHECK_FALSE(t.update(a.id, [](Job&) { return Edit::none; }));
    CHECK(t.get(a.id));
    CHECK(t.update(a.id, [](Job&) { return Edit::erase; }));
    CHECK_FALSE(t.get(a.id));
    CHECK(t.size() == 0);

    bool called = false;
    CHECK_FALSE(t.update(JobId::generate(1), [&](Job&) {
        called = true;
        return Edit::changed;
    }));
    CHECK_FALSE(called);  // an unknown id never reaches the callback
}

TEST_CASE("upsert edits a held job, or a fresh one inserted only when the edit says changed")
{
    JobTable t;
    const Job a = job("bisons");
    // Unknown: a default Job, held false; `none` inserts nothing.
    t.upsert(a.id, [&](Job& j, bool held) {
        CHECK_FALSE(held);
        CHECK(j.animal.empty());
        return Edit::none;
    });
    CHECK(t.size() == 0);
    t.upsert(a.id, [&](Job& j, bool held) {
        CHECK_FALSE(held);
        j = a;
        return Edit::changed;
    });
    REQUIRE(t.get(a.id));
    CHECK(t.get(a.id)->animal == "bisons");
    // Held: edited in place; `erase` removes it.
    t.upsert(a.id, [](Job& j, bool held) {
        CHECK(held);
        j.state = JobState::done;
        return Edit::changed;
    });
    CHECK(t.get(a.id)->state == JobState::done);
    t.upsert(a.id, [](Job&, bool held) {
        CHECK(held);
        return Edit::erase;
    });
    CHECK_FALSE(t.get(a.id));
    // A fresh job the edit erases is not inserted either.
    t.upsert(a.id, [&](Job& j, bool) {
        j = a;
        return Edit::erase;
    });
    CHECK(t.size() == 0);
}

TEST_CASE("for_each visits every job exactly once across all shards")
{
    JobTable t;
    std::set<JobId> ids;
    for (int i = 0; i < 1000; ++i) {
        const Job j = job("bisons", 1'700'000'000'000 + i);
        ids.insert(j.id);
        t.put(j);
    }
    CHECK(t.size() == 1000);
    std::set<JobId> seen;
    std::size_t visits = 0;
    t.for_each([&](const Job& j) {
        seen.insert(j.id);
        ++visits;
    });
    CHECK(visits == 1000);
    CHECK(seen == ids);
}

TEST_CASE("concurrent put, update, get, erase, for_each and size")
{
    JobTable t;
    constexpr int threads = 4, per_thread = 500;
    std::vector<std::vector<JobId>> ids(threads);
    std::atomic<bool> done{false};
    std::thread reader([&] {
        while (!done) {
            std::size_t n = 0;
            t.for_each([&](const Job&) { ++n; });
            (void)t.size();
        }
    });
    std::vector<std::thread> writers;
    for (int w = 0; w < threads; ++w)
        writers.emplace_back([&, w] {
            for (int i = 0; i < per_thread; ++i) {
                const Job j = job("bisons", 1'700'000'000'000 + i);
                ids[static_cast<std::size_t>(w)].push_back(j.id);
                t.put(j);
                t.update(j.id, [](Job& x) {
                    x.state = JobState::running;
                    return Edit::changed;
                });
                if (i % 2) t.erase(j.id);
                else (void)t.get(j.id);
            }
        });
    for (auto& w : writers) w.join();
    done = true;
    reader.join();
    CHECK(t.size() == threads * per_thread / 2);
    for (const auto& list : ids)
        for (std::size_t i = 0; i < list.size(); ++i) {
            const auto got = t.get(list[i]);
            CHECK(got.has_value() == (i % 2 == 0));
            if (got) CHECK(got->state == JobState::running);
        }
}

TEST_CASE("insert runs its callback first, then inserts what it made of the job; nothing if it refuses or throws")
{
    JobTable t;
    const Job a = job("bisons");
    int called = 0;
    CHECK(t.insert(a, [&](Job& j) {
        CHECK(j.id == a.id);
        j.writing = JobState::running;
        ++called;
        return true;
    }));
    CHECK(called == 1);
    REQUIRE(t.get(a.id));
    CHECK(t.get(a.id)->writing == JobState::running);
    const Job b = job("elks");
    CHECK_FALSE(t.insert(b, [](Job&) { return false; }));
    CHECK_FALSE(t.get(b.id));
    const Job c = job("koalas");
    CHECK_THROWS(t.insert(c, [](Job&) -> bool { throw std::runtime_error("refused"); }));
    CHECK_FALSE(t.get(c.id));
    CHECK(t.size() == 1);
}
